"""A labelled image set apart from the videos, the demo's ImageNet: object crops of drawn scenes."""

from __future__ import annotations

import io
from multiprocessing import Pool

import numpy as np
import torch
from PIL import Image

from dataset import layout
from dataset.transforms import crop_resize, object_box

from .detections import SIMULATED, shift_edges
from .scene import Scene

# Labels: the instrument classes keep their MUSIC class ids (the loader's), so the head that names
# them names video crops too; the player and the clutter behind are classes of their own.
IMAGE_CLASSES = (*layout.MUSIC_CLASSES, "player", "clutter")
PLAYER, CLUTTER = len(layout.MUSIC_CLASSES), len(layout.MUSIC_CLASSES) + 1
# The second word of every scene's seed. A video's streams hold its class id (< 11) there
# (VideoPlan.rng), so no scene of the set ever draws the look of a video, whatever the seeds.
SEED_TAG = 7_340_033
FRAME_SIZE = (256, 192)  # (W, H), make_synthetic_music's default frame
BOX_JITTER = SIMULATED["jitter"]  # the simulated detector's (detections.py)
# The videos reach the crops through H.264 and 1-fps JPEGs (quality 90); one JPEG round trip at
# this quality gives the set similar blocking and 4:2:0 colour.
JPEG_QUALITY = 75
# Frames that also give a player crop and a clutter crop: each of those classes gets half the crops
# of an instrument class, enough to learn what is not an instrument (a crop of the player's torso
# behind a flute is one of the flute's usual looks).
NON_INSTRUMENT_RATE = 1 / 22
MAX_TIME = 60.0  # s; frames are drawn at random times of a video this long (the longest made)


def jittered_box(box, rng: np.random.Generator, frame_size=FRAME_SIZE, jitter=BOX_JITTER):
    """A detector's box of the true box [x1, y1, x2, y2]: edges shifted by Gaussian `jitter` of
    the box's size, clipped to the frame and rounded, as the loader rounds detection boxes."""
    box = np.clip(shift_edges(box, rng, jitter), 0, [*frame_size, *frame_size])
    return object_box(tuple(np.rint(box).astype(int).tolist()), frame_size)


def hidden_share(box, covers) -> float:
    """The share of `box` [x1, y1, x2, y2] under the boxes `covers` (overlaps counted once each,
    so at most an over-estimate where covers overlap), clipped to 1."""
    x1, y1, x2, y2 = box
    area = max(x2 - x1, 1) * max(y2 - y1, 1)
    hidden = sum(
        max(0, min(x2, cx2) - max(x1, cx1)) * max(0, min(y2, cy2) - max(y1, cy1))
        for cx1, cy1, cx2, cy2 in covers
    )
    return min(1.0, hidden / area)


def _through_jpeg(frame: Image.Image) -> torch.Tensor:
    buffer = io.BytesIO()
    frame.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return torch.from_numpy(np.array(Image.open(buffer).convert("RGB"))).permute(2, 0, 1)


def scene_crops(
    seed: int, index: int, img_size: int, frames: int = 2
) -> tuple[np.ndarray, np.ndarray]:
    """The crops of scene `index`: drawn as a video's picture is (Scene: its look, player, clutter
    and light), filmed at `frames` random times, each object's box jittered as a detector's.

    Scene i plays class i mod 11, with a silent second instrument in a third of the scenes as in
    the videos; each frame gives a crop of every instrument, and in 1 of 22 frames one of the player
    and one of a clutter item in view.

    Returns uint8 (K, 3, S, S) centre crops of the boxes' shorter side resized to S (the loader's
    val/test crop) and their IMAGE_CLASSES ids, int64 (K,).
    """
    rng = np.random.default_rng([seed, SEED_TAG, index])
    classes = layout.MUSIC_CLASSES
    class_name = classes[index % len(classes)]
    others = [c for c in classes if c != class_name]
    silent = others[rng.integers(len(others))] if rng.random() < 1 / 3 else None
    scene = Scene(class_name, silent, *FRAME_SIZE, rng)
    crops, labels = [], []

    def add(image, box, label):
        crops.append(crop_resize(image, jittered_box(box, rng), img_size, img_size, None))
        labels.append(label)

    for t in rng.uniform(0, MAX_TIME, frames):
        frame, boxes, player_box = scene.render(float(t))
        image = _through_jpeg(frame)  # (3, H, W) uint8
        for obj, box in zip(scene.objects, boxes):
            add(image, box, layout.CLASS_TO_ID[obj.class_name])
        if rng.random() < NON_INSTRUMENT_RATE:
            add(image, player_box, PLAYER)
        # Only clutter in view: an item behind the player is a crop of the player's torso, which
        # is how a flute's crop looks.
        in_view = [
            box for _, box in scene.clutter if hidden_share(box, [*boxes, player_box]) < 0.25
        ]
        if in_view and rng.random() < NON_INSTRUMENT_RATE:
            add(image, in_view[rng.integers(len(in_view))], CLUTTER)
    return torch.stack(crops).numpy(), np.asarray(labels, np.int64)


def _render_chunk(task):
    seed, indices, img_size, frames = task
    parts = [scene_crops(seed, i, img_size, frames) for i in indices]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def render_image_set(
    seed: int, scenes: int, img_size: int, frames: int = 2, workers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Scenes 0..scenes-1 of the set: uint8 (N, 3, S, S) crops and int64 (N,) labels.

    Each scene draws from its own seed, so the set is the same for any number of workers.
    """
    chunk = 16
    tasks = [
        (seed, range(start, min(start + chunk, scenes)), img_size, frames)
        for start in range(0, scenes, chunk)
    ]
    if workers <= 1:
        parts = [_render_chunk(task) for task in tasks]
    else:
        with Pool(workers) as pool:
            parts = pool.map(_render_chunk, tasks)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
