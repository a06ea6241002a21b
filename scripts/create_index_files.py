"""Builds a data root's disjoint, class-stratified train/val/test.csv and seeded test_sep.csv."""

import argparse
import glob
import os
import random
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dataset import layout  # noqa: E402
from dataset.index import (  # noqa: E402
    IndexEntry,
    draw_partners,
    format_split_table,
    group_by_class,
    scan_index,
    split_overlaps,
    write_index,
    write_sep_list,
)
from dataset.readers import list_frame_ids  # noqa: E402

SEP_FILE = layout.LIST_FILES["sep"]


def existing_lists(out: str) -> list[str]:
    return [name for name in layout.LIST_FILES.values() if os.path.isfile(os.path.join(out, name))]


def back_up(out: str, names: list[str]) -> str:
    """Copies of the lists about to be replaced, in <out>/index_backup/<time>/: runs trained on
    them can still be evaluated on the splits they were trained with."""
    folder = os.path.join(out, "index_backup", time.strftime("%Y%m%d-%H%M%S"))
    os.makedirs(folder)
    for name in names:
        shutil.copy2(os.path.join(out, name), os.path.join(folder, name))
    return folder


def moved_test_videos(out: str, splits: dict) -> list[str]:
    """Videos of the old test.csv that the new lists train or validate on."""
    old = layout.list_path(out, "test")
    if not os.path.isfile(old):
        return []
    overlaps = split_overlaps({**splits, "test": scan_index(old)[0]})
    return sorted(e.audio for split in ("train", "val") for e in overlaps[split, "test"])


def scan_videos(root: str, min_frames: int):
    """Pairs every `audio/<class>/<id>.wav` with its frames folder and counts the frames.

    Every class folder is a class (MUSIC-21 included). Returns: (kept entries, [(wav, reason)] for
    the dropped ones), both sorted by path.

    Raises:
        ValueError: a class folder is not in the class table, which gives every class its id.
    """
    wavs = sorted(glob.glob(os.path.join(root, layout.AUDIO, "*", "*.wav")))
    folders = {os.path.basename(os.path.dirname(w)) for w in wavs}
    unknown = sorted(folders - layout.CLASS_TO_ID.keys())
    if unknown:
        raise ValueError(
            f"class folder(s) {', '.join(unknown)} under "
            f"{os.path.join(root, layout.AUDIO)} are not in the class table "
            "(dataset/layout.py MUSIC21_CLASSES: "
            f"{', '.join(layout.MUSIC21_CLASSES)}); rename the folder to a listed "
            f"instrument or append the class to the table"
        )
    kept, dropped = [], []
    for wav in wavs:
        rel = os.path.relpath(wav, os.path.join(root, layout.AUDIO))
        class_name, video_id = os.path.split(rel)
        video_id = video_id[: -len(".wav")]
        key = layout.video_key(class_name, video_id)
        folder = layout.frames_dir(root, key + ".mp4")
        if not os.path.isdir(folder):
            dropped.append((wav, f"no frames folder {folder}"))
            continue
        ids = list_frame_ids(folder)
        # The loader reads frames 1..count, so count only the gap-free run from 000001.jpg.
        count = next(k for k in range(1, len(ids) + 2) if k not in ids) - 1
        if count < len(ids):
            dropped.append((wav, f"frames folder has a gap after {layout.frame_name(count)}"))
        elif count < min_frames:
            dropped.append((wav, f"{count} frames, fewer than --min-frames {min_frames}"))
        else:
            kept.append(IndexEntry(key + ".wav", key + ".mp4", count, source=wav))
    return kept, dropped


def split_by_class(entries, val_frac: float, test_frac: float, seed: int) -> dict:
    """Disjoint splits, stratified: per class round(frac * n) videos, at least 1 where the class
    has 3 or more (so every such class is in val and test); smaller classes go to train."""
    rng = random.Random(seed)
    splits = {s: [] for s in layout.SPLITS}
    for class_name, videos in sorted(group_by_class(entries).items()):
        videos = sorted(videos)
        rng.shuffle(videos)
        n = len(videos)
        if n < 3:
            print(f"warning: {class_name} has {n} video(s): all in train, none in val/test")
            n_val = n_test = 0
        else:
            n_val = max(1, round(n * val_frac)) if val_frac > 0 else 0
            n_test = max(1, round(n * test_frac)) if test_frac > 0 else 0
            n_val = min(n_val, n - 1 - (n_test > 0))
            n_test = min(n_test, n - 1 - n_val)
        splits["test"] += videos[:n_test]
        splits["val"] += videos[n_test : n_test + n_val]
        splits["train"] += videos[n_test + n_val :]
    return {s: sorted(v) for s, v in splits.items()}


def make_sep_rows(test: list, per_video: int, num_mix: int, seed: int) -> list:
    """`per_video` rows per test video, each with `num_mix - 1` test partners of other classes.

    Like the authors' file: for round in 1..per_video, one row per test video in list order.
    """
    by_class = group_by_class(test)
    if len(by_class) < num_mix:
        raise ValueError(
            f"the test split has {len(by_class)} classes ({', '.join(sorted(by_class))}); "
            f"mixtures of {num_mix} distinct classes need at least {num_mix}. Add videos, "
            f"raise --test-frac or lower --sep-num-mix"
        )
    rng = random.Random(seed)
    return [
        [video.audio] + [p.audio for p in draw_partners(video, by_class, num_mix - 1, rng)]
        for _ in range(per_video)
        for video in test
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", required=True, help="data root with audio/ and frames/ folders")
    parser.add_argument("--out", help="where the CSVs go (default: --root)")
    parser.add_argument(
        "--seed", type=int, default=1234, help="split and mixture seed (default: 1234)"
    )
    parser.add_argument(
        "--val-frac", type=float, default=0.1, help="fraction of each class in val (default: 0.1)"
    )
    parser.add_argument(
        "--test-frac", type=float, default=0.1, help="fraction of each class in test (default: 0.1)"
    )
    parser.add_argument(
        "--min-frames",
        type=int,
        default=7,
        help="drop videos with fewer frames; the reference keeps > 6 s (default: 7)",
    )
    parser.add_argument(
        "--sep-per-video",
        type=int,
        default=10,
        help="test_sep.csv rows per test video, 0 for none (default: 10)",
    )
    parser.add_argument(
        "--sep-num-mix", type=int, default=4, help="videos per test_sep.csv row (default: 4)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace index files that exist (copies of them are kept in OUT/index_backup/); "
        "without it existing lists are never touched",
    )
    args = parser.parse_args(argv)
    out = args.out or args.root
    # Runs already trained on these lists would see their test videos move into train.
    existing = existing_lists(out)
    if existing and not args.overwrite:
        sys.exit(
            f"error: {out} already holds {', '.join(existing)}: runs trained on them would have "
            f"their test videos moved by a new split. Pass --overwrite to replace them (copies "
            f"are kept), or --out another folder"
        )

    try:
        kept, dropped = scan_videos(args.root, args.min_frames)
    except ValueError as err:
        sys.exit(f"error: {err}")
    for wav, reason in dropped:
        print(f"dropped {wav}: {reason}")
    if not kept:
        sys.exit(f"error: no usable video under {os.path.join(args.root, layout.AUDIO)}")
    splits = split_by_class(kept, args.val_frac, args.test_frac, args.seed)
    sep_rows = []
    if args.sep_per_video > 0:
        try:
            sep_rows = make_sep_rows(
                splits["test"], args.sep_per_video, args.sep_num_mix, args.seed
            )
        except ValueError as err:
            sys.exit(f"error: {err}")

    os.makedirs(out, exist_ok=True)
    if existing:
        moved = moved_test_videos(out, splits)
        print(f"kept copies of {', '.join(existing)} in {back_up(out, existing)}")
        if moved:
            print(
                f"warning: {len(moved)} videos of the old test.csv are now in train or val "
                f"(first: {moved[0]}): runs trained on the old lists must be evaluated on "
                f"those lists, not the new ones"
            )
    for name, entries in splits.items():
        write_index(layout.list_path(out, name), entries)
    if sep_rows:
        write_sep_list(layout.list_path(out, "sep"), sep_rows)
    elif SEP_FILE in existing:  # its rows name the old test videos (a copy is kept)
        os.remove(layout.list_path(out, "sep"))
    print(format_split_table(splits))
    written = [layout.LIST_FILES[s] for s in layout.SPLITS] + [SEP_FILE] * bool(sep_rows)
    print(
        f"kept {len(kept)} videos, dropped {len(dropped)}; {len(sep_rows)} test mixtures; "
        f"wrote {', '.join(written)} to {out}"
    )


if __name__ == "__main__":
    main()
