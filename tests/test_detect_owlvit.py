"""Tests of the OWL-ViT/OWLv2 path (dataset/owlvit.py, detect_objects --detector owlvit).

Nothing is downloaded: tiny randomly initialised models with a character-level CLIP tokenizer
are saved to a temporary folder, and the hub is offline (HF_HUB_OFFLINE) in every test.
"""

import json
import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from dataset import layout, owlvit  # noqa: E402
from scripts import detect_objects  # noqa: E402

JPG_W, JPG_H = 64, 48
NUM_JPGS = 3
INPUT = 32  # the tiny models' square input; patch 8 -> 16 boxes per image
MAX_TOKENS = 32  # a character per token: "a photo of a acoustic guitar" is 25 with start/end


@pytest.fixture(autouse=True)
def offline_hub(tmp_path, monkeypatch):
    """No test may reach the hub: offline, with an empty cache of its own."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HUGGINGFACE_HUB_CACHE", raising=False)


def tiny_tokenizer(folder):
    """A CLIP tokenizer whose vocabulary is single letters (no merges), written to `folder`."""
    from transformers import CLIPTokenizer

    vocab = {}
    for char in "abcdefghijklmnopqrstuvwxyz":
        vocab[char] = len(vocab)
        vocab[char + "</w>"] = len(vocab)
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n")
    tokenizer = CLIPTokenizer(
        os.path.join(folder, "vocab.json"),
        os.path.join(folder, "merges.txt"),
        model_max_length=MAX_TOKENS,
    )
    return tokenizer, vocab


def save_tiny_model(folder, kind="owlvit"):
    """A randomly initialised tiny OWL-ViT or OWLv2 with its processor, saved to `folder`."""
    import transformers as tf

    config_cls, model_cls, processor_cls, image_cls = {
        "owlvit": (
            tf.OwlViTConfig,
            tf.OwlViTForObjectDetection,
            tf.OwlViTProcessor,
            tf.OwlViTImageProcessor,
        ),
        "owlv2": (
            tf.Owlv2Config,
            tf.Owlv2ForObjectDetection,
            tf.Owlv2Processor,
            tf.Owlv2ImageProcessor,
        ),
    }[kind]
    os.makedirs(folder, exist_ok=True)
    tokenizer, vocab = tiny_tokenizer(folder)
    small = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    end = vocab["<|endoftext|>"]
    config = config_cls(
        text_config=dict(
            small,
            vocab_size=len(vocab),
            max_position_embeddings=MAX_TOKENS,
            bos_token_id=vocab["<|startoftext|>"],
            eos_token_id=end,
            pad_token_id=end,
        ),
        vision_config=dict(small, image_size=INPUT, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    model_cls(config).save_pretrained(folder)
    image_processor = image_cls(size={"height": INPUT, "width": INPUT})
    processor_cls(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_owlvit(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("owlvit"))


@pytest.fixture(scope="module")
def tiny_owlv2(tmp_path_factory):
    return save_tiny_model(tmp_path_factory.mktemp("owlv2"), "owlv2")


def make_root(root, videos=(("cello", "c0"), ("flute", "f0"))):
    rng = np.random.default_rng(0)
    for cls, vid in videos:
        folder = layout.frames_dir(root, f"/{cls}/{vid}.mp4")
        os.makedirs(folder)
        for k in range(1, NUM_JPGS + 1):
            pixels = rng.integers(0, 256, (JPG_H, JPG_W, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, layout.frame_name(k)))
    return root


def test_queries_and_classes_come_from_the_class_table():
    assert owlvit.query_text("violin") == "a photo of a violin"
    assert owlvit.query_text("acoustic_guitar") == "a photo of a acoustic guitar"
    assert owlvit.query_text("electric_bass", "{} playing") == "electric bass playing"
    assert owlvit.parse_classes(None) == layout.MUSIC21_CLASSES
    assert owlvit.parse_classes("music21") == tuple(layout.CLASS_TO_ID)
    assert owlvit.parse_classes("music11") == layout.MUSIC_CLASSES
    assert owlvit.parse_classes("violin, cello") == ("violin", "cello")
    with pytest.raises(ValueError, match="viola"):
        owlvit.parse_classes("violin,viola")
    with pytest.raises(SystemExit, match="viola"):
        detect_objects.make_detector("owlvit", "unused", "cpu", classes="viola")


def test_query_index_maps_to_detection_class_ids(tiny_owlvit):
    classes = ("violin", "accordion", "ukulele")
    det = owlvit.build_detector(tiny_owlvit, "cpu", classes)
    assert det.queries == ["a photo of a violin", "a photo of a accordion", "a photo of a ukulele"]
    assert det.class_ids.tolist() == [10, 1, 21]  # table id + 1, as annotation rows
    assert det.class_ids.tolist() == [layout.detection_class_id(c) for c in classes]
    assert det.query_embeds.shape == (3, 16)


@pytest.mark.parametrize("kind", ["owlvit", "owlv2"])
def test_queries_embedded_once_match_the_models_forward(kind, tiny_owlvit, tiny_owlv2):
    """The detector's split forward (queries once, frames per batch) is the model's own forward."""
    det = owlvit.build_detector(tiny_owlvit if kind == "owlvit" else tiny_owlv2, "cpu")
    assert det.model.config.model_type == kind
    images = [torch.rand(3, JPG_H, JPG_W), torch.rand(3, JPG_H, JPG_W)]
    logits, boxes = det.raw_outputs(images)
    pil = [Image.fromarray((img * 255).round().byte().permute(1, 2, 0).numpy()) for img in images]
    inputs = det.processor(text=[det.queries] * 2, images=pil, return_tensors="pt")
    with torch.inference_mode():
        out = det.model(**inputs)
    assert logits.shape == (2, 16, 21) and boxes.shape == (2, 16, 4)
    torch.testing.assert_close(logits, out.logits, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(boxes, out.pred_boxes)


def scripted(det, logits, boxes):
    """Make `det` see the given raw outputs (B, P, Q) logits and (B, P, 4) cxcywh boxes."""
    det.raw_outputs = lambda images: (torch.tensor(logits), torch.tensor(boxes))
    return det


def logit(p):
    return float(np.log(p / (1 - p)))


@pytest.mark.parametrize("padded_square", [False, True])
def test_boxes_scores_labels_threshold_nms_top_k(tiny_owlvit, padded_square):
    det = owlvit.build_detector(tiny_owlvit, "cpu", ("cello", "flute"), top_k=2)
    det.padded_square = padded_square  # OWLv2's input is the image padded to a square
    low = logit(0.01)
    logits = [
        [
            [logit(0.9), low],  # cello, best
            [low, logit(0.8)],  # flute, overlaps the first box: suppressed (class-agnostic)
            [low, logit(0.5)],  # flute, elsewhere: kept
            [logit(0.3), low],  # cello, 3rd after NMS: beyond top_k 2
            [logit(0.05), low],  # under the threshold
        ]
    ]
    boxes = [
        [
            [0.25, 0.25, 0.5, 0.5],
            [0.26, 0.25, 0.5, 0.5],
            [0.75, 0.5, 0.5, 0.4],
            [0.9, 0.9, 0.1, 0.1],
            [0.5, 0.5, 0.2, 0.2],
        ]
    ]
    out = scripted(det, logits, boxes)([torch.zeros(3, JPG_H, JPG_W)])
    assert len(out) == 1
    (found,) = out
    assert found["labels"].tolist() == [3, 6]  # cello, flute: table id + 1
    torch.testing.assert_close(found["scores"], torch.tensor([0.9, 0.5]))
    side = max(JPG_W, JPG_H)
    scale = torch.tensor([side, side] * 2 if padded_square else [JPG_W, JPG_H] * 2, dtype=float)
    expected = torch.tensor([[0.0, 0.0, 0.5, 0.5], [0.5, 0.3, 1.0, 0.7]], dtype=float) * scale
    expected[:, 0::2] = expected[:, 0::2].clamp(0, JPG_W)
    expected[:, 1::2] = expected[:, 1::2].clamp(0, JPG_H)
    torch.testing.assert_close(found["boxes"].double(), expected, rtol=0, atol=1e-4)
    # Nothing above the threshold: an empty (0, 4) result, not an error.
    det.score_thresh = 0.95
    (empty,) = det([torch.zeros(3, JPG_H, JPG_W)])
    assert empty["boxes"].shape == (0, 4) and empty["labels"].numel() == 0


def test_boxes_outside_the_picture_are_dropped(tiny_owlvit):
    det = owlvit.build_detector(tiny_owlvit, "cpu", ("cello",), score_thresh=0.1)
    det.padded_square = True  # a box in the padding below a 64x48 image
    boxes = [[[0.5, 0.9, 0.2, 0.1], [0.5, 0.3, 0.2, 0.2]]]  # cxcywh of the 64x64 square
    out = scripted(det, [[[logit(0.9)], [logit(0.8)]]], boxes)
    (found,) = out([torch.zeros(3, JPG_H, JPG_W)])
    assert found["scores"].tolist() == pytest.approx([0.8])
    assert float(found["boxes"][:, 3].max()) <= JPG_H


@pytest.mark.parametrize("kind", ["owlvit", "owlv2"])
def test_detect_objects_writes_cosep_rows(kind, tiny_owlvit, tiny_owlv2, tmp_path, capsys):
    root = make_root(str(tmp_path / "data"))
    weights = tiny_owlvit if kind == "owlvit" else tiny_owlv2
    top_k = 3
    detect_objects.main(
        [
            "--root",
            root,
            "--detector",
            "owlvit",
            "--weights",
            weights,
            "--classes",
            "cello,violin,ukulele",
            "--score-thresh",
            "0",
            "--top-k",
            str(top_k),
            "--batch-size",
            "2",
            "--device",
            "cpu",
        ]
    )
    out = capsys.readouterr().out
    assert f"{kind} from {weights}" in out and "2 written" in out
    for cls, vid in (("cello", "c0"), ("flute", "f0")):
        rows = np.load(layout.detection_path(root, f"/{cls}/{vid}.mp4"))
        assert rows.dtype == np.float32 and rows.ndim == 2 and rows.shape[1] == 7
        frames = rows[:, 0].astype(int)
        assert set(frames) == set(range(1, NUM_JPGS + 1))  # threshold 0: every frame has rows
        assert np.bincount(frames).max() <= top_k
        assert set(rows[:, 1].astype(int)) <= {3, 10, 21}  # cello, violin, ukulele
        assert ((rows[:, 2] >= 0) & (rows[:, 2] <= 1)).all()
        x1, y1, x2, y2 = rows[:, 3:].T
        assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= JPG_W).all() and (y2 <= JPG_H).all()
        assert (x2 - x1 >= 1).all() and (y2 - y1 >= 1).all()
        for k in range(1, NUM_JPGS + 1):  # each frame's rows best first
            scores = rows[frames == k, 2]
            assert (np.diff(scores) <= 0).all()


def test_missing_weights_offline_name_the_model_the_cache_and_a_folder(tmp_path):
    root = make_root(str(tmp_path / "data"), videos=(("cello", "c0"),))
    cache = os.path.join(str(tmp_path / "hf_home"), "hub")
    with pytest.raises(SystemExit) as err:
        detect_objects.main(
            ["--root", root, "--detector", "owlvit", "--weights", owlvit.DEFAULT_MODEL]
        )
    message = str(err.value)
    assert owlvit.DEFAULT_MODEL in message and cache in message
    assert "HF_HOME" in message and "offline" in message and "local folder" in message
    assert not os.path.exists(layout.detection_path(root, "/cello/c0.mp4"))


def test_bad_weights_folder_and_options_are_clear_errors(tmp_path):
    root = make_root(str(tmp_path / "data"), videos=(("cello", "c0"),))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SystemExit, match="not an OWL-ViT/OWLv2 folder"):
        detect_objects.main(["--root", root, "--detector", "owlvit", "--weights", str(empty)])
    with pytest.raises(SystemExit, match="not a folder"):
        detect_objects.main(
            ["--root", root, "--detector", "owlvit", "--weights", str(tmp_path / "nope")]
        )
    for extra in (["--from-annotations"], ["--weights", "x", "--class-map", "c.json"]):
        with pytest.raises(SystemExit) as err:
            detect_objects.main(["--root", root, "--detector", "owlvit", *extra])
        assert err.value.code == 2  # argparse's usage error


def test_separate_video_detection_rows_with_owlvit(tiny_owlvit, tmp_path):
    """separate_video's box source passes --detector/--weights through to the OWL-ViT detector."""
    from scripts import separate_video

    root = make_root(str(tmp_path / "data"), videos=(("cello", "c0"),))
    out = tmp_path / "sep"
    opts = separate_video.build_parser().parse_args(
        ["--run", "unused", "--video", "unused.mp4", "--out", str(out)]
        + ["--detector", "owlvit", "--weights", tiny_owlvit, "--score-thresh", "0"]
    )
    dets, names = separate_video.detection_rows(
        opts, layout.frames_dir(root, "/cello/c0.mp4"), "cpu"
    )
    assert names == {layout.detection_class_id(c): c for c in layout.MUSIC21_CLASSES}
    rows = np.load(out / "detections.npy")
    assert rows.dtype == np.float32 and rows.shape[1] == 7 and len(rows) > 0
    assert set(rows[:, 0].astype(int)) == set(range(1, NUM_JPGS + 1))
    assert set(rows[:, 1].astype(int)) <= set(names)
    assert np.bincount(rows[:, 0].astype(int)).max() <= owlvit.TOP_K
    assert len(dets) == len(rows)


@pytest.mark.slow  # trains the tiny runs (conftest's trained_runs) when no other test has
def test_separate_video_end_to_end_with_owlvit(tiny_owlvit, trained_runs, tiny_data_root, tmp_path):
    """The whole command with a tiny random OWL-ViT: every detected class becomes an object."""
    from scripts import separate_video

    videos = os.path.join(str(tiny_data_root), layout.VIDEOS)
    cls = sorted(os.listdir(videos))[0]
    mp4 = os.path.join(videos, cls, sorted(os.listdir(os.path.join(videos, cls)))[0])
    out = tmp_path / "sep"
    info = separate_video.main(
        ["--run", str(trained_runs / "ccol"), "--video", mp4, "--out", str(out)]
        + ["--detector", "owlvit", "--weights", tiny_owlvit, "--score-thresh", "0"]
        + ["--device", "cpu"]
    )
    names = [o["name"] for o in info["objects"]]
    assert names and set(names) <= set(layout.MUSIC21_CLASSES)
    assert all((out / f"{name}.wav").is_file() for name in names)
    rows = np.load(out / "detections.npy")
    assert rows.shape[1] == 7 and set(rows[:, 1].astype(int)) <= set(range(1, 22))
