"""Learning curves of the GRD -> COL -> CCoL chain: test SDR gain and grounding accuracy against
the training mixtures seen, from runs trained with `--test_every N` (one chain per seed).

    python scripts/learning_curve.py --ckpt ckpt_seed1 ckpt_seed2 ckpt_seed3 --out curve.png

Each chain's stages are laid end to end: COL's x axis starts where GRD's training ended, CCoL's
where COL's ended. With several chains the plot shows their mean and the min-max band; the
numbers are also printed and written as JSON beside the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import utils  # noqa: E402

STAGES = (("grd", "MUSIC_GRD"), ("col", "MUSIC_COL"), ("ccol", "MUSIC_CCoL"))
METRICS = (
    ("sdr_gain", "test SDR - SDR of the mixture (dB)"),
    ("grounding_acc", "test mixture-grounding accuracy"),
)


def chain_points(ckpt: str, ids: dict[str, str]) -> list[dict]:
    """[{stage, epoch, mixtures, sdr_gain, grounding_acc}] of one chain, in training order."""
    points, offset = [], 0
    for stage, _ in STAGES:
        path = os.path.join(ckpt, ids[stage], "history.json")
        if not os.path.isfile(path):
            raise SystemExit(f"{path} not found: train the chain first (with --test_every)")
        with open(path) as f:
            tests = json.load(f).get("test", [])
        if not tests:
            raise SystemExit(f"{path} holds no test scores: train with --test_every N")
        for entry in tests:
            gain = (
                entry["sdr"] - entry["sdr_mix"]
                if entry.get("sdr") is not None and entry.get("sdr_mix") is not None
                else None
            )
            points.append(
                {
                    "stage": stage,
                    "epoch": entry["epoch"],
                    "mixtures": offset + entry["mixtures_seen"],
                    "sdr_gain": gain,
                    "grounding_acc": entry.get("grounding_acc"),
                }
            )
        offset += tests[-1]["mixtures_seen"]
    return points


def summarize(chains: list[list[dict]]) -> list[dict]:
    """Mean, min and max over chains at each point (chains share a schedule, so points align)."""
    lengths = {len(c) for c in chains}
    if len(lengths) != 1:
        raise SystemExit(f"the chains have different schedules ({sorted(lengths)} points)")
    rows = []
    for points in zip(*chains):
        row = {
            "stage": points[0]["stage"],
            "epoch": points[0]["epoch"],
            "mixtures": points[0]["mixtures"],
        }
        for key, _ in METRICS:
            values = [p[key] for p in points if p[key] is not None]
            if values:
                row[key] = {
                    "mean": float(np.mean(values)),
                    "min": float(np.min(values)),
                    "max": float(np.max(values)),
                    "n": len(values),
                }
        rows.append(row)
    return rows


def plot(rows: list[dict], out: str, num_chains: int) -> None:
    fig, axes = plt.subplots(1, len(METRICS), figsize=(11, 4), constrained_layout=True)
    colours = {"grd": "tab:gray", "col": "tab:blue", "ccol": "tab:red"}
    for ax, (key, label) in zip(axes, METRICS):
        for stage, _ in STAGES:
            stage_rows = [r for r in rows if r["stage"] == stage and key in r]
            if not stage_rows:
                continue
            x = [r["mixtures"] for r in stage_rows]
            mean = [r[key]["mean"] for r in stage_rows]
            ax.plot(x, mean, "o-", color=colours[stage], label=stage.upper(), markersize=3)
            if num_chains > 1:
                ax.fill_between(
                    x,
                    [r[key]["min"] for r in stage_rows],
                    [r[key]["max"] for r in stage_rows],
                    color=colours[stage],
                    alpha=0.2,
                )
        ax.set_xlabel("training mixtures seen (all stages)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    title = f"mean of {num_chains} seeds, band = min-max" if num_chains > 1 else "one seed"
    fig.suptitle(f"Learning curves on the test mixtures ({title})")
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ckpt",
        nargs="+",
        required=True,
        help="one folder of runs per chain (seed), each holding the three stages",
    )
    parser.add_argument(
        "--ids",
        nargs=3,
        default=[i for _, i in STAGES],
        metavar=("GRD", "COL", "CCOL"),
        help="run ids of the stages (default: MUSIC_GRD MUSIC_COL MUSIC_CCoL)",
    )
    parser.add_argument(
        "--out", default="learning_curve.png", help="figure path (default: %(default)s)"
    )
    opts = parser.parse_args(argv)
    ids = dict(zip([s for s, _ in STAGES], opts.ids))
    rows = summarize([chain_points(ckpt, ids) for ckpt in opts.ckpt])
    os.makedirs(os.path.dirname(os.path.abspath(opts.out)), exist_ok=True)
    plot(rows, opts.out, len(opts.ckpt))
    utils.atomic_write_json(rows, os.path.splitext(opts.out)[0] + ".json")
    for r in rows:
        cells = "  ".join(
            f"{key} {r[key]['mean']:.3f} [{r[key]['min']:.3f}, {r[key]['max']:.3f}]"
            for key, _ in METRICS
            if key in r
        )
        print(f"{r['stage']:>4} epoch {r['epoch']:>2}  {r['mixtures']:>6} mixtures  {cells}")
    print(f"wrote {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
