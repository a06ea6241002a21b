"""Object crops (dataset.transforms.crop_resize) against the reference's PIL crop and resize."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dataset.transforms import crop_resize


def as_tensor(pixels):
    return torch.from_numpy(pixels).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W)


def smooth_image(w, h, seed=0):
    coarse = np.random.default_rng(seed).integers(0, 255, (h // 16, w // 16, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC)).copy()


def reference_crop(pixels, box, size, short, offset):
    """The reference's PIL crop -> Resize(short) -> crop at integer `offset` (x, y)."""
    w, h = box[2] - box[0], box[3] - box[1]
    resized_size = (short, int(short * h / w)) if w <= h else (int(short * w / h), short)
    resized = Image.fromarray(pixels).crop(box).resize(resized_size, Image.BICUBIC)
    if offset is None:
        offset = round((resized.width - size) / 2), round((resized.height - size) / 2)
    elif offset == "end":
        offset = resized.width - size, resized.height - size
    return np.asarray(resized.crop((*offset, offset[0] + size, offset[1] + size))).astype(float)


def test_crop_resize_is_the_reference_crop_when_the_grids_align():
    pixels = smooth_image(64, 48)
    box, size = (4, 6, 20, 30), 32  # 16 x 24 -> 32 x 48: scale 2, centre room 16
    ours = crop_resize(as_tensor(pixels), box, size, size, None)
    full = F.interpolate(
        as_tensor(pixels)[None, :, 6:30, 4:20], size=(48, 32), mode="bicubic", antialias=True
    )[0]
    assert torch.equal(ours, full[:, 8:40, :])
    assert (
        np.abs(ours.permute(1, 2, 0).numpy() - reference_crop(pixels, box, size, size, None)).max()
        <= 2
    )


@pytest.mark.parametrize(
    "box,size,short",
    [
        ((10, 5, 90, 85), 32, 35),
        ((3, 7, 120, 60), 24, 24),
        ((0, 0, 128, 96), 64, 70),
        ((20, 10, 47, 88), 40, 44),
    ],
)
def test_crop_resize_is_within_a_pixel_of_the_reference_crop(box, size, short):
    # Linear ramps: a crop's mean value tells where it lies, to a fraction of a pixel.
    x, y = np.meshgrid(np.arange(128), np.arange(96))
    ramps = np.stack([2 * x, 2 * y, np.full_like(x, 128)], -1).astype(np.uint8)  # (96, 128, 3)
    scale = short / min(box[2] - box[0], box[3] - box[1])  # resized px per input px
    for rel, offset in (((0.0, 0.0), (0, 0)), ((0.999, 0.999), "end"), (None, None)):
        ours = (
            crop_resize(as_tensor(ramps), box, size, short, rel)
            .permute(1, 2, 0)
            .numpy()
            .astype(float)
        )
        reference = reference_crop(ramps, box, size, short, offset)
        inner = (slice(3, -3), slice(3, -3))
        shift = np.abs(ours[inner].mean((0, 1)) - reference[inner].mean((0, 1)))[:2] / 2 * scale
        assert (shift <= 1.05).all(), shift  # in output pixels


def test_train_crop_offsets_are_relative_for_boxes_of_different_sizes():
    ramp = np.tile(np.arange(128, dtype=np.uint8)[None, :, None], (96, 1, 3))  # pixel value = x
    # The same relative offset reaches the right edge of both boxes: no padding, no misalignment.
    for box in ((0, 0, 64, 64), (0, 0, 128, 96)):
        crop = crop_resize(as_tensor(ramp), box, 32, 35, (0.999, 0.0))
        assert abs(int(crop[0, 0, -1]) - (box[2] - 1)) <= 3
