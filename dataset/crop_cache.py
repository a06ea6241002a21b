"""Crop cache: every frame's object crop decoded, cut to its box and resized once, stored as uint8.

Built once by scripts/cache_crops.py; `MUSICMixDataset(crop_cache=folder)` then reads its crops
from memory-mapped arrays and decodes no JPEG. A cache folder holds

    <cache>/manifest.json           format, img_size, crop kind, data root, complete
    <cache>/<class>/<id>.mp4.npy    uint8 (P,): the views of frames 1..F, flat, one after another
    <cache>/<class>/<id>.mp4.json   per frame: where each view starts, the train view's size,
                                    the box; and what the crops were made of (`sources`)

(paths mirror detection_results/). Each frame k is stored as two channels-first views:
    train  the whole box resized so its shorter side is int(1.1 S), the reference's Resize before
           its RandomCrop; the loader cuts a random S x S window (and flips) per sample, at whole
           pixels, as the reference did. The uncached path resizes only the window it needs at a
           fractional offset, so for the same random draw the two crops lie within a pixel of
           each other (tests/test_crop_cache.py bounds the difference).
    eval   the S x S centre crop, computed by the same function as the uncached val/test path:
           cached and uncached val/test samples are bit-identical.
`sources` records each frame's byte size and the detection file's SHA-1: frames extracted again or
new detections make a video stale, which the loader refuses and scripts/cache_crops.py rebuilds
(copying or moving the data root changes neither).
Storage is about 3 x 1.1 S x (long side) + 3 S^2 bytes per frame: ~470 kB at S = 224 for a
640 x 360 frame without detection, 5-10 times its JPEG.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

import utils

from . import layout
from .errors import DataError
from .index import IndexEntry
from .readers import frame_size, load_frame, load_top_boxes
from .transforms import crop_resize, object_box, resize_box, resized_size, train_short_side

CACHE_FORMAT = 2  # 2: tables record their sources
MANIFEST = "manifest.json"
# What each dataset mode crops: the top detection box (CCoL) or the whole frame (SoP).
CROP_KINDS = {"ccol": "top_box", "sop": "full_frame"}
CACHE_FOLDER = "crop_cache"  # a root's caches, one folder per kind of crops and size


def crop_kind(mode: str, box_rule: str = "frame") -> str:
    """The crops a cache holds: 'top_box' (readers.BOX_RULES 'frame'), 'video_box' ('video') or
    'full_frame' (SoP)."""
    return "video_box" if mode == "ccol" and box_rule == "video" else CROP_KINDS[mode]


def default_cache_dir(
    root: str, img_size: int, mode: str, box_rule: str = "frame", fallback: str | None = None
) -> str:
    """The folder of a root's cache of these crops: <root>/crop_cache/<crops>_<S>, beside the data.

    With `fallback`, a root whose crop_cache/ cannot be made or written (read-only data) has its
    caches under <fallback>/crop_cache/<the root's name>/ instead (making <root>/crop_cache is how
    this finds out).
    """
    parent = os.path.join(root, CACHE_FOLDER)
    if fallback is not None:
        try:
            os.makedirs(parent, exist_ok=True)
        except OSError:
            pass
        if not (os.path.isdir(parent) and os.access(parent, os.W_OK)):
            parent = os.path.join(fallback, CACHE_FOLDER, os.path.basename(os.path.abspath(root)))
    return os.path.join(parent, f"{crop_kind(mode, box_rule)}_{img_size}")


def video_paths(cache_dir: str, frames_rel: str) -> tuple[str, str]:
    """(pixels .npy, table .json) of the video whose CSV frames path is `frames_rel`."""
    base = os.path.join(cache_dir, frames_rel.lstrip("/"))
    return base + ".npy", base + ".json"


def make_manifest(
    root: str, img_size: int, mode: str, complete: bool, box_rule: str = "frame"
) -> dict:
    return {
        "format": CACHE_FORMAT,
        "img_size": img_size,
        "train_short_side": train_short_side(img_size),
        "crops": crop_kind(mode, box_rule),
        "data_root": os.path.abspath(root),
        "complete": complete,
    }


def read_manifest(cache_dir: str) -> dict | None:
    path = os.path.join(cache_dir, MANIFEST)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def check_manifest(cache_dir: str, img_size: int, mode: str, box_rule: str = "frame") -> dict:
    """The manifest of a complete cache built for these crops.

    Otherwise a DataError naming the mismatch.
    """
    manifest = read_manifest(cache_dir)
    path = os.path.join(cache_dir, MANIFEST)
    build = (
        f"scripts/cache_crops.py --root DATA_ROOT --img-size {img_size} --mode {mode} "
        f"--box-rule {box_rule} --out {cache_dir}"
    )
    if manifest is None:
        raise DataError(f"not a crop cache (no {MANIFEST}); build it with {build}", path=path)
    wanted = {"format": CACHE_FORMAT, "img_size": img_size, "crops": crop_kind(mode, box_rule)}
    wrong = {k: (manifest.get(k), v) for k, v in wanted.items() if manifest.get(k) != v}
    if wrong:
        details = ", ".join(f"{k} {got!r} (needed {need!r})" for k, (got, need) in wrong.items())
        raise DataError(
            f"crop cache built for other crops: {details}. Build one for these settings "
            f"in another folder: {build}",
            path=path,
        )
    if not manifest.get("complete"):
        raise DataError(
            f"crop cache is incomplete (its build was interrupted or failed on some "
            f"videos); rerun {build} to finish it",
            path=path,
        )
    return manifest


def _temp_path(path: str) -> str:
    """A sibling temp name, unique per process (renamed over `path` once written)."""
    folder, name = os.path.split(path)
    return os.path.join(folder, f".tmp{os.getpid()}_{name}")


def sources(root: str, video: IndexEntry, detections: bool) -> dict:
    """What the crops of frames 1..num_frames of `video` are made of: each frame's byte size and,
    with `detections`, the SHA-1 of its detection file."""
    folder = layout.frames_dir(root, video.frames)
    try:
        made_of = {
            "frame_bytes": [
                os.path.getsize(os.path.join(folder, layout.frame_name(k)))
                for k in range(1, video.num_frames + 1)
            ]
        }
        if detections:
            with open(layout.detection_path(root, video.frames), "rb") as f:
                made_of["detections_sha1"] = hashlib.sha1(f.read()).hexdigest()
    except OSError as err:
        raise DataError(
            f"source of the crop cache unreadable ({err.strerror})", err.filename
        ) from err
    return made_of


def stale_sources(table: dict, root: str, video: IndexEntry) -> str | None:
    """What changed in the video's sources since its table was written; None if nothing."""
    recorded = table["sources"]
    now = sources(root, video, "detections_sha1" in recorded)
    if now["frame_bytes"] != recorded["frame_bytes"][: video.num_frames]:
        return "its frames changed (extracted again?)"
    if now.get("detections_sha1") != recorded.get("detections_sha1"):
        return "its detection file changed"
    return None


def read_table(cache_dir: str, video: IndexEntry) -> dict | None:
    """The video's table if its files exist and hold at least the frames the index lists."""
    pixels_path, table_path = video_paths(cache_dir, video.frames)
    if not (os.path.isfile(pixels_path) and os.path.isfile(table_path)):
        return None
    with open(table_path) as f:
        table = json.load(f)
    return table if table["num_frames"] >= video.num_frames else None


def is_cached(cache_dir: str, video: IndexEntry, root: str) -> bool:
    """The video is cached whole, from the sources `root` now holds."""
    table = read_table(cache_dir, video)
    if table is None:
        return False
    try:
        return stale_sources(table, root, video) is None
    except DataError:  # a source is gone: building the video says which
        return False


def build_video(
    root: str, cache_dir: str, video: IndexEntry, img_size: int, mode: str, box_rule: str = "frame"
) -> int:
    """Caches frames 1..num_frames of one video; returns the bytes written. Raises DataError.

    The layout is planned from the boxes and the first frame's size, then the views are written
    frame by frame into a memory-mapped temp file: memory stays at one frame whatever the length.
    The table is renamed into place last, so a video counts as cached only once it is whole.
    """
    folder = layout.frames_dir(root, video.frames)
    image_size = frame_size(os.path.join(folder, layout.frame_name(1)))  # (W, H)
    top = {}
    if mode == "ccol":
        top = load_top_boxes(
            layout.detection_path(root, video.frames), video.num_frames, image_size, box_rule
        )
    frame_ids = range(1, video.num_frames + 1)
    boxes = [object_box(top.get(k), image_size) for k in frame_ids]
    short = train_short_side(img_size)
    sizes = [resized_size(x2 - x1, y2 - y1, short) for x1, y1, x2, y2 in boxes]  # (w, h) per frame
    view_bytes = np.array([[3 * w * h, 3 * img_size * img_size] for w, h in sizes])  # (F, 2)
    offsets = np.concatenate([[0], np.cumsum(view_bytes.ravel())])  # train_1, eval_1, train_2, ...

    pixels_path, table_path = video_paths(cache_dir, video.frames)
    os.makedirs(os.path.dirname(pixels_path), exist_ok=True)
    tmp = _temp_path(pixels_path)
    try:
        pixels = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(int(offsets[-1]),)
        )
        for i, frame_id in enumerate(frame_ids):
            path = os.path.join(folder, layout.frame_name(frame_id))
            image = load_frame(path)  # (3, H, W)
            if (image.shape[2], image.shape[1]) != image_size:
                raise DataError(
                    f"frame is {image.shape[2]}x{image.shape[1]}, the video's first frame "
                    f"{image_size[0]}x{image_size[1]}",
                    path=path,
                )
            train_view = resize_box(image, boxes[i], short)  # (3, h, w)
            eval_view = crop_resize(image, boxes[i], img_size, img_size, None)  # (3, S, S)
            pixels[offsets[2 * i] : offsets[2 * i + 1]] = train_view.contiguous().numpy().ravel()
            pixels[offsets[2 * i + 1] : offsets[2 * i + 2]] = eval_view.contiguous().numpy().ravel()
        pixels.flush()
        del pixels
        os.replace(tmp, pixels_path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    table = {
        "frames": video.frames,
        "num_frames": video.num_frames,
        "img_size": img_size,
        "train": [[int(offsets[2 * i]), h, w] for i, (w, h) in enumerate(sizes)],
        "eval": offsets[1:-1:2].tolist(),
        "boxes": [list(b) for b in boxes],
        "sources": sources(root, video, detections=mode == "ccol"),
    }
    utils.atomic_write_json(table, table_path)
    return int(offsets[-1])


class CachedVideo:
    """Read access to one cached video; views are numpy views into a memory map (no copy).

    Refuses a video whose sources in `root` changed since it was cached.
    """

    def __init__(self, cache_dir: str, video: IndexEntry, root: str):
        pixels_path, table_path = video_paths(cache_dir, video.frames)
        if not os.path.isfile(table_path):
            raise DataError(
                f"video {video.frames} is not in the crop cache (index row {video.source}); "
                f"rerun scripts/cache_crops.py with the index that lists it",
                path=table_path,
            )
        with open(table_path) as f:
            table = json.load(f)
        if table["num_frames"] < video.num_frames:
            raise DataError(
                f"{table['num_frames']} frames cached, the index lists {video.num_frames} "
                f"({video.source}); rerun scripts/cache_crops.py",
                path=table_path,
            )
        changed = stale_sources(table, root, video)
        if changed:
            built_from = (read_manifest(cache_dir) or {}).get("data_root")
            raise DataError(
                f"crop cache of {video.frames} is stale: {changed} since it was cached "
                f"(from {built_from}; this run reads {os.path.abspath(root)}); rerun "
                f"scripts/cache_crops.py, which rebuilds stale videos",
                path=table_path,
            )
        try:
            self.pixels = np.load(pixels_path, mmap_mode="r")  # (P,) uint8
        except (OSError, ValueError) as err:
            raise DataError(f"unreadable crop cache file ({err})", path=pixels_path) from err
        self.img_size = table["img_size"]
        self.train_table = np.asarray(table["train"], np.int64)  # (F, 3): offset, h, w
        self.eval_offsets = np.asarray(table["eval"], np.int64)  # (F,)
        self.boxes = np.asarray(table["boxes"], np.float32)  # (F, 4)

    def train_view(self, frame_id: int) -> np.ndarray:
        """The box of frame `frame_id` (1-based) resized to the train shorter side. (3, h, w)"""
        offset, height, width = self.train_table[frame_id - 1].tolist()
        return self.pixels[offset : offset + 3 * height * width].reshape(3, height, width)

    def eval_view(self, frame_id: int) -> np.ndarray:
        """The val/test crop of frame `frame_id`. (3, S, S)"""
        offset, size = int(self.eval_offsets[frame_id - 1]), self.img_size
        return self.pixels[offset : offset + 3 * size * size].reshape(3, size, size)
