"""HTML pages of a run (per-sample cards, metric summary, training curves) and an index of all runs.

`collect_samples` copies what a page shows out of an evaluation batch (small uint8 images and int16
waveforms, computed batched on the model's device); `write_run_page` writes the validation page
`<run_dir>/visualization/index.html` or an evaluation page `<run_dir>/visualization/<split>[_silent]/`
with its media into a fresh folder and swaps it in whole;
`plot_history` draws the loss and metric curves; `write_runs_index` lists every run of a ckpt folder.
Pages are self-contained (no external resources): open them straight from disk.
"""
from __future__ import annotations

import datetime
import html
import json
import math
import os
import shutil
import tempfile
import time
import urllib.parse

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from dataset.layout import CLASS_TO_ID, class_of, frame_name, frames_dir
from models.spectral import stft, warp_log_freq

PAGE_DIR = "visualization"
MAX_PX = 256            # longest side of a spectrogram / mask image
CROP_PX = 96            # side of a network-input crop thumbnail
FRAME_H = 56            # height of a full-frame thumbnail
DB_RANGE = 80.0         # spectrogram dynamic range below the mixture's peak
STALE_SECONDS = 600     # an unfinished page folder older than this is left over from a crash

_LUTS: dict[str, np.ndarray] = {}


def _lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colour table of a matplotlib colormap: one lookup per image, no figures."""
    if name not in _LUTS:
        from matplotlib import colormaps
        _LUTS[name] = (colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3] * 255).round().astype(np.uint8)
    return _LUTS[name]


# ----------------------------------------------------------------------------------------------
# Collecting samples during evaluation
# ----------------------------------------------------------------------------------------------
def _shrink(img: torch.Tensor, max_px: int) -> torch.Tensor:
    """Area-downsample (..., H, W) so neither side exceeds max_px."""
    H, W = img.shape[-2:]
    if H <= max_px and W <= max_px:
        return img
    lead = img.shape[:-2]
    out = F.interpolate(img.reshape(-1, 1, H, W), size=(min(H, max_px), min(W, max_px)), mode="area")
    return out.reshape(*lead, *out.shape[-2:])


def _to_u8(x: torch.Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def _to_i16(wav: torch.Tensor) -> np.ndarray:
    return (wav.float().clamp(-1, 1) * 32767).round_().to(torch.int16).cpu().numpy()


@torch.no_grad()
def collect_samples(batch, out, masks, waves, records, args, limit) -> list[dict]:
    """What the page shows for at most `limit` samples of an evaluation batch, copied to the CPU.

    Spectrograms (log-frequency when args.log_freq, dB re the mixture's peak) and masks become uint8
    images here, batched on the device; waveforms become int16. Shapes as in main.evaluate:
    batch['audios'] (B, N, L), batch['frames'] uint8 (B, N, 3, T, S, S), out['gt_masks'] and
    masks (B, N, 1, Fw, T), waves['est'] / waves['gt_masked'] (B, N, L).
    """
    B, N, L = batch["audios"].shape
    k = min(int(limit), B)
    if k <= 0:
        return []
    out_bins = out["gt_masks"].shape[-2]

    # Spectrograms as the model sees them (log frequency when args.log_freq): the mixture, the true
    # sources, and |mixture| x mask for the estimate and the oracle, i.e. the magnitudes that are synthesised.
    mag_mix = out["mag_mix_w"][:k].float()                                       # (k, 1, Fw, T)
    if "mags_w" in out:
        mag_src = out["mags_w"][:k, :, 0].float()                                # (k, N, Fw, T)
    else:
        mag_src = stft(batch["audios"][:k].float(), args.stft_frame, args.stft_hop).abs()
        if args.log_freq:
            mag_src = warp_log_freq(mag_src, out_bins)
    mags = {"mix": mag_mix, "source": mag_src}
    sounds = {"mix": batch["mix"][:k], "source": batch["audios"][:k]}            # waveforms the page plays
    if masks is not None and waves is not None:
        mags["est"] = mag_mix * masks[:k, :, 0].float()
        sounds["est"] = waves["est"][:k]
    if waves is not None and "gt_masked" in waves:
        mags["oracle"] = mag_mix * out["gt_masks"][:k, :, 0].float()
        sounds["oracle"] = waves["gt_masked"][:k]
    db = 20 * torch.log10(torch.cat(list(mags.values()), dim=1) + 1e-8)          # (k, M, Fw, T)
    peak = db[:, :1].amax(dim=(-3, -2, -1), keepdim=True)                        # the mixture's peak
    spec_u8 = _to_u8(_shrink((db - peak) / DB_RANGE + 1, MAX_PX))

    def split(arr):  # (k, M, ...) -> {'mix': (k, ...), 'source': (k, N, ...), ...}
        res, i = {}, 0
        for name, m in mags.items():
            n = m.shape[1]
            res[name] = arr[:, i] if name == "mix" else arr[:, i:i + n]
            i += n
        return res

    specs = split(spec_u8)
    sounds = {name: _to_i16(w) for name, w in sounds.items()}                   # int16 (k, L) / (k, N, L)
    gt_masks = _to_u8(_shrink(out["gt_masks"][:k, :, 0].float(), MAX_PX))      # (k, N, h, w), clipped to 1
    pred_masks = _to_u8(_shrink(masks[:k, :, 0].float(), MAX_PX)) if masks is not None else None

    frames = batch["frames"][:k]                                                # (k, N, 3, T, S, S)
    if frames.dtype != torch.uint8:
        frames = frames.clamp(0, 255).to(torch.uint8)
    Tf, S = frames.shape[3], frames.shape[-1]
    crops = frames.permute(0, 1, 3, 2, 4, 5).reshape(-1, 3, S, S)               # (k*N*T, 3, S, S)
    if S > CROP_PX:
        crops = F.interpolate(crops.float(), size=(CROP_PX, CROP_PX), mode="bilinear", antialias=True,
                              align_corners=False).round().clamp(0, 255).to(torch.uint8)
    crops = crops.permute(0, 2, 3, 1).reshape(k, N, Tf, *crops.shape[-2:], 3).cpu().numpy()

    prob = out["sounding_prob"][:k].float().cpu().numpy() if "sounding_prob" in out else None
    by_slot = {}
    for r in records or []:
        by_slot[(int(r["index"]), int(r["slot"]))] = r
    index = batch["index"][:k].cpu().numpy() if torch.is_tensor(batch["index"]) else np.asarray(batch["index"][:k])
    sounding = batch["sounding"][:k].cpu().numpy()
    class_ids = batch["class_ids"][:k].cpu().numpy()
    boxes = batch["boxes"][:k].float().cpu().numpy()
    frame_ids = batch["frame_ids"][:k].cpu().numpy()

    samples = []
    for b in range(k):
        idx = int(index[b])
        samples.append({
            "index": idx,
            "infos": [str(x) for x in batch["infos"][b]],
            "class_ids": class_ids[b],
            "sounding": sounding[b].astype(bool),
            "prob": None if prob is None else prob[b],
            "boxes": boxes[b],                     # (N, T, 4) x1, y1, x2, y2 in original frame pixels
            "frame_ids": frame_ids[b],             # (N, T), 1-based
            "crops": crops[b],                     # (N, T, h, w, 3) uint8
            "spec": {name: v[b] for name, v in specs.items()},     # uint8 (h, w) / (N, h, w), rows low->high
            "wav": {name: v[b] for name, v in sounds.items()},     # int16 (L,) / (N, L)
            "gt_mask": gt_masks[b],
            "pred_mask": None if pred_masks is None else pred_masks[b],
            "records": {slot: by_slot[(idx, slot)] for slot in range(N) if (idx, slot) in by_slot},
        })
    return samples


# ----------------------------------------------------------------------------------------------
# Media writers
# ----------------------------------------------------------------------------------------------
def _save_colormapped(img_u8: np.ndarray, path: str, cmap: str) -> None:
    """uint8 (H, W) with row 0 = lowest frequency -> colour JPEG with low frequencies at the bottom."""
    h, w = img_u8.shape
    img = Image.frombytes("P", (w, h), np.ascontiguousarray(img_u8[::-1]).tobytes())
    img.putpalette(_lut(cmap).tobytes())   # colormap applied by PIL in C
    img.convert("RGB").save(path, quality=90)


def _save_wav(wav_i16: np.ndarray, path: str, rate: int) -> None:
    sf.write(path, wav_i16, rate, subtype="PCM_16")


def _placeholder(w: int, h: int, text: str) -> Image.Image:
    img = Image.new("RGB", (w, h), (60, 60, 66))
    ImageDraw.Draw(img).text((4, h // 2 - 6), text, fill=(220, 220, 220))
    return img


def _frame_strip(data_root: str, info: str, frame_ids, boxes, path: str) -> None:
    """The object's full video frames, downscaled, side by side, with the detection box drawn."""
    folder = frames_dir(data_root, os.path.splitext(info)[0] + ".mp4")
    tiles = []
    for fid, box in zip(frame_ids, boxes):
        try:
            with Image.open(os.path.join(folder, frame_name(int(fid)))) as im:
                W, H = im.size
                w = max(1, round(FRAME_H * W / H))
                im.draft("RGB", (w, FRAME_H))   # JPEG: decode at reduced scale
                tile = im.convert("RGB").resize((w, FRAME_H), Image.BILINEAR)
        except (OSError, ValueError):
            tiles.append(_placeholder(round(FRAME_H * 16 / 9), FRAME_H, f"frame {int(fid)} missing"))
            continue
        box = np.asarray(box, dtype=np.float64)
        if np.isfinite(box).all():
            sx, sy = w / W, FRAME_H / H
            x1, x2 = sorted((box[0] * sx, box[2] * sx))
            y1, y2 = sorted((box[1] * sy, box[3] * sy))
            draw = ImageDraw.Draw(tile)
            draw.rectangle([x1 - 1, y1 - 1, x2 + 1, y2 + 1], outline=(0, 0, 0), width=1)
            draw.rectangle([x1, y1, x2, y2], outline=(255, 212, 0), width=2)
        tiles.append(tile)
    _hstack(tiles).save(path, quality=85)


def _hstack(tiles: list, gap: int = 2) -> Image.Image:
    width = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    strip = Image.new("RGB", (width, max(t.height for t in tiles)), (255, 255, 255))
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    return strip


# ----------------------------------------------------------------------------------------------
# Plots (matplotlib without pyplot: no global backend, no open figures left behind)
# ----------------------------------------------------------------------------------------------
def _figure(w: float, h: float, ncols: int = 1):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator
    fig = Figure(figsize=(w, h), dpi=100)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _series(rows: list, key: str):
    pts = [(r["epoch"], r[key]) for r in rows
           if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and "epoch" in r]
    return [p[0] for p in pts], [p[1] for p in pts]


def _plot_curves(history, out_dir: str) -> list[str]:
    """loss.png and metrics.png of a history into out_dir; returns the names written."""
    if not history:
        return []
    train, val = history.get("train") or [], history.get("val") or []
    written = []
    if train or val:
        fig, (ax,) = _figure(5.0, 3.2)
        keys = [k for k in dict.fromkeys(k for r in train for k in r) if k not in ("epoch", "lr")]
        values = []
        for key in keys:
            x, y = _series(train, key)
            if x:
                ax.plot(x, y, marker="o", ms=3, lw=2.2 if key == "total" else 1.3, label=f"train {key}")
                values += y
        x, y = _series(val, "loss_total")
        if x:
            ax.plot(x, y, "k--", marker="s", ms=3, lw=2, label="val total")
            values += y
        if values and min(values) > 0 and max(values) / min(values) > 20:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title("losses", fontsize=10)
        if ax.lines:
            ax.legend(fontsize=7, frameon=False, ncol=2)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "loss.png"))
        written.append("loss.png")
    panels = [(title, lines) for title, lines in (
        ("val separation (dB)", [(k, label) for k, label in (("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"),
                                                          ("sdr_mix", "mixture SDR")) if _series(val, k)[0]]),
        ("val grounding", [(k, label) for k, label in (("grounding_acc", "grounding accuracy"),
                                                    ("grounding_ap", "grounding AP"),
                                                    ("solo_grounding_acc", "solo grounding accuracy"))
                           if _series(val, k)[0]])) if lines]
    if panels:  # only what this stage measures (GRD has no separation, SoP no grounding)
        fig, axes = _figure(3.6 * len(panels) - 0.2, 3.2, ncols=len(panels))
        for ax, (title, lines) in zip(axes, panels):
            for key, label in lines:
                ax.plot(*_series(val, key), marker="o", ms=3, label=label, ls="--" if key == "sdr_mix" else "-")
            if title == "val grounding":
                ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7, frameon=False)
        fig.tight_layout()
        fig.savefig(os.path.join(out_dir, "metrics.png"))
        written.append("metrics.png")
    return written


def plot_history(history, run_dir) -> None:
    """<run_dir>/loss.png (train loss terms, val total) and <run_dir>/metrics.png (val metrics)."""
    if not history:
        return
    tmp = tempfile.mkdtemp(prefix=".plots-", dir=run_dir)
    try:
        for name in _plot_curves(history, tmp):
            os.replace(os.path.join(tmp, name), os.path.join(run_dir, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plot_per_class(per_class: dict, path: str) -> bool:
    rows = [(c, v) for c, v in per_class.items() if isinstance(v, dict)]
    if not rows:
        return False
    rows.sort(key=lambda cv: (CLASS_TO_ID.get(cv[0], len(CLASS_TO_ID)), cv[0]))
    names = [c for c, _ in rows]
    sdr = np.array([_num(v.get("sdr")) for _, v in rows])
    mix = np.array([_num(v.get("sdr_mix")) for _, v in rows])
    fig, (ax,) = _figure(4.8, 0.32 * len(rows) + 1.1)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, np.nan_to_num(sdr), height=0.4, color="#4c6ef5", label="SDR")
    if np.isfinite(mix).any():
        ax.barh(y + 0.2, np.nan_to_num(mix), height=0.4, color="#adb5bd", label="mixture SDR")
    for yi, v, (_, stats) in zip(y, sdr, rows):
        text = f" {v:.1f} dB (n={stats.get('count', '?')})" if math.isfinite(v) else " no valid source"
        ax.text(max(v, 0) if math.isfinite(v) else 0, yi - 0.2, text, va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("dB")
    ax.set_title("per-class SDR (sounding sources)", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    return True


# ----------------------------------------------------------------------------------------------
# HTML
# ----------------------------------------------------------------------------------------------
CSS = """
:root { --bg:#f3f4f7; --card:#fff; --ink:#1f2430; --mute:#6b7280; --line:#e4e6eb; --ok:#1f9d55;
        --bad:#d64545; --accent:#4c6ef5; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; }
header { background:#1f2430; color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:22px; font-weight:600; }
header .sub { color:#c8ccd6; font-size:15px; }
header .meta { margin-top:8px; color:#9aa1b1; font-size:12.5px; word-break:break-all; }
header .meta b { color:#dfe3ea; font-weight:500; }
header a { color:#9db4ff; }
main { padding:20px 28px 40px; max-width:1500px; }
h2 { font-size:17px; margin:26px 0 10px; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:10px; padding:14px 18px;
         box-shadow:0 1px 2px rgba(0,0,0,.04); }
.row { display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start; }
.column { display:flex; flex-direction:column; gap:16px; flex:1 1 420px; min-width:0; max-width:800px; }
table.metrics { border-collapse:collapse; font-variant-numeric:tabular-nums; }
table.metrics th, table.metrics td { padding:5px 12px; border-bottom:1px solid var(--line); text-align:right; }
table.metrics th:first-child, table.metrics td:first-child { text-align:left; }
table.metrics tr.group td { background:#f7f8fa; font-weight:600; color:var(--mute); text-align:left;
                            font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
table.metrics .note { color:var(--mute); font-size:12px; max-width:340px; }
.plots img { display:block; max-width:100%; }
.card { background:var(--card); border:1px solid var(--line); border-radius:12px; margin:0 0 18px;
        box-shadow:0 1px 3px rgba(0,0,0,.05); overflow:hidden; }
.card-head { display:flex; flex-wrap:wrap; gap:10px 18px; align-items:baseline; padding:10px 16px;
             border-bottom:1px solid var(--line); background:#fafbfc; }
.card-head h3 { margin:0; font-size:15px; }
.card-head .what { color:var(--mute); font-size:12.5px; }
.card-body { padding:12px 16px; overflow-x:auto; }
.mix { display:flex; gap:16px; align-items:flex-start; margin-bottom:8px; }
img.mixspec { display:block; width:300px; height:110px; border-radius:4px; background:#000; }
audio.wide { width:300px; margin-top:8px; }
.legend { font-size:11.5px; color:var(--mute); }
.legend .bar { display:inline-block; width:120px; height:10px; border-radius:2px; vertical-align:middle;
               margin:0 6px; border:1px solid var(--line); }
table.objects { border-collapse:collapse; }
table.objects th { font-size:11.5px; font-weight:600; color:var(--mute); text-align:left; padding:4px 6px;
                   border-bottom:1px solid var(--line); white-space:nowrap; }
table.objects td { vertical-align:top; padding:8px 6px; border-bottom:1px solid var(--line); }
table.objects tr:last-child td { border-bottom:0; }
table.objects tr.silent td { background:#fbfbfc; }
img.spec, img.mask { display:block; width:136px; height:84px; border-radius:4px; background:#000; }
img.strip { display:block; height:56px; border-radius:3px; }
img.crops { display:block; height:48px; border-radius:3px; margin-top:4px; }
audio { display:block; width:136px; height:30px; margin-top:4px; }
.empty { width:136px; height:84px; display:flex; align-items:center; justify-content:center; text-align:center;
         border:1px dashed #cfd3da; border-radius:4px; color:var(--mute); font-size:11.5px; padding:4px; }
.cls { font-weight:600; font-size:14px; }
.file { color:var(--mute); font-size:11.5px; word-break:break-all; max-width:170px; }
.badge { display:inline-block; padding:1px 8px; border-radius:10px; font-size:11.5px; font-weight:600;
         margin:4px 4px 0 0; }
.badge.sounding { background:#e3f0ff; color:#1c5fd6; }
.badge.silent { background:#eceef1; color:#5b6270; }
.badge.ok { background:#e1f5ea; color:var(--ok); }
.badge.bad { background:#fde8e8; color:var(--bad); }
.scores { font-variant-numeric:tabular-nums; font-size:12px; white-space:nowrap; margin-top:6px; }
.scores b { display:inline-block; width:56px; color:var(--mute); font-weight:500; }
.scores .big { font-size:14px; font-weight:650; }
.small { font-size:11.5px; color:var(--mute); }
table.runs { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
table.runs th, table.runs td { padding:7px 10px; border-bottom:1px solid var(--line); text-align:right;
                               white-space:nowrap; }
table.runs th { font-size:12px; color:var(--mute); font-weight:600; background:#fafbfc; }
table.runs td.l, table.runs th.l { text-align:left; }
table.runs tr:hover td { background:#f7f9ff; }
a { color:var(--accent); text-decoration:none; }
a:hover { text-decoration:underline; }
"""


def _esc(x) -> str:
    return html.escape(str(x), quote=True)


def _url(rel: str) -> str:
    """A relative path as an escaped URL attribute value."""
    return _esc(urllib.parse.quote(rel.replace(os.sep, "/")))


def _num(v) -> float:
    return float(v) if isinstance(v, (int, float, np.floating, np.integer)) else float("nan")


def _fmt(v, digits: int = 2, unit: str = "") -> str:
    v = _num(v)
    if math.isnan(v):
        return "—"
    if math.isinf(v):
        return "+∞" if v > 0 else "−∞"
    return f"{v:.{digits}f}{unit}".replace("-", "−")


def _gradient(cmap: str) -> str:
    stops = ", ".join("rgb({},{},{})".format(*_lut(cmap)[i]) for i in range(0, 256, 32))
    return f"linear-gradient(to right, {stops}, rgb({','.join(map(str, _lut(cmap)[255]))}))"


def _page(title: str, head_html: str, body_html: str) -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{_esc(title)}</title><style>{CSS}</style></head>\n<body>\n<header>{head_html}</header>\n"
            f"<main>\n{body_html}\n</main>\n</body></html>\n")


def _summary_table(summary: dict) -> str:
    rows = []

    def group(name):
        rows.append(f"<tr class=\"group\"><td colspan=\"3\">{_esc(name)}</td></tr>")

    def row(label, a, b="", note=""):
        note_html = f"<div class=\"note\">{note}</div>" if note else ""
        rows.append(f"<tr><td>{label}{note_html}</td><td>{a}</td><td>{b}</td></tr>")

    mean, median = summary.get("mean") or {}, summary.get("median") or {}
    if mean or median:
        n_valid, n_invalid = summary.get("num_valid"), summary.get("num_invalid")
        group(f"separation (dB), sounding sources: {n_valid if n_valid is not None else '?'} valid"
              + (f", {n_invalid} invalid (excluded)" if n_invalid else ""))
        rows.append("<tr><td></td><td class=\"note\">mean</td><td class=\"note\">median</td></tr>")
        for key, label in (("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("sdr_mix", "mixture SDR (input)")):
            if key in mean or key in median:
                row(label, _fmt(mean.get(key)), _fmt(median.get(key)))
        if "sdr" in mean and "sdr_mix" in mean:
            row("SDR improvement", _fmt(_num(mean["sdr"]) - _num(mean["sdr_mix"])),
                _fmt(_num(median.get("sdr")) - _num(median.get("sdr_mix"))) if median else "")
    ground = summary.get("grounding") or {}
    if ground or "solo_grounding_acc" in summary:
        group("sounding-object grounding (p > 0.5 = sounding)")
        for key, label in (("accuracy", "accuracy"), ("balanced_accuracy", "balanced accuracy"),
                           ("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
                           ("ap", "average precision")):
            if key in ground:
                row(label, _fmt(ground[key], 3))
        if "num_positive" in ground:
            row("objects", f"{ground.get('num_positive')} sounding / {ground.get('num_negative')} silent")
        if "solo_grounding_acc" in summary:
            row("solo grounding accuracy", _fmt(summary["solo_grounding_acc"], 3),
                note="one solo sound against its own and another object")
    if "silent_leakage_db" in summary or "reference_silent_sdr" in summary:
        group("silent-object protocol (masks gated by grounding)")
        if "silent_leakage_db" in summary:
            row("silent-slot leakage", _fmt(summary["silent_leakage_db"], 2, " dB"),
                note="energy of silent objects' estimates re the mixture; lower is better (floor −100 dB)")
        if "reference_silent_sdr" in summary:
            row("reference protocol SDR", _fmt(summary["reference_silent_sdr"], 2, " dB"),
                note="main_silent.py's number: 1e-6 added to all 4 slots; not a separation SDR, "
                     "not comparable to the SDR above")
    loss = summary.get("loss") or {}
    if loss:
        group("loss")
        for key, value in loss.items():
            row(_esc(key), _fmt(value, 4))
    if not rows:
        return "<p class=\"small\">no metrics</p>"
    return f"<table class=\"metrics\">{''.join(rows)}</table>"


def _scores_html(rec) -> str:
    if rec is None:
        return ""
    flag = "" if rec.get("valid", True) else "<div class=\"badge bad\">invalid: excluded</div>"
    sdr, mix = _num(rec.get("sdr")), _num(rec.get("sdr_mix"))
    return (f"<div class=\"scores\">{flag}<div><b>SDR</b><span class=\"big\">{_fmt(sdr)}</span></div>"
            f"<div><b>SIR</b>{_fmt(rec.get('sir'))}</div><div><b>SAR</b>{_fmt(rec.get('sar'))}</div>"
            f"<div><b>mix SDR</b>{_fmt(mix)}</div><div><b>ΔSDR</b>{_fmt(sdr - mix)}</div></div>")


def _leak_db(est_i16: np.ndarray, mix_i16: np.ndarray) -> float:
    e = float(np.sum(est_i16.astype(np.float64) ** 2))
    m = float(np.sum(mix_i16.astype(np.float64) ** 2))
    return 10 * math.log10(max(e / m, 1e-10)) if m > 0 else float("nan")


def _write_sample(s: dict, i: int, media: str, args) -> str:
    """Write one sample's media under media/s<i>/ and return its card."""
    sub = f"s{i:03d}"
    os.makedirs(os.path.join(media, sub))
    rate = int(getattr(args, "aud_rate", 11025))
    data_root = getattr(args, "data_root", "")

    def rel(name):
        return f"media/{sub}/{name}"

    def path(name):
        return os.path.join(media, sub, name)

    def spec_audio(name: str, spec_u8, wav_i16, caption: str, empty_text: str) -> str:
        if not np.any(wav_i16):
            return f"<div class=\"empty\">{_esc(empty_text)}</div>"
        _save_colormapped(spec_u8, path(name + ".jpg"), "magma")
        _save_wav(wav_i16, path(name + ".wav"), rate)
        return (f"<img class=\"spec\" src=\"{_url(rel(name + '.jpg'))}\" alt=\"{_esc(caption)}\" "
                f"title=\"{_esc(caption)}\" loading=\"lazy\">"
                f"<audio controls preload=\"none\" src=\"{_url(rel(name + '.wav'))}\"></audio>")

    def mask_img(name: str, mask_u8, caption: str) -> str:
        _save_colormapped(mask_u8, path(name + ".jpg"), "viridis")
        return (f"<img class=\"mask\" src=\"{_url(rel(name + '.jpg'))}\" alt=\"{_esc(caption)}\" "
                f"title=\"{_esc(caption)}\" loading=\"lazy\">")

    infos, sounding, prob = s["infos"], s["sounding"], s["prob"]
    N = len(infos)
    has_masks, has_est = s["pred_mask"] is not None, "est" in s["wav"]
    has_oracle = "oracle" in s["wav"]

    _save_colormapped(s["spec"]["mix"], path("mix.jpg"), "magma")
    _save_wav(s["wav"]["mix"], path("mix.wav"), rate)

    heads = ["object", "video frames (detection box) · network input"]
    if has_masks:
        heads += ["predicted mask", "true mask"]
    if has_est:
        heads += ["separated"]
    heads += ["true source"]
    if has_oracle:
        heads += ["mixture × true mask (oracle)"]
    body = []
    for n in range(N):
        info = infos[n]
        name = class_of(info) if info else "?"
        stem = os.path.splitext(os.path.basename(info))[0]
        cells = []
        badges = (f"<span class=\"badge {'sounding' if sounding[n] else 'silent'}\">"
                  f"{'sounding' if sounding[n] else 'silent'}</span>")
        if prob is not None:
            p = float(prob[n])
            ok = (p > 0.5) == bool(sounding[n])
            badges += (f"<span class=\"badge {'ok' if ok else 'bad'}\" title=\"predicted probability that the "
                       f"object sounds; {'correct' if ok else 'wrong'} at 0.5\">p = {p:.2f} "
                       f"{'✓' if ok else '✗'}</span>")
        if not has_est:
            scores = ""
        elif sounding[n]:
            scores = _scores_html(s["records"].get(n))
        else:
            leak = (f"<span class=\"big\">{_fmt(_leak_db(s['wav']['est'][n], s['wav']['mix']), 1)}</span> dB"
                    if np.any(s["wav"]["est"][n]) else "<span class=\"big\">none</span> (gated)")
            scores = (f"<div class=\"scores\" title=\"energy of the leaked estimate re the mixture\">"
                      f"<b>leakage</b>{leak}</div>")
        cells.append(f"<div class=\"cls\">{_esc(name)}</div><div class=\"file\" title=\"{_esc(info)}\">"
                     f"{_esc(stem)}</div><div>{badges}</div>"
                     f"<div class=\"small\">frames {_esc(', '.join(str(int(f)) for f in s['frame_ids'][n]))}</div>"
                     f"{scores}")

        _frame_strip(data_root, info, s["frame_ids"][n], s["boxes"][n], path(f"o{n}_frames.jpg"))
        _hstack([Image.fromarray(c) for c in s["crops"][n]]).save(path(f"o{n}_crops.jpg"), quality=90)
        cells.append(f"<img class=\"strip\" src=\"{_url(rel(f'o{n}_frames.jpg'))}\" alt=\"frames\" loading=\"lazy\">"
                     f"<img class=\"crops\" src=\"{_url(rel(f'o{n}_crops.jpg'))}\" alt=\"network input\" "
                     f"title=\"crops as fed to the networks\" loading=\"lazy\">")
        if has_masks:
            cells.append(mask_img(f"o{n}_pred_mask", s["pred_mask"][n], "predicted mask"))
            cells.append(mask_img(f"o{n}_true_mask", s["gt_mask"][n], "true mask (clipped to 1)"))
        if has_est:
            what = "separated" if sounding[n] else "leaked estimate (silent object)"
            cells.append(f"<div class=\"small\">{'' if sounding[n] else 'leaked estimate'}</div>"
                         + spec_audio(f"o{n}_est", s["spec"]["est"][n], s["wav"]["est"][n], what,
                                      "gated to zero: nothing leaked"))
        cells.append(spec_audio(f"o{n}_source", s["spec"]["source"][n], s["wav"]["source"][n],
                                "true source", "silent: no true source"))
        if has_oracle:
            cells.append(spec_audio(f"o{n}_oracle", s["spec"]["oracle"][n], s["wav"]["oracle"][n],
                                    "mixture × true mask (oracle)", "true mask is zero"))
        body.append(f"<tr class=\"{'sounding' if sounding[n] else 'silent'}\">"
                    + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")

    names = " + ".join(class_of(x) for x, snd in zip(infos, sounding) if snd)
    silent = ", ".join(class_of(x) for x, snd in zip(infos, sounding) if not snd)
    recs = [r for r in s["records"].values() if r.get("valid", True)]
    mean_sdr = (f"<span class=\"badge sounding\">mean SDR {_fmt(np.mean([_num(r['sdr']) for r in recs]))} dB</span>"
                if recs else "")
    ground = ""
    if prob is not None:
        correct = int(np.sum((np.asarray(prob) > 0.5) == np.asarray(sounding)))
        ground = (f"<div class=\"small\" style=\"margin-top:6px\">grounding: <b>{correct}/{N}</b> objects "
                  f"classified correctly</div>")
    return (f"<section class=\"card\" id=\"{sub}\"><div class=\"card-head\"><h3>#{i + 1} · sample "
            f"{s['index']}</h3><span class=\"what\">sounding: <b>{_esc(names or '—')}</b>"
            f"{' · silent: ' + _esc(silent) if silent else ''}</span>{mean_sdr}</div>"
            f"<div class=\"card-body\"><div class=\"mix\"><img class=\"mixspec\" src=\"{_url(rel('mix.jpg'))}\" "
            f"alt=\"mixture\" loading=\"lazy\"><div><div class=\"cls\">mixture</div><div class=\"small\">"
            f"sum of the sounding objects' clips</div><audio class=\"wide\" controls preload=\"none\" "
            f"src=\"{_url(rel('mix.wav'))}\"></audio>{ground}</div></div>"
            f"<table class=\"objects\"><thead><tr>{''.join(f'<th>{_esc(h)}</th>' for h in heads)}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table></div></section>")


def _remove_stale(run_dir: str) -> None:
    """Folders left by an interrupted page write (old pages always, unfinished ones after a while)."""
    now = time.time()
    for name in os.listdir(run_dir):
        full = os.path.join(run_dir, name)
        if name.startswith(f".{PAGE_DIR}-old-") or (
                name.startswith((f".{PAGE_DIR}-new-", ".plots-")) and now - os.path.getmtime(full) > STALE_SECONDS):
            shutil.rmtree(full, ignore_errors=True)


def _swap_in(tmp: str, final: str) -> None:
    """Replace folder `final` by `tmp`; a reader sees the old page or the new one, never a mix."""
    old = None
    if os.path.exists(final):
        old = f"{os.path.dirname(final)}/.{PAGE_DIR}-old-{os.getpid()}-{time.time_ns()}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _eval_pages(root: str) -> list[str]:
    """Names of the evaluation pages (sub-folders with an index.html) under a visualization folder."""
    if not os.path.isdir(root):
        return []
    return sorted(n for n in os.listdir(root) if not n.startswith(".") and n != "media"
                  and os.path.isfile(os.path.join(root, n, "index.html")))


def write_run_page(args, summary, vis_samples, history, title, checkpoint=None, page: str = "") -> str:
    """Write a page of a run with its media; returns the page's path.

    page "" is the training run's validation page, <run_dir>/visualization/index.html; an evaluation
    names its own page ("test", "test_silent"), <run_dir>/visualization/<page>/index.html, so that
    no page overwrites another. Each page is written into a fresh folder and swapped in whole.
    """
    run_dir = args.run_dir
    root = os.path.join(run_dir, PAGE_DIR)
    parent = root if page else run_dir
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent)
    final = os.path.join(parent, page) if page else root
    up = "../../" if page else "../"          # from the page's folder back to run_dir
    tmp = tempfile.mkdtemp(prefix=f".{PAGE_DIR}-new-", dir=parent)
    try:
        os.chmod(tmp, 0o755)
        media = os.path.join(tmp, "media")
        os.makedirs(media)
        summary = summary or {}
        cards = [_write_sample(s, i, media, args) for i, s in enumerate(vis_samples or [])]

        plots = []
        if _plot_per_class(summary.get("per_class") or {}, os.path.join(tmp, "per_class_sdr.png")):
            plots.append(("per_class_sdr.png", "per-class SDR"))
        plots += [(name, name[:-4]) for name in _plot_curves(history, tmp)]

        run_id, stage = getattr(args, "id", os.path.basename(run_dir)), getattr(args, "stage", "?")
        links = []
        if os.path.isfile(os.path.join(run_dir, "..", "index.html")):
            links.append(f"<a href=\"{up}../index.html\">all runs</a>")
        if page and os.path.isfile(os.path.join(root, "index.html")):
            links.append("<a href=\"../index.html\">validation page</a>")
        for other in _eval_pages(root):
            if other != page:
                links.append(f"<a href=\"{_url(('../' if page else '') + other + '/index.html')}\">"
                             f"{_esc(other.replace('_', ' '))} evaluation</a>")
        for name in ("results.json", "results_silent.json", "summary.json", "summary_silent.json",
                     "history.json", "args.json", "eval_test.csv", "eval_val.csv", "eval_test_silent.csv"):
            if os.path.isfile(os.path.join(run_dir, name)):
                links.append(f"<a href=\"{_url(up + name)}\">{_esc(name)}</a>")
        meta = [f"<b>stage</b> {_esc(stage)}", f"<b>written</b> {datetime.datetime.now():%Y-%m-%d %H:%M:%S}"]
        if checkpoint:
            meta.append(f"<b>checkpoint</b> {_esc(checkpoint)}")
        if getattr(args, "data_root", None):
            meta.append(f"<b>data</b> {_esc(args.data_root)}")
        meta.append(f"<b>silent-object protocol</b> {'on' if getattr(args, 'eval_silent', False) else 'off'}")
        head = (f"<h1>{_esc(run_id)}</h1><div class=\"sub\">{_esc(title)}</div>"
                f"<div class=\"meta\">{' &nbsp;·&nbsp; '.join(meta)}</div>"
                + (f"<div class=\"meta\">{' &nbsp;·&nbsp; '.join(links)}</div>" if links else ""))

        freq = "log frequency" if getattr(args, "log_freq", 1) else "linear frequency"
        has_masks = any(s["pred_mask"] is not None for s in vis_samples or [])
        legend = (f"<div class=\"legend\">spectrograms ({freq}, low at the bottom"
                  f"{'; separated and oracle: |mixture| × mask' if has_masks else ''}): −{DB_RANGE:.0f} dB"
                  f"<span class=\"bar\" style=\"background:{_gradient('magma')}\"></span>0 dB re the mixture's peak")
        if has_masks:
            legend += (f" &nbsp;&nbsp; masks: 0<span class=\"bar\" style=\"background:{_gradient('viridis')}\">"
                       f"</span>1 (true ratio masks clipped at 1)")
        legend += (" &nbsp;&nbsp; frames: <span style=\"color:#c9a400;font-weight:700\">■</span> "
                   "detection box used for the crop</div>")
        figures = "".join(f"<div class=\"panel plots\"><img src=\"{n}\" alt=\"{a}\"></div>" for n, a in plots)
        body = [f"<h2>Summary</h2><div class=\"row\"><div class=\"panel\">{_summary_table(summary)}</div>"
                f"<div class=\"column\">{figures}</div></div>"]
        body.append(f"<h2>Samples ({len(cards)})</h2>{legend}<div style=\"height:10px\"></div>")
        body += cards or ["<p class=\"small\">no samples collected</p>"]
        with open(os.path.join(tmp, "index.html"), "w", encoding="utf-8") as f:
            f.write(_page(f"{run_id}: {title}", head, "\n".join(body)))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not page:  # the evaluation pages live inside the validation page's folder: keep them
        for other in _eval_pages(root):
            os.rename(os.path.join(root, other), os.path.join(tmp, other))
    _swap_in(tmp, final)
    return os.path.join(final, "index.html")


# ----------------------------------------------------------------------------------------------
# Index of all runs
# ----------------------------------------------------------------------------------------------
def _load_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_runs_index(ckpt_root) -> str:
    """<ckpt_root>/index.html: one row per run (subfolder with args.json), newest first."""
    os.makedirs(ckpt_root, exist_ok=True)
    runs = []
    for name in sorted(os.listdir(ckpt_root)):
        run_dir = os.path.join(ckpt_root, name)
        args = _load_json(os.path.join(run_dir, "args.json"))
        if not isinstance(args, dict):
            continue
        files = [os.path.join(run_dir, f) for f in ("args.json", "history.json", "results.json",
                                                      "results_silent.json", "checkpoint_latest.pt")]
        mtime = max(os.path.getmtime(f) for f in files if os.path.exists(f))
        history = _load_json(os.path.join(run_dir, "history.json")) or {}
        results = _load_json(os.path.join(run_dir, "results.json"))
        silent = _load_json(os.path.join(run_dir, "results_silent.json"))
        train = history.get("train") or []
        epochs = max((r.get("epoch", 0) for r in train), default=None)
        if isinstance(results, dict):
            src, vals = f"{results.get('split', 'test')} eval", results
        elif history.get("val"):
            last = history["val"][-1]
            src, vals = f"val, epoch {last.get('epoch', '?')}", last
        else:
            src, vals = "—", {}
        silent = silent if isinstance(silent, dict) else {}
        root = os.path.join(run_dir, PAGE_DIR)
        pages = ([("validation", "index.html")] if os.path.isfile(os.path.join(root, "index.html")) else [])
        pages += [(sub.replace("_", " "), f"{sub}/index.html") for sub in _eval_pages(root)]
        runs.append((mtime, name, args, epochs, src, vals, silent, pages))
    runs.sort(key=lambda r: -r[0])

    cols = [("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("sdr_mix", "mix SDR"),
            ("grounding_acc", "grounding acc"), ("grounding_ap", "grounding AP"),
            ("solo_grounding_acc", "solo acc")]
    head = ("<tr><th class=\"l\">run</th><th class=\"l\">stage</th><th class=\"l\">updated</th><th>epochs</th>"
            "<th class=\"l\">metrics from</th>" + "".join(f"<th>{_esc(c[1])}</th>" for c in cols)
            + "<th>silent leakage</th><th>silent acc</th><th class=\"l\">pages</th></tr>")
    rows = []
    for mtime, name, args, epochs, src, vals, silent, pages in runs:
        links = [(label, f"{urllib.parse.quote(name)}/{PAGE_DIR}/{urllib.parse.quote(rel)}") for label, rel in pages]
        digits = {"grounding_acc": 3, "grounding_ap": 3, "solo_grounding_acc": 3}
        anchor = f"<a href=\"{_esc(links[0][1])}\">{_esc(name)}</a>" if links else _esc(name)
        cells = [f"<td class=\"l\">{anchor}</td>",
                 f"<td class=\"l\">{_esc(args.get('stage', '?'))}</td>",
                 f"<td class=\"l\">{datetime.datetime.fromtimestamp(mtime):%Y-%m-%d %H:%M}</td>",
                 f"<td>{epochs if epochs is not None else '—'}</td>", f"<td class=\"l\">{_esc(src)}</td>"]
        cells += [f"<td>{_fmt(vals.get(k), digits.get(k, 2))}</td>" for k, _ in cols]
        cells += [f"<td>{_fmt(silent.get('silent_leakage_db'), 1, ' dB')}</td>",
                  f"<td>{_fmt(silent.get('silent_acc'), 3)}</td>",
                  "<td class=\"l\">" + (" · ".join(f"<a href=\"{_esc(href)}\">{_esc(label)}</a>"
                                                   for label, href in links) or "—") + "</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = (f"<div class=\"panel\" style=\"overflow-x:auto\"><table class=\"runs\"><thead>{head}</thead>"
             f"<tbody>{''.join(rows) or '<tr><td class=l colspan=15>no runs yet</td></tr>'}</tbody></table></div>"
             "<p class=\"small\">SDR/SIR/SAR in dB over sounding sources. Metrics come from the run's last "
             "evaluation (results.json) when it has one, else from its last validation epoch. Silent columns: "
             "results_silent.json (energy leaked into silent objects re the mixture; grounding accuracy).</p>")
    head_html = (f"<h1>Runs</h1><div class=\"sub\">{_esc(os.path.abspath(ckpt_root))}</div>"
                 f"<div class=\"meta\"><b>written</b> {datetime.datetime.now():%Y-%m-%d %H:%M:%S} · "
                 f"{len(runs)} run{'s' if len(runs) != 1 else ''}</div>")
    path = os.path.join(ckpt_root, "index.html")
    fd, tmp = tempfile.mkstemp(prefix=".index-", suffix=".html", dir=ckpt_root)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(_page("runs", head_html, table))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path
