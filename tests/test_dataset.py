"""Tests of the MUSIC mixture loader on a tiny data root written into tmp_path."""

import logging
import os
import random
import shutil
import sys

import conftest
import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dataset import (  # noqa: E402
    DataError,
    MUSICMixDataset,
    collate,
    layout,  # noqa: E402
    normalize_frames,
    summarize,
)
from dataset.clips import clip_margin, frame_offsets, last_centre, min_video_frames  # noqa: E402
from dataset.index import (  # noqa: E402
    read_index,
    read_sep_list,
    split_leaks,
    split_overlaps,
    val_in_train,
)

CLASSES = ("accordion", "cello", "flute", "tuba", "violin")
VIDEOS_PER_CLASS = 2
NUM_FRAMES = 8
WIDTH, HEIGHT = 48, 36
SECONDS = 8
RATE = layout.AUDIO_RATE
AUD_LEN = 4095  # odd, like the reference's 65535
IMG = 16
RED_BOX = (6, 10, 18, 26)  # drawn 2 px larger, so the box interior is pure colour
GREEN_BOX = (28, 10, 42, 26)
NO_DETECTION_FRAME = 5  # frame of every video without a detection row
GREEN_WINS_FRAME = 3  # frame where the green box scores higher than the red one
INDEX_DIR = os.path.join(REPO, "data", "ccol_index")


def background(frame_id):
    return 20 + 25 * frame_id


def write_frame(path, frame_id):
    img = np.full((HEIGHT, WIDTH, 3), background(frame_id), np.uint8)
    for (x1, y1, x2, y2), colour in ((RED_BOX, (255, 0, 0)), (GREEN_BOX, (0, 255, 0))):
        img[y1 - 2 : y2 + 2, x1 - 2 : x2 + 2] = colour
    Image.fromarray(img).save(path, quality=95, subsampling=0)


def detection_rows(num_frames):
    rows = []
    for k in range(1, num_frames + 1):
        if k == NO_DETECTION_FRAME:
            continue
        red, green = (0.5, 0.8) if k == GREEN_WINS_FRAME else (0.9, 0.6)
        rows.append([k, 1, red, *RED_BOX])
        rows.append([k, 2, green, *GREEN_BOX])
    return np.array(rows, np.float32)


def make_root(root):
    """A data root with CLASSES x VIDEOS_PER_CLASS videos.

    val.csv lists all, test.csv one per class.
    """
    entries = []
    for c, cls in enumerate(CLASSES):
        for v in range(VIDEOS_PER_CLASS):
            vid = f"vid{v}"
            rel = layout.video_key(cls, vid)
            frames = layout.frames_dir(root, rel + ".mp4")
            os.makedirs(frames)
            for k in range(1, NUM_FRAMES + 1):
                write_frame(os.path.join(frames, layout.frame_name(k)), k)
            wav = layout.audio_path(root, rel + ".wav")
            os.makedirs(os.path.dirname(wav), exist_ok=True)
            noise = np.random.default_rng(10 * c + v).uniform(-0.3, 0.3, SECONDS * RATE)
            sf.write(wav, noise, RATE, subtype="PCM_16")
            det = layout.detection_path(root, rel + ".mp4")
            os.makedirs(os.path.dirname(det), exist_ok=True)
            np.save(det, detection_rows(NUM_FRAMES))
            entries.append(f"{rel}.wav,{rel}.mp4,{NUM_FRAMES}")
    with open(os.path.join(root, "val.csv"), "w") as f:
        f.write("\n".join(entries) + "\n")
    test = entries[::VIDEOS_PER_CLASS]
    with open(os.path.join(root, "test.csv"), "w") as f:
        f.write("\n".join(test) + "\n")
    audio = [e.split(",")[0] for e in test]
    rows = [audio[i:] + audio[:i] for i in range(len(audio))]  # 5 classes, rotate
    with open(os.path.join(root, "test_sep.csv"), "w") as f:
        f.write("\n".join(", ".join(r[:4]) for r in rows) + "\n")
    return root


@pytest.fixture(scope="module")
def clean_root(tmp_path_factory):
    return make_root(str(tmp_path_factory.mktemp("music")))


@pytest.fixture
def root(clean_root, tmp_path):
    """A private copy for tests that damage files."""
    return shutil.copytree(clean_root, str(tmp_path / "music"))


def make(root, split="val", **kw):
    kw = {"num_frames": 3, "img_size": IMG, "aud_len": AUD_LEN, **kw}
    list_file = os.path.join(root, "test.csv" if split == "test" else "val.csv")
    sep = os.path.join(root, "test_sep.csv") if split == "test" else None
    return MUSICMixDataset(root, list_file, split, sep_list=sep, **kw)


def expected_window(root, audio_rel, center):
    data, rate = sf.read(layout.audio_path(root, audio_rel), dtype="float32")
    start = int(layout.frame_time(center) * rate) - AUD_LEN // 2
    start = min(max(start, 0), len(data) - AUD_LEN)
    return data[start : start + AUD_LEN]


# ---------------------------------------------------------------- shapes and content


@pytest.mark.parametrize("mode,num_mix", [("ccol", 4), ("sop", 2)])
@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_sample_keys_shapes_dtypes(clean_root, split, mode, num_mix):
    ds = make(clean_root, split, mode=mode, num_mix=num_mix)
    s = ds[1]
    N, T, L = num_mix, 3, AUD_LEN
    expected = {
        "audios": ((N, L), torch.float32),
        "mix": ((L,), torch.float32),
        "frames": ((N, 3, T, IMG, IMG), torch.uint8),
        "sounding": ((N,), torch.bool),
        "class_ids": ((N,), torch.int64),
        "boxes": ((N, T, 4), torch.float32),
        "frame_ids": ((N, T), torch.int64),
        "index": ((), torch.int64),
    }
    for key, (shape, dtype) in expected.items():
        assert tuple(s[key].shape) == shape and s[key].dtype == dtype, key
    assert len(s["infos"]) == N and all(isinstance(p, str) for p in s["infos"])
    assert len(set(s["class_ids"].tolist())) == N
    assert [layout.CLASS_TO_ID[layout.class_of(p)] for p in s["infos"]] == s["class_ids"].tolist()
    assert torch.allclose(s["mix"], s["audios"].sum(0))
    ids = s["frame_ids"]
    assert (ids >= 1).all() and (ids <= NUM_FRAMES).all() and (ids.diff(dim=1) == 1).all()
    if mode == "ccol":
        assert s["sounding"].tolist() == [True, False, True, False]
        assert (s["audios"][1::2] == 0).all() and (s["audios"][0::2].abs().sum(1) > 0).all()
    else:
        assert s["sounding"].all() and (s["audios"].abs().sum(1) > 0).all()
        assert (s["boxes"] == torch.tensor([0.0, 0, WIDTH, HEIGHT])).all()


@pytest.mark.parametrize("split", ["val", "test"])
def test_ccol_audio_is_the_centred_window_halved(clean_root, split):
    ds = make(clean_root, split)
    s = ds[2]
    center = NUM_FRAMES // 2 + 1
    assert (s["frame_ids"] == torch.tensor([center - 1, center, center + 1])).all()
    for n in (0, 2):
        window = expected_window(clean_root, s["infos"][n], center)
        assert torch.equal(s["audios"][n], torch.from_numpy(window) / 2)
    assert (s["audios"][[1, 3]] == 0).all()
    assert torch.allclose(s["mix"], s["audios"][0] + s["audios"][2], atol=0, rtol=0)


def test_sop_scales_each_clip_by_one_over_n(clean_root):
    ds = make(clean_root, "val", mode="sop", num_mix=2)
    s = ds[0]
    center = NUM_FRAMES // 2 + 1
    for n in range(2):
        window = expected_window(clean_root, s["infos"][n], center)
        assert torch.equal(s["audios"][n], torch.from_numpy(window) / 2)


def test_sop_needs_no_detection_files(root):
    shutil.rmtree(os.path.join(root, layout.DETECTIONS))
    assert make(root, "val", mode="sop", num_mix=2)[0] is not None


def test_train_samples_are_random_and_valid(clean_root):
    random.seed(0)
    ds = make(clean_root, "train", dup_trainset=3)
    assert len(ds) == 3 * len(CLASSES) * VIDEOS_PER_CLASS
    samples = [ds[i] for i in range(12)]
    assert len({tuple(s["infos"]) for s in samples}) > 6
    assert len({int(s["frame_ids"][0, 1]) for s in samples}) > 1
    for i, s in enumerate(samples):
        assert s["infos"][0] == ds.videos[i % len(ds.videos)].audio
        assert s["audios"][0::2].abs().max() <= 0.5  # clipped to [-1, 1], then halved
        assert (s["boxes"][..., 2] <= WIDTH).all() and (s["boxes"][..., 3] <= HEIGHT).all()


def test_val_partners_fixed_per_index_and_global_rng_untouched(clean_root):
    state = random.getstate()
    a, b = make(clean_root, "val"), make(clean_root, "val")
    first = [a[i]["infos"] for i in range(len(a))]
    assert first == [b[i]["infos"] for i in range(len(b))]
    assert random.getstate() == state
    assert len({tuple(x[1:]) for x in first}) > 1  # partners vary with index
    assert any(make(clean_root, "val", seed=s)[0]["infos"] != first[0] for s in range(5))


def test_test_rows_map_to_their_videos(clean_root):
    ds = make(clean_root, "test")
    rows = read_sep_list(os.path.join(clean_root, "test_sep.csv"))
    assert len(ds) == len(rows)
    for i, row in enumerate(rows):
        assert ds[i]["infos"] == row


def test_test_row_naming_an_unlisted_video_is_an_error(root):
    with open(os.path.join(root, "test_sep.csv"), "a") as f:
        f.write("/cello/vid1.wav, /flute/vid0.wav, /tuba/vid0.wav, /violin/vid0.wav\n")
    ds = make(root, "test")
    with pytest.raises(DataError, match="cello/vid1.wav.*test.csv"):
        ds[len(ds) - 1]


def test_crop_uses_top_scoring_box_and_full_frame_without_detection(clean_root):
    s = make(clean_root, "val", num_frames=7)[0]  # centre 5: frames 2..8
    ids = s["frame_ids"][0].tolist()
    assert ids == list(range(2, 9))
    for t, k in enumerate(ids):
        crop = s["frames"][0, :, t].float()  # (3, S, S)
        box = s["boxes"][0, t].tolist()
        if k == NO_DETECTION_FRAME:
            assert box == [0, 0, WIDTH, HEIGHT]
            assert abs(crop[:, 0].mean().item() - background(k)) < 8  # top row is background
        elif k == GREEN_WINS_FRAME:
            assert box == list(GREEN_BOX)
            assert crop[1].mean() > 230 and crop[0].mean() < 25
        else:
            assert box == list(RED_BOX)
            assert crop[0].mean() > 230 and crop[1].mean() < 25


# ---------------------------------------------------------------- bad input


def _video0(root):
    return read_index(os.path.join(root, "val.csv"))[0]


def _center_jpg(root):
    return os.path.join(
        layout.frames_dir(root, _video0(root).frames), layout.frame_name(NUM_FRAMES // 2 + 1)
    )


def _rewrite_val(root, edit):
    path = os.path.join(root, "val.csv")
    lines = open(path).read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(edit(lines)) + "\n")


def missing_wav(root):
    path = layout.audio_path(root, _video0(root).audio)
    os.remove(path)
    return 0, path, "not found"


def corrupt_wav(root):
    path = layout.audio_path(root, _video0(root).audio)
    open(path, "wb").write(b"RIFF\x00\x00garbage" * 20)
    return 0, path, "unreadable audio"


def short_wav(root):
    path = layout.audio_path(root, _video0(root).audio)
    sf.write(path, np.zeros(AUD_LEN // 2), RATE, subtype="PCM_16")
    return 0, path, "shorter than one clip"


def missing_jpg(root):
    path = _center_jpg(root)
    os.remove(path)
    return 0, path, "frame missing"


def corrupt_jpg(root):
    path = _center_jpg(root)
    open(path, "wb").write(b"\xff\xd8\xff\xe0 not really a jpeg")
    return 0, path, "unreadable image"


def missing_npy(root):
    path = layout.detection_path(root, _video0(root).frames)
    os.remove(path)
    return 0, path, "detection file not found"


def empty_npy(root):
    path = layout.detection_path(root, _video0(root).frames)
    np.save(path, np.zeros((0, 7), np.float32))
    return 0, path, "empty detection file"


def malformed_npy(root):
    path = layout.detection_path(root, _video0(root).frames)
    np.save(path, np.zeros((3, 6), np.float32))
    return 0, path, r"shape \(3, 6\)"


def row_pointing_nowhere(root):
    _rewrite_val(root, lambda lines: ["/cello/ghost.wav,/cello/ghost.mp4,8"] + lines)
    return 0, os.path.join(root, "val.csv"), "points nowhere"


def fewer_frames_than_csv(root):
    video = _video0(root)
    _rewrite_val(root, lambda lines: [f"{video.audio},{video.frames},{NUM_FRAMES + 3}"] + lines[1:])
    path = os.path.join(layout.frames_dir(root, video.frames), layout.frame_name(NUM_FRAMES + 1))
    return 0, path, "lists 11 frames, 3 of them are absent"


def wav_shorter_than_frames(root):
    """3 s of audio for 8 frames: the centre frame's clip (4.5 s) lies past the end of the file."""
    path = layout.audio_path(root, _video0(root).audio)
    samples, rate = sf.read(path, dtype="float32")
    sf.write(path, samples[: 3 * rate], rate, subtype="PCM_16")
    return 0, path, "shorter than its frames"


def nan_wav(root):
    return 0, conftest.nan_wav(root, _video0(root)), "NaN or inf samples"


def boxes_outside_image(root):
    path = layout.detection_path(root, _video0(root).frames)
    rows = detection_rows(NUM_FRAMES)
    rows[:, [3, 5]] += WIDTH  # every box right of the 48 px wide frames
    np.save(path, rows)
    return 0, path, "boxes lie outside the 48x36 frames"


def detections_past_last_frame(root):
    path = layout.detection_path(root, _video0(root).frames)
    rows = detection_rows(NUM_FRAMES)
    rows[:, 0] += NUM_FRAMES  # rows of frames 9..16 for a video of 8
    np.save(path, rows)
    return 0, path, "past the video's last frame 8"


BAD_INPUTS = [
    missing_wav,
    corrupt_wav,
    short_wav,
    missing_jpg,
    corrupt_jpg,
    missing_npy,
    empty_npy,
    malformed_npy,
    row_pointing_nowhere,
    fewer_frames_than_csv,
    wav_shorter_than_frames,
    nan_wav,
    boxes_outside_image,
    detections_past_last_frame,
]


@pytest.mark.parametrize("damage", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input_raises_data_error_naming_the_file(root, damage):
    index, path, problem = damage(root)
    ds = make(root, "val")
    with pytest.raises(DataError, match=problem) as err:
        ds[index]
    assert path in str(err.value)


@pytest.mark.parametrize("damage", BAD_INPUTS, ids=lambda f: f.__name__)
def test_bad_input_is_skipped_logged_once_and_counted(root, damage, caplog):
    index, path, _ = damage(root)
    ds = make(root, "val", on_error="skip")
    with caplog.at_level(logging.WARNING):
        items = [ds[i] for i in range(len(ds))] + [ds[index]]
    assert items[index] is None and items[-1] is None
    batch = collate(items)
    assert batch["skipped"] == sum(x is None for x in items) and batch["skipped"] >= 2
    assert batch["audios"].shape[0] == len(items) - batch["skipped"]
    assert len(batch["infos"]) == batch["audios"].shape[0]
    summary = ds.error_summary()
    assert sum(v["count"] for v in summary.values()) == batch["skipped"]
    assert path in next(iter(summary.values()))["message"]
    assert sum(path in r.getMessage() for r in caplog.records) == 1


def test_collate_of_only_skipped_samples_is_none():
    assert collate([None, None]) is None


def test_data_error_crosses_dataloader_workers(root):
    missing_npy(root)
    loader = torch.utils.data.DataLoader(
        make(root, "val"), batch_size=2, num_workers=1, collate_fn=collate
    )
    with pytest.raises(DataError, match="detection file not found"):
        next(iter(loader))


def test_constructor_rejects_bad_arguments(clean_root):
    with pytest.raises(ValueError, match="split"):
        make(clean_root, "dev")
    with pytest.raises(ValueError, match="sep_list"):
        MUSICMixDataset(clean_root, os.path.join(clean_root, "test.csv"), "test")
    with pytest.raises(ValueError, match="even"):
        make(clean_root, "val", num_mix=3)


@pytest.mark.parametrize("num_frames, stride", [(1, 1), (2, 3), (3, 1), (3, 4), (4, 2)])
def test_every_clip_frame_stays_inside_the_video(num_frames, stride):
    """The loader's frames of a clip centred anywhere it may centre lie in 1..F, with the clip's
    audio centre at least a second (one frame at 1 fps) from either end."""
    margin = clip_margin(num_frames, stride, 1)
    offsets = frame_offsets(num_frames, stride)
    assert len(offsets) == num_frames and offsets[num_frames // 2] == 0
    assert np.all(np.diff(offsets) == stride)
    for video_frames in range(min_video_frames(margin), min_video_frames(margin) + 4):
        for centre in (margin + 1, last_centre(video_frames, margin)):
            assert 1 <= (centre + offsets).min() and (centre + offsets).max() <= video_frames
            assert margin + 1 <= centre <= video_frames - margin


def test_the_loader_takes_its_clip_geometry_from_clips(clean_root):
    ds = make(clean_root, "val", num_frames=3, stride_frames=2)
    assert ds.margin == clip_margin(3, 2, 1) == 2
    assert ds.frame_offsets.tolist() == frame_offsets(3, 2).tolist() == [-2, 0, 2]
    assert (ds[0]["frame_ids"][0] - ds[0]["frame_ids"][0][1]).tolist() == [-2, 0, 2]


def test_clip_longer_than_video_frames_is_an_error(clean_root):
    ds = make(clean_root, "val", num_frames=11)
    with pytest.raises(DataError, match="frames listed"):
        ds[0]


# ---------------------------------------------------------------- the authors' CSVs, utilities


def test_shipped_index_files_parse():
    lists = {s: read_index(os.path.join(INDEX_DIR, f"{s}.csv")) for s in ("train", "val", "test")}
    assert [len(lists[s]) for s in ("train", "val", "test")] == [468, 52, 26]
    rows = read_sep_list(os.path.join(INDEX_DIR, "test_sep.csv"))
    assert len(rows) == 260
    test_audio = {v.audio for v in lists["test"]}
    assert all(
        len(r) == 4 and set(r) <= test_audio and len({layout.class_of(p) for p in r}) == 4
        for r in rows
    )
    assert {r[0] for r in rows} == test_audio


def test_summarize_reports_the_reference_split_leak():
    assert "videos in both val and test: 24" in summarize(INDEX_DIR) and "260 rows" in summarize(
        INDEX_DIR
    )


def test_leaks_are_the_shared_videos_of_each_pair_of_splits(tmp_path):
    """The authors' lists share 2 test videos with train and 24 with val."""
    lists = {split: read_index(os.path.join(INDEX_DIR, f"{split}.csv")) for split in layout.SPLITS}
    overlaps = split_overlaps(lists)
    assert list(overlaps) == [("train", "test"), ("val", "test"), ("val", "train")]
    test = {v.audio for v in lists["test"]}
    assert len(overlaps["train", "test"]) == 2 and len(overlaps["val", "test"]) == 24
    assert {v.audio for v in overlaps["train", "test"] + overlaps["val", "test"]} <= test
    assert overlaps["val", "train"] == []
    assert list(split_overlaps({"train": lists["train"], "val": lists["val"]})) == [
        ("val", "train")
    ]
    # Training's check of the index files: the same pairs; a missing list compares nothing.
    paths = {split: os.path.join(INDEX_DIR, f"{split}.csv") for split in layout.SPLITS}
    leaks = split_leaks(paths["train"], paths["val"], paths["test"])
    assert {split: len(leaked) for split, leaked in leaks.items()} == {"train": 2, "val": 24}
    assert split_leaks(paths["train"], paths["val"], str(tmp_path / "none.csv")) == {}
    assert val_in_train(paths["train"], paths["val"]) == []
    assert val_in_train(paths["train"], str(tmp_path / "none.csv")) == []
    val_copy = tmp_path / "val.csv"
    shutil.copy(paths["val"], val_copy)
    with open(val_copy, "a") as f:
        f.write(open(paths["train"]).readline())
    assert [v.audio for v in val_in_train(paths["train"], str(val_copy))] == [
        lists["train"][0].audio
    ]


def test_normalize_frames():
    frames = torch.randint(0, 256, (2, 4, 3, 3, 5, 5), dtype=torch.uint8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1, 1)
    out = normalize_frames(frames)
    assert out.dtype == torch.float32 and torch.allclose(
        out, (frames / 255.0 - mean) / std, atol=1e-5
    )
    with pytest.raises(ValueError, match="uint8"):
        normalize_frames(frames.float())


def test_color_jitter_per_object_and_bounded():
    """Each object gets its own colour change, the same on all its frames; 0 is the identity."""
    from dataset.transforms import color_jitter

    torch.manual_seed(0)
    frames = torch.randint(30, 220, (2, 4, 3, 1, 8, 8), dtype=torch.uint8).expand(
        -1, -1, -1, 3, -1, -1
    )
    out = color_jitter(frames.contiguous(), 0.4)
    assert out.dtype == torch.uint8 and out.shape == frames.shape
    assert torch.equal(out[..., 0, :, :], out[..., 1, :, :])  # same for every frame
    change = (out.float() - frames.float()).abs().mean(dim=(2, 3, 4, 5))  # (B, N)
    assert change.min() > 0 and change.unique().numel() == change.numel()
    assert torch.equal(color_jitter(frames.contiguous(), 0.0), frames)
