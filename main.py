"""Train or evaluate one stage (GRD, COL, CCoL or the SoP baseline) on MUSIC mixtures.

    python main.py --stage grd  --id MUSIC_GRD ...                 # stage 1
    python main.py --stage col  --id MUSIC_COL --init_from ckpt/MUSIC_GRD
    python main.py --stage ccol --id MUSIC_CCoL --init_from ckpt/MUSIC_COL
    python main.py --mode eval --id MUSIC_CCoL [--eval_silent]

One training loop for every stage; the stage module (stages.py) supplies the forward pass and named
losses. A run lives in <ckpt>/<id>/: args.json, checkpoints, history.json, plots, results and the
HTML visualization.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler, Subset
from tqdm import tqdm

import checkpoints
import metrics
import utils
import viz
from arguments import parse_args
from dataset import DataError, MUSICMixDataset, collate
from dataset.index import split_leaks
from dataset.layout import class_of
from models import ModelBuilder, count_parameters
from stages import STAGE_NETS, STAGES

log = logging.getLogger("ccol")


class NonFiniteLoss(RuntimeError):
    pass


# ----------------------------------------------------------------------------------------------
# Networks, optimiser
# ----------------------------------------------------------------------------------------------
def build_nets(args) -> torch.nn.ModuleDict:
    builders = {
        "sound_ground": lambda: ModelBuilder.build_sound_ground(
            args.arch_sound_ground, width=args.vggish_width, init=args.sound_ground_init
        ),
        "frame_ground": lambda: ModelBuilder.build_frame_ground(
            args.arch_frame_ground,
            width=args.vis_width,
            weights_imagenet=args.weights_imagenet,
            pool=args.img_pool,
        ),
        "grounding": lambda: ModelBuilder.build_grounding(
            args.arch_grounding,
            audio_dim=8 * args.vggish_width,
            visual_dim=8 * args.vis_width,
            init_std=args.grounding_init_std,
        ),
        "sound": lambda: ModelBuilder.build_sound(
            args.arch_sound,
            ngf=args.ngf,
            fc_dim=args.num_channels,
            levels=args.unet_levels,
            init=args.sound_init,
        ),
        "frame": lambda: ModelBuilder.build_frame(
            args.arch_frame,
            width=args.vis_width,
            fc_dim=args.num_channels,
            pool=args.img_pool,
            weights_imagenet=args.weights_imagenet,
        ),
        "synthesizer": lambda: ModelBuilder.build_synthesizer(
            args.arch_synthesizer, fc_dim=args.num_channels
        ),
    }
    return torch.nn.ModuleDict({name: builders[name]() for name in STAGE_NETS[args.stage]})


def frozen_modules(nets, args) -> list:
    """Without ImageNet weights the ResNets must learn (frozen random features carry too little)."""
    if args.train_visual == "yes":
        return []
    frozen = [nets["frame_ground"]] if "frame_ground" in nets else []
    if "frame" in nets and args.stage != "sop":  # SoP fine-tunes it (docs/method.md, SoP)
        frozen.append(nets["frame"].features)
    return frozen


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
def make_dataset(args, split: str) -> MUSICMixDataset:
    common = dict(
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
    )
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
            **common,
        )
    return MUSICMixDataset(
        args.data_root,
        args.list_test,
        "test",
        sep_list=args.list_sep,
        max_samples=args.num_val,
        **common,
    )


def _seed_worker(worker_id: int) -> None:
    np.random.seed(torch.initial_seed() % 2**32)


def make_loader(dataset, args, train: bool, epoch: int = 0) -> DataLoader:
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
        pin_memory=args.device_obj.type == "cuda",
        worker_init_fn=_seed_worker,
        generator=generator,
        # The val loader lives for the whole run; a train loader is rebuilt per epoch so
        # that its workers' RNG depends on the epoch only (exact replay on resume).
        persistent_workers=args.workers > 0 and not train,
        prefetch_factor=4 if args.workers > 0 else None,
    )


def to_device(batch: dict, device) -> dict:
    return {
        k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()
    }


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train_step(model, batch: dict, optimizer, args) -> dict:
    """One optimisation step.

    Returns the losses and the stage's diagnostics as device tensors (no host sync).
    """
    with torch.autocast(args.device_obj.type, dtype=torch.bfloat16, enabled=args.amp):
        losses, out = model(batch)
    losses = {k: v.mean() for k, v in losses.items()}  # DataParallel returns one value per replica
    optimizer.zero_grad(set_to_none=True)
    losses["total"].backward()
    optimizer.step()
    return {**losses, **{k: v.float().mean() for k, v in out.get("stats", {}).items()}}


def configure_cuda() -> None:
    torch.backends.cudnn.benchmark = True  # input sizes are fixed
    torch.set_float32_matmul_precision("high")  # TF32 matmuls when not under --amp


def train_one_epoch(model, loader, optimizer, args, epoch: int) -> dict:
    model.train()
    sums, count, skipped = {}, 0, 0
    progress = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{args.num_epoch}",
        leave=False,
        disable=not utils.is_main_process(),
        dynamic_ncols=True,
    )
    tic = time.perf_counter()
    for it, batch in enumerate(progress):
        if batch is None:  # every sample of this batch was skipped (on_error=skip)
            skipped += args.batch_size_per_gpu
            continue
        skipped += batch.pop("skipped", 0)
        batch = to_device(batch, args.device_obj)
        losses = train_step(model, batch, optimizer, args)
        for k, v in losses.items():  # accumulated on the device: no host sync per step
            sums[k] = sums.get(k, 0) + v.detach()
        count += 1
        if (it + 1) % args.disp_iter == 0 or it + 1 == len(loader):
            means = {k: float(v) / count for k, v in sums.items()}
            check_finite(means, epoch, it, args, batch)
            progress.set_postfix(loss=f"{means['total']:.4f}")
            log.info(
                "[train] epoch %d it %d/%d %s  %.1f mix/s",
                epoch + 1,
                it + 1,
                len(loader),
                " ".join(f"{k}={v:.4f}" for k, v in means.items()),
                count * batch["mix"].shape[0] / (time.perf_counter() - tic),
            )
    if count == 0:
        raise RuntimeError(
            "no training batch could be loaded (see the skipped-sample warnings above)"
        )
    means = utils.all_reduce_mean({k: float(v) / count for k, v in sums.items()})
    check_finite(means, epoch, count, args)
    if skipped:
        log.warning(
            "epoch %d: %d training samples skipped because of bad input (see warnings)",
            epoch + 1,
            skipped,
        )
    return means


def check_finite(means: dict, epoch: int, it: int, args, batch: dict | None = None) -> None:
    """Stop on a NaN/inf running loss, naming the batch's files when their audio is not finite."""
    bad = {k: v for k, v in means.items() if not math.isfinite(v)}
    if not bad:
        return
    cause = "Lower the learning rates."
    if batch is not None:
        audible = torch.isfinite(batch["audios"]).all(-1).cpu()  # (B, N)
        files = [batch["infos"][b][n] for b, n in (~audible).nonzero().tolist()]
        cause = (
            f"The batch holds non-finite audio from {files}: check them with scripts/check_data.py."
            if files
            else "The batch's audio is finite: the model diverged. Lower the learning rates."
        )
    latest = checkpoints.path_of(args.run_dir, "latest")
    kept = (
        f"the last good checkpoint {latest} is kept"
        if os.path.isfile(latest)
        else "no checkpoint was written yet"
    )
    raise NonFiniteLoss(
        f"non-finite loss at epoch {epoch + 1}, iteration {it}: {bad}. Training "
        f"stopped; {kept}. {cause}"
    )


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(
    model, loader, args, silent: bool = False, num_vis: int = 0, mix_sdr_cache: dict | None = None
) -> tuple[dict, list, list]:
    """Loss, SDR/SIR/SAR of every sounding source, grounding over the whole set; vis samples.

    Returns (summary, per-source records, visualization samples).
    """
    model.eval()
    frontend = utils.unwrap(model).frontend
    loss_sums, stat_sums, batches, scored = {}, {}, 0, 0
    records, vis_samples = [], []
    ground_prob, ground_true, solo_prob, silent_leak, ref_silent_sdr = [], [], [], [], []
    sounding_gated_off = 0
    for batch in tqdm(
        loader, desc="eval", leave=False, disable=not utils.is_main_process(), dynamic_ncols=True
    ):
        if batch is None:
            continue
        batch.pop("skipped", None)
        batch = to_device(batch, args.device_obj)
        with torch.autocast(args.device_obj.type, dtype=torch.bfloat16, enabled=args.amp):
            losses, out = model(batch)
        for k, v in losses.items():
            loss_sums[k] = loss_sums.get(k, 0.0) + float(v.mean())
        for k, v in out.get("stats", {}).items():
            stat_sums[k] = stat_sums.get(k, 0.0) + float(v.float().mean())
        batches += 1
        scored += batch["mix"].shape[0]
        sounding = batch["sounding"]  # (B, N) bool
        if "sounding_prob" in out:
            ground_prob.append(out["sounding_prob"].float().cpu())
            ground_true.append(sounding.cpu())
            solo_prob.append(out["solo_prob"].float().cpu())
        masks = waves = batch_records = None
        if "pred_masks" in out:  # GRD has grounding only
            masks = out["pred_masks"]
            if (
                silent
            ):  # every object's mask gated by its mixture grounding (reference main_silent.py)
                masks = masks * (out["sounding_prob"] > 0.5).to(masks.dtype)[..., None, None, None]
            est = frontend.reconstruct(masks, out, args.aud_len)  # (B, N, L)
            batch_records = separation_records(est, batch, args, mix_sdr_cache)
            records += batch_records
            waves = {"est": est}
            if silent:
                sounding_gated_off += int(((out["sounding_prob"] <= 0.5) & sounding).sum())
                est_silent = est[~sounding].view(est.shape[0], -1, est.shape[-1])
                silent_leak.append(
                    metrics.silent_leakage_db(
                        est_silent.cpu().double().numpy(), batch["mix"].cpu().double().numpy()
                    )
                )
                ref_silent_sdr.append(
                    metrics.reference_silent_sdr(
                        batch["audios"].cpu().double().numpy(), est.cpu().double().numpy()
                    )
                )
        if len(vis_samples) < num_vis:
            if waves is not None:
                waves["gt_masked"] = frontend.reconstruct(out["gt_masks"], out, args.aud_len)
            vis_samples += viz.collect_samples(
                batch, out, masks, waves, batch_records, args, limit=num_vis - len(vis_samples)
            )

    records = utils.gather_objects(records)
    # every rank's shard: its sums, batches, mixtures scored and mixtures it was given
    parts = utils.gather_objects([(loss_sums, stat_sums, batches, scored, len(loader.dataset))])
    batches = sum(part[2] for part in parts)
    scored, total = sum(part[3] for part in parts), sum(part[4] for part in parts)
    if scored == 0:
        raise RuntimeError(
            f"none of the {total} mixtures could be loaded (see the skipped-sample warnings above)"
        )
    if scored < total:
        log.warning(
            "%d of %d mixtures skipped because of bad input (see warnings): every score is "
            "over the %d others",
            total - scored,
            total,
            scored,
        )
    summary = {
        "loss": {k: sum(p[0].get(k, 0.0) for p in parts) / batches for k in loss_sums},
        "stats": {k: sum(p[1].get(k, 0.0) for p in parts) / batches for k in stat_sums},
        "num_mixtures": scored,
        "num_skipped": total - scored,
    }
    if records:
        summary.update(metrics.summarize(records))
    if ground_prob:
        prob = torch.cat(ground_prob).flatten().numpy()
        true = torch.cat(ground_true).flatten().numpy()
        prob, true = (
            np.array(utils.gather_objects(list(prob))),
            np.array(utils.gather_objects(list(true))),
        )
        summary["grounding"] = metrics.grounding_metrics(prob, true)
        solo = torch.cat(solo_prob).numpy()  # pairs (a0,V0)+ (a0,V1)- (a2,V2)+ (a2,V3)-
        solo_true = np.tile(np.array([True, False, True, False]), (solo.shape[0], 1))
        summary["solo_grounding_acc"] = float(np.mean((solo > 0.5) == solo_true))
    if silent_leak:
        # A silent slot gated to exactly zero counts at the -100 dB floor of silent_leakage_db.
        summary["silent_leakage_db"] = float(
            np.nanmean(np.concatenate([x.ravel() for x in silent_leak]))
        )
        summary["reference_silent_sdr"] = float(np.mean(np.concatenate(ref_silent_sdr)))
        # A sounding object whose mask was gated off has an all-zero estimate: SDR is undefined, so
        # those samples drop out of the SDR means; report how many so the means are not flattering.
        summary["sounding_gated_off"] = sounding_gated_off
    return summary, records, vis_samples


def separation_records(est, batch, args, mix_sdr_cache: dict | None = None) -> list[dict]:
    """SDR/SIR/SAR (and mixture SDR) of each sounding object of each sample, one record per source.

    mix_sdr_cache: dataset index -> mixture SDRs, for a fixed set (validation) evaluated every
    epoch: the mixture's SDR does not depend on the model, so it is computed once (half the metric
    time).
    """
    sounding = batch["sounding"]
    B, N, L = est.shape
    S = int(sounding[0].sum())  # sounding objects per sample (2 for CCoL/SoP)
    refs = batch["audios"][sounding].view(B, S, L)  # metrics run in float64 on the tensors' device
    ests = est[sounding].view(B, S, L)
    mix = batch["mix"]
    sep = metrics.separation_metrics(refs, ests, backend=args.metrics_backend)
    indices = [int(i) for i in batch["index"]]
    if mix_sdr_cache is not None and all(i in mix_sdr_cache for i in indices):
        sdr_mix = np.stack([mix_sdr_cache[i] for i in indices])
    else:
        sdr_mix = np.asarray(metrics.mixture_sdr(refs, mix, backend=args.metrics_backend))
        if mix_sdr_cache is not None:
            mix_sdr_cache.update(zip(indices, sdr_mix))
    slots = sounding[0].nonzero().flatten().tolist()
    records = []
    for b in range(B):
        for s, slot in enumerate(slots):
            info = batch["infos"][b][slot]
            records.append(
                {
                    "index": int(batch["index"][b]),
                    "slot": slot,
                    "class": class_of(info),
                    "source": info,
                    "mixture": "+".join(batch["infos"][b]),
                    "valid": bool(sep["valid"][b]),
                    "sdr": float(sep["sdr"][b, s]),
                    "sir": float(sep["sir"][b, s]),
                    "sar": float(sep["sar"][b, s]),
                    "sdr_mix": float(sdr_mix[b, s]),
                }
            )
    return records


def headline(summary: dict, args, split: str, checkpoint: str) -> dict:
    """The flat results.json every evaluation writes: means over the mixtures scored, how many were
    skipped, and what was evaluated (data root, mixture list, checkpoint)."""
    mean, median = summary.get("mean", {}), summary.get("median", {})
    out = {
        "stage": args.stage,
        "split": split,
        "num_mixtures": summary["num_mixtures"],
        "num_skipped": summary["num_skipped"],
        "run": args.id,
        "data_root": os.path.abspath(args.data_root),
        "split_file": os.path.abspath(args.list_sep if split == "test" else args.list_val),
        "checkpoint": os.path.abspath(checkpoint),
        "sdr": mean.get("sdr"),
        "sir": mean.get("sir"),
        "sar": mean.get("sar"),
        "sdr_mix": mean.get("sdr_mix"),
        "sdr_median": median.get("sdr"),
        "grounding_acc": summary.get("grounding", {}).get("accuracy"),
        "grounding_ap": summary.get("grounding", {}).get("ap"),
        "solo_grounding_acc": summary.get("solo_grounding_acc"),
    }
    if "silent_leakage_db" in summary:
        out.update(
            silent_leakage_db=summary["silent_leakage_db"],
            silent_acc=out["grounding_acc"],
            reference_silent_sdr=summary["reference_silent_sdr"],
            sounding_gated_off=summary["sounding_gated_off"],
            num_invalid=summary.get("num_invalid"),
        )
    return {k: utils.finite_or_none(v) if isinstance(v, float) else v for k, v in out.items()}


# ----------------------------------------------------------------------------------------------
# Best checkpoint
# ----------------------------------------------------------------------------------------------
def lower_is_better(args) -> bool:
    return args.stage == "grd" or args.best_by == "loss"


def is_better(value, best, args) -> bool:
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value < best if lower_is_better(args) else value > best)


def selection_metric(summary: dict, args):
    """The value `*_best` is chosen on: the lowest validation loss (the reference's rule: for COL
    and CCoL its total includes the grounding terms), or with --best_by sdr the highest validation
    SDR."""
    if lower_is_better(args):
        return summary["loss"].get("total")
    return summary.get("mean", {}).get("sdr")


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------
def train(args, model, nets) -> None:
    run_dir = args.run_dir
    optimizer = make_optimizer(nets, args)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.lr_steps, gamma=0.1)
    history, best, start_epoch = {"train": [], "val": []}, None, 0
    resumed = checkpoints.resume(nets, optimizer, scheduler, args)
    if resumed is not None:
        history, best, start_epoch = resumed
    elif args.init_from:
        checkpoints.initialise_from(nets, args.init_from, args.init_checkpoint)

    train_set, val_set = make_dataset(args, "train"), make_dataset(args, "val")
    log.info(
        "train: %d samples/epoch, val: %d mixtures, batch %d",
        len(train_set),
        len(val_set),
        args.batch_size_per_gpu * max(1, args.num_gpus),
    )
    val_loader = make_loader(val_set, args, train=False)
    val_mix_sdr = {}  # the val mixtures are fixed: their own SDR is computed once
    # Learning curves only: test mixtures are scored along the way, never used to choose anything.
    test_loader = (
        make_loader(make_dataset(args, "test"), args, train=False) if args.test_every else None
    )
    test_mix_sdr = {}
    for epoch in range(start_epoch, args.num_epoch):
        utils.seed_everything(args.seed + epoch)
        train_means = train_one_epoch(
            model, make_loader(train_set, args, True, epoch), optimizer, args, epoch
        )
        history["train"].append(
            {
                "epoch": epoch + 1,
                **train_means,
                "lr": {g["name"]: g["lr"] for g in optimizer.param_groups},
            }
        )
        scheduler.step()
        improved = False
        if (epoch + 1) % args.eval_epoch == 0 or epoch + 1 == args.num_epoch:
            summary, records, vis_samples = evaluate(
                model, val_loader, args, num_vis=args.num_vis, mix_sdr_cache=val_mix_sdr
            )
            history["val"].append({"epoch": epoch + 1, **flat_metrics(summary)})
            log.info("[val] epoch %d %s", epoch + 1, format_flat(history["val"][-1]))
            value = selection_metric(summary, args)
            improved = is_better(value, best, args)
            if improved:
                best = value
            if utils.is_main_process():
                viz.write_run_page(
                    args, summary, vis_samples, history, title=f"validation, epoch {epoch + 1}"
                )
        if test_loader is not None and (
            (epoch + 1) % args.test_every == 0 or epoch + 1 == args.num_epoch
        ):
            summary, _, _ = evaluate(model, test_loader, args, mix_sdr_cache=test_mix_sdr)
            history.setdefault("test", []).append(
                {
                    "epoch": epoch + 1,
                    "mixtures_seen": (epoch + 1) * len(train_set),
                    **flat_metrics(summary),
                }
            )
            log.info("[test] epoch %d %s", epoch + 1, format_flat(history["test"][-1]))
        if utils.is_main_process():
            checkpoints.save(nets, optimizer, scheduler, epoch + 1, history, best, args, "latest")
            if improved or not os.path.exists(checkpoints.path_of(run_dir, "best")):
                checkpoints.save(nets, optimizer, scheduler, epoch + 1, history, best, args, "best")
            utils.atomic_write_json(history, os.path.join(run_dir, "history.json"))
            viz.plot_history(history, run_dir)
            viz.write_runs_index(args.ckpt)
    log.info("training done: %s (best %s)", run_dir, best)


def flat_metrics(summary: dict) -> dict:
    flat = {f"loss_{k}": v for k, v in summary["loss"].items()}
    for k, v in summary.get("mean", {}).items():
        flat[k] = v
    flat.update(summary.get("stats", {}))
    if "grounding" in summary:
        flat["grounding_acc"] = summary["grounding"]["accuracy"]
        flat["grounding_ap"] = summary["grounding"]["ap"]
        flat["solo_grounding_acc"] = summary["solo_grounding_acc"]
    flat = {k: utils.finite_or_none(v) for k, v in flat.items()}
    return {**flat, "num_mixtures": summary["num_mixtures"], "num_skipped": summary["num_skipped"]}


def format_flat(flat: dict) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in flat.items()
        if k != "epoch"
    )


def run_eval(args, model, nets) -> dict:
    ckpt = checkpoints.load_run(nets, args, "best")
    best = ckpt["path"]
    dataset = make_dataset(args, args.split)
    loader = make_loader(dataset, args, train=False)
    log.info(
        "evaluating %s (epoch %d) on %s: %d mixtures%s",
        best,
        ckpt["epoch"],
        args.split,
        len(dataset),
        " [silent-object protocol]" if args.eval_silent else "",
    )
    tic = time.perf_counter()
    summary, records, vis_samples = evaluate(
        model, loader, args, silent=args.eval_silent, num_vis=args.num_vis
    )
    elapsed = time.perf_counter() - tic
    result = headline(summary, args, args.split, best)
    result["eval_seconds"] = round(elapsed, 2)
    if utils.is_main_process():
        suffix = "_silent" if args.eval_silent else ""
        utils.atomic_write_json(result, os.path.join(args.run_dir, f"results{suffix}.json"))
        utils.atomic_write_json(summary, os.path.join(args.run_dir, f"summary{suffix}.json"))
        if records:
            metrics.write_records_csv(
                os.path.join(args.run_dir, f"eval_{args.split}{suffix}.csv"), records
            )
        history_path = os.path.join(
            args.run_dir, "history.json"
        )  # the whole run, not just up to best
        history = (
            json.load(open(history_path)) if os.path.isfile(history_path) else ckpt.get("history")
        )
        viz.write_run_page(
            args,
            summary,
            vis_samples,
            history,
            title=f"{args.split} evaluation{' (silent objects)' if args.eval_silent else ''}, "
            f"checkpoint epoch {ckpt['epoch']}",
            checkpoint=best,
            page=args.split + suffix,
        )
        viz.write_runs_index(args.ckpt)
        if records:
            log.info("\n%s", metrics.format_summary_table(summary))
        log.info("results: %s", result)
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    rank, local_rank, world_size = utils.init_distributed()
    args.device_obj = utils.select_device(args.device, local_rank)
    try:
        run(args, local_rank, world_size)
    except (DataError, checkpoints.CheckpointError, utils.WriteError) as err:
        # Bad input, a damaged or foreign checkpoint, a full or read-only disk: the message names
        # the file and says what to do; a traceback would only bury it.
        log.error("error: %s", err)
        raise SystemExit(1) from err


def run(args, local_rank: int, world_size: int) -> None:
    leaks = {}
    if args.mode == "eval":
        if not os.path.isdir(args.run_dir):
            raise SystemExit(
                f"no run folder {args.run_dir}: train first or pass --id/--ckpt of a trained run"
            )
        args = checkpoints.run_args(args, args.run_dir)
        utils.check_writable(args.run_dir)
    else:
        leaks = split_leaks(args.list_train, args.list_val, args.list_test)
        if leaks.get("train") and not args.allow_test_leak:
            raise SystemExit(
                f"{len(leaks['train'])} test videos are also listed in "
                f"{args.list_train} (first: {leaks['train'][0].audio}): test scores "
                f"would be measured on training data. Fix the index files, or pass "
                f"--allow_test_leak."
            )
        latest = checkpoints.path_of(args.run_dir, "latest")
        if os.path.exists(latest) and not args.resume:
            raise SystemExit(
                f"{args.run_dir} already holds a run. Pass --resume to continue it, or choose "
                f"another --id (runs are never deleted or overwritten)."
            )
        # Refuse a resume with other architecture flags, or from a damaged file, before args.json
        # is rewritten.
        checkpoints.load_latest(args)
        if utils.is_main_process():
            os.makedirs(args.run_dir, exist_ok=True)
            utils.check_writable(args.run_dir)
            checkpoints.save_args(args)
    if world_size > 1:
        dist.barrier()
    utils.setup_logging(args.run_dir)
    for split, leaked in leaks.items():
        log.warning(
            "!!! %d %s videos are also test videos (first: %s): %s",
            len(leaked),
            split,
            leaked[0].audio,
            "training on them as --allow_test_leak asks; test scores are not held out"
            if split == "train"
            else "validation scores and the best checkpoint are not independent of the test set",
        )
    utils.seed_everything(args.seed)
    log.info(
        "run %s: stage %s, mode %s, device %s, world size %d",
        args.id,
        args.stage,
        args.mode,
        args.device_obj,
        world_size,
    )

    nets = build_nets(args)
    stage = STAGES[args.stage](nets, args, frozen=frozen_modules(nets, args)).to(args.device_obj)
    if args.channels_last:
        stage = stage.to(memory_format=torch.channels_last)
    if args.device_obj.type == "cuda":
        configure_cuda()
    if args.mode == "train" and args.stage != "sop":  # SoP always fine-tunes its frame net
        log.info(
            "ResNet-18 features: %s weights, %s",
            args.weights_imagenet,
            "trained (--train_visual yes)" if args.train_visual == "yes" else "frozen",
        )
    for name, net in nets.items():
        log.info(
            "  %-13s %9d parameters, %9d trainable",
            name,
            count_parameters(net),
            count_parameters(net, trainable_only=True),
        )
    model = stage
    if world_size > 1:
        if args.sync_bn and args.device_obj.type == "cuda":
            stage = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
                stage
            )  # replaced in place: nets stay valid
        model = torch.nn.parallel.DistributedDataParallel(
            stage, device_ids=[local_rank] if args.device_obj.type == "cuda" else None
        )
    elif args.num_gpus > 1:
        model = torch.nn.DataParallel(stage, device_ids=list(range(args.num_gpus)))
    if args.compile:
        model = torch.compile(model)

    if args.mode == "train":
        try:
            train(args, model, nets)
        except NonFiniteLoss as err:
            log.error("%s", err)
            raise SystemExit(1) from err
    else:
        run_eval(args, model, nets)
    if world_size > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
