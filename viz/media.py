"""Tensors to page media: spectrogram and mask images, 16-bit waveforms, frame strips, wav files."""

from __future__ import annotations

import os

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from dataset.layout import frame_name, frames_dir
from models.spectral import stft, warp_log_freq
from utils import atomic_write

MAX_PX = 256  # longest side of a spectrogram / mask image
CROP_PX = 96  # side of a network-input crop thumbnail
FRAME_H = 56  # height of a full-frame thumbnail
DB_RANGE = 80.0  # spectrogram dynamic range below the mixture's peak

_LUTS: dict[str, np.ndarray] = {}


def lut(name: str) -> np.ndarray:
    """(256, 3) uint8 colour table of a matplotlib colormap: one lookup per image, no figures."""
    if name not in _LUTS:
        from matplotlib import colormaps

        table = colormaps[name](np.linspace(0.0, 1.0, 256))[:, :3]
        _LUTS[name] = (table * 255).round().astype(np.uint8)
    return _LUTS[name]


def shrink(img: torch.Tensor, max_px: int) -> torch.Tensor:
    """Area-downsample (..., H, W) so neither side exceeds max_px."""
    H, W = img.shape[-2:]
    if H <= max_px and W <= max_px:
        return img
    lead = img.shape[:-2]
    size = (min(H, max_px), min(W, max_px))
    out = F.interpolate(img.reshape(-1, 1, H, W), size=size, mode="area")
    return out.reshape(*lead, *out.shape[-2:])


def to_u8(x: torch.Tensor) -> np.ndarray:
    """Values in [0, 1] (clipped) as a uint8 array on the CPU."""
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()


def to_i16(wav: torch.Tensor) -> np.ndarray:
    """A waveform in [-1, 1] (clipped) as 16-bit samples on the CPU."""
    return (wav.float().clamp(-1, 1) * 32767).round_().to(torch.int16).cpu().numpy()


@torch.no_grad()
def collect_samples(batch, out, masks, waves, records, args, limit) -> list[dict]:
    """What the page shows for at most `limit` samples of an evaluation batch, copied to the CPU.

    Spectrograms (log-frequency when args.log_freq, dB re the mixture's peak) and masks become uint8
    images here, batched on the device; waveforms become int16. Shapes as in evaluation.evaluate:
    batch['audios'] (B, N, L), batch['frames'] uint8 (B, N, 3, T, S, S), out['gt_masks'] and
    masks (B, N, 1, Fw, T), waves['est'] / waves['gt_masked'] (B, N, L).
    """
    B, N, L = batch["audios"].shape
    k = min(int(limit), B)
    if k <= 0:
        return []
    out_bins = out["gt_masks"].shape[-2]

    # Spectrograms as the model sees them (log frequency when args.log_freq): the mixture, the true
    # sources, and |mixture| x mask for the estimate and the oracle, i.e. the magnitudes that are
    # synthesised.
    mag_mix = out["mag_mix_w"][:k].float()  # (k, 1, Fw, T)
    if "mags_w" in out:
        mag_src = out["mags_w"][:k, :, 0].float()  # (k, N, Fw, T)
    else:
        mag_src = stft(batch["audios"][:k].float(), args.stft_frame, args.stft_hop).abs()
        if args.log_freq:
            mag_src = warp_log_freq(mag_src, out_bins)
    mags = {"mix": mag_mix, "source": mag_src}
    sounds = {"mix": batch["mix"][:k], "source": batch["audios"][:k]}  # waveforms the page plays
    if masks is not None and waves is not None:
        mags["est"] = mag_mix * masks[:k, :, 0].float()
        sounds["est"] = waves["est"][:k]
    if waves is not None and "gt_masked" in waves:
        mags["oracle"] = mag_mix * out["gt_masks"][:k, :, 0].float()
        sounds["oracle"] = waves["gt_masked"][:k]
    db = 20 * torch.log10(torch.cat(list(mags.values()), dim=1) + 1e-8)  # (k, M, Fw, T)
    peak = db[:, :1].amax(dim=(-3, -2, -1), keepdim=True)  # the mixture's peak
    spec_u8 = to_u8(shrink((db - peak) / DB_RANGE + 1, MAX_PX))

    def split(arr):  # (k, M, ...) -> {'mix': (k, ...), 'source': (k, N, ...), ...}
        res, i = {}, 0
        for name, m in mags.items():
            n = m.shape[1]
            res[name] = arr[:, i] if name == "mix" else arr[:, i : i + n]
            i += n
        return res

    specs = split(spec_u8)
    sounds = {name: to_i16(w) for name, w in sounds.items()}  # int16 (k, L) / (k, N, L)
    gt_masks = to_u8(
        shrink(out["gt_masks"][:k, :, 0].float(), MAX_PX)
    )  # (k, N, h, w), clipped to 1
    pred_masks = to_u8(shrink(masks[:k, :, 0].float(), MAX_PX)) if masks is not None else None

    frames = batch["frames"][:k]  # (k, N, 3, T, S, S)
    if frames.dtype != torch.uint8:
        frames = frames.clamp(0, 255).to(torch.uint8)
    Tf, S = frames.shape[3], frames.shape[-1]
    crops = frames.permute(0, 1, 3, 2, 4, 5).reshape(-1, 3, S, S)  # (k*N*T, 3, S, S)
    if S > CROP_PX:
        crops = F.interpolate(
            crops.float(),
            size=(CROP_PX, CROP_PX),
            mode="bilinear",
            antialias=True,
            align_corners=False,
        )
        crops = crops.round().clamp(0, 255).to(torch.uint8)
    crops = crops.permute(0, 2, 3, 1).reshape(k, N, Tf, *crops.shape[-2:], 3).cpu().numpy()

    prob = out["sounding_prob"][:k].float().cpu().numpy() if "sounding_prob" in out else None
    by_slot = {}
    for r in records or []:
        by_slot[(int(r["index"]), int(r["slot"]))] = r
    if torch.is_tensor(batch["index"]):
        index = batch["index"][:k].cpu().numpy()
    else:
        index = np.asarray(batch["index"][:k])
    sounding = batch["sounding"][:k].cpu().numpy()
    class_ids = batch["class_ids"][:k].cpu().numpy()
    boxes = batch["boxes"][:k].float().cpu().numpy()
    frame_ids = batch["frame_ids"][:k].cpu().numpy()

    sounding_map = None
    if "sounding_map" in out:  # whole frames with the stage's map (evaluation.sounding_map)
        sounding_map = {
            "kind": out["map_kind"],
            "heat": out["sounding_map"][:k].float().cpu().numpy(),  # (k, N, H, W)
            "frames": batch["whole_frames"][:k, :, :, 0].permute(0, 1, 3, 4, 2).cpu().numpy(),
            "detection": batch["map_boxes"][:k].float().cpu().numpy(),  # (k, N, 4)
            "truth": batch["true_boxes"][:k].float().cpu().numpy(),  # (k, N, K, 5)
        }

    samples = []
    for b in range(k):
        idx = int(index[b])
        samples.append(
            {
                "index": idx,
                "infos": [str(x) for x in batch["infos"][b]],
                "class_ids": class_ids[b],
                "sounding": sounding[b].astype(bool),
                "prob": None if prob is None else prob[b],
                "boxes": boxes[b],  # (N, T, 4) x1, y1, x2, y2 in original frame pixels
                "frame_ids": frame_ids[b],  # (N, T), 1-based
                "crops": crops[b],  # (N, T, h, w, 3) uint8
                # uint8 (h, w) / (N, h, w), rows from low to high frequency
                "spec": {name: v[b] for name, v in specs.items()},
                "wav": {name: v[b] for name, v in sounds.items()},  # int16 (L,) / (N, L)
                "gt_mask": gt_masks[b],
                "pred_mask": None if pred_masks is None else pred_masks[b],
                "records": {
                    slot: by_slot[(idx, slot)] for slot in range(N) if (idx, slot) in by_slot
                },
                # kind, and per object heat (N, H, W), frames (N, H, W, 3), boxes; or None
                "map": None
                if sounding_map is None
                else {
                    key: value if key == "kind" else value[b] for key, value in sounding_map.items()
                },
            }
        )
    return samples


def save_colormapped(img_u8: np.ndarray, path: str, cmap: str) -> None:
    """uint8 (H, W), row 0 the lowest frequency -> colour JPEG, low frequencies at the bottom."""
    h, w = img_u8.shape
    img = Image.frombytes("P", (w, h), np.ascontiguousarray(img_u8[::-1]).tobytes())
    img.putpalette(lut(cmap).tobytes())  # colormap applied by PIL in C
    save_jpeg(img.convert("RGB"), path, quality=90)


def save_jpeg(img: Image.Image, path: str, quality: int) -> None:
    atomic_write(path, lambda f: img.save(f, format="JPEG", quality=quality))


def save_wav(wav_i16: np.ndarray, path: str, rate: int) -> None:
    """16-bit PCM wav, the format every browser plays."""
    atomic_write(path, lambda f: sf.write(f, wav_i16, rate, subtype="PCM_16", format="WAV"))


def _placeholder(w: int, h: int, text: str) -> Image.Image:
    img = Image.new("RGB", (w, h), (60, 60, 66))
    ImageDraw.Draw(img).text((4, h // 2 - 6), text, fill=(220, 220, 220))
    return img


def frame_strip(data_root: str, info: str, frame_ids, boxes, path: str) -> None:
    """The object's full video frames, downscaled, side by side, with the detection box drawn."""
    folder = frames_dir(data_root, os.path.splitext(info)[0] + ".mp4")
    tiles = []
    for fid, box in zip(frame_ids, boxes):
        try:
            with Image.open(os.path.join(folder, frame_name(int(fid)))) as im:
                W, H = im.size
                w = max(1, round(FRAME_H * W / H))
                im.draft("RGB", (w, FRAME_H))  # JPEG: decode at reduced scale
                tile = im.convert("RGB").resize((w, FRAME_H), Image.BILINEAR)
        except (OSError, ValueError):
            missing = _placeholder(round(FRAME_H * 16 / 9), FRAME_H, f"frame {int(fid)} missing")
            tiles.append(missing)
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
    save_jpeg(hstack(tiles), path, quality=85)


def hstack(tiles: list, gap: int = 2) -> Image.Image:
    """Images side by side on white, top-aligned, `gap` pixels apart."""
    width = sum(t.width for t in tiles) + gap * (len(tiles) - 1)
    strip = Image.new("RGB", (width, max(t.height for t in tiles)), (255, 255, 255))
    x = 0
    for t in tiles:
        strip.paste(t, (x, 0))
        x += t.width + gap
    return strip
