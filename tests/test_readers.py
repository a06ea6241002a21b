"""Readers: windowed audio reads (where a clip lies in its file) and the object box rules."""

import logging

import numpy as np
import pytest
import soundfile as sf

from dataset import DataError, layout
from dataset.readers import load_top_boxes, read_audio_window, top_boxes, video_boxes

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


def _rows(*rows):
    """Detection rows [frame, class, score, x1, y1, x2, y2]."""
    return np.array(rows, np.float32)


def test_frame_rule_takes_each_frames_top_box_video_rule_one_class():
    # class 5 (the played instrument) wins 3 frames; class 9 (a silent one) outscores it in
    # frame 2; class 3 is a false positive in frame 3; class 5 is missed in frame 4.
    dets = _rows(
        [1, 5, 0.9, 0, 0, 10, 10],
        [1, 9, 0.5, 20, 0, 30, 10],
        [2, 5, 0.7, 1, 0, 11, 10],
        [2, 9, 0.8, 20, 0, 30, 10],
        [3, 5, 0.9, 2, 0, 12, 10],
        [3, 3, 0.95, 40, 40, 50, 50],
        [4, 9, 0.6, 20, 0, 30, 10],
        [5, 5, 0.8, 4, 0, 14, 10],
    )
    frame_ids, boxes = top_boxes(dets)
    assert frame_ids.tolist() == [1, 2, 3, 4, 5]
    assert boxes[:, 0].tolist() == [0, 20, 40, 20, 4]  # the silent one and the false positive win
    frame_ids, boxes = video_boxes(dets, num_frames=6)
    assert frame_ids.tolist() == [1, 2, 3, 4, 5, 6]
    # class 5 in every frame; frames 4 and 6 take the nearest frame's box (4: frame 3 or 5 tie ->
    # the earlier one; 6: frame 5)
    assert boxes[:, 0].tolist() == [0, 1, 2, 2, 4, 4]


def test_load_top_boxes_by_rule(tmp_path):
    path = str(tmp_path / "d.npy")
    np.save(path, _rows([1, 5, 0.9, 0, 0, 10, 10], [2, 9, 0.95, 20, 0, 30, 10]))
    # class 9 scores more once, class 5 less once: the sums decide (0.95 > 0.9)
    assert load_top_boxes(path, 2, (64, 64))[1] == (0, 0, 10, 10)
    assert load_top_boxes(path, 2, (64, 64), "video") == {1: (20, 0, 30, 10), 2: (20, 0, 30, 10)}
    with pytest.raises(ValueError, match="box rule"):
        load_top_boxes(path, 2, (64, 64), "object")
