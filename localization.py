"""Localization scores of sounding maps against true boxes, as in the sound-source localization
literature (Senocak et al. 2018; Chen et al. 2021, LVS), plus the share of a map on silent objects.

A map is scored on one whole frame, upsampled (bilinear) to the frame's pixels:
- pointing: its peak lies in a sounding object's box;
- cIoU: the map, min-max normalised and cut at 0.5, against the union G of sounding boxes:
  |P ∩ G| / (|G| + |P \\ G|) (the consensus IoU with one annotator);
- silent energy: the share of the map's mass on silent objects' boxes (outside sounding ones).
Over a set: `loc_pointing_acc` (mean pointing), `loc_ciou` (share of frames with cIoU >= 0.5),
`loc_auc` (area under the share of frames with cIoU >= t, t from 0 to 1), `loc_silent_energy`
(mean share, over the frames that show a silent object).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

CIOU_THRESHOLD = 0.5
AUC_THRESHOLDS = np.linspace(0.0, 1.0, 21)
LOC_KEYS = ("loc_pointing_acc", "loc_ciou", "loc_auc", "loc_silent_energy")


def upsample(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps at the nets' resolution to frame pixels: (..., h, w) -> (..., H, W), bilinear."""
    lead = maps.shape[:-2]
    up = F.interpolate(maps.float().reshape(-1, 1, *maps.shape[-2:]), size, mode="bilinear")
    return up.reshape(*lead, *size)


def box_mask(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixels whose centre lies in any of the (K, 4) x1, y1, x2, y2 boxes: bool (H, W)."""
    height, width = size
    ys, xs = np.arange(height)[:, None] + 0.5, np.arange(width)[None] + 0.5
    mask = np.zeros(size, bool)
    for x1, y1, x2, y2 in boxes:
        mask |= (xs >= x1) & (xs < x2) & (ys >= y1) & (ys < y2)
    return mask


def frame_scores(heatmap: np.ndarray, true_boxes: np.ndarray) -> dict:
    """Scores of one frame's map (H, W) >= 0 against its truth rows (K, 5): x1, y1, x2, y2,
    sounding (NaN rows ignored). Keys absent where undefined: pointing and cIoU need a sounding
    box, silent energy a silent one."""
    rows = true_boxes[np.isfinite(true_boxes).all(1)]
    sounding = box_mask(rows[rows[:, 4] > 0.5, :4], heatmap.shape)
    silent = box_mask(rows[rows[:, 4] <= 0.5, :4], heatmap.shape) & ~sounding
    scores = {}
    if sounding.any():
        peak = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        scores["pointing"] = float(sounding[peak])
        low, high = float(heatmap.min()), float(heatmap.max())
        # A flat map points everywhere alike: all of it is predicted.
        norm = (heatmap - low) / (high - low) if high > low else np.ones_like(heatmap)
        pred = norm >= CIOU_THRESHOLD
        scores["ciou"] = float(
            (pred & sounding).sum() / (sounding.sum() + (pred & ~sounding).sum())
        )
    if silent.any():
        total = float(heatmap.sum())
        scores["silent_energy"] = float(heatmap[silent].sum()) / total if total > 0 else 0.0
    return scores


def summarize(frames: list[dict]) -> dict:
    """The four loc_* keys over per-frame scores; None where no frame defines one."""
    pointing = [f["pointing"] for f in frames if "pointing" in f]
    ciou = np.array([f["ciou"] for f in frames if "ciou" in f])
    silent = [f["silent_energy"] for f in frames if "silent_energy" in f]
    out = dict.fromkeys(LOC_KEYS)
    if pointing:
        out["loc_pointing_acc"] = float(np.mean(pointing))
        out["loc_ciou"] = float(np.mean(ciou >= CIOU_THRESHOLD))
        success = [float(np.mean(ciou >= t)) for t in AUC_THRESHOLDS]
        out["loc_auc"] = float(np.trapezoid(success, AUC_THRESHOLDS))
    if silent:
        out["loc_silent_energy"] = float(np.mean(silent))
    out["loc_frames"] = len(pointing)
    return out
