"""Run plumbing shared by main.py and the scripts: device, distribution, seeding, logging, checkpoints."""
from __future__ import annotations

import json
import logging
import math
import os
import random
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger("ccol")


# ----------------------------------------------------------------------------------------------
# Device and distribution
# ----------------------------------------------------------------------------------------------
def init_distributed() -> tuple[int, int, int]:
    """Start torch.distributed when launched by torchrun; returns (rank, local_rank, world_size)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 0, 1
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return rank, local_rank, world_size


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def select_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and dist.is_initialized():
        name = f"cuda:{local_rank}"
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    return device


def all_reduce_mean(values: dict[str, float]) -> dict[str, float]:
    """Average a dict of floats over processes (identity without distribution)."""
    if not dist.is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(t)
    return {k: v / dist.get_world_size() for k, v in zip(keys, t.tolist())}


def gather_objects(items: list) -> list:
    """Concatenate python lists from all processes (identity without distribution)."""
    if not dist.is_initialized():
        return items
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]


def unwrap(module: torch.nn.Module) -> torch.nn.Module:
    """The bare module under DataParallel / DistributedDataParallel / torch.compile wrappers."""
    while True:
        if hasattr(module, "module"):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


# ----------------------------------------------------------------------------------------------
# Reproducibility and logging
# ----------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def setup_logging(run_dir: str | None = None) -> None:
    """Log to stdout (rank 0 only) and, when given, to <run_dir>/train.log."""
    handlers: list[logging.Handler] = []
    if is_main_process():
        handlers.append(logging.StreamHandler(sys.stdout))
        if run_dir:
            handlers.append(logging.FileHandler(os.path.join(run_dir, "train.log")))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        handlers=handlers or [logging.NullHandler()], force=True)


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
def atomic_torch_save(obj, path: str) -> None:
    """Write to a temp file in the same folder, then rename: a killed run never leaves half a file."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".pt")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_json(obj, path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp_", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(obj, f, indent=2, default=_json_default)
    os.replace(tmp, path)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def finite_or_none(x: float):
    """JSON has no NaN/inf: write them as null."""
    return float(x) if x is not None and math.isfinite(x) else None


class CheckpointError(RuntimeError):
    pass


def load_checkpoint(path: str) -> dict:
    """Load a checkpoint file with a clear error for missing or damaged files."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(f"checkpoint {path} is unreadable (truncated or not a torch file): {e}") from e


def load_state_strict(net: torch.nn.Module, state: dict, what: str) -> None:
    """load_state_dict that names the network and the first mismatching keys/shapes."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
             for k in own if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        details = "; ".join(filter(None, [
            f"missing {missing[:3]}" if missing else "",
            f"unexpected {unexpected[:3]}" if unexpected else "",
            f"shape mismatch {wrong[:3]}" if wrong else ""]))
        raise CheckpointError(f"{what} does not match this architecture ({details}); "
                              f"check the architecture flags (ngf, vis_width, num_channels, ...)")
    net.load_state_dict(state)
