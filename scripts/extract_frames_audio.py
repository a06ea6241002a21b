"""Extract 1-fps JPEG frames and 11025 Hz mono 16-bit audio from MUSIC-layout videos with PyAV."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from math import floor, gcd
from multiprocessing import Pool

import av
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly
from tqdm import tqdm

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import layout  # noqa: E402

JPEG_QUALITY = 90
FAILURES_FILE = "extract_failures.txt"


class ExtractionError(RuntimeError):
    """A video that cannot be turned into frames and audio (the message says why)."""


def video_frame_index(t: float, fps: float, num_frames: int) -> int:
    """0-based index of the constant-rate video frame shown at time t (s): the frame whose
    interval [i/fps, (i+1)/fps) contains t, clipped to the video. Synthetic videos start at 0, so
    extracted frame k shows video frame `video_frame_index(layout.frame_time(k), fps, n)`: the
    frame whose annotated boxes belong to frame k."""
    return min(max(int(t * fps), 0), num_frames - 1)


@dataclass
class Result:
    """Outcome of one video: status is 'done', 'skipped' or 'failed'."""

    video_path: str
    status: str
    frames: int = 0
    audio_sec: float = 0.0
    reason: str = ""


def _to_float_channels(frame: av.AudioFrame) -> np.ndarray:
    """(channels, samples) float32 in [-1, 1] from any PyAV sample format."""
    samples = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if not frame.format.is_planar:  # packed formats come as (1, samples * channels)
        samples = samples.reshape(-1, channels).T
    if samples.dtype == np.uint8:  # u8 is offset binary
        return (samples.astype(np.float32) - 128) / 128
    if np.issubdtype(samples.dtype, np.integer):
        return samples.astype(np.float32) / -np.iinfo(samples.dtype).min
    return samples.astype(np.float32)


def read_audio(path: str) -> tuple[np.ndarray, int, Fraction]:
    """Decode the first audio stream: mono float32 samples, native rate, start time (s)."""
    with av.open(path) as container:
        if not container.streams.audio:
            raise ExtractionError("no audio stream")
        stream = container.streams.audio[0]
        chunks, rate, start = [], None, None
        for frame in container.decode(stream):
            if start is None:
                start = Fraction(0) if frame.pts is None else Fraction(frame.pts * frame.time_base)
            rate = frame.sample_rate
            chunks.append(_to_float_channels(frame).mean(axis=0))  # downmix: mean of channels
    if not chunks:
        raise ExtractionError("audio stream has no decodable samples")
    return np.concatenate(chunks), rate, start


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    if rate == target_rate:
        return samples
    divisor = gcd(rate, target_rate)
    return resample_poly(samples, target_rate // divisor, rate // divisor).astype(np.float32)


def extract_frames(
    path: str, out_dir: str, origin: Fraction, fps: float = layout.FRAME_RATE
) -> int:
    """Write frames k = 1..floor(duration * fps) as `out_dir/%06d.jpg`. Frame k is the decoded
    frame on screen at `origin + layout.frame_time(k, fps)`: the last one whose timestamp is <= that
    time (the first frame, if the video starts later). Returns the number of frames written."""

    def target(k: int) -> Fraction:
        return origin + Fraction(layout.frame_time(k, fps))

    def frame_path(k: int) -> str:
        return os.path.join(out_dir, layout.frame_name(k))

    next_k = 1
    shown, shown_time, step = None, None, None  # the frame on screen since shown_time
    with av.open(path) as container:
        if not container.streams.video:
            raise ExtractionError("no video stream")
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            if frame.pts is None:
                raise ExtractionError(f"video frame {frame.index} has no timestamp")
            time_s = Fraction(frame.pts * frame.time_base)
            if shown is not None and time_s <= shown_time:
                continue  # duplicate or out-of-order timestamp: keep the earlier frame
            image = None
            while target(next_k) < time_s:  # due before this frame starts
                if image is None:
                    image = (shown or frame).to_image()
                image.save(frame_path(next_k), quality=JPEG_QUALITY)
                next_k += 1
            if shown is not None:
                step = time_s - shown_time
            shown, shown_time = frame, time_s
    if shown is None:
        raise ExtractionError("video stream has no decodable frames")
    frame_duration = (
        Fraction(shown.duration * shown.time_base)
        if shown.duration
        else step or 1 / Fraction(stream.average_rate or 25)
    )
    # Only whole 1/fps intervals inside the video count: k <= floor(duration * fps).
    count = floor((shown_time + frame_duration - origin) * Fraction(fps))
    if count < 1:
        raise ExtractionError(f"video shorter than 1/{fps:g} s: no frame to extract")
    if next_k <= count:
        image = shown.to_image()
        for k in range(next_k, count + 1):
            image.save(frame_path(k), quality=JPEG_QUALITY)
    for k in range(count + 1, next_k):  # written for a final interval shorter than 1/fps
        os.remove(frame_path(k))
    return count


def first_video_time(path: str) -> Fraction:
    with av.open(path) as container:
        if not container.streams.video:
            raise ExtractionError("no video stream")
        for frame in container.decode(container.streams.video[0]):
            if frame.pts is not None:
                return Fraction(frame.pts * frame.time_base)
    raise ExtractionError("video stream has no decodable frames")


def extract_video(
    video_path: str,
    frames_dir: str,
    audio_path: str,
    fps: float = layout.FRAME_RATE,
    rate: int = layout.AUDIO_RATE,
) -> tuple[int, float]:
    """Extract one video; outputs appear only when complete. Returns (frames, audio seconds).

    Audio and frames share one time origin, the earlier of the two streams' first timestamps
    (what ffmpeg does), so they stay in sync when a stream starts late: leading silence is added
    to the audio, and frames before the first video frame repeat it.
    """
    samples, native_rate, audio_start = read_audio(video_path)
    origin = min(audio_start, first_video_time(video_path))
    lead = round((audio_start - origin) * native_rate)
    samples = np.concatenate([np.zeros(lead, np.float32), samples])
    audio = np.clip(resample(samples, native_rate, rate), -1.0, 1.0)

    # Write under hidden temporary names, then rename: a killed run never leaves a partial
    # video that looks finished. The wav is renamed last; it marks the video as done.
    frames_partial = os.path.join(
        os.path.dirname(frames_dir), "." + os.path.basename(frames_dir) + ".partial"
    )
    audio_partial = os.path.join(
        os.path.dirname(audio_path), "." + os.path.basename(audio_path) + ".partial"
    )
    shutil.rmtree(frames_partial, ignore_errors=True)
    os.makedirs(frames_partial)
    os.makedirs(os.path.dirname(audio_path), exist_ok=True)
    try:
        num_frames = extract_frames(video_path, frames_partial, origin, fps)
        sf.write(audio_partial, audio, rate, subtype="PCM_16", format="WAV")
        shutil.rmtree(frames_dir, ignore_errors=True)
        os.replace(frames_partial, frames_dir)
        os.replace(audio_partial, audio_path)
    finally:
        shutil.rmtree(frames_partial, ignore_errors=True)
        if os.path.exists(audio_partial):
            os.remove(audio_partial)
    return num_frames, len(audio) / rate


def find_videos(videos_root: str) -> list[tuple[str, str, str]]:
    """(class, id, path) of every `<videos_root>/<class>/<id>.mp4`, sorted."""
    if not os.path.isdir(videos_root):
        raise SystemExit(f"error: video folder {videos_root} does not exist")
    videos = []
    for class_name in sorted(os.listdir(videos_root)):
        class_dir = os.path.join(videos_root, class_name)
        if class_name.startswith(".") or not os.path.isdir(class_dir):
            continue
        for name in sorted(os.listdir(class_dir)):
            if name.endswith(".mp4") and not name.startswith("."):
                videos.append((class_name, name[: -len(".mp4")], os.path.join(class_dir, name)))
    return videos


def _extract_task(task) -> Result:
    root, class_name, video_id, video_path, fps, rate, overwrite = task
    frames_dir = layout.frames_dir(root, f"/{class_name}/{video_id}.mp4")
    audio_path = layout.audio_path(root, f"/{class_name}/{video_id}.wav")
    if not overwrite and os.path.isfile(audio_path) and os.path.isdir(frames_dir):
        return Result(video_path, "skipped")
    try:
        num_frames, audio_sec = extract_video(video_path, frames_dir, audio_path, fps, rate)
    except (ExtractionError, av.FFmpegError, sf.LibsndfileError, OSError, ValueError) as error:
        # One bad video must not stop the batch: it is reported with its reason at the end.
        return Result(video_path, "failed", reason=f"{type(error).__name__}: {error}")
    return Result(video_path, "done", num_frames, audio_sec)


def extract_all(
    root: str, videos_root: str, fps: float, rate: int, workers: int, overwrite: bool
) -> list[Result]:
    tasks = [(root, c, v, path, fps, rate, overwrite) for c, v, path in find_videos(videos_root)]
    progress = dict(total=len(tasks), desc="extract", unit="video")
    if workers <= 1:
        return [_extract_task(task) for task in tqdm(tasks, **progress)]
    with Pool(workers) as pool:
        return list(tqdm(pool.imap_unordered(_extract_task, tasks), **progress))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--root",
        required=True,
        help="data root; frames go to ROOT/frames, audio to ROOT/audio (required)",
    )
    parser.add_argument(
        "--videos", default=None, help="folder of <class>/<id>.mp4 videos (default: ROOT/videos)"
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=layout.FRAME_RATE,
        help=f"frames extracted per second (default: {layout.FRAME_RATE})",
    )
    parser.add_argument(
        "--sr",
        type=int,
        default=layout.AUDIO_RATE,
        help=f"audio sample rate in Hz (default: {layout.AUDIO_RATE})",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count(),
        help="parallel processes (default: os.cpu_count())",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="redo videos that are already extracted (default: skip them)",
    )
    args = parser.parse_args(argv)
    if args.fps <= 0 or args.sr <= 0:
        parser.error(f"--fps and --sr must be positive, got {args.fps} and {args.sr}")
    videos_root = args.videos or os.path.join(args.root, layout.VIDEOS)

    start = time.time()
    results = extract_all(args.root, videos_root, args.fps, args.sr, args.workers, args.overwrite)
    counts = {
        status: sum(r.status == status for r in results) for status in ("done", "skipped", "failed")
    }
    print(
        f"{len(results)} videos in {videos_root}: {counts['done']} extracted, "
        f"{counts['skipped']} already done (skipped), {counts['failed']} failed; "
        f"{sum(r.frames for r in results)} frames and "
        f"{sum(r.audio_sec for r in results) / 60:.1f} min of audio written "
        f"in {time.time() - start:.1f} s"
    )
    failures_path = os.path.join(args.root, FAILURES_FILE)
    failed = sorted((r for r in results if r.status == "failed"), key=lambda r: r.video_path)
    if not failed:
        if os.path.exists(failures_path):
            os.remove(failures_path)  # a stale list from an earlier run would mislead
        return 0
    lines = [f"{r.video_path}\t{r.reason}" for r in failed]
    with open(failures_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(failed)} videos failed (listed in {failures_path}):", file=sys.stderr)
    for line in lines:
        print(f"  {line}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
