"""Run plumbing shared by main.py and the scripts: device, distribution, seeding, logging, files."""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import logging
import math
import os
import random
import sys
import tempfile
from collections.abc import Callable

import numpy as np
import torch
import torch.distributed as dist

log = logging.getLogger("ccol")


# ----------------------------------------------------------------------------------------------
# Device and distribution
# ----------------------------------------------------------------------------------------------
def init_distributed(device: str = "auto") -> tuple[int, int, int]:
    """Join the process group when launched by torchrun, on one node or several; returns
    (rank, local_rank, world_size).

    torchrun sets WORLD_SIZE (the processes of every node), RANK (this one among them: rank 0
    alone writes the run folder) and LOCAL_RANK (among this node's processes: the GPU it drives),
    and MASTER_ADDR / MASTER_PORT, where init_process_group meets the others. NCCL on CUDA, gloo
    when `device` (--device) is the CPU or no GPU is present.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return 0, 0, 1
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise SystemExit(
                f"rank {rank}: local rank {local_rank} but this node has "
                f"{torch.cuda.device_count()} GPUs: start at most that many processes per node "
                f"(torchrun --nproc_per_node, NUM_GPUS)"
            )
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
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
        raise SystemExit(
            f"--device {name}: CUDA is not available on this machine (use --device cpu)"
        )
    return device


class Averager:
    """Count-weighted means of named values, e.g. a batch's mean losses weighted by its samples,
    so that training and evaluation average over samples whatever the batch sizes.

    The sums keep the type `add` was given: device tensors accumulate without a host sync, and
    `means()` converts once.
    """

    def __init__(self):
        self.sums: dict = {}
        self.count = 0

    def add(self, values: dict, count: int) -> None:
        """`values` are means over `count` samples."""
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + v * count
        self.count += count

    def means(self) -> dict[str, float]:
        return {k: float(v) / self.count for k, v in self.sums.items()}

    def reduce(self) -> Averager:
        """The sums and counts of every process (itself without distribution); a process that saw
        nothing (an empty evaluation shard) adds nothing."""
        if not dist.is_initialized():
            return self
        total = Averager()
        own = {k: float(v) for k, v in self.sums.items()}
        for sums, count in gather_objects([(own, self.count)]):
            for k, v in sums.items():
                total.sums[k] = total.sums.get(k, 0.0) + v
            total.count += count
        return total


def gather_objects(items: list) -> list:
    """Concatenate python lists from all processes (identity without distribution)."""
    if not dist.is_initialized():
        return items
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, items)
    return [x for part in parts for x in part]


def every_rank_has(present: bool, device: torch.device) -> bool:
    """Whether every process has a batch for this step (`present` without distribution).

    A step one process skips must be skipped by all: the others would otherwise wait forever in
    DistributedDataParallel's gradient all-reduce.
    """
    if not dist.is_initialized():
        return present
    flag = torch.tensor(float(present), device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


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
    return {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


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
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers or [logging.NullHandler()],
        force=True,
    )


# ----------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------
class WriteError(RuntimeError):
    """A file could not be written; the message names the path and the cause."""


def _file_mode() -> int:
    """What open() gives a new file: 0o666 less the process umask (mkstemp's files are 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def describe_write_error(path: str, err: OSError) -> str:
    if err.errno == errno.ENOSPC:
        return f"no space left on {path}: free some space and run again"
    if err.errno == errno.EROFS:
        return f"cannot write {path}: read-only file system"
    if err.errno in (errno.EACCES, errno.EPERM):
        return f"cannot write {path}: permission denied"
    return f"cannot write {path}: {err.strerror or err}"


class _KeepErrors:
    """A binary file that remembers its write error: torch.save turns one into an opaque
    RuntimeError ("unexpected pos ..." or "basic_ios::clear"), losing ENOSPC."""

    def __init__(self, f):
        self.f, self.error = f, None

    def write(self, data):
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self):
        self.f.flush()

    def __getattr__(self, name):  # seek, tell, read...: what soundfile and PIL also call
        return getattr(self.f, name)


def atomic_write(path: str, write: Callable, text: bool = False) -> None:
    """The one way files of a run are written: `write(f)` fills a temp file beside `path`, which
    then replaces it, so a killed run never leaves half a file and a failed write keeps the
    previous one.

    The file gets the user's umask permissions. Raises WriteError naming `path` and the cause.
    """
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(
            dir=os.path.dirname(os.path.abspath(path)),
            prefix=".tmp_",
            suffix="_" + os.path.basename(path),
        )
        with os.fdopen(fd, "w" if text else "wb", **({"encoding": "utf-8"} if text else {})) as f:
            sink = _KeepErrors(f)
            try:
                write(sink)
            except RuntimeError:
                if sink.error is None:
                    raise
                raise sink.error from None
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise WriteError(describe_write_error(path, err)) from err
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)


def atomic_torch_save(obj, path: str) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_json(obj, path: str) -> None:
    atomic_write(path, lambda f: json.dump(obj, f, indent=2, default=_json_default), text=True)


def atomic_save_npy(array: np.ndarray, path: str) -> None:
    atomic_write(path, lambda f: np.save(f, array))


def atomic_write_csv(rows: list[dict], path: str) -> None:
    """One CSV row per dict; the columns are the union of the rows' keys in first-seen order, blank
    where a row lacks one."""
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))

    def write(f):
        writer = csv.DictWriter(f, fieldnames=fieldnames, restval="")
        writer.writeheader()
        writer.writerows(rows)

    atomic_write(path, write, text=True)


class RunInUse(RuntimeError):
    """Another process holds the lock of a run folder."""


@contextlib.contextmanager
def run_lock(folder: str, shared: bool = False):
    """Holds a lock on the run folder `folder` for the block: exclusive for a training, shared for
    an evaluation.

    A second training of the same run would interleave its args.json and checkpoints with the
    first's and lose one of them, and an evaluation beside a training would score weights that
    change under it, so either is refused with RunInUse (naming the training's pid). Evaluations
    of one run write different files (results.json, results_silent.json, ...) and may run side by
    side, as the demo runs them. The kernel drops the lock when its holder dies (even by kill -9):
    a crashed run never leaves a stale lock behind, and `--resume` just works. The lock file, which
    holds a training's pid while it runs, lies beside the folder (`.<name>.lock`), so that a
    refused run changes nothing in it.
    """
    parent, name = os.path.split(os.path.abspath(folder))
    path = os.path.join(parent, f".{name}.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _file_mode())
    except OSError as err:  # the run could write nothing there either: name the folder
        raise WriteError(describe_write_error(folder, err)) from err
    locked = False
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            raise RunInUse(
                f"{folder} is in use by "
                + (f"pid {holder} (a training of this run)" if holder else "an evaluation of it")
                + ": wait for it to finish, or choose another --id"
            ) from None
        except OSError as err:  # a file system without locks: say what is not protected
            log.warning("cannot lock %s (%s): a second run of this id is not refused", path, err)
        if not shared:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as err:
                raise WriteError(describe_write_error(folder, err)) from err
        yield
    finally:
        if locked and not shared:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no pid left behind for evaluations to be mistaken for
        os.close(fd)  # releases the lock


def check_writable(folder: str) -> None:
    """Create and remove a file in `folder`: a read-only disk is found before any compute."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".tmp_probe_")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise WriteError(describe_write_error(folder, err)) from err


def make_dirs(folder: str) -> None:
    """os.makedirs(exist_ok=True), failing with WriteError (a read-only --ckpt, a full disk)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise WriteError(describe_write_error(folder, err)) from err


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def finite_or_none(x: float):
    """JSON has no NaN/inf: write them as null."""
    return float(x) if x is not None and math.isfinite(x) else None
