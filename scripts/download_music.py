"""Download the YouTube videos of a MUSIC json list (solo, duet or MUSIC-21) with yt-dlp."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from dataset import layout  # noqa: E402

FAILURES_FILE = "download_failures.txt"
# A single-file mp4 (video + audio) when YouTube offers one, which needs no ffmpeg; otherwise
# separate mp4 video and m4a audio streams, merged by yt-dlp (that needs ffmpeg on the PATH).
FORMAT = "best[ext=mp4]/bestvideo[ext=mp4]+bestaudio[ext=m4a]"
SHOWN_COMMANDS = 3


def folder_name(list_class: str) -> str:
    """Class key of the json list -> folder name: duet keys such as 'acoustic_guitar violin'
    become 'acoustic_guitar_violin'."""
    return list_class.replace(" ", "_")


def read_video_list(path: str) -> dict[str, list[str]]:
    """{folder name: [YouTube id, ...]} from a MUSIC json list ({"videos": {class: [ids]}})."""
    try:
        with open(path) as f:
            listing = json.load(f)
    except (OSError, json.JSONDecodeError) as error:
        raise SystemExit(f"error: cannot read the video list {path}: {error}") from error
    videos = listing.get("videos") if isinstance(listing, dict) else None
    if not isinstance(videos, dict) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in videos.values()
    ):
        raise SystemExit(
            f"error: {path} is not a MUSIC video list: expected "
            '{"videos": {"<class>": ["<youtube id>", ...]}}'
        )
    # dict.fromkeys drops repeated ids but keeps the list's order.
    return {folder_name(c): list(dict.fromkeys(ids)) for c, ids in videos.items()}


def video_url(video_id: str) -> str:
    return f"https://www.youtube.com/watch?v={video_id}"


def yt_dlp_command() -> list[str]:
    """How to run yt-dlp: the executable on the PATH, else the installed Python module."""
    executable = shutil.which("yt-dlp")
    if executable:
        return [executable]
    if importlib.util.find_spec("yt_dlp") is not None:
        return [sys.executable, "-m", "yt_dlp"]
    raise SystemExit(
        "error: yt-dlp is not installed; install it (pip install yt-dlp) or put the "
        "yt-dlp executable on the PATH. --dry-run works without it."
    )


def download_command(base: list[str], video_id: str, out_path: str) -> list[str]:
    # yt-dlp writes `<out_path>.part` and renames it when complete, so an interrupted download
    # never leaves a file that looks finished.
    return base + [
        "--format",
        FORMAT,
        "--merge-output-format",
        "mp4",
        "--no-playlist",
        "--quiet",
        "--no-warnings",
        "--socket-timeout",
        "30",
        "--output",
        out_path,
        video_url(video_id),
    ]


def plan_downloads(videos: dict[str, list[str]], out_root: str, classes=None, limit=None):
    """[(folder, id, output path, already present)] in list order, filtered by class and limit."""
    if classes:
        unknown = sorted(set(classes) - set(videos))
        if unknown:
            raise SystemExit(
                f"error: classes not in the list: {', '.join(unknown)}; "
                f"the list has {', '.join(sorted(videos))}"
            )
    plan = []
    for class_name, ids in videos.items():
        if classes and class_name not in classes:
            continue
        for video_id in ids[:limit]:
            path = os.path.join(out_root, layout.VIDEOS, class_name, video_id + ".mp4")
            plan.append((class_name, video_id, path, os.path.isfile(path)))
    return plan


def print_plan(plan) -> None:
    classes = list(dict.fromkeys(c for c, *_ in plan))
    print(f"{'class':28s} {'to download':>11s} {'present':>8s}")
    for class_name in classes:
        rows = [present for c, _, _, present in plan if c == class_name]
        print(f"{class_name:28s} {rows.count(False):11d} {rows.count(True):8d}")
    missing = sum(not present for *_, present in plan)
    print(f"{'total':28s} {missing:11d} {len(plan) - missing:8d}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__,
        epilog=f"Videos already present are skipped. Failed downloads are listed in "
        f"OUT/{FAILURES_FILE}; the exit status is non-zero only if none succeeded.",
    )
    parser.add_argument(
        "--list",
        required=True,
        help="MUSIC json list, e.g. data/music_lists/MUSIC_solo_videos.json (required)",
    )
    parser.add_argument(
        "--out",
        required=True,
        help="data root; videos go to OUT/videos/<class>/<id>.mp4 (required)",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        default=None,
        metavar="CLASS",
        help="only these classes, as list keys or folder names (default: all)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="at most this many videos per class, in list order (default: all)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be downloaded and download nothing (default: off)",
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        parser.error(f"--limit must be non-negative, got {args.limit}")

    videos = read_video_list(args.list)
    classes = [folder_name(c) for c in args.classes] if args.classes else None
    plan = plan_downloads(videos, args.out, classes, args.limit)
    print_plan(plan)
    todo = [(c, v, path) for c, v, path, present in plan if not present]
    if args.dry_run:
        shown = todo[:SHOWN_COMMANDS]
        if shown:
            print(f"Would run, for example ({len(todo)} commands in all):")
        for _, video_id, path in shown:
            print("  " + shlex.join(download_command(["yt-dlp"], video_id, path)))
        return 0

    base = yt_dlp_command() if todo else []
    failures = []
    for i, (class_name, video_id, path) in enumerate(todo, 1):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        print(f"[{i}/{len(todo)}] {class_name}/{video_id}", flush=True)
        completed = subprocess.run(
            download_command(base, video_id, path), capture_output=True, text=True
        )
        if completed.returncode != 0 or not os.path.isfile(path):
            message = (
                completed.stderr.strip().splitlines()
                or [f"yt-dlp exited with status {completed.returncode}"]
            )[-1]
            failures.append(f"{class_name}/{video_id}\t{message}")
            print(f"  failed: {message}", file=sys.stderr)
    failures_path = os.path.join(args.out, FAILURES_FILE)
    if failures:
        os.makedirs(args.out, exist_ok=True)
        with open(failures_path, "w") as f:
            f.write("\n".join(failures) + "\n")
    elif os.path.exists(failures_path):
        os.remove(failures_path)  # a stale list from an earlier run would mislead
    print(
        f"Downloaded {len(todo) - len(failures)} of {len(todo)} videos; "
        f"{len(plan) - len(todo)} were already present"
        + (f"; {len(failures)} failed, listed in {failures_path}" if failures else "")
    )
    # Many MUSIC videos are gone from YouTube, so some failures are normal; only a run in which
    # nothing could be downloaded (yt-dlp broken, no network) is an error.
    return 1 if todo and len(failures) == len(todo) else 0


if __name__ == "__main__":
    sys.exit(main())
