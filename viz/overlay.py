"""Sounding maps over whole frames: the map in colour over the picture, with the detection box and,
where the data has them, the true boxes of sounding and silent objects."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from viz.media import lut

MAP_CMAP = "turbo"
OVERLAY_H = 144  # display height of an overlay, pixels
# Box colours, also named on the page's legend.
DETECTION_RGB = (255, 212, 0)  # yellow: the detection box the networks were given
SOUNDING_RGB = (40, 200, 90)  # green: a true sounding object
SILENT_RGB = (235, 60, 60)  # red: a true silent object


def map_colors(kind: str) -> tuple[str, str]:
    """What 0 and 1 of a map's colour scale mean, per map kind (for the legend)."""
    if kind == "grounding":
        return "p(sounding) 0", "1"
    return "separated energy 0", "frame max"


def scale_map(heat: np.ndarray, kind: str) -> np.ndarray:
    """A map on its colour scale in [0, 1]: grounding probabilities as they are (comparable across
    frames), separation energies relative to the frame's maximum."""
    if kind == "grounding":
        return np.clip(heat, 0.0, 1.0)
    peak = float(heat.max())
    return heat / peak if peak > 0 else np.zeros_like(heat)


def overlay_image(
    frame: np.ndarray,
    heat: np.ndarray,
    detection: np.ndarray | None = None,
    truth: np.ndarray | None = None,
    height: int = OVERLAY_H,
) -> Image.Image:
    """The frame with a [0, 1] map blended over it and the boxes drawn.

    Args:
        frame: uint8 (H, W, 3); heat: (H, W) on its colour scale (scale_map), same pixels.
        detection: (4,) x1, y1, x2, y2 in the frame's pixels, or None.
        truth: (K, 5) rows x1, y1, x2, y2, sounding (NaN rows ignored), or None.
    """
    H, W = heat.shape
    width = max(1, round(height * W / H))
    base = Image.fromarray(frame).resize((width, height), Image.BILINEAR)
    heat_img = Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8))
    heat_up = np.asarray(heat_img.resize((width, height), Image.BILINEAR))
    color = lut(MAP_CMAP)[heat_up].astype(np.float32)  # (h, w, 3)
    alpha = (0.25 + 0.45 * heat_up / 255.0)[..., None]  # the map shows most where it is high
    blended = (1 - alpha) * np.asarray(base, np.float32) + alpha * color
    img = Image.fromarray(blended.round().astype(np.uint8))
    draw = ImageDraw.Draw(img)
    sx, sy = width / W, height / H

    def box(xyxy, rgb, line):
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        draw.rectangle([x1 * sx, y1 * sy, x2 * sx, y2 * sy], outline=rgb, width=line)

    for row in () if truth is None else truth:
        if np.isfinite(row).all():
            box(row[:4], SOUNDING_RGB if row[4] > 0.5 else SILENT_RGB, 2)
    if detection is not None and np.isfinite(detection).all():
        box(detection, DETECTION_RGB, 1)
    return img
