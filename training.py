"""What training a stage is made of, shared by main.py and the scripts: the stage's networks and
optimiser, its datasets and loaders, one optimisation step and one epoch.

The device is always an argument (a torch.device); `args` is only read.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

import checkpoints
import models
import utils
from dataset import DataError, MUSICMixDataset, collate
from models.vision_net import IMAGENET, NO_WEIGHTS
from stages import STAGE_NETS, STAGES, Stage, StageConfig

log = logging.getLogger("ccol")


class NonFiniteLoss(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------
# Networks, optimiser
# ----------------------------------------------------------------------------------------------
def build_nets(args, starting_weights: bool = True) -> torch.nn.ModuleDict:
    """The networks of stage `args.stage`. starting_weights: the ResNets load --weights_imagenet;
    False where a checkpoint replaces every weight (evaluation, inference)."""
    return models.build_nets(args, STAGE_NETS[args.stage], starting_weights)


def frozen_modules(nets, args) -> list:
    """Without ImageNet weights the ResNets must learn (frozen random features carry too little)."""
    if args.train_resnets:
        return []
    frozen = [nets["frame_ground"]] if "frame_ground" in nets else []
    if "frame" in nets and args.stage != "sop":  # SoP fine-tunes it (docs/method.md, SoP)
        frozen.append(nets["frame"].features)
    return frozen


# The nets built on a ResNet-18 trunk (their `features`), which --weights_imagenet starts.
RESNETS = ("frame_ground", "frame", "classifier")


def log_visual_weights(nets, args, loaded: dict[str, str]) -> None:
    """Say once what the ResNet-18 trunks hold, after every weight is in place: `loaded` names the
    checkpoint each net was loaded from (a resume, --init_from, an evaluation); the others have
    their starting weights (--weights_imagenet). Silent for a stage without a ResNet."""
    trunks = [name for name in RESNETS if name in nets]
    if not trunks:
        return
    start = {IMAGENET: "imagenet weights", NO_WEIGHTS: "random init (--weights_imagenet none)"}
    sources: dict[str, list[str]] = {}
    for name in trunks:
        if name in loaded:
            source = f"weights of {loaded[name]}"
        else:
            source = start.get(args.weights_imagenet, f"weights of {args.weights_imagenet}")
        sources.setdefault(source, []).append(name)
    where = "; ".join(
        source if len(sources) == 1 else f"{', '.join(names)}: {source}"
        for source, names in sources.items()
    )
    frozen = set(frozen_modules(nets, args))
    learns = {name: not {nets[name], nets[name].features} & frozen for name in trunks}
    how = ", ".join(f"{name} {'trained' if learn else 'frozen'}" for name, learn in learns.items())
    if len(set(learns.values())) == 1:
        how = "trained" if learns[trunks[0]] else "frozen"
    log.info("ResNet-18 features: %s, %s", where, how)


def configure_cuda() -> None:
    torch.backends.cudnn.benchmark = True  # input sizes are fixed
    torch.set_float32_matmul_precision("high")  # TF32 matmuls when not under --amp


def build_stage(args, device: torch.device) -> tuple[torch.nn.ModuleDict, Stage]:
    """The stage's networks and its module on `device` (channels-last with --channels_last).

    Returns (nets, stage): the stage holds the nets, so both see the same weights.
    """
    nets = build_nets(args, starting_weights=args.mode == "train")
    stage = STAGES[args.stage](
        nets, StageConfig.from_args(args), frozen=frozen_modules(nets, args)
    ).to(device)
    if args.channels_last:
        stage = stage.to(memory_format=torch.channels_last)
    if device.type == "cuda":
        configure_cuda()
    return nets, stage


def param_groups(nets, args) -> list[dict]:
    """Per-network optimiser groups with the scripts' learning rates (frozen parameters left out).

    Sound of Pixels trains its frame net's last layer (`fc`) at the sound rate, as its optimiser
    does; the CCoL stages give every network its own rate.
    """
    lrs = {
        "sound_ground": args.lr_sound_ground,
        "frame_ground": args.lr_frame_ground,
        "grounding": args.lr_grounding,
        "sound": args.lr_sound,
        "frame": args.lr_frame,
        "synthesizer": args.lr_synthesizer,
        "classifier": args.lr_classifier,
        "frame_fc": args.lr_sound,
    }
    modules = dict(nets.items())
    if args.stage == "sop":
        modules.update(frame=nets["frame"].features, frame_fc=nets["frame"].fc)
    groups = []
    for name, net in modules.items():
        params = [p for p in net.parameters() if p.requires_grad]
        if params:
            groups.append({"params": params, "lr": lrs[name], "name": name})
    return groups


def make_optimizer(nets, args) -> torch.optim.Optimizer:
    """Adam without weight decay (CCoL), or SGD with momentum and weight decay (Sound of Pixels)."""
    groups = param_groups(nets, args)
    if args.optimizer == "sgd":
        return torch.optim.SGD(groups, momentum=args.momentum, weight_decay=args.weight_decay)
    return torch.optim.Adam(groups, betas=(args.momentum, 0.999), weight_decay=args.weight_decay)


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------
def dataset_options(args) -> dict:
    """The MUSICMixDataset arguments every split of a run shares."""
    return dict(
        mode="sop" if args.stage == "sop" else "ccol",
        num_mix=args.num_mix,
        num_frames=args.num_frames,
        stride_frames=args.stride_frames,
        frame_rate=args.frame_rate,
        img_size=args.img_size,
        aud_len=args.aud_len,
        aud_rate=args.aud_rate,
        on_error=args.on_error,
        seed=args.seed,
        crop_cache=args.crop_cache or None,
        box_rule=args.box_rule,
        test_clips=args.test_clips,
    )


def make_dataset(args, split: str, maps: bool = True) -> MUSICMixDataset:
    """The dataset of a split; val/test samples carry whole frames for sounding maps when `maps`
    (and --map_size allows), which costs the loader a JPEG decode per object."""
    common = dataset_options(args)
    map_size = args.map_height if maps else 0
    if split == "train":
        return MUSICMixDataset(
            args.data_root, args.list_train, "train", dup_trainset=args.dup_trainset, **common
        )
    if split == "val":
        return MUSICMixDataset(
            args.data_root,
            args.list_val,
            "val",
            dup_valset=args.dup_valset,
            max_samples=args.num_val,
            map_size=map_size,
            **common,
        )
    return MUSICMixDataset(
        args.data_root,
        args.list_test,
        "test",
        sep_list=args.list_sep,
        max_samples=args.num_val,
        map_size=map_size,
        **common,
    )


def _seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)


def make_loader(dataset, args, device: torch.device, train: bool, epoch: int = 0) -> DataLoader:
    """The train (shuffled, sharded by DistributedSampler) or evaluation loader of `dataset`;
    batches are pinned for a CUDA `device`."""
    sampler = None
    if dist.is_initialized() and train:
        sampler = DistributedSampler(dataset, shuffle=True, seed=args.seed, drop_last=True)
        sampler.set_epoch(epoch)
    elif dist.is_initialized():
        # Evaluation shards without padding: a duplicated mixture would count twice in the means.
        dataset = Subset(dataset, range(dist.get_rank(), len(dataset), dist.get_world_size()))
    # The shuffle order and every worker's seed depend on (seed, epoch) only, so a resumed run
    # replays exactly the epoch it lost.
    generator = torch.Generator().manual_seed(args.seed + epoch)
    return DataLoader(
        dataset,
        batch_size=args.batch_size_per_gpu * max(1, args.num_gpus),
        shuffle=train and sampler is None,
        sampler=sampler,
        drop_last=train,
        num_workers=args.workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
        worker_init_fn=_seed_worker,
        generator=generator,
        # The val loader lives for the whole run; a train loader is rebuilt per epoch so
        # that its workers' RNG depends on the epoch only (exact replay on resume).
        persistent_workers=args.workers > 0 and not train,
        prefetch_factor=4 if args.workers > 0 else None,
    )


def to_device(batch: dict, device: torch.device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train_step(model, batch: dict, optimizer, device: torch.device, amp: bool = False) -> dict:
    """One optimisation step on a batch already on `device`, under bfloat16 autocast with `amp`.

    Returns the losses and the stage's diagnostics as device tensors (no host sync).
    """
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        losses, out = model(batch)
    losses = {k: v.mean() for k, v in losses.items()}  # DataParallel returns one value per replica
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    optimizer.step()
    return {**losses, **{k: v.float().mean() for k, v in out.get("stats", {}).items()}}


@dataclass(frozen=True)
class LoopSettings:
    """How train_one_epoch runs: the run's length (for the progress bar), how often it logs and
    checks the running losses, where the run's checkpoints lie (named when a loss goes NaN), the
    batch per process (counted when a whole batch is skipped) and bfloat16 autocast."""

    num_epochs: int
    disp_iter: int
    run_dir: str
    batch_size: int
    amp: bool = False

    @classmethod
    def from_args(cls, args) -> LoopSettings:
        return cls(args.num_epoch, args.disp_iter, args.run_dir, args.batch_size_per_gpu, args.amp)


def batch_length(batch: dict) -> int:
    """The number of samples in a batch: every tensor in it has them along its first dimension."""
    return next(v.shape[0] for v in batch.values() if torch.is_tensor(v))


def train_one_epoch(
    model, loader, optimizer, loop: LoopSettings, device: torch.device, epoch: int, after_step=None
) -> dict:
    """One pass over `loader` (batches: dicts of tensors), calling `after_step()` after each
    optimisation step (a per-step LR schedule); returns the epoch's losses and diagnostics, means
    over the training samples of every process."""
    model.train()
    running, skipped = utils.Averager(), 0
    progress = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{loop.num_epochs}",
        leave=False,
        disable=not utils.is_main_process(),
        dynamic_ncols=True,
    )
    tic = time.perf_counter()
    for it, batch in enumerate(progress):
        # None: every sample of this process's batch was skipped (on_error=skip); then every
        # process skips the step, dropping its good samples too (counted as skipped).
        if not utils.every_rank_has(batch is not None, device):
            skipped += loop.batch_size
            continue
        skipped += batch.pop("skipped", 0)
        batch = to_device(batch, device)
        losses = train_step(model, batch, optimizer, device, loop.amp)
        if after_step is not None:
            after_step()
        # Accumulated on the device: no host sync per step.
        running.add({k: v.detach() for k, v in losses.items()}, batch_length(batch))
        if (it + 1) % loop.disp_iter == 0 or it + 1 == len(loader):
            means = running.means()
            check_finite(means, epoch, it, loop.run_dir, batch)
            progress.set_postfix(loss=f"{means['total']:.4f}")
            log.info(
                "[train] epoch %d it %d/%d %s  %.1f mix/s",  # gpu_figures.sh reads the rate
                epoch + 1,
                it + 1,
                len(loader),
                " ".join(f"{k}={v:.4f}" for k, v in means.items()),
                running.count / (time.perf_counter() - tic),
            )
    if running.count == 0:
        raise DataError("no training batch could be loaded (see the skipped-sample warnings above)")
    means = running.reduce().means()
    check_finite(means, epoch, it + 1, loop.run_dir)
    if skipped:
        log.warning(
            "epoch %d: %d training samples skipped because of bad input (see warnings)",
            epoch + 1,
            skipped,
        )
    return means


def check_finite(means: dict, epoch: int, it: int, run_dir: str, batch: dict | None = None) -> None:
    """Stop on a NaN/inf running loss, naming the batch's files when their audio is not finite and
    the last good checkpoint of the run folder `run_dir` if there is one."""
    bad = {k: v for k, v in means.items() if not math.isfinite(v)}
    if not bad:
        return
    cause = "Lower the learning rates."
    if batch is not None and "audios" in batch:
        audible = torch.isfinite(batch["audios"]).all(-1).cpu()  # (B, N)
        files = [batch["infos"][b][n] for b, n in (~audible).nonzero().tolist()]
        cause = (
            f"The batch holds non-finite audio from {files}: check them with scripts/check_data.py."
            if files
            else "The batch's audio is finite: the model diverged. Lower the learning rates."
        )
    latest = checkpoints.path_of(run_dir, "latest")
    kept = (
        f"the last good checkpoint {latest} is kept"
        if os.path.isfile(latest)
        else "no checkpoint was written yet"
    )
    raise NonFiniteLoss(
        f"non-finite loss at epoch {epoch + 1}, iteration {it}: {bad}. Training "
        f"stopped; {kept}. {cause}"
    )
