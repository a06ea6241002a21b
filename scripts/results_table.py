"""Print one table of the headline results (results.json / results_silent.json) of several runs,
with 95% intervals that resample test videos; or, with --compare A B, the paired differences of
two runs evaluated on the same mixtures."""

import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import intervals  # noqa: E402

CI = intervals.CI_SUFFIX


def load(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def with_ci(res, key, spec):
    """'value [low, high]', or the value alone where the run has no interval."""
    value, ci = res.get(key), res.get(key + CI)
    if value is None or not ci:
        return fmt(value, spec)
    return f"{format(value, spec)} [{format(ci[0], spec)}, {format(ci[1], spec)}]"


HEADER = [
    "run",
    "stage",
    "mixtures",
    "videos",
    "SDR",
    "SDR gain",
    "SIR",
    "SAR",
    "SDR mix",
    "grounding acc",
    "grounding AP",
    "pointing",
    "map on silent",
    "silent leak dB",
    "silent SDR",
    "gated off",
    "silent acc",
]


def row_of(run, res, sil):
    if not res:
        return [run, "(not evaluated)"] + ["-"] * (len(HEADER) - 2)
    diagnostic = res.get("diagnostic")
    return [
        run + (f" (diagnostic: {', '.join(diagnostic)})" if diagnostic else ""),
        res["stage"],
        str(res["num_mixtures"]),
        fmt(res.get("num_videos"), "d"),
        with_ci(res, "sdr", ".2f"),
        with_ci(res, "sdr_gain", ".2f"),
        with_ci(res, "sir", ".2f"),
        with_ci(res, "sar", ".2f"),
        fmt(res["sdr_mix"], ".2f"),
        with_ci(res, "grounding_acc", ".3f"),
        with_ci(res, "grounding_ap", ".3f"),
        with_ci(res, "loc_pointing_acc", ".3f"),
        fmt(res.get("loc_silent_energy"), ".3f"),
        fmt(sil.get("silent_leakage_db"), ".1f"),
        fmt(sil.get("sdr"), ".2f"),
        fmt(sil.get("sounding_gated_off"), "d"),
        fmt(sil.get("silent_acc"), ".3f"),
    ]


def print_table(header, rows, markdown):
    if markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for r in [header] + rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


# ----------------------------------------------------------------------------------------------
# --compare
# ----------------------------------------------------------------------------------------------
def _number(value):
    if value in ("", None):
        return None
    if value in ("True", "False"):
        return value == "True"
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def read_rows(path):
    """A per-source or per-object CSV of an evaluation, values parsed back to numbers."""
    if not os.path.isfile(path):
        return []
    with open(path, newline="") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def evaluation_rows(run_dir, split, suffix=""):
    records = read_rows(os.path.join(run_dir, f"eval_{split}{suffix}.csv"))
    objects = read_rows(os.path.join(run_dir, f"eval_{split}_objects{suffix}.csv"))
    if not records and not objects:
        raise SystemExit(
            f"{run_dir} has no eval_{split}{suffix}.csv: evaluate it first "
            f"(scripts/eval_ccol.sh with ID={os.path.basename(run_dir)})"
        )
    return records, objects


def compare(ckpt, run_a, run_b, split, silent, markdown):
    suffix = "_silent" if silent else ""
    res_a = load(os.path.join(ckpt, run_a, f"results{suffix}.json"))
    res_b = load(os.path.join(ckpt, run_b, f"results{suffix}.json"))
    for key in ("data_root", "split_file", "test_clips"):
        if res_a.get(key) != res_b.get(key):
            raise SystemExit(
                f"{run_a} and {run_b} were evaluated on different mixtures: {key} is "
                f"{res_a.get(key)!r} and {res_b.get(key)!r}"
            )
    try:
        diffs = intervals.paired_differences(
            *evaluation_rows(os.path.join(ckpt, run_a), split, suffix),
            *evaluation_rows(os.path.join(ckpt, run_b), split, suffix),
        )
    except intervals.NotPaired as err:
        raise SystemExit(f"cannot pair {run_a} and {run_b}: {err}") from err
    print(
        f"{run_a} - {run_b} on the same {split} mixtures{' (silent-object protocol)' * silent}: "
        f"mean paired difference and its 95% interval (test videos resampled)"
    )
    header = ["metric", run_a, run_b, "A - B", "95% interval", "rows", "videos", "verdict"]
    rows = []
    for name, d in diffs.items():
        ci = d["ci95"]
        if ci is None:
            verdict = "no interval"
        elif ci[0] > 0:
            verdict = "A higher"
        elif ci[1] < 0:
            verdict = "B higher"
        else:
            verdict = "not distinguishable"
        rows.append(
            [
                name,
                fmt(d["a"], ".3f"),
                fmt(d["b"], ".3f"),
                fmt(d["diff"], "+.3f"),
                "-" if ci is None else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]",
                str(d["n"]),
                str(d["videos"]),
                verdict,
            ]
        )
    print_table(header, rows, markdown)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("runs", nargs="*", help="run ids under --ckpt")
    p.add_argument("--ckpt", default="ckpt")
    p.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (for the README)"
    )
    p.add_argument(
        "--compare",
        nargs=2,
        metavar=("A", "B"),
        help="paired differences A - B of two runs evaluated on the same mixtures",
    )
    p.add_argument("--split", default="test", help="which evaluation --compare reads")
    p.add_argument("--silent", action="store_true", help="--compare the silent-object evaluations")
    args = p.parse_args()
    if args.compare:
        compare(args.ckpt, *args.compare, args.split, args.silent, args.markdown)
        return
    if not args.runs:
        p.error("name the runs to tabulate, or --compare A B")
    rows = []
    for run in args.runs:
        run_dir = os.path.join(args.ckpt, run)
        rows.append(
            row_of(
                run,
                load(os.path.join(run_dir, "results.json")),
                load(os.path.join(run_dir, "results_silent.json")),
            )
        )
        # An oracle-mask evaluation of the run (a diagnostic) is shown under it, labelled.
        oracle = load(os.path.join(run_dir, "results_oracle.json"))
        if oracle:
            rows.append(
                row_of(run, oracle, load(os.path.join(run_dir, "results_silent_oracle.json")))
            )
    print_table(HEADER, rows, args.markdown)


if __name__ == "__main__":
    main()
