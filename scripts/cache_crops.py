"""Build the crop cache of a data root: every frame's object crop resized once and stored as uint8.

    python scripts/cache_crops.py --root data/MUSIC --img-size 224 [--mode ccol] [--workers 8]

Then train with the cache (main.py --crop_cache FOLDER): the loader decodes no JPEG. The cache
holds the videos of the root's train/val/test.csv (or --lists); rerunning skips the videos already
cached, so an interrupted build resumes. Format and storage: dataset/crop_cache.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from multiprocessing import Pool

import torch
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402
from dataset import DataError, layout  # noqa: E402
from dataset.crop_cache import (  # noqa: E402
    CACHE_FORMAT,
    CROP_KINDS,
    MANIFEST,
    build_video,
    crop_kind,
    default_cache_dir,
    is_cached,
    make_manifest,
    read_manifest,
)
from dataset.index import read_index  # noqa: E402
from dataset.readers import BOX_RULES  # noqa: E402


def _build_task(task) -> tuple[int, str | None]:
    """(bytes written, error message or None) of one video."""
    root, cache_dir, video, img_size, mode, box_rule = task
    try:
        return build_video(root, cache_dir, video, img_size, mode, box_rule), None
    except DataError as err:
        return 0, str(err)


def _init_worker() -> None:
    torch.set_num_threads(1)  # parallelism comes from the processes


def build_cache(
    root: str,
    cache_dir: str,
    lists: list[str],
    img_size: int,
    mode: str,
    workers: int,
    box_rule: str = "frame",
) -> int:
    """Caches every video of `lists` not cached yet; returns the number of videos that failed."""
    manifest = read_manifest(cache_dir)
    wanted = make_manifest(root, img_size, mode, complete=False, box_rule=box_rule)
    if manifest is not None and any(
        manifest.get(k) != wanted[k] for k in ("format", "img_size", "crops")
    ):
        sys.exit(
            f"error: {cache_dir} holds a cache for img_size {manifest.get('img_size')}, "
            f"{manifest.get('crops')} crops (format {manifest.get('format')}, this build writes "
            f"format {CACHE_FORMAT}); choose another --out, or delete that folder"
        )
    os.makedirs(cache_dir, exist_ok=True)
    # Marked incomplete while building: a dataset refuses a cache whose build did not finish.
    utils.atomic_write_json(wanted, os.path.join(cache_dir, MANIFEST))

    videos = {}
    for path in lists:
        for video in read_index(path):
            if video.frames not in videos or video.num_frames > videos[video.frames].num_frames:
                videos[video.frames] = video
    # New, stale (frames or detections changed since) or unfinished videos.
    todo = [v for v in videos.values() if not is_cached(cache_dir, v, root)]
    print(
        f"{len(videos)} videos in {', '.join(lists)}: {len(videos) - len(todo)} already cached, "
        f"{len(todo)} to build (new, unfinished, or whose frames or detections changed; "
        f"{crop_kind(mode, box_rule)} crops, img_size {img_size}) in "
        f"{cache_dir}"
    )
    tasks = [(root, cache_dir, v, img_size, mode, box_rule) for v in todo]
    progress = dict(total=len(tasks), desc="cache", unit="video")
    start, written, failures = time.time(), 0, []
    with Pool(max(1, workers), initializer=_init_worker) as pool:
        for size, error in tqdm(pool.imap_unordered(_build_task, tasks), **progress):
            written += size
            if error is not None:
                failures.append(error)
    print(
        f"built {len(todo) - len(failures)} videos ({written / 2**20:.1f} MiB) "
        f"in {time.time() - start:.1f} s"
    )
    if failures:
        print(f"{len(failures)} videos failed; the cache stays marked incomplete:", file=sys.stderr)
        for error in failures:
            print(f"  {error}", file=sys.stderr)
        return len(failures)
    utils.atomic_write_json(
        make_manifest(root, img_size, mode, complete=True, box_rule=box_rule),
        os.path.join(cache_dir, MANIFEST),
    )
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--root", required=True, help="data root with frames/, detection_results/ and index CSVs"
    )
    parser.add_argument(
        "--img-size",
        type=int,
        required=True,
        help="crop side S the model trains on (main.py --img_size)",
    )
    parser.add_argument(
        "--mode",
        default="ccol",
        choices=sorted(CROP_KINDS),
        help="ccol: top detection box per frame; sop: whole frames (default: ccol)",
    )
    parser.add_argument(
        "--box-rule",
        default="frame",
        choices=BOX_RULES,
        help="ccol: the frame's top box of any class (frame, the authors' loader) or the box of "
        "the class surest over the whole video (video); main.py --box_rule (default: frame)",
    )
    parser.add_argument(
        "--out",
        help="cache folder (default: ROOT/crop_cache/<top_box|video_box|full_frame>_<S>)",
    )
    parser.add_argument(
        "--lists",
        nargs="+",
        help="index files whose videos are cached (default: ROOT/{train,val,test}.csv that exist)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count(),
        help="parallel processes (default: os.cpu_count())",
    )
    args = parser.parse_args(argv)
    lists = args.lists or list(layout.root_lists(args.root).values())
    if not lists:
        parser.error(
            f"no index file in {args.root}; run scripts/create_index_files.py or pass --lists"
        )
    cache_dir = args.out or default_cache_dir(args.root, args.img_size, args.mode, args.box_rule)
    failed = build_cache(
        args.root, cache_dir, lists, args.img_size, args.mode, args.workers, args.box_rule
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
