"""Image geometry of the reference (box crop, shorter-side resize, crop) and GPU normalisation."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def train_short_side(size: int) -> int:
    """The shorter side a box is resized to before the reference's train-time RandomCrop(size)."""
    return int(size * 1.1)


def object_box(
    box: tuple[int, int, int, int] | None, image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """The detection box clipped to the image (at least 1 px); the full frame if there is none."""
    width, height = image_size
    if box is None:
        return 0, 0, width, height
    x1, y1, x2, y2 = box
    x1, y1 = min(max(x1, 0), width - 1), min(max(y1, 0), height - 1)
    return x1, y1, min(max(x2, x1 + 1), width), min(max(y2, y1 + 1), height)


def resized_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after torchvision's Resize(int) rule, as in the reference."""
    if width <= height:
        return short_side, int(short_side * height / width)
    return int(short_side * width / height), short_side


def resize_box(
    image: torch.Tensor, box: tuple[int, int, int, int], short_side: int
) -> torch.Tensor:
    """The whole box resized so its shorter side is `short_side` (the reference's Resize before its
    RandomCrop), with the antialiased uint8 bicubic of crop_resize.

    Shape: image uint8 (3, H, W) -> uint8 (3, h, w), min(h, w) = short_side.
    """
    x1, y1, x2, y2 = box
    out_w, out_h = resized_size(x2 - x1, y2 - y1, short_side)
    window = image[None, :, y1:y2, x1:x2]
    return F.interpolate(window, size=(out_h, out_w), mode="bicubic", antialias=True)[0]


def map_frame_size(height: int) -> tuple[int, int]:
    """(H, W) of the whole frames sounding maps are computed on: `height` high, 4:3 (MUSIC's
    frames vary; one size lets frames of different videos share a batch)."""
    return height, round(height * 4 / 3)


def resize_frame(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """A whole frame resized to (H, W) with crop_resize's antialiased uint8 bicubic.

    Shape: uint8 (3, H0, W0) -> uint8 (3, H, W).
    """
    return F.interpolate(image[None], size=size, mode="bicubic", antialias=True)[0]


def crop_resized(resized: np.ndarray, size: int, rel_offset: tuple[float, float]) -> np.ndarray:
    """The size x size window of an already resized box at whole-pixel offsets, the reference's
    RandomCrop: offset floor(u * (room + 1)) is uniform over 0..room for u uniform in [0, 1).

    Shape: (C, h, w) -> (C, size, size), a view.
    """
    _, height, width = resized.shape
    u, v = rel_offset
    x = int(u * (width - size + 1))
    y = int(v * (height - size + 1))
    return resized[:, y : y + size, x : x + size]


def crop_resize(
    image: torch.Tensor,
    box: tuple[int, int, int, int],
    size: int,
    short_side: int,
    rel_offset: tuple[float, float] | None,
) -> torch.Tensor:
    """The reference's crop `box` -> resize shorter side to `short_side` -> crop size x size.

    `rel_offset` = (u, v) in [0, 1) puts the crop at that fraction of the free room, the same for
    all frames of an object whatever their box sizes (the reference reused frame 0's pixel
    offsets); None centres it. Only the input pixels under the crop are resized, with torch's
    antialiased uint8 bicubic (PIL's filter): 2-3x less work than resizing the whole box. The crop
    lands within a pixel of the reference's integer offset, as it follows the resize grid of its
    input window rather than whole pixels of the resized box.

    Shape: image uint8 (3, H, W) -> uint8 (3, size, size).
    """
    x1, y1, x2, y2 = box
    box_w, box_h = x2 - x1, y2 - y1
    out_w, out_h = resized_size(box_w, box_h, short_side)
    u, v = rel_offset if rel_offset is not None else (0.5, 0.5)
    x_lo, x_hi, x_shift, x_scale = _window(box_w, out_w, size, u)
    y_lo, y_hi, y_shift, y_scale = _window(box_h, out_h, size, v)
    window = image[None, :, y1 + y_lo : y1 + y_hi, x1 + x_lo : x1 + x_hi]
    resized = F.interpolate(
        window,
        scale_factor=(y_scale, x_scale),
        mode="bicubic",
        antialias=True,
        recompute_scale_factor=False,
    )[0]
    return resized[:, y_shift : y_shift + size, x_shift : x_shift + size]


def _window(length: int, out_length: int, size: int, rel: float) -> tuple[int, int, int, float]:
    """Along one axis: the input span [lo, hi) (box coordinates) that an output window of `size`
    at `rel` of the free room needs, the window's start inside that span once resized, and the
    scale.
    """
    # Nudged up so that float rounding in interpolate's floor(in * scale) cannot drop a pixel.
    scale = out_length / length * (1 + 1e-9)
    offset = rel * (out_length - size)  # window start, in resized pixels
    margin = math.ceil(2 / min(scale, 1.0)) + 1  # bicubic support, in input pixels
    lo = max(0, math.floor(offset / scale) - margin)
    hi = min(length, math.ceil((offset + size) / scale) + margin)
    shift = min(max(round(offset - lo * scale), 0), math.floor((hi - lo) * scale) - size)
    return lo, hi, shift, scale


def normalize_frames(frames: torch.Tensor) -> torch.Tensor:
    """ImageNet mean/std normalisation, done where the frames are (GPU in training).

    Shape: uint8 (..., 3, T, H, W) -> float32 (..., 3, T, H, W).
    """
    if frames.dtype != torch.uint8 or frames.dim() < 4 or frames.shape[-4] != 3:
        raise ValueError(
            f"expected uint8 frames (..., 3, T, H, W), got {frames.dtype} {tuple(frames.shape)}"
        )
    std = torch.tensor(IMAGENET_STD, device=frames.device).view(3, 1, 1, 1)
    mean = torch.tensor(IMAGENET_MEAN, device=frames.device).view(3, 1, 1, 1)
    # (x / 255 - mean) / std as one multiply-add.
    return torch.addcmul(-mean / std, frames.float(), 1.0 / (255.0 * std))


def color_jitter(frames: torch.Tensor, strength: float) -> torch.Tensor:
    """Training augmentation: random brightness, contrast and saturation per object, the same for
    all its frames, drawn from U[1 - strength, 1 + strength] (torch's RNG, on the frames' device).

    Each video's look (lighting, paint, camera) varies more than a few training videos show; the
    jitter keeps the visual nets from telling classes apart by one video's colours.
    Shape: uint8 (..., 3, T, H, W) -> uint8 (..., 3, T, H, W).
    """
    if frames.dtype != torch.uint8 or frames.dim() < 4 or frames.shape[-4] != 3:
        raise ValueError(
            f"expected uint8 frames (..., 3, T, H, W), got {frames.dtype} {tuple(frames.shape)}"
        )
    if strength <= 0:
        return frames
    lead = frames.shape[:-4]
    factors = 1 + strength * (2 * torch.rand(3, *lead, 1, 1, 1, 1, device=frames.device) - 1)
    brightness, contrast, saturation = factors  # (..., 1, 1, 1, 1)
    x = frames.float() * brightness
    gray = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(3, 1, 1, 1)).sum(
        -4, keepdim=True
    )
    x = gray + saturation * (x - gray)  # (..., 3, T, H, W)
    mean = gray.mean(dim=(-3, -2, -1), keepdim=True)
    x = mean + contrast * (x - mean)
    return x.round_().clamp_(0, 255).to(torch.uint8)
