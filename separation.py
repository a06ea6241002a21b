"""Separating a long recording with a trained run: object tracks, windows, overlap-add.

A video's objects are tracks (a detection class followed through every frame); the recording is
cut into windows of the run's clip length, each window is separated with the frames around its
centre, and the windows' estimates are overlap-added with Hann weights. Runs with grounding nets
also give each object's sounding probability against the mixture, per window.
scripts/separate_video.py is the command line; viz/video_page.py shows the result.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import numpy as np
import torch

import checkpoints
import localization
from arguments import parse_args
from dataset import layout, normalize_frames
from dataset.clips import frame_offsets
from dataset.readers import (
    check_detection_frames,
    fill_nearest,
    frame_size,
    load_frame,
    top_boxes,
)
from dataset.transforms import crop_resize, map_frame_size, object_box, resize_frame
from models.grounding_net import is_sounding
from sounding_maps import map_kind, sounding_maps
from stages import STAGES, StageConfig
from training import build_nets, log_visual_weights


@dataclass
class Track:
    """One object: a detection class followed through the video."""

    name: str
    class_id: int
    boxes: np.ndarray  # int64 (F, 4): box in each frame 1..F, x1 y1 x2 y2 in frame pixels
    # bool (F,): frames where the class is detected (the others reuse the nearest box)
    detected: np.ndarray


@dataclass
class WindowMaps:
    """Sounding maps over a recording: one per window, of the window's centre frame."""

    kind: str  # 'grounding' or 'separation' (sounding_maps.map_kind)
    heat: np.ndarray  # (W, N, H, W') each object's map, upsampled to the whole frames
    frames: torch.Tensor  # uint8 (W, 3, H, W') the whole centre frames
    boxes: torch.Tensor  # (W, N, 4) each object's box in the centre frame, in their pixels


# ----------------------------------------------------------------------------------------------
# Run, tracks, crops
# ----------------------------------------------------------------------------------------------
def load_run(run_dir: str, device: torch.device):
    """The stage module of a trained run with its best weights, configured as the run was trained
    (its args.json, read back as an evaluation reads it: arguments.parse_args of --mode eval).

    Returns (args, stage module in eval mode, checkpoint epoch).
    """
    folder = os.path.abspath(run_dir)
    args = parse_args(
        [
            *("--mode", "eval", "--device", str(device)),
            *("--ckpt", os.path.dirname(folder), "--id", os.path.basename(folder)),
        ]
    )
    if args.stage == "grd":
        raise SystemExit(
            f"{run_dir} is a GRD run (grounding only): it cannot separate; use a COL, CCoL "
            f"or SoP run"
        )
    nets = build_nets(args, starting_weights=False)
    ckpt = checkpoints.load_run(nets, args, "best")
    log_visual_weights(nets, args, dict.fromkeys(nets, ckpt["path"]))
    model = STAGES[args.stage](nets, StageConfig.from_args(args)).to(device).eval()
    return args, model, ckpt["epoch"]


def object_tracks(
    dets: np.ndarray, num_frames: int, class_names: dict[int, str], path: str = "detections"
) -> list[Track]:
    """One track per detected class, with a box in every frame 1..num_frames.

    Rows past the last frame are a DataError naming `path`, as the loader's: they are another
    video's detections (or of frames extracted at another rate).
    """
    check_detection_frames(dets, num_frames, path)
    tracks, used = [], set()
    for class_id in np.unique(dets[:, 1]).astype(int).tolist():
        frame_ids, boxes = top_boxes(dets[dets[:, 1] == class_id])  # (D,), (D, 4)
        # Each frame takes the box of the nearest frame where this class is detected.
        boxes, detected = fill_nearest(frame_ids, boxes, num_frames)  # (F, 4), (F,)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", class_names.get(class_id, f"class{class_id}"))
        if name in used or name == "mixture":
            name = f"{name}_{class_id}"
        used.add(name)
        # Rounded as PIL's crop rounds the reference's float boxes (as the loader does).
        tracks.append(Track(name, class_id, np.rint(boxes).astype(np.int64), detected))
    return tracks


def object_crops(folder: str, tracks: list[Track], num_frames: int, img_size: int) -> torch.Tensor:
    """Every object's crop in every frame, as the loader crops validation frames.

    No jitter, no flip. Returns uint8 (N, F, 3, S, S).
    """
    crops = torch.empty(len(tracks), num_frames, 3, img_size, img_size, dtype=torch.uint8)
    for k in range(1, num_frames + 1):
        image = load_frame(os.path.join(folder, layout.frame_name(k)))  # (3, H, W)
        size = (image.shape[2], image.shape[1])
        for n, track in enumerate(tracks):
            box = object_box(tuple(track.boxes[k - 1].tolist()), size)
            crops[n, k - 1] = crop_resize(image, box, img_size, img_size, None)
    return crops


# ----------------------------------------------------------------------------------------------
# Separation over the whole track
# ----------------------------------------------------------------------------------------------
def window_starts(length: int, window: int, hop: int) -> np.ndarray:
    """Starts of windows `hop` apart covering [0, max(length, window)).

    The last one ends at the end.
    """
    last = max(length - window, 0)
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return np.array(starts, dtype=np.int64)


def window_frames(starts: np.ndarray, args, num_frames: int) -> np.ndarray:
    """Frame ids (W, T) of each window: the frame shown at its centre, with the loader's offsets."""
    centre_time = (starts + args.aud_len / 2) / args.aud_rate
    centre = np.clip(np.floor(centre_time * args.frame_rate).astype(np.int64) + 1, 1, num_frames)
    offsets = frame_offsets(args.num_frames, args.stride_frames)  # (T,)
    return np.clip(centre[:, None] + offsets, 1, num_frames)


def _window_specs(
    frontend, mix_track: np.ndarray, starts: np.ndarray, length: int, batch_size: int, device
):
    """Batches of windows of `length` samples: (their slice of `starts`, the front end's analysis
    of their mixtures)."""
    for i in range(0, len(starts), batch_size):
        mix = np.stack([mix_track[s : s + length] for s in starts[i : i + batch_size]])
        yield slice(i, i + batch_size), frontend.analyse(torch.from_numpy(mix).to(device))


@torch.no_grad()
def window_maps(
    model,
    args,
    mix_track: np.ndarray,
    starts: np.ndarray,
    frame_ids: np.ndarray,
    folder: str,
    tracks: list[Track],
    batch_size: int,
    device: torch.device,
) -> WindowMaps:
    """Each object's sounding map (sounding_maps.map_kind) of each window's whole centre frame
    against the window's mixture, with the object's box there; frame_ids (W, T)."""
    centres = frame_ids[:, frame_ids.shape[1] // 2]  # (W,)
    size = map_frame_size(args.map_height)  # (H, W')
    source_size = frame_size(os.path.join(folder, layout.frame_name(1)))  # (W0, H0)
    scale = torch.tensor([size[1] / source_size[0], size[0] / source_size[1]] * 2)
    whole = torch.stack(
        [
            resize_frame(load_frame(os.path.join(folder, layout.frame_name(k))), size)
            for k in centres
        ]
    )  # (W, 3, H, W')
    boxes = torch.stack([torch.from_numpy(t.boxes[centres - 1]) for t in tracks], 1) * scale
    kind, N = map_kind(model.nets), len(tracks)
    maps = []
    windows = _window_specs(model.frontend, mix_track, starts, args.aud_len, batch_size, device)
    for window, spec in windows:
        frames = whole[window, None, :, None].expand(-1, N, -1, -1, -1, -1)  # (B, N, 3, 1, H, W')
        heat = sounding_maps(
            model.nets, model.config, spec, frames.to(device), boxes[window].to(device), (kind,)
        )[kind]
        maps.append(localization.upsample(heat, size).cpu())
    return WindowMaps(kind, torch.cat(maps).numpy(), whole, boxes)


@torch.no_grad()
def separate(
    model,
    args,
    mix_track: np.ndarray,
    crops: torch.Tensor,
    starts: np.ndarray,
    frame_ids: np.ndarray,
    batch_size: int,
    gate: bool,
    device: torch.device,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Each object's waveform over the whole (padded) track, and per-window sounding probabilities.

    mix_track (L,) with L >= aud_len, crops uint8 (N, F, 3, S, S), starts (W,), frame_ids (W, T).
    Returns estimates float32 (N, L) and probabilities (W, N) (None without grounding nets).
    """
    W = args.aud_len
    N, L = crops.shape[0], len(mix_track)
    # Hann weights without the zero end points: every sample has a positive total weight.
    taper = np.hanning(W + 2)[1:-1]
    total = np.zeros((N, L))
    weight = np.zeros(L)
    probs = []
    windows = _window_specs(model.frontend, mix_track, starts, W, batch_size, device)
    for window, spec in windows:
        ids = torch.from_numpy(frame_ids[window] - 1)  # (B, T)
        frames = crops[:, ids].permute(1, 0, 3, 2, 4, 5)  # (B, N, 3, T, S, S)
        frames = normalize_frames(frames.to(device))
        masks = model.object_masks(spec, frames)  # (B, N, 1, Fw, T)
        est = model.frontend.reconstruct(masks, spec, args.aud_len)  # (B, N, W)
        if "grounding" in model.nets:
            prob = model.mixture_grounding(spec, frames)  # (B, N)
            probs.append(prob.cpu().numpy())
            if gate:
                est = est * is_sounding(prob).to(est.dtype)[..., None]
        est = est.double().cpu().numpy()
        for b, s in enumerate(starts[window]):
            total[:, s : s + W] += est[b] * taper
            weight[s : s + W] += taper
    return (total / weight).astype(np.float32), (np.concatenate(probs) if probs else None)
