"""The sound of one video: a composed score of phrases and chords, played in a reverberant room."""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from dataset import layout

from .voices import VOICES, Note, Voice, band_noise, draw_style, midi_to_hz

AUDIO_PEAK = 0.5  # the peak of a recording at level 0 dB
LEVEL_DB = (-14.0, 4.0)  # per-video recording level around AUDIO_PEAK: loud and quiet videos
SNR_DB = (15.0, 40.0)  # per-video room tone and hiss, relative to the music's RMS
RT60_SEC = (0.2, 1.2)  # per-video reverberation time (60 dB decay) of the room
DRR_DB = (-3.0, 9.0)  # per-video direct-to-reverberant energy ratio (microphone distance)
HUM_PROB = 0.3  # share of videos with mains hum (50 or 60 Hz and its harmonics)
REST_SEC = (0.15, 1.5)  # silence between phrases, so some clips are near-silent
PHRASE_SEC = (1.5, 8.0)

# Chord shapes in semitones above the root. Triads (guitar, accordion) and two-note intervals
# (two mallets, a double stop on a bowed string).
TRIADS = ((0, 4, 7), (0, 3, 7), (0, 4, 7, 12), (0, 3, 7, 10), (0, 4, 7, 10), (0, 7, 12))
DYADS = ((0, 3), (0, 4), (0, 5), (0, 7), (0, 8), (0, 9), (0, 12))
STEPS = np.array([-7, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 7])
STEP_PROB = np.array([1, 2, 3, 4, 6, 6, 3, 6, 6, 4, 3, 2, 1], dtype=float)
STEP_PROB /= STEP_PROB.sum()


def _chord(voice: Voice, root: int, high: int, rng: np.random.Generator) -> list[int]:
    """Pitches of a chord on `root`, dropped by octaves until its top fits under `high`."""
    shapes = TRIADS if voice.chord == "triad" else DYADS
    pitches = [root + step for step in shapes[rng.integers(len(shapes))]]
    while pitches[-1] > high and pitches[0] - 12 >= voice.midi_low:
        pitches = [p - 12 for p in pitches]
    return [p for p in pitches if p <= voice.midi_high]


def compose(voice: Voice, duration: float, rng: np.random.Generator) -> list[tuple]:
    """A score of phrases separated by rests: (onset s, length s, MIDI pitch, velocity) per note,
    chords as several notes with (nearly) the same onset.

    Each video plays in its own tempo and its own part of the class's range (a window of one to
    two octaves), so videos of one class differ in pitch as much as classes do. Each phrase swells
    or fades (up to 9 dB), and each note has its own velocity.
    """
    beat = 60.0 / rng.uniform(60, 150)
    width = min(voice.midi_high - voice.midi_low, int(rng.integers(12, 25)))
    low = int(rng.integers(voice.midi_low, voice.midi_high - width + 1))
    high = low + width
    legato = rng.uniform(0.6, 1.0)  # held part of each note: detached to smooth playing
    pitch = int(rng.integers(low, high + 1))
    notes = []
    start = rng.uniform(0.0, 1.0)
    while start < duration:
        end = min(start + rng.uniform(*PHRASE_SEC), duration)
        gain_from, gain_to = 10 ** (rng.uniform(-9, 0, 2) / 20)
        onset = start
        while onset < end:
            length = min(beat * rng.choice(voice.beats), duration - onset)
            gain = gain_from + (gain_to - gain_from) * (onset - start) / (end - start)
            velocity = gain * rng.uniform(0.6, 1.0)
            is_chord = rng.random() < voice.chord_prob
            pitches = _chord(voice, pitch, high, rng) if is_chord else [pitch]
            strum = rng.choice([-1, 1]) * voice.strum * rng.uniform(0.5, 1.5)
            order = range(len(pitches)) if strum >= 0 else range(len(pitches) - 1, -1, -1)
            for k, i in enumerate(order):
                # Inner chord notes a little softer, so a chord is not several times as loud.
                scale = 1.0 if i == 0 else 0.7
                notes.append(
                    (
                        onset + k * abs(strum),
                        max(0.02, legato * length - k * abs(strum)),
                        pitches[i],
                        velocity * scale,
                    )
                )
            onset += length
            pitch += int(rng.choice(STEPS, p=STEP_PROB))
            if pitch > high:  # reflect at the window's limits
                pitch = 2 * high - pitch
            if pitch < low:
                pitch = 2 * low - pitch
            pitch = int(np.clip(pitch, low, high))
        start = onset + rng.uniform(*REST_SEC)
    return notes


def render_score(
    class_name: str,
    score,
    duration: float,
    rng: np.random.Generator,
    rate: int = layout.AUDIO_RATE,
    style: dict | None = None,
) -> np.ndarray:
    """The dry (anechoic) performance of `score`: float32 (samples,), `duration` s, peak 1."""
    voice = VOICES[class_name]
    style = style or draw_style(rng)
    n_total = round(duration * rate)
    tail = int(voice.tail_sec * rate)
    out = np.zeros(n_total + tail, dtype=np.float32)
    # One noise track per video, sliced per note: far cheaper than filtering noise per note.
    noise = (
        np.zeros(len(out), np.float32)
        if voice.noise_band is None
        else band_noise(len(out), rate, *voice.noise_band, rng)
    )
    prev_f0 = None
    for onset, length, pitch, velocity in score:
        start = int(onset * rate)
        if start >= n_total:
            continue
        n = min(int(length * rate) + tail, len(out) - start)
        note = Note(
            midi_to_hz(pitch),
            velocity,
            max(1, min(int(length * rate), n)),
            n,
            rate,
            rng,
            style,
            prev_f0,
            noise[start : start + n],
        )
        out[start : start + n] += velocity * voice.render(voice.params, note)
        prev_f0 = note.f0
    out = out[:n_total]
    return out / (np.abs(out).max() + 1e-9)


def room_impulse_response(rate: int, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A synthetic room: direct path, sparse early reflections (3-40 ms) and a late tail of
    exponentially decaying noise whose highs die sooner (air and wall absorption).
    Returns the float32 (taps,) response with its direct path at 1, and its RT60 in s."""
    rt60 = rng.uniform(*RT60_SEC)
    n = int(1.1 * rt60 * rate)
    t = np.arange(n) / rate
    noise = rng.standard_normal(n)
    lows = sosfilt(butter(2, rng.uniform(1000, 3000), fs=rate, output="sos"), noise)
    highs = noise - lows
    # 6.91 = ln(1000): amplitude down by 60 dB at rt60.
    late = lows * np.exp(-6.91 * t / rt60) + highs * np.exp(
        -6.91 * t / (rt60 * rng.uniform(0.35, 0.7))
    )
    late *= np.clip((t - rng.uniform(0.005, 0.02)) / 0.01, 0, 1)  # the tail builds up after a gap
    early = np.zeros(n)
    delays = (rng.uniform(0.003, 0.04, rng.integers(4, 11)) * rate).astype(int)
    early[delays] = (
        rng.choice([-1, 1], len(delays))
        * rng.uniform(0.2, 0.7, len(delays))
        * np.exp(-delays / rate / 0.03)
    )
    reverberant = early + late
    drr = 10 ** (rng.uniform(*DRR_DB) / 10)
    reverberant *= np.sqrt(1.0 / (drr * (reverberant**2).sum()))
    reverberant[0] += 1.0
    return reverberant.astype(np.float32), float(rt60)


def room_noise(n: int, rate: int, rng: np.random.Generator) -> np.ndarray:
    """Room tone (low rumble), microphone hiss and sometimes mains hum, float32 (n,), RMS 1."""
    tone = sosfilt(butter(1, rng.uniform(150, 800), fs=rate, output="sos"), rng.standard_normal(n))
    tone /= tone.std() + 1e-12
    hiss = rng.standard_normal(n)
    mix = rng.uniform(0.3, 1.0) * tone + rng.uniform(0.1, 0.6) * hiss
    if rng.random() < HUM_PROB:
        t = np.arange(n) / rate
        mains = rng.choice([50.0, 60.0])
        mix += rng.uniform(0.3, 1.5) * sum(
            np.sin(2 * np.pi * k * mains * t + rng.uniform(0, 6.3)) / k for k in (1, 2, 3)
        )
    return (mix / (mix.std() + 1e-12)).astype(np.float32)


def synthesize_audio(
    class_name: str,
    duration: float,
    rng: np.random.Generator,
    rate: int = layout.AUDIO_RATE,
    melody=None,
    facts: dict | None = None,
) -> np.ndarray:
    """A mono recording of `class_name` playing in a room: float32 (samples,), `duration` s.

    `melody` lists notes as (onset s, length s, MIDI pitch, velocity); by default a composed
    score. The dry performance is reverberated, given room noise at a per-video SNR and recorded
    at a per-video level (so peaks differ across videos by up to LEVEL_DB). `facts`, if given,
    receives the drawn room and level, for the annotation.
    """
    voice = VOICES[class_name]
    style = draw_style(rng)
    score = compose(voice, duration, rng) if melody is None else melody
    dry = render_score(class_name, score, duration, rng, rate, style)
    response, rt60 = room_impulse_response(rate, rng)
    wet = fftconvolve(dry, response)[: len(dry)]
    snr_db = rng.uniform(*SNR_DB)
    signal_rms = np.sqrt(np.mean(wet**2)) + 1e-12
    wet += signal_rms * 10 ** (-snr_db / 20) * room_noise(len(wet), rate, rng)
    level_db = rng.uniform(*LEVEL_DB)
    out = (wet * AUDIO_PEAK * 10 ** (level_db / 20) / (np.abs(wet).max() + 1e-9)).astype(np.float32)
    if facts is not None:
        facts.update(
            rt60_sec=round(rt60, 3),
            snr_db=round(float(snr_db), 2),
            level_db=round(float(level_db), 2),
            notes=len(score),
        )
    return out
