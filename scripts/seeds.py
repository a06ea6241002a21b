"""The demo on several seeds: runs `scripts/demo.sh` once per seed (each its own embedded data and
training, under ckpt_seed<N>/), then prints, per run and metric, each seed's value with its 95%
interval (test videos resampled), and the mean, standard deviation and range over the seeds.

    python scripts/seeds.py --seeds 1234 2 3            run what is missing, then the table
    python scripts/seeds.py --seeds 1234 2 3 --no-run   the table of runs already made
    python scripts/seeds.py ... --markdown              the table as Markdown (the README's)

After the table, the paired comparisons of the object methods (CCoL - COL, CCoL - CoSep,
COL - CoSep): per seed, the mean difference on the same test mixtures and its interval. SoP is
not among them: it mixes the first two videos of a test row, the object methods the first and
third (the second is their silent object), so it is scored on other mixtures.

A seed whose runs are all evaluated is not run again (demo.sh would reuse them anyway). Seeds run
one after another: each demo already keeps both cores busy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
sys.path.insert(0, REPO)

from results_table import evaluation_rows  # noqa: E402

import intervals  # noqa: E402

RUNS = ("MUSIC_SoP", "MUSIC_CoSep", "MUSIC_COL", "MUSIC_CCoL")
PAIRS = (
    ("MUSIC_CCoL", "MUSIC_COL"),
    ("MUSIC_CCoL", "MUSIC_CoSep"),
    ("MUSIC_COL", "MUSIC_CoSep"),
)
METRICS = (
    ("sdr_gain", "SDR − mixture (dB)", ".2f"),
    ("sdr", "SDR (dB)", ".2f"),
    ("sir", "SIR (dB)", ".2f"),
    ("sar", "SAR (dB)", ".2f"),
    ("grounding_acc", "grounding acc", ".3f"),
    ("grounding_ap", "grounding AP", ".3f"),
    ("loc_pointing_acc", "pointing", ".3f"),
)


def ckpt_of(prefix: str, seed: int) -> str:
    return f"{prefix}{seed}"


def results_of(ckpt: str, run: str) -> dict | None:
    path = os.path.join(REPO, ckpt, run, "results.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_seed(seed: int, ckpt: str) -> float:
    """One demo; returns its wall time in seconds. Its output goes to <ckpt>/demo.log."""
    os.makedirs(os.path.join(REPO, ckpt), exist_ok=True)
    log = os.path.join(REPO, ckpt, "demo.log")
    print(f"seed {seed}: bash scripts/demo.sh, CKPT={ckpt}, log {log}", flush=True)
    tic = time.time()
    with open(log, "a") as out:
        proc = subprocess.run(
            ["bash", "scripts/demo.sh"],
            cwd=REPO,
            env={**os.environ, "SEED": str(seed), "CKPT": ckpt},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    if proc.returncode != 0:
        raise SystemExit(f"seed {seed}: demo.sh failed ({proc.returncode}), see {log}")
    return time.time() - tic


def cell(res: dict | None, key: str, spec: str) -> str:
    if not res or res.get(key) is None:
        return "–"
    ci = res.get(key + "_ci95")
    text = format(res[key], spec)
    return f"{text} [{format(ci[0], spec)}, {format(ci[1], spec)}]" if ci else text


def spread(values: list[float], spec: str) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    mean = np.mean(values)
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return (
        f"{format(mean, spec)} ± {format(sd, spec)} "
        f"[{format(min(values), spec)}, {format(max(values), spec)}]"
    )


def table(seeds: list[int], prefix: str, markdown: bool) -> None:
    header = ["run", "metric", *(f"seed {s}" for s in seeds), "mean ± sd [min, max]"]
    rows = []
    for run in RUNS:
        per_seed = [results_of(ckpt_of(prefix, s), run) for s in seeds]
        for key, label, spec in METRICS:
            if all(r is None or r.get(key) is None for r in per_seed):
                continue
            values = [None if r is None else r.get(key) for r in per_seed]
            rows.append([run, label, *(cell(r, key, spec) for r in per_seed), spread(values, spec)])
    first = next((r for s in seeds for r in [results_of(ckpt_of(prefix, s), RUNS[-1])] if r), {})
    print(
        f"{len(seeds)} seeds; each value with its 95% interval over the test videos; test: "
        f"{first.get('num_mixtures', '?')} mixture-clips of {first.get('num_videos', '?')} "
        f"videos per seed"
    )
    print_rows(header, rows, markdown)


def paired(ckpt: str, run_a: str, run_b: str) -> dict:
    """{metric: paired difference} of two runs of one seed, {} where either is not evaluated."""
    if not (results_of(ckpt, run_a) and results_of(ckpt, run_b)):
        return {}
    rows_a = evaluation_rows(os.path.join(REPO, ckpt, run_a), "test")
    rows_b = evaluation_rows(os.path.join(REPO, ckpt, run_b), "test")
    return intervals.paired_differences(*rows_a, *rows_b)


def paired_table(seeds: list[int], prefix: str, markdown: bool) -> None:
    header = ["A - B", "metric", *(f"seed {s}" for s in seeds), "seeds where A > B / A < B"]
    rows = []
    for run_a, run_b in PAIRS:
        per_seed = [paired(ckpt_of(prefix, s), run_a, run_b) for s in seeds]
        for key, label, spec in METRICS:
            if key == "sdr_gain":  # on the same mixtures the gain's difference is the SDR's
                continue
            diffs = [d.get(key) for d in per_seed]
            if all(d is None for d in diffs):
                continue
            cells, wins, losses = [], 0, 0
            for d in diffs:
                if d is None or d["diff"] is None:
                    cells.append("–")
                    continue
                ci = d["ci95"]
                text = format(d["diff"], "+" + spec)
                if ci:
                    text += f" [{format(ci[0], '+' + spec)}, {format(ci[1], '+' + spec)}]"
                    wins += ci[0] > 0
                    losses += ci[1] < 0
                cells.append(text)
            name = f"{run_a.removeprefix('MUSIC_')} - {run_b.removeprefix('MUSIC_')}"
            rows.append([name, label, *cells, f"{wins} / {losses}"])
    if not rows:
        return
    print(
        "\npaired differences on the same test mixtures (95% interval, test videos resampled); "
        "the last column counts the seeds whose interval is above / below zero"
    )
    print_rows(header, rows, markdown)


def print_rows(header: list[str], rows: list[list[str]], markdown: bool) -> None:
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(header)]
    for r in [header] + rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[1234, 2, 3])
    p.add_argument("--ckpt-prefix", default="ckpt_seed", help="runs of seed N go to <prefix>N/")
    p.add_argument("--no-run", action="store_true", help="only tabulate existing runs")
    p.add_argument("--markdown", action="store_true")
    args = p.parse_args(argv)
    if not args.no_run:
        for seed in args.seeds:
            ckpt = ckpt_of(args.ckpt_prefix, seed)
            if all(results_of(ckpt, run) for run in RUNS):
                print(f"seed {seed}: already evaluated in {ckpt}/", flush=True)
                continue
            print(f"seed {seed}: finished in {run_seed(seed, ckpt):.0f} s", flush=True)
    table(args.seeds, args.ckpt_prefix, args.markdown)
    paired_table(args.seeds, args.ckpt_prefix, args.markdown)


if __name__ == "__main__":
    sys.exit(main())
