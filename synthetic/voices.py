"""How each instrument class sounds: note renderers, their per-video styles and the VOICES table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69) / 12)


def draw_style(rng: np.random.Generator) -> dict:
    """Per-video variations of a class timbre: a different instrument, player and microphone.

    tilt: spectral slope added to the partials (brightness); formant_shift: body resonances
    scaled in frequency (a bigger or smaller instrument); attack_scale: how hard notes start.
    """
    return dict(
        tilt=rng.uniform(-0.3, 0.3),
        formant_shift=rng.uniform(0.85, 1.18),
        attack_scale=rng.uniform(0.6, 1.7),
        vibrato=rng.uniform(0.5, 1.5),
        vibrato_hz=rng.uniform(4.5, 6.8),
        pluck_position=rng.uniform(0.08, 0.25),
        ring_sec=rng.uniform(0.5, 1.6),
        ring=rng.uniform(0.7, 1.5),
        detune=rng.uniform(3, 10),
    )


@dataclass
class Note:
    """What a renderer needs to synthesise one note (all lengths in samples)."""

    f0: float
    velocity: float  # 0..1; softer notes are also darker, as on real instruments
    n_on: int  # samples while the note is held
    n: int  # n_on plus the release tail
    rate: int
    rng: np.random.Generator
    style: dict  # see draw_style
    prev_f0: float | None  # the previous note's pitch, for glides
    noise: np.ndarray  # (n,) the class's band-limited noise at this note's position

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.n) / self.rate

    @property
    def tilt(self) -> float:
        return self.style["tilt"] + 0.4 * (self.velocity - 0.8)


def _formant_gain(freqs: np.ndarray, formants, shift: float = 1.0) -> np.ndarray:
    """1 + sum of Gaussian bumps (centre Hz, width Hz, gain): a crude body/bore resonance."""
    gain = np.ones_like(freqs, dtype=float)
    for centre, width, height in formants:
        gain += height * np.exp(-0.5 * ((freqs - centre * shift) / (width * shift)) ** 2)
    return gain


def _envelope(note: Note, attack: float, release: float) -> np.ndarray:
    """Linear attack, a slight decay to the sustain level while held, then an exponential release
    that is down by 43 dB (e^-5) `release` s after the note ends."""
    env = np.ones(note.n, dtype=np.float32)
    n_attack = max(1, min(int(attack * note.style["attack_scale"] * note.rate), note.n_on))
    env[:n_attack] = np.linspace(0.0, 1.0, n_attack, endpoint=False)
    held = np.arange(note.n_on - n_attack) / note.rate
    env[n_attack : note.n_on] = 0.8 + 0.2 * np.exp(-held / 0.15)
    tail = np.arange(note.n - note.n_on) / note.rate
    env[note.n_on :] = env[note.n_on - 1] * np.exp(-tail / (release / 5))
    return env


def band_noise(n: int, rate: int, low: float, high: float, rng: np.random.Generator) -> np.ndarray:
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
    semitones = (
        depth
        * note.style["vibrato"]
        * np.clip(t / onset, 0, 1)
        * np.sin(2 * np.pi * note.style["vibrato_hz"] * t + note.rng.uniform(0, 2 * np.pi))
    )
    if glide and note.prev_f0 is not None:
        semitones += 12 * np.log2(note.prev_f0 / note.f0) * np.exp(-t / 0.03)
    return 2 * np.pi * np.cumsum(note.f0 * 2.0 ** (semitones / 12)) / note.rate


def _render_bowed(p: dict, note: Note) -> np.ndarray:
    """Sawtooth-like string with body formants, vibrato and bow noise (violin, cello, erhu)."""
    harmonics = np.arange(1, 31)
    amps = harmonics ** (-1.0 + note.tilt) * _formant_gain(
        harmonics * note.f0, p["formants"], note.style["formant_shift"]
    )
    phase = _vibrato_phase(note, p["vibrato"], 0.15, p.get("glide", False))
    tone = _sum_partials(phase, harmonics, amps / amps.max(), note) + p["noise"] * note.noise
    return tone * _envelope(note, p["attack"], 0.08)


def _render_wind(p: dict, note: Note) -> np.ndarray:
    """Fixed partial amplitudes (odd-only for the clarinet), breath noise, gentle vibrato."""
    harmonics = np.arange(1, len(p["amps"]) + 1)
    amps = (
        np.asarray(p["amps"])
        * harmonics**note.tilt
        * _formant_gain(harmonics * note.f0, p.get("formants", ()), note.style["formant_shift"])
    )
    phase = _vibrato_phase(note, p["vibrato"], 0.2)
    tone = _sum_partials(phase, harmonics, amps / amps.max(), note) + p["breath"] * note.noise
    return tone * _envelope(note, p["attack"], 0.06)


def _render_brass(p: dict, note: Note) -> np.ndarray:
    """Spectrum peaking at a few harmonics; higher partials speak later, the brass "blat"."""
    harmonics = np.arange(1, p["max_harmonic"] + 1)
    amps = (harmonics ** (p["rise"] + note.tilt)) * np.exp(-harmonics / p["rolloff"])
    amps /= amps.max()
    phase = _vibrato_phase(note, p["vibrato"], 0.25)
    t = note.t
    attack = p["attack"] * note.style["attack_scale"]
    out = np.zeros(note.n, dtype=np.float32)
    for h, amp in zip(harmonics, amps):
        if h * note.f0 >= 0.45 * note.rate:
            break
        onset = np.clip(t / (attack * (1 + 0.35 * h)), 0, 1).astype(np.float32)
        argument = (h * phase + note.rng.uniform(0, 2 * np.pi)).astype(np.float32)
        out += amp * onset * np.sin(argument)
    out /= np.abs(out).max() + 1e-9
    return out * _envelope(note, 0.005, 0.07)


def _render_plucked(p: dict, note: Note) -> np.ndarray:
    """Plucked stiff string: pluck-position comb, faster decay of higher partials (guitar)."""
    harmonics = np.arange(1, 25)
    amps = np.abs(np.sin(harmonics * np.pi * note.style["pluck_position"])) / harmonics ** (
        1.2 - note.tilt
    )
    ratios = harmonics * np.sqrt(1 + 2e-4 * harmonics**2)
    decays = note.style["ring_sec"] / (1 + 0.5 * (harmonics - 1))
    tone = _sum_partials(2 * np.pi * note.f0 * note.t, ratios, amps / amps.max(), note, decays)
    n_attack = int(0.002 * note.rate)
    tone[:n_attack] *= np.linspace(0, 1, n_attack)
    tone[note.n_on :] *= np.exp(-np.arange(note.n - note.n_on) / (0.06 * note.rate))  # damped
    return tone


def _render_struck(p: dict, note: Note) -> np.ndarray:
    """Struck bar: a few inharmonic, fast-decaying partials plus a mallet click (xylophone)."""
    decays = np.asarray(p["decays"]) * note.style["ring"]
    tone = _sum_partials(2 * np.pi * note.f0 * note.t, p["ratios"], p["amps"], note, decays)
    n_click = int(0.004 * note.rate)
    tone[:n_click] += 0.3 * note.noise[:n_click] * np.linspace(1, 0, n_click)
    return tone


def _render_reed(p: dict, note: Note) -> np.ndarray:
    """Two free reeds a few cents apart (the accordion's beating); chords come from the score."""
    harmonics = np.arange(1, 21)
    amps = harmonics ** (-0.8 + note.tilt)
    out = np.zeros(note.n, dtype=np.float32)
    for cents in (-note.style["detune"], note.style["detune"]):
        phase = 2 * np.pi * note.f0 * 2 ** (cents / 1200) * note.t
        out += _sum_partials(phase, harmonics, amps, note)
    out /= np.abs(out).max() + 1e-9
    return out * _envelope(note, 0.03, 0.06)


@dataclass(frozen=True)
class Voice:
    """How one class sounds and plays.

    midi_low..midi_high: the instrument's usual range (MIDI), overlapping its neighbours' by an
    octave or more, as real ranges do. beats: note lengths in beats the player picks from.
    chord_prob: chance that a note is a chord (several pitches together); chord: 'triad' or
    'dyad' (two mallets, a double stop); strum: s between the strings of a strummed chord.
    tail_sec: release tail; noise_band: Hz of its noise component (None: no noise).
    """

    midi_low: int
    midi_high: int
    beats: tuple[float, ...]
    chord_prob: float
    chord: str
    strum: float
    tail_sec: float
    noise_band: tuple[float, float] | None
    render: Callable[[dict, Note], np.ndarray]
    params: dict


_SHORT = (0.5, 0.5, 1.0, 1.0, 1.0, 1.5, 2.0)  # eighths to halves
_LONG = (1.0, 1.0, 2.0, 2.0, 3.0, 4.0)  # quarters to whole notes
VOICES = {
    "tuba": Voice(
        28,
        58,
        _LONG,
        0.0,
        "dyad",
        0.0,
        0.1,
        None,
        _render_brass,
        dict(max_harmonic=12, rise=0.6, rolloff=1.6, attack=0.06, vibrato=0.0),
    ),
    "cello": Voice(
        36,
        76,
        _LONG,
        0.12,
        "dyad",
        0.0,
        0.1,
        (2000, 5000),
        _render_bowed,
        dict(formants=((250, 120, 1.5), (1200, 400, 0.8)), vibrato=0.25, attack=0.08, noise=0.02),
    ),
    "acoustic_guitar": Voice(40, 76, _SHORT, 0.5, "triad", 0.02, 0.15, None, _render_plucked, {}),
    "clarinet": Voice(
        50,
        86,
        _SHORT,
        0.0,
        "dyad",
        0.0,
        0.08,
        (1000, 4000),
        _render_wind,
        dict(
            amps=[1 / h if h % 2 else 0.04 / h for h in range(1, 16)],
            vibrato=0.0,
            attack=0.025,
            breath=0.015,
        ),
    ),
    "trumpet": Voice(
        54,
        82,
        _SHORT,
        0.0,
        "dyad",
        0.0,
        0.08,
        None,
        _render_brass,
        dict(max_harmonic=20, rise=1.6, rolloff=2.2, attack=0.02, vibrato=0.05),
    ),
    "violin": Voice(
        55,
        93,
        _SHORT,
        0.05,
        "dyad",
        0.0,
        0.1,
        (2000, 5000),
        _render_bowed,
        dict(formants=((500, 200, 0.8), (2800, 800, 1.8)), vibrato=0.3, attack=0.05, noise=0.03),
    ),
    "flute": Voice(
        60,
        93,
        _SHORT,
        0.0,
        "dyad",
        0.0,
        0.08,
        (600, 4500),
        _render_wind,
        dict(amps=[1.0, 0.25, 0.1, 0.04], vibrato=0.12, attack=0.06, breath=0.1),
    ),
    "xylophone": Voice(
        65,
        96,
        (0.5, 0.5, 0.5, 1.0, 1.0),
        0.3,
        "dyad",
        0.0,
        0.4,
        (1500, 5000),
        _render_struck,
        dict(
            ratios=[1.0, 2.92, 5.97, 9.6],
            amps=[1.0, 0.45, 0.2, 0.08],
            decays=[0.3, 0.09, 0.04, 0.02],
        ),
    ),
    "saxophone": Voice(
        49,
        81,
        _SHORT,
        0.0,
        "dyad",
        0.0,
        0.08,
        (800, 4000),
        _render_wind,
        dict(
            amps=[h**-0.7 for h in range(1, 25)],
            vibrato=0.15,
            attack=0.04,
            breath=0.04,
            formants=((600, 200, 1.0), (1500, 600, 2.5)),
        ),
    ),
    "accordion": Voice(41, 84, _LONG, 0.5, "triad", 0.0, 0.08, None, _render_reed, {}),
    "erhu": Voice(
        62,
        93,
        _SHORT,
        0.0,
        "dyad",
        0.0,
        0.1,
        (2000, 5000),
        _render_bowed,
        dict(
            formants=((1000, 250, 3.0), (3000, 600, 1.0)),
            vibrato=0.55,
            attack=0.06,
            noise=0.04,
            glide=True,
        ),
    ),
}
