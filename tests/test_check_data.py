"""Tests of scripts/check_data.py.

A clean synthetic root passes, and each planted problem is reported.
"""

import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from conftest import nan_wav

import checkpoints
from arguments import parse_args
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
    """check_data's exit status and output on `root` (None: no root given)."""
    status = check_data.main([*([] if root is None else [str(root)]), *flags])
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
    nan_wav: "audio not finite",
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


# ------------------------------------------------------------ what a profile or a trained run reads


def trained_run(ckpt, run_id, data_root, *flags):
    """A run folder as training leaves it, args.json only: the resolved arguments of main.py
    with `flags`, on `data_root`."""
    args = parse_args(
        ["--id", run_id, "--ckpt", str(ckpt), "--data_root", str(data_root), *map(str, flags)]
    )
    os.makedirs(args.run_dir)
    checkpoints.save_args(args)
    return args.run_dir


def test_profile_decides_the_clip_checked(tiny_data_root, capsys):
    status, out = run_check(tiny_data_root, capsys, "--profile", "demo")
    assert status == 0, out
    assert "profile demo, stage ccol reads: clips of 8191 samples" in out
    status, out = run_check(tiny_data_root, capsys)
    assert "profile reference, stage ccol reads: clips of 65535 samples" in out


def test_run_is_checked_with_its_own_clip_and_data_root(tiny_data_root, tmp_path, capsys):
    """Videos of 9-10 s are too short for the 12.6 s clips this run was trained on: --run reads
    its clip (and its data root) from args.json, whatever the profile's defaults."""
    demo = ("--profile", "demo")
    run_dir = trained_run(tmp_path, "long", tiny_data_root, *demo, "--aud_len", 139263)
    status, out = run_check(None, capsys, "--run", run_dir)
    assert status == 1
    assert f"checking what run {run_dir} reads: clips of 139263 samples" in out
    assert "shorter than a clip: 12 " in out and str(tiny_data_root) in out
    # A stride of 5 between 3 frames needs 11 frames: a clip of the run's frames and hop.
    run_dir = trained_run(tmp_path, "hop", tiny_data_root, "--num_frames", 3, "--stride_frames", 5)
    status, out = run_check(None, capsys, "--run", run_dir)
    assert status == 1 and "3 frames 5 apart" in out and "shorter than a clip: 12 " in out
    with pytest.raises(SystemExit):
        run_check(None, capsys, "--run", run_dir, "--stage", "sop")


def test_run_reads_its_own_index_files_and_follows_moved_data(tiny_data_root, tmp_path, capsys):
    """A SoP run reads no detections; its test list, named in args.json, is the one checked; a
    run whose data moved is checked on the root given (the run's own lists follow it)."""
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root, ignore=shutil.ignore_patterns("videos"))
    train = read_index(root / "train.csv")
    os.remove(layout.detection_path(str(root), train[0].frames))
    leaky_test = tmp_path / "leaky_test.csv"
    shutil.copy(root / "test.csv", leaky_test)
    with open(leaky_test, "a") as f:
        f.write(f"{train[0].audio},{train[0].frames},{train[0].num_frames}\n")
    sop = trained_run(tmp_path / "ckpt", "sop", root, "--stage", "sop")
    status, out = run_check(None, capsys, "--run", sop)
    assert status == 0 and "mixtures of 2" in out, out
    status, out = run_check(root, capsys)  # the reference CCoL needs every detection file
    assert status == 1 and "detections missing: 1 " in out
    leaky = trained_run(
        tmp_path / "ckpt", "leaky", root, "--stage", "sop", "--list_test", leaky_test
    )
    status, out = run_check(None, capsys, "--run", leaky)
    assert status == 1 and "test leak: 1 " in out
    moved = tmp_path / "moved"
    shutil.move(root, moved)
    status, out = run_check(moved, capsys, "--run", sop)
    assert status == 0 and f"data root {moved}:" in out, out
