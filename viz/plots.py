"""Loss, validation-metric and per-class SDR plots (matplotlib without pyplot: no global state)."""

from __future__ import annotations

import math
import os

import numpy as np

from dataset.layout import CLASS_TO_ID
from utils import atomic_write
from viz.html import num


def _figure(w: float, h: float, ncols: int = 1):
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(w, h), dpi=100)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, axes


def _save(fig, path: str) -> None:
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))


def _series(rows: list, key: str):
    pts = [
        (r["epoch"], r[key])
        for r in rows
        if isinstance(r.get(key), (int, float)) and math.isfinite(r[key]) and "epoch" in r
    ]
    return [p[0] for p in pts], [p[1] for p in pts]


SEPARATION_LINES = (("sdr", "SDR"), ("sir", "SIR"), ("sar", "SAR"), ("sdr_mix", "mixture SDR"))
GROUNDING_LINES = (
    ("grounding_acc", "grounding accuracy"),
    ("grounding_ap", "grounding AP"),
    ("solo_grounding_acc", "solo grounding accuracy"),
)


def _plot_losses(train: list, val: list, path: str) -> None:
    fig, (ax,) = _figure(5.0, 3.2)
    keys = [k for k in dict.fromkeys(k for r in train for k in r) if k not in ("epoch", "lr")]
    values = []
    for key in keys:
        x, y = _series(train, key)
        if x:
            lw = 2.2 if key == "total" else 1.3
            ax.plot(x, y, marker="o", ms=3, lw=lw, label=f"train {key}")
            values += y
    x, y = _series(val, "loss_total")
    if x:
        ax.plot(x, y, "k--", marker="s", ms=3, lw=2, label="val total")
        values += y
    if values and min(values) > 0 and max(values) / min(values) > 20:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title("losses", fontsize=10)
    if ax.lines:
        ax.legend(fontsize=7, frameon=False, ncol=2)
    _save(fig, path)


def plot_curves(history, out_dir: str) -> list[str]:
    """loss.png and metrics.png of a history into out_dir; returns the names written."""
    if not history:
        return []
    train, val = history.get("train") or [], history.get("val") or []
    written = []
    if train or val:
        _plot_losses(train, val, os.path.join(out_dir, "loss.png"))
        written.append("loss.png")
    panels = [
        (title, [(k, label) for k, label in lines if _series(val, k)[0]])
        for title, lines in (
            ("val separation (dB)", SEPARATION_LINES),
            ("val grounding", GROUNDING_LINES),
        )
    ]
    panels = [(title, lines) for title, lines in panels if lines]
    if panels:  # only what this stage measures (GRD has no separation, SoP no grounding)
        fig, axes = _figure(3.6 * len(panels) - 0.2, 3.2, ncols=len(panels))
        for ax, (title, lines) in zip(axes, panels):
            for key, label in lines:
                ls = "--" if key == "sdr_mix" else "-"
                ax.plot(*_series(val, key), marker="o", ms=3, label=label, ls=ls)
            if title == "val grounding":
                ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=10)
            ax.set_xlabel("epoch")
            ax.legend(fontsize=7, frameon=False)
        _save(fig, os.path.join(out_dir, "metrics.png"))
        written.append("metrics.png")
    return written


def plot_history(history, run_dir) -> None:
    """<run_dir>/loss.png (train loss terms, val total) and <run_dir>/metrics.png (val metrics)."""
    plot_curves(history, run_dir)


def plot_per_class(per_class: dict, path: str) -> bool:
    """Horizontal bars of each class's SDR beside its mixture SDR; False when there is no class."""
    rows = [(c, v) for c, v in per_class.items() if isinstance(v, dict)]
    if not rows:
        return False
    rows.sort(key=lambda cv: (CLASS_TO_ID.get(cv[0], len(CLASS_TO_ID)), cv[0]))
    names = [c for c, _ in rows]
    sdr = np.array([num(v.get("sdr")) for _, v in rows])
    mix = np.array([num(v.get("sdr_mix")) for _, v in rows])
    fig, (ax,) = _figure(4.8, 0.32 * len(rows) + 1.1)
    y = np.arange(len(rows))
    ax.barh(y - 0.2, np.nan_to_num(sdr), height=0.4, color="#4c6ef5", label="SDR")
    if np.isfinite(mix).any():
        ax.barh(y + 0.2, np.nan_to_num(mix), height=0.4, color="#adb5bd", label="mixture SDR")
    for yi, v, (_, stats) in zip(y, sdr, rows):
        if math.isfinite(v):
            text = f" {v:.1f} dB (n={stats.get('count', '?')})"
        else:
            text = " no valid source"
        ax.text(max(v, 0) if math.isfinite(v) else 0, yi - 0.2, text, va="center", fontsize=7)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("dB")
    ax.set_title("per-class SDR (sounding sources)", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    _save(fig, path)
    return True
