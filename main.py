"""Train or evaluate one stage (GRD, COL, CCoL or the SoP baseline) on MUSIC mixtures.

    python main.py --stage grd  --id MUSIC_GRD ...                 # stage 1
    python main.py --stage col  --id MUSIC_COL --init_from ckpt/MUSIC_GRD
    python main.py --stage ccol --id MUSIC_CCoL --init_from ckpt/MUSIC_COL
    python main.py --mode eval --id MUSIC_CCoL [--eval_silent]

One training loop for every stage: the stage module (stages.py) supplies the forward pass and named
losses, training.py the networks, loaders and steps, evaluation.py the scores. A run lives in
<ckpt>/<id>/: args.json, checkpoints, history.json, plots, results and the HTML visualization.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time

import torch
import torch.distributed as dist

import checkpoints
import metrics
import utils
import viz
from arguments import PREVIOUS_STAGE, parse_args
from dataset import DataError
from dataset.index import split_leaks, val_in_train
from evaluation import evaluate, flat_metrics, format_flat, headline, is_better, selection_metric
from models import count_parameters
from stages import STAGE_NETS
from training import (
    LoopSettings,
    NonFiniteLoss,
    build_stage,
    log_visual_weights,
    make_dataset,
    make_loader,
    make_optimizer,
    train_one_epoch,
)

log = logging.getLogger("ccol")


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------
def train(args, model, nets, device: torch.device) -> None:
    run_dir = args.run_dir
    optimizer = make_optimizer(nets, args)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=args.lr_steps, gamma=0.1)
    state = checkpoints.RunState(nets, optimizer, scheduler)
    resumed, loaded = checkpoints.resume(state, args), {}
    if resumed is not None:
        state = resumed
        loaded = dict.fromkeys(nets, checkpoints.path_of(run_dir, "latest"))
    elif args.init_from:
        previous = PREVIOUS_STAGE.get(args.stage)
        needed = [name for name in STAGE_NETS.get(previous, ()) if name in nets]
        ckpt = checkpoints.initialise_from(nets, args.init_from, args.init_checkpoint, needed)
        loaded = {name: ckpt["path"] for name in nets if name in ckpt["nets"]}
    log_visual_weights(nets, args, loaded)

    # Validation maps only the samples its page shows; the learning-curve test scores map nothing.
    train_set = make_dataset(args, "train")
    val_set = make_dataset(args, "val", maps=args.num_vis > 0)
    # Bad wavs, frames, detections and lists found now, not when first drawn hours from now.
    for dataset in (train_set, val_set):
        dataset.preflight()
    if len(train_set) < args.batch_size:
        raise SystemExit(
            f"{args.list_train}: {len(train_set)} training samples per epoch "
            f"({len(train_set.videos)} videos x --dup_trainset {args.dup_trainset}), fewer than "
            f"one batch (--batch_size {args.batch_size}): no step would be taken. Lower "
            f"--batch_size or raise --dup_trainset"
        )
    log.info(
        "train: %d samples/epoch, val: %d mixtures, batch %d",
        len(train_set),
        len(val_set),
        args.batch_size_per_gpu * max(1, args.num_gpus),
    )
    val_loader = make_loader(val_set, args, device, train=False)
    val_mix_sdr = {}  # the val mixtures are fixed: their own SDR is computed once
    # Learning curves only: test mixtures are scored along the way, never used to choose anything.
    test_loader = (
        make_loader(make_dataset(args, "test", maps=False), args, device, train=False)
        if args.test_every
        else None
    )
    test_mix_sdr = {}
    history = state.history  # each epoch appends to it
    loop = LoopSettings.from_args(args)
    for epoch in range(state.epoch, args.num_epoch):
        utils.seed_everything(args.seed + epoch)
        train_loader = make_loader(train_set, args, device, train=True, epoch=epoch)
        train_means = train_one_epoch(model, train_loader, optimizer, loop, device, epoch)
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
            summary, records, _, vis_samples = evaluate(
                model, val_loader, args, device, num_vis=args.num_vis, mix_sdr_cache=val_mix_sdr
            )
            history["val"].append({"epoch": epoch + 1, **flat_metrics(summary)})
            log.info("[val] epoch %d %s", epoch + 1, format_flat(history["val"][-1]))
            value = selection_metric(summary, args)
            improved = is_better(value, state.best, args)
            if improved:
                state.best = value
            if utils.is_main_process():
                viz.write_run_page(
                    args, summary, vis_samples, history, title=f"validation, epoch {epoch + 1}"
                )
        if test_loader is not None and (
            (epoch + 1) % args.test_every == 0 or epoch + 1 == args.num_epoch
        ):
            summary, _, _, _ = evaluate(
                model, test_loader, args, device, mix_sdr_cache=test_mix_sdr
            )
            history.setdefault("test", []).append(
                {
                    "epoch": epoch + 1,
                    "mixtures_seen": (epoch + 1) * len(train_set),
                    **flat_metrics(summary),
                }
            )
            log.info("[test] epoch %d %s", epoch + 1, format_flat(history["test"][-1]))
        state.epoch = epoch + 1
        if utils.is_main_process():
            checkpoints.save(state, args, "latest")
            if improved or not os.path.exists(checkpoints.path_of(run_dir, "best")):
                checkpoints.save(state, args, "best")
            utils.atomic_write_json(history, os.path.join(run_dir, "history.json"))
            viz.plot_history(history, run_dir)
            viz.write_runs_index(args.ckpt)
    log.info("training done: %s (best %s)", run_dir, state.best)


def run_eval(args, model, nets, device: torch.device) -> dict:
    ckpt = checkpoints.load_run(nets, args, "best")
    best = ckpt["path"]
    log_visual_weights(nets, args, dict.fromkeys(nets, best))
    dataset = make_dataset(args, args.split)
    dataset.preflight()
    loader = make_loader(dataset, args, device, train=False)
    log.info(
        "evaluating %s (epoch %d) on %s: %d mixtures%s",
        best,
        ckpt["epoch"],
        args.split,
        len(dataset),
        " [silent-object protocol]" if args.eval_silent else "",
    )
    tic = time.perf_counter()
    summary, records, objects, vis_samples = evaluate(
        model, loader, args, device, silent=args.eval_silent, num_vis=args.num_vis, localize=True
    )
    elapsed = time.perf_counter() - tic
    result = headline(summary, args, args.split, best)
    result["eval_seconds"] = round(elapsed, 2)
    if utils.is_main_process():
        # An oracle-mask evaluation is a diagnostic: its files sit beside the run's own results.
        suffix = ("_silent" if args.eval_silent else "") + ("_oracle" if args.oracle_masks else "")
        utils.atomic_write_json(result, os.path.join(args.run_dir, f"results{suffix}.json"))
        utils.atomic_write_json(summary, os.path.join(args.run_dir, f"summary{suffix}.json"))
        if records:
            metrics.write_records_csv(
                os.path.join(args.run_dir, f"eval_{args.split}{suffix}.csv"), records
            )
        # Every object's grounding and localization: what intervals and --compare resample.
        metrics.write_records_csv(
            os.path.join(args.run_dir, f"eval_{args.split}_objects{suffix}.csv"), objects
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
    rank, local_rank, world_size = utils.init_distributed(args.device)
    device = utils.select_device(args.device, local_rank)
    try:
        run(args, device, local_rank, world_size)
    except (DataError, checkpoints.CheckpointError, utils.WriteError, utils.RunInUse) as err:
        # Bad input, a damaged or foreign checkpoint, a full or read-only disk: the message names
        # the file and says what to do; a traceback would only bury it.
        log.error("error: %s", err)
        raise SystemExit(1) from err


def run(args, device: torch.device, local_rank: int, world_size: int) -> None:
    leaks = {}
    if args.mode == "train":
        leaks = split_leaks(args.list_train, args.list_val, args.list_test)
        if leaks.get("train") and not args.allow_test_leak:
            raise SystemExit(
                f"{len(leaks['train'])} test videos are also listed in "
                f"{args.list_train} (first: {leaks['train'][0].audio}): test scores "
                f"would be measured on training data. Fix the index files, or pass "
                f"--allow_test_leak."
            )
        trained_on = val_in_train(args.list_train, args.list_val)
        if trained_on:
            raise SystemExit(
                f"{len(trained_on)} val videos of {args.list_val} are also listed in "
                f"{args.list_train} (first: {trained_on[0].audio}): the best checkpoint would "
                f"be chosen on training videos. Fix the index files."
            )
        if utils.is_main_process():
            utils.make_dirs(args.run_dir)
    # One process per run folder for the whole run; under DDP rank 0 holds it for all ranks.
    # Evaluations share it: they write their own files and may run side by side.
    lock = (
        utils.run_lock(args.run_dir, shared=args.mode == "eval")
        if utils.is_main_process()
        else contextlib.nullcontext()
    )
    with lock:
        _run_locked(args, device, local_rank, world_size, leaks)


def _run_locked(args, device: torch.device, local_rank: int, world_size: int, leaks: dict) -> None:
    if args.mode == "eval":
        utils.check_writable(args.run_dir)
    else:
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
            utils.check_writable(args.run_dir)
            checkpoints.save_args(args)
    if world_size > 1:
        dist.barrier()
        # Every rank reads what rank 0 writes there (a resume's checkpoint, the run's args): on
        # several nodes --ckpt must be one folder that all of them share.
        shared = os.path.isfile(os.path.join(args.run_dir, "args.json"))
        if not utils.every_rank_has(shared, device):
            raise SystemExit(
                f"{args.run_dir} is not the same folder on every node (rank "
                f"{dist.get_rank()} {'sees' if shared else 'does not see'} its args.json): "
                f"put --ckpt on a file system that all nodes share"
            )
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
        device,
        world_size,
    )

    nets, stage = build_stage(args, device)
    for name, net in nets.items():
        log.info(
            "  %-13s %9d parameters, %9d trainable",
            name,
            count_parameters(net),
            count_parameters(net, trainable_only=True),
        )
    model = stage
    if world_size > 1:
        if args.sync_bn and device.type == "cuda":
            stage = torch.nn.SyncBatchNorm.convert_sync_batchnorm(
                stage
            )  # replaced in place: nets stay valid
        model = torch.nn.parallel.DistributedDataParallel(
            stage, device_ids=[local_rank] if device.type == "cuda" else None
        )
    elif args.num_gpus > 1:
        model = torch.nn.DataParallel(stage, device_ids=list(range(args.num_gpus)))
    if args.compile:
        model = torch.compile(model)

    if args.mode == "train":
        try:
            train(args, model, nets, device)
        except NonFiniteLoss as err:
            log.error("%s", err)
            raise SystemExit(1) from err
    else:
        run_eval(args, model, nets, device)
    if world_size > 1:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
