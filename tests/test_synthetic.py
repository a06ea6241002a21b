"""Tests for the synthetic MUSIC generator: files, streams, boxes, determinism, and the ways the
data is hard (chords, rests, reverb, levels, noise, distractors, detector errors)."""

import json
import os
import re

import av
import numpy as np
import pytest

import synthetic
from dataset import layout
from scripts import make_synthetic_music
from synthetic import audio, detections, props, voices

# cello (id 2) and flute (id 5) get a silent instrument in video 1; trumpet (id 7) in none.
CLASSES = ["cello", "flute", "trumpet"]
ARGS = dict(
    classes=CLASSES, videos_per_class=2, seed=5, min_sec=3.0, max_sec=4.0, width=128, height=96
)
RATE = layout.AUDIO_RATE


def _generate(root):
    make_synthetic_music.main(
        [
            "--out",
            str(root),
            "--classes",
            *CLASSES,
            "--videos-per-class",
            "2",
            "--seed",
            "5",
            "--min-sec",
            "3",
            "--max-sec",
            "4",
            "--width",
            "128",
            "--height",
            "96",
            "--workers",
            "1",
        ]
    )
    return root


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    return _generate(tmp_path_factory.mktemp("synthetic"))


def _read(path):
    with open(path) as f:
        return f.read()


def _annotations(root):
    listing = json.loads(_read(os.path.join(root, "videos.json")))
    return {
        (c, v): json.loads(_read(layout.annotation_path(str(root), c, v)))
        for c, ids in listing["videos"].items()
        for v in ids
    }


def _decode_audio(path):
    with av.open(path) as container:
        return np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)


def _decode_first_frame(path):
    with av.open(path) as container:
        return next(container.decode(video=0)).to_ndarray(format="rgb24")


def test_listing_and_files(dataset_root):
    listing = json.loads(_read(os.path.join(dataset_root, "videos.json")))
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
    assert not any(
        name.endswith(".partial") for _, _, files in os.walk(dataset_root) for name in files
    )


def test_mp4_has_h264_video_and_aac_audio_matching_annotation(dataset_root):
    for (c, v), note in _annotations(dataset_root).items():
        with av.open(os.path.join(dataset_root, "videos", c, v + ".mp4")) as container:
            video, sound = container.streams.video[0], container.streams.audio[0]
            assert video.codec_context.name == "h264" and sound.codec_context.name == "aac"
            assert (video.width, video.height) == (note["width"], note["height"]) == (128, 96)
            assert float(video.average_rate) == note["fps"]
            assert sound.rate in (22050, 44100) and sound.rate == note["audio_rate"]
            assert sound.channels == note["audio_channels"]
            frames = list(container.decode(video=0))
        assert len(frames) == note["num_video_frames"]
        assert note["duration"] == pytest.approx(note["num_video_frames"] / note["fps"])
        assert 3.0 - 1 / note["fps"] <= note["duration"] <= 4.0 + 1 / note["fps"]


def test_boxes_are_tight_and_inside_the_frame(dataset_root):
    annotations = _annotations(dataset_root)
    for plan in synthetic.plan_videos(**ARGS):
        note = annotations[(plan.class_name, plan.video_id)]
        scene = synthetic.make_scene(plan)
        background = np.asarray(scene.background, dtype=int)
        assert [o["class"] for o in note["objects"]] == [o.class_name for o in scene.objects]
        player = note["distractors"][0]
        assert player["kind"] == "player"
        for obj in note["objects"] + note["distractors"]:
            assert len(obj["boxes"]) == note["num_video_frames"]
            for x1, y1, x2, y2 in obj["boxes"]:
                assert 0 <= x1 < x2 <= 128 and 0 <= y1 < y2 <= 96
        for obj in note["objects"]:
            assert all(min(x2 - x1, y2 - y1) >= 0.2 * 96 for x1, y1, x2, y2 in obj["boxes"])
        for i in range(0, plan.num_frames, 7):
            picture, boxes, player_box = scene.render(float(i / plan.fps))
            assert boxes == [o["boxes"][i] for o in note["objects"]]
            assert player_box == player["boxes"][i]
            changed = np.abs(np.asarray(picture, dtype=int) - background).sum(axis=2) > 0
            inside = np.zeros_like(changed)
            for x1, y1, x2, y2 in boxes:
                inside[y1:y2, x1:x2] = True
                box = changed[y1:y2, x1:x2]
                # The instrument reaches every edge of its box, and fills a fair part of it.
                assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
                assert box.mean() > 0.1
            x1, y1, x2, y2 = player_box  # the arms, drawn over the instrument
            inside[y1:y2, x1:x2] = True
            assert not (changed & ~inside).any(), "pixels drawn outside the boxes"


def test_silent_instruments(dataset_root):
    with_silent = {
        key: note for key, note in _annotations(dataset_root).items() if len(note["objects"]) == 2
    }
    assert sorted(with_silent) == sorted(
        (p.class_name, p.video_id) for p in synthetic.plan_videos(**ARGS) if p.silent_class
    )
    assert len(with_silent) == 2
    for (c, _), note in with_silent.items():
        sounding, silent = note["objects"]
        assert sounding["class"] == c and sounding["sounding"] is True
        assert silent["class"] in CLASSES and silent["class"] != c and silent["sounding"] is False
        for (a1, b1, a2, b2), (c1, d1, c2, d2) in zip(sounding["boxes"], silent["boxes"]):
            assert min(a2, c2) <= max(a1, c1) or min(b2, d2) <= max(b1, d1), "objects overlap"


def test_distractors_player_and_static_clutter(dataset_root):
    kinds, player_moves = [], []
    for note in _annotations(dataset_root).values():
        player, *clutter = note["distractors"]
        assert player["kind"] == "player"
        player_moves.append(len({tuple(b) for b in player["boxes"]}) > 1)
        for item in clutter:
            assert item["kind"] in props.CLUTTER_KINDS
            assert len({tuple(b) for b in item["boxes"]}) == 1, "clutter does not move"
            kinds.append(item["kind"])
    assert len(kinds) >= 2 * len(_annotations(dataset_root)) and len(set(kinds)) >= 4
    assert any(player_moves), "the arms follow the swaying instrument"


def test_same_seed_same_data(dataset_root, tmp_path):
    again = _generate(tmp_path / "again")
    assert _read(os.path.join(again, "videos.json")) == _read(
        os.path.join(dataset_root, "videos.json")
    )
    first, second = _annotations(dataset_root), _annotations(again)
    assert first == second
    for c, v in list(first)[:2]:
        rel = os.path.join("videos", c, v + ".mp4")
        np.testing.assert_allclose(
            _decode_audio(os.path.join(again, rel)),
            _decode_audio(os.path.join(dataset_root, rel)),
            atol=1e-4,
        )
        np.testing.assert_array_equal(
            _decode_first_frame(os.path.join(again, rel)),
            _decode_first_frame(os.path.join(dataset_root, rel)),
        )
    other = synthetic.plan_videos(**{**ARGS, "seed": 6})
    assert {p.video_id for p in other}.isdisjoint(v for _, v in first)


def test_container_audio_is_deterministic_and_shaped():
    plan = synthetic.plan_videos(**{**ARGS, "classes": ["flute"], "videos_per_class": 1})[0]
    track = synthetic.container_audio(plan)
    assert track.shape == (plan.audio_channels, round(plan.duration * plan.audio_rate))
    assert track.tobytes() == synthetic.container_audio(plan).tobytes()
    mono = synthetic.synthesize_audio("flute", plan.duration, plan.rng(2))
    assert mono.dtype == np.float32 and len(mono) == round(plan.duration * RATE)
    assert (
        mono.tobytes() == synthetic.synthesize_audio("flute", plan.duration, plan.rng(2)).tobytes()
    )


def test_every_class_has_a_voice_and_a_look():
    assert set(synthetic.VOICES) == set(layout.MUSIC_CLASSES) == set(synthetic.LOOKS)
    assert set(synthetic.DEFAULT_CLASSES) <= set(layout.MUSIC_CLASSES)


# ----------------------------------------------------------------------------------------------
# Sound


def _harmonic_levels(signal, f0, ratios):
    """Level (dB, relative to the strongest) of the spectrum at f0 * ratio."""
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / RATE)
    levels = [spectrum[np.abs(freqs - f0 * r) < 0.03 * f0].max() for r in ratios]
    return 20 * np.log10(np.array(levels) / max(levels))


def _one_note(class_name, midi=69, seconds=1.0):
    """A dry note in the class's neutral timbre (no brightness or formant change)."""
    rng = np.random.default_rng(0)
    style = {**voices.draw_style(rng), "tilt": 0.0, "formant_shift": 1.0, "ring_sec": 0.8}
    return synthetic.render_score(
        class_name, [(0.0, seconds, midi, 0.8)], seconds, rng, style=style
    )


def test_timbres_differ_by_class():
    f0 = synthetic.midi_to_hz(69)
    clarinet = _harmonic_levels(_one_note("clarinet"), f0, [1, 2, 3, 4, 5])
    assert clarinet[1] < clarinet[2] - 15 and clarinet[3] < clarinet[4] - 10  # odd harmonics
    flute = _harmonic_levels(_one_note("flute"), f0, [1, 2, 3, 4])
    assert flute[0] == 0 and flute[2] < -15  # nearly a sine
    trumpet = _harmonic_levels(_one_note("trumpet"), f0, range(1, 9))
    assert np.argmax(trumpet) >= 1 and (trumpet > -20).sum() >= 5  # bright
    violin = _harmonic_levels(_one_note("violin"), f0, range(1, 9))
    assert (violin > -30).sum() >= 6  # rich
    xylophone = _harmonic_levels(_one_note("xylophone", 81), synthetic.midi_to_hz(81), [1, 2, 2.92])
    assert xylophone[2] > xylophone[1] + 15  # inharmonic
    guitar = _one_note("acoustic_guitar", 52)
    quarter = len(guitar) // 4
    assert np.abs(guitar[-quarter:]).max() < 0.3 * np.abs(guitar[:quarter]).max()  # plucked decay


def test_pitch_ranges_are_realistic_and_overlap():
    ranges = {c: (v.midi_low, v.midi_high) for c, v in synthetic.VOICES.items()}
    assert ranges["tuba"][0] < ranges["cello"][0] < ranges["violin"][0] < ranges["xylophone"][0]
    assert ranges["acoustic_guitar"][0] == 40 and ranges["violin"][0] == 55  # open strings
    for c, (low, high) in ranges.items():
        assert high - low >= 28, f"{c}: at least two and a half octaves"
        overlaps = [min(high, h) - max(low, lo) for other, (lo, h) in ranges.items() if other != c]
        assert sorted(overlaps)[-3] >= 12, f"{c}: shares an octave with at least three classes"


def test_videos_of_one_class_play_in_different_registers():
    voice = synthetic.VOICES["violin"]
    medians = [
        np.median([n[2] for n in synthetic.compose(voice, 20.0, np.random.default_rng(s))])
        for s in range(8)
    ]
    assert max(medians) - min(medians) >= 8


def test_phrases_have_rests_and_dynamics():
    voice = synthetic.VOICES["flute"]
    score = synthetic.compose(voice, 60.0, np.random.default_rng(3))
    ends = np.array([onset + length for onset, length, _, _ in score])
    onsets = np.array([onset for onset, _, _, _ in score])
    gaps = onsets[1:] - np.maximum.accumulate(ends)[:-1]
    assert (gaps > 0.15).sum() >= 5 and gaps.max() > 0.8 and gaps.max() <= audio.REST_SEC[1] + 0.01
    velocities = np.array([v for *_, v in score])
    assert velocities.max() / velocities.min() > 2  # more than 6 dB of dynamics
    # Some 1 s windows of the recording are far quieter than the loudest: near-silent clips.
    recording = synthetic.synthesize_audio("flute", 60.0, np.random.default_rng(3))
    windows = recording[: 60 * RATE].reshape(60, RATE)
    rms_db = 10 * np.log10((windows**2).mean(axis=1) + 1e-20)
    assert rms_db.max() - rms_db.min() > 12


def _chords(score, window=0.15):
    """Groups of notes with different pitches starting within `window` s of each other."""
    onsets = sorted(score)
    groups, current = [], [onsets[0]]
    for note in onsets[1:]:
        if note[0] - current[0][0] < window:
            current.append(note)
        else:
            groups.append(current)
            current = [note]
    groups.append(current)
    return [g for g in groups if len({n[2] for n in g}) > 1]


def test_polyphonic_classes_play_chords():
    for class_name, share in (("acoustic_guitar", 0.3), ("accordion", 0.3), ("xylophone", 0.15)):
        score = synthetic.compose(synthetic.VOICES[class_name], 30.0, np.random.default_rng(1))
        assert len(_chords(score)) > share * len(score) / 4, class_name
    flute = synthetic.compose(synthetic.VOICES["flute"], 30.0, np.random.default_rng(1))
    assert not _chords(flute, window=0.01)
    # In the sound: a held C major triad shows all three fundamentals at once.
    triad = [(0.0, 1.0, 60, 0.8), (0.0, 1.0, 64, 0.8), (0.0, 1.0, 67, 0.8)]
    rng = np.random.default_rng(0)
    sound = synthetic.render_score("accordion", triad, 1.0, rng)
    spectrum = np.abs(np.fft.rfft(sound * np.hanning(len(sound))))
    freqs = np.fft.rfftfreq(len(sound), 1 / RATE)
    # C, E, G and the absent D: the strongest bin within a quarter tone of each.
    levels = np.array(
        [
            spectrum[np.abs(freqs - f) < 0.015 * f].max()
            for f in map(synthetic.midi_to_hz, (60, 64, 67, 62))
        ]
    )
    levels_db = 20 * np.log10(levels / levels.max())
    assert (levels_db[:3] > -12).all() and levels_db[3] < levels_db[:3].min() - 15


def test_room_reverb_leaves_a_tail_after_the_note():
    # A video whose room is reverberant and quiet enough to see the tail above the noise.
    melody = [(0.0, 1.5, 69, 0.9)]
    for seed in range(100):
        facts = {}
        wet = synthetic.synthesize_audio(
            "trumpet", 4.0, np.random.default_rng(seed), melody=melody, facts=facts
        )
        if facts["rt60_sec"] > 0.7 and facts["snr_db"] > 30:
            break

    def level(signal, start, stop):
        return 10 * np.log10(np.mean(signal[int(start * RATE) : int(stop * RATE)] ** 2) + 1e-20)

    held = level(wet, 0.5, 1.4)
    # The trumpet's own release is 43 dB down 0.07 s after the note; the room rings for longer.
    assert level(wet, 1.65, 1.8) > held - 35
    assert level(wet, 1.65, 1.8) > level(wet, 3.0, 4.0) + 6  # decays towards the noise floor
    dry = synthetic.render_score("trumpet", melody, 4.0, np.random.default_rng(0))
    assert level(dry, 1.65, 1.8) < level(dry, 0.5, 1.4) - 60


def test_room_impulse_response_decays_at_its_rt60():
    for seed in range(5):
        response, rt60 = synthetic.room_impulse_response(RATE, np.random.default_rng(seed))
        assert audio.RT60_SEC[0] <= rt60 <= audio.RT60_SEC[1] and response[0] >= 1.0
        energy = np.cumsum((response[1:] ** 2)[::-1])[::-1]  # Schroeder integral
        decay_db = 10 * np.log10(energy / energy[0])
        at_half = decay_db[int(rt60 / 2 * RATE)]  # -30 dB at RT60 / 2
        assert -40 < at_half < -20


def test_levels_and_noise_differ_across_videos():
    facts = []
    peaks = []
    for seed in range(16):
        f = {}
        peaks.append(
            np.abs(
                synthetic.synthesize_audio("cello", 3.0, np.random.default_rng(seed), facts=f)
            ).max()
        )
        facts.append(f)
    peaks_db = 20 * np.log10(peaks)
    assert peaks_db.max() - peaks_db.min() > 10 and max(peaks) < 1.0
    snrs = [f["snr_db"] for f in facts]
    assert min(snrs) >= audio.SNR_DB[0] and max(snrs) <= audio.SNR_DB[1]
    assert max(snrs) - min(snrs) > 10


# ----------------------------------------------------------------------------------------------
# Detector errors on the annotations


def _annotation_with_distractors(frames=4000):
    return {
        "fps": 1,
        "width": 200,
        "height": 100,
        "num_video_frames": frames,
        "objects": [
            {"class": "cello", "sounding": True, "boxes": [[10, 10, 60, 60]] * frames},
            {"class": "flute", "sounding": False, "boxes": [[70, 50, 100, 100]] * frames},
        ],
        "distractors": [
            {"kind": "player", "boxes": [[120, 0, 160, 100]] * frames},
            {"kind": "lamp", "boxes": [[170, 10, 190, 90]] * frames},
        ],
    }


def test_annotation_rows_jitter_misses_and_false_positives_at_their_rates():
    annotation = _annotation_with_distractors()
    frame_ids = list(range(1, 4001))

    def rows(seed):
        return detections.annotation_rows(
            annotation,
            frame_ids,
            (200, 100),
            np.random.default_rng(seed),
            0.02,
            jitter=0.03,
            object_miss_rate=0.05,
            false_positive_rate=0.15,
        )

    a = rows(0)
    assert np.array_equal(a, rows(0)) and not np.array_equal(a, rows(1))
    frames_seen = len(np.unique(a[:, 0]))
    kept = 1 - 0.02
    # Frames with no row at all: missed as a whole, or every object missed and no false positive.
    assert frames_seen / len(frame_ids) == pytest.approx(kept, abs=0.01)
    cello = a[a[:, 1] == layout.detection_class_id("cello")]
    on_cello = cello[cello[:, 3] < 40]  # false positives sit at x >= 120
    assert len(on_cello) / (kept * len(frame_ids)) == pytest.approx(0.95, abs=0.015)
    # Jitter: each edge moves by about 3% of the box's size (50 px).
    assert np.std(on_cello[:, 3:], axis=0) == pytest.approx([1.5] * 4, rel=0.15)
    fake = a[a[:, 3] >= 110]
    assert len(fake) / (kept * len(frame_ids)) == pytest.approx(0.15, abs=0.02)
    assert set(np.unique(fake[:, 1])) <= {
        layout.detection_class_id(c) for c in layout.MUSIC_CLASSES
    }
    assert len(np.unique(fake[:, 1])) >= 8
    player = fake[fake[:, 3] < 150]
    assert 0.3 < len(player) / len(fake) < 0.7
    # A false positive sometimes outranks the sounding object: about a sixth of the time.
    sounding_score = dict(zip(on_cello[:, 0], on_cello[:, 2]))
    beats = [
        score > sounding_score[k] for k, score in zip(fake[:, 0], fake[:, 2]) if k in sounding_score
    ]
    assert 0.1 < np.mean(beats) < 0.25


def test_annotation_rows_default_to_the_exact_boxes():
    annotation = _annotation_with_distractors(50)
    a = detections.annotation_rows(
        annotation, list(range(1, 51)), (200, 100), np.random.default_rng(0), 0.0
    )
    assert len(a) == 100 and set(map(tuple, a[:, 3:].tolist())) == {
        (10, 10, 60, 60),
        (70, 50, 100, 100),
    }


def test_bad_arguments_are_rejected(tmp_path):
    with pytest.raises(SystemExit):
        make_synthetic_music.main(["--out", str(tmp_path), "--classes", "banjo"])
    with pytest.raises(SystemExit):
        make_synthetic_music.main(["--out", str(tmp_path), "--width", "255"])
    with pytest.raises(SystemExit):
        make_synthetic_music.main(["--out", str(tmp_path), "--min-sec", "10", "--max-sec", "5"])


# ------------------------------------------------------------- preparing a root (prepare_root)


def _prepare(root, **kw):
    settings = dict(ARGS, workers=1)
    return make_synthetic_music.prepare_root(str(root), **{**settings, **kw})


def _holding_data(root, lists=None, detections=True):
    """A root with one wav, the index files `lists` (default all) and, with `detections`, one
    detection file: files that preparing it must leave as they are."""
    lists = layout.LIST_FILES.values() if lists is None else lists
    files = [os.path.join(layout.AUDIO, "cello", "a.wav"), *lists]
    if detections:
        files.append(os.path.join(layout.DETECTIONS, "cello", "a.mp4.npy"))
    for name in files:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return {name: (root / name).read_text() for name in files}


def test_prepare_never_writes_over_a_root_holding_data(tmp_path):
    before = _holding_data(tmp_path)
    assert _prepare(tmp_path) == []
    assert {name: (tmp_path / name).read_text() for name in before} == before
    assert sorted(os.listdir(tmp_path)) == sorted({name.split(os.sep)[0] for name in before})


def test_prepare_refuses_a_root_with_some_index_files(tmp_path):
    _holding_data(tmp_path, lists=("train.csv", "test.csv"))
    with pytest.raises(SystemExit, match="lacks val.csv, test_sep.csv"):
        _prepare(tmp_path)


def test_prepare_needs_detections_or_annotations(tmp_path):
    _holding_data(tmp_path, detections=False)
    with pytest.raises(SystemExit, match="detection_results is missing"):
        _prepare(tmp_path)
