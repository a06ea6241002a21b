"""The demo's stand-in for ImageNet features: a ResNet-18 of the demo's width trained to name the
instrument in the training videos' object crops, saved as a torchvision-style state_dict.

The paper freezes an ImageNet ResNet-18 for every visual net. The demo's narrow ResNets have no
ImageNet weights and nothing is downloaded, and trained from scratch inside GRD they stay at chance
on data with players, clutter and varied looks (see README, "What the demo gives"). So the demo
first trains the same trunk to classify the train split's object crops by their videos' folder
class (labels the loader already uses to draw partners of distinct classes), with colour jitter,
then every stage loads it through `--weights_imagenet <file>` and keeps it frozen, as the paper
keeps ImageNet features. The val videos only choose the epoch kept; test videos are never seen.

    python scripts/pretrain_visual.py --root data/synthetic --crop-cache \
        data/synthetic/crop_cache/top_box_32 --out ckpt/MUSIC_VIS/resnet18.pth

Writes the state_dict of the epoch with the best val-crop accuracy (no classifier), and beside it
`<out>.json` with the per-epoch loss and val-crop accuracy and the epoch kept.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm import tqdm

import utils
from dataset import MUSICMixDataset, collate, color_jitter, normalize_frames
from dataset.layout import MUSIC_CLASSES
from dataset.readers import BOX_RULES
from models.vision_net import ResNet18


def make_set(opts, list_name: str, split: str) -> MUSICMixDataset:
    """4-object CCoL samples: every object is a top-box crop labelled with its video's class."""
    return MUSICMixDataset(
        opts.root,
        os.path.join(opts.root, list_name),
        split,
        mode="ccol",
        num_mix=4,
        num_frames=opts.num_frames,
        img_size=opts.img_size,
        aud_len=opts.aud_len,
        dup_trainset=opts.dup,
        dup_valset=4,
        seed=opts.seed,
        crop_cache=opts.crop_cache or None,
        box_rule=opts.box_rule,
    )


def crops_and_labels(batch: dict, jitter: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(B*N*T, 3, S, S) normalised crops and their class ids, every frame an example.

    Training crops get strong colour jitter: a video's paint and lighting vary, the instrument's
    shape does not (measured on the embedded data, 12 epochs, 3 seeds: val-crop accuracy 0.59-0.73).
    """
    frames = batch["frames"]  # (B, N, 3, T, S, S) uint8
    if jitter > 0:
        frames = color_jitter(frames, jitter)
    B, N, C, T, S, _ = frames.shape
    images = normalize_frames(frames).permute(0, 1, 3, 2, 4, 5).reshape(B * N * T, C, S, S)
    labels = batch["class_ids"][:, :, None].expand(B, N, T).reshape(-1)
    return images, labels


def accuracy(trunk, head, loader) -> float:
    trunk.eval()
    correct = total = 0
    with torch.no_grad():
        for batch in loader:
            images, labels = crops_and_labels(batch, 0.0)
            correct += int((head(trunk(images)).argmax(1) == labels).sum())
            total += len(labels)
    return correct / max(total, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", required=True, help="data root with train.csv and val.csv")
    p.add_argument(
        "--crop-cache", default="", help="top-box crop cache for --img-size (default: decode jpgs)"
    )
    p.add_argument("--out", required=True, help="state_dict path (.pth)")
    p.add_argument("--width", type=int, default=16, help="ResNet base width (default: %(default)s)")
    p.add_argument("--img-size", type=int, default=32, help="crop side (default: %(default)s)")
    p.add_argument(
        "--num-frames", type=int, default=2, help="frames per object (default: %(default)s)"
    )
    p.add_argument(
        "--aud-len",
        type=int,
        default=8191,
        help="clip length the loader reads (default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, default=12, help="passes (default: %(default)s)")
    p.add_argument(
        "--dup", type=int, default=10, help="train list repeats per epoch (default: %(default)s)"
    )
    p.add_argument(
        "--batch-size", type=int, default=32, help="samples of 4 objects (default: %(default)s)"
    )
    p.add_argument(
        "--lr", type=float, default=3e-3, help="Adam learning rate (default: %(default)s)"
    )
    p.add_argument(
        "--color-jitter", type=float, default=0.8, help="jitter strength (default: %(default)s)"
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
    random.seed(opts.seed)
    train_set, val_set = make_set(opts, "train.csv", "train"), make_set(opts, "val.csv", "val")
    generator = torch.Generator().manual_seed(opts.seed)
    train_loader = DataLoader(
        train_set,
        batch_size=opts.batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        generator=generator,
        num_workers=0,
    )
    val_loader = DataLoader(val_set, batch_size=opts.batch_size, collate_fn=collate, num_workers=0)
    trunk = ResNet18(opts.width).to(memory_format=torch.channels_last)
    head = nn.Linear(8 * opts.width, len(MUSIC_CLASSES))
    optimizer = torch.optim.Adam([*trunk.parameters(), *head.parameters()], lr=opts.lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, opts.epochs * len(train_loader)
    )
    history, tic = [], time.perf_counter()
    best = {"val_acc": -1.0}
    for epoch in range(opts.epochs):
        trunk.train()
        losses = []
        for batch in tqdm(train_loader, desc=f"epoch {epoch + 1}/{opts.epochs}", leave=False):
            images, labels = crops_and_labels(batch, opts.color_jitter)
            loss = nn.functional.cross_entropy(head(trunk(images)), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        history.append(
            {
                "epoch": epoch + 1,
                "loss": float(np.mean(losses)),
                "val_acc": accuracy(trunk, head, val_loader),
            }
        )
        print(
            f"epoch {epoch + 1}: loss {history[-1]['loss']:.3f}, val crop accuracy "
            f"{history[-1]['val_acc']:.3f} ({time.perf_counter() - tic:.0f} s)",
            flush=True,
        )
        # Which epoch ends best varies a lot between seeds (8 val videos, a few hundred steps):
        # the epoch kept is the one that names the val videos' instruments best.
        if history[-1]["val_acc"] > best["val_acc"]:
            state = {k: v.detach().clone().contiguous() for k, v in trunk.state_dict().items()}
            best = {**history[-1], "state": state}
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    utils.atomic_torch_save(best["state"], opts.out)
    report = {
        "best_epoch": best["epoch"],
        "best_val_acc": best["val_acc"],
        "width": opts.width,
        "img_size": opts.img_size,
        "root": opts.root,
        "seconds": round(time.perf_counter() - tic, 1),
        "history": history,
    }
    utils.atomic_write_json(report, os.path.splitext(opts.out)[0] + ".json")
    print(f"wrote {opts.out} (epoch {best['epoch']}, val crop accuracy {best['val_acc']:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
