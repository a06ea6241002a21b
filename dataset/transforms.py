"""Image geometry of the reference (box crop, shorter-side resize, crop) and GPU-side normalisation."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def crop_resize(image: torch.Tensor, box: tuple[int, int, int, int], size: int, short_side: int,
                rel_offset: tuple[float, float] | None) -> torch.Tensor:
    """The reference's crop `box` -> resize shorter side to `short_side` -> crop size x size.

    `rel_offset` = (u, v) in [0, 1) puts the crop at that fraction of the free room, the same for
    all frames of an object whatever their box sizes (the reference reused frame 0's pixel offsets,
    defect 10); None centres it. Only the input pixels under the crop are resized, with torch's
    antialiased uint8 bicubic (PIL's filter): 2-3x less work than resizing the whole box. The crop
    lands within a pixel of the reference's integer offset, as it follows the resize grid of its
    input window rather than whole pixels of the resized box.

    Shape: image uint8 (3, H, W) -> uint8 (3, size, size).
    """
    x1, y1, x2, y2 = box
    box_w, box_h = x2 - x1, y2 - y1
    # torchvision's Resize(int) rule, as in the reference.
    if box_w <= box_h:
        out_w, out_h = short_side, int(short_side * box_h / box_w)
    else:
        out_w, out_h = int(short_side * box_w / box_h), short_side
    u, v = rel_offset if rel_offset is not None else (0.5, 0.5)
    x_lo, x_hi, x_shift, x_scale = _window(box_w, out_w, size, u)
    y_lo, y_hi, y_shift, y_scale = _window(box_h, out_h, size, v)
    window = image[None, :, y1 + y_lo:y1 + y_hi, x1 + x_lo:x1 + x_hi]
    resized = F.interpolate(window, scale_factor=(y_scale, x_scale), mode="bicubic", antialias=True,
                            recompute_scale_factor=False)[0]
    return resized[:, y_shift:y_shift + size, x_shift:x_shift + size]


def _window(length: int, out_length: int, size: int, rel: float) -> tuple[int, int, int, float]:
    """Along one axis: the input span [lo, hi) (box coordinates) that an output window of `size`
    at `rel` of the free room needs, the window's start inside that span once resized, and the scale.
    """
    # Nudged up so that float rounding in interpolate's floor(in * scale) cannot drop a pixel.
    scale = out_length / length * (1 + 1e-9)
    offset = rel * (out_length - size)                       # window start, in resized pixels
    margin = math.ceil(2 / min(scale, 1.0)) + 1              # bicubic support, in input pixels
    lo = max(0, math.floor(offset / scale) - margin)
    hi = min(length, math.ceil((offset + size) / scale) + margin)
    shift = min(max(round(offset - lo * scale), 0), math.floor((hi - lo) * scale) - size)
    return lo, hi, shift, scale


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
