"""Check a MUSIC data root against its index files and report every problem, grouped and counted.

    python scripts/check_data.py data/synthetic --profile demo
    python scripts/check_data.py --run ckpt/MUSIC_CCoL
    python scripts/check_data.py $DATA_ROOT --aud-len 65535 --num-frames 3 --sample-rate 11025

Every video listed in train/val/test.csv is checked once: its index rows (audio and frames of one
video, listed once), its wav (present, readable, the loader's sample rate, mono, finite, within full
scale, not digital silence for a clip or more, long enough for one clip and for its frames), its
frames (folder present, frames 1..N of the CSV present, of one size and decodable to the end, no
frame beyond N), its CoSep detection file (present, non-empty, well formed, in pixels rather than
normalised, frame ids inside the video, boxes inside the frames) and whether audio and frames last
as long. Across files: train and val lists with fewer classes than a mixture has objects, test
videos that also appear in train or val, val videos that also appear in train, and test_sep.csv
rows with fewer videos than a mixture, naming videos test.csv lacks, or repeating a class.
`--profile` and `--stage` check what a run of that profile and stage reads (its clip length,
frames per clip and the stride between them, mixture size; no detections for SoP); `--run` checks
what a trained run reads, from its args.json: its data root (or ROOT, where the data moved), its
index files, clip, frames and mixture. Explicit options override either. Without them the
reference profile's CCoL is checked.
Exit status 0 when the root is clean, 1 when anything is wrong.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import soundfile as sf
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from arguments import (  # noqa: E402
    DEFAULT_PROFILE,
    DEFAULT_STAGE,
    PROFILES,
    STAGE_DEFAULTS,
    build_parser,
    parse_args,
    saved_args,
)
from dataset import DataError, layout  # noqa: E402
from dataset.clips import clip_margin, last_centre, min_video_frames  # noqa: E402
from dataset.index import (  # noqa: E402
    ROW_DUPLICATE,
    ROW_MALFORMED,
    ROW_STEMS,
    IndexEntry,
    group_by_class,
    read_sep_list,
    scan_index,
    sep_row_problems,
    split_overlaps,
)
from dataset.readers import (  # noqa: E402
    NORMALISED_BOXES,
    SILENCE_PEAK,
    check_detection_boxes,
    check_detection_frames,
    frame_size,
    list_frame_ids,
    load_detections,
    window_start,
)

# check_data's options for what a sample reads: (ClipSpec field, main.py option, type, help).
CLIP_OPTIONS = (
    ("aud_len", "aud_len", int, "clip length in samples"),
    ("sample_rate", "aud_rate", int, "expected wav rate in Hz"),
    ("num_frames", "num_frames", int, "frames per clip"),
    ("stride_frames", "stride_frames", int, "frames between clip frames"),
    ("frame_rate", "frame_rate", float, "fps of the extracted frames"),
    ("num_mix", "num_mix", int, "objects per mixture: train and val need as many classes"),
)

# Problem kinds in report order, with what each one means for training.
PROBLEMS = {
    "index file": "index file missing or malformed: nothing it lists can be checked",
    "index row malformed": "index row that does not parse (the loader refuses the list)",
    "audio and frames differ": "index row whose audio and frames are of two videos (refused)",
    "listed twice": "video listed twice in one index file (refused: drawn twice as often)",
    "audio missing": "wav file not found",
    "audio unreadable": "wav file cannot be decoded",
    "audio sample rate": "wav not at --sample-rate (the loader resamples every clip: slow)",
    "audio channels": "wav not mono (the loader averages the channels)",
    "audio not finite": "wav holds NaN or inf samples (the losses become NaN)",
    "audio out of range": "float wav beyond full scale 1.0 (the loader hard-clips it, warning)",
    "audio silent": "digital silence for a clip or more (training refuses such clips)",
    "frames missing": "frames folder, or frames the CSV lists, not on disk",
    "frame unreadable": "jpg that cannot be decoded (corrupt or truncated)",
    "frame sizes differ": "frames of two sizes in one video (the loader refuses them)",
    "frame count mismatch": "frames folder holds more frames than the CSV lists (stale index?)",
    "detections missing": "no detection_results/<class>/<id>.mp4.npy",
    "detections empty": "detection file with no row: no object found in any frame",
    "detections malformed": "detection file that is not a valid (K, 7) CoSep array of this video",
    "boxes normalised": "box coordinates all in [0, 1] instead of pixels (refused)",
    "boxes outside the image": "detection boxes outside the frames or reaching past them "
    "(detections of frames of another size; refused)",
    "shorter than a clip": "too short for one training clip (audio samples or frames)",
    "audio shorter than frames": "audio ends over a clip before the frames (the loader refuses it)",
    "durations differ": "audio and frames of a video do not last as long",
    "too few classes": "train or val list with fewer classes than a mixture's objects (refused)",
    "test leak": "test video also listed in train or val (training refuses a train leak)",
    "val in train": "val video also listed in train (refused: best checkpoint on training data)",
    "mixture list": "test_sep.csv row with too few videos, naming a video test.csv lacks, or "
    "repeating a class (refused)",
}


@dataclass(frozen=True)
class Problem:
    kind: str
    path: str  # the offending file or folder
    detail: str  # what is wrong, and the index row it comes from


@dataclass(frozen=True)
class ClipSpec:
    """What one training sample needs of a video (the loader's arguments)."""

    aud_len: int
    sample_rate: int
    num_frames: int
    stride_frames: int
    frame_rate: float
    num_mix: int = 4

    @property
    def margin(self) -> int:
        return clip_margin(self.num_frames, self.stride_frames, self.frame_rate)

    @property
    def min_frames(self) -> int:
        return min_video_frames(self.margin)

    def describe(self) -> str:
        return (
            f"clips of {self.aud_len} samples ({self.aud_len / self.sample_rate:.2f} s at "
            f"{self.sample_rate} Hz), {self.num_frames} frames {self.stride_frames} apart at "
            f"{self.frame_rate:g} fps, mixtures of {self.num_mix}"
        )


def profile_args(profile: str, stage: str):
    """The arguments of a main.py run of --profile `profile` --stage `stage`."""
    return build_parser(stage, profile).parse_args(["--stage", stage, "--profile", profile])


def trained_run_args(run_dir: str, root: str | None = None):
    """The arguments of the trained run in `run_dir` as its evaluation resolves them (its
    args.json, and its stage's and profile's defaults for options it lacks); `root`, if given,
    stands for the run's data root, and the run's own index files follow it."""
    ckpt, run_id = os.path.split(os.path.normpath(run_dir))
    argv = ["--mode", "eval", "--ckpt", ckpt or ".", "--id", run_id]
    args = parse_args(argv + (["--data_root", root] if root else []))
    # The evaluation reads no train list, so it does not move it with the root: moved here alike.
    trained_root = saved_args(run_dir).get("data_root", args.data_root)
    if root and args.list_train == layout.list_path(trained_root, "train"):
        args.list_train = layout.list_path(root, "train")
    return args


def run_clip(profile: str, stage: str, given: dict) -> ClipSpec:
    """What a sample of main.py --profile `profile` --stage `stage` reads, but for the fields
    `given` (None: the run's)."""
    return clip_of(profile_args(profile, stage), given)


def clip_of(run, given: dict) -> ClipSpec:
    """What a sample of the run with arguments `run` reads, but for the fields `given` (None:
    the run's)."""
    return ClipSpec(
        **{
            field: getattr(run, option) if given.get(field) is None else given[field]
            for field, option, _, _ in CLIP_OPTIONS
        }
    )


def check_audio(path: str, clip: ClipSpec, where: str) -> tuple[list[Problem], float | None]:
    """Problems of one wav, and its duration in seconds (None when it cannot be read)."""
    if not os.path.isfile(path):
        return [Problem("audio missing", path, f"listed at {where}")], None
    try:
        info = sf.info(path)
    except sf.SoundFileError as err:
        return [Problem("audio unreadable", path, f"{err} ({where})")], None
    problems = []
    if info.samplerate != clip.sample_rate:
        problems.append(
            Problem("audio sample rate", path, f"{info.samplerate} Hz, expected {clip.sample_rate}")
        )
    if info.channels != 1:
        problems.append(
            Problem("audio channels", path, f"{info.channels} channels, expected 1 (mono)")
        )
    seconds = info.frames / info.samplerate
    if seconds * clip.sample_rate < clip.aud_len:
        problems.append(
            Problem(
                "shorter than a clip",
                path,
                f"audio lasts {seconds:.2f} s, a clip {clip.aud_len / clip.sample_rate:.2f} s",
            )
        )
    try:
        finite, peak, quiet = scan_samples(path)
    except sf.SoundFileError as err:
        return problems + [Problem("audio unreadable", path, f"{err} ({where})")], None
    if not finite:
        problems.append(Problem("audio not finite", path, "holds NaN or inf samples"))
    elif peak > 1.0:
        problems.append(
            Problem("audio out of range", path, f"float samples peak at {peak:.2f} ({where})")
        )
    clip_samples = clip.aud_len * info.samplerate / clip.sample_rate
    if peak <= SILENCE_PEAK:
        problems.append(Problem("audio silent", path, f"digital silence throughout ({where})"))
    elif quiet >= clip_samples:
        problems.append(
            Problem(
                "audio silent",
                path,
                f"digital silence for {quiet / info.samplerate:.2f} s, a clip lasts "
                f"{clip.aud_len / clip.sample_rate:.2f} s ({where})",
            )
        )
    return problems, seconds


def scan_samples(path: str) -> tuple[bool, float, int]:
    """A whole wav read in blocks: whether every sample is finite, the peak (of the finite ones)
    and the longest run of samples of digital silence (at most SILENCE_PEAK in every channel)."""
    finite, peak, run, longest = True, 0.0, 0, 0
    for block in sf.blocks(path, blocksize=1 << 18, dtype="float32", always_2d=True):
        level = np.abs(block).max(axis=1)  # (n,)
        if not np.isfinite(level).all():
            finite = False
            level = np.nan_to_num(level, nan=1.0, posinf=1.0)
        peak = max(peak, float(level.max()))
        loud = np.flatnonzero(level > SILENCE_PEAK)
        if len(loud) == 0:
            run += len(level)
        else:  # the run carried over from the last block ends at this block's first loud sample
            gaps = np.diff(loud) - 1
            longest = max(longest, run + int(loud[0]), int(gaps.max()) if len(gaps) else 0)
            run = len(level) - 1 - int(loud[-1])
        longest = max(longest, run)
    return finite, peak, longest


def check_frames(folder: str, video: IndexEntry, clip: ClipSpec) -> list[Problem]:
    """Frames 1..N of the CSV present and readable; at most one frames problem per video."""
    if not os.path.isdir(folder):
        return [Problem("frames missing", folder, f"frames folder not found ({video.source})")]
    present = list_frame_ids(folder)
    absent = [k for k in range(1, video.num_frames + 1) if k not in present]
    if absent:
        return [
            Problem(
                "frames missing",
                os.path.join(folder, layout.frame_name(absent[0])),
                f"{len(absent)} of the {video.num_frames} frames listed at {video.source} "
                "are absent",
            )
        ]
    extra = sorted(k for k in present if k > video.num_frames)
    problems = []
    if extra:
        problems.append(
            Problem(
                "frame count mismatch",
                folder,
                f"{len(present)} frames on disk, {video.source} lists {video.num_frames}",
            )
        )
    if video.num_frames < clip.min_frames:
        problems.append(
            Problem(
                "shorter than a clip",
                folder,
                f"{video.num_frames} frames, a clip of "
                f"{clip.num_frames} frames with stride {clip.stride_frames} needs "
                f"{clip.min_frames} ({video.source})",
            )
        )
    first_size = None
    for k in range(1, video.num_frames + 1):
        path = os.path.join(folder, layout.frame_name(k))
        try:
            with Image.open(path) as img:
                size = img.size
                # Decoded at 1/8 scale: every byte is still read (a truncated jpg fails), fast.
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
        except (OSError, SyntaxError, ValueError) as err:
            problems.append(Problem("frame unreadable", path, str(err)))
            break
        first_size = first_size or size
        if size != first_size and not any(p.kind == "frame sizes differ" for p in problems):
            problems.append(
                Problem(
                    "frame sizes differ",
                    path,
                    f"{size[0]}x{size[1]}, frame 1 is {first_size[0]}x{first_size[1]} "
                    f"({video.source})",
                )
            )
    return problems


def check_detections(path: str, video: IndexEntry, first_frame: str) -> list[Problem]:
    """The loader's checks of a detection file, against the video's frame count and frame size."""
    if not os.path.isfile(path):
        return [
            Problem(
                "detections missing", path, f"needed by {video.source} (scripts/detect_objects.py)"
            )
        ]
    try:
        dets = load_detections(path)
    except DataError as err:
        detail = str(err).removeprefix(f"{path}: ")
        kind = "detections empty" if _holds_no_row(path) else "detections malformed"
        if detail.startswith(NORMALISED_BOXES):
            kind = "boxes normalised"
        return [Problem(kind, path, detail)]
    checks = [
        ("detections malformed", lambda: check_detection_frames(dets, video.num_frames, path))
    ]
    if os.path.isfile(first_frame):
        checks.append(
            (
                "boxes outside the image",
                lambda: check_detection_boxes(dets, frame_size(first_frame), path),
            )
        )
    problems = []
    for kind, check in checks:
        try:
            check()
        except DataError as err:
            detail = str(err).removeprefix(f"{path}: ")
            problems.append(Problem(kind, path, f"{detail} ({video.source})"))
    return problems


def _holds_no_row(path: str) -> bool:
    """Whether a detection file that failed validation is a well-formed but empty array."""
    try:
        dets = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return False
    return dets.ndim == 2 and dets.shape == (0, len(layout.DETECTION_COLUMNS))


def check_video(root: str, video: IndexEntry, clip: ClipSpec, detections: bool) -> list[Problem]:
    audio = layout.audio_path(root, video.audio)
    problems, seconds = check_audio(audio, clip, video.source)
    folder = layout.frames_dir(root, video.frames)
    problems += check_frames(folder, video, clip)
    if detections:
        problems += check_detections(
            layout.detection_path(root, video.frames),
            video,
            os.path.join(folder, layout.frame_name(1)),
        )
    if seconds is None:
        return problems
    # The last clip the loader may centre: the read refuses it if the audio ends a clip too early.
    last = layout.frame_time(last_centre(video.num_frames, clip.margin), clip.frame_rate)
    try:
        window_start(round(seconds * clip.sample_rate), last, clip.aud_len, clip.sample_rate)
    except DataError as err:
        return problems + [
            Problem(
                "audio shorter than frames",
                audio,
                f"{err} ({video.num_frames} frames at {video.source})",
            )
        ]
    # Extraction writes floor(duration * fps) frames: within one frame of the audio when in sync.
    frames_sec = video.num_frames / clip.frame_rate
    if abs(seconds - frames_sec) > 1 / clip.frame_rate + 1:
        problems.append(
            Problem(
                "durations differ",
                audio,
                f"audio {seconds:.1f} s, {video.num_frames} "
                f"frames = {frames_sec:.1f} s ({video.source})",
            )
        )
    return problems


def check_root(
    root: str,
    clip: ClipSpec,
    index_files: dict[str, str] | None = None,
    sep_list: str | None = None,
    detections: bool = True,
) -> tuple[list[Problem], dict]:
    """All problems of a data root; also returns counts of what was checked.

    index_files: {'train': path, ...}, default the root's train/val/test.csv.
    sep_list: default the root's test_sep.csv when it exists.
    """
    if index_files is None:
        index_files = {split: layout.list_path(root, split) for split in layout.SPLITS}
    if sep_list is None and os.path.isfile(layout.list_path(root, "sep")):
        sep_list = layout.list_path(root, "sep")
    problems, splits = [], {}
    row_kinds = {
        ROW_MALFORMED: "index row malformed",
        ROW_STEMS: "audio and frames differ",
        ROW_DUPLICATE: "listed twice",
    }
    for split, path in index_files.items():
        try:
            splits[split], bad_rows = scan_index(path)
        except DataError as err:
            problems.append(Problem("index file", path, str(err).removeprefix(f"{path}: ")))
            continue
        problems += [Problem(row_kinds[kind], path, detail) for kind, detail in bad_rows]

    videos = {}  # audio path -> first entry listing it: each video checked once
    for entries in splits.values():
        for video in entries:
            videos.setdefault(video.audio, video)
    for video in videos.values():
        problems += check_video(root, video, clip, detections)

    for split in ("train", "val"):
        classes = len(group_by_class(splits.get(split, [])))
        if split in splits and classes < clip.num_mix:
            problems.append(
                Problem(
                    "too few classes",
                    index_files[split],
                    f"{classes} classes, a mixture of {clip.num_mix} objects needs {clip.num_mix}",
                )
            )
    for (split, other), shared in split_overlaps(splits).items():
        for video in shared:
            if other == "train":
                kind, detail = "val in train", f"val video ({video.source}) also listed in train"
            else:
                kind, detail = "test leak", f"test video listed in {split} at {video.source}"
            problems.append(Problem(kind, layout.audio_path(root, video.audio), detail))
    test = {v.audio for v in splits.get("test", [])}
    num_mixtures = 0
    if sep_list is not None:
        try:
            rows = read_sep_list(sep_list)
        except DataError as err:
            problems.append(
                Problem("mixture list", sep_list, str(err).removeprefix(f"{sep_list}: "))
            )
            rows = []
        num_mixtures = len(rows)
        if "test" in splits:
            problems += [
                Problem("mixture list", sep_list, detail)
                for detail in sep_row_problems(rows, test, clip.num_mix, "test.csv")
            ]
    checked = {
        "videos": len(videos),
        "mixtures": num_mixtures,
        **{split: len(entries) for split, entries in splits.items()},
    }
    return problems, checked


def format_report(root: str, problems: list[Problem], checked: dict, max_examples: int) -> str:
    splits = ", ".join(f"{s} {checked[s]}" for s in layout.SPLITS if s in checked)
    lines = [
        f"data root {root}: {checked['videos']} videos ({splits}), "
        f"{checked['mixtures']} test mixtures"
    ]
    if not problems:
        lines.append("no problem found")
        return "\n".join(lines)
    by_kind = defaultdict(list)
    for p in problems:
        by_kind[p.kind].append(p)
    lines.append(f"{len(problems)} problems of {len(by_kind)} kinds:")
    for kind in PROBLEMS:
        if kind not in by_kind:
            continue
        found = by_kind[kind]
        lines.append(f"  {kind}: {len(found)}   ({PROBLEMS[kind]})")
        lines += [f"      {p.path}: {p.detail}" for p in found[:max_examples]]
        if len(found) > max_examples:
            lines.append(f"      ... and {len(found) - max_examples} more")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "root",
        nargs="?",
        help="data root (frames/, audio/, detection_results/, *.csv); with --run, default the "
        "run's --data_root",
    )
    parser.add_argument(
        "--index",
        nargs="+",
        metavar="SPLIT=CSV",
        help="index files to check, e.g. train=my_train.csv test=my_test.csv "
        "(default: the root's train/val/test.csv, or the run's --list_*)",
    )
    parser.add_argument(
        "--sep-list",
        help="test mixtures (default: the root's test_sep.csv if present, or the run's --list_sep)",
    )
    reads = parser.add_mutually_exclusive_group()
    reads.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        help="main.py --profile of the runs to check for: the clip, frames and mixture they read "
        f"(default: {DEFAULT_PROFILE})",
    )
    reads.add_argument(
        "--run",
        metavar="RUN_DIR",
        help="a trained run's folder (CKPT/ID): check what it reads, from its args.json",
    )
    parser.add_argument(
        "--stage",
        choices=list(STAGE_DEFAULTS),
        help=f"main.py --stage of the runs to check for (sop: 2-video mixtures, no detections; "
        f"default: {DEFAULT_STAGE}; with --run, the run's)",
    )
    for field, option, kind, what in CLIP_OPTIONS:
        parser.add_argument(
            f"--{field.replace('_', '-')}",
            type=kind,
            help=f"{what} (default: main.py --{option} of the profile or the run)",
        )
    parser.add_argument(
        "--no-detections",
        action="store_true",
        help="do not check detection files (default for --stage sop: whole frames)",
    )
    parser.add_argument(
        "--max-examples", type=int, default=5, help="files shown per problem kind (default: 5)"
    )
    args = parser.parse_args(argv)
    index_files, sep_list = None, args.sep_list
    if args.run:
        if args.stage:
            parser.error("--stage comes from the run's args.json with --run")
        run = trained_run_args(args.run, args.root)
        index_files = {split: getattr(run, f"list_{split}") for split in layout.SPLITS}
        sep_list = sep_list or run.list_sep
    else:
        if args.root is None:
            parser.error("give a data root, or --run with a trained run's folder")
        run = profile_args(args.profile or DEFAULT_PROFILE, args.stage or DEFAULT_STAGE)
    root = args.root or run.data_root
    if not os.path.isdir(root):
        parser.error(f"data root {root} is not a folder")
    if args.index:
        pairs = [item.partition("=") for item in args.index]
        if any(not sep or split not in layout.SPLITS for split, sep, _ in pairs):
            parser.error(f"--index takes SPLIT=CSV with SPLIT in {layout.SPLITS}, got {args.index}")
        index_files = {split: path for split, _, path in pairs}
    clip = clip_of(run, {f: getattr(args, f) for f, *_ in CLIP_OPTIONS})
    detections = not args.no_detections and run.stage != "sop"
    problems, checked = check_root(root, clip, index_files, sep_list, detections)
    reads_what = f"run {args.run}" if args.run else f"profile {run.profile}, stage {run.stage}"
    print(f"checking what {reads_what} reads: {clip.describe()}")
    print(format_report(root, problems, checked, args.max_examples))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
