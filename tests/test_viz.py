"""HTML visualization.

Pages and media from fabricated evaluation batches, links resolve, Chromium renders them.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from PIL import Image

import viz
from dataset.layout import MUSIC_CLASSES, frame_name, frames_dir
from models.spectral import SpectralFrontend

B, N, L, N_FFT, HOP, FW, TF, S = 3, 4, 2000, 126, 63, 32, 3, 32  # F = 64, T = 32
FRAME_W, FRAME_H = 96, 64


def make_data_root(root, infos):
    """Real jpg frames at the layout's paths, so boxes can be drawn on them."""
    rng = np.random.default_rng(0)
    for info in {i for row in infos for i in row}:
        folder = frames_dir(str(root), info.replace(".wav", ".mp4"))
        os.makedirs(folder, exist_ok=True)
        for k in range(1, 6):
            pixels = rng.integers(0, 255, (FRAME_H, FRAME_W, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(os.path.join(folder, frame_name(k)))


def make_args(tmp_path, stage="ccol", run_id=None):
    run_id = run_id or f"MUSIC_{stage.upper()}"
    ckpt = tmp_path / "ckpt"
    run_dir = ckpt / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    args = argparse.Namespace(
        data_root=str(tmp_path / "data"),
        aud_rate=11025,
        stft_frame=N_FFT,
        stft_hop=HOP,
        log_freq=1,
        run_dir=str(run_dir),
        id=run_id,
        stage=stage,
        eval_silent=False,
        ckpt=str(ckpt),
    )
    (run_dir / "args.json").write_text(json.dumps({"id": run_id, "stage": stage}))
    return args


def make_batch(tmp_path, with_masks=True):
    torch.manual_seed(0)
    classes = [[MUSIC_CLASSES[(b + n) % len(MUSIC_CLASSES)] for n in range(N)] for b in range(B)]
    # A file name that needs escaping: it must appear escaped, never as markup.
    infos = [
        [
            f"/{c}/vid<{b}&{n}>\"x'.wav" if (b, n) == (0, 1) else f"/{c}/vid{b}{n}.wav"
            for n, c in enumerate(row)
        ]
        for b, row in enumerate(classes)
    ]
    make_data_root(tmp_path / "data", infos)
    t = torch.arange(L) / 11025
    audios = torch.zeros(B, N, L)
    sounding = torch.zeros(B, N, dtype=torch.bool)
    sounding[:, 0] = sounding[:, 2] = True
    for b in range(B):
        audios[b, 0] = 0.3 * torch.sin(2 * torch.pi * (220 + 40 * b) * t)
        audios[b, 2] = 0.2 * torch.randn(L)
    mix = audios.sum(1)
    boxes = torch.tensor([10.0, 8.0, 60.0, 50.0]).expand(B, N, TF, 4).clone()
    batch = {
        "audios": audios,
        "mix": mix,
        "sounding": sounding,
        "frames": torch.randint(0, 255, (B, N, 3, TF, S, S), dtype=torch.uint8),
        "class_ids": torch.tensor([[MUSIC_CLASSES.index(c) for c in row] for row in classes]),
        "boxes": boxes,
        "frame_ids": torch.tensor([1, 2, 3]).expand(B, N, TF).clone(),
        "index": torch.arange(B) + 10,
        "infos": infos,
    }
    front = SpectralFrontend(n_fft=N_FFT, hop=HOP, warp_bins=FW)
    out = front(audios, mix)
    out["sounding_prob"] = torch.tensor([[0.9, 0.2, 0.4, 0.1]]).expand(B, N).clone()
    assert out["gt_masks"].shape == (B, N, 1, FW, L // HOP + 1)
    if not with_masks:
        return batch, out, None, None, None
    masks = torch.rand(B, N, 1, FW, out["mag_mix"].shape[-1])
    masks[:, 3] = 0  # a silent object gated to zero: no leaked estimate to show
    unwarped = front.unwarp(masks[:, :, 0])  # (B, N, F, T)
    est = front.istft(out["mag_mix"] * unwarped, out["phase_mix"].expand(-1, N, -1, -1), length=L)
    gt = front.istft(
        out["mag_mix"] * front.unwarp(out["gt_masks"][:, :, 0]),
        out["phase_mix"].expand(-1, N, -1, -1),
        length=L,
    )
    waves = {"est": est.clamp(-1, 1), "gt_masked": gt.clamp(-1, 1)}
    records = [
        {
            "index": 10 + b,
            "slot": slot,
            "class": classes[b][slot],
            "source": infos[b][slot],
            "valid": b != 2,
            "sdr": 3.0 + b,
            "sir": 8.0,
            "sar": 5.0,
            "sdr_mix": 0.5,
        }
        for b in range(B)
        for slot in (0, 2)
    ]
    return batch, out, masks, waves, records


MAP_H, MAP_W = 24, 32
SOUNDING_BOX, SILENT_BOX = [1.0, 1.0, 10.0, 18.0], [16.0, 2.0, 30.0, 20.0]


def add_maps(batch, out):
    """Whole frames, boxes and grounding maps as evaluation.sounding_map adds them."""
    batch["whole_frames"] = torch.full((B, N, 3, 1, MAP_H, MAP_W), 128, dtype=torch.uint8)
    batch["map_boxes"] = torch.tensor([2.0, 2.0, 12.0, 20.0]).expand(B, N, 4).clone()
    truth = torch.full((B, N, 8, 5), float("nan"))
    truth[:, :, 0] = torch.tensor([*SOUNDING_BOX, 1.0])
    truth[:, :, 1] = torch.tensor([*SILENT_BOX, 0.0])
    batch["true_boxes"] = truth
    out["map_kind"], out["sounding_map"] = "grounding", torch.rand(B, N, MAP_H, MAP_W)


SUMMARY = {
    "loss": {"total": 0.51, "sep": 0.3, "grd_mix_pos": 0.21},
    "mean": {"sdr": 4.1, "sir": 8.0, "sar": 5.0, "sdr_mix": 0.5},
    "median": {"sdr": 4.0, "sir": 8.0, "sar": 5.0, "sdr_mix": 0.5},
    "per_class": {
        "cello": {"sdr": 4.0, "sir": 8.0, "sar": 5.0, "sdr_mix": 0.2, "count": 2},
        "flute": {"sdr": float("nan"), "sir": 1.0, "sar": 2.0, "sdr_mix": 0.0, "count": 0},
        "accordion": {"sdr": -1.5, "sir": 2.0, "sar": 4.0, "sdr_mix": -0.3, "count": 3},
    },
    "num_valid": 4,
    "num_invalid": 2,
    "grounding": {
        "accuracy": 0.75,
        "precision": 0.5,
        "recall": 1.0,
        "f1": 0.66,
        "ap": 0.8,
        "balanced_accuracy": 0.7,
        "num_positive": 6,
        "num_negative": 6,
    },
    "solo_grounding_acc": 0.9,
    "silent_leakage_db": -35.2,
    "reference_silent_sdr": 212.4,
}
HISTORY = {
    "train": [
        {
            "epoch": e,
            "total": 1.0 / e,
            "sep": 0.6 / e,
            "grd_mix_pos": 0.4 / e,
            "lr": {"sound": 1e-4},
        }
        for e in (1, 2, 3)
    ],
    "val": [
        {
            "epoch": e,
            "loss_total": 1.1 / e,
            "sdr": 1.0 * e,
            "sir": 2.0 * e,
            "sar": 3.0 * e,
            "sdr_mix": 0.5,
            "grounding_acc": 0.5 + 0.1 * e,
            "grounding_ap": None,
        }
        for e in (1, 2, 3)
    ],
}


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag in ("img", "audio", "source", "video") and attrs.get("src"):
            self.refs.append(attrs["src"])
        if tag == "a" and attrs.get("href"):
            self.refs.append(attrs["href"])


def assert_links_resolve(page):
    parser = Links()
    with open(page, encoding="utf-8") as f:
        text = f.read()
    parser.feed(text)
    assert parser.refs, f"{page} has no links"
    from urllib.parse import unquote, urlparse

    for ref in parser.refs:
        url = urlparse(ref)
        assert not url.scheme and not url.netloc, f"{page}: external reference {ref}"
        target = os.path.normpath(os.path.join(os.path.dirname(page), unquote(url.path)))
        assert os.path.isfile(target), f"{page}: {ref} does not resolve ({target})"
    return parser.refs, text


def test_run_page_and_index(tmp_path):
    args = make_args(tmp_path)
    batch, out, masks, waves, records = make_batch(tmp_path)
    samples = viz.collect_samples(batch, out, masks, waves, records, args, limit=2)
    assert len(samples) == 2
    samples += viz.collect_samples(
        batch, out, masks, waves, records, args, limit=5
    )  # 3 more (B = 3)
    assert len(samples) == 5
    assert viz.collect_samples(batch, out, masks, waves, records, args, limit=0) == []

    tic = time.perf_counter()
    page = viz.write_run_page(
        args,
        SUMMARY,
        samples,
        HISTORY,
        title="validation, epoch 3",
        checkpoint="ckpt/x/checkpoint_best.pt",
    )
    elapsed = time.perf_counter() - tic
    assert elapsed < 10, f"writing 5 small samples took {elapsed:.1f}s"
    viz.plot_history(HISTORY, args.run_dir)
    assert os.path.isfile(os.path.join(args.run_dir, "loss.png"))
    assert os.path.isfile(os.path.join(args.run_dir, "metrics.png"))
    index = viz.write_runs_index(args.ckpt)

    assert page == os.path.join(args.run_dir, "visualization", "index.html")
    refs, text = assert_links_resolve(page)
    assert sum(r.endswith(".wav") for r in refs) >= 5 * 6
    assert "per_class_sdr.png" in refs and "loss.png" in refs and "metrics.png" in refs
    assert "vid&lt;0&amp;1&gt;&quot;x&#x27;" in text and "vid<0&1>" not in text
    for label in (
        "<th>true source</th>",
        "<th>mixture × true mask (oracle)</th>",
        "<th>predicted mask</th>",
        "<th>separated</th>",
        "reference protocol",
        "p = 0.90",
        "leaked estimate",
        "gated to zero",
    ):
        assert label in text, label
    # 16-bit wav at aud_rate, all samples' media there
    import soundfile as sf

    info = sf.info(os.path.join(args.run_dir, "visualization", "media", "s000", "mix.wav"))
    assert info.samplerate == 11025 and info.subtype == "PCM_16" and info.frames == L
    spec = Image.open(os.path.join(args.run_dir, "visualization", "media", "s000", "mix.jpg"))
    assert spec.size == (L // HOP + 1, FW) and spec.mode == "RGB"

    index_refs, index_text = assert_links_resolve(index)
    assert "MUSIC_CCOL/visualization/index.html" in index_refs
    assert "val, epoch" not in index_text  # no history.json yet: no metrics source
    # The page links back to the index once it exists, and a rewrite replaces it whole: no stale
    # files.
    stale = os.path.join(args.run_dir, "visualization", "media", "stale.txt")
    open(stale, "w").close()
    page = viz.write_run_page(args, SUMMARY, samples[:1], HISTORY, title="validation, epoch 4")
    refs, _ = assert_links_resolve(page)
    assert "../../index.html" in refs
    assert not os.path.exists(stale) and not os.path.exists(
        os.path.join(args.run_dir, "visualization", "media", "s001")
    )
    assert [n for n in os.listdir(args.run_dir) if n.startswith(".")] == []


def test_evaluation_pages_do_not_overwrite_each_other(tmp_path):
    """Validation, test and silent-object pages coexist.

    Rewriting the validation page keeps the others.
    """
    args = make_args(tmp_path)
    batch, out, masks, waves, records = make_batch(tmp_path)
    samples = viz.collect_samples(batch, out, masks, waves, records, args, limit=2)
    val = viz.write_run_page(args, SUMMARY, samples, HISTORY, title="validation, epoch 3")
    test = viz.write_run_page(
        args, SUMMARY, samples[:1], HISTORY, title="test evaluation", page="test"
    )
    silent = viz.write_run_page(
        args,
        SUMMARY,
        samples,
        HISTORY,
        title="test evaluation (silent objects)",
        page="test_silent",
    )
    root = os.path.join(args.run_dir, "visualization")
    assert test == os.path.join(root, "test", "index.html") and silent == os.path.join(
        root, "test_silent", "index.html"
    )
    val = viz.write_run_page(args, SUMMARY, samples, HISTORY, title="validation, epoch 4")
    for page, title in (
        (val, "validation, epoch 4"),
        (test, "test evaluation"),
        (silent, "test evaluation (silent objects)"),
    ):
        refs, text = assert_links_resolve(page)
        assert title in text
    refs, _ = assert_links_resolve(val)
    assert "test/index.html" in refs and "test_silent/index.html" in refs
    refs, _ = assert_links_resolve(silent)
    assert "../index.html" in refs and "../test/index.html" in refs
    index_refs, _ = assert_links_resolve(viz.write_runs_index(args.ckpt))
    assert {
        "MUSIC_CCOL/visualization/index.html",
        "MUSIC_CCOL/visualization/test/index.html",
        "MUSIC_CCOL/visualization/test_silent/index.html",
    } <= set(index_refs)
    assert [n for n in os.listdir(root) if n.startswith(".")] == []


def test_grd_page_and_runs_index_metrics(tmp_path):
    args = make_args(tmp_path, stage="grd")
    batch, out, masks, waves, records = make_batch(tmp_path, with_masks=False)
    samples = viz.collect_samples(batch, out, None, None, None, args, limit=3)
    summary = {"loss": {"total": 0.4}, "grounding": SUMMARY["grounding"], "solo_grounding_acc": 0.8}
    history = {
        "train": HISTORY["train"],
        "val": [{"epoch": 1, "loss_total": 0.5, "grounding_acc": 0.7}],
    }
    page = viz.write_run_page(args, summary, samples, history, title="validation, epoch 1")
    refs, text = assert_links_resolve(page)
    assert "p = 0.20" in text and "sounding" in text and "silent" in text
    assert (
        "<th>predicted mask</th>" not in text
        and "<th>separated</th>" not in text
        and "masks: 0" not in text
    )
    assert any(r.endswith("o0_frames.jpg") for r in refs) and any(
        r.endswith("o0_crops.jpg") for r in refs
    )
    # box drawn in yellow on the first frame (frames are 96x64, box 10..60 x 8..50, thumbnails
    # 72 px high)
    strip = np.asarray(
        Image.open(os.path.join(args.run_dir, "visualization", "media", "s000", "o0_frames.jpg"))
    )
    assert strip.shape[0] == viz.FRAME_H
    yellow = (strip[..., 0] > 200) & (strip[..., 1] > 170) & (strip[..., 2] < 90)
    assert yellow.sum() > 50

    # runs index metrics: results.json beats history; history's last val entry otherwise
    (tmp_path / "ckpt" / "MUSIC_GRD" / "history.json").write_text(json.dumps(history))
    other = make_args(tmp_path, stage="ccol", run_id="other<run>")
    (tmp_path / "ckpt" / "other<run>" / "results.json").write_text(
        json.dumps({"split": "test", "sdr": 7.25, "grounding_acc": 0.9})
    )
    (tmp_path / "ckpt" / "other<run>" / "results_silent.json").write_text(
        json.dumps({"silent_leakage_db": -40.0, "silent_acc": 0.85})
    )
    (tmp_path / "ckpt" / "not_a_run").mkdir()
    index = viz.write_runs_index(str(tmp_path / "ckpt"))
    refs, text = assert_links_resolve(index)
    assert (
        "val, epoch 1" in text
        and "7.25" in text
        and "−40.0 dB" in text
        and "other&lt;run&gt;" in text
    )
    assert "not_a_run" not in text and other.id not in refs


def test_sop_page_linear_frequency(tmp_path):
    """Sound of Pixels: 2 whole-frame objects, all sounding, no grounding.

    Linear-frequency spectrograms.
    """
    args = make_args(tmp_path, stage="sop")
    args.log_freq = 0
    batch, out, masks, waves, records = make_batch(tmp_path)
    batch = {k: (v[:, ::2] if k not in ("mix", "index", "infos") else v) for k, v in batch.items()}
    batch["infos"] = [row[::2] for row in batch["infos"]]
    batch["sounding"][:] = True
    batch["boxes"][0, 0, 0] = torch.tensor(
        [60.0, 50.0, 10.0, float("nan")]
    )  # a bad box is not drawn
    front = SpectralFrontend(n_fft=N_FFT, hop=HOP, log_freq=False, binary_mask=True)
    out = front(batch["audios"], batch["mix"])
    del out["mags_w"]  # the page computes source spectrograms itself when absent
    masks = torch.rand_like(out["gt_masks"])
    waves = {"est": waves["est"][:, ::2], "gt_masked": waves["gt_masked"][:, ::2]}
    samples = viz.collect_samples(batch, out, masks, waves, None, args, limit=2)
    assert samples[0]["spec"]["source"].shape == (2, N_FFT // 2 + 1, L // HOP + 1)
    page = viz.write_run_page(args, {"loss": {"total": 0.7}}, samples, None, title="sop")
    refs, text = assert_links_resolve(page)
    assert (
        "linear frequency" in text
        and "p = " not in text
        and "silent" not in text.split("<h2>Samples")[1]
    )


def find_chromium():
    for name in ("chromium", "/usr/bin/chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(chromium, url, png, profile):
    cmd = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--screenshot={png}",
        "--window-size=1400,2000",
        url,
    ]
    subprocess.run(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=90, check=False
    )


@pytest.mark.slow
def test_pages_render_in_chromium(tmp_path):
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("chromium not found; CI installs it (apt-get install chromium)")
        pytest.skip(
            "chromium not installed (apt-get install chromium): browser rendering not checked"
        )
    args = make_args(tmp_path)
    batch, out, masks, waves, records = make_batch(tmp_path)
    add_maps(batch, out)
    samples = viz.collect_samples(batch, out, masks, waves, records, args, limit=3)
    page = viz.write_run_page(args, SUMMARY, samples, HISTORY, title="test evaluation")
    index = viz.write_runs_index(args.ckpt)
    for name, path in (("page", page), ("index", index)):
        png = tmp_path / f"{name}.png"
        screenshot(
            chromium, "file://" + os.path.abspath(path), str(png), tmp_path / f"profile-{name}"
        )
        assert png.is_file(), f"chromium wrote no screenshot of {path}"
        shot = np.asarray(Image.open(png).convert("RGB"))
        assert shot.shape[:2] == (2000, 1400)
        assert shot.std() > 10, f"{name} screenshot looks blank"
        packed = (
            (shot[..., 0].astype(np.uint32) << 16)
            | (shot[..., 1].astype(np.uint32) << 8)
            | shot[..., 2]
        )
        assert np.unique(packed).size > 2, f"{name} screenshot has at most 2 colours"
        if os.environ.get("VIZ_SCREENSHOT_DIR"):
            shutil.copy(png, os.path.join(os.environ["VIZ_SCREENSHOT_DIR"], f"{name}.png"))


def test_cards_overlay_sounding_maps(tmp_path):
    args = make_args(tmp_path)
    batch, out, masks, waves, records = make_batch(tmp_path)
    add_maps(batch, out)
    samples = viz.collect_samples(batch, out, masks, waves, records, args, limit=2)
    assert samples[0]["map"]["kind"] == "grounding"
    assert samples[0]["map"]["heat"].shape == (N, MAP_H, MAP_W)
    summary = {**SUMMARY, "localization": {"loc_pointing_acc": 0.75, "loc_frames": 4}}
    page = viz.write_run_page(args, summary, samples, HISTORY, title="test evaluation")
    refs, text = assert_links_resolve(page)
    media = os.path.join(os.path.dirname(page), "media")
    assert os.path.isfile(os.path.join(media, "s000", "o0_map.jpg"))
    assert "where it sounds (grounding map)" in text and "true silent object" in text
    assert "pointing accuracy" in text and "0.750" in text
    # The boxes are drawn in their colours at their places (display scale OVERLAY_H / MAP_H).
    heat = np.zeros((MAP_H, MAP_W))
    img = np.asarray(
        viz.overlay_image(
            np.full((MAP_H, MAP_W, 3), 128, np.uint8),
            heat,
            None,
            np.array([[*SOUNDING_BOX, 1.0], [*SILENT_BOX, 0.0]]),
        )
    ).astype(int)
    scale = viz.OVERLAY_H / MAP_H
    left_edge = img[int(9 * scale), int(SOUNDING_BOX[0] * scale)]
    right_edge = img[int(10 * scale), int(SILENT_BOX[2] * scale) - 1]
    assert left_edge[1] > 150 and left_edge[0] < 100  # green
    assert right_edge[0] > 200 and right_edge[1] < 100  # red
    # a map at 1 shows the colour scale's top over the frame, a map at 0 its bottom
    hot = np.asarray(viz.overlay_image(np.zeros((MAP_H, MAP_W, 3), np.uint8), heat + 1)).mean(
        (0, 1)
    )
    cold = np.asarray(viz.overlay_image(np.zeros((MAP_H, MAP_W, 3), np.uint8), heat)).mean((0, 1))
    assert hot[0] > cold[0]  # turbo: dark red at 1, dark blue at 0
