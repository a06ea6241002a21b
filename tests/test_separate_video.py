"""End to end tests of scripts/separate_video.py.

On a synthetic video with the tiny trained CCoL run.
"""

import json
import os
import re
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import torchvision
from conftest import run
from PIL import Image

import separation
import sounding_maps
from dataset import layout
from dataset.readers import frame_size, list_frame_ids
from scripts import detect_objects, separate_video
from viz.video_page import MAP_PX


@pytest.fixture(scope="module")
def video(tiny_data_root, tmp_path_factory):
    """A synthetic video that shows a silent object besides its sounding one:
    (mp4, annotation json path, annotation, detection npy of its exact boxes: the root's own
    detections simulate a detector's misses and false positives)."""
    root = str(tiny_data_root)
    for class_name in sorted(os.listdir(os.path.join(root, layout.ANNOTATIONS))):
        for name in sorted(os.listdir(os.path.join(root, layout.ANNOTATIONS, class_name))):
            video_id = name[: -len(".json")]
            path = layout.annotation_path(root, class_name, video_id)
            with open(path) as f:
                annotation = json.load(f)
            if len(annotation["objects"]) == 2:
                frames = layout.frames_dir(root, layout.video_key(class_name, video_id) + ".mp4")
                frame_ids = sorted(list_frame_ids(frames))
                size = frame_size(os.path.join(frames, layout.frame_name(frame_ids[0])))
                rows = detect_objects.annotation_rows(
                    annotation, frame_ids, size, np.random.default_rng(0), miss_rate=0.0
                )
                npy = tmp_path_factory.mktemp("detections") / f"{video_id}.mp4.npy"
                np.save(npy, rows)
                return (
                    os.path.join(root, layout.VIDEOS, class_name, video_id + ".mp4"),
                    path,
                    annotation,
                    str(npy),
                )
    pytest.fail("the tiny root has no video with a silent object")


def check_outputs(out, annotation, names, rate=11025, window=4095):
    info = json.loads((out / "objects.json").read_text())
    assert [o["name"] for o in info["objects"]] == names
    mixture, mix_rate = sf.read(out / "mixture.wav", dtype="float32")
    assert mix_rate == rate
    assert abs(len(mixture) - annotation["duration"] * rate) <= window, (
        "mixture is not the whole track"
    )
    estimates = []
    for obj in info["objects"]:
        wav, wav_rate = sf.read(out / obj["wav"], dtype="float32")
        assert wav_rate == rate and wav.shape == mixture.shape
        assert np.isfinite(wav).all() and np.abs(wav).max() > 0
        estimates.append(wav)
        assert 0 <= obj["sounding_prob"] <= 1 and len(obj["sounding_prob_windows"]) == len(
            info["window_starts"]
        )
    # Soft masks need not sum to one; the estimates' sum must still be of the mixture's order.
    energy = lambda x: float(np.sum(x.astype(np.float64) ** 2))  # noqa: E731
    ratio = energy(np.sum(estimates, 0)) / energy(mixture)
    assert 0.01 < ratio < 10, ratio
    # Windows cover the track: consecutive starts are at most a hop apart and the last ends at
    # the end.
    starts = np.array(info["window_starts"])
    assert starts[0] == 0 and starts[-1] + window == len(mixture)
    assert np.diff(starts).max() <= window // 2
    # Each object's sounding maps over time, on the page.
    page = (out / "index.html").read_text()
    assert "where it sounds (grounding map" in page
    for name in names:
        strip = Image.open(out / "media" / f"{name}_map.jpg")
        assert strip.height == MAP_PX and strip.width > 2 * MAP_PX

    page = (out / "index.html").read_text()
    refs = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert refs, "the page references no media"
    for ref in refs:
        assert (out / ref).is_file(), f"index.html references missing {ref}"
    for obj in info["objects"]:
        assert obj["wav"] in refs and f"media/{obj['name']}_frames.jpg" in refs
    assert "mixture.wav" in refs and "sounding p = " in page
    return info


def test_separates_a_video_from_its_detection_file(trained_runs, video, tmp_path):
    mp4, _, annotation, npy = video
    out = tmp_path / "sep"
    proc = run(
        [
            sys.executable,
            "scripts/separate_video.py",
            "--run",
            trained_runs / "ccol",
            "--video",
            mp4,
            "--detections",
            npy,
            "--out",
            out,
        ]
    )
    # detection files carry class ids (MUSIC id + 1 for synthetic data); without --class-map
    # they name the objects
    ids = sorted(layout.CLASS_TO_ID[o["class"]] + 1 for o in annotation["objects"])
    check_outputs(out, annotation, [f"class{i}" for i in ids])
    assert "page: " in proc.stdout


def test_annotation_boxes_name_the_objects_and_gate(trained_runs, video, tmp_path):
    mp4, annotation_path, annotation, _ = video
    out = tmp_path / "sep"
    info = separate_video.main(
        [
            "--run",
            str(trained_runs / "ccol"),
            "--video",
            mp4,
            "--out",
            str(out),
            "--from-annotations",
            annotation_path,
            "--gate",
            "--hop-sec",
            "0.1",
        ]
    )
    names = sorted((o["class"] for o in annotation["objects"]), key=lambda c: layout.CLASS_TO_ID[c])
    check_outputs(out, annotation, names)
    assert info["gated"] and info["hop_sec"] == pytest.approx(0.1, abs=1e-3)


def test_detector_weights_give_the_boxes(trained_runs, video, tmp_path):
    """A randomly initialised torchvision detector.

    Whatever it finds becomes objects named by the class map.
    """
    torch.manual_seed(0)
    arch = "fasterrcnn_mobilenet_v3_large_320_fpn"
    detector = torchvision.models.detection.__dict__[arch](
        weights=None, weights_backbone=None, num_classes=3
    )
    torch.save(detector.state_dict(), tmp_path / "detector.pth")
    (tmp_path / "classes.json").write_text(json.dumps({"1": "cello", "2": "flute"}))
    out = tmp_path / "sep"
    info = separate_video.main(
        [
            "--run",
            str(trained_runs / "ccol"),
            "--video",
            video[0],
            "--out",
            str(out),
            "--weights",
            str(tmp_path / "detector.pth"),
            "--class-map",
            str(tmp_path / "classes.json"),
            "--arch",
            arch,
            "--score-thresh",
            "0",
            "--device",
            "cpu",
        ]
    )
    names = [o["name"] for o in info["objects"]]
    assert names and set(names) <= {"cello", "flute"}
    assert all((out / f"{name}.wav").is_file() for name in names)
    assert np.load(out / "detections.npy").shape[1] == 7


def test_masks_of_one_give_back_the_mixture(trained_runs, video, monkeypatch):
    """With every mask 1, overlap-added windows must rebuild the whole mixture.

    Checks the windowing.
    """
    args, model, _ = separation.load_run(str(trained_runs / "ccol"), torch.device("cpu"))
    monkeypatch.setattr(
        model,
        "object_masks",
        lambda spec, frames: torch.ones(
            frames.shape[0], frames.shape[1], 1, *spec["mag_mix_w"].shape[-2:]
        ),
    )
    rng = np.random.default_rng(0)
    track = (0.3 * rng.standard_normal(3 * args.aud_len + 1234)).clip(-1, 1).astype(np.float32)
    num_frames = 4
    crops = torch.zeros(2, num_frames, 3, args.img_size, args.img_size, dtype=torch.uint8)
    for hop in (args.aud_len // 2, args.aud_len // 3 + 7):
        starts = separation.window_starts(len(track), args.aud_len, hop)
        frame_ids = separation.window_frames(starts, args, num_frames)
        assert frame_ids.shape == (len(starts), args.num_frames) and frame_ids.min() >= 1
        estimates, probs = separation.separate(
            model, args, track, crops, starts, frame_ids, 5, gate=False, device=torch.device("cpu")
        )
        assert estimates.shape == (2, len(track)) and probs.shape == (len(starts), 2)
        for estimate in estimates:
            # The iSTFT of a clip is least exact at its last samples, which no later window covers.
            np.testing.assert_allclose(estimate[:-8], track[:-8], atol=1e-4)
            np.testing.assert_allclose(estimate, track, atol=1e-3)


def test_window_starts_cover_the_track():
    assert separation.window_starts(10, 4, 2).tolist() == [0, 2, 4, 6]
    assert separation.window_starts(11, 4, 2).tolist() == [0, 2, 4, 6, 7]
    assert separation.window_starts(3, 4, 2).tolist() == [0]  # shorter than a window: padded


def test_missing_boxes_and_grounding_only_runs_are_clear_errors(trained_runs, video, tmp_path):
    mp4 = video[0]
    common = ["--video", mp4, "--out", str(tmp_path / "sep")]
    with pytest.raises(SystemExit, match=r"no object boxes: pass --detections .*--weights"):
        separate_video.main(["--run", str(trained_runs / "ccol"), *common])
    with pytest.raises(SystemExit, match="GRD run"):
        separate_video.main(["--run", str(trained_runs / "grd"), *common, "--detections", video[3]])
    with pytest.raises(SystemExit, match="--detections x.npy: file not found"):
        separate_video.main(["--run", str(trained_runs / "ccol"), *common, "--detections", "x.npy"])
    with pytest.raises(SystemExit, match="--video .*nope.mp4: file not found"):
        separate_video.main(
            [
                "--run",
                str(trained_runs / "ccol"),
                "--video",
                str(tmp_path / "nope.mp4"),
                "--out",
                str(tmp_path / "sep"),
                "--detections",
                "x.npy",
            ]
        )
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((3, 5), np.float32))
    with pytest.raises(SystemExit, match=r"bad.npy: detection array has shape \(3, 5\)"):
        separate_video.main(
            ["--run", str(trained_runs / "ccol"), *common, "--detections", str(bad)]
        )


def test_a_failed_run_leaves_no_output_folder(trained_runs, video, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(open(video[0], "rb").read()[:2000])
    out = tmp_path / "sep"
    with pytest.raises(SystemExit, match="cannot extract frames and audio"):
        separate_video.main(
            [
                "--run",
                str(trained_runs / "ccol"),
                "--video",
                str(broken),
                "--out",
                str(out),
                "--detections",
                video[3],
            ]
        )
    assert not out.exists()
    outside = tmp_path / "outside.npy"
    dets = np.load(video[3])
    dets[:, [3, 5]] += 10_000
    np.save(outside, dets)
    with pytest.raises(SystemExit, match="boxes lie outside the 128x96 frames"):
        separate_video.main(
            [
                "--run",
                str(trained_runs / "ccol"),
                "--video",
                video[0],
                "--out",
                str(out),
                "--detections",
                str(outside),
            ]
        )
    assert not out.exists()
    out.mkdir()
    (out / "mine.txt").write_text("kept")  # a folder the user made is left as it was
    with pytest.raises(SystemExit):
        separate_video.main(
            [
                "--run",
                str(trained_runs / "ccol"),
                "--video",
                str(broken),
                "--out",
                str(out),
                "--detections",
                video[3],
            ]
        )
    assert os.listdir(out) == ["mine.txt"]


def test_a_demo_run_draws_the_maps_it_was_trained_for(trained_runs, video, tmp_path, monkeypatch):
    """The tiny runs are of the demo profile (--ground_map window, --box_rule video): inference
    takes both from the run's args.json, with no --profile, and draws window maps."""
    args, _, _ = separation.load_run(str(trained_runs / "ccol"), torch.device("cpu"))
    assert (args.profile, args.ground_map, args.box_rule) == ("demo", "window", "video")
    windows = []
    window_grounding = sounding_maps.window_grounding

    def counted(nets, audio, frames, *inputs, **kw):
        windows.append(frames.shape)  # (B, N, 3, T, H, W)
        return window_grounding(nets, audio, frames, *inputs, **kw)

    monkeypatch.setattr(sounding_maps, "window_grounding", counted)
    mp4, _, _, npy = video
    out = tmp_path / "sep"
    separate_video.main(["--run", str(trained_runs / "ccol"), "--video", mp4, "--detections", npy,
                         "--out", str(out)])  # fmt: skip
    assert windows, "the grounding maps were not of windows"
    assert (out / "index.html").is_file()
