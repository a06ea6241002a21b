"""The crop cache: built once, resumable, rejected when built for other crops, and samples read
from it equal the uncached ones (val/test exactly, train within a pixel) without decoding a JPEG."""

import json
import os
import pickle
import random
import shutil

import numpy as np
import pytest
import torch
from test_dataset import IMG, make, make_root
from test_transforms import as_tensor

from dataset import DataError, collate, layout
from dataset.crop_cache import MANIFEST, default_cache_dir, video_paths
from dataset.index import read_index
from dataset.transforms import crop_resize, crop_resized, resize_box
from scripts.cache_crops import build_cache
from scripts.cache_crops import main as cache_crops_main

MODES = {"ccol": 4, "sop": 2}  # mode -> num_mix


def build(root, mode="ccol", lists=("val.csv",), img_size=IMG):
    cache_dir = default_cache_dir(root, img_size, mode)
    failures = build_cache(
        root, cache_dir, [os.path.join(root, name) for name in lists], img_size, mode, workers=1
    )
    return cache_dir, failures


@pytest.fixture(scope="module")
def cached_root(tmp_path_factory):
    """test_dataset's root (top box per frame, one frame without detection) with both caches."""
    root = make_root(str(tmp_path_factory.mktemp("music")))
    for mode in MODES:
        assert build(root, mode)[1] == 0
    return root


@pytest.fixture
def root(cached_root, tmp_path):
    """A private copy for tests that damage files."""
    return shutil.copytree(cached_root, str(tmp_path / "music"))


def pair(root, split, mode="ccol", **kw):
    """(uncached, cached) datasets with the same settings."""
    kw = {"mode": mode, "num_mix": MODES[mode], **kw}
    return make(root, split, **kw), make(
        root, split, crop_cache=default_cache_dir(root, IMG, mode), **kw
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("split", ["val", "test"])
def test_val_and_test_samples_equal_the_uncached_ones(cached_root, split, mode):
    plain, cached = pair(
        cached_root, split, mode, num_frames=7
    )  # frames 2..8: a frame without detection
    for i in range(len(plain)):
        a, b = plain[i], cached[i]
        assert a["infos"] == b["infos"]
        for key in ("frames", "boxes", "audios", "mix", "frame_ids", "sounding", "class_ids"):
            assert torch.equal(a[key], b[key]), key


def window_offsets(crop, view):
    """The (x, y, flipped) placements of the (3, S, S) `crop` as a window of `view` (3, h, w)."""
    S, (_, h, w) = crop.shape[-1], view.shape
    return [
        (x, y, flip)
        for flip in (False, True)
        for y in range(h - S + 1)
        for x in range(w - S + 1)
        if np.array_equal(
            view[:, y : y + S, x : x + S][..., ::-1] if flip else view[:, y : y + S, x : x + S],
            crop,
        )
    ]


@pytest.mark.parametrize("mode", MODES)
def test_train_samples_use_the_same_draws_and_whole_pixel_windows_of_the_cached_boxes(
    cached_root, mode
):
    """Same partners, centres, boxes and audio as uncached; each crop an S x S window of the cached
    resized box. How close that window lies to the uncached crop: the test below."""
    plain, cached = pair(cached_root, "train", mode)
    by_audio = {video.audio: video for video in cached.videos}
    for i in range(len(plain)):
        random.seed(i)
        a = plain[i]
        random.seed(i)
        b = cached[i]  # the same random draws: partners, centre, crop, flip, volume
        assert a["infos"] == b["infos"]
        for key in ("boxes", "audios", "frame_ids"):
            assert torch.equal(a[key], b[key]), key
        for n, audio in enumerate(b["infos"]):
            stored = cached._cached_videos.get(by_audio[audio].frames)
            for t, frame_id in enumerate(b["frame_ids"][n].tolist()):
                assert window_offsets(b["frames"][n, :, t].numpy(), stored.train_view(frame_id)), (
                    i,
                    n,
                    t,
                )
        # Crops a pixel apart differ along this root's sharp colour edges only; a wrong box or
        # frame would differ by ~100 grey levels.
        assert (a["frames"].float() - b["frames"].float()).abs().mean() < 30


@pytest.mark.parametrize(
    "box,size,short",
    [
        ((10, 5, 90, 85), 32, 35),
        ((3, 7, 120, 60), 24, 26),
        ((0, 0, 128, 96), 64, 70),
        ((20, 10, 47, 88), 40, 44),
    ],
)
def test_cached_train_crop_lies_within_a_pixel_of_the_uncached_crop(box, size, short):
    """The cache path computes crop_resized(resize_box(...)), the uncached path crop_resize."""
    x, y = np.meshgrid(np.arange(128), np.arange(96))
    ramps = as_tensor(
        np.stack([2 * x, 2 * y, np.full_like(x, 128)], -1).astype(np.uint8)
    )  # (3, 96, 128)
    resized = resize_box(ramps, box, short).numpy()
    scale = short / min(box[2] - box[0], box[3] - box[1])  # resized px per input px
    for rel in ((0.0, 0.0), (0.3, 0.8), (0.5, 0.5), (0.999, 0.999)):
        cached = crop_resized(resized, size, rel).astype(float)
        uncached = crop_resize(ramps, box, size, short, rel).numpy().astype(float)
        inner = (slice(None), slice(3, -3), slice(3, -3))
        # A ramp's mean gives the crop position: 2 per input pixel along x (channel 0), y (1).
        shift = np.abs(cached[inner].mean((1, 2)) - uncached[inner].mean((1, 2)))[:2] / 2 * scale
        assert (shift <= 1.05).all(), (rel, shift)


def test_crop_offsets_are_uniform_over_whole_pixels():
    resized = np.arange(10)[None, None, :].repeat(4, 1)  # (1, 4, 10): value = x
    starts = {int(crop_resized(resized, 4, (u, 0.0))[0, 0, 0]) for u in np.linspace(0, 0.999, 50)}
    assert starts == set(range(7))  # room 6: offsets 0..6


def test_cached_loader_decodes_no_image(cached_root, monkeypatch):
    def no_decoding(path):
        raise AssertionError(f"decoded {path}")

    monkeypatch.setattr("dataset.music.load_frame", no_decoding)
    monkeypatch.setattr("dataset.crop_cache.load_frame", no_decoding)
    for split in ("train", "val", "test"):
        _, cached = pair(cached_root, split)
        loader = torch.utils.data.DataLoader(
            cached, batch_size=2, num_workers=1, collate_fn=collate
        )
        assert next(iter(loader))["frames"].shape == (2, 4, 3, 3, IMG, IMG)


def test_dataset_pickles_without_its_memory_maps(cached_root):
    _, cached = pair(cached_root, "val")
    cached[0]  # opens 4 memory maps
    clone = pickle.loads(pickle.dumps(cached))
    assert len(pickle.dumps(cached)) < 50_000  # paths, not pixels
    assert torch.equal(clone[0]["frames"], cached[0]["frames"])


def test_manifest_describes_the_cache_and_no_temp_file_is_left(cached_root):
    cache_dir = default_cache_dir(cached_root, IMG, "ccol")
    with open(os.path.join(cache_dir, MANIFEST)) as f:
        manifest = json.load(f)
    assert manifest["img_size"] == IMG and manifest["crops"] == "top_box" and manifest["complete"]
    assert manifest["train_short_side"] == int(IMG * 1.1)
    files = [name for _, _, names in os.walk(cache_dir) for name in names]
    assert not [name for name in files if name.startswith(".tmp")]
    videos = read_index(os.path.join(cached_root, "val.csv"))
    assert len([name for name in files if name.endswith(".mp4.npy")]) == len(videos)


@pytest.mark.parametrize(
    "img_size,mode,problem",
    [
        (IMG + 8, "ccol", "img_size 16 .needed 24."),
        (IMG, "sop", "crops 'top_box' .needed 'full_frame'."),
    ],
)
def test_cache_built_for_other_crops_is_rejected(cached_root, img_size, mode, problem):
    with pytest.raises(DataError, match=problem):
        make(
            cached_root,
            "val",
            img_size=img_size,
            mode=mode,
            num_mix=MODES[mode],
            crop_cache=default_cache_dir(cached_root, IMG, "ccol"),
        )


def test_folder_without_manifest_is_rejected(cached_root, tmp_path):
    with pytest.raises(DataError, match="not a crop cache.*cache_crops.py"):
        make(cached_root, "val", crop_cache=str(tmp_path))


def test_video_missing_from_the_cache_names_its_file(root):
    cache_dir, failures = build(
        root, lists=("test.csv",), img_size=IMG + 2
    )  # test.csv: one video per class
    assert failures == 0
    ds = make(root, "val", img_size=IMG + 2, crop_cache=cache_dir)
    missing = read_index(os.path.join(root, "val.csv"))[1]  # vid1 of the first class
    with pytest.raises(DataError, match="not in the crop cache") as err:
        ds[1]
    assert video_paths(cache_dir, missing.frames)[1] in str(err.value)


def test_interrupted_build_is_rejected_then_resumed(root, capsys):
    cache_dir = default_cache_dir(root, IMG, "ccol")
    video = read_index(os.path.join(root, "val.csv"))[3]
    pixels_path, table_path = video_paths(cache_dir, video.frames)
    os.remove(table_path)  # as if killed before this video's table was renamed
    with open(os.path.join(cache_dir, MANIFEST)) as f:
        manifest = json.load(f)
    with open(os.path.join(cache_dir, MANIFEST), "w") as f:
        json.dump({**manifest, "complete": False}, f)
    with pytest.raises(DataError, match="incomplete"):
        make(root, "val", crop_cache=cache_dir)
    before = {
        p: os.path.getmtime(video_paths(cache_dir, v.frames)[0])
        for p, v in enumerate(read_index(os.path.join(root, "val.csv")))
        if p != 3
    }
    capsys.readouterr()
    assert (
        cache_crops_main(
            [
                "--root",
                root,
                "--img-size",
                str(IMG),
                "--lists",
                os.path.join(root, "val.csv"),
                "--workers",
                "1",
            ]
        )
        == 0
    )
    assert "9 already cached, 1 to build" in capsys.readouterr().out
    assert all(
        os.path.getmtime(video_paths(cache_dir, v.frames)[0]) == before[p]
        for p, v in enumerate(read_index(os.path.join(root, "val.csv")))
        if p != 3
    )
    assert os.path.isfile(table_path)
    assert make(root, "val", crop_cache=cache_dir)[0] is not None


def test_bad_frame_fails_its_video_only_and_leaves_the_cache_incomplete(root, capsys):
    video = read_index(os.path.join(root, "val.csv"))[0]
    jpg = os.path.join(layout.frames_dir(root, video.frames), layout.frame_name(4))
    open(jpg, "wb").write(b"not a jpeg")
    cache_dir, failures = build(root, img_size=IMG + 4)
    assert failures == 1 and jpg in capsys.readouterr().err
    assert not os.path.exists(video_paths(cache_dir, video.frames)[1])
    assert os.path.isfile(
        video_paths(cache_dir, read_index(os.path.join(root, "val.csv"))[1].frames)[1]
    )
    with pytest.raises(DataError, match="incomplete"):
        make(root, "val", img_size=IMG + 4, crop_cache=cache_dir)


def test_rebuilding_into_a_cache_of_other_crops_is_refused(cached_root):
    with pytest.raises(SystemExit, match="img_size 16"):
        build_cache(
            cached_root,
            default_cache_dir(cached_root, IMG, "ccol"),
            [os.path.join(cached_root, "val.csv")],
            IMG + 8,
            "ccol",
            workers=1,
        )


def test_video_box_cache_is_its_own_kind(cached_root, tmp_path):
    """A cache follows the loader's box rule: built for one rule, refused for the other."""
    root = shutil.copytree(cached_root, str(tmp_path / "music"))
    cache_dir = default_cache_dir(root, IMG, "ccol", "video")
    assert cache_dir.endswith(f"video_box_{IMG}")
    lists = [os.path.join(root, "val.csv")]
    assert build_cache(root, cache_dir, lists, IMG, "ccol", workers=1, box_rule="video") == 0
    with open(os.path.join(cache_dir, MANIFEST)) as f:
        assert json.load(f)["crops"] == "video_box"
    plain = make(root, "val", box_rule="video")
    cached = make(root, "val", box_rule="video", crop_cache=cache_dir)
    assert torch.equal(plain[0]["frames"], cached[0]["frames"])
    with pytest.raises(DataError, match="crops 'video_box' .needed 'top_box'."):
        make(root, "val", crop_cache=cache_dir)


def test_cache_folders_are_named_by_their_crops_beside_the_data_or_under_the_fallback(tmp_path):
    root = str(tmp_path / "music")
    assert default_cache_dir(root, 32, "ccol") == os.path.join(root, "crop_cache", "top_box_32")
    assert default_cache_dir(root, 32, "ccol", "video").endswith("video_box_32")
    assert default_cache_dir(root, 224, "sop", "video").endswith("full_frame_224")
    # A root that cannot hold its crop_cache/ (here a file stands where the folder would go).
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    (blocked / "crop_cache").write_text("not a folder")
    assert default_cache_dir(str(blocked), 32, "sop", fallback=str(tmp_path / "ckpt")) == str(
        tmp_path / "ckpt" / "crop_cache" / "blocked" / "full_frame_32"
    )
    assert default_cache_dir(root, 32, "sop", fallback="unused") == os.path.join(
        root, "crop_cache", "full_frame_32"
    )
