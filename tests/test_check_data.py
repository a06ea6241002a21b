"""Tests of scripts/check_data.py.

A clean synthetic root passes, and each planted problem is reported.
"""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from dataset import layout
from dataset.index import read_index
from scripts import check_data

# Planted one per video, in the order of the videos of train.csv, val.csv, test.csv.
PLANTED = (
    "audio missing",
    "audio unreadable",
    "audio sample rate",
    "audio channels",
    "frames missing",
    "frame count mismatch",
    "detections missing",
    "detections empty",
    "detections malformed",
    "shorter than a clip",
    "frame unreadable",
    "audio not finite",
)
# Also planted: a test video listed in train too, a test_sep.csv row naming a train video.
PLANTED_ACROSS = ("test leak", "mixture list")


def run_check(root, capsys, *flags):
    status = check_data.main([str(root), *flags])
    return status, capsys.readouterr().out


def test_clean_root_passes(tiny_data_root, capsys):
    status, out = run_check(tiny_data_root, capsys)
    assert status == 0, out
    assert "12 videos" in out and "no problem found" in out


def _rewrite_csv_count(csv_path, video, count):
    lines = open(csv_path).read().splitlines()
    old = f"{video.audio},{video.frames},{video.num_frames}"
    lines[lines.index(old)] = f"{video.audio},{video.frames},{count}"
    with open(csv_path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plant(root, kind, video, csv_path):
    """Break `video` of the data root copy at `root` in the way named by `kind`."""
    wav = layout.audio_path(root, video.audio)
    folder = layout.frames_dir(root, video.frames)
    npy = layout.detection_path(root, video.frames)
    if kind == "audio missing":
        os.remove(wav)
    elif kind == "audio unreadable":
        with open(wav, "wb") as f:
            f.write(b"RIFF\x00\x00garbage" * 10)
    elif kind == "audio sample rate":
        samples, rate = sf.read(wav, dtype="float32")
        sf.write(
            wav, np.repeat(samples, 2), 2 * rate, subtype="PCM_16"
        )  # same duration at 22050 Hz
    elif kind == "audio channels":
        samples, rate = sf.read(wav, dtype="float32")
        sf.write(wav, np.stack([samples, samples], 1), rate, subtype="PCM_16")
    elif kind == "audio not finite":
        samples, rate = sf.read(wav, dtype="float32")
        samples[1000:1010] = np.nan
        sf.write(wav, samples, rate, subtype="FLOAT")
    elif kind == "frames missing":
        os.remove(os.path.join(folder, layout.frame_name(5)))
    elif kind == "frame unreadable":
        with open(os.path.join(folder, layout.frame_name(2)), "wb") as f:
            f.write(b"not a jpeg")
    elif kind == "frame count mismatch":
        last = os.path.join(folder, layout.frame_name(video.num_frames))
        shutil.copy(last, os.path.join(folder, layout.frame_name(video.num_frames + 1)))
    elif kind == "detections missing":
        os.remove(npy)
    elif kind == "detections empty":
        np.save(npy, np.zeros((0, 7), np.float32))
    elif kind == "detections malformed":
        np.save(npy, np.ones((4, 5), np.float32))
    elif kind == "shorter than a clip":
        # 3 s of audio, frames and detections: consistent, but shorter than a 5.9 s clip.
        samples, rate = sf.read(wav, dtype="float32")
        sf.write(wav, samples[: 3 * rate], rate, subtype="PCM_16")
        for k in range(4, video.num_frames + 1):
            os.remove(os.path.join(folder, layout.frame_name(k)))
        dets = np.load(npy)
        np.save(npy, dets[dets[:, 0] <= 3])
        _rewrite_csv_count(csv_path, video, 3)
    else:
        raise ValueError(kind)


@pytest.fixture
def broken_root(tiny_data_root, tmp_path):
    """A copy of the tiny root with every problem of PLANTED and PLANTED_ACROSS planted once."""
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root, ignore=shutil.ignore_patterns("videos"))
    videos = [
        (v, root / f"{split}.csv")
        for split in ("train", "val", "test")
        for v in read_index(root / f"{split}.csv")
    ]
    assert len(videos) == len(PLANTED)
    for kind, (video, csv_path) in zip(PLANTED, videos):
        plant(str(root), kind, video, csv_path)
    test_video, train_video = videos[-1][0], videos[0][0]
    with open(root / "train.csv", "a") as f:
        f.write(f"{test_video.audio},{test_video.frames},{test_video.num_frames}\n")
    with open(root / "test_sep.csv", "a") as f:
        f.write(f"{test_video.audio}, {train_video.audio}\n")
    return root


def test_every_planted_problem_is_reported_once(broken_root):
    clip = check_data.ClipSpec(
        aud_len=65535, sample_rate=11025, num_frames=3, stride_frames=1, frame_rate=1
    )
    problems, checked = check_data.check_root(str(broken_root), clip)
    counts = {kind: sum(p.kind == kind for p in problems) for kind in check_data.PROBLEMS}
    expected = {kind: int(kind in PLANTED + PLANTED_ACROSS) for kind in check_data.PROBLEMS}
    assert counts == expected, "\n".join(f"{p.kind}: {p.path}: {p.detail}" for p in problems)
    assert checked["videos"] == 12 and checked["train"] == 5 and checked["mixtures"] == 9


def test_report_groups_counts_and_fails(broken_root, capsys):
    status, out = run_check(broken_root, capsys)
    assert status == 1
    assert (
        f"{len(PLANTED) + len(PLANTED_ACROSS)} problems of "
        f"{len(PLANTED) + len(PLANTED_ACROSS)} kinds" in out
    )
    for kind in PLANTED + PLANTED_ACROSS:
        assert f"  {kind}: 1 " in out, (kind, out)
    # examples name the offending file
    assert "22050 Hz, expected 11025" in out and "2 channels" in out and ".mp4.npy" in out


def test_clip_length_decides_what_is_too_short(tiny_data_root, capsys):
    """Videos of 9-10 s are too short for 12 s clips: each is reported, with the exit status."""
    status, out = run_check(
        tiny_data_root, capsys, "--aud-len", str(12 * 11025), "--max-examples", "2"
    )
    assert status == 1
    assert "shorter than a clip: 12 " in out and "... and 10 more" in out
    status, out = run_check(tiny_data_root, capsys, "--num-frames", "11")
    assert status == 1 and "shorter than a clip: 12 " in out


def test_missing_index_is_reported(tmp_path, capsys):
    status, out = run_check(tmp_path, capsys)
    assert status == 1
    assert "index file: 3 " in out and "train.csv" in out


# ------------------------------------------------------------- what the loader refuses, found first


def truncated_jpg(root, video):
    """A jpg cut to a third: its header is valid, its pixels are not all there."""
    path = os.path.join(layout.frames_dir(root, video.frames), layout.frame_name(2))
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 3])


def boxes_outside(root, video):
    npy = layout.detection_path(root, video.frames)
    dets = np.load(npy)
    dets[:, [3, 5]] += 1000
    np.save(npy, dets)


def audio_cut_in_half(root, video):
    wav = layout.audio_path(root, video.audio)
    samples, rate = sf.read(wav, dtype="float32")
    sf.write(wav, samples[: len(samples) // 2], rate, subtype="PCM_16")


def detections_past_the_end(root, video):
    npy = layout.detection_path(root, video.frames)
    dets = np.load(npy)
    dets[:, 0] += video.num_frames
    np.save(npy, dets)


def nan_audio(root, video):
    wav = layout.audio_path(root, video.audio)
    samples, rate = sf.read(wav, dtype="float32")
    samples[::100] = np.nan
    sf.write(wav, samples, rate, subtype="FLOAT")


def three_classes_in_train(root, video):
    path = os.path.join(root, "train.csv")
    keep = [
        line for line in open(path).read().splitlines() if layout.class_of(line) != video.class_name
    ]
    open(path, "w").write("\n".join(keep) + "\n")


def train_leak(root, video):
    test_video = read_index(os.path.join(root, "test.csv"))[0]
    with open(os.path.join(root, "train.csv"), "a") as f:
        f.write(f"{test_video.audio},{test_video.frames},{test_video.num_frames}\n")


ALONE = {
    truncated_jpg: "frame unreadable",
    boxes_outside: "boxes outside the image",
    audio_cut_in_half: "audio shorter than frames",
    detections_past_the_end: "detections malformed",
    nan_audio: "audio not finite",
    three_classes_in_train: "too few classes",
    train_leak: "test leak",
}


@pytest.mark.parametrize("damage", ALONE, ids=lambda f: f.__name__)
def test_each_problem_the_loader_refuses_is_reported(tiny_data_root, tmp_path, capsys, damage):
    """Each damage alone, on a copy of the tiny root, with clips short enough for every video."""
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root, ignore=shutil.ignore_patterns("videos"))
    damage(str(root), read_index(root / "train.csv")[0])
    clip = check_data.ClipSpec(
        aud_len=4095, sample_rate=11025, num_frames=2, stride_frames=1, frame_rate=1
    )
    problems, _ = check_data.check_root(str(root), clip)
    assert [p.kind for p in problems] == [ALONE[damage]], "\n".join(
        f"{p.kind}: {p.detail}" for p in problems
    )
    status, out = run_check(root, capsys, "--aud-len", "4095", "--num-frames", "2")
    assert status == 1 and f"  {ALONE[damage]}: 1 " in out
