"""Print one table of the headline results (results.json / results_silent.json) of several runs."""

import argparse
import json
import os


def load(path):
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


def fmt(value, spec):
    return "-" if value is None else format(value, spec)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("runs", nargs="+", help="run ids under --ckpt")
    p.add_argument("--ckpt", default="ckpt")
    p.add_argument(
        "--markdown", action="store_true", help="print a Markdown table (for the README)"
    )
    args = p.parse_args()
    header = [
        "run",
        "stage",
        "mixtures",
        "SDR",
        "SIR",
        "SAR",
        "SDR mix",
        "SDR median",
        "grounding acc",
        "pointing",
        "map on silent",
        "silent leak dB",
        "silent SDR",
        "gated off",
        "silent acc",
    ]
    rows = []
    for run in args.runs:
        res = load(os.path.join(args.ckpt, run, "results.json"))
        sil = load(os.path.join(args.ckpt, run, "results_silent.json"))
        if not res:
            rows.append([run, "(not evaluated)"] + ["-"] * (len(header) - 2))
            continue
        rows.append(
            [
                run,
                res["stage"],
                str(res["num_mixtures"]),
                fmt(res["sdr"], ".2f"),
                fmt(res["sir"], ".2f"),
                fmt(res["sar"], ".2f"),
                fmt(res["sdr_mix"], ".2f"),
                fmt(res["sdr_median"], ".2f"),
                fmt(res["grounding_acc"], ".3f"),
                fmt(res.get("loc_pointing_acc"), ".3f"),
                fmt(res.get("loc_silent_energy"), ".3f"),
                fmt(sil.get("silent_leakage_db"), ".1f"),
                fmt(sil.get("sdr"), ".2f"),
                fmt(sil.get("sounding_gated_off"), "d"),
                fmt(sil.get("silent_acc"), ".3f"),
            ]
        )
    if args.markdown:
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in rows:
            print("| " + " | ".join(r) + " |")
        return
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    for r in [header] + rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))


if __name__ == "__main__":
    main()
