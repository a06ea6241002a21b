"""Tests for the synthetic MUSIC generator: files, streams, boxes, determinism and timbres."""
import json
import os
import re
import sys

import av
import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import layout  # noqa: E402
from scripts import make_synthetic_music as synth  # noqa: E402

# cello (id 2) and flute (id 5) get a silent object in video 1; trumpet (id 7) in none.
CLASSES = ["cello", "flute", "trumpet"]
ARGS = dict(classes=CLASSES, videos_per_class=2, seed=5, min_sec=3.0, max_sec=4.0, width=128,
            height=96)


def _generate(root):
    synth.main(["--out", str(root), "--classes", *CLASSES, "--videos-per-class", "2",
                "--seed", "5", "--min-sec", "3", "--max-sec", "4", "--width", "128",
                "--height", "96", "--workers", "1"])
    return root


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("synthetic"))


def _annotations(root):
    listing = json.load(open(os.path.join(root, "videos.json")))
    return {(c, v): json.load(open(layout.annotation_path(str(root), c, v)))
            for c, ids in listing["videos"].items() for v in ids}


def _decode_audio(path):
    with av.open(path) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def _decode_first_frame(path):
    with av.open(path) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_listing_and_files(dataset_root):
    listing = json.load(open(os.path.join(dataset_root, "videos.json")))
    assert listing["version"] == 1.0
    assert list(listing["videos"]) == CLASSES
    ids = [v for c in CLASSES for v in listing["videos"][c]]
    assert all(len(listing["videos"][c]) == 2 for c in CLASSES)
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{11}", v) for v in ids)
    for c in CLASSES:
        for v in listing["videos"][c]:
            assert os.path.isfile(os.path.join(dataset_root, "videos", c, v + ".mp4"))
            assert os.path.isfile(layout.annotation_path(str(dataset_root), c, v))
    assert not any(name.endswith(".partial")
                   for _, _, files in os.walk(dataset_root) for name in files)


def test_mp4_has_h264_video_and_aac_audio_matching_annotation(dataset_root):
    for (c, v), note in _annotations(dataset_root).items():
        with av.open(os.path.join(dataset_root, "videos", c, v + ".mp4")) as container:
            video, audio = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264" and audio.codec_context.name == "aac"
            assert (video.width, video.height) == (note["width"], note["height"]) == (128, 96)
            assert float(video.average_rate) == note["fps"]
            assert audio.rate in (22050, 44100) and audio.rate == note["audio_rate"]
            assert audio.channels == note["audio_channels"]
            frames = list(container.decode(video=0))
        assert len(frames) == note["num_video_frames"]
        assert note["duration"] == pytest.approx(note["num_video_frames"] / note["fps"])
        assert 3.0 - 1 / note["fps"] <= note["duration"] <= 4.0 + 1 / note["fps"]


def test_boxes_are_tight_and_inside_the_frame(dataset_root):
    annotations = _annotations(dataset_root)
    for plan in synth.plan_videos(**ARGS):
        note = annotations[(plan.class_name, plan.video_id)]
        scene = synth.Scene(plan)
        background = np.asarray(scene.background, dtype=int)
        assert [o["class"] for o in note["objects"]] == [o.class_name for o in scene.objects]
        for obj in note["objects"]:
            assert len(obj["boxes"]) == note["num_video_frames"]
            for x1, y1, x2, y2 in obj["boxes"]:
                assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
                assert min(x2 - x1, y2 - y1) >= 0.2 * 96
        for i in range(0, plan.num_frames, 7):
            picture, boxes = scene.render(float(i / plan.fps))
            assert boxes == [o["boxes"][i] for o in note["objects"]]
            changed = np.abs(np.asarray(picture, dtype=int) - background).sum(axis=2) > 0
            inside = np.zeros_like(changed)
            for x1, y1, x2, y2 in boxes:
                inside[y1:y2, x1:x2] = True
                box = changed[y1:y2, x1:x2]
                # The object reaches every edge of its box, and fills a fair part of it.
                assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
                assert box.mean() > 0.1
            assert not (changed & ~inside).any(), "object pixels outside the boxes"


def test_silent_objects(dataset_root):
    with_silent = {key: note for key, note in _annotations(dataset_root).items()
                   if len(note["objects"]) == 2}
    assert sorted(with_silent) == sorted(
        (p.class_name, p.video_id) for p in synth.plan_videos(**ARGS) if p.silent_class)
    assert len(with_silent) == 2
    for (c, _), note in with_silent.items():
        sounding, silent = note["objects"]
        assert sounding["class"] == c and sounding["sounding"] is True
        assert silent["class"] in CLASSES and silent["class"] != c and silent["sounding"] is False
        for (a1, b1, a2, b2), (c1, d1, c2, d2) in zip(sounding["boxes"], silent["boxes"]):
            assert min(a2, c2) <= max(a1, c1) or min(b2, d2) <= max(b1, d1), "objects overlap"


def test_same_seed_same_data(dataset_root, tmp_path):
    again = _generate(tmp_path / "again")
    assert open(os.path.join(again, "videos.json")).read() == \
        open(os.path.join(dataset_root, "videos.json")).read()
    first, second = _annotations(dataset_root), _annotations(again)
    assert first == second
    for c, v in list(first)[:2]:
        rel = os.path.join("videos", c, v + ".mp4")
        np.testing.assert_allclose(_decode_audio(os.path.join(again, rel)),
                                   _decode_audio(os.path.join(dataset_root, rel)), atol=1e-4)
        np.testing.assert_array_equal(_decode_first_frame(os.path.join(again, rel)),
                                      _decode_first_frame(os.path.join(dataset_root, rel)))
    other = synth.plan_videos(**{**ARGS, "seed": 6})
    assert {p.video_id for p in other}.isdisjoint(v for _, v in first)


def test_audio_track_is_the_class_melody():
    plan = synth.plan_videos(**{**ARGS, "classes": ["flute"], "videos_per_class": 1})[0]
    track = synth.container_audio(plan)
    assert track.shape == (plan.audio_channels, round(plan.duration * plan.audio_rate))
    mono = synth.synthesize_audio("flute", plan.duration, plan.rng(2))
    assert np.abs(mono).max() == pytest.approx(synth.AUDIO_PEAK, abs=0.01)
    assert mono.dtype == np.float32 and len(mono) == round(plan.duration * layout.AUDIO_RATE)


def test_every_class_has_a_voice_and_a_look():
    assert set(synth.VOICES) == set(layout.MUSIC_CLASSES) == set(synth.LOOKS)
    assert set(synth.DEFAULT_CLASSES) <= set(layout.MUSIC_CLASSES)


def _harmonic_levels(signal, f0, ratios):
    """Level (dB, relative to the strongest) of the spectrum at f0 * ratio."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / layout.AUDIO_RATE)
    levels = [spectrum[np.abs(freqs - f0 * r) < 0.03 * f0].max() for r in ratios]
    return 20 * np.log10(np.array(levels) / max(levels))


def _one_note(class_name, midi=69, seconds=1.0):
    return synth.synthesize_audio(class_name, seconds, np.random.default_rng(0),
                                  melody=[(0.0, seconds, midi, 1.0)])


def test_timbres_differ_by_class():
    f0 = synth.midi_to_hz(69)
    clarinet = _harmonic_levels(_one_note("clarinet"), f0, [1, 2, 3, 4, 5])
    assert clarinet[1] < clarinet[2] - 15 and clarinet[3] < clarinet[4] - 10   # odd harmonics
    flute = _harmonic_levels(_one_note("flute"), f0, [1, 2, 3, 4])
    assert flute[0] == 0 and flute[2] < -15                                     # nearly a sine
    trumpet = _harmonic_levels(_one_note("trumpet"), f0, range(1, 9))
    assert np.argmax(trumpet) >= 1 and (trumpet > -20).sum() >= 5               # bright
    violin = _harmonic_levels(_one_note("violin"), f0, range(1, 9))
    assert (violin > -30).sum() >= 6                                            # rich
    xylophone = _harmonic_levels(_one_note("xylophone", 81), synth.midi_to_hz(81), [1, 2, 2.92])
    assert xylophone[2] > xylophone[1] + 15                                     # inharmonic
    guitar = _one_note("acoustic_guitar", 52)
    quarter = len(guitar) // 4
    assert np.abs(guitar[-quarter:]).max() < 0.3 * np.abs(guitar[:quarter]).max()  # plucked decay


def test_pitch_ranges_put_classes_in_order():
    def centroid(class_name):
        audio = synth.synthesize_audio(class_name, 6.0, np.random.default_rng(1))
        spectrum = np.abs(np.fft.rfft(audio))
        freqs = np.fft.rfftfreq(len(audio), 1 / layout.AUDIO_RATE)
        return (spectrum * freqs).sum() / spectrum.sum()

    tuba, cello, violin = centroid("tuba"), centroid("cello"), centroid("violin")
    assert tuba < 400 < cello < violin
    for low, high in [("tuba", "cello"), ("cello", "violin"), ("clarinet", "flute"),
                      ("violin", "xylophone")]:
        assert synth.VOICES[low].midi_high < synth.VOICES[high].midi_high
        assert synth.VOICES[low].midi_low < synth.VOICES[high].midi_low


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path), "--classes", "banjo"])
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path), "--width", "255"])
    with pytest.raises(SystemExit):
        synth.main(["--out", str(tmp_path), "--min-sec", "10", "--max-sec", "5"])
