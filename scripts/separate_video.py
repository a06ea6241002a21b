"""Separate every object's sound in a video with a trained run: one wav per object and an HTML page.

    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --video my.mp4 \\
        --detections my.mp4.npy --out sep/
    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --video my.mp4 --out sep/ \\
        --weights detector.pth --class-map classes.json
    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --out sep/ \\
        --video data/synthetic/videos/cello/ID.mp4 \\
        --from-annotations data/synthetic/annotations/cello/ID.json

The video is extracted as for training (scripts/extract_frames_audio.py: frames at the run's frame
rate, mono audio at its sample rate). Objects are the detected classes: per class, its top-scoring
box in each frame, or the nearest frame's box where the class is not detected. The whole track is
cut into windows of the run's clip length, `--hop-sec` apart (default: half a window); each window
is separated with the frames around its centre, cropped and normalised as the loader prepares
validation frames, and the windows' estimates are overlap-added with Hann weights. Runs with
grounding nets (COL, CCoL) also give each object's sounding probability: the grounding head on the
mixture window and the object, averaged over the windows.

Writes <out>/<object>.wav, <out>/mixture.wav, <out>/objects.json and <out>/index.html (and
<out>/detections.npy when the boxes come from annotations or a detector).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass

import av
import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import checkpoints  # noqa: E402
import utils  # noqa: E402
import viz  # noqa: E402
from arguments import parse_args  # noqa: E402
from dataset import DataError, layout, normalize_frames  # noqa: E402
from dataset.readers import (  # noqa: E402
    check_detection_boxes,
    frame_size,
    list_frame_ids,
    load_detections,
    load_frame,
    top_boxes,
)
from dataset.transforms import crop_resize, object_box  # noqa: E402
from models.grounding_net import sounding_probability  # noqa: E402
from models.spectral import stft, warp_log_freq  # noqa: E402
from scripts import detect_objects  # noqa: E402
from scripts.extract_frames_audio import ExtractionError, extract_video  # noqa: E402
from stages import STAGES  # noqa: E402
from training import build_nets  # noqa: E402

NUM_THUMBS = 6  # frames shown per object on the page
SPEC_PX = 640  # longest side of a whole-track spectrogram image
NO_BOXES = (
    "no object boxes: pass --detections VIDEO.mp4.npy (a CoSep detection file), or --weights "
    "DETECTOR.pth --class-map CLASSES.json to detect here with a torchvision detector "
    "(as scripts/detect_objects.py --weights does), or --from-annotations ID.json for a "
    "synthetic video"
)


@dataclass
class Track:
    """One object: a detection class followed through the video."""

    name: str
    class_id: int
    boxes: np.ndarray  # int64 (F, 4): box in each frame 1..F, x1 y1 x2 y2 in frame pixels
    detected: (
        np.ndarray
    )  # bool (F,): frames where the class is detected (others reuse the nearest box)


# ----------------------------------------------------------------------------------------------
# Run, video, boxes
# ----------------------------------------------------------------------------------------------
def load_run(run_dir: str, device: torch.device):
    """The stage module of a trained run with its best weights, architecture from its args.json.

    Returns (args, stage module in eval mode, checkpoint epoch).
    """
    stage = checkpoints.saved_args(run_dir)["stage"]
    if stage == "grd":
        raise SystemExit(
            f"{run_dir} is a GRD run (grounding only): it cannot separate; use a COL, CCoL "
            f"or SoP run"
        )
    parsed = parse_args(
        [
            "--mode",
            "eval",
            "--stage",
            stage,
            "--device",
            str(device),
            "--ckpt",
            os.path.dirname(os.path.abspath(run_dir)),
            "--id",
            os.path.basename(os.path.abspath(run_dir)),
        ]
    )
    args = checkpoints.run_args(parsed, run_dir)
    # The builders warn that the ResNets start random; the checkpoint replaces those weights.
    logging.getLogger("models").setLevel(logging.ERROR)
    nets = build_nets(args)
    ckpt = checkpoints.load_run(nets, args, "best")
    model = STAGES[stage](nets, args).to(device).eval()
    return args, model, ckpt["epoch"]


def detection_rows(opts, frames_folder: str, device: str) -> tuple[np.ndarray, dict[int, str]]:
    """CoSep rows (K, 7) for the extracted frames, and names of their class ids.

    Rows made here (annotations, detector) are also written to <out>/detections.npy for reuse.
    """
    if opts.detections:
        try:
            dets = load_detections(opts.detections)
        except DataError as err:
            raise SystemExit(str(err)) from err
        return dets, detect_objects.read_class_map(opts.class_map) if opts.class_map else {}
    frame_ids = sorted(list_frame_ids(frames_folder))
    if opts.from_annotations:
        try:
            with open(opts.from_annotations) as f:
                annotation = json.load(f)
        except (OSError, ValueError) as err:
            raise SystemExit(f"{opts.from_annotations}: unreadable annotation ({err})") from err
        image = load_frame(
            os.path.join(frames_folder, layout.frame_name(frame_ids[0]))
        )  # (3, H, W)
        image_size = (image.shape[2], image.shape[1])
        # No frame left out (miss rate 0); scores only rank the objects of a frame.
        try:
            rows = detect_objects.annotation_rows(
                annotation, frame_ids, image_size, np.random.default_rng(0), 0.0
            )
        except (KeyError, IndexError, TypeError) as err:
            raise SystemExit(
                f"{opts.from_annotations}: not a synthetic video annotation ({err!r})"
            ) from err
        names = {layout.detection_class_id(c): c for c in layout.CLASS_TO_ID}  # detect_objects' ids
    else:
        names = detect_objects.read_class_map(opts.class_map)
        model = detect_objects.build_detector(opts.arch, opts.weights, max(names) + 1, device)
        rows = detect_objects.model_rows(
            model,
            frames_folder,
            frame_ids,
            batch_size=8,
            score_thresh=opts.score_thresh,
            device=device,
        )
    # Through the file format, so that these rows pass the checks a detection file passes.
    path = os.path.join(opts.out, "detections.npy")
    detect_objects.save_atomic(path, rows)
    try:
        return load_detections(path), names
    except DataError as err:
        raise SystemExit(f"no usable detection in the video: {err}") from err


@contextlib.contextmanager
def output_folder(path: str):
    """Creates `path` for the outputs; a run that fails removes it again if it created it."""
    created = not os.path.exists(path)
    os.makedirs(path, exist_ok=True)
    try:
        yield
    except BaseException:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise


def object_tracks(dets: np.ndarray, num_frames: int, class_names: dict[int, str]) -> list[Track]:
    """One track per detected class, with a box in every frame 1..num_frames."""
    dets = dets[dets[:, 0] <= num_frames]
    frames = np.arange(1, num_frames + 1)
    tracks, used = [], set()
    for class_id in np.unique(dets[:, 1]).astype(int).tolist():
        frame_ids, boxes = top_boxes(dets[dets[:, 1] == class_id])  # (D,), (D, 4)
        # Each frame takes the box of the nearest frame where this class is detected.
        right = np.clip(np.searchsorted(frame_ids, frames), 0, len(frame_ids) - 1)
        left = np.clip(right - 1, 0, len(frame_ids) - 1)
        nearest = np.where(
            np.abs(frame_ids[left] - frames) <= np.abs(frame_ids[right] - frames), left, right
        )
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", class_names.get(class_id, f"class{class_id}"))
        if name in used or name == "mixture":
            name = f"{name}_{class_id}"
        used.add(name)
        # Rounded as PIL's crop rounds the reference's float boxes (as the loader does).
        tracks.append(
            Track(
                name, class_id, np.rint(boxes[nearest]).astype(np.int64), np.isin(frames, frame_ids)
            )
        )
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
    offsets = (np.arange(args.num_frames) - args.num_frames // 2) * args.stride_frames
    return np.clip(centre[:, None] + offsets, 1, num_frames)


def mixture_grounding(nets, log_mag_mix: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """Sounding probability of each object against the mixture.

    (B, 1, Fw, T), (B, N, ...) -> (B, N).
    """
    B, N = frames.shape[:2]
    audio = nets["sound_ground"](log_mag_mix)  # (B, Da)
    visual = (
        nets["frame_ground"].forward_multiframe(frames.flatten(0, 1)).view(B, N, -1)
    )  # (B, N, Dv)
    return sounding_probability(nets["grounding"](audio[:, None], visual).float())


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
    for i in range(0, len(starts), batch_size):
        batch_starts = starts[i : i + batch_size]
        mix = torch.from_numpy(np.stack([mix_track[s : s + W] for s in batch_starts])).to(
            device
        )  # (B, W)
        ids = torch.from_numpy(frame_ids[i : i + batch_size] - 1)  # (B, T)
        frames = crops[:, ids].permute(1, 0, 3, 2, 4, 5)  # (B, N, 3, T, S, S)
        frames = normalize_frames(frames.to(device))
        # The front end wants sources too; the mixture stands in, only its mixture outputs are used.
        spec = model.frontend(mix[:, None], mix)
        masks = model.object_masks(spec, frames)  # (B, N, 1, Fw, T)
        est = model.frontend.reconstruct(masks, spec, args.aud_len)  # (B, N, W)
        if "grounding" in model.nets:
            prob = mixture_grounding(model.nets, spec["log_mag_mix"], frames)  # (B, N)
            probs.append(prob.cpu().numpy())
            if gate:
                est = est * (prob > 0.5).to(est.dtype)[..., None]
        est = est.double().cpu().numpy()
        for b, s in enumerate(batch_starts):
            total[:, s : s + W] += est[b] * taper
            weight[s : s + W] += taper
    return (total / weight).astype(np.float32), (np.concatenate(probs) if probs else None)


# ----------------------------------------------------------------------------------------------
# Page
# ----------------------------------------------------------------------------------------------
def spectrogram_images(waves: np.ndarray, args) -> np.ndarray:
    """Log-frequency dB images of (M, L) waveforms re the first one's peak.

    Returns uint8 (M, h, w), row 0 low.
    """
    mag = stft(torch.from_numpy(waves), args.stft_frame, args.stft_hop).abs()
    if args.log_freq:
        mag = warp_log_freq(mag, args.warp_bins)
    db = 20 * torch.log10(mag + 1e-8)
    return viz.to_u8(viz.shrink((db - db[0].max()) / viz.DB_RANGE + 1, SPEC_PX))


def probability_timeline(probs: np.ndarray, starts: np.ndarray, rate: int) -> str:
    """One cell per window, green when the object sounds (p > 0.5), its opacity the probability."""
    cells = "".join(
        f'<span style="background:rgba({"31,157,85" if p > 0.5 else "107,114,128"},'
        f'{0.25 + 0.75 * p:.2f})" '
        f'title="{s / rate:.1f} s: p = {p:.2f}"></span>'
        for p, s in zip(probs, starts)
    )
    return f'<div class="timeline">{cells}</div>'


PAGE_CSS = """
.timeline { display:flex; height:12px; width:300px; margin-top:6px; border-radius:3px;
            overflow:hidden; }
.timeline span { flex:1; }
img.track { display:block; width:360px; height:100px; border-radius:4px; background:#000; }
audio.track { width:360px; }
"""


def write_page(
    out_dir: str,
    work_root: str,
    info: dict,
    tracks: list[Track],
    estimates: np.ndarray,
    mixture: np.ndarray,
    probs: np.ndarray | None,
    starts: np.ndarray,
    args,
) -> str:
    """<out>/index.html with media under <out>/media: frames with boxes, spectrograms, players."""
    media = os.path.join(out_dir, "media")
    os.makedirs(media, exist_ok=True)
    specs = spectrogram_images(np.concatenate([mixture[None], estimates]), args)
    viz.save_colormapped(specs[0], os.path.join(media, "mixture.jpg"), "magma")
    num_frames = len(tracks[0].boxes)
    shown = np.unique(np.linspace(1, num_frames, min(NUM_THUMBS, num_frames)).round().astype(int))
    rows = []
    for n, track in enumerate(tracks):
        viz.save_colormapped(specs[n + 1], os.path.join(media, f"{track.name}.jpg"), "magma")
        # Extracted frames live in <work>/frames/video.mp4, i.e. the frames of info '/video.wav'.
        viz.frame_strip(
            work_root,
            "/video.wav",
            shown,
            track.boxes[shown - 1],
            os.path.join(media, f"{track.name}_frames.jpg"),
        )
        ground = '<div class="small">no grounding nets in this run</div>'
        if probs is not None:
            p = float(probs[:, n].mean())
            ground = (
                f'<span class="badge {"ok" if p > 0.5 else "silent"}" '
                'title="mean over windows of the '
                f'probability that this object makes sound">sounding p = {p:.2f}</span>'
                + probability_timeline(probs[:, n], starts, args.aud_rate)
            )
        detected = int(track.detected.sum())
        rows.append(
            f'<tr><td><div class="cls">{viz.esc(track.name)}</div><div class="small">class id '
            f"{track.class_id}; detected in {detected} of {num_frames} frames</div>{ground}</td>"
            f'<td><img class="strip" src="{viz.url("media/" + track.name + "_frames.jpg")}" '
            'alt="frames">'
            f'<div class="small">frames {", ".join(map(str, shown))}</div></td>'
            f'<td><img class="track" src="{viz.url("media/" + track.name + ".jpg")}" '
            'alt="spectrogram">'
            '<audio class="track" controls preload="none" '
            f'src="{viz.url(track.name + ".wav")}"></audio></td></tr>'
        )
    meta = " &nbsp;·&nbsp; ".join(
        f"<b>{viz.esc(k)}</b> {viz.esc(v)}"
        for k, v in (
            ("video", info["video"]),
            ("run", info["run"]),
            ("stage", info["stage"]),
            ("checkpoint epoch", info["checkpoint_epoch"]),
            ("duration", f"{info['duration_sec']:.1f} s"),
            (
                "windows",
                f"{len(starts)} of {args.aud_len / args.aud_rate:.2f} s, "
                f"hop {info['hop_sec']:.2f} s",
            ),
            ("gated by grounding", "yes" if info["gated"] else "no"),
        )
    )
    head = (
        f'<h1>{viz.esc(os.path.basename(info["video"]))}</h1><div class="sub">sounds of '
        f'{len(tracks)} objects, separated over the whole track</div><div class="meta">{meta}</div>'
    )
    body = (
        f'<h2>Mixture</h2><div class="panel mix"><img class="track" src="media/mixture.jpg" '
        f'alt="mixture spectrogram"><audio class="track" controls preload="none" '
        f'src="mixture.wav"></audio></div>'
        f'<h2>Objects</h2><div class="panel"><table class="objects"><thead><tr><th>object</th>'
        f"<th>frames (box used for the crops)</th><th>separated sound (log-frequency spectrogram, "
        f"−{viz.DB_RANGE:.0f}..0 dB re the mixture's peak)</th></tr></thead><tbody>{''.join(rows)}"
        f"</tbody></table></div>"
    )
    page = viz.render_page(f"separated: {os.path.basename(info['video'])}", head, body, PAGE_CSS)
    path = os.path.join(out_dir, "index.html")
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    return path


# ----------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--run", required=True, help="trained run folder, e.g. ckpt/MUSIC_CCoL (required)"
    )
    p.add_argument("--video", required=True, help="video file with an audio track (required)")
    p.add_argument(
        "--out", required=True, help="output folder (created; our files in it are replaced)"
    )
    boxes = p.add_mutually_exclusive_group()
    boxes.add_argument(
        "--detections", help="CoSep detection file (K, 7) of this video's 1-fps frames"
    )
    boxes.add_argument(
        "--from-annotations", metavar="JSON", help="synthetic video: its annotation file"
    )
    boxes.add_argument(
        "--weights", help="local weights of a torchvision detector, run on the extracted frames"
    )
    p.add_argument(
        "--class-map",
        help="JSON {label: class name} naming detection class ids (needed with --weights)",
    )
    p.add_argument(
        "--arch",
        default="fasterrcnn_resnet50_fpn",
        choices=detect_objects.DETECTORS,
        help="--weights: detector architecture (default: fasterrcnn_resnet50_fpn)",
    )
    p.add_argument(
        "--score-thresh",
        type=float,
        default=0.3,
        help="--weights: keep detections >= this (default: 0.3)",
    )
    p.add_argument(
        "--hop-sec",
        type=float,
        default=None,
        help="seconds between window starts (default: half the run's clip, 50%% overlap)",
    )
    p.add_argument(
        "--gate",
        action="store_true",
        help="silence an object in the windows where grounding says it is silent (p <= 0.5)",
    )
    p.add_argument(
        "--batch-size", type=int, default=16, help="windows per forward pass (default: 16)"
    )
    p.add_argument(
        "--device", default="auto", help="'auto' (cuda if available), 'cpu', 'cuda', ..."
    )
    return p


def main(argv=None) -> dict:
    parser = build_parser()
    opts = parser.parse_args(argv)
    if opts.weights and not opts.class_map:
        parser.error("--weights needs --class-map (JSON {label: class name} of the detector)")
    # Checked before the (slow, for a long video) extraction.
    for flag, path in (
        ("--video", opts.video),
        ("--detections", opts.detections),
        ("--from-annotations", opts.from_annotations),
        ("--weights", opts.weights),
        ("--class-map", opts.class_map),
    ):
        if path is not None and not os.path.isfile(path):
            raise SystemExit(f"{flag} {path}: file not found")
    if opts.detections is None and opts.from_annotations is None and opts.weights is None:
        raise SystemExit(NO_BOXES)
    device = utils.select_device(opts.device)
    try:
        args, model, epoch = load_run(opts.run, device)
    except checkpoints.CheckpointError as err:
        raise SystemExit(str(err)) from err
    hop = round(opts.hop_sec * args.aud_rate) if opts.hop_sec else args.aud_len // 2
    if not 0 < hop <= args.aud_len:
        raise SystemExit(
            f"--hop-sec must give a hop in (0, {args.aud_len / args.aud_rate:.2f}] s, "
            f"got {opts.hop_sec}"
        )

    with output_folder(opts.out), tempfile.TemporaryDirectory(prefix="separate-") as work:
        frames_folder = layout.frames_dir(work, "/video.mp4")
        try:
            num_frames, seconds = extract_video(
                opts.video,
                frames_folder,
                layout.audio_path(work, "/video.wav"),
                fps=args.frame_rate,
                rate=args.aud_rate,
            )
        except (ExtractionError, av.FFmpegError, OSError, ValueError) as err:
            raise SystemExit(f"{opts.video}: cannot extract frames and audio ({err})") from err
        mixture, _ = sf.read(layout.audio_path(work, "/video.wav"), dtype="float32")  # (L,)
        dets, class_names = detection_rows(opts, frames_folder, str(device))
        try:
            first_frame = os.path.join(frames_folder, layout.frame_name(1))
            check_detection_boxes(
                dets,
                frame_size(first_frame),
                opts.detections or os.path.join(opts.out, "detections.npy"),
            )
        except DataError as err:
            raise SystemExit(str(err)) from err
        tracks = object_tracks(dets, num_frames, class_names)
        if not tracks:
            raise SystemExit(f"no detection falls in the video's {num_frames} frames")
        print(
            f"{opts.video}: {seconds:.1f} s, {num_frames} frames; "
            f"objects: {', '.join(t.name for t in tracks)}"
        )

        crops = object_crops(frames_folder, tracks, num_frames, args.img_size)
        padded = np.pad(
            mixture, (0, max(args.aud_len - len(mixture), 0))
        )  # a track shorter than a clip
        starts = window_starts(len(padded), args.aud_len, hop)
        estimates, probs = separate(
            model,
            args,
            padded,
            crops,
            starts,
            window_frames(starts, args, num_frames),
            opts.batch_size,
            opts.gate,
            device,
        )
        estimates = estimates[:, : len(mixture)]

        sf.write(os.path.join(opts.out, "mixture.wav"), mixture, args.aud_rate, subtype="PCM_16")
        objects = []
        for n, track in enumerate(tracks):
            sf.write(
                os.path.join(opts.out, f"{track.name}.wav"),
                estimates[n],
                args.aud_rate,
                subtype="PCM_16",
            )
            objects.append(
                {
                    "name": track.name,
                    "class_id": track.class_id,
                    "wav": f"{track.name}.wav",
                    "frames_detected": int(track.detected.sum()),
                    "sounding_prob": None if probs is None else float(probs[:, n].mean()),
                    "sounding_prob_windows": None
                    if probs is None
                    else probs[:, n].round(4).tolist(),
                }
            )
        info = {
            "video": os.path.abspath(opts.video),
            "run": os.path.abspath(opts.run),
            "stage": args.stage,
            "checkpoint_epoch": epoch,
            "sample_rate": args.aud_rate,
            "duration_sec": len(mixture) / args.aud_rate,
            "num_frames": num_frames,
            "window": args.aud_len,
            "hop_sec": hop / args.aud_rate,
            "window_starts": starts.tolist(),
            "gated": bool(opts.gate and probs is not None),
            "objects": objects,
        }
        utils.atomic_write_json(info, os.path.join(opts.out, "objects.json"))
        page = write_page(opts.out, work, info, tracks, estimates, mixture, probs, starts, args)
    for obj in objects:
        prob = "" if obj["sounding_prob"] is None else f", sounding p = {obj['sounding_prob']:.2f}"
        print(f"  {os.path.join(opts.out, obj['wav'])}{prob}")
    print(f"{len(starts)} windows; page: {page}")
    return info


if __name__ == "__main__":
    main()
