"""Throughput of the loader, the training step, both together, and the evaluation metrics.

Measures in one process: (a) loader samples/s, without and with the crop cache; (b) training-step
mixtures/s per stage on synthetic in-memory batches (the ceiling of the device alone); (c)
end-to-end training mixtures/s (DataLoader + step, the GPU's utilisation sampled on CUDA);
(d) evaluation time per mixture: forward + iSTFT, and the metrics with mir_eval and the fast path,
extrapolated to a full test list. Prints a table and writes JSON. The measurements are
throughput.py's; this script prepares the data root and the stages' arguments and reports.

    python scripts/benchmark.py --quick          # CPU, tiny sizes on a generated root: < 1 minute
    python scripts/benchmark.py --device cuda --amp --data-root data/synthetic_2min \\
        --build-realistic 8
        # reference sizes (batch 48, 224 px, 3 frames, 65535 samples) on 2-minute 640x360 videos
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import torch  # noqa: E402

import utils  # noqa: E402
from arguments import TINY, parse_args  # noqa: E402
from dataset import layout  # noqa: E402
from dataset.crop_cache import crop_kind, default_cache_dir, read_manifest  # noqa: E402
from scripts import cache_crops, make_synthetic_music  # noqa: E402
from stages import STAGES  # noqa: E402
from synthetic import DEFAULT_CLASSES  # noqa: E402
from throughput import (  # noqa: E402
    TEST_MIXTURES,
    bench_end_to_end,
    bench_eval,
    bench_loader,
    bench_step,
    stage_and_optimizer,
)

# main.py flags of each size preset.
SIZES = {"reference": [], "demo": ["--profile", "demo"], "tiny": TINY}
# The generated roots: --quick's small one, and --build-realistic's MUSIC-sized videos.
QUICK_DATA = dict(
    classes=("cello", "flute", "trumpet", "xylophone"),
    videos_per_class=2,
    min_sec=15,
    max_sec=15,
    width=320,
    height=180,
)
REALISTIC_DATA = dict(min_sec=120, max_sec=120, width=640, height=360)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def build_synthetic_root(
    root: str, videos_per_class: int, workers: int, classes=DEFAULT_CLASSES, **videos
) -> None:
    """A generated root prepared as a user prepares one (make_synthetic_music.prepare_root), only
    what `root` lacks; with fewer than 3 videos per class every video is in train, which is all
    the benchmark reads, and there are no test mixtures."""
    make_synthetic_music.prepare_root(
        root,
        sep_per_video=0 if videos_per_class < 3 else 10,
        classes=classes,
        videos_per_class=videos_per_class,
        seed=0,
        workers=workers,
        **videos,
    )


def ensure_crop_cache(
    root: str, img_size: int, mode: str, workers: int, box_rule: str
) -> tuple[str, float]:
    """The root's default cache for these crops (and object box rule), built if missing.

    Returns (folder, build seconds).
    """
    cache_dir = default_cache_dir(root, img_size, mode, box_rule)
    manifest = read_manifest(cache_dir)
    if manifest is not None and manifest.get("complete"):
        return cache_dir, 0.0
    tic = time.perf_counter()
    if cache_crops.build_cache(
        root, cache_dir, [layout.list_path(root, "train")], img_size, mode, workers, box_rule
    ):
        raise SystemExit(f"building the crop cache {cache_dir} failed (see above)")
    return cache_dir, time.perf_counter() - tic


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
        train_resnets=first.train_resnets,
    )
    warmup, steps, workers = cfg["warmup"], cfg["steps"], cfg["workers"]

    caches = {}
    if opts.crop_cache == "auto" and {"a", "c"} & set(opts.parts):
        for mode in dict.fromkeys("sop" if stage == "sop" else "ccol" for stage in opts.stages):
            caches[mode], seconds = ensure_crop_cache(
                data_root, first.img_size, mode, max(workers, 1), first.box_rule
            )
            report.data[f"cache_build_{mode}_s"] = seconds
            kind = crop_kind(mode, first.box_rule)
            report.add("cache", f"build {kind}", seconds, "s (0: existed)")

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
        help="first prepare --data-root with N generated videos per class of 2 minutes at "
        "640x360, building only what it lacks: no videos into a root holding data (default: 0, "
        "use the root as it is)",
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
        help="extra main.py flags, e.g. '--no-train_resnets' (default: none)",
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
        elif opts.build_realistic:
            build_synthetic_root(
                data_root, opts.build_realistic, workers=os.cpu_count(), **REALISTIC_DATA
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
