"""Generate a synthetic MUSIC stand-in: mp4 videos of drawn instruments played in rooms.

The generator lives in the `synthetic` package; this is its command line. With `--prepare` the
root is also made ready to train on (prepare_root): the one preparation of a root that
scripts/demo.sh, scripts/benchmark.py, scripts/gpu_figures.sh and the tests' data share.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import layout  # noqa: E402
from synthetic import DEFAULT_CLASSES, generate  # noqa: E402

# generate()'s settings, named as main's options.
VIDEO_SETTINGS = (
    "classes",
    "videos_per_class",
    "seed",
    "min_sec",
    "max_sec",
    "width",
    "height",
    "workers",
)


def prepare_root(
    root: str, index_seed: int | None = None, sep_per_video: int = 10, **videos
) -> list:
    """Makes `root` ready to train on as a user prepares a root, building only what it lacks, so
    that a root holding data is never written over:

    1. synthetic videos (`generate` with the settings `videos`, VIDEO_SETTINGS), only when the
       root holds no videos/, audio/ or frames/;
    2. frames and audio for the videos of videos/ that lack them;
    3. the index files (seeded by `index_seed`, default `seed`; `sep_per_video` test_sep.csv rows
       per test video, 0 for none), only when none of them exists;
    4. detections simulated from annotations/ (synthetic/detections.py), only when
       detection_results/ is empty.

    Returns the plans of the videos generated (none for a root that held data). Raises
    SystemExit with the reason when a step fails or cannot be taken: a root holding some index
    files but not all, or one without detections and without annotations to simulate them.
    """
    # Imported here: generating videos alone does not need the detectors' torch.
    from scripts import create_index_files, detect_objects, extract_frames_audio

    def has(folder: str) -> bool:
        path = os.path.join(root, folder)
        return os.path.isdir(path) and bool(os.listdir(path))

    plans = []
    if not any(has(folder) for folder in (layout.VIDEOS, layout.AUDIO, layout.FRAMES)):
        plans = generate(root, **videos)
    if has(layout.VIDEOS):
        if extract_frames_audio.main(["--root", root, "--workers", str(videos["workers"])]):
            raise SystemExit(f"error: extracting frames and audio failed in {root} (see above)")
    lists = list(layout.LIST_FILES.values())
    missing = [name for name in lists if not os.path.isfile(os.path.join(root, name))]
    if len(missing) == len(lists):
        create_index_files.main(
            ["--root", root, "--seed", str(videos["seed"] if index_seed is None else index_seed)]
            + ["--sep-per-video", str(sep_per_video)]
        )
    elif missing:
        raise SystemExit(
            f"error: {root} has some index files but lacks {', '.join(missing)}: it needs all "
            f"of {', '.join(lists)} (or none, and builds them with scripts/create_index_files.py)"
        )
    if not has(layout.DETECTIONS):
        if not has(layout.ANNOTATIONS):
            raise SystemExit(
                f"error: {os.path.join(root, layout.DETECTIONS)} is missing: run "
                f"scripts/detect_objects.py with a detector first (see README, 'Training and "
                f"evaluating on real MUSIC')"
            )
        detect_objects.main(["--root", root, "--from-annotations"])
    return plans


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output data root (required)")
    parser.add_argument(
        "--videos-per-class", type=int, default=12, help="videos per class (default: 12)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="non-negative seed; the same seed gives the same data (default: 0)",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=list(DEFAULT_CLASSES),
        choices=layout.MUSIC_CLASSES,
        metavar="CLASS",
        help=f"classes to generate, any of {', '.join(layout.MUSIC_CLASSES)} "
        f"(default: {' '.join(DEFAULT_CLASSES)})",
    )
    parser.add_argument(
        "--min-sec",
        type=float,
        default=20.0,
        help="shortest video duration in seconds (default: 20)",
    )
    parser.add_argument(
        "--max-sec",
        type=float,
        default=60.0,
        help="longest video duration in seconds (default: 60)",
    )
    parser.add_argument("--width", type=int, default=256, help="frame width, even (default: 256)")
    parser.add_argument("--height", type=int, default=192, help="frame height, even (default: 192)")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count(),
        help="parallel processes (default: os.cpu_count())",
    )
    parser.add_argument(
        "--prepare",
        action="store_true",
        help="make the root ready to train on, building only what it lacks: these videos only "
        "when it holds no data (a root holding data is never written over), then frames and "
        "audio, index files and simulated detections (prepare_root)",
    )
    parser.add_argument(
        "--index-seed",
        type=int,
        help="--prepare: seed of the train/val/test split and test mixtures (default: --seed)",
    )
    parser.add_argument(
        "--sep-per-video",
        type=int,
        default=10,
        help="--prepare: test_sep.csv rows per test video, 0 for none (default: 10)",
    )
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    if args.videos_per_class < 1:
        parser.error(f"--videos-per-class must be at least 1, got {args.videos_per_class}")
    if not 1.0 <= args.min_sec <= args.max_sec:
        parser.error(f"need 1 <= --min-sec <= --max-sec, got {args.min_sec} and {args.max_sec}")
    if args.width % 2 or args.height % 2 or min(args.width, args.height) < 64:
        parser.error(
            f"--width and --height must be even and at least 64 (H.264 with 4:2:0 "
            f"chroma), got {args.width}x{args.height}"
        )
    if len(set(args.classes)) != len(args.classes):
        parser.error(f"--classes lists a class twice: {' '.join(args.classes)}")

    start = time.time()
    videos = {name: getattr(args, name) for name in VIDEO_SETTINGS}
    if args.prepare:
        plans = prepare_root(
            args.out, **videos, index_seed=args.index_seed, sep_per_video=args.sep_per_video
        )
        print(f"{args.out} ready to train on after {time.time() - start:.1f} s")
        if not plans:
            return
    else:
        plans = generate(args.out, **videos)
    elapsed = time.time() - start
    per_class = Counter(p.class_name for p in plans)
    total_sec = sum(p.duration for p in plans)
    with_silent = sum(p.silent_class is not None for p in plans)
    print(
        f"Wrote {len(plans)} videos to {os.path.join(args.out, layout.VIDEOS)} "
        f"({args.width}x{args.height}, seed {args.seed}) in {elapsed:.1f} s"
    )
    for class_name in args.classes:
        print(f"  {class_name:16s} {per_class[class_name]} videos")
    print(
        f"Total duration {total_sec / 60:.1f} min; {with_silent} videos show a silent "
        f"instrument; list in {os.path.join(args.out, 'videos.json')}"
    )


if __name__ == "__main__":
    main()
