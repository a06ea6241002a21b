"""Tests of scripts/detect_objects.py: rows from annotations and the torchvision-model path."""

import json
import os
import sys

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "scripts"))

import detect_objects  # noqa: E402

from dataset import layout  # noqa: E402
from synthetic import detections  # noqa: E402

FPS, VIDEO_FRAMES = 10, 45
VIDEO_W, VIDEO_H = 128, 96  # annotation resolution; the jpgs are half of it
JPG_W, JPG_H = 64, 48
NUM_JPGS = 5  # frame 5 shows video frame min(45, 44)
VIDEOS = (("cello", "c0", "violin"), ("flute", "f0", "tuba"))


def sounding_box(vf):
    return [vf, 10, vf + 40, 60]  # x1 encodes the video frame


def make_root(root, num_jpgs=NUM_JPGS, videos=VIDEOS):
    for cls, vid, silent_cls in videos:
        folder = layout.frames_dir(root, f"/{cls}/{vid}.mp4")
        os.makedirs(folder)
        for k in range(1, num_jpgs + 1):
            frame = Image.fromarray(np.full((JPG_H, JPG_W, 3), 30 * k, np.uint8))
            frame.save(os.path.join(folder, layout.frame_name(k)))
        annotation = {
            "class": cls,
            "video_id": vid,
            "fps": FPS,
            "width": VIDEO_W,
            "height": VIDEO_H,
            "duration": VIDEO_FRAMES / FPS,
            "num_video_frames": VIDEO_FRAMES,
            "objects": [
                {
                    "class": cls,
                    "sounding": True,
                    "boxes": [sounding_box(i) for i in range(VIDEO_FRAMES)],
                },
                {
                    "class": silent_cls,
                    "sounding": False,
                    "boxes": [[80, 20, 140, 90]] * VIDEO_FRAMES,
                },
            ],
        }  # partly outside: clipped to 128
        path = layout.annotation_path(root, cls, vid)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(annotation, f)
    return root


def load(root, cls, vid):
    return np.load(layout.detection_path(root, f"/{cls}/{vid}.mp4"))


def test_rows_from_annotations(tmp_path, capsys):
    root = make_root(str(tmp_path))
    detect_objects.main(
        [
            "--root",
            root,
            "--from-annotations",
            "--miss-rate",
            "0",
            "--object-miss-rate",
            "0",
            "--jitter",
            "0",
        ]
    )
    for cls, vid, silent_cls in VIDEOS:
        rows = load(root, cls, vid)
        assert rows.dtype == np.float32 and rows.shape == (2 * NUM_JPGS, 7)
        sounding, silent = rows[0::2], rows[1::2]
        assert sounding[:, 0].tolist() == list(range(1, NUM_JPGS + 1))
        assert (sounding[:, 1] == layout.CLASS_TO_ID[cls] + 1).all()
        assert (silent[:, 1] == layout.CLASS_TO_ID[silent_cls] + 1).all()
        shown = [
            min(int(layout.frame_time(k) * FPS), VIDEO_FRAMES - 1) for k in range(1, NUM_JPGS + 1)
        ]
        assert shown[-1] == VIDEO_FRAMES - 1
        np.testing.assert_allclose(sounding[:, 3:], [np.array(sounding_box(v)) / 2 for v in shown])
        np.testing.assert_allclose(silent[0, 3:], [40, 10, 64, 45])
        assert ((sounding[:, 2] >= 0.7) & (sounding[:, 2] < 0.99)).all()
        assert ((silent[:, 2] >= 0.4) & (silent[:, 2] < 0.95)).all()
    assert "frames without detection: 0 of 10" in capsys.readouterr().out


def test_annotation_rows_miss_rate_scores_and_determinism():
    annotation = {
        "fps": 1,
        "width": 100,
        "height": 100,
        "num_video_frames": 2000,
        "objects": [
            {"class": "cello", "sounding": True, "boxes": [[0, 0, 50, 50]] * 2000},
            {"class": "flute", "sounding": False, "boxes": [[50, 50, 100, 100]] * 2000},
        ],
    }
    frame_ids = list(range(1, 2001))

    def rows(seed):
        return detections.annotation_rows(
            annotation, frame_ids, (100, 100), np.random.default_rng(seed), 0.1
        )

    a = rows(0)
    assert np.array_equal(a, rows(0)) and not np.array_equal(a, rows(1))
    missed = 1 - len(np.unique(a[:, 0])) / len(frame_ids)
    assert 0.08 < missed < 0.12
    by_class = {cls: a[a[:, 1] == layout.CLASS_TO_ID[cls] + 1] for cls in ("cello", "flute")}
    assert np.array_equal(
        by_class["cello"][:, 0], by_class["flute"][:, 0]
    )  # both visible in every kept frame
    sounding_wins = (by_class["cello"][:, 2] > by_class["flute"][:, 2]).mean()
    assert 0.7 < sounding_wins < 0.97  # usually, not always


def test_resume_skips_existing_and_overwrite_is_deterministic(tmp_path, capsys):
    root = make_root(str(tmp_path))
    detect_objects.main(["--root", root, "--from-annotations"])
    first = load(root, "cello", "c0")
    path = layout.detection_path(root, "/cello/c0.mp4")
    os.remove(layout.detection_path(root, "/flute/f0.mp4"))
    detect_objects.main(["--root", root, "--from-annotations"])
    assert "1 written, 1 already done" in capsys.readouterr().out
    detect_objects.main(["--root", root, "--from-annotations", "--overwrite"])
    assert np.array_equal(np.load(path), first)


def test_missing_annotation_is_a_clear_error(tmp_path):
    root = make_root(str(tmp_path))
    os.remove(layout.annotation_path(root, "cello", "c0"))
    with pytest.raises(SystemExit, match="c0.json: annotation not found"):
        detect_objects.main(["--root", root, "--from-annotations"])


ARCH = "fasterrcnn_mobilenet_v3_large_320_fpn"


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """A randomly initialised small detector, 2 classes + background, saved like a user's file."""
    torch.manual_seed(0)
    model = torchvision.models.detection.__dict__[ARCH](
        weights=None, weights_backbone=None, num_classes=3
    )
    folder = tmp_path_factory.mktemp("weights")
    path = str(folder / "detector.pth")
    torch.save(model.state_dict(), path)
    class_map = str(folder / "classes.json")
    with open(class_map, "w") as f:
        json.dump({"1": "cello", "2": "flute"}, f)
    return path, class_map


def test_model_path_writes_cosep_rows(tmp_path, random_weights, capsys):
    root = make_root(str(tmp_path), num_jpgs=3, videos=VIDEOS[:1])
    weights, class_map = random_weights
    detect_objects.main(
        [
            "--root",
            root,
            "--weights",
            weights,
            "--class-map",
            class_map,
            "--arch",
            ARCH,
            "--score-thresh",
            "0",
            "--batch-size",
            "2",
            "--device",
            "cpu",
        ]
    )
    assert "1 written" in capsys.readouterr().out
    for cls, vid, _ in VIDEOS[:1]:
        rows = load(root, cls, vid)  # random weights: K may be 0, the file is still (K, 7)
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 7
        assert set(rows[:, 0].astype(int)) <= {1, 2, 3}
        assert set(rows[:, 1].astype(int)) <= {1, 2}
        assert (rows[:, 2] >= 0).all() and (rows[:, 2] <= 1).all()
        assert (
            (rows[:, 3:5] >= 0).all()
            and (rows[:, 5] <= JPG_W).all()
            and (rows[:, 6] <= JPG_H).all()
        )


def test_model_weights_missing_or_of_another_model_are_clear_errors(tmp_path, random_weights):
    root = make_root(str(tmp_path), num_jpgs=1, videos=VIDEOS[:1])
    weights, class_map = random_weights
    common = ["--root", root, "--class-map", class_map, "--arch", ARCH, "--device", "cpu"]
    with pytest.raises(SystemExit, match="not found"):
        detect_objects.main(common + ["--weights", str(tmp_path / "nope.pth")])
    with pytest.raises(SystemExit, match="does not hold weights of ssdlite320_mobilenet_v3_large"):
        detect_objects.main(
            [
                "--root",
                root,
                "--class-map",
                class_map,
                "--arch",
                "ssdlite320_mobilenet_v3_large",
                "--device",
                "cpu",
                "--weights",
                weights,
            ]
        )
    five = str(tmp_path / "five.json")
    with open(five, "w") as f:
        json.dump({str(i): f"c{i}" for i in range(1, 6)}, f)
    with pytest.raises(SystemExit, match="with 6 classes"):
        detect_objects.main(
            [
                "--root",
                root,
                "--class-map",
                five,
                "--arch",
                ARCH,
                "--device",
                "cpu",
                "--weights",
                weights,
            ]
        )
