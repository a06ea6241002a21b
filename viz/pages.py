"""Run pages (summary, curves, one card per sample), swapped in whole, and the index of all runs."""

from __future__ import annotations

import datetime
import json
import os
import shutil
import tempfile
import time
import urllib.parse

from arguments import active_diagnostics
from localization import LOC_KEYS
from utils import atomic_write
from viz.cards import write_sample_card
from viz.html import esc, fmt, gradient, num, render_page, url
from viz.media import DB_RANGE
from viz.overlay import DETECTION_RGB, MAP_CMAP, SILENT_RGB, SOUNDING_RGB, map_colors
from viz.plots import plot_curves, plot_per_class

PAGE_DIR = "visualization"
STALE_SECONDS = 600  # an unfinished page folder older than this is left over from a crash


def _ci(interval, digits: int = 2) -> str:
    """A 95% interval under its value, or nothing where there is none."""
    if not interval:
        return ""
    return (
        f'<div class="note">95% CI [{fmt(interval[0], digits)}, {fmt(interval[1], digits)}]</div>'
    )


def _summary_table(summary: dict) -> str:
    rows = []
    ci = summary.get("intervals") or {}

    def group(name):
        rows.append(f'<tr class="group"><td colspan="3">{esc(name)}</td></tr>')

    def row(label, a, b="", note=""):
        note_html = f'<div class="note">{note}</div>' if note else ""
        rows.append(f"<tr><td>{label}{note_html}</td><td>{a}</td><td>{b}</td></tr>")

    mean, median = summary.get("mean") or {}, summary.get("median") or {}
    if mean or median:
        n_valid, n_invalid = summary.get("num_valid"), summary.get("num_invalid")
        group(
            f"separation (dB), sounding sources: {n_valid if n_valid is not None else '?'} valid"
            + (f", {n_invalid} invalid (excluded)" if n_invalid else "")
        )
        rows.append('<tr><td></td><td class="note">mean</td><td class="note">median</td></tr>')
        for key, label in (
            ("sdr", "SDR"),
            ("sir", "SIR"),
            ("sar", "SAR"),
            ("sdr_mix", "mixture SDR (input)"),
        ):
            if key in mean or key in median:
                row(label, fmt(mean.get(key)) + _ci(ci.get(f"{key}_ci95")), fmt(median.get(key)))
        if "sdr" in mean and "sdr_mix" in mean:
            row(
                "SDR improvement",
                fmt(num(mean["sdr"]) - num(mean["sdr_mix"])) + _ci(ci.get("sdr_gain_ci95")),
                fmt(num(median.get("sdr")) - num(median.get("sdr_mix"))) if median else "",
            )
    ground = summary.get("grounding") or {}
    if ground or "solo_grounding_acc" in summary:
        group("sounding-object grounding (p > 0.5 = sounding)")
        for key, label in (
            ("accuracy", "accuracy"),
            ("balanced_accuracy", "balanced accuracy"),
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "F1"),
            ("ap", "average precision"),
        ):
            if key in ground:
                interval = {"accuracy": "grounding_acc_ci95", "ap": "grounding_ap_ci95"}.get(key)
                row(label, fmt(ground[key], 3) + _ci(ci.get(interval), 3))
        if "num_positive" in ground:
            row(
                "objects",
                f"{ground.get('num_positive')} sounding / {ground.get('num_negative')} silent",
            )
        if "solo_grounding_acc" in summary:
            row(
                "solo grounding accuracy",
                fmt(summary["solo_grounding_acc"], 3),
                note="one solo sound against its own and another object",
            )
    loc = {k: v for k, v in (summary.get("localization") or {}).items() if v is not None}
    if any(key in loc for key in LOC_KEYS):
        group(f"localization of the sounding maps ({loc.get('loc_frames', '?')} frames)")
        for key, label, note in (
            ("loc_pointing_acc", "pointing accuracy", "the map's peak lies in a sounding object"),
            ("loc_ciou", "cIoU ≥ 0.5", "share of frames; map cut at half its range vs boxes"),
            ("loc_auc", "AUC of cIoU", "success rate over cIoU thresholds 0 to 1"),
            ("loc_silent_energy", "map on silent objects", "share of the map; lower is better"),
        ):
            if key in loc:
                row(label, fmt(loc[key], 3) + _ci(ci.get(f"{key}_ci95"), 3), note=note)
    if "silent_leakage_db" in summary or "reference_silent_sdr" in summary:
        gate = summary.get("silent_gate", "grounding")
        group(
            "silent-object protocol (masks gated by grounding)"
            if gate == "grounding"
            else "silent-object protocol (masks as separated: no grounding gate)"
        )
        if "silent_leakage_db" in summary:
            row(
                "silent-slot leakage",
                fmt(summary["silent_leakage_db"], 2, " dB"),
                note="energy of silent objects' estimates re the mixture; "
                "lower is better (floor −100 dB)",
            )
        if "reference_silent_sdr" in summary:
            row(
                "reference protocol SDR",
                fmt(summary["reference_silent_sdr"], 2, " dB"),
                note="main_silent.py's number: 1e-6 added to all 4 slots; not a separation SDR, "
                "not comparable to the SDR above",
            )
    if ci:
        videos = summary.get("num_videos")
        rows.append(
            '<tr><td colspan="3" class="note">95% intervals resample the '
            f"{videos if videos is not None else ''} videos scored (intervals.py)</td></tr>"
        )
    if summary.get("invalid_sources"):
        row(
            "digitally silent sources (not scored)",
            esc(", ".join(summary["invalid_sources"])),
        )
    loss = summary.get("loss") or {}
    if loss:
        group("loss")
        for key, value in loss.items():
            row(esc(key), fmt(value, 4))
    if not rows:
        return '<p class="small">no metrics</p>'
    return f'<table class="metrics">{"".join(rows)}</table>'


def _swatch(rgb) -> str:
    return f'<span style="color:rgb{tuple(rgb)};font-weight:700">■</span>'


def _remove_stale(run_dir: str) -> None:
    """Folders left by an interrupted page write (old pages always, unfinished ones when stale)."""
    now = time.time()
    for name in os.listdir(run_dir):
        full = os.path.join(run_dir, name)
        if name.startswith(f".{PAGE_DIR}-old-") or (
            name.startswith(f".{PAGE_DIR}-new-") and now - os.path.getmtime(full) > STALE_SECONDS
        ):
            shutil.rmtree(full, ignore_errors=True)


def _swap_in(tmp: str, final: str) -> None:
    """Replace folder `final` by `tmp`; a reader sees the old page or the new one, never a mix."""
    old = None
    if os.path.exists(final):
        old = f"{os.path.dirname(final)}/.{PAGE_DIR}-old-{os.getpid()}-{time.time_ns()}"
        os.rename(final, old)
    os.rename(tmp, final)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _eval_pages(root: str) -> list[str]:
    """Names of the evaluation pages (sub-folders with an index.html) of a visualization folder."""
    if not os.path.isdir(root):
        return []
    return sorted(
        n
        for n in os.listdir(root)
        if not n.startswith(".")
        and n != "media"
        and os.path.isfile(os.path.join(root, n, "index.html"))
    )


def write_run_page(
    args, summary, vis_samples, history, title, checkpoint=None, page: str = ""
) -> str:
    """Write a page of a run with its media; returns the page's path.

    page "" is the training run's validation page, <run_dir>/visualization/index.html; an evaluation
    names its own page ("test", "test_silent"), <run_dir>/visualization/<page>/index.html, so that
    no page overwrites another. Each page is written into a fresh folder and swapped in whole.
    """
    run_dir = args.run_dir
    root = os.path.join(run_dir, PAGE_DIR)
    parent = root if page else run_dir
    os.makedirs(parent, exist_ok=True)
    _remove_stale(parent)
    final = os.path.join(parent, page) if page else root
    up = "../../" if page else "../"  # from the page's folder back to run_dir
    tmp = tempfile.mkdtemp(prefix=f".{PAGE_DIR}-new-", dir=parent)
    try:
        os.chmod(tmp, 0o755)
        media = os.path.join(tmp, "media")
        os.makedirs(media)
        summary = summary or {}
        cards = [write_sample_card(s, i, media, args) for i, s in enumerate(vis_samples or [])]

        plots = []
        if plot_per_class(summary.get("per_class") or {}, os.path.join(tmp, "per_class_sdr.png")):
            plots.append(("per_class_sdr.png", "per-class SDR"))
        plots += [(name, name[:-4]) for name in plot_curves(history, tmp)]

        run_id, stage = getattr(args, "id", os.path.basename(run_dir)), getattr(args, "stage", "?")
        links = []
        if os.path.isfile(os.path.join(run_dir, "..", "index.html")):
            links.append(f'<a href="{up}../index.html">all runs</a>')
        if page and os.path.isfile(os.path.join(root, "index.html")):
            links.append('<a href="../index.html">validation page</a>')
        for other in _eval_pages(root):
            if other != page:
                links.append(
                    f'<a href="{url(("../" if page else "") + other + "/index.html")}">'
                    f"{esc(other.replace('_', ' '))} evaluation</a>"
                )
        for name in (
            "results.json",
            "results_silent.json",
            "summary.json",
            "summary_silent.json",
            "history.json",
            "args.json",
            "eval_test.csv",
            "eval_val.csv",
            "eval_test_silent.csv",
            "eval_test_objects.csv",
        ):
            if os.path.isfile(os.path.join(run_dir, name)):
                links.append(f'<a href="{url(up + name)}">{esc(name)}</a>')
        meta = [
            f"<b>stage</b> {esc(stage)}",
            f"<b>written</b> {datetime.datetime.now():%Y-%m-%d %H:%M:%S}",
        ]
        if checkpoint:
            meta.append(f"<b>checkpoint</b> {esc(checkpoint)}")
        if getattr(args, "data_root", None):
            meta.append(f"<b>data</b> {esc(args.data_root)}")
        meta.append(
            f"<b>silent-object protocol</b> "
            f"{'on' if getattr(args, 'eval_silent', False) else 'off'}"
        )
        diagnostics = active_diagnostics(args)
        head = (
            f'<h1>{esc(run_id)}</h1><div class="sub">{esc(title)}</div>'
            + (
                f'<div class="meta" style="color:#b3261e"><b>DIAGNOSTIC</b> '
                f"{esc(', '.join(diagnostics))}: a link of the cycle is replaced by the truth; "
                "these are not the method's numbers</div>"
                if diagnostics
                else ""
            )
            + f'<div class="meta">{" &nbsp;·&nbsp; ".join(meta)}</div>'
            + (f'<div class="meta">{" &nbsp;·&nbsp; ".join(links)}</div>' if links else "")
        )

        freq = "log frequency" if getattr(args, "log_freq", 1) else "linear frequency"
        has_masks = any(s["pred_mask"] is not None for s in vis_samples or [])
        legend = (
            f'<div class="legend">spectrograms ({freq}, low at the bottom'
            f"{'; separated and oracle: |mixture| × mask' if has_masks else ''}): "
            f"−{DB_RANGE:.0f} dB"
            f'<span class="bar" style="background:{gradient("magma")}"></span>'
            "0 dB re the mixture's peak"
        )
        if has_masks:
            legend += (
                f' &nbsp;&nbsp; masks: 0<span class="bar" style="background:{gradient("viridis")}">'
                f"</span>1 (true ratio masks clipped at 1)"
            )
        legend += (
            ' &nbsp;&nbsp; frames: <span style="color:#c9a400;font-weight:700">■</span> '
            "detection box used for the crop"
        )
        maps = [s["map"] for s in vis_samples or [] if s.get("map") is not None]
        if maps:
            low, high = map_colors(maps[0]["kind"])
            legend += (
                f'<br>{esc(maps[0]["kind"])} maps: {esc(low)}<span class="bar" '
                f'style="background:{gradient(MAP_CMAP)}"></span>{esc(high)} &nbsp;&nbsp; '
                f"{_swatch(SOUNDING_RGB)} true sounding object &nbsp; {_swatch(SILENT_RGB)} true "
                f"silent object &nbsp; {_swatch(DETECTION_RGB)} detection box"
            )
        legend += "</div>"
        figures = "".join(
            f'<div class="panel plots"><img src="{n}" alt="{a}"></div>' for n, a in plots
        )
        body = [
            f'<h2>Summary</h2><div class="row"><div class="panel">{_summary_table(summary)}</div>'
            f'<div class="column">{figures}</div></div>'
        ]
        body.append(f'<h2>Samples ({len(cards)})</h2>{legend}<div style="height:10px"></div>')
        body += cards or ['<p class="small">no samples collected</p>']
        html = render_page(f"{run_id}: {title}", head, "\n".join(body))
        atomic_write(os.path.join(tmp, "index.html"), lambda f: f.write(html), text=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not page:  # the evaluation pages live inside the validation page's folder: keep them
        for other in _eval_pages(root):
            os.rename(os.path.join(root, other), os.path.join(tmp, other))
    _swap_in(tmp, final)
    return os.path.join(final, "index.html")


# ----------------------------------------------------------------------------------------------
# Index of all runs
# ----------------------------------------------------------------------------------------------
def _load_json(path: str):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_runs_index(ckpt_root) -> str:
    """<ckpt_root>/index.html: one row per run (subfolder with args.json), newest first."""
    os.makedirs(ckpt_root, exist_ok=True)
    runs = []
    for name in sorted(os.listdir(ckpt_root)):
        run_dir = os.path.join(ckpt_root, name)
        args = _load_json(os.path.join(run_dir, "args.json"))
        if not isinstance(args, dict):
            continue
        files = [
            os.path.join(run_dir, f)
            for f in (
                "args.json",
                "history.json",
                "results.json",
                "results_silent.json",
                "checkpoint_latest.pt",
            )
        ]
        mtime = max(os.path.getmtime(f) for f in files if os.path.exists(f))
        history = _load_json(os.path.join(run_dir, "history.json")) or {}
        results = _load_json(os.path.join(run_dir, "results.json"))
        silent = _load_json(os.path.join(run_dir, "results_silent.json"))
        train = history.get("train") or []
        epochs = max((r.get("epoch", 0) for r in train), default=None)
        if isinstance(results, dict):
            src, vals = f"{results.get('split', 'test')} eval", results
        elif history.get("val"):
            last = history["val"][-1]
            src, vals = f"val, epoch {last.get('epoch', '?')}", last
        else:
            src, vals = "—", {}
        silent = silent if isinstance(silent, dict) else {}
        root = os.path.join(run_dir, PAGE_DIR)
        pages = (
            [("validation", "index.html")]
            if os.path.isfile(os.path.join(root, "index.html"))
            else []
        )
        pages += [(sub.replace("_", " "), f"{sub}/index.html") for sub in _eval_pages(root)]
        runs.append((mtime, name, args, epochs, src, vals, silent, pages))
    runs.sort(key=lambda r: -r[0])

    cols = [
        ("sdr", "SDR"),
        ("sir", "SIR"),
        ("sar", "SAR"),
        ("sdr_mix", "mix SDR"),
        ("grounding_acc", "grounding acc"),
        ("grounding_ap", "grounding AP"),
        ("solo_grounding_acc", "solo acc"),
        ("loc_pointing_acc", "pointing"),
        ("loc_ciou", "cIoU@0.5"),
        ("loc_auc", "loc AUC"),
        ("loc_silent_energy", "map on silent"),
    ]
    head = (
        '<tr><th class="l">run</th><th class="l">stage</th><th class="l">updated</th>'
        "<th>epochs</th>"
        '<th class="l">metrics from</th>'
        + "".join(f"<th>{esc(c[1])}</th>" for c in cols)
        + '<th>silent leakage</th><th>silent acc</th><th class="l">pages</th></tr>'
    )
    rows = []
    for mtime, name, args, epochs, src, vals, silent, pages in runs:
        links = [
            (label, f"{urllib.parse.quote(name)}/{PAGE_DIR}/{urllib.parse.quote(rel)}")
            for label, rel in pages
        ]
        digits = {"grounding_acc": 3, "grounding_ap": 3, "solo_grounding_acc": 3}
        digits.update(dict.fromkeys(LOC_KEYS, 3))
        anchor = f'<a href="{esc(links[0][1])}">{esc(name)}</a>' if links else esc(name)
        if vals.get("diagnostic"):
            anchor += f'<div class="note">diagnostic: {esc(", ".join(vals["diagnostic"]))}</div>'

        cells = [
            f'<td class="l">{anchor}</td>',
            f'<td class="l">{esc(args.get("stage", "?"))}</td>',
            f'<td class="l">{datetime.datetime.fromtimestamp(mtime):%Y-%m-%d %H:%M}</td>',
            f"<td>{epochs if epochs is not None else '—'}</td>",
            f'<td class="l">{esc(src)}</td>',
        ]
        cells += [
            f"<td>{fmt(vals.get(k), digits.get(k, 2))}"
            f"{_ci(vals.get(k + '_ci95'), digits.get(k, 2))}</td>"
            for k, _ in cols
        ]
        cells += [
            f"<td>{fmt(silent.get('silent_leakage_db'), 1, ' dB')}</td>",
            f"<td>{fmt(silent.get('silent_acc'), 3)}</td>",
            '<td class="l">'
            + (
                " · ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in links)
                or "—"
            )
            + "</td>",
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    table = (
        f'<div class="panel" style="overflow-x:auto"><table class="runs"><thead>{head}</thead>'
        f"<tbody>{''.join(rows) or '<tr><td class=l colspan=15>no runs yet</td></tr>'}</tbody>"
        "</table></div>"
        '<p class="small">SDR/SIR/SAR in dB over sounding sources. Metrics come from the run\'s '
        "last evaluation (results.json) when it has one, with 95% intervals that resample its "
        "test videos, else from its last validation epoch. "
        "Silent columns: results_silent.json (energy leaked into silent objects re the mixture; "
        "grounding accuracy).</p>"
    )
    head_html = (
        f'<h1>Runs</h1><div class="sub">{esc(os.path.abspath(ckpt_root))}</div>'
        f'<div class="meta"><b>written</b> {datetime.datetime.now():%Y-%m-%d %H:%M:%S} · '
        f"{len(runs)} run{'s' if len(runs) != 1 else ''}</div>"
    )
    path = os.path.join(ckpt_root, "index.html")
    html = render_page("runs", head_html, table)
    atomic_write(path, lambda f: f.write(html), text=True)
    return path
