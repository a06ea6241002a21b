"""A detector's errors simulated on the true boxes of the synthetic videos' annotations.

scripts/detect_objects.py --from-annotations writes these rows as a video's detection file. They
carry what a real detector gets wrong, seeded per video so that they are deterministic: frames
without any row (`miss_rate`), objects missed in a frame (`object_miss_rate`), box edges moved by
Gaussian `jitter` of the box's size, and frames with a false positive (`false_positive_rate`): a
box on one of the video's distractors (the player or clutter, annotation key `distractors`)
reported as a random MUSIC instrument, scoring 0.3-0.95, which beats the sounding object's
0.7-0.99 in about a sixth of those frames. Scores are drawn so that the sounding object usually,
not always, outranks the silent one (0.4-0.95).
"""

from __future__ import annotations

import json
import zlib

import numpy as np

from dataset import layout
from dataset.errors import DataError

SOUNDING_SCORES = (0.7, 0.99)  # uniform ranges: the sounding object usually scores higher
SILENT_SCORES = (0.4, 0.95)
FALSE_POSITIVE_SCORES = (0.3, 0.95)
# The simulated detector's error rates (detect_objects --from-annotations' defaults).
SIMULATED = dict(miss_rate=0.02, object_miss_rate=0.05, jitter=0.03, false_positive_rate=0.15)


def shift_edges(box, rng: np.random.Generator, jitter: float) -> np.ndarray:
    """The box [x1, y1, x2, y2] with each edge moved by Gaussian `jitter` of the box's width or
    height: where a detector puts the box of an object."""
    box = np.asarray(box, float)
    size = np.array([box[2] - box[0], box[3] - box[1]] * 2)
    return box + rng.normal(0.0, jitter, 4) * size


def annotation_rows(
    annotation: dict,
    frame_ids: list[int],
    image_size: tuple[int, int],
    rng: np.random.Generator,
    miss_rate: float,
    jitter: float = 0.0,
    object_miss_rate: float = 0.0,
    false_positive_rate: float = 0.0,
) -> np.ndarray:
    """Detection rows of one video from its annotation, float32 (K, 7).

    Extracted frame k shows video frame layout.shown_video_frame(k, fps, n); boxes are scaled from
    the video's resolution to the jpg's and clipped to it. `miss_rate`: frames without any row;
    `object_miss_rate`: per object and frame; `jitter`: std of each box edge's shift, as a
    fraction of the box's size; `false_positive_rate`: frames with one extra row on a distractor
    (annotation key `distractors`, absent in older annotations) with a random instrument class.
    Only `miss_rate` is required: the other errors are off by default, giving the exact boxes.
    """
    width, height = image_size
    scale = np.array([width / annotation["width"], height / annotation["height"]] * 2)
    distractors = annotation.get("distractors", [])

    def detected_box(box):
        """The box in jpg pixels, jittered and clipped; None when under a pixel of it is in view."""
        box = np.asarray(box, float) * scale
        if jitter:
            box = shift_edges(box, rng, jitter)
        x1, y1, x2, y2 = np.clip(box, 0, [width, height, width, height])
        return None if x2 - x1 < 1 or y2 - y1 < 1 else [x1, y1, x2, y2]

    rows = []
    for k in frame_ids:
        if rng.random() < miss_rate:
            continue
        shown = layout.shown_video_frame(k, annotation["fps"], annotation["num_video_frames"])
        for obj in annotation["objects"]:
            if obj["boxes"][shown] is None or (
                object_miss_rate and rng.random() < object_miss_rate
            ):
                continue
            box = detected_box(obj["boxes"][shown])
            if box is None:  # outside the picture in this frame
                continue
            low, high = SOUNDING_SCORES if obj["sounding"] else SILENT_SCORES
            rows.append([k, layout.detection_class_id(obj["class"]), rng.uniform(low, high), *box])
        if distractors and false_positive_rate and rng.random() < false_positive_rate:
            box = detected_box(distractors[rng.integers(len(distractors))]["boxes"][shown])
            if box is not None:
                mistaken = layout.MUSIC_CLASSES[rng.integers(len(layout.MUSIC_CLASSES))]
                rows.append(
                    [
                        k,
                        layout.detection_class_id(mistaken),
                        rng.uniform(*FALSE_POSITIVE_SCORES),
                        *box,
                    ]
                )
    return np.array(rows, np.float32).reshape(-1, len(layout.DETECTION_COLUMNS))


def read_annotation(path: str) -> dict:
    """A video's annotation, with one box (or None) per video frame for every object."""
    try:
        with open(path) as f:
            annotation = json.load(f)
    except FileNotFoundError:
        raise DataError("annotation not found (needed by --from-annotations)", path=path) from None
    if any(len(obj["boxes"]) != annotation["num_video_frames"] for obj in annotation["objects"]):
        raise DataError(
            f"every object needs one box per video frame ({annotation['num_video_frames']})",
            path=path,
        )
    return annotation


def video_detections(
    root: str,
    class_name: str,
    video_id: str,
    frame_ids: list[int],
    image_size: tuple[int, int],
    seed: int,
    **rates: float,
) -> np.ndarray:
    """The simulated detection rows (K, 7) of the frames `frame_ids` of a video of `root`, whose
    jpgs are `image_size` (W, H), with the error `rates` (SIMULATED's keys). Raises DataError."""
    annotation = read_annotation(layout.annotation_path(root, class_name, video_id))
    # Seeded per video, so that a resumed or partial run writes the same rows.
    key = layout.video_key(class_name, video_id)
    rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
    return annotation_rows(annotation, frame_ids, image_size, rng, **rates)
