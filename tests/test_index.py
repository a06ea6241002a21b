"""Tests of scripts/create_index_files.py: disjoint stratified splits and the test mixture list."""

import os
import re
import sys
from collections import Counter

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

import create_index_files  # noqa: E402

from dataset import layout  # noqa: E402
from dataset.index import read_index, read_sep_list  # noqa: E402

VIDEOS = {"accordion": 10, "cello": 5, "flute": 3, "tuba": 2, "violin": 12, "erhu": 4}
ROW = re.compile(r"^/([a-z_]+)/([^,/]+)\.wav,/\1/\2\.mp4,(\d+)$")


def add_video(root, class_name, video_id, frame_ids):
    """Empty files stand in for the wav and jpgs: the index builder only looks at names."""
    wav = layout.audio_path(root, f"/{class_name}/{video_id}.wav")
    os.makedirs(os.path.dirname(wav), exist_ok=True)
    open(wav, "w").close()
    if frame_ids is not None:
        folder = layout.frames_dir(root, f"/{class_name}/{video_id}.mp4")
        os.makedirs(folder)
        for k in frame_ids:
            open(os.path.join(folder, layout.frame_name(k)), "w").close()


@pytest.fixture
def root(tmp_path):
    for class_name, n in VIDEOS.items():
        for v in range(n):
            add_video(str(tmp_path), class_name, f"{class_name[:3]}{v:02d}", range(1, 8 + v % 5))
    add_video(str(tmp_path), "cello", "short", range(1, 6))  # 5 frames < 7
    add_video(str(tmp_path), "cello", "noframes", None)
    add_video(str(tmp_path), "violin", "gap", [1, 2, 3, 5, 6, 7, 8, 9])
    return str(tmp_path)


def build(root, *extra):
    create_index_files.main(["--root", root, *extra])
    return {s: read_index(os.path.join(root, f"{s}.csv")) for s in ("train", "val", "test")}


def test_splits_are_disjoint_complete_and_stratified(root, capsys):
    splits = build(root)
    keys = {s: {e.audio for e in v} for s, v in splits.items()}
    assert (
        not keys["train"] & keys["val"]
        and not keys["train"] & keys["test"]
        and not keys["val"] & keys["test"]
    )
    assert sum(len(k) for k in keys.values()) == sum(VIDEOS.values())
    per_class = {s: Counter(e.class_name for e in v) for s, v in splits.items()}
    for class_name, n in VIDEOS.items():
        if n >= 3:
            assert per_class["val"][class_name] >= 1 and per_class["test"][class_name] >= 1
            held_out = per_class["val"][class_name] + per_class["test"][class_name]
            assert per_class["train"][class_name] == n - held_out
        else:
            assert per_class["train"][class_name] == n
    out = capsys.readouterr().out
    assert "tuba has 2 video(s)" in out and "accordion" in out and "total" in out


def test_rows_use_the_reference_format_and_true_frame_counts(root):
    build(root)
    for s in ("train", "val", "test"):
        for line in open(os.path.join(root, f"{s}.csv")).read().splitlines():
            match = ROW.match(line)
            assert match, line
            folder = layout.frames_dir(root, f"/{match[1]}/{match[2]}.mp4")
            assert int(match[3]) == len(os.listdir(folder))


def test_short_gappy_and_frameless_videos_are_dropped_and_reported(root, capsys):
    splits = build(root)
    out = capsys.readouterr().out
    listed = {e.audio for v in splits.values() for e in v}
    reasons = {"short": "5 frames", "noframes": "no frames folder", "gap": "gap after 000003.jpg"}
    for video, reason in reasons.items():
        assert not any(video in a for a in listed)
        assert re.search(rf"dropped .*{video}\.wav: .*{reason}", out), video


def test_test_sep_rows(root):
    splits = build(root, "--sep-per-video", "3", "--sep-num-mix", "4")
    lines = open(os.path.join(root, "test_sep.csv")).read().splitlines()
    test = [e.audio for e in splits["test"]]
    assert len(lines) == 3 * len(test)
    for line in lines:
        row = line.split(", ")
        assert len(row) == 4 and all(" " not in p and "," not in p for p in row)
        assert set(row) <= set(test) and len({layout.class_of(p) for p in row}) == 4
    assert Counter(r[0] for r in read_sep_list(os.path.join(root, "test_sep.csv"))) == {
        a: 3 for a in test
    }


def test_same_seed_same_files_other_seed_other_split(root, tmp_path):
    def files(seed, out):
        create_index_files.main(["--root", root, "--out", out, "--seed", str(seed)])
        return [
            open(os.path.join(out, f)).read()
            for f in ("train.csv", "val.csv", "test.csv", "test_sep.csv")
        ]

    a = files(1, str(tmp_path / "a"))
    assert a == files(1, str(tmp_path / "b"))
    assert a != files(2, str(tmp_path / "c"))


def test_too_few_test_classes_is_a_clear_error(root):
    with pytest.raises(SystemExit, match="test split has 5 classes.*at least 6"):
        build(root, "--sep-num-mix", "6")
