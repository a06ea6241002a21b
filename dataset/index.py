"""Reading, writing and sampling the authors' CSV index files (train/val/test.csv, test_sep.csv)."""

from __future__ import annotations

import os
import random
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import NamedTuple

import utils

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


# Problems of single rows of a video list, by kind (scan_index).
ROW_MALFORMED, ROW_STEMS, ROW_DUPLICATE = "malformed", "stems differ", "duplicate"


def _stem(rel: str) -> str:
    return os.path.splitext(rel)[0]


def scan_index(path: str) -> tuple[list[IndexEntry], list[tuple[str, str]]]:
    """Parses a video list: the good rows, and (kind, message) for each bad one.

    Blank lines are ignored, spaces around fields tolerated. A bad row is malformed, names the
    audio and the frames of two different videos (their stems differ: the net would learn one
    video's sound from another's pictures), or lists a video again (it would be drawn twice as
    often).
    """
    if not os.path.isfile(path):
        raise DataError("index file not found", path=path)
    entries, problems, first_line = [], [], {}
    name = os.path.basename(path)
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = [field.strip() for field in line.split(",")]
            where = f"{name}:{line_no}"
            if len(fields) != 3:
                problems.append(
                    (
                        ROW_MALFORMED,
                        f"line {line_no}: expected 'audio,frames,num_frames', got {line.strip()!r}",
                    )
                )
                continue
            audio, frames, count = fields
            if not count.isdigit():
                problems.append(
                    (ROW_MALFORMED, f"line {line_no}: num_frames {count!r} is not an integer")
                )
            elif class_of(audio) not in CLASS_TO_ID:
                problems.append(
                    (
                        ROW_MALFORMED,
                        f"line {line_no}: class {class_of(audio)!r} is not a MUSIC class "
                        f"({', '.join(CLASS_TO_ID)})",
                    )
                )
            elif _stem(audio) != _stem(frames):
                problems.append(
                    (
                        ROW_STEMS,
                        f"line {line_no}: audio {audio} and frames {frames} are of different "
                        f"videos",
                    )
                )
            elif audio in first_line:
                problems.append(
                    (
                        ROW_DUPLICATE,
                        f"line {line_no}: {audio} is listed again (first at line "
                        f"{first_line[audio]})",
                    )
                )
            else:
                first_line[audio] = line_no
                entries.append(IndexEntry(audio, frames, int(count), where))
    return entries, problems


def read_index(path: str) -> list[IndexEntry]:
    """The videos of a list; DataError naming its first bad row (scan_index) if it has any."""
    entries, problems = scan_index(path)
    if problems:
        more = f" (and {len(problems) - 1} more bad rows)" if len(problems) > 1 else ""
        raise DataError(problems[0][1] + more, path=path)
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


def sep_row_problems(
    rows: Sequence[Sequence[str]], listed: Collection[str], num_mix: int, list_name: str
) -> list[str]:
    """What is wrong with each mixture row for mixtures of `num_mix` videos: too few videos, a
    video the test list `list_name` (whose audio paths are `listed`) lacks, a class twice."""
    problems = []
    for number, row in enumerate(rows, 1):
        used = row[:num_mix]
        if len(used) < num_mix:
            problems.append(f"row {number} holds {len(row)} videos, a mixture needs {num_mix}")
            continue
        missing = [path for path in used if path not in listed]
        if missing:
            problems.append(f"row {number} names {missing[0]}, which {list_name} does not list")
        elif len({class_of(path) for path in used}) < num_mix:
            problems.append(f"row {number} repeats a class: {list(used)}")
    return problems


def write_index(path: str, entries: Iterable[IndexEntry]) -> None:
    """Written whole or not at all, and as a new file: a run reading the old list, or a hard link
    to it, keeps the old one."""
    text = "".join(f"{e.audio},{e.frames},{e.num_frames}\n" for e in entries)
    utils.atomic_write(path, lambda f: f.write(text), text=True)


def write_sep_list(path: str, rows: Iterable[Sequence[str]]) -> None:
    text = "".join(SEP_JOIN.join(row) + "\n" for row in rows)
    utils.atomic_write(path, lambda f: f.write(text), text=True)


# The splits that must not share a video, as (split, the split it must not share one with): else
# test scores are measured on training data, the best checkpoint is chosen on test videos, or on
# training videos. The one leak check of training (main.py), scripts/check_data.py, summarize and
# scripts/create_index_files.py.
LEAKS = (("train", "test"), ("val", "test"), ("val", "train"))


def split_overlaps(
    splits: Mapping[str, Sequence[IndexEntry]],
) -> dict[tuple[str, str], list[IndexEntry]]:
    """For each pair (split, other) of LEAKS whose two splits `splits` holds, the entries of
    `split` whose video (audio path) `other` also lists (empty when they share none)."""
    overlaps = {}
    for split, other in LEAKS:
        if split in splits and other in splits:
            listed = {e.audio for e in splits[other]}
            overlaps[split, other] = [e for e in splits[split] if e.audio in listed]
    return overlaps


def _overlaps_of_lists(**paths: str) -> dict[tuple[str, str], list[IndexEntry]]:
    """split_overlaps of the index files `paths` ({split: path}) that exist."""
    return split_overlaps(
        {split: read_index(path) for split, path in paths.items() if os.path.isfile(path)}
    )


def split_leaks(list_train: str, list_val: str, list_test: str) -> dict[str, list[IndexEntry]]:
    """Train and val videos that the test list also holds: {'train': [...], 'val': [...]}, only the
    splits that leak. No test list (or no val list) means nothing to compare."""
    overlaps = _overlaps_of_lists(train=list_train, val=list_val, test=list_test)
    return {
        split: leaked for (split, other), leaked in overlaps.items() if other == "test" and leaked
    }


def val_in_train(list_train: str, list_val: str) -> list[IndexEntry]:
    """Val videos that the train list also holds (none without a val list): the best checkpoint
    would be chosen on videos the nets were trained on."""
    return _overlaps_of_lists(train=list_train, val=list_val).get(("val", "train"), [])


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
