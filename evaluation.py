"""Evaluation of a stage on a set of mixtures: losses, separation scores per source, grounding,
and the summaries a run writes (results.json, history rows, the value the best checkpoint is
chosen on).

The device is an argument (a torch.device); `args` is only read.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np
import torch
from tqdm import tqdm

import intervals
import localization
import metrics
import utils
import viz
from arguments import active_diagnostics
from dataset import DataError
from dataset.layout import class_of
from models.grounding_net import is_sounding
from sounding_maps import map_kind, sounding_maps
from training import to_device

log = logging.getLogger("ccol")


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------
@torch.no_grad()
def evaluate(
    model,
    loader,
    args,
    device: torch.device,
    silent: bool = False,
    num_vis: int = 0,
    mix_sdr_cache: dict | None = None,
    localize: bool = False,
) -> tuple[dict, list, list]:
    """Loss, SDR/SIR/SAR of every sounding source, grounding over the whole set; vis samples.

    Losses and diagnostics are means over the mixtures scored, as in training. Sounding maps are
    computed for the samples shown (`num_vis`) and, with `localize`, for every mixture, whose
    localization scores then fill summary['localization'] (loader built with map_size).
    A sounding object whose clip is digitally silent has no sound to ground or separate: it is
    left out of the grounding scores and named in summary['invalid_sources'] (its mixture's
    separation scores are invalid already). With `silent` (the silent-object protocol) the masks
    of a stage that grounds are gated by its mixture grounding; a stage without grounding (SoP,
    CoSep) is scored on its masks as they are. With --oracle_masks (a diagnostic) the ideal masks
    separate instead of the model's.
    Returns (summary, per-source records, per-object records, visualization samples).
    """
    model.eval()
    frontend = utils.unwrap(model).frontend
    loss_means, stat_means = utils.Averager(), utils.Averager()
    records, objects, vis_samples = [], [], []
    solo_prob, silent_leak, ref_silent_sdr = [], [], []
    sounding_gated_off, gated = 0, False
    for batch in tqdm(
        loader, desc="eval", leave=False, disable=not utils.is_main_process(), dynamic_ncols=True
    ):
        if batch is None:
            continue
        batch.pop("skipped", None)
        batch = to_device(batch, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp):
            losses, out = model(batch)
        size = batch["mix"].shape[0]
        loss_means.add({k: float(v.mean()) for k, v in losses.items()}, size)
        stat_means.add({k: float(v.float().mean()) for k, v in out.get("stats", {}).items()}, size)
        sounding = batch["sounding"]  # (B, N) bool
        batch_objects = object_records(batch, out.get("sounding_prob"))
        if "whole_frames" in batch and (localize or len(vis_samples) < num_vis):
            out["map_kind"] = map_kind(utils.unwrap(model).nets)
            out["sounding_map"] = sounding_map(model, out, batch)
            if localize:
                add_localization(batch_objects, out["sounding_map"], batch)
        objects += batch_objects
        if "sounding_prob" in out:
            solo_prob.append(out["solo_prob"].float().cpu())
        masks = waves = batch_records = None
        if "pred_masks" in out:  # GRD has grounding only
            masks = out["gt_masks"] if args.oracle_masks else out["pred_masks"]
            gated = silent and "sounding_prob" in out
            if gated:  # every object's mask gated by its mixture grounding (main_silent.py)
                gate = is_sounding(out["sounding_prob"]).to(masks.dtype)  # (B, N)
                masks = masks * gate[..., None, None, None]
            est = frontend.reconstruct(masks, out, args.aud_len)  # (B, N, L)
            batch_records = separation_records(est, batch, args.metrics_backend, mix_sdr_cache)
            records += batch_records
            waves = {"est": est}
            if gated:
                sounding_gated_off += int((~is_sounding(out["sounding_prob"]) & sounding).sum())
            if silent:
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
    objects = utils.gather_objects(objects)
    loss_means, stat_means = loss_means.reduce(), stat_means.reduce()
    scored = loss_means.count
    total = sum(utils.gather_objects([len(loader.dataset)]))  # every rank's shard
    if scored == 0:
        raise DataError(
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
        "loss": loss_means.means(),
        "stats": stat_means.means(),
        "num_mixtures": scored,
        "num_skipped": total - scored,
    }
    if records:
        summary.update(metrics.summarize(records))
    invalid = sorted({o["source"] for o in objects if not o["scored"]})
    if invalid:
        log.warning(
            "%d sounding source(s) are digitally silent in the clips scored and are left out of "
            "the scores: %s",
            len(invalid),
            ", ".join(invalid),
        )
    summary["invalid_sources"] = invalid
    grounded = [o for o in objects if o["scored"] and "sounding_prob" in o]
    if grounded:
        summary["grounding"] = metrics.grounding_metrics(
            [o["sounding_prob"] for o in grounded], [o["sounding"] for o in grounded]
        )
        solo = torch.cat(solo_prob).numpy()  # pairs (a0,V0)+ (a0,V1)- (a2,V2)+ (a2,V3)-
        solo_true = np.tile(np.array([True, False, True, False]), (solo.shape[0], 1))
        summary["solo_grounding_acc"] = float(np.mean(is_sounding(solo) == solo_true))
    if localize:
        summary["localization"] = localization.summarize([o for o in objects if "loc" in o])
    summary["num_videos"] = len({o["source"] for o in objects})
    summary["intervals"] = intervals.evaluation_intervals(records, objects)
    if silent_leak:
        # A silent slot gated to exactly zero counts at the -100 dB floor of silent_leakage_db.
        summary["silent_leakage_db"] = float(
            np.nanmean(np.concatenate([x.ravel() for x in silent_leak]))
        )
        summary["reference_silent_sdr"] = float(np.mean(np.concatenate(ref_silent_sdr)))
        summary["silent_gate"] = "grounding" if gated else "none"
        if gated:
            # A sounding object whose mask was gated off has an all-zero estimate: SDR is
            # undefined, so those samples drop out of the SDR means; report how many so the means
            # are not flattering.
            summary["sounding_gated_off"] = sounding_gated_off
    return summary, records, objects, vis_samples


def sounding_map(model, out: dict, batch: dict) -> torch.Tensor:
    """The stage's own sounding map (sounding_maps.map_kind) of every object's whole frame,
    upsampled to its pixels: (B, N, H, W)."""
    stage = utils.unwrap(model)
    kind = map_kind(stage.nets)
    maps = sounding_maps(
        stage.nets, stage.config, out, batch["whole_frames"], batch["map_boxes"], kinds=(kind,)
    )
    return localization.upsample(maps[kind], tuple(batch["whole_frames"].shape[-2:]))


def object_records(batch: dict, sounding_prob: torch.Tensor | None) -> list[dict]:
    """One row per object of each sample: which mixture, clip and video it is, whether it sounds,
    and its mixture grounding probability where the stage grounds (the rows that intervals and
    paired comparisons resample). `scored` is False for a sounding object whose clip is digitally
    silent: nothing in it can be grounded."""
    audible = (batch["audios"].abs().sum(-1) > metrics.VALID_ABS_SUM).cpu().numpy()  # (B, N)
    sounding = batch["sounding"].cpu().numpy()
    prob = None if sounding_prob is None else sounding_prob.float().cpu().numpy()
    rows = []
    for b, infos in enumerate(batch["infos"]):
        for n, source in enumerate(infos):
            row = {
                "index": int(batch["index"][b]),
                "clip": int(batch["clip"][b]),
                "slot": n,
                "source": source,
                "class": class_of(source),
                "sounding": bool(sounding[b, n]),
                "scored": bool(audible[b, n] or not sounding[b, n]),
            }
            if prob is not None:
                row["sounding_prob"] = float(prob[b, n])
            rows.append(row)
    return rows


def add_localization(rows: list[dict], heat: torch.Tensor, batch: dict) -> None:
    """Adds the localization scores of the whole frame of every object that sounds in its
    mixture to that object's row (object_records of the same batch); 'loc' marks a scored frame."""
    heat = heat.float().cpu().numpy()  # (B, N, H, W)
    truth = batch["true_boxes"].cpu().numpy()  # (B, N, K, 5)
    sounding = batch["sounding"].cpu().numpy()
    N = sounding.shape[1]
    for b, n in zip(*np.nonzero(sounding)):
        rows[b * N + n].update(loc=True, **localization.frame_scores(heat[b, n], truth[b, n]))


def separation_records(est, batch, backend: str, mix_sdr_cache: dict | None = None) -> list[dict]:
    """SDR/SIR/SAR (and mixture SDR) of each sounding object of each sample, one record per source.

    backend: --metrics_backend, the BSS-eval implementation (metrics.separation_metrics).

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
    sep = metrics.separation_metrics(refs, ests, backend=backend)
    indices = [int(i) for i in batch["index"]]
    if mix_sdr_cache is not None and all(i in mix_sdr_cache for i in indices):
        sdr_mix = np.stack([mix_sdr_cache[i] for i in indices])
    else:
        sdr_mix = np.asarray(metrics.mixture_sdr(refs, mix, backend=backend))
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
                    "clip": int(batch["clip"][b]),
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
        "sdr_gain": _gain(mean),
        "grounding_acc": summary.get("grounding", {}).get("accuracy"),
        "grounding_ap": summary.get("grounding", {}).get("ap"),
        "solo_grounding_acc": summary.get("solo_grounding_acc"),
        **{key: summary.get("localization", {}).get(key) for key in localization.LOC_KEYS},
        "num_videos": summary["num_videos"],
        "test_clips": args.test_clips,
        **summary["intervals"],
        "num_invalid": summary.get("num_invalid", 0),
        "invalid_sources": summary["invalid_sources"],
    }
    diagnostics = active_diagnostics(args)
    if diagnostics:
        out["diagnostic"] = diagnostics
    if "silent_leakage_db" in summary:
        out.update(
            silent_leakage_db=summary["silent_leakage_db"],
            silent_acc=out["grounding_acc"],
            reference_silent_sdr=summary["reference_silent_sdr"],
            silent_gate=summary["silent_gate"],
            sounding_gated_off=summary.get("sounding_gated_off"),
        )
    return {k: utils.finite_or_none(v) if isinstance(v, float) else v for k, v in out.items()}


def _gain(mean: dict):
    if mean.get("sdr") is None or mean.get("sdr_mix") is None:
        return None
    return mean["sdr"] - mean["sdr_mix"]


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


def flat_metrics(summary: dict) -> dict:
    flat = {f"loss_{k}": v for k, v in summary["loss"].items()}
    for k, v in summary.get("mean", {}).items():
        flat[k] = v
    flat.update(summary.get("stats", {}))
    if "grounding" in summary:
        flat["grounding_acc"] = summary["grounding"]["accuracy"]
        flat["grounding_ap"] = summary["grounding"]["ap"]
        flat["solo_grounding_acc"] = summary["solo_grounding_acc"]
    loc = summary.get("localization", {})
    flat.update({k: loc[k] for k in localization.LOC_KEYS if loc.get(k) is not None})
    flat = {k: utils.finite_or_none(v) for k, v in flat.items()}
    return {**flat, "num_mixtures": summary["num_mixtures"], "num_skipped": summary["num_skipped"]}


def format_flat(flat: dict) -> str:
    return " ".join(
        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
        for k, v in flat.items()
        if k != "epoch"
    )
