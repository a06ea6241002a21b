"""Tests for frame/audio extraction and the MUSIC downloader's dry run."""

import json
import os
import subprocess
import sys
from fractions import Fraction
from math import floor

import av
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import synthetic  # noqa: E402
from dataset import layout  # noqa: E402
from scripts import download_music  # noqa: E402
from scripts import extract_frames_audio as extract

LISTS = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "music_lists"
)
TONE_HZ = 440.0


def write_indexed_video(
    path,
    fps,
    num_frames,
    video_start=0.0,
    audio_rate=22050,
    channels=1,
    audio_start=0.0,
    audio_sec=None,
):
    """An mp4 whose frame i shows i as two grey levels (left: i // 16, right: i % 16), with a
    440 Hz tone as audio (none if audio_rate is None). Streams may start later than 0."""
    fps = Fraction(fps)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with av.open(path, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        video.width, video.height, video.pix_fmt = 96, 64, "yuv420p"
        audio_layout = "mono" if channels == 1 else "stereo"
        if audio_rate is not None:  # every stream must exist before the first packet is muxed
            sound = container.add_stream("aac", rate=audio_rate, layout=audio_layout)
        for i in range(num_frames):
            pixels = np.empty((64, 96, 3), np.uint8)
            pixels[:, :48], pixels[:, 48:] = 16 * (i // 16) + 8, 16 * (i % 16) + 8
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = i + round(video_start * fps), 1 / fps
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio_rate is not None:
            seconds = num_frames / fps if audio_sec is None else audio_sec
            t = np.arange(round(seconds * audio_rate)) / audio_rate
            tone = np.tile(0.4 * np.sin(2 * np.pi * TONE_HZ * t), (channels, 1)).astype(np.float32)
            chunk = av.AudioFrame.from_ndarray(tone, format="fltp", layout=audio_layout)
            chunk.sample_rate, chunk.pts = audio_rate, round(audio_start * audio_rate)
            container.mux(sound.encode(chunk))
            container.mux(sound.encode())


def read_index(jpg_path):
    pixels = np.asarray(Image.open(jpg_path).convert("L"), dtype=float)
    left, right = pixels[8:-8, 8:40].mean(), pixels[8:-8, 56:88].mean()
    return 16 * round((left - 8) / 16) + round((right - 8) / 16)


# name: (fps, frames, video start, audio rate, channels, audio start)
VIDEOS = {
    "fps25": (25, 100, 0.0, 44100, 2, 0.0),  # 4.0 s
    "fps7_5": (Fraction(15, 2), 28, 0.0, 22050, 1, 0.0),  # 3.73 s: a final partial second
    "fps6": (6, 27, 0.0, 22050, 1, 0.0),  # frame starts fall exactly on k - 0.5 s
    "late_video": (25, 50, 1.0, 22050, 1, 0.0),  # video starts at 1 s, audio at 0
    "late_audio": (25, 75, 0.0, 22050, 1, 0.5),  # audio starts at 0.5 s
}


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("music"))
    for name, (fps, n, video_start, rate, channels, audio_start) in VIDEOS.items():
        write_indexed_video(
            os.path.join(root, "videos", "cello", name + ".mp4"),
            fps,
            n,
            video_start,
            rate,
            channels,
            audio_start,
        )
    assert extract.main(["--root", root, "--workers", "1"]) == 0
    return root


def frame_files(root, video_id, class_name="cello"):
    folder = layout.frames_dir(root, f"/{class_name}/{video_id}.mp4")
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))]


def test_video_frame_index():
    assert extract.video_frame_index(0.5, 6, 27) == 3  # exactly on a frame start
    assert extract.video_frame_index(0.5, 7.5, 28) == 3
    assert extract.video_frame_index(3.5, 7.5, 28) == 26
    assert extract.video_frame_index(9.5, 7.5, 28) == 27  # clipped to the last frame
    assert extract.video_frame_index(-1.0, 25, 10) == 0


@pytest.mark.parametrize("sample_format", ["s16", "s16p", "u8", "s32", "flt", "fltp", "dbl"])
def test_any_sample_format_reads_as_float(sample_format):
    ramp = np.linspace(-0.5, 0.5, 8, dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(np.stack([ramp, -ramp]), format="fltp", layout="stereo")
    frame.sample_rate = 8000
    resampler = av.AudioResampler(format=sample_format, layout="stereo", rate=8000)
    (converted,) = resampler.resample(frame)
    np.testing.assert_allclose(extract._to_float_channels(converted), [ramp, -ramp], atol=0.01)


@pytest.mark.parametrize("name", ["fps25", "fps7_5", "fps6"])
def test_frames_are_picked_by_timestamp(extracted, name):
    fps, n = VIDEOS[name][:2]
    files = frame_files(extracted, name)
    assert [os.path.basename(f) for f in files] == [
        layout.frame_name(k) for k in range(1, floor(n / fps) + 1)
    ]
    for k, path in enumerate(files, 1):
        assert read_index(path) == extract.video_frame_index(layout.frame_time(k), float(fps), n)
    assert Image.open(files[0]).size == (96, 64)


def test_late_streams_share_one_time_origin(extracted):
    # Video from 1 s to 3 s, audio from 0: frame 1 (0.5 s) repeats the first video frame.
    assert [read_index(f) for f in frame_files(extracted, "late_video")] == [0, 12, 37]
    # Audio from 0.5 s: the wav starts with 0.5 s of silence, in sync with the frames.
    audio, rate = sf.read(layout.audio_path(extracted, "/cello/late_audio.wav"))
    assert [read_index(f) for f in frame_files(extracted, "late_audio")] == [12, 37, 62]
    assert np.abs(audio[: int(0.45 * rate)]).max() < 0.01
    tone = audio[int(0.6 * rate) : int(3.4 * rate)]
    assert np.sqrt(np.mean(tone**2)) == pytest.approx(0.4 / np.sqrt(2), abs=0.02)


def test_audio_is_mono_11025_pcm16(extracted):
    for name, (fps, n, *_) in VIDEOS.items():
        path = layout.audio_path(extracted, f"/cello/{name}.wav")
        info = sf.info(path)
        assert (info.samplerate, info.channels, info.subtype) == (11025, 1, "PCM_16")
        if name != "late_audio":
            assert info.duration == pytest.approx(float(n / fps), abs=0.1)
    audio, rate = sf.read(layout.audio_path(extracted, "/cello/fps25.wav"))  # from 44.1 kHz stereo
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()] == pytest.approx(TONE_HZ, abs=2)
    assert np.abs(audio).max() == pytest.approx(0.4, abs=0.03)


def test_rerun_skips_finished_videos_and_redoes_unfinished_ones(extracted, capsys):
    # As if a run had been killed while writing this video: no wav, a leftover partial folder.
    wav = layout.audio_path(extracted, "/cello/fps6.wav")
    os.remove(wav)
    stale = os.path.join(extracted, "frames", "cello", ".fps6.mp4.partial")
    os.makedirs(stale)
    mtime = os.path.getmtime(frame_files(extracted, "fps25")[0])
    assert extract.main(["--root", extracted, "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert f"1 extracted, {len(VIDEOS) - 1} already done (skipped), 0 failed" in out
    assert os.path.isfile(wav) and not os.path.exists(stale)
    assert os.path.getmtime(frame_files(extracted, "fps25")[0]) == mtime
    assert extract.main(["--root", extracted, "--workers", "1", "--overwrite"]) == 0
    assert f"{len(VIDEOS)} extracted, 0 already done" in capsys.readouterr().out
    assert not any(
        ".partial" in name for _, dirs, files in os.walk(extracted) for name in dirs + files
    )


def test_bad_videos_are_reported_and_good_ones_extracted(tmp_path, capsys):
    root = str(tmp_path)
    write_indexed_video(os.path.join(root, "videos", "flute", "good.mp4"), 25, 60)
    write_indexed_video(
        os.path.join(root, "videos", "flute", "silent.mp4"), 25, 60, audio_rate=None
    )
    garbage = os.path.join(root, "videos", "flute", "garbage.mp4")
    with open(garbage, "wb") as f:
        f.write(np.random.default_rng(0).bytes(5000))
    assert extract.main(["--root", root, "--workers", "1"]) == 1
    err = capsys.readouterr().err
    assert garbage in err and "no audio stream" in err
    failures = open(os.path.join(root, extract.FAILURES_FILE)).read().splitlines()
    assert sorted(line.split("\t")[0] for line in failures) == sorted(
        [garbage, os.path.join(root, "videos", "flute", "silent.mp4")]
    )
    assert len(frame_files(root, "good", "flute")) == 2
    assert os.path.isfile(layout.audio_path(root, "/flute/good.wav"))
    assert not os.path.exists(layout.audio_path(root, "/flute/garbage.wav"))
    assert not os.path.exists(layout.frames_dir(root, "/flute/garbage.mp4"))


def test_synthetic_videos_extract_to_whole_seconds(tmp_path):
    root = str(tmp_path)
    synthetic.generate(
        root,
        ["violin"],
        videos_per_class=1,
        seed=0,
        min_sec=3,
        max_sec=4,
        width=96,
        height=64,
        workers=1,
    )
    assert extract.main(["--root", root, "--workers", "1"]) == 0
    (video_id,) = json.load(open(os.path.join(root, "videos.json")))["videos"]["violin"]
    note = json.load(open(layout.annotation_path(root, "violin", video_id)))
    assert len(frame_files(root, video_id, "violin")) == floor(note["duration"])
    assert sf.info(layout.audio_path(root, f"/violin/{video_id}.wav")).duration == pytest.approx(
        note["duration"], abs=0.1
    )


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the dry run must not run anything")

    monkeypatch.setattr(subprocess, "run", refuse)
    monkeypatch.setattr(download_music, "yt_dlp_command", refuse)


@pytest.mark.parametrize(
    "list_name", ["MUSIC_solo_videos.json", "MUSIC_duet_videos.json", "MUSIC21_solo_videos.json"]
)
def test_download_dry_run_counts_match_the_list(tmp_path, capsys, no_network, list_name):
    list_path = os.path.join(LISTS, list_name)
    videos = json.load(open(list_path))["videos"]
    first_class = next(iter(videos))
    present = (
        tmp_path / "videos" / first_class.replace(" ", "_") / (videos[first_class][0] + ".mp4")
    )
    present.parent.mkdir(parents=True)
    present.write_bytes(b"")
    assert download_music.main(["--list", list_path, "--out", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    rows = {
        line.split()[0]: line.split()[1:]
        for line in out.splitlines()[1:]
        if len(line.split()) == 3 and line.split()[1].isdigit()
    }
    for class_name, ids in videos.items():
        expected_present = int(class_name == first_class)
        assert rows[class_name.replace(" ", "_")] == [
            str(len(set(ids)) - expected_present),
            str(expected_present),
        ]
    total = sum(len(set(ids)) for ids in videos.values())
    assert rows["total"] == [str(total - 1), "1"]
    assert "yt-dlp --format" in out and "watch?v=" in out
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [present]


def test_download_dry_run_filters(tmp_path, capsys, no_network):
    list_path = os.path.join(LISTS, "MUSIC_duet_videos.json")
    assert (
        download_music.main(
            [
                "--list",
                list_path,
                "--out",
                str(tmp_path),
                "--dry-run",
                "--classes",
                "flute violin",
                "cello_acoustic_guitar",
                "--limit",
                "2",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "flute_violin" in out and "cello_acoustic_guitar" in out and "trumpet_tuba" not in out
    assert any(line.split() == ["total", "4", "0"] for line in out.splitlines())
    with pytest.raises(SystemExit, match="not in the list"):
        download_music.main(
            ["--list", list_path, "--out", str(tmp_path), "--dry-run", "--classes", "banjo"]
        )


def test_download_rejects_a_file_that_is_not_a_list(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flute": ["abc"]}))
    with pytest.raises(SystemExit, match="not a MUSIC video list"):
        download_music.main(["--list", str(bad), "--out", str(tmp_path), "--dry-run"])
