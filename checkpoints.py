"""Checkpoints of a run: saving each epoch, loading a trained run, initialising the next stage,
resuming.

A run folder <ckpt>/<id>/ holds args.json (the resolved arguments), checkpoint_latest.pt and
checkpoint_best.pt (nets, optimizer, scheduler, epoch, history, best value, arguments, RNG state):
one file format, each network's weights under 'nets'. Everything here is written with
utils.atomic_write, so a killed or failed write never replaces a good file.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Collection
from dataclasses import dataclass, field, replace

import torch

import utils
from arguments import ARCH_KEYS, build_parser, upgrade_saved

log = logging.getLogger("ccol")

TAGS = ("latest", "best")


class CheckpointError(RuntimeError):
    pass


@dataclass
class RunState:
    """Where a training run stands: what a checkpoint holds besides the arguments and RNG state."""

    nets: torch.nn.ModuleDict
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    epoch: int = 0  # epochs done; training continues with this epoch index
    history: dict = field(default_factory=lambda: {"train": [], "val": []})
    best: float | None = None  # the best validation value so far (evaluation.is_better)


def path_of(run_dir: str, tag: str) -> str:
    if tag not in TAGS:
        raise ValueError(f"checkpoint tag must be one of {TAGS}, got {tag!r}")
    return os.path.join(run_dir, f"checkpoint_{tag}.pt")


# ----------------------------------------------------------------------------------------------
# args.json
# ----------------------------------------------------------------------------------------------
def save_args(args: argparse.Namespace) -> None:
    """<run_dir>/args.json: every resolved argument (an evaluation reads them back:
    arguments.parse_args)."""
    utils.atomic_write(
        os.path.join(args.run_dir, "args.json"),
        lambda f: json.dump(vars(args), f, indent=2, sort_keys=True),
        text=True,
    )


# ----------------------------------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------------------------------
def save(state: RunState, args, tag: str) -> None:
    """checkpoint_<tag>.pt: everything a resume, an evaluation or the next stage needs."""
    checkpoint = {
        "nets": {k: v.state_dict() for k, v in state.nets.items()},
        "optimizer": state.optimizer.state_dict(),
        "scheduler": state.scheduler.state_dict(),
        "epoch": state.epoch,
        "history": state.history,
        "best": state.best,
        "stage": args.stage,
        "args": vars(args),
        "rng": utils.rng_state(),
    }
    utils.atomic_torch_save(checkpoint, path_of(args.run_dir, tag))


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------
def load(path: str) -> dict:
    """A checkpoint file, with a clear error for a missing or damaged one."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} is unreadable (truncated or not a torch file): {e}"
        ) from e


def check_arch(saved: dict, args, path: str) -> None:
    """Refuse weights trained with other architecture flags or for another stage."""
    # Options renamed since the run was trained are read under today's names; a key the run still
    # lacks is an option added after it was trained: the run had its default.
    saved = upgrade_saved(saved)
    parser = build_parser(saved.get("stage", args.stage), saved.get("profile", args.profile))
    diff = {
        k: (saved.get(k), getattr(args, k))
        for k in ARCH_KEYS
        if saved.get(k, parser.get_default(k)) != getattr(args, k)
    }
    if saved.get("stage") != args.stage:
        diff["stage"] = (saved.get("stage"), args.stage)
    if diff:
        raise CheckpointError(
            f"{path} was trained with another configuration (saved vs now): {diff}"
        )


def load_state_strict(net: torch.nn.Module, state: dict, what: str) -> None:
    """load_state_dict that names the network and the first mismatching keys/shapes."""
    own = net.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    wrong = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or wrong:
        details = "; ".join(
            filter(
                None,
                [
                    f"missing {missing[:3]}" if missing else "",
                    f"unexpected {unexpected[:3]}" if unexpected else "",
                    f"shape mismatch {wrong[:3]}" if wrong else "",
                ],
            )
        )
        raise CheckpointError(
            f"{what} does not match this architecture ({details}); "
            f"check the architecture flags (ngf, vis_width, num_channels, ...)"
        )
    net.load_state_dict(state)


def load_run(nets, args, tag: str = "best") -> dict:
    """Weights of the run `args.run_dir` into `nets` (all of them), after the architecture check.

    Returns the checkpoint (its 'epoch', 'history', ...); `path` is added.
    """
    path = path_of(args.run_dir, tag)
    ckpt = load(path)
    check_arch(ckpt["args"], args, path)
    for name, net in nets.items():
        if name not in ckpt["nets"]:
            raise CheckpointError(f"{path} holds no {name} network (it has {sorted(ckpt['nets'])})")
        load_state_strict(net, ckpt["nets"][name], f"{name} in {path}")
    return {**ckpt, "path": path}


def initialise_from(
    nets, run_dir: str, which: str = "latest", needed: Collection[str] = ()
) -> dict:
    """A previous stage's weights (its checkpoint_<which>.pt) into the nets both stages share.

    `which` is 'latest' (its last epoch, as the authors' scripts chain the stages) or 'best'.
    `needed`: nets the checkpoint must hold (those the previous stage trains); one missing would
    start random, which is a run of another stage's chain. Returns the checkpoint (with 'path').
    """
    path = path_of(run_dir, which)
    if not os.path.isfile(path):
        raise CheckpointError(
            f"{path} does not exist: train the previous stage first, point "
            f"--init_from at its run folder, or pass --init_from none to start "
            f"from scratch"
        )
    ckpt = load(path)
    missing = [name for name in needed if name not in ckpt["nets"]]
    if missing:
        raise CheckpointError(
            f"{path} is a {ckpt.get('stage')} run and holds no {', '.join(missing)} "
            f"network: they would start random. Point --init_from at a run of the previous "
            f"stage, or pass --init_from none to start from scratch"
        )
    loaded = []
    for name, net in nets.items():
        if name in ckpt["nets"]:
            load_state_strict(net, ckpt["nets"][name], f"{name} of {path}")
            loaded.append(name)
    if not loaded:
        raise CheckpointError(f"{path} shares no network with stage nets {list(nets)}")
    log.info("initialised %s from %s (epoch %d)", ", ".join(loaded), path, ckpt["epoch"])
    return {**ckpt, "path": path}


# ----------------------------------------------------------------------------------------------
# Resuming
# ----------------------------------------------------------------------------------------------
def load_latest(args) -> dict | None:
    """The run's checkpoint_latest.pt after the architecture check; None if it has none.

    A damaged file says how to go on: from the best checkpoint, or as a new run.
    """
    path = path_of(args.run_dir, "latest")
    if not os.path.exists(path):
        return None
    try:
        ckpt = load(path)
    except CheckpointError as err:
        best = path_of(args.run_dir, "best")
        fallback = ""
        if os.path.isfile(best):
            fallback = (
                f"to continue from the best checkpoint (losing the epochs after it), copy "
                f"{best} over it and run again with --resume; or "
            )
        raise CheckpointError(
            f"{err}. Nothing was changed: {fallback}start a new run with another --id"
        ) from err
    check_arch(ckpt["args"], args, path)
    return ckpt


def resume(state: RunState, args) -> RunState | None:
    """The run as checkpoint_latest.pt left it: `state`'s nets, optimizer and scheduler (and the
    RNG) restored in place, with the checkpoint's epoch, history and best; None without one."""
    ckpt = load_latest(args)
    if ckpt is None:
        if args.resume:
            log.warning("--resume: %s holds no checkpoint yet, starting a fresh run", args.run_dir)
        return None
    path = path_of(args.run_dir, "latest")
    for name, net in state.nets.items():
        load_state_strict(net, ckpt["nets"][name], f"{name} in {path}")
    state.optimizer.load_state_dict(ckpt["optimizer"])
    state.scheduler.load_state_dict(ckpt["scheduler"])
    utils.set_rng_state(ckpt["rng"])
    log.info("resumed %s at epoch %d", path, ckpt["epoch"])
    return replace(state, epoch=ckpt["epoch"], history=ckpt["history"], best=ckpt["best"])
