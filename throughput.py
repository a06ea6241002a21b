"""Throughput measurements of a stage: the loader, the training step, both together, and the
evaluation metrics (scripts/benchmark.py runs them on a data root and reports them).

(a) training.make_loader's loader alone, (b) the training step on an in-memory batch (the
device's ceiling), (c) the loader feeding the step, (d) forward + iSTFT and the metrics per
mixture. Datasets, stages and optimisers are built by training.py, as main.py builds them.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import time

import torch

import metrics
import utils
from dataset import MUSICMixDataset
from dataset.index import read_index
from training import (
    build_stage,
    dataset_options,
    make_loader,
    make_optimizer,
    to_device,
    train_step,
)

TEST_MIXTURES = 260  # MUSIC's test list (docs/method.md, Test mixtures)


# ----------------------------------------------------------------------------------------------
# Loader
# ----------------------------------------------------------------------------------------------
def train_dataset(args, crop_cache: str | None, num_samples: int) -> MUSICMixDataset:
    """training.make_dataset(args, 'train') with the crop cache chosen here and exactly
    `num_samples` samples: a small root is repeated enough, and the workers make no sample that is
    not timed (their CPU time is then all spent on measured samples)."""
    videos = len(read_index(args.list_train))
    options = {**dataset_options(args), "crop_cache": crop_cache}
    return MUSICMixDataset(
        args.data_root,
        args.list_train,
        "train",
        dup_trainset=-(-num_samples // videos),
        max_samples=num_samples,
        **options,
    )


def cpu_seconds() -> float:
    """CPU time of this process and of its reaped children (DataLoader workers once joined)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def loader_rounds(workers: int, warmup: int, steps: int) -> tuple[int, int]:
    """(untimed, timed) batches for a measurement fed by a DataLoader.

    All workers start together, so their first batches arrive in one burst: timing from the
    first batch on would count a round of batches made during startup. The untimed part therefore
    covers one round (a batch per worker) and the timed part at least two.
    """
    return max(warmup, workers, 1), max(steps, 2 * workers)


def bench_loader(
    args, device: torch.device, crop_cache: str | None, warmup: int, steps: int
) -> dict:
    """(a) training.make_loader's train loader alone: samples/s in steady state, startup and CPU
    cost."""
    untimed, timed = loader_rounds(args.workers, warmup, steps)
    dataset = train_dataset(args, crop_cache, (untimed + timed) * args.batch_size_per_gpu)
    loader = make_loader(dataset, args, device, train=True)
    cpu_start, tic = cpu_seconds(), time.perf_counter()
    iterator = iter(loader)
    samples = len(next(iterator)["infos"])
    startup = time.perf_counter() - tic
    for _ in range(untimed - 1):
        samples += len(next(iterator)["infos"])
    timed_samples, tic = 0, time.perf_counter()
    for _ in range(timed):
        timed_samples += len(next(iterator)["infos"])
    seconds = time.perf_counter() - tic
    del iterator  # joins the (idle) workers, so that their CPU time is counted
    cpu_ms = 1e3 * (cpu_seconds() - cpu_start) / (samples + timed_samples)
    return {
        "samples_per_s": timed_samples / seconds,
        "startup_s": startup,
        "cpu_ms_per_sample": cpu_ms,
        "timed_batches": timed,
    }


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------
def stage_and_optimizer(args, device: torch.device):
    """The stage module as main.py builds it (compiled with --compile) and its optimiser."""
    nets, stage = build_stage(args, device)
    optimizer = make_optimizer(nets, args)
    return torch.compile(stage) if args.compile else stage, optimizer


def synthetic_batch(args, batch_size: int, device: torch.device, seed: int = 0) -> dict:
    """A training batch on the device: random clips (silent objects zero), random uint8 crops."""
    g = torch.Generator().manual_seed(seed)
    B, N, L, T, S = batch_size, args.num_mix, args.aud_len, args.num_frames, args.img_size
    sounding = torch.ones(B, N, dtype=torch.bool)
    if args.stage != "sop":
        sounding[:, 1::2] = False
    audios = 0.1 * torch.randn(B, N, L, generator=g) * sounding[..., None]
    frames = torch.randint(0, 256, (B, N, 3, T, S, S), generator=g, dtype=torch.uint8)
    batch = {"audios": audios, "mix": audios.sum(1), "frames": frames, "sounding": sounding}
    return to_device(batch, device)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_step(model, optimizer, args, device: torch.device, warmup: int, steps: int) -> dict:
    """(b) mixtures/s of the training step on one in-memory batch: no loading, no copies."""
    model.train()
    batch = synthetic_batch(args, args.batch_size_per_gpu, device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):  # compilation, cuDNN autotuning, allocator growth
        train_step(model, batch, optimizer, device, args.amp)
    synchronize(device)
    tic = time.perf_counter()
    for _ in range(steps):
        losses = train_step(model, batch, optimizer, device, args.amp)
    synchronize(device)
    seconds = time.perf_counter() - tic
    result = {
        "mixtures_per_s": steps * args.batch_size_per_gpu / seconds,
        "step_ms": 1e3 * seconds / steps,
        "loss": float(losses["total"].detach()),
    }
    if device.type == "cuda":
        result["max_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return result


class GpuUtilisation:
    """Samples nvidia-smi's utilization.gpu every 200 ms while in the block; `mean` afterwards."""

    def __init__(self, device: torch.device):
        self.command = None
        if device.type == "cuda" and shutil.which("nvidia-smi"):
            index = device.index if device.index is not None else torch.cuda.current_device()
            visible = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")
            # nvidia-smi numbers GPUs physically; CUDA_VISIBLE_DEVICES renumbers them for torch.
            physical = (
                visible[index] if index < len(visible) and visible[index].strip() else str(index)
            )
            self.command = [
                "nvidia-smi",
                "--query-gpu=utilization.gpu",
                "--format=csv,noheader,nounits",
                "-lms",
                "200",
                "-i",
                physical.strip(),
            ]
        self.mean = None

    def __enter__(self):
        self.process = (
            subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
            if self.command
            else None
        )
        return self

    def __exit__(self, *exc):
        if self.process is None:
            return
        self.process.terminate()
        output, _ = self.process.communicate()
        values = [
            float(line) for line in output.split() if line.strip().replace(".", "", 1).isdigit()
        ]
        self.mean = statistics.fmean(values) if values else None


def bench_end_to_end(
    model, optimizer, args, device: torch.device, crop_cache: str | None, warmup: int, steps: int
) -> dict:
    """(c) training.make_loader's loader feeding the step: mixtures/s in steady state.

    See loader_rounds.
    """
    untimed, timed = loader_rounds(args.workers, warmup, steps)
    model.train()
    dataset = train_dataset(args, crop_cache, (untimed + timed) * args.batch_size_per_gpu)
    loader = make_loader(dataset, args, device, train=True)
    iterator = iter(loader)
    for _ in range(untimed):
        train_step(model, to_device(next(iterator), device), optimizer, device, args.amp)
    synchronize(device)
    mixtures = 0
    with GpuUtilisation(device) as gpu:
        tic = time.perf_counter()
        for _ in range(timed):
            batch = next(iterator)
            mixtures += len(batch["infos"])
            train_step(model, to_device(batch, device), optimizer, device, args.amp)
        synchronize(device)
        seconds = time.perf_counter() - tic
    del iterator
    result = {"mixtures_per_s": mixtures / seconds, "timed_steps": timed}
    if gpu.mean is not None:
        result["gpu_util_percent"] = gpu.mean
    return result


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
def score_mixtures(refs, ests, mix, backend: str) -> None:
    """What evaluation.separation_records computes per batch: the sources' scores and the mixture
    baseline (both return numpy arrays, so the device is synchronised)."""
    metrics.separation_metrics(refs, ests, backend=backend)
    metrics.mixture_sdr(refs, mix, backend=backend)


def bench_eval(model, args, device: torch.device, mir_eval_mixtures: int, repeats: int) -> dict:
    """(d) seconds per mixture: forward + iSTFT, and separation_records' metrics per backend."""
    model.eval()
    batch = synthetic_batch(args, args.batch_size_per_gpu, device, seed=1)
    B = args.batch_size_per_gpu

    def forward():
        with (
            torch.no_grad(),
            torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp),
        ):
            _, out = model(batch)
        return utils.unwrap(model).frontend.reconstruct(
            out["pred_masks"], out, args.aud_len
        )  # (B, N, L)

    est = forward()  # warm-up
    synchronize(device)
    tic = time.perf_counter()
    for _ in range(repeats):
        est = forward()
    synchronize(device)
    forward_s = (time.perf_counter() - tic) / (repeats * B)

    sounding = batch["sounding"]
    S = int(sounding[0].sum())
    refs = batch["audios"][sounding].view(B, S, -1)  # (B, S, L)
    ests = est[sounding].view(B, S, -1)
    result = {"forward_istft_s_per_mixture": forward_s}
    for backend, count in (("fast", B), ("mir_eval", min(mir_eval_mixtures, B))):
        mixtures = (refs[:count], ests[:count], batch["mix"][:count])
        if backend == "fast":
            score_mixtures(*mixtures, backend)  # warm-up: CUDA kernels, FFT plans
        tic = time.perf_counter()
        score_mixtures(*mixtures, backend)
        per_mixture = (time.perf_counter() - tic) / count
        result[f"metrics_{backend}_s_per_mixture"] = per_mixture
        result[f"test_list_{backend}_min"] = TEST_MIXTURES * (forward_s + per_mixture) / 60
    return result
