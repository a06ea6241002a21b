"""The demo's stand-in for ImageNet features: a ResNet-18 of the demo's width trained to name what
an object crop shows, saved as a torchvision-style state_dict.

The paper freezes an ImageNet ResNet-18 for every visual net. The demo's narrow ResNets have no
ImageNet weights and nothing is downloaded, and trained from scratch inside GRD they stay at chance
on data with players, clutter and varied looks (see README, "What the demo gives"). So the demo
first trains the same trunk, supervised as ImageNet weights are, then every stage (SoP's whole
frames included) loads it through `--weights_imagenet <file>` and keeps it frozen. What it learns
from (--source):

  images  the synthetic package's labelled image set (synthetic/image_set.py), drawn apart from
          the videos as ImageNet is apart from MUSIC: crops of scenes the video generator draws,
          in every look the videos use, of every instrument class, the player and the clutter;
          rendered from --seed and cached in --image-set, so a second run reuses it
  crops   the train split's object crops, every frame, labelled with their video's folder class
          (a root that is not the embedded data may look like nothing the generator draws)
  both    the two together

The val and test videos' crops (every frame: the loader's val/test crop with --box-rule) are only
scored, after every epoch: nothing is chosen on them, and the trunk kept is the last epoch's.

    python scripts/pretrain_visual.py --root data/synthetic --crop-cache \
        data/synthetic/crop_cache/video_box_32 --box-rule video --out ckpt/MUSIC_VIS/resnet18.pth

Writes the state_dict (no classifier) and beside it `<out>.json`: what it trained on, the
per-epoch loss and val/test crop accuracy, and the final accuracy per split and per class.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch
import torch.nn as nn

import utils
from dataset import color_jitter, normalize_frames
from dataset.crop_cache import CachedVideo
from dataset.index import read_index
from dataset.layout import CLASS_TO_ID, MUSIC_CLASSES, detection_path, frame_name, frames_dir
from dataset.readers import BOX_RULES, frame_size, load_frame, load_top_boxes
from dataset.transforms import crop_resize, object_box
from models.vision_net import ResNet18
from synthetic.image_set import IMAGE_CLASSES, render_image_set
from training import LoopSettings, train_one_epoch

SOURCES = ("images", "crops", "both")
IMAGE_SET_FORMAT = 2  # bumped when synthetic.image_set draws other crops: caches are redrawn


def load_image_set(path: str, seed: int, scenes: int, frames: int, img_size: int, workers: int):
    """The image set of these settings: read from `path` when it holds them, else rendered and
    written there. Returns uint8 (N, 3, S, S) crops, int64 (N,) labels and the render seconds."""
    settings = dict(format=IMAGE_SET_FORMAT, seed=seed, scenes=scenes, frames=frames, size=img_size)
    if os.path.isfile(path):
        with np.load(path) as cached:
            if {k: int(cached[k]) for k in settings} == settings:
                return cached["images"], cached["labels"], 0.0
    tic = time.perf_counter()
    images, labels = render_image_set(seed, scenes, img_size, frames, workers)
    seconds = time.perf_counter() - tic
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    utils.atomic_write(path, lambda f: np.savez(f, images=images, labels=labels, **settings))
    return images, labels, seconds


def video_crops(root: str, list_name: str, img_size: int, box_rule: str, crop_cache: str):
    """Every frame's object crop of the videos of `list_name`, as the loader cuts val/test crops
    (from the crop cache when given), labelled with the video's class.

    Returns uint8 (N, 3, S, S) and int64 (N,).
    """
    crops, labels = [], []
    for video in read_index(os.path.join(root, list_name)):
        frame_ids = range(1, video.num_frames + 1)
        if crop_cache:
            cached = CachedVideo(crop_cache, video, root)
            crops += [np.asarray(cached.eval_view(k)) for k in frame_ids]
        else:
            folder = frames_dir(root, video.frames)
            size = frame_size(os.path.join(folder, frame_name(1)))  # (W, H)
            boxes = load_top_boxes(
                detection_path(root, video.frames), video.num_frames, size, box_rule
            )
            for k in frame_ids:
                image = load_frame(os.path.join(folder, frame_name(k)))  # (3, H, W)
                box = object_box(boxes.get(k), size)
                crops.append(crop_resize(image, box, img_size, img_size, None).numpy())
        labels += [CLASS_TO_ID[video.class_name]] * video.num_frames
    return np.stack(crops), np.asarray(labels, np.int64)


def augment(images: torch.Tensor, jitter: float, shift: int) -> torch.Tensor:
    """Training crops: a random flip, colour jitter and a shift of up to `shift` px per image (a
    detector's box moves a little more than the set's jitter draws). uint8 (B, 3, S, S) in and out.
    """
    flip = torch.rand(len(images)) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    images = color_jitter(images[:, :, None], jitter)[:, :, 0]  # its (..., 3, T, H, W) layout
    if shift:
        size = images.shape[-1]
        padded = nn.functional.pad(images.float(), (shift,) * 4, mode="replicate")
        offsets = torch.randint(0, 2 * shift + 1, (len(images), 2)).tolist()
        images = torch.stack(
            [padded[i, :, y : y + size, x : x + size] for i, (x, y) in enumerate(offsets)]
        ).to(torch.uint8)
    return images


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> ImageNet-normalised float32 (B, 3, S, S), as the stages normalise."""
    return normalize_frames(images[:, :, None])[:, :, 0]


class AugmentedCrops:
    """One epoch of training crops for the training loop: the set in `order`, cut into full
    batches, each augmented and normalised as it is drawn."""

    def __init__(self, images, labels, order, batch_size: int, jitter: float, shift: int):
        self.images, self.labels, self.order = images, labels, order
        self.batch_size, self.jitter, self.shift = batch_size, jitter, shift

    def __len__(self) -> int:
        return len(self.order) // self.batch_size

    def __iter__(self):
        for step in range(len(self)):
            batch = self.order[step * self.batch_size : (step + 1) * self.batch_size]
            crops = normalize(augment(self.images[batch], self.jitter, self.shift))
            yield {"crops": crops, "labels": self.labels[batch]}  # (B, 3, S, S), (B,)


class CropClassifier(nn.Module):
    """The trunk and a linear head over its pooled features, trained by the stages' own loop
    (training.train_one_epoch): forward(batch) returns the named losses."""

    def __init__(self, trunk: nn.Module, num_classes: int):
        super().__init__()
        self.trunk = trunk.to(memory_format=torch.channels_last)
        self.head = nn.Linear(8 * trunk.width, num_classes)  # layer4 has 8 x width channels

    def forward(self, batch: dict) -> tuple[dict, dict]:
        # crops: normalised float (B, 3, S, S); labels: (B,) image-set class ids
        logits = self.head(self.trunk(batch["crops"]))
        return {"total": nn.functional.cross_entropy(logits, batch["labels"])}, {}


def accuracy(trunk: nn.Module, head: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """How often the classifier names the crop's class: among all classes ('all': a crop called
    the player is wrong) and among the instruments only ('instruments'), overall and per class,
    and what the crops it did not name were called."""
    trunk.eval()
    with torch.no_grad():
        logits = torch.cat([head(trunk(normalize(x))) for x in images.split(512)])
    predicted = logits.argmax(1)
    named = predicted == labels
    named_instrument = logits[:, : len(MUSIC_CLASSES)].argmax(1) == labels
    return {
        "all": round(float(named.float().mean()), 4),
        "instruments": round(float(named_instrument.float().mean()), 4),
        "crops": len(labels),
        "per_class": {
            IMAGE_CLASSES[c]: round(float(named[labels == c].float().mean()), 4)
            for c in labels.unique().tolist()
        },
        # What the crops of each class were called when they were not named: class -> name -> n.
        "mistaken_for": {
            IMAGE_CLASSES[c]: {
                IMAGE_CLASSES[w]: n
                for w, n in enumerate(
                    np.bincount(
                        predicted[(labels == c) & ~named], minlength=len(IMAGE_CLASSES)
                    ).tolist()
                )
                if n
            }
            for c in labels.unique().tolist()
            if not named[labels == c].all()
        },
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", required=True, help="data root with train.csv, val.csv, test.csv")
    p.add_argument(
        "--crop-cache",
        default="",
        help="object crop cache of --img-size and --box-rule (default: decode jpgs)",
    )
    p.add_argument("--out", required=True, help="state_dict path (.pth)")
    p.add_argument(
        "--source",
        default="images",
        choices=SOURCES,
        help="what it learns from (default: %(default)s)",
    )
    p.add_argument(
        "--image-set",
        default="",
        help="cache file of the rendered image set (default: image_set.npz beside --out)",
    )
    p.add_argument(
        "--scenes", type=int, default=1600, help="image set: scenes drawn (default: %(default)s)"
    )
    p.add_argument(
        "--scene-frames",
        type=int,
        default=6,
        help="image set: frames filmed per scene (default: %(default)s)",
    )
    p.add_argument(
        "--workers", type=int, default=1, help="image set: render processes (default: %(default)s)"
    )
    p.add_argument("--width", type=int, default=16, help="ResNet base width (default: %(default)s)")
    p.add_argument("--img-size", type=int, default=32, help="crop side (default: %(default)s)")
    p.add_argument("--epochs", type=int, default=12, help="passes (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=256, help="crops (default: %(default)s)")
    p.add_argument(
        "--lr", type=float, default=3e-3, help="peak AdamW learning rate (default: %(default)s)"
    )
    p.add_argument(
        "--color-jitter", type=float, default=0.4, help="jitter strength (default: %(default)s)"
    )
    p.add_argument(
        "--shift", type=int, default=2, help="largest random shift, px (default: %(default)s)"
    )
    p.add_argument(
        "--box-rule",
        default="frame",
        choices=BOX_RULES,
        help="object box per frame, as main.py --box_rule (default: %(default)s)",
    )
    p.add_argument("--seed", type=int, default=1234, help="(default: %(default)s)")
    opts = p.parse_args(argv)

    utils.seed_everything(opts.seed)
    tic = time.perf_counter()
    sets, trained_on = [], {"source": opts.source}
    if opts.source in ("images", "both"):
        path = opts.image_set or os.path.join(os.path.dirname(opts.out), "image_set.npz")
        images, labels, render_seconds = load_image_set(
            path, opts.seed, opts.scenes, opts.scene_frames, opts.img_size, opts.workers
        )
        sets.append((images, labels))
        trained_on["image_set"] = {
            "path": path,
            "seed": opts.seed,
            "scenes": opts.scenes,
            "frames_per_scene": opts.scene_frames,
            "crops": len(labels),
            "per_class": dict(
                zip(IMAGE_CLASSES, np.bincount(labels, minlength=len(IMAGE_CLASSES)).tolist())
            ),
            "render_seconds": round(render_seconds, 1),  # 0: read from the cache
        }
    if opts.source in ("crops", "both"):
        images, labels = video_crops(
            opts.root, "train.csv", opts.img_size, opts.box_rule, opts.crop_cache
        )
        sets.append((images, labels))
        trained_on["train_crops"] = len(labels)
    images = torch.from_numpy(np.concatenate([s[0] for s in sets]))
    labels = torch.from_numpy(np.concatenate([s[1] for s in sets]))
    scored = {
        split: [
            torch.from_numpy(a)
            for a in video_crops(
                opts.root, f"{split}.csv", opts.img_size, opts.box_rule, opts.crop_cache
            )
        ]
        for split in ("val", "test")
        if os.path.isfile(os.path.join(opts.root, f"{split}.csv"))
    }
    prepare_seconds = time.perf_counter() - tic

    model = CropClassifier(ResNet18(opts.width), len(IMAGE_CLASSES))
    trunk, head = model.trunk, model.head
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr)
    steps = len(images) // opts.batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, opts.lr, total_steps=opts.epochs * steps, pct_start=0.15
    )
    generator = torch.Generator().manual_seed(opts.seed)
    out_dir = os.path.dirname(os.path.abspath(opts.out))  # named if a loss goes NaN
    loop = LoopSettings(opts.epochs, steps, out_dir, opts.batch_size)
    history = []
    for epoch in range(opts.epochs):
        order = torch.randperm(len(images), generator=generator)
        epoch_crops = AugmentedCrops(
            images, labels, order, opts.batch_size, opts.color_jitter, opts.shift
        )
        means = train_one_epoch(
            model, epoch_crops, optimizer, loop, torch.device("cpu"), epoch, scheduler.step
        )
        history.append({"epoch": epoch + 1, "loss": round(means["total"], 4)})
        for split, (x, y) in scored.items():
            history[-1][f"{split}_acc"] = accuracy(trunk, head, x, y)["all"]
        print(
            f"epoch {epoch + 1}: loss {history[-1]['loss']:.3f}, "
            + ", ".join(
                f"{split} crop accuracy {history[-1][f'{split}_acc']:.3f}" for split in scored
            )
            + f" ({time.perf_counter() - tic:.0f} s)",
            flush=True,
        )
    final = {split: accuracy(trunk, head, x, y) for split, (x, y) in scored.items()}
    os.makedirs(out_dir, exist_ok=True)
    utils.atomic_torch_save(trunk.state_dict(), opts.out)
    report = {
        "trained_on": trained_on,
        "accuracy": final,
        "width": opts.width,
        "img_size": opts.img_size,
        "box_rule": opts.box_rule,
        "root": opts.root,
        "seconds": round(time.perf_counter() - tic, 1),
        "prepare_seconds": round(prepare_seconds, 1),
        "history": history,
    }
    utils.atomic_write_json(report, os.path.splitext(opts.out)[0] + ".json")
    for split, acc in final.items():
        print(
            f"{split} crops ({acc['crops']}): named {acc['all']:.3f} "
            f"(among instruments {acc['instruments']:.3f})"
        )
    print(f"wrote {opts.out} ({opts.source}, {report['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
