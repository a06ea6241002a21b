"""Generate a synthetic MUSIC stand-in: mp4 videos of drawn instruments with class timbres."""
from __future__ import annotations

import argparse
import base64
import colorsys
import hashlib
import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from multiprocessing import Pool

import av
import numpy as np
from PIL import Image, ImageDraw
from scipy.signal import butter, resample_poly, sosfilt
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import layout  # noqa: E402

DEFAULT_CLASSES = ("acoustic_guitar", "cello", "clarinet", "flute", "trumpet", "tuba", "violin",
                   "xylophone")
# Low frame rates keep encoding cheap. At 6 fps a frame starts exactly at each 1-fps sampling time
# (k - 0.5 s), as at 30 fps; at 5 and 7.5 fps the sampling times fall inside frames, as at 25 fps.
VIDEO_RATES = (Fraction(5), Fraction(6), Fraction(15, 2))
# (sample rate, channels) of the container's audio track; never 11025 Hz mono, so that
# extraction always has to resample (and sometimes downmix), as with real videos.
AUDIO_FORMATS = ((22050, 1), (22050, 2), (44100, 1), (44100, 2))
AUDIO_BIT_RATE = 64000
AUDIO_PEAK = 0.5
SUPERSAMPLE = 2             # sprites are drawn at this factor and downscaled, for smooth edges
ANGLE_STEP = 0.5            # degrees; sway angles are quantised so rotated sprites can be cached


# ----------------------------------------------------------------------------------------------
# Plan: everything about a video that is decided before rendering.

@dataclass(frozen=True)
class VideoPlan:
    class_name: str
    index: int              # position of the video within its class
    video_id: str
    seed: int
    fps: Fraction
    num_frames: int
    audio_rate: int
    audio_channels: int
    width: int
    height: int
    silent_class: str | None  # class of the extra silent object, if the video shows one

    @property
    def duration(self) -> float:
        return float(self.num_frames / self.fps)

    def rng(self, stream: int) -> np.random.Generator:
        """Independent random streams per video: 0 = plan, 1 = picture, 2 = sound."""
        return np.random.default_rng([self.seed, layout.CLASS_TO_ID[self.class_name], self.index,
                                      stream])


def make_video_id(seed: int, class_name: str, index: int) -> str:
    """A deterministic 11-character YouTube-like id ([A-Za-z0-9_-])."""
    digest = hashlib.sha256(f"ccol-synthetic/{seed}/{class_name}/{index}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()[:11]


def plan_videos(classes, videos_per_class: int, seed: int, min_sec: float, max_sec: float,
                width: int, height: int) -> list[VideoPlan]:
    plans = []
    for class_name in classes:
        class_id = layout.CLASS_TO_ID[class_name]
        others = [c for c in classes if c != class_name]
        for index in range(videos_per_class):
            rng = np.random.default_rng([seed, class_id, index, 0])
            fps = VIDEO_RATES[rng.integers(len(VIDEO_RATES))]
            num_frames = max(1, round(rng.uniform(min_sec, max_sec) * fps))
            audio_rate, audio_channels = AUDIO_FORMATS[rng.integers(len(AUDIO_FORMATS))]
            # Exactly every third video (staggered across classes) gets a silent object.
            has_silent = bool(others) and (index + class_id) % 3 == 0
            silent_class = others[rng.integers(len(others))] if has_silent else None
            plans.append(VideoPlan(class_name, index, make_video_id(seed, class_name, index), seed,
                                   fps, int(num_frames), audio_rate, audio_channels, width, height,
                                   silent_class))
    return plans


# ----------------------------------------------------------------------------------------------
# Sound: one voice per class. Pitch ranges (MIDI) overlap only with neighbours, and each class
# has its own partial structure and envelope, so classes separate in a log-frequency spectrogram.

def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


@dataclass
class Note:
    """What a renderer needs to synthesise one note (all lengths in samples)."""
    f0: float
    n_on: int                  # samples while the note is held
    n: int                     # n_on plus the release tail
    rate: int
    rng: np.random.Generator
    style: dict                # per-video variations of the class timbre
    prev_f0: float | None      # the previous note's pitch, for glides
    noise: np.ndarray          # (n,) the class's band-limited noise at this note's position

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.n) / self.rate


def _formant_gain(freqs: np.ndarray, formants) -> np.ndarray:
    """1 + sum of Gaussian bumps (centre Hz, width Hz, gain): a crude body/bore resonance."""
    gain = np.ones_like(freqs, dtype=float)
    for centre, width, height in formants:
        gain += height * np.exp(-0.5 * ((freqs - centre) / width) ** 2)
    return gain


def _envelope(note: Note, attack: float, release: float) -> np.ndarray:
    """Linear attack, sustain while the note is held, then an exponential release that is down
    by 43 dB (e^-5) `release` s after the note ends."""
    env = np.ones(note.n, dtype=np.float32)
    n_attack = max(1, min(int(attack * note.rate), note.n_on))
    env[:n_attack] = np.linspace(0.0, 1.0, n_attack, endpoint=False)
    tail = np.arange(note.n - note.n_on) / note.rate
    env[note.n_on:] = np.exp(-tail / (release / 5))
    return env


def _band_noise(n: int, rate: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
    """White noise band-passed to [low, high] Hz, peak 1."""
    band = butter(4, [low, high], btype="bandpass", fs=rate, output="sos")
    noise = sosfilt(band, rng.standard_normal(n))
    return (noise / (np.abs(noise).max() + 1e-9)).astype(np.float32)


def _sum_partials(phase: np.ndarray, ratios, amps, note: Note, decays=None) -> np.ndarray:
    """Sum of amp * sin(ratio * phase) over the partials below 0.45 * rate, optionally with
    per-partial exponential decay (s). Normalised to peak 1."""
    out = np.zeros(note.n, dtype=np.float32)
    t = note.t if decays is not None else None
    for k, (ratio, amp) in enumerate(zip(ratios, amps)):
        if ratio * note.f0 >= 0.45 * note.rate or amp < 1e-3:
            continue
        # float32 sin is many times faster than float64; the cast costs < 0.01 rad of phase.
        argument = (ratio * phase + note.rng.uniform(0, 2 * np.pi)).astype(np.float32)
        partial = np.sin(argument)
        if decays is not None:
            partial *= np.exp(-t / decays[k]).astype(np.float32)
        out += amp * partial
    return out / (np.abs(out).max() + 1e-9)


def _vibrato_phase(note: Note, depth: float, onset: float, glide: bool = False) -> np.ndarray:
    """Phase (rad) of the fundamental with delayed vibrato (depth in semitones) and, optionally,
    a fast glide from the previous note's pitch (erhu portamento)."""
    t = note.t
    semitones = depth * np.clip(t / onset, 0, 1) * np.sin(
        2 * np.pi * note.style["vibrato_hz"] * t + note.rng.uniform(0, 2 * np.pi))
    if glide and note.prev_f0 is not None:
        semitones += 12 * np.log2(note.prev_f0 / note.f0) * np.exp(-t / 0.03)
    return 2 * np.pi * np.cumsum(note.f0 * 2.0 ** (semitones / 12)) / note.rate


def _render_bowed(p: dict, note: Note) -> np.ndarray:
    """Sawtooth-like string with body formants, vibrato and bow noise (violin, cello, erhu)."""
    harmonics = np.arange(1, 31)
    amps = harmonics ** (-1.0 + note.style["tilt"]) * _formant_gain(harmonics * note.f0,
                                                                      p["formants"])
    phase = _vibrato_phase(note, p["vibrato"] * note.style["vibrato"], 0.15, p.get("glide", False))
    tone = _sum_partials(phase, harmonics, amps / amps.max(), note) + p["noise"] * note.noise
    return tone * _envelope(note, p["attack"], 0.08)


def _render_wind(p: dict, note: Note) -> np.ndarray:
    """Fixed partial amplitudes (odd-only for the clarinet), breath noise, gentle vibrato."""
    harmonics = np.arange(1, len(p["amps"]) + 1)
    amps = np.asarray(p["amps"]) * harmonics ** note.style["tilt"] * _formant_gain(
        harmonics * note.f0, p.get("formants", ()))
    phase = _vibrato_phase(note, p["vibrato"] * note.style["vibrato"], 0.2)
    tone = _sum_partials(phase, harmonics, amps / amps.max(), note) + p["breath"] * note.noise
    return tone * _envelope(note, p["attack"], 0.06)


def _render_brass(p: dict, note: Note) -> np.ndarray:
    """Spectrum peaking at a few harmonics; higher partials speak later, the brass "blat"."""
    harmonics = np.arange(1, p["max_harmonic"] + 1)
    amps = (harmonics ** (p["rise"] + note.style["tilt"])) * np.exp(-harmonics / p["rolloff"])
    amps /= amps.max()
    phase = _vibrato_phase(note, p["vibrato"] * note.style["vibrato"], 0.25)
    t = note.t
    out = np.zeros(note.n, dtype=np.float32)
    for h, amp in zip(harmonics, amps):
        if h * note.f0 >= 0.45 * note.rate:
            break
        onset = np.clip(t / (p["attack"] * (1 + 0.35 * h)), 0, 1).astype(np.float32)
        argument = (h * phase + note.rng.uniform(0, 2 * np.pi)).astype(np.float32)
        out += amp * onset * np.sin(argument)
    out /= np.abs(out).max() + 1e-9
    return out * _envelope(note, 0.005, 0.07)


def _render_plucked(p: dict, note: Note) -> np.ndarray:
    """Plucked stiff string: pluck-position comb, faster decay of higher partials (guitar)."""
    harmonics = np.arange(1, 25)
    amps = (np.abs(np.sin(harmonics * np.pi * note.style["pluck_position"]))
            / harmonics ** (1.2 - note.style["tilt"]))
    ratios = harmonics * np.sqrt(1 + 2e-4 * harmonics ** 2)
    decays = note.style["ring_sec"] / (1 + 0.5 * (harmonics - 1))
    tone = _sum_partials(2 * np.pi * note.f0 * note.t, ratios, amps / amps.max(), note, decays)
    n_attack = int(0.002 * note.rate)
    tone[:n_attack] *= np.linspace(0, 1, n_attack)
    tone[note.n_on:] *= np.exp(-np.arange(note.n - note.n_on) / (0.06 * note.rate))  # damped
    return tone


def _render_struck(p: dict, note: Note) -> np.ndarray:
    """Struck bar: a few inharmonic, fast-decaying partials plus a mallet click (xylophone)."""
    decays = np.asarray(p["decays"]) * note.style["ring"]
    tone = _sum_partials(2 * np.pi * note.f0 * note.t, p["ratios"], p["amps"], note, decays)
    n_click = int(0.004 * note.rate)
    tone[:n_click] += 0.3 * note.noise[:n_click] * np.linspace(1, 0, n_click)
    return tone


def _render_reed(p: dict, note: Note) -> np.ndarray:
    """Two reeds a few cents apart per pitch (the accordion's beating), often a two-note chord."""
    harmonics = np.arange(1, 21)
    amps = harmonics ** (-0.8 + note.style["tilt"])
    pitches = [note.f0]
    if note.rng.random() < 0.5:
        pitches.append(note.f0 * 2 ** (note.rng.choice([3, 4, 5, 7]) / 12))
    out = np.zeros(note.n, dtype=np.float32)
    for i, pitch in enumerate(pitches):
        for cents in (-note.style["detune"], note.style["detune"]):
            phase = 2 * np.pi * pitch * 2 ** (cents / 1200) * note.t
            out += (0.7 if i else 1.0) * _sum_partials(phase, harmonics, amps, note)
    out /= np.abs(out).max() + 1e-9
    return out * _envelope(note, 0.03, 0.06)


@dataclass(frozen=True)
class Voice:
    """How one class sounds: pitch range (MIDI), note lengths (s), release tail (s), the band of
    its noise component (Hz; None: no noise), renderer and renderer parameters."""
    midi_low: int
    midi_high: int
    note_sec: tuple[float, float]
    tail_sec: float
    noise_band: tuple[float, float] | None
    render: Callable[[dict, Note], np.ndarray]
    params: dict


VOICES = {
    "tuba": Voice(29, 45, (0.3, 0.8), 0.1, None, _render_brass,
                  dict(max_harmonic=12, rise=0.6, rolloff=1.6, attack=0.06, vibrato=0.0)),
    "cello": Voice(38, 57, (0.3, 0.8), 0.1, (2000, 5000), _render_bowed,
                   dict(formants=((250, 120, 1.5), (1200, 400, 0.8)), vibrato=0.25, attack=0.08,
                        noise=0.02)),
    "acoustic_guitar": Voice(45, 64, (0.15, 0.6), 0.15, None, _render_plucked, {}),
    "clarinet": Voice(52, 70, (0.2, 0.8), 0.08, (1000, 4000), _render_wind,
                      dict(amps=[1 / h if h % 2 else 0.04 / h for h in range(1, 16)], vibrato=0.0,
                           attack=0.025, breath=0.015)),
    "trumpet": Voice(58, 76, (0.15, 0.6), 0.08, None, _render_brass,
                     dict(max_harmonic=20, rise=1.6, rolloff=2.2, attack=0.02, vibrato=0.05)),
    "violin": Voice(65, 84, (0.15, 0.7), 0.1, (2000, 5000), _render_bowed,
                    dict(formants=((500, 200, 0.8), (2800, 800, 1.8)), vibrato=0.3, attack=0.05,
                         noise=0.03)),
    "flute": Voice(74, 91, (0.2, 0.8), 0.08, (600, 4500), _render_wind,
                   dict(amps=[1.0, 0.25, 0.1, 0.04], vibrato=0.12, attack=0.06, breath=0.1)),
    "xylophone": Voice(81, 98, (0.12, 0.4), 0.4, (1500, 5000), _render_struck,
                       dict(ratios=[1.0, 2.92, 5.97, 9.6], amps=[1.0, 0.45, 0.2, 0.08],
                            decays=[0.3, 0.09, 0.04, 0.02])),
    "saxophone": Voice(49, 68, (0.15, 0.7), 0.08, (800, 4000), _render_wind,
                       dict(amps=[h ** -0.7 for h in range(1, 25)], vibrato=0.15, attack=0.04,
                            breath=0.04, formants=((600, 200, 1.0), (1500, 600, 2.5)))),
    "accordion": Voice(55, 74, (0.25, 0.8), 0.08, None, _render_reed, {}),
    "erhu": Voice(62, 81, (0.25, 0.8), 0.1, (2000, 5000), _render_bowed,
                  dict(formants=((1000, 250, 3.0), (3000, 600, 1.0)), vibrato=0.55, attack=0.06,
                       noise=0.04, glide=True)),
}


def _melody(voice: Voice, duration: float, rng: np.random.Generator):
    """Random-walk melody: (onset s, length s, MIDI pitch, velocity); rests are short (<= 0.35 s)
    so that any 1.5 s window almost always contains sound."""
    steps = np.array([-7, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 7])
    step_prob = np.array([1, 2, 3, 4, 6, 6, 3, 6, 6, 4, 3, 2, 1], dtype=float)
    step_prob /= step_prob.sum()
    pitch = int(rng.integers(voice.midi_low, voice.midi_high + 1))
    onset = rng.uniform(0.0, 0.1)
    notes = []
    while onset < duration:
        length = min(rng.uniform(*voice.note_sec), duration - onset)
        notes.append((onset, length, pitch, rng.uniform(0.6, 1.0)))
        onset += length
        if rng.random() < 0.12:
            onset += rng.uniform(0.05, 0.35)
        pitch += int(rng.choice(steps, p=step_prob))
        if pitch > voice.midi_high:                     # reflect at the range limits
            pitch = 2 * voice.midi_high - pitch
        if pitch < voice.midi_low:
            pitch = 2 * voice.midi_low - pitch
        pitch = int(np.clip(pitch, voice.midi_low, voice.midi_high))
    return notes


def synthesize_audio(class_name: str, duration: float, rng: np.random.Generator,
                     rate: int = layout.AUDIO_RATE, melody=None) -> np.ndarray:
    """A mono melody in the timbre of `class_name`: float32, peak AUDIO_PEAK, `duration` s long.

    `melody` lists notes as (onset s, length s, MIDI pitch, velocity); by default a random melody
    in the class's pitch range.
    """
    voice = VOICES[class_name]
    style = dict(tilt=rng.uniform(-0.15, 0.15), vibrato=rng.uniform(0.7, 1.3),
                 vibrato_hz=rng.uniform(4.5, 6.5), pluck_position=rng.uniform(0.1, 0.22),
                 ring_sec=rng.uniform(0.5, 1.2), ring=rng.uniform(0.7, 1.4),
                 detune=rng.uniform(3, 8))
    n_total = int(round(duration * rate))
    tail = int(voice.tail_sec * rate)
    out = np.zeros(n_total + tail, dtype=np.float32)
    # One noise track per video, sliced per note: far cheaper than filtering noise per note.
    noise = (np.zeros(len(out), np.float32) if voice.noise_band is None
             else _band_noise(len(out), rate, *voice.noise_band, rng))
    prev_f0 = None
    if melody is None:
        melody = _melody(voice, duration, rng)
    for onset, length, pitch, velocity in melody:
        start = int(onset * rate)
        n = min(int(length * rate) + tail, len(out) - start)
        note = Note(midi_to_hz(pitch), max(1, min(int(length * rate), n)), n, rate, rng, style,
                    prev_f0, noise[start:start + n])
        out[start:start + n] += velocity * voice.render(voice.params, note)
        prev_f0 = note.f0
    out = out[:n_total]
    out *= AUDIO_PEAK / (np.abs(out).max() + 1e-9)
    out += rng.normal(0.0, 3e-4, n_total).astype(np.float32)  # a faint recording noise floor
    return out


# ----------------------------------------------------------------------------------------------
# Picture: each class is a drawn instrument with its own shape and colours.

class Canvas:
    """An RGBA drawing in units of the sprite's height: x in [0, aspect], y in [0, 1]."""

    def __init__(self, aspect: float, height_px: float):
        self.scale = height_px * SUPERSAMPLE
        self.size = (max(1, math.ceil(aspect * self.scale)), max(1, math.ceil(self.scale)))
        self.image = Image.new("RGBA", self.size, (0, 0, 0, 0))
        self.draw = ImageDraw.Draw(self.image)

    def _px(self, points):
        return [(x * self.scale, y * self.scale) for x, y in points]

    def ellipse(self, cx, cy, rx, ry, fill):
        self.draw.ellipse(self._px([(cx - rx, cy - ry), (cx + rx, cy + ry)]), fill=fill)

    def ring(self, cx, cy, rx, ry, colour, width, start=0, end=360):
        self.draw.arc(self._px([(cx - rx, cy - ry), (cx + rx, cy + ry)]), start, end, fill=colour,
                      width=max(1, round(width * self.scale)))

    def rect(self, x1, y1, x2, y2, fill):
        self.draw.rectangle(self._px([(x1, y1), (x2, y2)]), fill=fill)

    def polygon(self, points, fill):
        self.draw.polygon(self._px(points), fill=fill)

    def line(self, points, colour, width):
        self.draw.line(self._px(points), fill=colour, width=max(1, round(width * self.scale)))

    def erase_ellipse(self, cx, cy, rx, ry):
        self.ellipse(cx, cy, rx, ry, (0, 0, 0, 0))  # ImageDraw replaces RGBA pixels: a cut-out

    def finish(self) -> Image.Image:
        size = (max(1, self.size[0] // SUPERSAMPLE), max(1, self.size[1] // SUPERSAMPLE))
        return self.image.resize(size, Image.Resampling.BOX)


def _bowed_body(c: Canvas, a: float, top: float, bottom: float, colours) -> None:
    """Figure-eight body with C-bout cut-outs, f-holes, fingerboard, tailpiece (violin, cello)."""
    body, edge, dark, light = colours["body"], colours["edge"], colours["dark"], colours["light"]
    h = bottom - top
    x = a / 2
    upper, lower = (top + 0.25 * h, 0.36 * a, 0.25 * h), (bottom - 0.27 * h, 0.46 * a, 0.27 * h)
    for (cy, rx, ry), grow in ((upper, 0.012), (lower, 0.012), (upper, 0), (lower, 0)):
        c.ellipse(x, cy, rx + grow, ry + grow, edge if grow else body)
    c.rect(x - 0.3 * a, top + 0.35 * h, x + 0.3 * a, bottom - 0.35 * h, body)
    for side in (-1, 1):
        c.erase_ellipse(x + side * 0.5 * a, top + 0.5 * h, 0.2 * a, 0.13 * h)
        c.line([(x + side * 0.16 * a, top + 0.42 * h), (x + side * 0.14 * a, top + 0.68 * h)], dark,
               0.012)
    c.polygon([(x - 0.05 * a, 0.02), (x + 0.05 * a, 0.02), (x + 0.08 * a, top + 0.62 * h),
               (x - 0.08 * a, top + 0.62 * h)], dark)                      # fingerboard
    c.ellipse(x, 0.03, 0.07 * a, 0.03, edge)                               # scroll
    c.rect(x - 0.14 * a, top + 0.66 * h, x + 0.14 * a, top + 0.68 * h, light)  # bridge
    c.polygon([(x - 0.09 * a, top + 0.76 * h), (x + 0.09 * a, top + 0.76 * h),
               (x + 0.05 * a, bottom - 0.03 * h), (x - 0.05 * a, bottom - 0.03 * h)], dark)
    for dx in (-0.03, -0.01, 0.01, 0.03):
        c.line([(x + dx * a, 0.04), (x + dx * a * 1.5, top + 0.78 * h)], light, 0.004)


def _draw_violin(c, a, col):
    _bowed_body(c, a, 0.3, 0.98, col)
    c.ellipse(a / 2 + 0.2 * a, 0.9, 0.16 * a, 0.05, col["dark"])       # chin rest


def _draw_cello(c, a, col):
    _bowed_body(c, a, 0.2, 0.9, col)
    c.line([(a / 2, 0.88), (a / 2, 1.0)], col["light"], 0.012)          # endpin


def _draw_guitar(c, a, col):
    x = a / 2
    for grow, colour in ((0.012, col["edge"]), (0.0, col["body"])):
        c.ellipse(x, 0.77, 0.48 * a + grow, 0.22 + grow, colour)
        c.ellipse(x, 0.52, 0.37 * a + grow, 0.16 + grow, colour)
    c.ellipse(x, 0.6, 0.14 * a, 0.14 * a, col["dark"])                  # sound hole
    c.rect(x - 0.15 * a, 0.84, x + 0.15 * a, 0.86, col["dark"])         # bridge
    c.rect(x - 0.07 * a, 0.08, x + 0.07 * a, 0.5, col["neck"])
    for y in np.arange(0.12, 0.48, 0.04):
        c.line([(x - 0.07 * a, y), (x + 0.07 * a, y)], col["light"], 0.004)   # frets
    c.polygon([(x - 0.11 * a, 0.0), (x + 0.11 * a, 0.0), (x + 0.08 * a, 0.09),
               (x - 0.08 * a, 0.09)], col["dark"])                      # headstock
    for dx in (-0.045, -0.015, 0.015, 0.045):
        c.line([(x + dx * a, 0.06), (x + dx * a * 1.3, 0.85)], col["light"], 0.003)


def _draw_flute(c, a, col):
    c.rect(0.1, 0.32, a - 0.05, 0.68, col["body"])                      # tube
    c.rect(0.0, 0.28, 0.15, 0.72, col["edge"])                          # head joint cap
    c.ellipse(1.0, 0.5, 0.3, 0.3, col["edge"])                          # embouchure plate
    c.ellipse(1.0, 0.5, 0.12, 0.12, col["dark"])
    for x in np.linspace(2.5, a - 1.0, 9):
        c.ellipse(x, 0.5, 0.22, 0.22, col["light"])                     # keys
        c.ellipse(x, 0.5, 0.1, 0.1, col["edge"])
    c.line([(3.0, 0.5), (a - 1.0, 0.5)], col["edge"], 0.06)             # key rod


def _draw_clarinet(c, a, col):
    x = a / 2
    c.polygon([(x - 0.15 * a, 0.0), (x + 0.15 * a, 0.0), (x + 0.22 * a, 0.08),
               (x - 0.22 * a, 0.08)], col["dark"])                      # mouthpiece
    c.rect(x - 0.25 * a, 0.08, x + 0.25 * a, 0.1, col["light"])         # ligature
    c.rect(x - 0.2 * a, 0.1, x + 0.2 * a, 0.86, col["body"])
    c.polygon([(x - 0.2 * a, 0.84), (x + 0.2 * a, 0.84), (x + 0.5 * a, 1.0),
               (x - 0.5 * a, 1.0)], col["body"])                        # bell
    for y in np.linspace(0.2, 0.8, 8):
        c.rect(x - 0.26 * a, y, x + 0.26 * a, y + 0.012, col["light"])  # key rings
        c.ellipse(x, y + 0.03, 0.08 * a, 0.08 * a, col["edge"])         # tone holes


def _draw_trumpet(c, a, col):
    t = 0.08
    gold, light = col["body"], col["light"]
    c.polygon([(0.0, 0.45), (0.15, 0.48), (0.15, 0.52), (0.0, 0.55)], light)   # mouthpiece
    c.line([(0.12, 0.5), (1.3, 0.5)], gold, t)
    c.ring(1.3, 0.65, 0.15, 0.15, gold, t, 270, 90)
    c.line([(1.3, 0.8), (0.4, 0.8)], gold, t)
    c.ring(0.4, 0.55, 0.25, 0.25, gold, t, 90, 270)
    c.line([(0.4, 0.3), (1.5, 0.3)], gold, t)
    c.polygon([(1.45, 0.26), (a, 0.02), (a, 0.58), (1.45, 0.34)], gold)        # bell
    c.ellipse(a - 0.03, 0.3, 0.03, 0.28, col["dark"])
    for x in (0.65, 0.8, 0.95):                                                  # valves
        c.rect(x - 0.05, 0.18, x + 0.05, 0.92, col["edge"])
        c.ellipse(x, 0.1, 0.06, 0.05, col["pearl"])


def _draw_tuba(c, a, col):
    gold, edge = col["body"], col["edge"]
    c.polygon([(0.5, 0.12), (0.72, 0.12), (0.66, 0.62), (0.56, 0.62)], gold)   # bell throat
    c.ring(0.42, 0.62, 0.3, 0.3, gold, 0.1)                                     # main coil
    c.ring(0.42, 0.62, 0.17, 0.17, edge, 0.05)
    c.ellipse(0.6, 0.1, 0.25, 0.09, gold)                                       # bell
    c.ellipse(0.6, 0.1, 0.2, 0.06, col["dark"])
    for x in (0.12, 0.19, 0.26, 0.33):                                          # valves
        c.rect(x - 0.025, 0.36, x + 0.025, 0.56, col["light"])
        c.ellipse(x, 0.34, 0.03, 0.02, col["pearl"])
    c.line([(0.05, 0.5), (0.12, 0.3), (0.3, 0.3)], col["light"], 0.025)       # lead pipe


def _draw_xylophone(c, a, col):
    c.polygon([(0.05, 0.3), (a - 0.05, 0.38), (a - 0.05, 0.43), (0.05, 0.36)], col["frame"])
    c.polygon([(0.05, 0.78), (a - 0.05, 0.7), (a - 0.05, 0.75), (0.05, 0.84)], col["frame"])
    bars = col["bars"]
    width = (a - 0.3) / len(bars)
    for i, colour in enumerate(bars):
        x = 0.15 + i * width
        half = 0.42 - 0.15 * i / (len(bars) - 1)
        c.rect(x, 0.56 - half, x + 0.8 * width, 0.56 + half, colour)
        for y in (0.56 - 0.2, 0.56 + 0.17):
            c.ellipse(x + 0.4 * width, y, 0.02, 0.02, col["light"])            # nails
    for x0 in (0.8, 1.2):                                                      # mallets
        c.line([(x0, 0.02), (x0 + 0.25, 0.3)], col["light"], 0.02)
        c.ellipse(x0 + 0.25, 0.3, 0.05, 0.05, col["dark"])


def _draw_saxophone(c, a, col):
    gold = col["body"]
    c.polygon([(0.22, 0.15), (0.3, 0.15), (0.36, 0.82), (0.16, 0.82)], gold)  # body tube
    c.ring(0.34, 0.8, 0.15, 0.14, gold, 0.1, 0, 180)                          # bow
    c.polygon([(0.42, 0.82), (0.52, 0.82), (0.56, 0.52), (0.4, 0.52)], gold)  # bell tube
    c.ellipse(0.48, 0.5, 0.09, 0.05, gold)
    c.ellipse(0.48, 0.5, 0.065, 0.03, col["dark"])
    c.line([(0.26, 0.16), (0.2, 0.06), (0.06, 0.05)], gold, 0.04)              # neck
    c.rect(0.0, 0.03, 0.07, 0.07, col["dark"])                                 # mouthpiece
    for y in np.arange(0.25, 0.75, 0.08):
        c.ellipse(0.26, y, 0.03, 0.02, col["pearl"])                           # keys


def _draw_accordion(c, a, col):
    c.rect(0.0, 0.1, 0.25, 0.9, col["body"])
    for i in range(4):
        for j in range(6):
            c.ellipse(0.05 + 0.05 * i, 0.2 + 0.11 * j, 0.015, 0.015, col["pearl"])  # buttons
    n_folds = 12
    for i in range(n_folds):
        x = 0.25 + i * (0.53 / n_folds)
        c.rect(x, 0.12, x + 0.53 / n_folds, 0.88, col["dark"] if i % 2 else col["light"])
    c.rect(0.78, 0.0, a, 1.0, col["body"])
    c.rect(0.84, 0.05, a - 0.04, 0.95, col["pearl"])                       # keyboard
    for y in np.arange(0.05, 0.95, 0.06):
        c.line([(0.84, y), (a - 0.04, y)], col["edge"], 0.004)
        c.rect(0.84, y + 0.02, 0.94, y + 0.045, col["dark"])                 # black keys


def _draw_erhu(c, a, col):
    c.rect(0.27, 0.0, 0.31, 0.85, col["neck"])
    for y in (0.08, 0.16):
        c.rect(0.31, y, 0.42, y + 0.03, col["neck"])                          # pegs
    c.polygon([(0.18, 0.8), (0.4, 0.8), (0.44, 0.88), (0.4, 0.97), (0.18, 0.97), (0.14, 0.88)],
              col["body"])                                                    # sound box
    c.ellipse(0.29, 0.885, 0.09, 0.06, col["light"])                          # snake skin
    c.line([(0.285, 0.02), (0.285, 0.85)], col["light"], 0.004)                # strings
    c.line([(0.0, 0.6), (a, 0.72)], col["bow"], 0.015)                         # bow stick
    c.line([(0.02, 0.63), (a - 0.02, 0.745)], col["light"], 0.006)             # bow hair


@dataclass(frozen=True)
class Look:
    """How one class looks: untilted sprite aspect (width/height), drawer, base colours (RGB),
    tilt range (deg, either sign), and how much of its region it fills."""
    aspect: float
    draw: Callable
    colours: dict
    tilt: tuple[float, float]
    fill: tuple[float, float]


_WOOD = dict(light=(235, 225, 200), dark=(35, 25, 20))
_BRASS = dict(light=(190, 190, 195), dark=(60, 40, 15), pearl=(245, 240, 225))
LOOKS = {
    "acoustic_guitar": Look(0.42, _draw_guitar, dict(
        _WOOD, body=(222, 160, 85), edge=(120, 70, 30), neck=(95, 55, 25)), (20, 40), (0.65, 0.9)),
    "violin": Look(0.4, _draw_violin, dict(
        _WOOD, body=(175, 70, 30), edge=(100, 35, 15)), (30, 55), (0.5, 0.7)),
    "cello": Look(0.42, _draw_cello, dict(
        _WOOD, body=(120, 45, 20), edge=(70, 25, 10)), (0, 12), (0.8, 0.95)),
    "flute": Look(14.0, _draw_flute, dict(
        body=(205, 205, 215), edge=(150, 150, 160), light=(235, 235, 240), dark=(40, 40, 45)),
        (20, 35), (0.75, 0.95)),
    "clarinet": Look(0.12, _draw_clarinet, dict(
        body=(25, 25, 28), edge=(70, 70, 75), light=(200, 200, 210), dark=(10, 10, 10)),
        (16, 28), (0.75, 0.95)),
    "trumpet": Look(2.0, _draw_trumpet, dict(
        _BRASS, body=(235, 195, 60), edge=(200, 160, 50)), (8, 20), (0.7, 0.95)),
    "tuba": Look(0.85, _draw_tuba, dict(
        _BRASS, body=(205, 150, 45), edge=(150, 105, 30)), (0, 10), (0.8, 0.95)),
    "xylophone": Look(2.2, _draw_xylophone, dict(
        frame=(80, 50, 30), light=(200, 200, 200), dark=(150, 30, 90),
        bars=[tuple(round(255 * v) for v in colorsys.hsv_to_rgb(i / 9 * 0.8, 0.75, 0.95))
              for i in range(9)]), (0, 6), (0.75, 0.95)),
    "saxophone": Look(0.58, _draw_saxophone, dict(
        _BRASS, body=(215, 165, 55)), (0, 15), (0.7, 0.9)),
    "accordion": Look(1.1, _draw_accordion, dict(
        body=(190, 30, 40), light=(220, 220, 220), dark=(30, 30, 30), edge=(90, 90, 90),
        pearl=(245, 245, 240)), (0, 10), (0.6, 0.9)),
    "erhu": Look(0.6, _draw_erhu, dict(
        neck=(70, 35, 20), body=(110, 25, 20), light=(225, 215, 180), bow=(140, 95, 50)),
        (0, 12), (0.7, 0.9)),
}


def _vary_colour(rgb, hue_shift: float, value_scale: float):
    h, s, v = colorsys.rgb_to_hsv(*(x / 255 for x in rgb))
    r, g, b = colorsys.hsv_to_rgb((h + hue_shift) % 1.0, s, min(1.0, v * value_scale))
    return round(255 * r), round(255 * g), round(255 * b)


def draw_instrument(class_name: str, height_px: float, tilt_deg: float, hue_shift: float = 0.0,
                    value_scale: float = 1.0) -> Image.Image:
    """The instrument sprite: RGBA, transparent outside the object, cropped to the object."""
    look = LOOKS[class_name]
    colours = {name: ([_vary_colour(c, hue_shift, value_scale) for c in value] if name == "bars"
                      else _vary_colour(value, hue_shift, value_scale))
               for name, value in look.colours.items()}
    canvas = Canvas(look.aspect, height_px)
    look.draw(canvas, look.aspect, colours)
    sprite = canvas.finish().rotate(tilt_deg, Image.Resampling.BICUBIC, expand=True)
    return sprite.crop(sprite.getchannel("A").getbbox())


def make_background(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A textured (H, W, 3) uint8 background: gradient plus stripes, blobs or smooth noise.
    Drawn from the same distribution for every class, so it carries no class information."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * x + np.sin(angle) * y
    ramp = (ramp - ramp.min()) / (np.ptp(ramp) + 1e-9)
    low, high = rng.uniform(20, 235, (2, 3))
    image = low + (high - low) * ramp[..., None]
    texture = rng.integers(3)
    if texture == 0:
        freq, theta = rng.uniform(3, 15), rng.uniform(0, np.pi)
        stripes = np.sin(2 * np.pi * freq * (np.cos(theta) * x + np.sin(theta) * y))
        image += rng.uniform(10, 35) * stripes[..., None] * rng.uniform(0.3, 1.0, 3)
    elif texture == 1:
        for _ in range(rng.integers(3, 8)):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.05, 0.25)
            blob = np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
            image += blob[..., None] * rng.uniform(-60, 60, 3)
    else:
        coarse = rng.uniform(-1, 1, (rng.integers(3, 9), rng.integers(3, 9), 3))
        smooth = np.stack([np.asarray(Image.fromarray(coarse[..., i].astype(np.float32)).resize(
            (width, height), Image.Resampling.BICUBIC)) for i in range(3)], axis=-1)
        image += rng.uniform(20, 50) * smooth
    image += rng.normal(0, 4, image.shape)  # sensor-like grain
    return np.clip(image, 0, 255).astype(np.uint8)


class SceneObject:
    """One instrument in a video: its look, where it sits, and how it sways and bobs."""

    TRIAL_HEIGHT = 100.0  # px; sprites are sized by drawing once at this height and scaling

    def __init__(self, class_name: str, sounding: bool, rng: np.random.Generator,
                 frame_scale: float):
        look = LOOKS[class_name]
        self.class_name, self.sounding = class_name, sounding
        self.tilt = rng.uniform(*look.tilt) * rng.choice([-1, 1])
        self.hue_shift, self.value_scale = rng.uniform(-0.03, 0.03), rng.uniform(0.85, 1.1)
        self.fill = rng.uniform(*look.fill)
        # Players move their instrument; a silent one is held nearly still.
        self.sway_deg = rng.uniform(2.5, 6.0) if sounding else rng.uniform(0.0, 1.0)
        self.bob_px = (rng.uniform(1.5, 4.0) if sounding else rng.uniform(0.0, 1.0)) * frame_scale
        self.sway_hz, self.bob_hz = rng.uniform(0.25, 0.7), rng.uniform(0.4, 1.2)
        self.phases = rng.uniform(0, 2 * np.pi, 2)
        trial = self._draw(self.TRIAL_HEIGHT)
        # Swaying changes the box; its shortest side is reached at one of the extreme angles.
        self.trial_short_side = min(
            min(np.ptp(np.reshape(self._rotate_sprite(trial, angle)[1], (2, 2)), axis=0))
            for angle in (-self.sway_deg, 0.0, self.sway_deg))
        self.trial_extent = self._swayed_extent(trial)
        self.sprite, self.cx, self.cy = None, 0.0, 0.0
        self._rotated = {}

    def _draw(self, height_px: float) -> Image.Image:
        return draw_instrument(self.class_name, height_px, self.tilt, self.hue_shift,
                               self.value_scale)

    def _swayed_extent(self, sprite: Image.Image):
        """Width and height the sprite can cover while swaying and bobbing."""
        sizes = [sprite.rotate(sign * self.sway_deg, expand=True).size for sign in (-1, 1)]
        return (max(s[0] for s in sizes) + 2 * self.bob_px,
                max(s[1] for s in sizes) + 2 * self.bob_px)

    def max_height(self, region) -> float:
        """Largest sprite height (px) whose whole motion fits in `region` (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = region
        width, height = self.trial_extent
        return 0.97 * self.TRIAL_HEIGHT * min((x1 - x0) / width, (y1 - y0) / height)

    def short_side(self, height_px: float) -> float:
        return self.trial_short_side * height_px / self.TRIAL_HEIGHT

    def place(self, region, min_short_side: float, rng: np.random.Generator) -> None:
        """Draw the final sprite, filling `self.fill` of the region but keeping the box's short
        side at least `min_short_side` where the region allows, at a random spot in the region."""
        largest = self.max_height(region)
        height_px = self.fill * largest
        if self.short_side(height_px) < min_short_side:
            # 5% over the minimum absorbs rounding when the sprite is drawn at its final size.
            height_px = min(largest,
                            1.05 * min_short_side * self.TRIAL_HEIGHT / self.trial_short_side)
        self.sprite = self._draw(height_px)
        width, height = self._swayed_extent(self.sprite)
        x0, y0, x1, y1 = region
        self.cx = rng.uniform(x0 + width / 2, max(x0 + width / 2, x1 - width / 2))
        self.cy = rng.uniform(y0 + height / 2, max(y0 + height / 2, y1 - height / 2))

    @staticmethod
    def _rotate_sprite(sprite: Image.Image, angle: float):
        rotated = sprite.rotate(angle, Image.Resampling.BILINEAR, expand=True)
        return rotated, rotated.getchannel("A").getbbox()

    def _rotate(self, angle: float):
        key = round(angle / ANGLE_STEP)
        if key not in self._rotated:
            self._rotated[key] = self._rotate_sprite(self.sprite, key * ANGLE_STEP)
        return self._rotated[key]

    def paste(self, frame: Image.Image, t: float) -> list[int]:
        """Draw the object at time t (s) onto `frame`; return its tight box [x1, y1, x2, y2]."""
        angle = self.sway_deg * math.sin(2 * math.pi * self.sway_hz * t + self.phases[0])
        bob = self.bob_px * math.sin(2 * math.pi * self.bob_hz * t + self.phases[1])
        rotated, (bx1, by1, bx2, by2) = self._rotate(angle)
        left = round(self.cx - rotated.width / 2)
        top = round(self.cy + bob - rotated.height / 2)
        frame.paste(rotated, (left, top), rotated)
        return [left + bx1, top + by1, left + bx2, top + by2]


def _two_object_layouts(width: int, height: int, margin: int):
    """Candidate pairs of disjoint regions: side by side or stacked, at a few split points."""
    for split in (0.35, 0.42, 0.5, 0.58, 0.65):
        x, y = round(split * width), round(split * height)
        yield ((margin, margin, x - margin, height - margin),
               (x + margin, margin, width - margin, height - margin))
        yield ((margin, margin, width - margin, y - margin),
               (margin, y + margin, width - margin, height - margin))


class Scene:
    """The picture of one video: a background with the sounding object and maybe a silent one."""

    MIN_SHORT_SIDE = 0.21  # of the frame height: 40 px at 192, so crops stay meaningful

    def __init__(self, plan: VideoPlan):
        rng = plan.rng(1)
        width, height = plan.width, plan.height
        self.background = Image.fromarray(make_background(width, height, rng))
        classes = [plan.class_name] + ([plan.silent_class] if plan.silent_class else [])
        self.objects = [SceneObject(c, i == 0, rng, height / 192) for i, c in enumerate(classes)]
        margin = round(0.02 * min(width, height))
        if len(self.objects) == 1:
            regions = [(margin, margin, width - margin, height - margin)]
        else:
            # Two disjoint regions (so the objects never overlap), chosen at random among the
            # layouts that keep both objects nearly as large as the best layout does.
            layouts = [pair[::order] for pair in _two_object_layouts(width, height, margin)
                       for order in (1, -1)]
            scores = [min(obj.short_side(obj.max_height(region))
                          for obj, region in zip(self.objects, pair)) for pair in layouts]
            good = [pair for pair, score in zip(layouts, scores) if score >= 0.85 * max(scores)]
            regions = good[rng.integers(len(good))]
        for obj, region in zip(self.objects, regions):
            obj.place(region, self.MIN_SHORT_SIDE * height, rng)

    def render(self, t: float) -> tuple[Image.Image, list[list[int]]]:
        frame = self.background.copy()
        return frame, [obj.paste(frame, t) for obj in self.objects]


# ----------------------------------------------------------------------------------------------
# Writing one video.

def container_audio(plan: VideoPlan) -> np.ndarray:
    """The (channels, samples) float32 track stored in the mp4: synthesised at AUDIO_RATE (so it is
    band-limited to what the project uses) and upsampled to the container rate."""
    rng = plan.rng(2)
    mono = synthesize_audio(plan.class_name, plan.duration, rng)
    mono = resample_poly(mono, plan.audio_rate // layout.AUDIO_RATE, 1).astype(np.float32)
    length = round(plan.duration * plan.audio_rate)  # rounding at 11025 Hz may lose a sample
    mono = np.pad(mono[:length], (0, max(0, length - len(mono))))
    gains = [1.0] if plan.audio_channels == 1 else rng.uniform(0.85, 1.0, plan.audio_channels)
    return np.stack([g * mono for g in gains]).astype(np.float32)


def write_video(plan: VideoPlan, out_root: str) -> dict:
    """Render, encode and write one video and its annotation; return the annotation."""
    scene = Scene(plan)
    audio = container_audio(plan)
    video_path = os.path.join(out_root, layout.VIDEOS, plan.class_name, plan.video_id + ".mp4")
    partial_path = video_path + ".partial"
    os.makedirs(os.path.dirname(video_path), exist_ok=True)
    audio_layout = "mono" if plan.audio_channels == 1 else "stereo"
    boxes_per_object = [[] for _ in scene.objects]
    with av.open(partial_path, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=plan.fps,
                                     options={"preset": "ultrafast", "crf": "23", "threads": "1"})
        video.width, video.height, video.pix_fmt = plan.width, plan.height, "yuv420p"
        # The fast AAC coder without its optional tools, cut off above what the track holds.
        sound = container.add_stream("aac", rate=plan.audio_rate, layout=audio_layout,
                                     options={"aac_coder": "fast", "aac_pns": "0", "aac_tns": "0",
                                              "aac_is": "0", "aac_ms": "0",
                                              "cutoff": str(layout.AUDIO_RATE // 2)})
        sound.bit_rate = AUDIO_BIT_RATE
        for i in range(plan.num_frames):
            picture, boxes = scene.render(float(i / plan.fps))
            for obj_boxes, box in zip(boxes_per_object, boxes):
                obj_boxes.append(box)
            frame = av.VideoFrame.from_image(picture)
            frame.pts, frame.time_base = i, 1 / plan.fps
            container.mux(video.encode(frame))
            # Interleave: the audio that plays during this video frame.
            start = round(i / plan.fps * plan.audio_rate)
            stop = round((i + 1) / plan.fps * plan.audio_rate)
            chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, start:stop]),
                                               format="fltp", layout=audio_layout)
            chunk.sample_rate, chunk.pts = plan.audio_rate, start
            container.mux(sound.encode(chunk))
        container.mux(video.encode())
        container.mux(sound.encode())
    os.replace(partial_path, video_path)

    annotation = {
        "class": plan.class_name, "video_id": plan.video_id, "fps": float(plan.fps),
        "width": plan.width, "height": plan.height, "duration": plan.duration,
        "num_video_frames": plan.num_frames,
        "audio_rate": plan.audio_rate, "audio_channels": plan.audio_channels,
        "objects": [{"class": obj.class_name, "sounding": obj.sounding, "boxes": boxes}
                    for obj, boxes in zip(scene.objects, boxes_per_object)],
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


def generate(out_root: str, classes, videos_per_class: int, seed: int, min_sec: float,
             max_sec: float, width: int, height: int, workers: int) -> list[VideoPlan]:
    """Write the whole synthetic set under `out_root`; return the plans of the written videos."""
    plans = plan_videos(classes, videos_per_class, seed, min_sec, max_sec, width, height)
    tasks = [(plan, out_root) for plan in plans]
    progress = dict(total=len(tasks), desc="videos", unit="video")
    if workers <= 1:
        for task in tqdm(tasks, **progress):
            _write_video_task(task)
    else:
        with Pool(workers) as pool:
            for _ in tqdm(pool.imap_unordered(_write_video_task, tasks), **progress):
                pass
    listing = {"version": 1.0,
               "videos": {c: [p.video_id for p in plans if p.class_name == c] for c in classes}}
    with open(os.path.join(out_root, "videos.json"), "w") as f:
        json.dump(listing, f, indent=2)
    return plans


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", required=True, help="output data root (required)")
    parser.add_argument("--videos-per-class", type=int, default=12,
                        help="videos per class (default: 12)")
    parser.add_argument("--seed", type=int, default=0,
                        help="non-negative seed; the same seed gives the same data (default: 0)")
    parser.add_argument("--classes", nargs="+", default=list(DEFAULT_CLASSES),
                        choices=layout.MUSIC_CLASSES, metavar="CLASS",
                        help=f"classes to generate, any of {', '.join(layout.MUSIC_CLASSES)} "
                             f"(default: {' '.join(DEFAULT_CLASSES)})")
    parser.add_argument("--min-sec", type=float, default=20.0,
                        help="shortest video duration in seconds (default: 20)")
    parser.add_argument("--max-sec", type=float, default=60.0,
                        help="longest video duration in seconds (default: 60)")
    parser.add_argument("--width", type=int, default=256, help="frame width, even (default: 256)")
    parser.add_argument("--height", type=int, default=192, help="frame height, even (default: 192)")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="parallel processes (default: os.cpu_count())")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error(f"--seed must be non-negative, got {args.seed}")
    if args.videos_per_class < 1:
        parser.error(f"--videos-per-class must be at least 1, got {args.videos_per_class}")
    if not 1.0 <= args.min_sec <= args.max_sec:
        parser.error(f"need 1 <= --min-sec <= --max-sec, got {args.min_sec} and {args.max_sec}")
    if args.width % 2 or args.height % 2 or min(args.width, args.height) < 64:
        parser.error(f"--width and --height must be even and at least 64 (H.264 with 4:2:0 "
                     f"chroma), got {args.width}x{args.height}")
    if len(set(args.classes)) != len(args.classes):
        parser.error(f"--classes lists a class twice: {' '.join(args.classes)}")

    start = time.time()
    plans = generate(args.out, args.classes, args.videos_per_class, args.seed, args.min_sec,
                     args.max_sec, args.width, args.height, args.workers)
    elapsed = time.time() - start
    per_class = Counter(p.class_name for p in plans)
    total_sec = sum(p.duration for p in plans)
    with_silent = sum(p.silent_class is not None for p in plans)
    print(f"Wrote {len(plans)} videos to {os.path.join(args.out, layout.VIDEOS)} "
          f"({args.width}x{args.height}, seed {args.seed}) in {elapsed:.1f} s")
    for class_name in args.classes:
        print(f"  {class_name:16s} {per_class[class_name]} videos")
    print(f"Total duration {total_sec / 60:.1f} min; {with_silent} videos show a silent object; "
          f"list in {os.path.join(args.out, 'videos.json')}")


if __name__ == "__main__":
    main()
