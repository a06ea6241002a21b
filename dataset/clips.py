"""Clip geometry: which frames a clip shows, and where in a video a clip may centre.

A clip centred on extracted frame c (1-based) shows frames c + frame_offsets(T, stride) and hears
the audio centred at layout.frame_time(c). The loader (music.py), scripts/check_data.py and
separation.py all take these numbers from here, so that what is checked is what is read.
"""

from __future__ import annotations

import numpy as np


def frame_offsets(num_frames: int, stride_frames: int) -> np.ndarray:
    """Offsets (T,) of a clip's frames from its centre frame: T frames `stride_frames` apart."""
    return (np.arange(num_frames) - num_frames // 2) * stride_frames


def clip_margin(num_frames: int, stride_frames: int, frame_rate: float) -> int:
    """Frames left out at each end of a video where no clip centres: the reference's margin,
    which keeps every frame of a clip, and its centre, inside the video."""
    return max(int(frame_rate), (num_frames // 2) * stride_frames)


def min_video_frames(margin: int) -> int:
    """The fewest frames a video with `margin` needs for one clip."""
    return 2 * margin + 1


def last_centre(num_video_frames: int, margin: int) -> int:
    """The last frame a clip of the video may centre on (1-based)."""
    return max(num_video_frames - margin, 1)


def clip_centre(num_frames: int, position: int, positions: int, margin: int) -> int:
    """Centre frame (1-based) of evaluation clip `position` of `positions` in a video.

    One position is the authors' centre clip, frame num_frames // 2 + 1. K positions split the
    frames a training clip may centre on, [margin + 1, num_frames - margin], into K equal parts and
    take the middle of each: K clips spread over the whole video, so a test video contributes K
    different stretches of its audio instead of one.
    """
    if positions == 1:
        return num_frames // 2 + 1
    low, high = margin + 1, last_centre(num_frames, margin)
    return low + int((position + 0.5) * (high - low + 1) / positions)
