"""Separate every object's sound in a video with a trained run: one wav per object and an HTML page.

    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --video my.mp4 \\
        --detections my.mp4.npy --out sep/
    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --video my.mp4 --out sep/ \\
        --weights detector.pth --class-map classes.json
    python scripts/separate_video.py --run ckpt/MUSIC_CCoL --video my.mp4 --out sep/ \\
        --detector owlvit --weights google/owlvit-base-patch32
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

This script is the command line: where the boxes come from, the output folder, the files written.
Tracks, windows and the overlap-added separation are separation.py's; the page is
viz/video_page.py's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile

import av
import numpy as np
import soundfile as sf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import checkpoints  # noqa: E402
import utils  # noqa: E402
from dataset import DataError, layout  # noqa: E402
from dataset.readers import (  # noqa: E402
    check_detection_boxes,
    frame_size,
    list_frame_ids,
    load_detections,
    load_frame,
)
from scripts import detect_objects  # noqa: E402
from scripts.extract_frames_audio import ExtractionError, extract_video  # noqa: E402
from separation import (  # noqa: E402
    load_run,
    object_crops,
    object_tracks,
    separate,
    window_frames,
    window_maps,
    window_starts,
)
from viz.video_page import write_video_page  # noqa: E402

NO_BOXES = (
    "no object boxes: pass --detections VIDEO.mp4.npy (a CoSep detection file), or --weights "
    "DETECTOR.pth --class-map CLASSES.json to detect here with a torchvision detector "
    "(as scripts/detect_objects.py --weights does), or --detector owlvit --weights "
    "google/owlvit-base-patch32 (a model id or local folder), or --from-annotations ID.json for a "
    "synthetic video"
)


# ----------------------------------------------------------------------------------------------
# Object boxes (where a new box source, e.g. another detector, is added)
# ----------------------------------------------------------------------------------------------
def detection_rows(opts, frames_folder: str, device: str) -> tuple[np.ndarray, dict[int, str]]:
    """The object boxes of the video: CoSep rows (K, 7) for the extracted frames, and names of
    their class ids, from whichever source the command line gives (--detections, --from-annotations
    or a detector run here on the frames, --weights).

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
        model, names, score_thresh = detect_objects.make_detector(
            opts.detector, opts.weights, device, opts.arch, opts.class_map, opts.score_thresh
        )
        rows = detect_objects.model_rows(
            model,
            frames_folder,
            frame_ids,
            batch_size=8,
            score_thresh=score_thresh,
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


def write_wav(path: str, wave: np.ndarray, rate: int) -> None:
    """A float waveform as a 16-bit PCM wav."""
    utils.atomic_write(path, lambda f: sf.write(f, wave, rate, subtype="PCM_16", format="WAV"))


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
        "--weights",
        help="detector run on the extracted frames: torchvision, a local weights file; owlvit, a "
        "Hugging Face model id (e.g. google/owlvit-base-patch32) or a local folder",
    )
    p.add_argument(
        "--detector",
        default="torchvision",
        choices=("torchvision", "owlvit"),
        help="--weights: torchvision (--arch, --class-map) or OWL-ViT/OWLv2 queried with the "
        "instrument names (default: torchvision)",
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
        default=None,
        help="--weights: keep detections >= this (default: 0.3; owlvit 0.1)",
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
    if opts.detector == "owlvit" and opts.class_map and not opts.detections:
        parser.error("--class-map is for torchvision detectors; owlvit's ids are the class table's")
    if opts.detector == "torchvision" and opts.weights and not opts.class_map:
        parser.error("--weights needs --class-map (JSON {label: class name} of the detector)")
    # Checked before the (slow, for a long video) extraction.
    for flag, path in (
        ("--video", opts.video),
        ("--detections", opts.detections),
        ("--from-annotations", opts.from_annotations),
        ("--weights", opts.weights if opts.detector == "torchvision" else None),
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
            tracks = object_tracks(dets, num_frames, class_names)
        except DataError as err:
            raise SystemExit(str(err)) from err
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
        frame_ids = window_frames(starts, args, num_frames)  # (W, T)
        estimates, probs = separate(
            model, args, padded, crops, starts, frame_ids, opts.batch_size, opts.gate, device
        )
        sounding_maps = None
        if args.map_height:
            sounding_maps = window_maps(
                model,
                args,
                padded,
                starts,
                frame_ids,
                frames_folder,
                tracks,
                opts.batch_size,
                device,
            )
        estimates = estimates[:, : len(mixture)]

        write_wav(os.path.join(opts.out, "mixture.wav"), mixture, args.aud_rate)
        objects = []
        for n, track in enumerate(tracks):
            write_wav(os.path.join(opts.out, f"{track.name}.wav"), estimates[n], args.aud_rate)
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
        page = write_video_page(
            opts.out, work, info, tracks, estimates, mixture, probs, starts, args, sounding_maps
        )
    for obj in objects:
        prob = "" if obj["sounding_prob"] is None else f", sounding p = {obj['sounding_prob']:.2f}"
        print(f"  {os.path.join(opts.out, obj['wav'])}{prob}")
    print(f"{len(starts)} windows; page: {page}")
    return info


if __name__ == "__main__":
    main()
