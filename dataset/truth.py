"""True boxes of sounding and silent objects, the ground truth of the localization scores.

Two sources, in this order:
- `<root>/gt_boxes/<class>/<id>.mp4.npy`: CoSep-format rows (layout.DETECTION_COLUMNS) whose score
  column is 1 for a sounding object and 0 for a silent one, boxes in the extracted frames' pixels;
- `<root>/annotations/<class>/<id>.json` (synthetic data): every instrument in view with its
  `sounding` flag and one box per frame of the source video.
A video with neither has no truth; its frames are left out of the localization scores.
"""

from __future__ import annotations

import json
import os

import numpy as np

from . import layout
from .errors import DataError
from .readers import load_detections

# Columns of a truth row: the box in frame pixels, then 1.0 (sounding) or 0.0 (silent).
TRUTH_COLUMNS = ("x1", "y1", "x2", "y2", "sounding")


class VideoTruth:
    """The true boxes of one video, read once; `boxes(frame_id)` per extracted frame.

    Args:
        root: data root; rel_frames: the CSV frames path (`/cello/abc.mp4`).
        image_size: (W, H) of the extracted frames.
    """

    def __init__(self, root: str, rel_frames: str, image_size: tuple[int, int]):
        self.image_size = image_size
        self._rows = self._annotation = None
        gt_path = layout.gt_boxes_path(root, rel_frames)
        class_name, video_id = rel_frames.strip("/").split("/")[:2]
        ann_path = layout.annotation_path(root, class_name, video_id.removesuffix(".mp4"))
        if os.path.isfile(gt_path):
            rows = load_detections(gt_path)
            if not np.isin(rows[:, 2], (0.0, 1.0)).all():
                raise DataError(
                    "true boxes need a score (column 2) of 1 (sounding) or 0 (silent)", path=gt_path
                )
            self._rows = rows
        elif os.path.isfile(ann_path):
            try:
                with open(ann_path) as f:
                    annotation = json.load(f)
                self._scale = np.array(
                    [image_size[0] / annotation["width"], image_size[1] / annotation["height"]] * 2
                )
                objects = annotation["objects"]
                fps, num_frames = annotation["fps"], annotation["num_video_frames"]
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise DataError(f"unreadable annotation ({err!r})", path=ann_path) from err
            if not all(
                "sounding" in obj and len(obj.get("boxes", ())) == num_frames for obj in objects
            ):
                raise DataError(
                    f"every object needs 'sounding' and one box (or null) per video frame "
                    f"({num_frames} at {fps} fps)",
                    path=ann_path,
                )
            self._annotation = annotation

    @property
    def available(self) -> bool:
        return self._rows is not None or self._annotation is not None

    def boxes(self, frame_id: int) -> np.ndarray:
        """True boxes in extracted frame `frame_id`: float32 (K, 5), see TRUTH_COLUMNS, clipped to
        the frame; objects out of view are left out. (0, 5) without truth."""
        width, height = self.image_size
        if self._rows is not None:
            rows = self._rows[self._rows[:, 0] == frame_id]
            out = np.concatenate([rows[:, 3:7], rows[:, 2:3]], 1)
        elif self._annotation is not None:
            ann = self._annotation
            shown = layout.shown_video_frame(frame_id, ann["fps"], ann["num_video_frames"])
            out = [
                [*(np.asarray(obj["boxes"][shown], float) * self._scale), float(obj["sounding"])]
                for obj in ann["objects"]
                if obj["boxes"][shown] is not None
            ]
            out = np.asarray(out, np.float64).reshape(-1, 5)
        else:
            return np.zeros((0, 5), np.float32)
        out[:, :4] = np.clip(out[:, :4], 0, [width, height, width, height])
        keep = (out[:, 2] - out[:, 0] >= 1) & (out[:, 3] - out[:, 1] >= 1)
        return out[keep].astype(np.float32)
