"""95% confidence intervals that resample test videos, and paired differences between two runs.

The independent unit of a MUSIC evaluation is the video, not the mixture: every test video takes
part in many mixtures (test_sep.csv rows, and `--test_clips` positions of each), so scores of one
video are correlated. Each score belongs to the video it is about (a separated source's SDR to
that source's video, an object's grounding to that object's video, a frame's localization to the
object's video); the bootstrap draws as many videos as there are, with replacement, and takes all
the scores of each drawn video (a cluster bootstrap). The interval is the 2.5-97.5 percentile of
the statistic over the draws. With fewer than two videos there is no interval (None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

import metrics
from models.grounding_net import is_sounding

NUM_DRAWS = 2000
LEVEL = 0.95
SEED = 0  # the draws are fixed: the same scores give the same interval
CI_SUFFIX = "_ci95"


def _percentiles(values: np.ndarray) -> list[float] | None:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return None
    tail = 100 * (1 - LEVEL) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return [float(low), float(high)]


def _draws(num_videos: int, num_draws: int, seed: int) -> np.ndarray:
    """How many times each video is drawn, per bootstrap draw: (num_draws, num_videos) ints."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, num_videos, size=(num_draws, num_videos))
    counts = np.zeros((num_draws, num_videos), np.int64)
    np.add.at(counts, (np.arange(num_draws)[:, None], picks), 1)
    return counts


def mean_ci(
    units: Sequence, values: Sequence[float], num_draws: int = NUM_DRAWS, seed: int = SEED
) -> list[float] | None:
    """Interval of the mean of `values` (K,) when their videos `units` (K,) are resampled.

    Non-finite values are left out first (as the means leave them out). Vectorised: each draw's
    mean is (counts @ per-video sums) / (counts @ per-video sizes).
    """
    values = np.asarray(values, np.float64)
    units = np.asarray(units)
    keep = np.isfinite(values)
    values, units = values[keep], units[keep]
    videos, video_of = np.unique(units, return_inverse=True)
    if len(videos) < 2:
        return None
    sums = np.bincount(video_of, weights=values, minlength=len(videos))
    sizes = np.bincount(video_of, minlength=len(videos)).astype(np.float64)
    counts = _draws(len(videos), num_draws, seed)
    return _percentiles(counts @ sums / (counts @ sizes))


def statistic_ci(
    units: Sequence,
    statistic: Callable[..., float],
    *columns: Sequence,
    num_draws: int = NUM_DRAWS,
    seed: int = SEED,
) -> list[float] | None:
    """Interval of any `statistic(*columns)` (e.g. average precision) under the same resampling:
    each draw takes every row of each drawn video, as often as the video is drawn."""
    units = np.asarray(units)
    columns = [np.asarray(c) for c in columns]
    videos, video_of = np.unique(units, return_inverse=True)
    if len(videos) < 2:
        return None
    rows_of = [np.flatnonzero(video_of == v) for v in range(len(videos))]
    counts = _draws(len(videos), num_draws, seed)
    values = np.empty(num_draws)
    for d in range(num_draws):
        rows = np.concatenate([np.repeat(rows_of[v], c) for v, c in enumerate(counts[d]) if c])
        values[d] = statistic(*(c[rows] for c in columns))
    return _percentiles(values)


# ----------------------------------------------------------------------------------------------
# What an evaluation reports
# ----------------------------------------------------------------------------------------------
def _valid_separation(records: list[dict]) -> list[dict]:
    return [r for r in records if r["valid"]]


def _grounded(objects: list[dict]) -> list[dict]:
    return [o for o in objects if o.get("sounding_prob") is not None and o.get("scored", True)]


def _accuracy(prob, truth) -> float:
    return float(np.mean(is_sounding(np.asarray(prob)) == truth))


def _ap(prob, truth) -> float:
    return metrics.average_precision(prob, truth)


def evaluation_intervals(records: list[dict], objects: list[dict]) -> dict:
    """The `<metric>_ci95` entries of results.json: separation scores of the valid records, each
    under its source's video; grounding and pointing of the objects, under each object's video.

    records: evaluation.separation_records rows; objects: evaluation.object_records rows.
    """
    out = {}
    rows = _valid_separation(records)
    if rows:
        units = [r["source"] for r in rows]
        for key in ("sdr", "sir", "sar", "sdr_mix"):
            out[key + CI_SUFFIX] = mean_ci(units, [r[key] for r in rows])
        out["sdr_gain" + CI_SUFFIX] = mean_ci(units, [r["sdr"] - r["sdr_mix"] for r in rows])
    grounded = _grounded(objects)
    if grounded:
        units = [o["source"] for o in grounded]
        prob = np.array([o["sounding_prob"] for o in grounded])
        truth = np.array([bool(o["sounding"]) for o in grounded])
        out["grounding_acc" + CI_SUFFIX] = statistic_ci(units, _accuracy, prob, truth)
        out["grounding_ap" + CI_SUFFIX] = statistic_ci(units, _ap, prob, truth)
    pointed = [o for o in objects if o.get("pointing") is not None]
    if pointed:
        out["loc_pointing_acc" + CI_SUFFIX] = mean_ci(
            [o["source"] for o in pointed], [o["pointing"] for o in pointed]
        )
    return out


# ----------------------------------------------------------------------------------------------
# Two runs on the same mixtures
# ----------------------------------------------------------------------------------------------
class NotPaired(ValueError):
    """The two evaluations were not made on the same mixtures."""


def _by_key(rows: list[dict], what: str) -> dict:
    """Rows keyed by (mixture, source): slots differ between methods (SoP's two videos are its
    slots 0 and 1, the sounding objects of CCoL's four are 0 and 2), the sources do not."""
    keyed = {}
    for row in rows:
        key = (int(row["index"]), row["source"])
        if key in keyed:
            raise NotPaired(f"{what}: mixture {key[0]} scores {key[1]} twice")
        keyed[key] = row
    return keyed


def _pair(rows_a: list[dict], rows_b: list[dict], what: str) -> list[tuple[dict, dict]]:
    a, b = _by_key(rows_a, what), _by_key(rows_b, what)
    if a.keys() != b.keys():
        raise NotPaired(
            f"{what}: the runs were scored on different mixtures ({len(a)} and {len(b)} rows, "
            f"{len(a.keys() & b.keys())} in common); evaluate both with the same data root, "
            f"test_sep.csv and --test_clips"
        )
    return [(a[key], b[key]) for key in sorted(a)]


def paired_differences(
    records_a: list[dict], objects_a: list[dict], records_b: list[dict], objects_b: list[dict]
) -> dict:
    """Mean of A - B and its interval for each metric, on the rows both runs scored alike.

    A separation row counts where it is valid in both runs. Returns {metric: {'diff': float,
    'ci95': [low, high] or None, 'a': mean of A, 'b': mean of B, 'n': rows, 'videos': n}}.
    Raises NotPaired if the runs were not evaluated on the same mixtures.
    """
    out = {}

    def add(name, units, a, b, statistic=None, columns=()):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        if statistic is None:
            diff = a - b
            keep = np.isfinite(diff)
            value = float(np.mean(diff[keep])) if keep.any() else None
            ci = mean_ci(np.asarray(units)[keep], diff[keep])
            mean_a, mean_b = float(np.mean(a[keep])), float(np.mean(b[keep]))
        else:
            mean_a, mean_b = statistic(a, *columns), statistic(b, *columns)
            value = mean_a - mean_b

            def paired_statistic(pa, pb, *cols):
                return statistic(pa, *cols) - statistic(pb, *cols)

            ci = statistic_ci(units, paired_statistic, a, b, *columns)
        out[name] = {
            "diff": value,
            "ci95": ci,
            "a": mean_a,
            "b": mean_b,
            "n": int(len(a)),
            "videos": len(set(units)),
        }

    pairs = [
        (a, b) for a, b in _pair(records_a, records_b, "separation") if a["valid"] and b["valid"]
    ]
    if pairs:
        units = [a["source"] for a, _ in pairs]
        for key in ("sdr", "sir", "sar"):
            add(key, units, [a[key] for a, _ in pairs], [b[key] for _, b in pairs])
        add(
            "sdr_gain",
            units,
            [a["sdr"] - a["sdr_mix"] for a, _ in pairs],
            [b["sdr"] - b["sdr_mix"] for _, b in pairs],
        )
    object_pairs = _pair(objects_a, objects_b, "objects") if objects_a and objects_b else []
    grounded = [(a, b) for a, b in object_pairs if _grounded([a]) and _grounded([b])]
    if grounded:
        units = [a["source"] for a, _ in grounded]
        truth = np.array([bool(a["sounding"]) for a, _ in grounded])
        prob_a = [a["sounding_prob"] for a, _ in grounded]
        prob_b = [b["sounding_prob"] for _, b in grounded]
        add("grounding_acc", units, prob_a, prob_b, _accuracy, (truth,))
        add("grounding_ap", units, prob_a, prob_b, _ap, (truth,))
    pointed = [
        (a, b)
        for a, b in object_pairs
        if a.get("pointing") is not None and b.get("pointing") is not None
    ]
    if pointed:
        add(
            "loc_pointing_acc",
            [a["source"] for a, _ in pointed],
            [a["pointing"] for a, _ in pointed],
            [b["pointing"] for _, b in pointed],
        )
    return out
