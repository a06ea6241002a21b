"""Planning, rendering and writing the videos: mp4s with an audio track, annotations, the list."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import Pool

import av
import numpy as np
from scipy.signal import resample_poly
from tqdm import tqdm

from dataset import layout

from .audio import synthesize_audio
from .scene import Scene

DEFAULT_CLASSES = (
    "acoustic_guitar",
    "cello",
    "clarinet",
    "flute",
    "trumpet",
    "tuba",
    "violin",
    "xylophone",
)
# Low frame rates keep encoding cheap. At 6 fps a frame starts exactly at each 1-fps sampling time
# (k - 0.5 s), as at 30 fps; at 5 and 7.5 fps the sampling times fall inside frames, as at 25 fps.
VIDEO_RATES = (Fraction(5), Fraction(6), Fraction(15, 2))
# (sample rate, channels) of the container's audio track; never 11025 Hz mono, so that
# extraction always has to resample (and sometimes downmix), as with real videos.
AUDIO_FORMATS = ((22050, 1), (22050, 2), (44100, 1), (44100, 2))
AUDIO_BIT_RATE = 64000


@dataclass(frozen=True)
class VideoPlan:
    """Everything about a video that is decided before rendering."""

    class_name: str
    index: int  # position of the video within its class
    video_id: str
    seed: int
    fps: Fraction
    num_frames: int
    audio_rate: int
    audio_channels: int
    width: int
    height: int
    silent_class: str | None  # class of the extra silent instrument, if the video shows one

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.fps)

    def rng(self, stream: int) -> np.random.Generator:
        """Independent random streams per video: 0 = plan, 1 = picture, 2 = sound."""
        return np.random.default_rng(
            [self.seed, layout.CLASS_TO_ID[self.class_name], self.index, stream]
        )


def make_video_id(seed: int, class_name: str, index: int) -> str:
    """A deterministic 11-character YouTube-like id ([A-Za-z0-9_-])."""
    digest = hashlib.sha256(f"ccol-synthetic/{seed}/{class_name}/{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def plan_videos(
    classes,
    videos_per_class: int,
    seed: int,
    min_sec: float,
    max_sec: float,
    width: int,
    height: int,
) -> list[VideoPlan]:
    plans = []
    for class_name in classes:
        class_id = layout.CLASS_TO_ID[class_name]
        others = [c for c in classes if c != class_name]
        for index in range(videos_per_class):
            rng = np.random.default_rng([seed, class_id, index, 0])
            fps = VIDEO_RATES[rng.integers(len(VIDEO_RATES))]
            num_frames = max(1, round(rng.uniform(min_sec, max_sec) * fps))
            audio_rate, audio_channels = AUDIO_FORMATS[rng.integers(len(AUDIO_FORMATS))]
            # Exactly every third video (staggered across classes) shows a silent instrument.
            has_silent = bool(others) and (index + class_id) % 3 == 0
            silent_class = others[rng.integers(len(others))] if has_silent else None
            plans.append(
                VideoPlan(
                    class_name,
                    index,
                    make_video_id(seed, class_name, index),
                    seed,
                    fps,
                    int(num_frames),
                    audio_rate,
                    audio_channels,
                    width,
                    height,
                    silent_class,
                )
            )
    return plans


def make_scene(plan: VideoPlan) -> Scene:
    return Scene(plan.class_name, plan.silent_class, plan.width, plan.height, plan.rng(1))


def container_audio(plan: VideoPlan, facts: dict | None = None) -> np.ndarray:
    """The (channels, samples) float32 track stored in the mp4: synthesised at AUDIO_RATE (so it is
    band-limited to what the project uses) and upsampled to the container rate."""
    rng = plan.rng(2)
    mono = synthesize_audio(plan.class_name, plan.duration, rng, facts=facts)
    mono = resample_poly(mono, plan.audio_rate // layout.AUDIO_RATE, 1).astype(np.float32)
    length = round(plan.duration * plan.audio_rate)  # rounding at 11025 Hz may lose a sample
    mono = np.pad(mono[:length], (0, max(0, length - len(mono))))
    gains = [1.0] if plan.audio_channels == 1 else rng.uniform(0.85, 1.0, plan.audio_channels)
    return np.stack([g * mono for g in gains]).astype(np.float32)


def write_video(plan: VideoPlan, out_root: str) -> dict:
    """Render, encode and write one video and its annotation; return the annotation."""
    scene = make_scene(plan)
    sound_facts = {}
    audio = container_audio(plan, sound_facts)
    video_path = os.path.join(out_root, layout.VIDEOS, plan.class_name, plan.video_id + ".mp4")
    partial_path = video_path + ".partial"
    os.makedirs(os.path.dirname(video_path), exist_ok=True)
    audio_layout = "mono" if plan.audio_channels == 1 else "stereo"
    boxes_per_object = [[] for _ in scene.objects]
    player_boxes = []
    with av.open(partial_path, "w", format="mp4") as container:
        video = container.add_stream(
            "libx264", rate=plan.fps, options={"preset": "ultrafast", "crf": "23", "threads": "1"}
        )
        video.width, video.height, video.pix_fmt = plan.width, plan.height, "yuv420p"
        # The fast AAC coder without its optional tools, cut off above what the track holds.
        sound = container.add_stream(
            "aac",
            rate=plan.audio_rate,
            layout=audio_layout,
            options={
                "aac_coder": "fast",
                "aac_pns": "0",
                "aac_tns": "0",
                "aac_is": "0",
                "aac_ms": "0",
                "cutoff": str(layout.AUDIO_RATE // 2),
            },
        )
        sound.bit_rate = AUDIO_BIT_RATE
        for i in range(plan.num_frames):
            picture, boxes, player_box = scene.render(float(i / plan.fps))
            for obj_boxes, box in zip(boxes_per_object, boxes):
                obj_boxes.append(box)
            player_boxes.append(player_box)
            frame = av.VideoFrame.from_image(picture)
            frame.pts, frame.time_base = i, 1 / plan.fps
            container.mux(video.encode(frame))
            # Interleave: the audio that plays during this video frame.
            start = round(i / plan.fps * plan.audio_rate)
            stop = round((i + 1) / plan.fps * plan.audio_rate)
            chunk = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio[:, start:stop]), format="fltp", layout=audio_layout
            )
            chunk.sample_rate, chunk.pts = plan.audio_rate, start
            container.mux(sound.encode(chunk))
        container.mux(video.encode())
        container.mux(sound.encode())
    os.replace(partial_path, video_path)

    # Distractors: what a detector may mistake for an instrument. Clutter does not move.
    distractors = [{"kind": "player", "boxes": player_boxes}] + [
        {"kind": kind, "boxes": [box] * plan.num_frames} for kind, box in scene.clutter
    ]
    annotation = {
        "class": plan.class_name,
        "video_id": plan.video_id,
        "fps": float(plan.fps),
        "width": plan.width,
        "height": plan.height,
        "duration": plan.duration,
        "num_video_frames": plan.num_frames,
        "audio_rate": plan.audio_rate,
        "audio_channels": plan.audio_channels,
        "sound": sound_facts,
        "objects": [
            {"class": obj.class_name, "sounding": obj.sounding, "boxes": boxes}
            for obj, boxes in zip(scene.objects, boxes_per_object)
        ],
        "distractors": distractors,
    }
    annotation_file = layout.annotation_path(out_root, plan.class_name, plan.video_id)
    os.makedirs(os.path.dirname(annotation_file), exist_ok=True)
    with open(annotation_file, "w") as f:
        json.dump(annotation, f)
    return annotation


def _write_video_task(task):
    plan, out_root = task
    write_video(plan, out_root)
    return plan


def generate(
    out_root: str,
    classes,
    videos_per_class: int,
    seed: int,
    min_sec: float,
    max_sec: float,
    width: int,
    height: int,
    workers: int,
) -> list[VideoPlan]:
    """Write the whole synthetic set under `out_root`; return the plans of the written videos."""
    plans = plan_videos(classes, videos_per_class, seed, min_sec, max_sec, width, height)
    # Longest first, so that the last worker does not start a long video at the end.
    tasks = [(plan, out_root) for plan in sorted(plans, key=lambda p: -p.duration)]
    progress = dict(total=len(tasks), desc="videos", unit="video")
    if workers <= 1:
        for task in tqdm(tasks, **progress):
            _write_video_task(task)
    else:
        with Pool(workers) as pool:
            for _ in tqdm(pool.imap_unordered(_write_video_task, tasks), **progress):
                pass
    listing = {
        "version": 1.0,
        "videos": {c: [p.video_id for p in plans if p.class_name == c] for c in classes},
    }
    with open(os.path.join(out_root, "videos.json"), "w") as f:
        json.dump(listing, f, indent=2)
    return plans
