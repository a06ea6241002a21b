"""A synthetic MUSIC stand-in: mp4 videos of drawn instruments, played and filmed in rooms."""

from .audio import AUDIO_PEAK, compose, render_score, room_impulse_response, synthesize_audio
from .drawing import LOOKS, draw_instrument
from .scene import Scene, SceneObject
from .video import (
    DEFAULT_CLASSES,
    VideoPlan,
    container_audio,
    generate,
    make_scene,
    make_video_id,
    plan_videos,
    write_video,
)
from .voices import VOICES, midi_to_hz

__all__ = [
    "AUDIO_PEAK",
    "DEFAULT_CLASSES",
    "LOOKS",
    "VOICES",
    "Scene",
    "SceneObject",
    "VideoPlan",
    "compose",
    "container_audio",
    "draw_instrument",
    "generate",
    "make_scene",
    "make_video_id",
    "midi_to_hz",
    "plan_videos",
    "render_score",
    "room_impulse_response",
    "synthesize_audio",
    "write_video",
]
