"""Reading, writing and sampling the authors' CSV index files (train/val/test.csv, test_sep.csv)."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from .errors import DataError
from .layout import CLASS_TO_ID, FRAME_RATE, class_of

# test_sep.csv joins its audio paths with a comma and a space, as the authors' file does.
SEP_JOIN = ", "


class IndexEntry(NamedTuple):
    """One row of train/val/test.csv: `/cello/abc.wav,/cello/abc.mp4,87`."""

    audio: str  # CSV audio path, '/cello/abc.wav'
    frames: str  # CSV frames folder, '/cello/abc.mp4'
    num_frames: int  # number of 1-fps jpgs
    source: str  # 'train.csv:12', for error messages

    @property
    def class_name(self) -> str:
        return class_of(self.audio)


def read_index(path: str) -> list[IndexEntry]:
    """Parses a video list; blank lines are ignored, spaces around fields tolerated."""
    if not os.path.isfile(path):
        raise DataError("index file not found", path=path)
    entries = []
    name = os.path.basename(path)
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split(",")]
            where = f"{name}:{line_no}"
            if len(fields) != 3:
                raise DataError(
                    f"line {line_no}: expected 'audio,frames,num_frames', got {line.strip()!r}",
                    path=path,
                )
            audio, frames, count = fields
            if not count.isdigit():
                raise DataError(
                    f"line {line_no}: num_frames {count!r} is not an integer", path=path
                )
            if class_of(audio) not in CLASS_TO_ID:
                raise DataError(
                    f"line {line_no}: class {class_of(audio)!r} is not a MUSIC class "
                    f"({', '.join(CLASS_TO_ID)})",
                    path=path,
                )
            entries.append(IndexEntry(audio, frames, int(count), where))
    return entries


def read_sep_list(path: str, min_columns: int = 2) -> list[list[str]]:
    """Parses test_sep.csv: each row holds audio paths (the first is the row's own video)."""
    if not os.path.isfile(path):
        raise DataError("mixture list not found", path=path)
    rows = []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = [field.strip() for field in line.split(",")]
            if len(row) < min_columns or not all(row):
                raise DataError(
                    f"line {line_no}: expected at least {min_columns} audio paths, "
                    f"got {line.strip()!r}",
                    path=path,
                )
            rows.append(row)
    return rows


def write_index(path: str, entries: Iterable[IndexEntry]) -> None:
    with open(path, "w") as f:
        for e in entries:
            f.write(f"{e.audio},{e.frames},{e.num_frames}\n")


def write_sep_list(path: str, rows: Iterable[Sequence[str]]) -> None:
    with open(path, "w") as f:
        for row in rows:
            f.write(SEP_JOIN.join(row) + "\n")


def shared_videos(entries: Iterable[IndexEntry], others: Iterable[IndexEntry]) -> list[IndexEntry]:
    """The entries whose video (audio path) `others` also lists."""
    keys = {e.audio for e in others}
    return [e for e in entries if e.audio in keys]


def split_leaks(list_train: str, list_val: str, list_test: str) -> dict[str, list[IndexEntry]]:
    """Train and val videos that the test list also holds: {'train': [...], 'val': [...]}, only the
    splits that leak. No test list (or no val list) means nothing to compare."""
    if not os.path.isfile(list_test):
        return {}
    test = read_index(list_test)
    lists = {"train": list_train, "val": list_val}
    leaks = {
        split: shared_videos(read_index(path), test)
        for split, path in lists.items()
        if split == "train" or os.path.isfile(path)
    }
    return {split: leaked for split, leaked in leaks.items() if leaked}


def group_by_class(entries: Iterable[IndexEntry]) -> dict[str, list[IndexEntry]]:
    by_class = defaultdict(list)
    for e in entries:
        by_class[e.class_name].append(e)
    return dict(by_class)


def draw_partners(
    first: IndexEntry, by_class: Mapping[str, Sequence[IndexEntry]], count: int, rng: random.Random
) -> list[IndexEntry]:
    """`count` videos whose classes differ from `first`'s and from each other.

    Each draw is uniform over the videos of the classes not used yet, which is what the authors'
    redraw-until-new-class loop samples, without its unbounded retries.
    """
    used = {first.class_name}
    partners = []
    for _ in range(count):
        classes = [c for c in sorted(by_class) if c not in used]
        if not classes:
            raise ValueError(f"need {count + 1} distinct classes, the list has {len(by_class)}")
        cls = rng.choices(classes, weights=[len(by_class[c]) for c in classes])[0]
        partners.append(rng.choice(by_class[cls]))
        used.add(cls)
    return partners


def format_split_table(splits: Mapping[str, Sequence[IndexEntry]]) -> str:
    """Videos per class per split, with totals and duration (frame counts at 1 fps are seconds)."""
    names = list(splits)
    counts = {s: group_by_class(splits[s]) for s in names}
    classes = sorted({c for s in names for c in counts[s]}, key=lambda c: CLASS_TO_ID.get(c, 99))
    width = max([len("minutes")] + [len(c) for c in classes])
    lines = [f"{'class':<{width}} " + " ".join(f"{s:>7}" for s in names)]
    for c in classes:
        lines.append(f"{c:<{width}} " + " ".join(f"{len(counts[s].get(c, [])):>7}" for s in names))
    lines.append(f"{'total':<{width}} " + " ".join(f"{len(splits[s]):>7}" for s in names))
    minutes = {s: sum(e.num_frames for e in splits[s]) / FRAME_RATE / 60 for s in names}
    lines.append(f"{'minutes':<{width}} " + " ".join(f"{minutes[s]:>7.1f}" for s in names))
    return "\n".join(lines)
