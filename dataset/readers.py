"""Loader file readers: windowed audio, detection arrays, jpg frames; all raise DataError."""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from scipy.signal import resample_poly

from .errors import DataError
from .layout import DETECTION_COLUMNS

log = logging.getLogger(__name__)

# Files already warned about (once per process): a sample rate that differs from the loader's,
# float samples beyond full scale.
_warned_rate, _warned_peak = set(), set()
# A clip whose peak is at most one 16-bit step holds no sound: digital silence (a muted video).
SILENCE_PEAK = 2.0**-15
# How far (a share of the frame's side, plus a pixel) a box may reach past the frame: every
# detector writer clips its boxes to the frame, so more means boxes of frames of another size.
BOX_SLACK = 0.02
NORMALISED_BOXES = "every box coordinate lies in [0, 1]"


def window_start(num_samples: int, center_time: float, window: int, rate: int) -> int:
    """First sample of the `window`-sample clip centred at `center_time` in a file of `num_samples`
    at `rate` Hz, shifted to lie inside the file.

    The first and last frames of a video always need a shift of up to half a clip; a shift beyond
    one clip means the audio ends (or starts) long before the frames do: DataError without path.
    """
    wanted = int(center_time * rate) - window // 2
    start = min(max(wanted, 0), num_samples - window)
    if abs(start - wanted) > window:
        raise DataError(
            f"audio is {num_samples / rate:.2f} s long, shorter than its frames: the "
            f"clip of the frame at {center_time:.2f} s would be moved "
            f"{abs(start - wanted) / rate:.2f} s (more than one clip) to fit in the "
            f"file"
        )
    return start


def native_window(length: int, rate: int, native_rate: int) -> int:
    """Samples at `native_rate` whose resampling to `rate` gives at least `length` samples."""
    return length if native_rate == rate else math.ceil(length * native_rate / rate)


def read_audio_window(path: str, center_time: float, length: int, rate: int) -> np.ndarray:
    """Exactly `length` samples at `rate` Hz centred at `center_time`, shifted to lie inside the
    file (by at most one clip, see window_start).

    Only the window is read from disk (never the whole file). Multi-channel audio is averaged to
    mono; a file at another rate is read at its own rate over the same time span and resampled.
    A window holding NaN or inf samples is a DataError.

    Returns: float32 (length,), in [-1, 1] for PCM files.
    """
    if not os.path.isfile(path):
        raise DataError("audio file not found", path=path)
    try:
        with sf.SoundFile(path) as f:
            native_rate, native_len = f.samplerate, f.frames
            # Window length at the file's rate; resampling it gives at least `length` samples.
            native_win = native_window(length, rate, native_rate)
            if native_len < native_win:
                raise DataError(
                    f"audio is {native_len / native_rate:.2f} s long, shorter than one "
                    f"clip ({length / rate:.2f} s)",
                    path=path,
                )
            try:
                start = window_start(native_len, center_time, native_win, native_rate)
            except DataError as err:
                raise DataError(str(err), path=path) from None
            f.seek(start)
            window = f.read(native_win, dtype="float32", always_2d=True)  # (native_win, channels)
    except sf.SoundFileError as err:
        raise DataError(f"unreadable audio ({err})", path=path) from err
    if len(window) != native_win:
        raise DataError(
            f"read {len(window)} of {native_win} samples at offset {start}: file truncated?",
            path=path,
        )
    if not np.isfinite(window).all():
        raise DataError(
            f"audio holds NaN or inf samples (in the clip at {center_time:.2f} s)", path=path
        )
    window = window.mean(axis=1) if window.shape[1] > 1 else window[:, 0]
    peak = float(np.abs(window).max())
    if peak > 1.0 and path not in _warned_peak:
        # Legitimate in a float wav, but the loader clips every clip to [-1, 1]: say so, once.
        _warned_peak.add(path)
        log.warning(
            "!!! %s: float audio peaks at %.2f, above full scale 1.0: clips are hard-clipped to "
            "[-1, 1] (%.1f%% of the samples of the clip at %.2f s); rescale the file (divide it "
            "by its peak) to train on its true waveform",
            path,
            peak,
            100 * float((np.abs(window) > 1.0).mean()),
            center_time,
        )
    if native_rate != rate:
        if path not in _warned_rate:
            _warned_rate.add(path)
            log.warning("%s: sample rate %d Hz, resampling clips to %d Hz", path, native_rate, rate)
        g = math.gcd(rate, native_rate)
        window = resample_poly(window, rate // g, native_rate // g).astype(np.float32)[:length]
    return window


def audio_info(path: str) -> tuple[int, int]:
    """(samples, sample rate) of a wav from its header; DataError when missing or unreadable."""
    if not os.path.isfile(path):
        raise DataError("audio file not found", path=path)
    try:
        info = sf.info(path)
    except sf.SoundFileError as err:
        raise DataError(f"unreadable audio ({err})", path=path) from err
    return info.frames, info.samplerate


def load_detections(path: str) -> np.ndarray:
    """A CoSep detection file, validated.

    Returns float32 (K, 7) with K >= 1, see DETECTION_COLUMNS.
    """
    if not os.path.isfile(path):
        raise DataError("detection file not found", path=path)
    try:
        dets = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"unreadable detection file ({err})", path=path) from err
    ncol = len(DETECTION_COLUMNS)
    if dets.ndim != 2 or dets.shape[1] != ncol:
        raise DataError(
            f"detection array has shape {dets.shape}, expected (K, {ncol}) rows "
            f"{list(DETECTION_COLUMNS)}",
            path=path,
        )
    if len(dets) == 0:
        raise DataError(
            "empty detection file (shape (0, 7)): no object was detected in any frame "
            "of this video",
            path=path,
        )
    dets = dets.astype(np.float32, copy=False)
    if not np.isfinite(dets).all():
        raise DataError("detection array holds NaN or inf", path=path)
    frame_ids = dets[:, 0]
    if (frame_ids < 1).any() or (frame_ids != np.round(frame_ids)).any():
        raise DataError("frame ids (column 0) must be integers >= 1", path=path)
    if (dets[:, 5] <= dets[:, 3]).any() or (dets[:, 6] <= dets[:, 4]).any():
        raise DataError("a box has x2 <= x1 or y2 <= y1", path=path)
    if dets[:, 3:7].max() <= 1.0:
        raise DataError(
            f"{NORMALISED_BOXES}: boxes normalised by the frame size? They must be in the "
            "jpg's pixels (multiply x1, x2 by the frame width, y1, y2 by its height)",
            path=path,
        )
    return dets


def check_detection_frames(dets: np.ndarray, num_frames: int, path: str) -> None:
    """Every row of a detection file must lie in its video's frames 1..num_frames."""
    past = dets[:, 0] > num_frames
    if past.any():
        raise DataError(
            f"{int(past.sum())} of {len(dets)} rows are for frames past the video's "
            f"last frame {num_frames} (up to frame {int(dets[:, 0].max())}): a "
            f"detection file of another video, or frames extracted again?",
            path=path,
        )


def check_detection_boxes(dets: np.ndarray, image_size: tuple[int, int], path: str) -> None:
    """Every box must overlap the W x H frames (clipping one that does not would leave no object)
    and lie in them up to BOX_SLACK: a box reaching further was found on frames of another size,
    and clipping it would cut the wrong region."""
    width, height = image_size
    outside = (dets[:, 3] >= width) | (dets[:, 4] >= height) | (dets[:, 5] <= 0) | (dets[:, 6] <= 0)
    if outside.any():
        row = dets[outside][0]
        raise DataError(
            f"{int(outside.sum())} boxes lie outside the {width}x{height} frames "
            f"(first: frame {int(row[0])}, box {[round(float(v), 1) for v in row[3:7]]})",
            path=path,
        )
    slack_x, slack_y = BOX_SLACK * width + 1, BOX_SLACK * height + 1
    beyond = (
        (dets[:, 3] < -slack_x)
        | (dets[:, 4] < -slack_y)
        | (dets[:, 5] > width + slack_x)
        | (dets[:, 6] > height + slack_y)
    )
    if beyond.any():
        row = dets[beyond][0]
        raise DataError(
            f"{int(beyond.sum())} boxes reach past the {width}x{height} frames (first: frame "
            f"{int(row[0])}, box {[round(float(v), 1) for v in row[3:7]]}): detections made on "
            f"frames of another size (frames extracted again?); run scripts/detect_objects.py "
            f"on these frames",
            path=path,
        )


# How the loader picks a video's object box in each frame (docs/method.md, Detections):
#   frame  the frame's highest-scoring box of any class, as the authors' loader does;
#   video  the box of the class the detector is surest of over the whole video (highest sum of
#          scores), in every frame: a silent instrument or a false positive that outscores the
#          played instrument in a few frames no longer takes its place there.
BOX_RULES = ("frame", "video")


def top_boxes(dets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per frame, the highest-scoring box of any class (docs/method.md, Detections).

    Returns: frame ids int64 (F,) sorted ascending, boxes float32 (F, 4) as x1, y1, x2, y2.
    """
    order = np.lexsort((-dets[:, 2], dets[:, 0]))  # by frame, then by descending score
    frame_ids, first = np.unique(dets[order, 0].astype(np.int64), return_index=True)
    return frame_ids, np.ascontiguousarray(dets[order[first], 3:7])


def fill_nearest(
    frame_ids: np.ndarray, boxes: np.ndarray, num_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of frames 1..num_frames from those of the detected `frame_ids` (sorted): a frame
    without one takes the nearest detected frame's box.

    Returns boxes (num_frames, 4) and detected bool (num_frames,).
    """
    frames = np.arange(1, num_frames + 1)
    right = np.clip(np.searchsorted(frame_ids, frames), 0, len(frame_ids) - 1)
    left = np.clip(right - 1, 0, len(frame_ids) - 1)
    nearest = np.where(
        np.abs(frame_ids[left] - frames) <= np.abs(frame_ids[right] - frames), left, right
    )
    return boxes[nearest], np.isin(frames, frame_ids)


def video_boxes(dets: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """BOX_RULES 'video': the surest class's top box in every frame 1..num_frames.

    Returns frame ids int64 (num_frames,) and boxes float32 (num_frames, 4).
    """
    classes, inverse = np.unique(dets[:, 1], return_inverse=True)
    surest = classes[np.argmax(np.bincount(inverse, weights=dets[:, 2]))]
    frame_ids, boxes = top_boxes(dets[dets[:, 1] == surest])
    boxes, _ = fill_nearest(frame_ids, boxes, num_frames)
    return np.arange(1, num_frames + 1), boxes


def load_top_boxes(
    path: str, num_frames: int, image_size: tuple[int, int], rule: str = "frame"
) -> dict[int, tuple[int, int, int, int]]:
    """Frame id -> the object box (BOX_RULES `rule`) of the detection file of a video of
    `num_frames` frames of `image_size` (W, H), checked against both; boxes in whole pixels,
    rounded as PIL's crop rounds the reference's float boxes."""
    if rule not in BOX_RULES:
        raise ValueError(f"box rule must be one of {BOX_RULES}, got {rule!r}")
    dets = load_detections(path)
    check_detection_frames(dets, num_frames, path)
    check_detection_boxes(dets, image_size, path)
    frame_ids, boxes = top_boxes(dets) if rule == "frame" else video_boxes(dets, num_frames)
    return dict(zip(frame_ids.tolist(), map(tuple, np.rint(boxes).astype(int).tolist())))


def list_frame_ids(folder: str) -> set[int]:
    """Ids of the `%06d.jpg` frames in a frames folder."""
    return {
        int(name[:-4])
        for name in os.listdir(folder)
        if name.endswith(".jpg") and name[:-4].isdigit()
    }


def frame_size(path: str) -> tuple[int, int]:
    """(W, H) of a jpg frame, from its header."""
    if not os.path.isfile(path):
        raise DataError("frame not found", path=path)
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, SyntaxError, ValueError) as err:
        raise DataError(f"unreadable image ({err})", path=path) from err


def load_frame(path: str) -> torch.Tensor:
    """A decoded jpg frame.

    Returns uint8 (3, H, W) (a channels-last view, which torch resizes fastest).
    """
    if not os.path.isfile(path):
        raise DataError("frame not found", path=path)
    try:
        with Image.open(path) as img:
            pixels = np.array(img.convert("RGB") if img.mode != "RGB" else img)  # (H, W, 3)
    except (OSError, SyntaxError, ValueError) as err:  # PIL's decode errors
        raise DataError(f"unreadable image ({err})", path=path) from err
    return torch.from_numpy(pixels).permute(2, 0, 1)
