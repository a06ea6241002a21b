"""Image geometry of the reference (box crop, shorter-side resize, crop) and GPU-side normalisation."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def crop_resize(img: Image.Image, box: tuple[int, int, int, int], size: int, short_side: int,
                rel_offset: tuple[float, float] | None) -> np.ndarray:
    """Crops `box`, resizes its shorter side to `short_side` (bicubic, aspect kept), crops size x size.

    `rel_offset` = (u, v) in [0, 1) places the crop at that fraction of the free room, so frames of
    different box sizes get the same relative crop (the reference reused frame 0's pixel offsets,
    defect 10); None takes the centre crop. The three steps are one PIL resize of the final crop's
    source region, which gives the same picture as crop -> resize -> crop for a fraction of the work.

    Returns: uint8 (size, size, 3).
    """
    x1, y1, x2, y2 = box
    box_w, box_h = x2 - x1, y2 - y1
    # torchvision's Resize(int) rule, as in the reference.
    if box_w <= box_h:
        out_w, out_h = short_side, int(short_side * box_h / box_w)
    else:
        out_w, out_h = int(short_side * box_w / box_h), short_side
    room_x, room_y = out_w - size, out_h - size
    if rel_offset is None:
        off_x, off_y = int(round(room_x / 2.0)), int(round(room_y / 2.0))
    else:
        off_x = min(int(rel_offset[0] * (room_x + 1)), room_x)
        off_y = min(int(rel_offset[1] * (room_y + 1)), room_y)
    scale_x, scale_y = box_w / out_w, box_h / out_h
    source = (x1 + off_x * scale_x, y1 + off_y * scale_y,
              x1 + (off_x + size) * scale_x, y1 + (off_y + size) * scale_y)
    return np.asarray(img.resize((size, size), Image.BICUBIC, box=source))


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation, done where the frames are (GPU in training).

    Shape: uint8 (..., 3, T, H, W) -> float32 (..., 3, T, H, W).
    """
    if frames.dtype != torch.uint8 or frames.dim() < 4 or frames.shape[-4] != 3:
        raise ValueError(f"expected uint8 frames (..., 3, T, H, W), got {frames.dtype} {tuple(frames.shape)}")
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(3, 1, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(3, 1, 1, 1)
    # (x / 255 - mean) / std as one multiply-add.
    return torch.addcmul(-mean / std, frames.float(), 1.0 / (255.0 * std))
