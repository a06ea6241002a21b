"""Throughput of the loader, the training step, both together, and the evaluation metrics.

Measures in one process: (a) loader samples/s, without and with the crop cache; (b) training-step
mixtures/s per stage on synthetic in-memory batches (the ceiling of the device alone); (c)
end-to-end training mixtures/s (DataLoader + step, the GPU's utilisation sampled on CUDA);
(d) evaluation time per mixture: forward + iSTFT, and the metrics with mir_eval and the fast path,
extrapolated to a full test list. Prints a table and writes JSON.

    python scripts/benchmark.py --quick          # CPU, tiny sizes on a generated root: < 1 minute
    python scripts/benchmark.py --device cuda --amp --data-root data/synthetic_2min \\
        --build-realistic 8
        # reference sizes (batch 48, 224 px, 3 frames, 65535 samples) on 2-minute 640x360 videos
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

import metrics  # noqa: E402
import utils  # noqa: E402
from arguments import TINY, parse_args  # noqa: E402
from dataset import MUSICMixDataset  # noqa: E402
from dataset.crop_cache import CROP_KINDS, read_manifest  # noqa: E402
from dataset.index import read_index  # noqa: E402
from scripts import cache_crops, create_index_files, detect_objects, extract_frames_audio  # noqa: E402
from stages import STAGES  # noqa: E402
from synthetic import DEFAULT_CLASSES, generate  # noqa: E402
from training import (  # noqa: E402
    build_stage,
    dataset_options,
    make_loader,
    make_optimizer,
    to_device,
    train_step,
)

# main.py flags of each size preset.
SIZES = {"reference": [], "demo": ["--profile", "demo"], "tiny": TINY}
# The generated roots: --quick's small one, and --build-realistic's MUSIC-sized videos.
QUICK_DATA = dict(
    classes=("cello", "flute", "trumpet", "xylophone"),
    videos_per_class=2,
    seconds=15,
    width=320,
    height=180,
)
REALISTIC_DATA = dict(seconds=120, width=640, height=360)
TEST_MIXTURES = 260  # MUSIC's test list (docs/method.md, Test mixtures)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def build_synthetic_root(
    root: str, classes, videos_per_class: int, seconds: float, width: int, height: int, workers: int
) -> None:
    """Generate, extract, index and detect, as a user prepares a root (train-only when tiny)."""
    generate(
        root,
        classes,
        videos_per_class,
        seed=0,
        min_sec=seconds,
        max_sec=seconds,
        width=width,
        height=height,
        workers=workers,
    )
    if extract_frames_audio.main(["--root", root, "--workers", str(workers)]):
        raise SystemExit(f"frame/audio extraction failed in {root}")
    # Fewer than 3 videos per class all go to train, which is all the benchmark reads.
    create_index_files.main(
        ["--root", root, "--sep-per-video", "0" if videos_per_class < 3 else "10"]
    )
    detect_objects.main(["--root", root, "--from-annotations"])


def ensure_crop_cache(root: str, img_size: int, mode: str, workers: int) -> tuple[str, float]:
    """The root's default cache for these crops, built if missing.

    Returns (folder, build seconds).
    """
    cache_dir = cache_crops.default_cache_dir(root, img_size, mode)
    manifest = read_manifest(cache_dir)
    if manifest is not None and manifest.get("complete"):
        return cache_dir, 0.0
    tic = time.perf_counter()
    if cache_crops.build_cache(
        root, cache_dir, [os.path.join(root, "train.csv")], img_size, mode, workers
    ):
        raise SystemExit(f"building the crop cache {cache_dir} failed (see above)")
    return cache_dir, time.perf_counter() - tic


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
        train_step(model, batch, optimizer, args, device)
    synchronize(device)
    tic = time.perf_counter()
    for _ in range(steps):
        losses = train_step(model, batch, optimizer, args, device)
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
        train_step(model, to_device(next(iterator), device), optimizer, args, device)
    synchronize(device)
    mixtures = 0
    with GpuUtilisation(device) as gpu:
        tic = time.perf_counter()
        for _ in range(timed):
            batch = next(iterator)
            mixtures += len(batch["infos"])
            train_step(model, to_device(batch, device), optimizer, args, device)
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


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------
class Report:
    """The measurements as table rows (section, name, value, unit) and as a nested JSON dict."""

    def __init__(self, config: dict):
        self.rows, self.data = [], {"config": config}

    def add(self, section: str, name: str, value: float | None, unit: str) -> None:
        # Printed at once too: a run cut short by a time limit still shows what it measured.
        self.rows.append((section, name, value, unit))
        print(f"[benchmark] {section} {name}: {value:.4g} {unit}", flush=True)

    def table(self) -> str:
        """Rows grouped by section, in the order each section first appeared."""
        order = {section: i for i, (section, *_) in reversed(list(enumerate(self.rows)))}
        rows = sorted(self.rows, key=lambda row: order[row[0]])
        width = max(len(f"{section} {name}") for section, name, _, _ in rows)
        lines = [f"{'measurement':<{width}}  {'value':>10}  unit", "-" * (width + 26)]
        for section, name, value, unit in rows:
            shown = (
                "n/a" if value is None else f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
            )
            lines.append(f"{section + ' ' + name:<{width}}  {shown:>10}  {unit}")
        return "\n".join(lines)


def run_benchmarks(opts, data_root: str, device: torch.device, report: Report) -> None:
    """(a)-(d) on a prepared data root; fills `report`."""
    cfg = report.data["config"]

    def stage_args(stage: str):
        argv = [
            *SIZES[cfg["sizes"]],
            "--stage",
            stage,
            "--data_root",
            data_root,
            "--device",
            str(device),
            "--batch_size",
            str(cfg["batch_size"]),
            "--workers",
            str(cfg["workers"]),
            *opts.main_args.split(),
            *["--amp"] * opts.amp,
            *["--compile"] * opts.compile,
            *["--channels_last"] * opts.channels_last,
        ]
        return parse_args(argv)

    first = stage_args(opts.stages[0])
    cfg.update(
        img_size=first.img_size,
        aud_len=first.aud_len,
        num_frames=first.num_frames,
        weights_imagenet=first.weights_imagenet or None,
        train_visual=first.train_visual,
    )
    warmup, steps, workers = cfg["warmup"], cfg["steps"], cfg["workers"]

    caches = {}
    if opts.crop_cache == "auto" and {"a", "c"} & set(opts.parts):
        for mode in dict.fromkeys("sop" if stage == "sop" else "ccol" for stage in opts.stages):
            caches[mode], seconds = ensure_crop_cache(
                data_root, first.img_size, mode, max(workers, 1)
            )
            report.data[f"cache_build_{mode}_s"] = seconds
            report.add("cache", f"build {CROP_KINDS[mode]}", seconds, "s (0: existed)")

    def loaders(stage: str) -> dict:
        """The loaders measured: JPEG decoding, and the crop cache when there is one."""
        mode = "sop" if stage == "sop" else "ccol"
        return {"jpeg": None, **({"cache": caches[mode]} if mode in caches else {})}

    # (a) CCoL samples (4 objects) when a CCoL-family stage is benchmarked, else SoP's.
    loader_stage = next((stage for stage in opts.stages if stage != "sop"), opts.stages[0])
    report.data["loader"] = {"stage": loader_stage}
    for name, cache in loaders(loader_stage).items() if "a" in opts.parts else ():
        result = bench_loader(stage_args(loader_stage), device, cache, warmup, steps)
        report.data["loader"][name] = result
        report.add("(a) loader", f"{name} samples/s", result["samples_per_s"], f"{workers} workers")
        report.add("(a) loader", f"{name} CPU per sample", result["cpu_ms_per_sample"], "ms")
        report.add("(a) loader", f"{name} startup", result["startup_s"], "s")

    # (b), (c), (d) on one model per stage, so that --compile compiles each stage once.
    # (d) times the separation stage evaluated at test time: CCoL unless only others are listed.
    eval_stage = next((stage for stage in ("ccol", "col", "sop") if stage in opts.stages), None)
    report.data.update(step={}, end_to_end={})
    for stage in opts.stages if {"b", "c", "d"} & set(opts.parts) else ():
        args = stage_args(stage)
        model, optimizer = stage_and_optimizer(args, device)
        if "b" in opts.parts:
            result = report.data["step"][stage] = bench_step(
                model, optimizer, args, device, warmup, steps
            )
            report.add(
                "(b) step",
                f"{stage} mixtures/s",
                result["mixtures_per_s"],
                f"batch {cfg['batch_size']}",
            )
            if "max_memory_gib" in result:
                report.add("(b) step", f"{stage} peak memory", result["max_memory_gib"], "GiB")
        report.data["end_to_end"][stage] = {}
        for name, cache in loaders(stage).items() if "c" in opts.parts else ():
            result = bench_end_to_end(model, optimizer, args, device, cache, warmup, steps)
            report.data["end_to_end"][stage][name] = result
            report.add(
                "(c) end-to-end",
                f"{stage} {name} mixtures/s",
                result["mixtures_per_s"],
                f"{workers} workers",
            )
            if "gpu_util_percent" in result:
                report.add(
                    "(c) end-to-end", f"{stage} {name} GPU util", result["gpu_util_percent"], "%"
                )
        if stage == eval_stage and "d" in opts.parts:
            result = bench_eval(model, args, device, cfg["mir_eval_mixtures"], repeats=steps)
            report.data["eval"] = {"stage": stage, **result}
            report.add(
                "(d) eval",
                f"{stage} forward+iSTFT",
                1e3 * result["forward_istft_s_per_mixture"],
                "ms/mixture",
            )
            for backend in ("fast", "mir_eval"):
                report.add(
                    "(d) eval",
                    f"metrics {backend}",
                    1e3 * result[f"metrics_{backend}_s_per_mixture"],
                    "ms/mixture",
                )
                report.add(
                    "(d) eval",
                    f"{TEST_MIXTURES} mixtures {backend}",
                    result[f"test_list_{backend}_min"],
                    "min, extrapolated",
                )
        del model, optimizer


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="CPU, tiny sizes, a small generated root in a temp folder, few steps (< 1 minute)",
    )
    p.add_argument(
        "--data-root", help="data root (default: data/synthetic; --quick: a generated temp root)"
    )
    p.add_argument(
        "--build-realistic",
        type=int,
        default=0,
        metavar="N",
        help="first generate N videos per class of 2 minutes at 640x360 into --data-root, "
        "unless it already has train.csv (default: 0, use the root as it is)",
    )
    p.add_argument(
        "--device", default="auto", help="auto, cpu, cuda, cuda:1 (default: auto; --quick: cpu)"
    )
    p.add_argument(
        "--sizes",
        choices=sorted(SIZES),
        help="model and data sizes (default: tiny with --quick, else reference)",
    )
    p.add_argument(
        "--main-args",
        default="",
        help="extra main.py flags, e.g. '--train_visual no' (default: none)",
    )
    p.add_argument(
        "--stages",
        nargs="+",
        default=["grd", "col", "ccol", "sop"],
        choices=sorted(STAGES),
        help="stages measured (default: grd col ccol sop)",
    )
    p.add_argument(
        "--parts",
        nargs="+",
        default=list("abcd"),
        choices=list("abcd"),
        help="measurements: a loader, b step, c end-to-end, d evaluation (default: a b c d)",
    )
    p.add_argument(
        "--batch-size", type=int, help="mixtures per step (default: 48 on CUDA, 4 on CPU)"
    )
    p.add_argument("--workers", type=int, help="DataLoader workers (default: 16 on CUDA, 2 on CPU)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast, as main.py --amp")
    p.add_argument(
        "--compile", action="store_true", help="torch.compile the stage, as main.py --compile"
    )
    p.add_argument(
        "--channels-last", action="store_true", help="stage module in channels-last memory format"
    )
    p.add_argument(
        "--crop-cache",
        default="auto",
        choices=["auto", "none"],
        help=(
            "auto: also measure with the root's default crop cache, built if missing "
            "(default: auto)"
        ),
    )
    p.add_argument(
        "--steps", type=int, help="timed steps or batches per measurement (default: 20; --quick: 2)"
    )
    p.add_argument("--warmup", type=int, help="untimed steps first (default: 5; --quick: 1)")
    p.add_argument(
        "--mir-eval-mixtures",
        type=int,
        help=(
            "mixtures timed with mir_eval, seconds each at reference sizes (default: 4; --quick: 1)"
        ),
    )
    p.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads of this process (default: torch's; --quick: 1, because on a busy "
        "small CPU multi-threaded steps stall for seconds in thread barriers)",
    )
    p.add_argument("--json", help="output file (default: ckpt/benchmark_<sizes>_<device>.json)")
    return p


def main(argv=None) -> int:
    opts = build_parser().parse_args(argv)
    device = utils.select_device("cpu" if opts.quick else opts.device)
    cuda = device.type == "cuda"
    sizes = opts.sizes or ("tiny" if opts.quick else "reference")
    config = {
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if cuda else None,
        "sizes": sizes,
        "batch_size": opts.batch_size or (48 if cuda else 4),
        "workers": opts.workers if opts.workers is not None else (16 if cuda else 2),
        "steps": opts.steps or (2 if opts.quick else 20),
        "warmup": opts.warmup if opts.warmup is not None else (1 if opts.quick else 5),
        "mir_eval_mixtures": opts.mir_eval_mixtures or (1 if opts.quick else 4),
        "amp": opts.amp,
        "compile": opts.compile,
        "channels_last": opts.channels_last,
        "stages": opts.stages,
        "parts": opts.parts,
        "main_args": opts.main_args,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
    }
    threads = opts.threads or (1 if opts.quick else None)
    if threads:
        torch.set_num_threads(threads)
    config["threads"] = torch.get_num_threads()
    report = Report(config)
    output = opts.json or os.path.join(REPO, "ckpt", f"benchmark_{sizes}_{device.type}.json")
    # Every stage built would repeat models' "RANDOMLY initialised" warning; config records the
    # weights.
    logging.getLogger("models").setLevel(logging.ERROR)
    started = time.perf_counter()
    temp_root = (
        tempfile.mkdtemp(prefix="ccol_benchmark_") if opts.quick and not opts.data_root else None
    )
    default_root = os.path.join(REPO, "data", "synthetic")
    data_root = os.path.join(temp_root, "data") if temp_root else opts.data_root or default_root
    config["data_root"] = data_root
    try:
        tic = time.perf_counter()
        if temp_root:
            build_synthetic_root(data_root, workers=2, **QUICK_DATA)
        elif opts.build_realistic and not os.path.isfile(os.path.join(data_root, "train.csv")):
            build_synthetic_root(
                data_root,
                DEFAULT_CLASSES,
                opts.build_realistic,
                workers=os.cpu_count(),
                **REALISTIC_DATA,
            )
        report.data["data_build_s"] = time.perf_counter() - tic
        report.add("data", "build root", report.data["data_build_s"], "s")
        utils.seed_everything(0)
        run_benchmarks(opts, data_root, device, report)
    finally:
        # Whatever was measured is reported, also when a later measurement failed.
        if temp_root:
            shutil.rmtree(temp_root, ignore_errors=True)
        report.data["total_s"] = time.perf_counter() - started
        report.add("total", "benchmark time", report.data["total_s"], "s")
        print(
            f"\n{config['device']}{' (' + config['gpu'] + ')' if cuda else ''}, sizes {sizes} "
            f"({config.get('img_size')} px, {config.get('num_frames')} frames, "
            f"{config.get('aud_len')} samples), "
            f"batch {config['batch_size']}, {config['workers']} workers, amp {opts.amp}, "
            f"compile {opts.compile}, "
            f"channels-last {opts.channels_last}, {config['threads']} threads, "
            f"load average {config['load_avg_1min']:.1f} on {config['cpus']} CPUs"
        )
        print(report.table())
        os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
        utils.atomic_write_json(report.data, output)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
