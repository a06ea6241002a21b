"""Where things live in a MUSIC data root, and the conventions every tool shares.

A data root (real MUSIC or the synthetic stand-in) looks like the authors' layout:

    <root>/videos/<class>/<id>.mp4                      raw videos (input of preprocessing)
    <root>/frames/<class>/<id>.mp4/000001.jpg ...       1 fps frames, numbered from 1
    <root>/audio/<class>/<id>.wav                       mono, 11025 Hz, 16-bit PCM
    <root>/detection_results/<class>/<id>.mp4.npy       (K, 7) CoSep rows, see DETECTION_COLUMNS
    <root>/annotations/<class>/<id>.json                synthetic data only: true object boxes
    <root>/gt_boxes/<class>/<id>.mp4.npy                optional true boxes, CoSep rows whose
                                                        score is 1 (sounding) or 0 (silent)
    <root>/{train,val,test,test_sep}.csv                index files in the authors' format
                                                        (LIST_FILES)

CSV paths start with '/' and are relative to the `audio/` and `frames/` folders
(`/cello/abc.wav,/cello/abc.mp4,87`).
"""

from __future__ import annotations

import os

# The 11 MUSIC solo instruments (the paper's dataset; the synthetic generator draws from these).
MUSIC_CLASSES = (
    "accordion",
    "acoustic_guitar",
    "cello",
    "clarinet",
    "erhu",
    "flute",
    "saxophone",
    "trumpet",
    "tuba",
    "violin",
    "xylophone",
)
# MUSIC-21 (data/music_lists/MUSIC21_solo_videos.json) adds 10 instruments. They come after the 11
# so that the 11's ids, and data and detections written with them, never change.
MUSIC21_CLASSES = MUSIC_CLASSES + (
    "bagpipe",
    "banjo",
    "bassoon",
    "congas",
    "drum",
    "electric_bass",
    "guzheng",
    "piano",
    "pipa",
    "ukulele",
)
# The one class table: class ids of the loader (class_ids) and of detections (class_id = id + 1).
CLASS_TO_ID = {name: i for i, name in enumerate(MUSIC21_CLASSES)}

AUDIO_RATE = 11025  # Hz; the authors' extract_audio.py wrote 11000 by mistake
FRAME_RATE = 1  # extracted frames per second

# One detection row: [frame_id (1-based), class_id, score, x1, y1, x2, y2], boxes in pixels.
DETECTION_COLUMNS = ("frame_id", "class_id", "score", "x1", "y1", "x2", "y2")

VIDEOS, FRAMES, AUDIO, DETECTIONS, ANNOTATIONS, GT_BOXES = (
    "videos",
    "frames",
    "audio",
    "detection_results",
    "annotations",
    "gt_boxes",
)

# The splits a root's videos are listed in, one index file each, and the test mixtures drawn from
# the test videos: the index files of a root, named once ("sep" is the mixture list). A run's
# --list_<name> options default to these files in its --data_root.
SPLITS = ("train", "val", "test")
LIST_FILES = {**{split: f"{split}.csv" for split in SPLITS}, "sep": "test_sep.csv"}


def list_path(root: str, name: str) -> str:
    """A root's own index file `name` (a split, or "sep" for the test mixtures)."""
    return os.path.join(root, LIST_FILES[name])


def root_lists(root: str) -> dict[str, str]:
    """{split: path} of the root's index files that exist, in SPLITS order."""
    paths = {split: list_path(root, split) for split in SPLITS}
    return {split: path for split, path in paths.items() if os.path.isfile(path)}


def frame_time(frame_id: int, fps: float = FRAME_RATE) -> float:
    """Timestamp (s) that 1-based extracted frame `frame_id` shows: the middle of its interval.

    Frame k covers [(k-1)/fps, k/fps); the loader centres the audio clip of frame k at this same
    time, `(k - 0.5) / fps`, as the reference does.
    """
    return (frame_id - 0.5) / fps


def frame_name(frame_id: int) -> str:
    return f"{frame_id:06d}.jpg"


def video_key(class_name: str, video_id: str) -> str:
    """`/<class>/<id>`: the CSV path stem shared by audio (`.wav`) and frames (`.mp4`)."""
    return f"/{class_name}/{video_id}"


def audio_path(root: str, rel: str) -> str:
    """`rel` is a CSV audio path such as `/cello/abc.wav`."""
    return os.path.join(root, AUDIO, rel.lstrip("/"))


def frames_dir(root: str, rel: str) -> str:
    """`rel` is a CSV frames path such as `/cello/abc.mp4`."""
    return os.path.join(root, FRAMES, rel.lstrip("/"))


def detection_path(root: str, rel_frames: str) -> str:
    return os.path.join(root, DETECTIONS, rel_frames.lstrip("/") + ".npy")


def annotation_path(root: str, class_name: str, video_id: str) -> str:
    return os.path.join(root, ANNOTATIONS, class_name, video_id + ".json")


def gt_boxes_path(root: str, rel_frames: str) -> str:
    return os.path.join(root, GT_BOXES, rel_frames.lstrip("/") + ".npy")


def shown_video_frame(frame_id: int, video_fps: float, num_video_frames: int) -> int:
    """0-based frame of the source video that extracted frame `frame_id` shows."""
    return min(int(frame_time(frame_id) * video_fps), num_video_frames - 1)


def detection_class_id(class_name: str) -> int:
    """class_id of a detection row for a table class: its id + 1 (0 is a detector's background)."""
    return CLASS_TO_ID[class_name] + 1


def class_of(rel: str) -> str:
    """The class is the first component of a CSV path."""
    return rel.strip().lstrip("/").split("/")[0]
