"""Windowed audio reads (dataset.readers.read_audio_window): where a clip lies in its file."""

import logging

import numpy as np
import pytest
import soundfile as sf

from dataset import DataError, layout
from dataset.readers import read_audio_window

RATE = layout.AUDIO_RATE
AUD_LEN = 4095  # odd, like the reference's 65535


def test_audio_window_is_shifted_inside_the_file(tmp_path):
    path = str(tmp_path / "a.wav")
    data = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * RATE)
    sf.write(path, data, RATE, subtype="PCM_16")
    full, _ = sf.read(path, dtype="float32")
    assert np.array_equal(read_audio_window(path, 0.1, AUD_LEN, RATE), full[:AUD_LEN])
    assert np.array_equal(read_audio_window(path, 2.9, AUD_LEN, RATE), full[-AUD_LEN:])
    mid = int(1.5 * RATE) - AUD_LEN // 2
    assert np.array_equal(read_audio_window(path, 1.5, AUD_LEN, RATE), full[mid : mid + AUD_LEN])


def test_audio_window_moves_at_most_one_clip(tmp_path):
    """Edge frames shift their clip by up to half a clip; beyond one clip the audio is too short."""
    path = str(tmp_path / "a.wav")
    sf.write(path, np.zeros(3 * RATE), RATE, subtype="PCM_16")
    read_audio_window(path, 3.0 + AUD_LEN / RATE / 2, AUD_LEN, RATE)  # a shift of one clip
    with pytest.raises(DataError, match="shorter than its frames") as err:
        read_audio_window(path, 3.0 + AUD_LEN / RATE, AUD_LEN, RATE)
    assert path in str(err.value)


def test_stereo_at_another_rate_is_averaged_and_resampled_with_one_warning(tmp_path, caplog):
    path = str(tmp_path / "s.wav")
    t = np.arange(3 * 22050) / 22050
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    sf.write(path, np.stack([tone, 0.5 * tone], 1), 22050, subtype="FLOAT")
    with caplog.at_level(logging.WARNING):
        clip = read_audio_window(path, 1.5, AUD_LEN, RATE)
        read_audio_window(path, 1.0, AUD_LEN, RATE)
    assert clip.shape == (AUD_LEN,) and clip.dtype == np.float32
    start = int(1.5 * 22050) - int(np.ceil(AUD_LEN * 2)) // 2
    expected = 0.75 * 0.5 * np.sin(2 * np.pi * 440 * (start / 22050 + np.arange(AUD_LEN) / RATE))
    assert np.abs(clip - expected)[200:-200].max() < 0.02
    assert sum("22050" in r.getMessage() for r in caplog.records) == 1
