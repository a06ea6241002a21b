"""Writes CoSep-format detection files for every frames folder, from annotations, a torchvision
detector or an open-vocabulary OWL-ViT/OWLv2 detector queried with the instrument names.

Output: `<root>/detection_results/<class>/<id>.mp4.npy`, float32 (K, 7), one row per object per
frame: [frame_id (1-based, from the jpg name), class_id, score, x1, y1, x2, y2], boxes in pixels
of the extracted frame. The loader uses the top-scoring row of each frame and ignores class_id.

- `--from-annotations` (synthetic data): rows from the true boxes in `<root>/annotations`;
  class_id is layout.detection_class_id: the class table's id + 1 (1..21 for MUSIC-21), NOT
  CoSep's Open-Images ids.
  The rows carry the errors of a real detector, simulated by synthetic/detections.py and seeded
  per video (`--seed`) so they are deterministic. Defaults: a `--miss-rate` 0.02 of frames gets
  no row at all (the loader then uses the full frame); each object is missed in a further
  `--object-miss-rate` 0.05 of frames; every box edge moves by Gaussian `--jitter` of 0.03 of the
  box's width or height; and in a `--false-positive-rate` 0.15 of frames a box on the player or
  clutter is reported with a random MUSIC instrument class.
- `--weights`: a torchvision detection model with the user's local weights (never downloaded);
  class_id is the model's label, named by `--class-map`.
- `--detector owlvit --weights google/owlvit-base-patch32` (a Hugging Face model id, OWL-ViT or
  OWLv2, from the hub cache or downloaded into it; or a local save_pretrained folder): text queries
  "a photo of a <instrument>" for the `--classes` (default: all 21 of the class table); class_id is
  layout.detection_class_id, as for annotations. Per frame: boxes scoring >= `--score-thresh`
  (default 0.1), class-agnostic NMS at `--nms-iou` 0.5, the `--top-k` 5 best (dataset/owlvit.py).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

import utils  # noqa: E402
from dataset import DataError, layout, owlvit  # noqa: E402
from dataset.readers import list_frame_ids  # noqa: E402
from synthetic.detections import (  # noqa: E402
    SIMULATED,
    annotation_rows,  # noqa: F401  still reached through here by scripts/separate_video.py
    video_detections,
)

# torchvision.models.detection builders that take (weights, weights_backbone, num_classes).
DETECTORS = (
    "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2",
    "fasterrcnn_mobilenet_v3_large_fpn",
    "fasterrcnn_mobilenet_v3_large_320_fpn",
    "retinanet_resnet50_fpn",
    "retinanet_resnet50_fpn_v2",
    "fcos_resnet50_fpn",
    "ssd300_vgg16",
    "ssdlite320_mobilenet_v3_large",
)


def list_videos(root: str) -> list[tuple[str, str]]:
    """(class, video id) of every `frames/<class>/<id>.mp4` folder, sorted."""
    videos = []
    frames_root = os.path.join(root, layout.FRAMES)
    if not os.path.isdir(frames_root):
        sys.exit(f"error: {frames_root} not found")
    for class_name in sorted(os.listdir(frames_root)):
        class_dir = os.path.join(frames_root, class_name)
        if os.path.isdir(class_dir):
            videos += [
                (class_name, name[: -len(".mp4")])
                for name in sorted(os.listdir(class_dir))
                if name.endswith(".mp4") and os.path.isdir(os.path.join(class_dir, name))
            ]
    return videos


def build_detector(arch: str, weights: str, num_classes: int, device: str):
    """A torchvision detector with the weights of a local file; nothing is downloaded."""
    if not os.path.isfile(weights):
        sys.exit(f"error: weights file {weights} not found")
    model = getattr(torchvision.models.detection, arch)(
        weights=None, weights_backbone=None, num_classes=num_classes
    )
    state = torch.load(weights, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "model" in state:  # torchvision reference-script checkpoints
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as err:
        detail = str(err).splitlines()
        sys.exit(
            f"error: {weights} does not hold weights of {arch} with {num_classes} classes "
            f"(--class-map): {' '.join(detail[:3])[:600]}"
        )
    return model.eval().to(device)


def load_image(path: str) -> torch.Tensor:
    """A jpg as float (3, H, W) in [0, 1], the detection models' input."""
    with Image.open(path) as img:
        return (
            torch.from_numpy(np.asarray(img.convert("RGB")).copy()).permute(2, 0, 1).float() / 255.0
        )


def model_rows(
    model, folder: str, frame_ids: list[int], batch_size: int, score_thresh: float, device: str
) -> np.ndarray:
    """Detection rows of one video from the model, float32 (K, 7)."""
    rows = []
    for start in range(0, len(frame_ids), batch_size):
        ids = frame_ids[start : start + batch_size]
        images = [load_image(os.path.join(folder, layout.frame_name(k))).to(device) for k in ids]
        with torch.inference_mode():
            outputs = model(images)
        for k, out in zip(ids, outputs):
            keep = out["scores"] >= score_thresh
            for label, score, box in zip(
                out["labels"][keep].tolist(),
                out["scores"][keep].tolist(),
                out["boxes"][keep].tolist(),
            ):
                rows.append([k, label, score, *box])
    return np.array(rows, np.float32).reshape(-1, len(layout.DETECTION_COLUMNS))


def save_atomic(path: str, array: np.ndarray) -> None:
    """Writes via a temporary file, so an interrupted run never leaves a half-written npy."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    utils.atomic_save_npy(array, path)


def make_detector(
    detector: str,
    weights: str,
    device: str,
    arch: str = "fasterrcnn_resnet50_fpn",
    class_map: str | None = None,
    score_thresh: float | None = None,
    classes: str | None = None,
    top_k: int = owlvit.TOP_K,
    nms_iou: float = owlvit.NMS_IOU,
):
    """(model, {class_id: class name}, score threshold) of `--detector` with `--weights`.

    The model maps a list of float (3, H, W) images on `device` to torchvision-style detections
    (model_rows); `score_thresh` None is the detector's default (0.3 torchvision, 0.1 OWL-ViT).
    """
    if detector == "owlvit":
        try:
            names = owlvit.parse_classes(classes)
        except ValueError as err:
            sys.exit(f"error: --classes: {err}")
        thresh = owlvit.SCORE_THRESH if score_thresh is None else score_thresh
        try:
            model = owlvit.build_detector(
                weights, device, names, score_thresh=thresh, top_k=top_k, nms_iou=nms_iou
            )
        except owlvit.WeightsError as err:
            sys.exit(f"error: {err}")
        return model, {layout.detection_class_id(name): name for name in names}, thresh
    if class_map is None:
        sys.exit("error: --weights of a torchvision detector needs --class-map")
    names = read_class_map(class_map)
    model = build_detector(arch, weights, max(names) + 1, device)
    return model, names, 0.3 if score_thresh is None else score_thresh


def read_class_map(path: str) -> dict[int, str]:
    with open(path) as f:
        class_map = {int(label): name for label, name in json.load(f).items()}
    if not class_map or min(class_map) < 1:
        sys.exit(f"error: {path}: labels must be >= 1 (0 is the detector's background)")
    return class_map


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", required=True, help="data root with frames/ (and annotations/)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-annotations",
        action="store_true",
        help="rows from annotations/<class>/<id>.json (synthetic data)",
    )
    source.add_argument(
        "--weights",
        help="torchvision: local weights file; owlvit: Hugging Face model id (e.g. "
        f"{owlvit.DEFAULT_MODEL}) or local save_pretrained folder",
    )
    parser.add_argument(
        "--detector",
        default="torchvision",
        choices=("torchvision", "owlvit"),
        help="model behind --weights: a torchvision detector (--arch, --class-map) or an "
        "open-vocabulary OWL-ViT/OWLv2 queried with the class names (default: torchvision)",
    )
    parser.add_argument(
        "--class-map",
        help="JSON {label index: class name} of the model; required with torchvision --weights",
    )
    parser.add_argument(
        "--arch",
        default="fasterrcnn_resnet50_fpn",
        choices=DETECTORS,
        help="torchvision detection architecture (default: fasterrcnn_resnet50_fpn)",
    )
    parser.add_argument(
        "--score-thresh",
        type=float,
        default=None,
        help="model path: keep detections scoring at least this (default: 0.3 as CoSep; "
        f"owlvit {owlvit.SCORE_THRESH})",
    )
    parser.add_argument(
        "--classes",
        default=None,
        help="owlvit: classes to query, 'music21' (default), 'music11' or a comma list",
    )
    parser.add_argument(
        "--top-k",
        type=int,
        default=owlvit.TOP_K,
        help=f"owlvit: boxes kept per frame (default: {owlvit.TOP_K})",
    )
    parser.add_argument(
        "--nms-iou",
        type=float,
        default=owlvit.NMS_IOU,
        help=f"owlvit: class-agnostic NMS IoU threshold (default: {owlvit.NMS_IOU})",
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="model path: frames per forward pass (default: 8)"
    )
    parser.add_argument(
        "--device",
        default=None,
        help="model path: torch device (default: cuda if available, else cpu)",
    )
    for name, what in (
        ("miss_rate", "fraction of frames left without detection"),
        ("object_miss_rate", "fraction of frames each object is missed in"),
        ("jitter", "std of box edge shifts, fraction of box size"),
        ("false_positive_rate", "fraction of frames with a box on the player or clutter"),
    ):
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=float,
            default=SIMULATED[name],
            help=f"annotation path: {what} (default: {SIMULATED[name]})",
        )
    parser.add_argument(
        "--seed", type=int, default=1234, help="annotation path: score/miss seed (default: 1234)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="redo videos whose npy exists (default: skip them)"
    )
    args = parser.parse_args(argv)
    if args.detector == "owlvit" and not args.weights:
        parser.error("--detector owlvit needs --weights (a model id or a local folder)")
    if args.detector == "owlvit" and args.class_map:
        parser.error("--class-map is for torchvision detectors; owlvit's ids are the class table's")
    if args.detector == "torchvision" and args.weights and not args.class_map:
        parser.error("--weights needs --class-map")

    model, device = None, args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    score_thresh = args.score_thresh
    if args.weights:
        model, class_map, score_thresh = make_detector(
            args.detector,
            args.weights,
            device,
            args.arch,
            args.class_map,
            args.score_thresh,
            args.classes,
            args.top_k,
            args.nms_iou,
        )
        name = args.arch if args.detector == "torchvision" else model.model.config.model_type
        print(f"{name} from {args.weights} on {device}; classes: {class_map}")

    videos = list_videos(args.root)
    written = existing = rows_total = frames_total = frames_empty = 0
    for class_name, video_id in tqdm(videos, desc="videos", unit="video"):
        key = layout.video_key(class_name, video_id)
        out_path = layout.detection_path(args.root, key + ".mp4")
        if os.path.exists(out_path) and not args.overwrite:
            existing += 1
            continue
        folder = layout.frames_dir(args.root, key + ".mp4")
        frame_ids = sorted(list_frame_ids(folder))
        if not frame_ids:
            tqdm.write(f"warning: {folder} holds no jpg, skipped")
            continue
        if model is None:
            with Image.open(os.path.join(folder, layout.frame_name(frame_ids[0]))) as img:
                image_size = img.size
            rates = {name: getattr(args, name) for name in SIMULATED}
            try:
                rows = video_detections(
                    args.root, class_name, video_id, frame_ids, image_size, args.seed, **rates
                )
            except DataError as err:
                sys.exit(f"error: {err}")
        else:
            rows = model_rows(model, folder, frame_ids, args.batch_size, score_thresh, device)
        save_atomic(out_path, rows)
        written += 1
        rows_total += len(rows)
        frames_total += len(frame_ids)
        frames_empty += len(set(frame_ids) - set(rows[:, 0].astype(int).tolist()))
    print(
        f"videos: {len(videos)} ({written} written, {existing} already done); rows: {rows_total}; "
        f"frames without detection: {frames_empty} of {frames_total}"
    )


if __name__ == "__main__":
    main()
