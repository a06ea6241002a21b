"""Supervised ceilings of a profile's grounding encoders on a data root.

How well could the encoders the grounding net is built on name the instrument, if they were told
the labels? The grounding audio encoder (as the profile builds it) plus a linear head is trained
with the class labels on random solo clips of the train videos; the frozen visual trunk (as the
runs load it, --weights_imagenet) gets a linear probe on the train videos' object crops. Both are
scored on the val and test videos, each clip and crop counted once:

    solo clip accuracy   the instrument of a solo clip is the head's top class
    mixture top-2        both instruments of a two-source mixture are in the head's top 2
                         (also over the mixtures whose sources' levels lie within 6 dB)
    object crop accuracy the instrument of an object's crops (its T frames, pooled as the
                         grounding net pools them) is the probe's top class

Clips, crops, mixtures and spectrograms are the runs' own: the train, val and test samples of
training.make_dataset (val/test at --test_clips positions per video, 4 unless given), the
stage's spectrogram front end and grounding audio input. Every main.py option that changes an
encoder or its input (--aud_len, --stft_hop, --stft_frame, --warp_bins, --vggish_width,
--sound_ground_init, --ground_audio_norm, --img_size, --num_frames, --box_rule, --vis_width,
--weights_imagenet, --crop_cache, ...) is read by main.py's parser with the profile's defaults,
so a recipe change shows which ceiling it moved. --seed is main.py's too (default 1234): it seeds
the heads, the audio encoder's init and the train draws, and fixes the val partners.

    OMP_NUM_THREADS=1 python scripts/ceilings.py --root data/synthetic --profile demo \\
        --crop_cache data/synthetic/crop_cache/video_box_32 \\
        --weights_imagenet ckpt/MUSIC_VIS/resnet18.pth --out ckpt/ceilings_demo.json
    ... --aud_len 16383 --stft_hop 256          # 1.49 s clips on the same 64 x 64 grid

Deterministic from --seed on one thread. Demo profile with the crop cache, defaults (600 steps of
32 clips, 768 val/test samples scored): 83 s on the project's 2-core CPU machine with
OMP_NUM_THREADS=1, 2-2.5 minutes with 1.49 s clips or while other jobs share the cores. Without
--crop_cache the loader decodes every crop's JPEG and it takes longer.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader

import utils
from arguments import parse_args
from dataset import collate
from dataset.index import read_index
from dataset.layout import CLASS_TO_ID, MUSIC21_CLASSES
from training import build_stage, make_dataset, to_device

EVAL_SPLITS = ("val", "test")
# Set unless the command line sets them: a grounding stage (its nets, no separation nets), every
# val/test mixture (no --num_val cut), 4 clip positions per evaluation video, and enough val
# repeats (which cycle through the positions) for each val video to be heard at all 4.
MEASURE_DEFAULTS = [
    "--stage", "grd", "--num_val", "-1", "--test_clips", "4", "--dup_valset", "8"
]  # fmt: skip
# What the measured encoders and their inputs are made of, recorded with the numbers.
SETTING_KEYS = (
    "profile",
    "aud_len",
    "aud_rate",
    "stft_frame",
    "stft_hop",
    "warp_bins",
    "log_freq",
    "spec_input",
    "vggish_width",
    "sound_ground_init",
    "ground_audio_norm",
    "vis_width",
    "img_pool",
    "img_size",
    "num_frames",
    "stride_frames",
    "box_rule",
    "weights_imagenet",
    "crop_cache",
    "test_clips",
    "seed",
)
# Share of the steps at the end over which the probes' training accuracy is reported.
TRAIN_TAIL = 0.1
# Mixtures whose sources' levels (RMS) lie within this many dB are also scored apart: a source
# 10-20 dB under the other is barely in the mixture's spectrogram, whatever the encoder.
CLOSE_DB = 6.0


def parse(argv=None) -> tuple[argparse.Namespace, argparse.Namespace]:
    """(this script's options, main.py's resolved arguments for the rest of the command line)."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--root", required=True, help="data root (main.py's --data_root)")
    p.add_argument("--steps", type=int, default=600, help="training steps (default: %(default)s)")
    p.add_argument(
        "--batch", type=int, default=32, help="solo clips per step (default: %(default)s)"
    )
    p.add_argument(
        "--lr", type=float, default=1e-3, help="Adam learning rate (default: %(default)s)"
    )
    p.add_argument("--out", default="", help="JSON report path ('' = print only)")
    opts, rest = p.parse_known_args(argv)
    if opts.steps < 1 or opts.batch < 1:
        p.error("--steps and --batch must be at least 1")
    args = parse_args([*MEASURE_DEFAULTS, "--data_root", opts.root, *rest])
    return opts, args


def train_classes(args) -> list[int]:
    """Class ids of the train videos: the heads' outputs, in this order."""
    return sorted({CLASS_TO_ID[v.class_name] for v in read_index(args.list_train)})


def batches(dataset, size: int, generator: torch.Generator):
    """Shuffled batches of `dataset`, pass after pass, forever."""
    while True:
        yield from DataLoader(
            dataset, batch_size=size, shuffle=True, collate_fn=collate, generator=generator
        )


class Probes(nn.Module):
    """The stage's grounding encoders with a class head each: the audio encoder trains with its
    head, the visual trunk stays frozen (a linear probe).

    Shapes: solo log_mags (M, 1, Fw, T) -> (M, C); frames (B, N, 3, T, S, S) -> (B, N, C).
    """

    def __init__(self, stage, num_classes: int):
        super().__init__()
        self.stage = stage
        self.visual = stage.nets["frame_ground"].requires_grad_(False)
        self.audio_head = nn.Linear(stage.nets["sound_ground"].out_dim, num_classes)
        self.visual_head = nn.Linear(self.visual.out_dim, num_classes)

    def audio(self, log_mags: torch.Tensor) -> torch.Tensor:
        return self.audio_head(self.stage.grounding_audio(log_mags))

    def objects(self, frames: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feat = self.visual.forward_objects(frames)  # (B, N, Dv)
        return self.visual_head(feat)

    def train_parameters(self) -> list[nn.Parameter]:
        return [
            *self.stage.nets["sound_ground"].parameters(),
            *self.audio_head.parameters(),
            *self.visual_head.parameters(),
        ]


def train(probes: Probes, args, opts, class_index: torch.Tensor, device) -> dict:
    """Trains both heads (and the audio encoder) on random train samples; each sample gives its
    sounding objects' solo clips and all its objects' crops. Returns the training accuracies over
    the last steps and the final losses."""
    dataset = make_dataset(args, "train")
    samples = max(1, opts.batch // int(dataset.sounding.sum()))
    optimizer = torch.optim.Adam(probes.train_parameters(), lr=opts.lr)
    generator = torch.Generator().manual_seed(args.seed)
    tail_from = opts.steps - max(1, int(TRAIN_TAIL * opts.steps))
    hits = {"audio": [0, 0], "visual": [0, 0]}
    losses = {}
    # Eval mode throughout: the frozen trunk's BatchNorm keeps its statistics, and the audio
    # encoder has no layer that trains differently.
    probes.eval()
    for step, batch in zip(range(opts.steps), batches(dataset, samples, generator)):
        batch.pop("skipped")
        batch = to_device(batch, device)
        spec, frames = probes.stage.prepare(batch)
        sounding = batch["sounding"]  # (B, N)
        labels = class_index[batch["class_ids"]]  # (B, N)
        logits = {
            "audio": (probes.audio(spec["log_mags"][sounding]), labels[sounding]),  # (M, C)
            "visual": (probes.objects(frames).flatten(0, 1), labels.flatten()),  # (B*N, C)
        }
        loss = {k: F.cross_entropy(out, target) for k, (out, target) in logits.items()}
        optimizer.zero_grad(set_to_none=True)
        sum(loss.values()).backward()
        optimizer.step()
        if step >= tail_from:
            for k, (out, target) in logits.items():
                hits[k][0] += int((out.argmax(1) == target).sum())
                hits[k][1] += len(target)
        losses = {k: float(v.detach()) for k, v in loss.items()}
    return {
        "audio_train_acc": hits["audio"][0] / max(hits["audio"][1], 1),
        "visual_train_acc": hits["visual"][0] / max(hits["visual"][1], 1),
        "final_loss": losses,
    }


@torch.no_grad()
def score(probes: Probes, args, split: str, class_index: torch.Tensor, device) -> dict[str, dict]:
    """Per clip, mixture and object crop of the split's evaluation samples (each counted once
    across the samples that repeat it): whether the probes name its instruments.

    Returns {'solo', 'mixture', 'mixture_close', 'crop'}, each {key: hit}; 'mixture_close' holds
    the mixtures whose sources' levels are within CLOSE_DB.
    """
    probes.eval()
    found = {"solo": {}, "mixture": {}, "mixture_close": {}, "crop": {}}
    loader = DataLoader(make_dataset(args, split, maps=False), batch_size=32, collate_fn=collate)
    for batch in loader:
        batch.pop("skipped")
        infos, clips = batch["infos"], batch["clip"].tolist()
        batch = to_device(batch, device)
        spec, frames = probes.stage.prepare(batch)
        sounding = batch["sounding"]  # (B, N)
        labels = class_index[batch["class_ids"]]  # (B, N)
        solo_hit = torch.zeros_like(sounding)
        solo_hit[sounding] = probes.audio(spec["log_mags"][sounding]).argmax(1) == labels[sounding]
        crop_hit = probes.objects(frames).argmax(2) == labels  # (B, N)
        mix_logits = probes.audio(spec["log_mag_mix"])  # (B, C)
        top = mix_logits.topk(int(sounding[0].sum()), dim=1).indices  # (B, k)
        in_top = (labels[:, :, None] == top[:, None]).any(2)  # (B, N)
        mix_hit = (in_top | ~sounding).all(1)  # (B,)
        level = 20 * batch["audios"].pow(2).mean(2).sqrt().clamp_min(1e-8).log10()  # (B, N) dB
        spread = level.where(sounding, -torch.inf).amax(1) - level.where(sounding, torch.inf).amin(
            1
        )
        for b, (videos, clip) in enumerate(zip(infos, clips)):
            heard = [n for n in range(len(videos)) if sounding[b, n]]
            for n, video in enumerate(videos):
                found["crop"][video, clip] = bool(crop_hit[b, n])
            for n in heard:
                found["solo"][videos[n], clip] = bool(solo_hit[b, n])
            key = frozenset(videos[n] for n in heard), clip
            found["mixture"][key] = bool(mix_hit[b])
            if spread[b] < CLOSE_DB:
                found["mixture_close"][key] = bool(mix_hit[b])
    return found


def summarize(found: dict[str, dict]) -> dict:
    """Accuracies and counts of score()'s hits."""
    names = {
        "solo": "solo_acc",
        "mixture": "mix_top2",
        "mixture_close": "mix_top2_close",
        "crop": "crop_acc",
    }
    out = {}
    for kind, hits in found.items():
        out[names[kind]] = sum(hits.values()) / max(len(hits), 1)
        out[f"{kind}_count"] = len(hits)
    return out


def measure(opts, args) -> dict:
    """Trains the probes and scores them: the JSON report."""
    tic = time.perf_counter()
    device = utils.select_device(args.device)
    utils.seed_everything(args.seed)
    classes = train_classes(args)
    class_index = torch.full((len(CLASS_TO_ID),), -1, dtype=torch.long)  # val/test-only: -1
    class_index[classes] = torch.arange(len(classes))
    class_index = class_index.to(device)
    _, stage = build_stage(args, device)
    probes = Probes(stage, len(classes)).to(device)
    training = train(probes, args, opts, class_index, device)
    found = {split: score(probes, args, split, class_index, device) for split in EVAL_SPLITS}
    pooled = {kind: {} for kind in found["val"]}
    for split, kinds in found.items():
        for kind, hits in kinds.items():
            pooled[kind].update({(split, *key): hit for key, hit in hits.items()})
    C = len(classes)
    settings = {key: getattr(args, key) for key in SETTING_KEYS}
    return {
        "root": args.data_root,
        "settings": {
            **settings,
            "clip_seconds": round(args.aud_len / args.aud_rate, 3),
            "spectrogram": [stage.frontend.warp_bins, 1 + args.aud_len // args.stft_hop],
        },
        "probe": {"steps": opts.steps, "batch": opts.batch, "lr": opts.lr, "optimizer": "adam"},
        "classes": [MUSIC21_CLASSES[c] for c in classes],
        "chance": {
            "solo_acc": 1 / C,
            **dict.fromkeys(("mix_top2", "mix_top2_close"), 2 / (C * (C - 1))),
            "crop_acc": 1 / C,
        },
        "close_db": CLOSE_DB,
        "train": training,
        **{split: summarize(kinds) for split, kinds in found.items()},
        "val+test": summarize(pooled),
        "seconds": round(time.perf_counter() - tic, 1),
    }


def format_report(report: dict) -> str:
    """The report as a small table: accuracy (count) per split, chance, training accuracy."""
    s = report["settings"]
    weights = s["weights_imagenet"] if s["weights_imagenet"] != "none" else "none (random init)"
    columns = ("val", "test", "val+test")
    lines = [
        f"supervised ceilings: profile {s['profile']}, {report['root']}, "
        f"{len(report['classes'])} classes, {report['probe']['steps']} steps of "
        f"{report['probe']['batch']} clips, {report['seconds']:.0f} s",
        f"audio: VGGish width {s['vggish_width']} ({s['sound_ground_init']} "
        f"init), {s['aud_len']} samples ({s['clip_seconds']} s), STFT {s['stft_frame']} hop "
        f"{s['stft_hop']} -> {' x '.join(map(str, s['spectrogram']))}",
        f"visual: width {s['vis_width']}, {s['img_size']} px x {s['num_frames']} frames, box "
        f"rule {s['box_rule']}, weights {weights}",
        f"{'':<22}" + "".join(f"{c:>14}" for c in columns) + f"{'chance':>8}{'train':>8}",
    ]
    rows = (
        ("solo clip accuracy", "solo_acc", "solo_count", "audio_train_acc"),
        ("mixture top-2 recall", "mix_top2", "mixture_count", None),
        (f"  levels within {CLOSE_DB:g} dB", "mix_top2_close", "mixture_close_count", None),
        ("object crop accuracy", "crop_acc", "crop_count", "visual_train_acc"),
    )
    for label, key, count, train_key in rows:
        cells = "".join(f"{f'{report[c][key]:.3f} ({report[c][count]})':>14}" for c in columns)
        trained = f"{report['train'][train_key]:>8.3f}" if train_key else ""
        lines.append(f"{label:<22}{cells}{report['chance'][key]:>8.3f}{trained}")
    return "\n".join(lines)


def main(argv=None) -> int:
    opts, args = parse(argv)
    report = measure(opts, args)
    print(format_report(report))
    if opts.out:
        os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
        utils.atomic_write_json(report, opts.out)
        print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
