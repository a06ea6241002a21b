"""Sounding maps: where in each object's whole frame a model hears the mixture, per location at
output stride 8 (docs/method.md, "Sounding maps").

Functions of a stage's nets, its options (StageConfig) and the front end's analysis of the mixture
(SpectralFrontend.analyse, or the full forward), so that evaluation and inference draw them alike:

- 'grounding': the grounding head at every location against the mixture's audio feature, the
  probability that what is there sounds (--ground_map window: of a window of the object's detection
  box size centred there, which needs the boxes);
- 'separation': Sound of Pixels' pixel-wise view, the energy of the sound each location's visual
  vector separates from the mixture.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torchvision.ops import roi_align

from dataset import normalize_frames
from models.grounding_net import sounding_probability
from models.vision_net import MAP_STRIDE
from stages import StageConfig, grounding_audio

KINDS = ("grounding", "separation")


def map_kind(nets: nn.ModuleDict) -> str:
    """The map a stage is judged and shown by: grounding where it has a grounding net."""
    return "grounding" if "grounding" in nets else "separation"


def sounding_maps(
    nets: nn.ModuleDict,
    config: StageConfig,
    mixture: dict,
    whole_frames: torch.Tensor,
    boxes: torch.Tensor | None = None,
    kinds: tuple[str, ...] = KINDS,
) -> dict:
    """Each map of `kinds` that the nets can draw.

    mixture: log_mag_mix and mag_mix_w (B, 1, Fw, T) of the front end; whole_frames uint8
    (B, N, 3, T, H, W), boxes (B, N, 4) in their pixels -> {kind: (B, N, H/8, W/8)}.
    """
    frames = normalize_frames(whole_frames)
    maps = {}
    if "grounding" in nets and "grounding" in kinds:
        audio = grounding_audio(nets, mixture["log_mag_mix"], config.ground_audio_norm)  # (B, Da)
        if config.ground_map == "window" and boxes is not None:
            maps["grounding"] = window_grounding(nets, audio, frames, boxes, config.img_size)
        else:
            maps["grounding"] = pixel_grounding(nets, audio, frames)
    if "synthesizer" in nets and "separation" in kinds:
        sound_feat = nets["sound"](mixture["log_mag_mix"])  # (B, C, F, T)
        feat = nets["frame"].forward_pixelwise(frames)  # (B, N, C, h, w)
        maps["separation"] = separated_energy(nets, feat, sound_feat, mixture["mag_mix_w"])
    return maps


def pixel_grounding(nets: nn.ModuleDict, audio: torch.Tensor, frames: torch.Tensor):
    """The grounding head on each location's visual feature: audio (B, Da), frames normalised
    (B, N, 3, T, H, W) -> (B, N, h, w)."""
    B, N = frames.shape[:2]
    feat = nets["frame_ground"].forward_pixelwise(frames)  # (B, N, Dv, h, w)
    logits = nets["grounding"].forward_pixelwise(
        audio.repeat_interleave(N, 0), feat.flatten(0, 1)
    )  # (B*N, h, w, 2)
    return sounding_probability(logits.float()).unflatten(0, (B, N))


def separated_energy(
    nets: nn.ModuleDict, feat, sound_feat, mag_mix, max_values: int = 2**26
) -> torch.Tensor:
    """Energy of the mixture through each location's mask, a few locations at a time so that
    the masks in memory stay under `max_values` (the paper's 256 x 256 spectrograms at 56 x 75
    locations would need tens of GB at once).

    feat (B, N, C, h, w), sound_feat (B, C, F, T), mag_mix (B, 1, F, T) -> (B, N, h, w).
    """
    B, N, C, h, w = feat.shape
    mag = mag_mix.float()[:, None, None]  # (B, 1, 1, 1, F, T)
    rows = max(1, max_values // (B * w * mag_mix[0].numel()))  # map rows per step
    energy = []
    for n in range(N):
        for top in range(0, h, rows):
            logits = nets["synthesizer"].forward_pixelwise(
                feat[:, n, :, top : top + rows], sound_feat
            )  # (B, r, w, 1, F, T)
            masked = torch.sigmoid(logits.float()) * mag
            energy.append(masked.square().sum((-3, -2, -1)))  # (B, r, w)
    return torch.cat(energy, 1).view(B, N, h, w)


def window_grounding(
    nets: nn.ModuleDict, audio, frames, boxes, img_size: int, chunk: int = 4096
) -> torch.Tensor:
    """Grounding of a window at every location: the crop a detection box of the object's size
    would give if centred there, pooled and scored as the nets score crops of `img_size` pixels.

    audio (B, Da), frames normalised (B, N, 3, T, H, W), boxes (B, N, 4) -> (B, N, h, w) on
    the pixelwise grid (cell centres every MAP_STRIDE pixels).
    """
    B, N, _, T, H, W = frames.shape
    S = img_size
    ys = torch.arange(MAP_STRIDE / 2, H, MAP_STRIDE, device=frames.device)
    xs = torch.arange(MAP_STRIDE / 2, W, MAP_STRIDE, device=frames.device)
    cy, cx = (c.flatten() for c in torch.meshgrid(ys, xs, indexing="ij"))  # (C,)
    half = (boxes[..., 2:] - boxes[..., :2]).float().clamp(min=1) / 2  # (B, N, 2): w/2, h/2
    centre = torch.stack([cx, cy], -1)  # (C, 2)
    corners = torch.cat([centre - half[:, :, None], centre + half[:, :, None]], -1)  # (B, N, C, 4)
    images = frames.transpose(2, 3).reshape(B * N * T, 3, H, W)
    image_of = torch.arange(B * N * T, device=frames.device, dtype=corners.dtype)
    rois = torch.cat(
        [
            image_of.view(B, N, T, 1, 1).expand(-1, -1, -1, len(cx), 1),
            corners[:, :, None].expand(-1, -1, T, -1, -1),
        ],
        -1,
    ).transpose(2, 3)  # (B, N, C, T, 5)
    rois = rois.reshape(-1, 5)
    audio_of = audio.repeat_interleave(N * len(cx), 0)  # (B*N*C, Da)
    probs = []
    for start in range(0, len(rois), chunk * T):
        crops = roi_align(
            images, rois[start : start + chunk * T], (S, S), sampling_ratio=2, aligned=True
        )  # (K*T, 3, S, S)
        crops = crops.view(-1, T, 3, S, S).transpose(1, 2)  # (K, 3, T, S, S)
        feat = nets["frame_ground"].forward_multiframe(crops)  # (K, Dv)
        first = start // T
        logits = nets["grounding"](audio_of[first : first + len(feat)], feat)
        probs.append(sounding_probability(logits.float()))
    return torch.cat(probs).view(B, N, len(ys), len(xs))
