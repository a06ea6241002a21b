"""MUSIC mixtures of object crops and waveform clips, sampled as the authors' loader does."""

from __future__ import annotations

import logging
import os
import random
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
import torch
from torch.utils.data import default_collate

from . import layout
from .clips import clip_centre, clip_margin, frame_offsets, last_centre, min_video_frames
from .crop_cache import CachedVideo, check_manifest
from .errors import DataError
from .index import (
    IndexEntry,
    draw_partners,
    format_split_table,
    group_by_class,
    read_index,
    read_sep_list,
    sep_row_problems,
    split_overlaps,
)
from .readers import (
    SILENCE_PEAK,
    audio_info,
    frame_size,
    list_frame_ids,
    load_detections,
    load_frame,
    load_top_boxes,
    native_window,
    read_audio_window,
    window_start,
)
from .transforms import (
    crop_resize,
    crop_resized,
    map_frame_size,
    object_box,
    resize_frame,
    train_short_side,
)
from .truth import TRUTH_COLUMNS, VideoTruth

log = logging.getLogger(__name__)

# True boxes kept per whole frame (NaN-padded so that samples stack).
MAX_TRUE_BOXES = 8
MODES = ("ccol", "sop")
ON_ERROR = ("raise", "skip")


class _LRU(OrderedDict):
    """A dict that forgets its least recently used entries beyond `maxsize`."""

    def __init__(self, maxsize: int):
        super().__init__()
        self.maxsize = maxsize

    def get(self, key, default=None):
        if key not in self:
            return default
        self.move_to_end(key)
        return self[key]

    def put(self, key, value):
        self[key] = value
        if len(self) > self.maxsize:
            self.popitem(last=False)

    def __reduce__(self):
        # Pickled empty: a DataLoader worker started by 'spawn' fills its own cache.
        return type(self), (self.maxsize,)


class MUSICMixDataset(torch.utils.data.Dataset):
    """MUSIC solo-video mixtures for CCoL (4 objects, 1 and 3 silent) or SoP (N sounding videos).

    Args:
        root: data root (layout.py); CSV paths are relative to its audio/ and frames/ folders.
        list_file: train.csv / val.csv / test.csv in the authors' format.
        split: 'train' (random partners, crops, volume), 'val' (partners fixed per index) or
            'test' (mixtures from `sep_list`, whose paths are looked up in `list_file`).
        mode: 'ccol': each object is the top detection box of its video; objects 1 and 3 are
            silent (audio exactly 0) and the mixture is a0/2 + a2/2. 'sop': whole frames, all
            `num_mix` videos sounding, each clip x 1/num_mix.
        num_mix: objects (videos) per sample, all of distinct classes.
        num_frames, stride_frames, frame_rate: T frames `stride_frames` apart around the clip
            centre; `frame_rate` is the extraction rate of the frames folders.
        img_size: side S of the square crops.
        aud_len, aud_rate: clip length in samples and the rate clips are returned at.
        dup_trainset: the train list is repeated this many times per epoch.
        dup_valset: the val list is repeated this many times, each repeat with other (fixed)
            partners: more mixtures per val video steady the best-checkpoint choice.
        max_samples: if > 0, the dataset is cut to this many samples.
        sep_list: test_sep.csv, required for split='test'; in sop mode a row's first num_mix
            videos are used.
        on_error: 'raise' a DataError on bad input, or 'skip': return None (dropped and counted by
            `collate`), log each bad file once, and tally it in `error_summary()`.
        seed: val partners of sample i are drawn from random.Random(seed + i). Train draws
            (partners, centre frame, crop, flip, volume) use Python's `random`, which DataLoader
            seeds in each worker; with num_workers=0, seed `random` yourself.
        crop_cache: folder built by scripts/cache_crops.py for this img_size and mode, or None.
            Crops then come from its memory-mapped arrays and no JPEG is decoded; val/test crops
            are bit-identical, train crops within a pixel of the uncached ones (crop_cache.py).
        map_size: height of the whole frames of sounding maps (0: none).
        box_rule: how each frame's object box is chosen, readers.BOX_RULES.
        test_clips: clip positions K per evaluation video (clip_centre): test row r is scored at
            K positions (samples r*K ... r*K + K-1), and the val repeats (dup_valset) cycle
            through them. 1 keeps the authors' single centre clip.

    Sample (see __getitem__): audios (N, L), mix (L,), frames uint8 (N, 3, T, S, S), sounding (N,),
    class_ids (N,), boxes (N, T, 4), frame_ids (N, T), index (), infos (N CSV audio paths).
    With map_size (val and test only), also each object's whole centre frame for sounding maps:
    whole_frames uint8 (N, 3, 1, map_size, 4/3 map_size), and in its pixels map_boxes (N, 4),
    the detection box, and true_boxes (N, MAX_TRUE_BOXES, 5) (truth.TRUTH_COLUMNS, NaN rows pad;
    an object silent in the mixture has every box silent).
    """

    def __init__(
        self,
        root: str,
        list_file: str,
        split: str,
        mode: str = "ccol",
        num_mix: int = 4,
        num_frames: int = 3,
        stride_frames: int = 1,
        frame_rate: float = 1,
        img_size: int = 224,
        aud_len: int = 65535,
        aud_rate: int = layout.AUDIO_RATE,
        dup_trainset: int = 1,
        dup_valset: int = 1,
        max_samples: int = -1,
        sep_list: str | None = None,
        on_error: str = "raise",
        seed: int = 1234,
        crop_cache: str | None = None,
        map_size: int = 0,
        box_rule: str = "frame",
        test_clips: int = 1,
    ):
        for name, value, allowed in (
            ("split", split, layout.SPLITS),
            ("mode", mode, MODES),
            ("on_error", on_error, ON_ERROR),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        if mode == "ccol" and (num_mix < 2 or num_mix % 2):
            raise ValueError(
                f"ccol pairs each sounding object with a silent one: num_mix must be "
                f"even, got {num_mix}"
            )
        if test_clips < 1:
            raise ValueError(f"test_clips must be >= 1, got {test_clips}")
        if split == "test" and sep_list is None:
            raise ValueError(
                "split='test' needs sep_list (test_sep.csv); list_file is then test.csv"
            )
        self.root, self.split, self.mode, self.on_error = root, split, mode, on_error
        self.num_mix, self.num_frames, self.stride = num_mix, num_frames, stride_frames
        self.frame_rate, self.img_size, self.seed = frame_rate, img_size, seed
        self.aud_len, self.aud_rate = aud_len, aud_rate
        self.map_size = map_size if split != "train" else 0
        self.box_rule = box_rule
        self.test_clips = test_clips
        self.margin = clip_margin(num_frames, stride_frames, frame_rate)
        self.frame_offsets = frame_offsets(num_frames, stride_frames)  # (T,)

        self.list_file = list_file
        self.videos = read_index(list_file)
        if not self.videos:
            raise DataError("index file lists no video", path=list_file)
        self.by_class = group_by_class(self.videos)
        if split in ("train", "val") and len(self.by_class) < num_mix:
            raise DataError(
                f"{len(self.by_class)} classes, a {num_mix}-object mixture needs "
                f"{num_mix} distinct classes",
                path=list_file,
            )
        self.sep_list = sep_list
        if split == "test":
            self.mixtures = read_sep_list(sep_list, min_columns=num_mix)
            self.by_audio = {v.audio: v for v in self.videos}
            length = len(self.mixtures) * test_clips
        else:
            length = len(self.videos) * (dup_trainset if split == "train" else dup_valset)
        self.length = min(length, max_samples) if max_samples > 0 else length

        # Objects 1, 3, ... are the silent partners in ccol; everything sounds in sop.
        self.sounding = np.ones(num_mix, bool) if mode == "sop" else np.arange(num_mix) % 2 == 0
        self.audio_scale = 1.0 / num_mix if mode == "sop" else 1.0 / int(self.sounding.sum())

        self._box_cache = _LRU(maxsize=2048)  # per worker: each worker holds its own copy
        self._truth_cache = _LRU(maxsize=256)
        self.crop_cache = crop_cache
        if crop_cache is not None:
            check_manifest(crop_cache, img_size, mode, box_rule)
        # Open memory maps, per worker; bounded so that workers x videos stays under the fd limit.
        self._cached_videos = _LRU(maxsize=128)
        self._errors: dict[str, list] = {}  # path -> [count, message], per process

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict | None:
        """One mixture; None if on_error='skip' and an input file is bad.

        Returns:
            audios float32 (N, L): clips after volume (train) and clipping to [-1, 1], scaled
                (ccol: sounding x 1/2, silent exactly 0; sop: x 1/N).
            mix float32 (L,): audios.sum(0).
            frames uint8 (N, 3, T, S, S): crops, not normalised (see normalize_frames).
            sounding bool (N,), class_ids int64 (N,) (layout.CLASS_TO_ID),
            boxes float32 (N, T, 4): box used per frame in original pixels (full frame if none),
            frame_ids int64 (N, T), index int64 (), infos: N CSV audio paths.
        """
        try:
            return self._load(index)
        except DataError as err:
            if self.on_error == "raise":
                raise
            self._record_error(err)
            return None

    # ------------------------------------------------------------------ sampling

    def clip_position(self, index: int) -> int:
        """Which of the `test_clips` positions sample `index` reads (0 in train)."""
        if self.split == "test":
            return index % self.test_clips
        if self.split == "val":
            return (index // len(self.videos)) % self.test_clips  # repeat r of each val video
        return 0

    def _choose_videos(self, index: int) -> list[IndexEntry]:
        if self.split == "test":
            index //= self.test_clips  # the sep_list row
            row = self.mixtures[index][: self.num_mix]
            missing = [path for path in row if path not in self.by_audio]
            if missing:
                raise DataError(
                    f"row {index + 1} names {missing[0]}, which {self.list_file} does not list",
                    path=self.sep_list,
                )
            videos = [self.by_audio[path] for path in row]
            if len({v.class_name for v in videos}) != len(videos):
                raise DataError(f"row {index + 1} repeats a class: {row}", path=self.sep_list)
            return videos
        first = self.videos[index % len(self.videos)]
        # val: partners fixed per index without touching the global RNG; train: worker's RNG.
        rng = random.Random(self.seed + index) if self.split == "val" else random
        return [first] + draw_partners(first, self.by_class, self.num_mix - 1, rng)

    def _center_frame(self, video: IndexEntry, position: int = 0) -> int:
        if video.num_frames < min_video_frames(self.margin):
            raise DataError(
                f"{video.num_frames} frames listed ({video.source}), a clip of "
                f"{self.num_frames} frames with stride {self.stride} needs "
                f"{min_video_frames(self.margin)}",
                path=self._frames_dir(video),
            )
        if self.split == "train":
            return random.randint(self.margin + 1, last_centre(video.num_frames, self.margin))
        return clip_centre(video.num_frames, position, self.test_clips, self.margin)

    # ------------------------------------------------------------------ loading

    def _load(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} samples")
        videos = self._choose_videos(index)
        N, T, S, L = self.num_mix, self.num_frames, self.img_size, self.aud_len
        audios = np.zeros((N, L), np.float32)
        frames = np.empty((N, 3, T, S, S), np.uint8)
        boxes = np.empty((N, T, 4), np.float32)
        frame_ids = np.empty((N, T), np.int64)
        load_crops = self._load_crops if self.crop_cache is None else self._load_cached_crops
        maps = self._whole_frames(N) if self.map_size else {}
        position = self.clip_position(index)
        for n, video in enumerate(videos):
            center = self._center_frame(video, position)
            frame_ids[n] = center + self.frame_offsets
            boxes[n] = load_crops(video, frame_ids[n], frames[n])
            if self.sounding[n]:
                audios[n] = self._load_clip(video, center)
            if maps:
                self._load_whole_frame(video, center, boxes[n, T // 2], n, maps)
        return {
            **{key: torch.from_numpy(value) for key, value in maps.items()},
            "audios": torch.from_numpy(audios),
            "mix": torch.from_numpy(audios.sum(0)),
            "frames": torch.from_numpy(frames),
            "sounding": torch.from_numpy(self.sounding.copy()),
            "class_ids": torch.tensor([layout.CLASS_TO_ID[v.class_name] for v in videos]),
            "boxes": torch.from_numpy(boxes),
            "frame_ids": torch.from_numpy(frame_ids),
            "index": torch.tensor(index),
            "clip": torch.tensor(position),
            "infos": [v.audio for v in videos],
        }

    def _whole_frames(self, num: int) -> dict[str, np.ndarray]:
        height, width = map_frame_size(self.map_size)
        return {
            "whole_frames": np.empty((num, 3, 1, height, width), np.uint8),
            "map_boxes": np.empty((num, 4), np.float32),
            "true_boxes": np.full((num, MAX_TRUE_BOXES, len(TRUTH_COLUMNS)), np.nan, np.float32),
        }

    def _load_whole_frame(
        self, video: IndexEntry, center: int, box: np.ndarray, n: int, out: dict
    ) -> None:
        """Object n's whole centre frame resized for the maps, with its boxes in those pixels."""
        image = load_frame(os.path.join(self._frames_dir(video), layout.frame_name(center)))
        size = (image.shape[2], image.shape[1])  # (W, H)
        height, width = map_frame_size(self.map_size)
        out["whole_frames"][n, :, 0] = resize_frame(image, (height, width)).numpy()
        scale = np.array([width / size[0], height / size[1]] * 2, np.float32)
        out["map_boxes"][n] = box * scale
        truth = self._truth_cache.get(video.frames)
        if truth is None:
            truth = VideoTruth(self.root, video.frames, size)
            self._truth_cache.put(video.frames, truth)
        true = truth.boxes(center)[:MAX_TRUE_BOXES]
        true[:, :4] *= scale
        if not self.sounding[n]:
            true[:, 4] = 0.0  # its audio is not in the mixture: nothing in its frame sounds
        out["true_boxes"][n, : len(true)] = true

    def _frames_dir(self, video: IndexEntry) -> str:
        return layout.frames_dir(self.root, video.frames)

    def _video_boxes(
        self, video: IndexEntry
    ) -> tuple[tuple[int, int], dict[int, tuple[int, int, int, int]]]:
        """Checks the frames folder against the index; returns the frames' size (W, H) and frame
        id -> top box (empty in sop).

        Computed once per video per worker (bounded cache), so samples do not reload npy files.
        """
        cached = self._box_cache.get(video.frames)
        if cached is not None:
            return cached
        folder = self._frames_dir(video)
        if not os.path.isdir(folder):
            audio = layout.audio_path(self.root, video.audio)
            if not os.path.isfile(audio):
                raise DataError(
                    f"index row {video.source} points nowhere: neither {folder} nor {audio} exists",
                    path=self.list_file,
                )
            raise DataError(f"frames folder not found (index row {video.source})", path=folder)
        present = list_frame_ids(folder)
        missing = [k for k in range(1, video.num_frames + 1) if k not in present]
        if missing:
            raise DataError(
                f"frame missing: {video.source} lists {video.num_frames} frames, "
                f"{len(missing)} of them are absent",
                path=os.path.join(folder, layout.frame_name(missing[0])),
            )
        top, size = {}, frame_size(os.path.join(folder, layout.frame_name(1)))  # (W, H)
        if self.mode == "ccol":
            # The boxes hold for one frame size: a video whose frames were partly extracted again
            # at another size shows it at its last frame already (every frame is checked on load).
            last = os.path.join(folder, layout.frame_name(video.num_frames))
            last_size = frame_size(last)
            if last_size != size:
                raise DataError(
                    f"frame is {last_size[0]}x{last_size[1]}, the video's first frame "
                    f"{size[0]}x{size[1]}: frames of two sizes in one video (extracted again?)",
                    path=last,
                )
            detections = layout.detection_path(self.root, video.frames)
            self._check_index_is_current(video, detections, max(present))
            top = load_top_boxes(detections, video.num_frames, size, self.box_rule)
        self._box_cache.put(video.frames, (size, top))
        return size, top

    def _check_index_is_current(self, video: IndexEntry, detections: str, on_disk: int) -> None:
        """Detections past the listed frames, with that many frames on disk: the index is stale
        (the detection file is right)."""
        if on_disk <= video.num_frames or not os.path.isfile(detections):
            return
        last_detected = int(load_detections(detections)[:, 0].max())
        if last_detected > video.num_frames:
            raise DataError(
                f"index row {video.source} lists {video.num_frames} frames, but "
                f"{self._frames_dir(video)} holds {on_disk} and its detections reach frame "
                f"{last_detected}: the index is stale (frames extracted again?); rebuild it "
                f"with scripts/create_index_files.py --overwrite",
                path=self.list_file,
            )

    def _load_crops(self, video: IndexEntry, frame_ids: np.ndarray, out: np.ndarray) -> np.ndarray:
        """Fills out (3, T, S, S) with the object's crops; returns the boxes used, (T, 4)."""
        size, top = self._video_boxes(video)
        S = self.img_size
        if self.split == "train":
            # One crop position (relative) and one flip for all T frames of the object.
            rel_offset, flip = (random.random(), random.random()), random.random() < 0.5
            short_side = train_short_side(S)
        else:
            short_side, rel_offset, flip = S, None, False
        folder = self._frames_dir(video)
        boxes = np.empty((len(frame_ids), 4), np.float32)
        for t, frame_id in enumerate(frame_ids.tolist()):
            path = os.path.join(folder, layout.frame_name(frame_id))
            image = load_frame(path)  # (3, H, W)
            if top and (image.shape[2], image.shape[1]) != size:
                raise DataError(
                    f"frame is {image.shape[2]}x{image.shape[1]}, the video's first frame "
                    f"{size[0]}x{size[1]}: its detection boxes do not fit both sizes (frames "
                    f"extracted again?)",
                    path=path,
                )
            box = object_box(top.get(frame_id), (image.shape[2], image.shape[1]))
            crop = (
                crop_resize(image, box, S, short_side, rel_offset).permute(1, 2, 0).numpy()
            )  # (S, S, 3)
            # numpy moves channels first several times faster than torch's strided uint8 copy.
            out[:, t] = (crop[:, ::-1] if flip else crop).transpose(2, 0, 1)
            boxes[t] = box
        return boxes

    def _load_cached_crops(
        self, video: IndexEntry, frame_ids: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """_load_crops from the crop cache: the same random draws, no image decoding."""
        cached = self._cached_videos.get(video.frames)
        if cached is None:
            cached = CachedVideo(self.crop_cache, video, self.root)
            self._cached_videos.put(video.frames, cached)
        if self.split == "train":
            # Drawn as _load_crops draws them: one relative crop position and one flip per object.
            rel_offset, flip = (random.random(), random.random()), random.random() < 0.5
            for t, frame_id in enumerate(frame_ids.tolist()):
                crop = crop_resized(
                    cached.train_view(frame_id), self.img_size, rel_offset
                )  # (3, S, S)
                out[:, t] = crop[..., ::-1] if flip else crop
        else:
            for t, frame_id in enumerate(frame_ids.tolist()):
                out[:, t] = cached.eval_view(frame_id)
        return cached.boxes[frame_ids - 1]

    def _load_clip(self, video: IndexEntry, center: int) -> np.ndarray:
        """The clip centred on frame `center`, volume-augmented (train), clipped and scaled. (L,)"""
        path = layout.audio_path(self.root, video.audio)
        time = layout.frame_time(center, self.frame_rate)
        clip = read_audio_window(path, time, self.aud_len, self.aud_rate)
        if self.split == "train" and np.abs(clip).max() <= SILENCE_PEAK:
            # Trained as a sounding object's sound, silence teaches grounding and separation
            # the opposite of the truth. (Evaluation counts such sources as invalid instead.)
            raise DataError(
                f"digital silence in the clip at {time:.2f} s (a muted video?): a sounding "
                f"object cannot be trained on it",
                path=path,
            )
        if self.split == "train":
            clip = clip * random.uniform(0.5, 1.5)
        return np.clip(clip, -1.0, 1.0) * self.audio_scale

    # ------------------------------------------------------------------ up-front checks

    def preflight(self) -> list[DataError]:
        """Cheap checks of every video this dataset can draw, before any sample is loaded: what
        the loader would otherwise find only when it first draws the video, hours into a run.

        Per video: its frames folder and listed frames, the size of its first and last frame
        (headers), its detection file (ccol) and its wav's header (long enough for a clip and for
        its frames); test: every mixture row. on_error 'raise' raises the first problem, saying
        how many there are; 'skip' warns and returns them (their samples are skipped, and
        counted, when drawn).
        """
        problems = []
        videos = self.videos
        if self.split == "test":
            problems += [
                DataError(message, path=self.sep_list)
                for message in sep_row_problems(
                    self.mixtures, self.by_audio, self.num_mix, self.list_file
                )
            ]
            used = {path for row in self.mixtures for path in row[: self.num_mix]}
            videos = [v for v in self.videos if v.audio in used]
        for video in videos:
            try:
                self._video_boxes(video)
                self._check_audio_length(video)
                if self.crop_cache is not None:
                    CachedVideo(self.crop_cache, video, self.root)
            except DataError as err:
                problems.append(err)
        if problems and self.on_error == "raise":
            more = len(problems) - 1
            if more:
                raise DataError(
                    f"{problems[0]} (and {more} more problems with the videos of "
                    f"{self.list_file}: scripts/check_data.py lists them all)"
                )
            raise problems[0]
        if problems:
            log.warning(
                "!!! %d problems with the videos of %s: their samples will be skipped and "
                "counted (first: %s)",
                len(problems),
                self.list_file,
                problems[0],
            )
        return problems

    def _check_audio_length(self, video: IndexEntry) -> None:
        """The wav, from its header: long enough for one clip, and for the clip of the last frame
        a clip may centre on (read_audio_window's checks, before any read)."""
        path = layout.audio_path(self.root, video.audio)
        samples, rate = audio_info(path)
        window = native_window(self.aud_len, self.aud_rate, rate)
        if samples < window:
            raise DataError(
                f"audio is {samples / rate:.2f} s long, shorter than one clip "
                f"({self.aud_len / self.aud_rate:.2f} s)",
                path=path,
            )
        last = layout.frame_time(last_centre(video.num_frames, self.margin), self.frame_rate)
        try:
            window_start(samples, last, window, rate)
        except DataError as err:
            raise DataError(
                f"{err} ({video.num_frames} frames at {video.source})", path=path
            ) from None

    # ------------------------------------------------------------------ reporting

    def _record_error(self, err: DataError) -> None:
        entry = self._errors.setdefault(err.path, [0, str(err)])
        if entry[0] == 0:
            log.warning("skipping samples that use %s", err)
        entry[0] += 1

    def error_summary(self) -> dict[str, dict]:
        """Samples skipped in this process, per bad file: {path: {'count': n, 'message': str}}.

        With DataLoader workers each worker keeps its own tally; `collate`'s 'skipped' reaches the
        main process.
        """
        return {
            path: {"count": count, "message": message}
            for path, (count, message) in self._errors.items()
        }

    def describe(self) -> str:
        """A one-paragraph account of what this dataset samples."""
        what = (
            f"{self.num_mix} objects ({self.sounding.sum()} sounding, top detection boxes)"
            if self.mode == "ccol"
            else f"{self.num_mix} sounding whole-frame videos"
        )
        source = (
            f"{len(self.mixtures)} mixtures of {self.sep_list}"
            if self.split == "test"
            else f"{len(self.videos)} videos of {len(self.by_class)} classes"
        )
        return (
            f"MUSICMixDataset[{self.split}, {self.mode}]: {self.length} samples from {source} "
            f"({self.list_file}); each {what}, {self.num_frames} frames x {self.img_size} px, "
            f"{self.aud_len} samples at {self.aud_rate} Hz"
        )


def collate(batch: list[dict | None]) -> dict | None:
    """Stacks samples; drops the None of skipped ones and counts them in 'skipped'.

    Returns None if every sample of the batch was skipped. 'infos' becomes a list (B) of lists (N).
    """
    samples = [s for s in batch if s is not None]
    if not samples:
        return None
    # default_collate stacks straight into shared memory inside DataLoader workers.
    out = default_collate(
        [{key: value for key, value in s.items() if key != "infos"} for s in samples]
    )
    out["infos"] = [s["infos"] for s in samples]
    out["skipped"] = len(batch) - len(samples)
    return out


def summarize(
    root: str, index_files: Mapping[str, str] | None = None, sep_list: str | None = None
) -> str:
    """Printable summary of a data root's index files: videos per class per split, duration,
    videos shared between splits, and the number of test mixtures.

    index_files: {'train': path, ...}; default the root's train/val/test.csv that exist.
    sep_list: default the root's test_sep.csv if it exists.
    """
    if index_files is None:
        index_files = layout.root_lists(root)
    if sep_list is None and os.path.isfile(layout.list_path(root, "sep")):
        sep_list = layout.list_path(root, "sep")
    if not index_files:
        return f"{root}: no index file (run scripts/create_index_files.py)"
    splits = {name: read_index(path) for name, path in index_files.items()}
    lines = [f"data root {root}", format_split_table(splits)]
    for (split, other), shared in split_overlaps(splits).items():
        lines.append(f"videos in both {split} and {other}: {len(shared)}")
    if sep_list is not None:
        rows = read_sep_list(sep_list)
        lines.append(
            f"test mixtures: {len(rows)} rows of {len(rows[0]) if rows else 0} videos ({sep_list})"
        )
    return "\n".join(lines)
