"""Generate a synthetic MUSIC stand-in: mp4 videos of drawn instruments played in rooms.

The generator lives in the `synthetic` package; this is its command line.
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
    plans = generate(
        args.out,
        args.classes,
        args.videos_per_class,
        args.seed,
        args.min_sec,
        args.max_sec,
        args.width,
        args.height,
        args.workers,
    )
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
