"""File readers for the loader: windowed audio, detection arrays, jpg frames; all raise DataError."""
from __future__ import annotations

import logging
import math
import os

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from scipy.signal import resample_poly

from .errors import DataError
from .layout import DETECTION_COLUMNS

log = logging.getLogger(__name__)

# Files already warned about for a sample rate that differs from the loader's (once per process).
_warned_rate = set()


def read_audio_window(path: str, center_time: float, length: int, rate: int) -> np.ndarray:
    """Exactly `length` samples at `rate` Hz centred at `center_time`, shifted to lie inside the file.

    Only the window is read from disk (never the whole file). Multi-channel audio is averaged to
    mono; a file at another rate is read at its own rate over the same time span and resampled.

    Returns: float32 (length,), in [-1, 1] for PCM files.
    """
    if not os.path.isfile(path):
        raise DataError("audio file not found", path=path)
    try:
        with sf.SoundFile(path) as f:
            native_rate, native_len = f.samplerate, f.frames
            # Window length at the file's rate; resampling it gives at least `length` samples.
            native_win = length if native_rate == rate else math.ceil(length * native_rate / rate)
            if native_len < native_win:
                raise DataError(f"audio is {native_len / native_rate:.2f} s long, shorter than one "
                                f"clip ({length / rate:.2f} s)", path=path)
            start = int(center_time * native_rate) - native_win // 2
            start = min(max(start, 0), native_len - native_win)
            f.seek(start)
            window = f.read(native_win, dtype="float32", always_2d=True)  # (native_win, channels)
    except sf.SoundFileError as err:
        raise DataError(f"unreadable audio ({err})", path=path) from err
    if len(window) != native_win:
        raise DataError(f"read {len(window)} of {native_win} samples at offset {start}: file truncated?",
                        path=path)
    window = window.mean(axis=1) if window.shape[1] > 1 else window[:, 0]
    if native_rate != rate:
        if path not in _warned_rate:
            _warned_rate.add(path)
            log.warning("%s: sample rate %d Hz, resampling clips to %d Hz", path, native_rate, rate)
        g = math.gcd(rate, native_rate)
        window = resample_poly(window, rate // g, native_rate // g).astype(np.float32)[:length]
    return window


def load_detections(path: str) -> np.ndarray:
    """A CoSep detection file, validated. Returns float32 (K, 7) with K >= 1, see DETECTION_COLUMNS."""
    if not os.path.isfile(path):
        raise DataError("detection file not found", path=path)
    try:
        dets = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable detection file ({err})", path=path) from err
    ncol = len(DETECTION_COLUMNS)
    if dets.ndim != 2 or dets.shape[1] != ncol:
        raise DataError(f"detection array has shape {dets.shape}, expected (K, {ncol}) rows "
                        f"{list(DETECTION_COLUMNS)}", path=path)
    if len(dets) == 0:
        raise DataError("empty detection file (shape (0, 7)): no object was detected in any frame "
                        "of this video", path=path)
    dets = dets.astype(np.float32, copy=False)
    if not np.isfinite(dets).all():
        raise DataError("detection array holds NaN or inf", path=path)
    frame_ids = dets[:, 0]
    if (frame_ids < 1).any() or (frame_ids != np.round(frame_ids)).any():
        raise DataError("frame ids (column 0) must be integers >= 1", path=path)
    if (dets[:, 5] <= dets[:, 3]).any() or (dets[:, 6] <= dets[:, 4]).any():
        raise DataError("a box has x2 <= x1 or y2 <= y1", path=path)
    return dets


def top_boxes(dets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the box of the highest-scoring detection of any class (reference §1.3).

    Returns: frame ids int64 (F,) sorted ascending, boxes float32 (F, 4) as x1, y1, x2, y2.
    """
    order = np.lexsort((-dets[:, 2], dets[:, 0]))        # by frame, then by descending score
    frame_ids, first = np.unique(dets[order, 0].astype(np.int64), return_index=True)
    return frame_ids, np.ascontiguousarray(dets[order[first], 3:7])


def load_top_boxes(path: str) -> dict[int, tuple[int, int, int, int]]:
    """Frame id -> top box of a detection file, in whole pixels: rounded as PIL's crop rounds the
    reference's float boxes."""
    frame_ids, boxes = top_boxes(load_detections(path))
    return dict(zip(frame_ids.tolist(), map(tuple, np.rint(boxes).astype(int).tolist())))


def list_frame_ids(folder: str) -> set[int]:
    """Ids of the `%06d.jpg` frames in a frames folder."""
    return {int(name[:-4]) for name in os.listdir(folder) if name.endswith(".jpg") and name[:-4].isdigit()}


def load_frame(path: str) -> torch.Tensor:
    """A decoded jpg frame. Returns uint8 (3, H, W) (a channels-last view, which torch resizes fastest)."""
    if not os.path.isfile(path):
        raise DataError("frame not found", path=path)
    try:
        with Image.open(path) as img:
            pixels = np.array(img.convert("RGB") if img.mode != "RGB" else img)     # (H, W, 3)
    except (OSError, SyntaxError, ValueError) as err:     # PIL's decode errors
        raise DataError(f"unreadable image ({err})", path=path) from err
    return torch.from_numpy(pixels).permute(2, 0, 1)
