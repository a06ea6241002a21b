"""MUSIC data: layout conventions, index files, and the mixture dataset for CCoL and SoP."""

import importlib

from .errors import DataError

# Loaded on first use, so that scripts needing only layout/index do not pay for importing torch.
_LAZY = {
    "MUSICMixDataset": "music",
    "collate": "music",
    "summarize": "music",
    "normalize_frames": "transforms",
    "color_jitter": "transforms",
}

__all__ = ["DataError", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
