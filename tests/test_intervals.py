"""Intervals that resample videos, paired differences of two runs, evaluation clip positions and
the diagnostic switches of the cycle."""

import numpy as np
import pytest
import torch

import intervals
from dataset.music import clip_centre
from tests.test_stages import tiny_stage


def _rows(num_videos, per_video, seed=0, shift=0.0):
    rng = np.random.default_rng(seed)
    units = np.repeat([f"v{i}" for i in range(num_videos)], per_video)
    video_effect = rng.normal(0, 2, num_videos)
    values = np.repeat(video_effect, per_video) + rng.normal(0, 0.5, units.size) + shift
    return units, values


def test_mean_interval_holds_the_mean_and_is_repeatable():
    units, values = _rows(16, 10)
    low, high = intervals.mean_ci(units, values)
    assert low < values.mean() < high
    assert intervals.mean_ci(units, values) == [low, high]  # fixed draws


def test_interval_resamples_videos_not_rows():
    """Repeating every row of every video 10 times adds no information about other videos: an
    interval over rows would shrink by about sqrt(10); the one over videos does not move."""
    units, values = _rows(12, 4)
    once = intervals.mean_ci(units, values)
    tenfold = intervals.mean_ci(np.repeat(units, 10), np.repeat(values, 10))
    np.testing.assert_allclose(once, tenfold)
    # and it is wider than a row-level bootstrap of the same values would be
    rng = np.random.default_rng(0)
    naive = [np.mean(rng.choice(values, values.size)) for _ in range(2000)]
    assert once[1] - once[0] > np.percentile(naive, 97.5) - np.percentile(naive, 2.5)


def test_more_videos_narrow_the_interval_and_one_video_has_none():
    small = intervals.mean_ci(*_rows(6, 5))
    large = intervals.mean_ci(*_rows(60, 5))
    assert large[1] - large[0] < small[1] - small[0]
    assert intervals.mean_ci(["a"] * 5, np.arange(5.0)) is None


def test_non_finite_values_are_left_out():
    units, values = _rows(8, 3)
    with_nan = np.append(values, np.nan)
    assert intervals.mean_ci(np.append(units, "v0"), with_nan) == intervals.mean_ci(units, values)


def test_statistic_interval_of_average_precision():
    rng = np.random.default_rng(1)
    units = np.repeat(np.arange(20), 8)
    truth = rng.random(units.size) < 0.5
    prob = np.clip(truth * 0.3 + rng.random(units.size) * 0.7, 0, 1)
    low, high = intervals.statistic_ci(units, intervals._ap, prob, truth, num_draws=300)
    assert 0 <= low < intervals._ap(prob, truth) < high <= 1


def _run(shift=0.0, prob_shift=0.0, seed=0):
    """Separation and object rows as an evaluation writes them, for 10 videos: each mixture
    scores two sounding sources of different videos (slots 0 and 2) and names two silent ones."""
    units, values = _rows(10, 6, seed=seed, shift=shift)
    half = units.size // 2  # row k of the first five videos meets row k of the last five
    records = [
        {"index": k, "slot": 2 * j, "source": units[i], "valid": True, "sdr": values[i],
         "sir": values[i], "sar": values[i], "sdr_mix": 1.0}
        for k in range(half) for j, i in enumerate((k, k + half))
    ]  # fmt: skip
    rng = np.random.default_rng(5)
    objects = []
    for r in records:
        for slot, sounding in ((r["slot"], True), (r["slot"] + 1, False)):
            p = float(np.clip(0.5 + (0.2 if sounding else -0.2) + rng.normal(0, 0.3), 0, 1))
            objects.append(
                {"index": r["index"], "slot": slot, "sounding": sounding,
                 "source": r["source"] if sounding else r["source"] + "/silent",
                 "sounding_prob": float(np.clip(p + prob_shift, 0, 1)),
                 "pointing": float(sounding and p > 0.5) if sounding else None}
            )  # fmt: skip
    return records, objects


def test_paired_difference_of_a_run_with_itself_is_exactly_zero():
    diffs = intervals.paired_differences(*_run(), *_run())
    for name, d in diffs.items():
        assert d["diff"] == 0 and d["ci95"] == [0.0, 0.0], name
    assert {"sdr", "sdr_gain", "grounding_acc", "grounding_ap", "loc_pointing_acc"} <= set(diffs)


def test_paired_difference_sees_a_shift_that_the_unpaired_intervals_hide():
    a, b = _run(shift=0.3), _run()
    d = intervals.paired_differences(*a, *b)["sdr_gain"]
    assert d["diff"] == pytest.approx(0.3) and d["ci95"] == pytest.approx([0.3, 0.3])
    ci_a = intervals.evaluation_intervals(*a)["sdr_gain_ci95"]
    ci_b = intervals.evaluation_intervals(*b)["sdr_gain_ci95"]
    assert ci_a[0] < ci_b[1]  # each run's own interval overlaps the other's


def test_runs_on_other_mixtures_are_not_paired():
    records, objects = _run()
    with pytest.raises(intervals.NotPaired, match="different mixtures"):
        intervals.paired_differences(records, objects, records[:-1], objects)
    moved = [dict(r, source="elsewhere") if i == 0 else r for i, r in enumerate(records)]
    with pytest.raises(intervals.NotPaired, match="different mixtures"):
        intervals.paired_differences(records, objects, moved, objects)


def test_runs_are_paired_by_source_whatever_their_slots():
    """SoP scores a mixture's two videos in slots 0 and 1, CCoL its sounding objects in 0 and 2."""
    records, objects = _run()
    sop = [dict(r, slot=r["slot"] // 2) for r in records]
    d = intervals.paired_differences(sop, [], records, objects)["sdr"]
    assert d["diff"] == 0 and d["n"] == len(records)


def test_evaluation_intervals_cover_each_metric():
    records, objects = _run()
    out = intervals.evaluation_intervals(records, objects)
    for key in ("sdr", "sir", "sar", "sdr_gain", "grounding_acc", "grounding_ap",
                "loc_pointing_acc"):  # fmt: skip
        low, high = out[key + "_ci95"]
        assert low <= high, key
    unscored = [dict(o, scored=False) for o in objects]
    assert "grounding_acc_ci95" not in intervals.evaluation_intervals(records, unscored)


@pytest.mark.parametrize("num_frames,margin", [(10, 1), (60, 1), (37, 2)])
def test_clip_positions_spread_over_the_video(num_frames, margin):
    assert clip_centre(num_frames, 0, 1, margin) == num_frames // 2 + 1  # the authors' clip
    for k in (2, 4, 8):
        centres = [clip_centre(num_frames, p, k, margin) for p in range(k)]
        assert all(margin + 1 <= c <= num_frames - margin for c in centres)
        assert centres == sorted(centres)
        if num_frames - 2 * margin >= k:
            assert len(set(centres)) == k


def test_true_labels_replace_the_separation_choice():
    model, _ = tiny_stage("ccol", diag_true_labels=True)
    truth = torch.tensor([[True, False, True, False], [False, True, True, False]])
    spec = {"gt_masks": torch.rand(2, 4, 1, 2, 2), "weight": torch.ones(2, 1, 2, 2)}
    w_pos, w_neg = model.sounding_labels(torch.rand(2, 4, 1, 2, 2), spec, truth)
    assert w_pos.tolist() == truth.float().tolist()
    assert w_neg.tolist() == (~truth).float().tolist()


def test_true_gate_replaces_mixture_grounding():
    model, _ = tiny_stage("col", diag_true_gate=True)
    gt = torch.zeros(1, 4, 1, 2, 2)
    gt[:, 0], gt[:, 2] = 1.0, 1.0
    spec = {"gt_masks": gt, "weight": torch.ones(1, 1, 2, 2)}
    masks = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 4, 1, 1, 1).expand(1, 4, 1, 2, 2)
    wrong_grounding = torch.tensor([[0.1, 0.9, 0.1, 0.9]])  # would open the wrong objects
    truth = torch.tensor([[True, False, True, False]])
    assert float(model.gated_separation_loss(masks, wrong_grounding, spec, truth)) == 0
