"""Evaluation metrics and their aggregation.

BSS-eval separation scores, silent-object leakage, grounding scores.
"""

import contextlib
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fast_bss_eval
import numpy as np
import torch
from mir_eval.separation import bss_eval_sources

import utils
from models.grounding_net import SOUNDING_THRESHOLD

# A sample is scored only if every reference and every estimate has sum|x| above this
# (reference calc_metrics, main_ccol.py); silent signals would make BSS-eval ill-posed.
VALID_ABS_SUM = 1e-5
# mir_eval hard-codes a 512-tap distortion filter; the fast backend must use the same.
FILTER_LENGTH = 512
# main_silent.py adds this to every reference and estimate so that all-zero slots pass validation.
REFERENCE_SILENT_OFFSET = 1e-6


def _as_float64(x):
    """Return `x` (array or tensor) as a float64 tensor, keeping a tensor's device."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(torch.float64)
    # torch cannot wrap numpy views with negative strides (e.g. x[:, ::-1])
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def _check_sources(refs, ests):
    if refs.ndim != 3 or refs.shape != ests.shape:
        raise ValueError(
            "refs and ests must both be (B, N, L) with equal shapes, "
            f"got {tuple(refs.shape)} and {tuple(ests.shape)}"
        )


def _is_audible(signals):
    """(B, N, L) -> (B,) bool: every one of the N signals has sum|x| > VALID_ABS_SUM."""
    return (signals.abs().sum(dim=-1) > VALID_ABS_SUM).all(dim=-1)


# mir_eval 0.8 marks bss_eval_sources deprecated (removed in 0.9), once per call and per source;
# requirements pin 0.8.x, so the warning is noise here. Set once: catch_warnings is not thread-safe.
warnings.filterwarnings("ignore", message=r"mir_eval\.separation\.", category=FutureWarning)


def _mir_eval_sources(ref, est):
    """mir_eval's bss_eval_sources without permutation.

    (N, L) float64 arrays -> (sdr, sir, sar), each (N,).
    """
    sdr, sir, sar, _ = bss_eval_sources(ref, est, compute_permutation=False)
    return sdr, sir, sar


def _bss_eval_mir_eval(refs, ests):
    """Reference metric, one mir_eval call per sample on the CPU.

    (V, N, L) tensors -> three (V, N) arrays.
    """
    refs, ests = refs.cpu().numpy(), ests.cpu().numpy()
    scores = np.array([_mir_eval_sources(ref, est) for ref, est in zip(refs, ests)])  # (V, 3, N)
    return scores[:, 0], scores[:, 1], scores[:, 2]


@contextlib.contextmanager
def one_cpu_thread():
    """Run torch's CPU ops on one thread inside the block, then restore the previous thread count.

    Once torch.set_num_threads(n > 1) has been called, PyTorch's batched CPU LU runs MKL's dgetrf
    from several threads at once, which prints "Parameter 6 was incorrect on entry to DLASWP" and
    hangs or returns wrong solutions (pytorch/pytorch#141358, #142815). fast_bss_eval solves batched
    512x512 and 1024x1024 systems, so it must not run there with more than one thread.
    """
    num_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(num_threads)


def _bss_eval_fast(refs, ests):
    """Batched fast_bss_eval on the tensors' device. (V, N, L) tensors -> three (V, N) arrays.

    Exact solve (no conjugate gradient), no regularisation and no dB clamp, so it computes the same
    least-squares projections as mir_eval and agrees with it to floating-point precision.
    """
    # fast_bss_eval divides each signal by max(norm, 1e-6), which silently rescales quiet but valid
    # signals and breaks its unit-norm coherence formulas. BSS-eval scores do not change when any
    # single reference or estimate is rescaled, so normalising here is exact.
    refs = refs / refs.norm(dim=-1, keepdim=True)
    ests = ests / ests.norm(dim=-1, keepdim=True)
    with one_cpu_thread() if refs.device.type == "cpu" else contextlib.nullcontext():
        sdr, sir, sar = fast_bss_eval.bss_eval_sources(
            refs,
            ests,
            filter_length=FILTER_LENGTH,
            use_cg_iter=None,
            zero_mean=False,
            clamp_db=None,
            compute_permutation=False,
            load_diag=None,
        )
    return sdr.cpu().numpy(), sir.cpu().numpy(), sar.cpu().numpy()


_BACKENDS = {"mir_eval": _bss_eval_mir_eval, "fast": _bss_eval_fast}


def separation_metrics(refs, ests, backend="mir_eval"):
    """SDR, SIR and SAR of each estimate against its own reference (BSS-eval, no permutation).

    Estimate n is scored against reference n, as the reference's calc_metrics does. Samples in which
    any reference or estimate has sum|x| <= VALID_ABS_SUM are invalid: their scores are NaN and they
    must be excluded from means, never counted as 0 as the reference did. Scores are not
    clamped: a (near-)perfect estimate scores far above 100 dB (+inf with the fast backend when the
    residual underflows), where the two backends measure floating-point noise and may differ.

    Args:
        refs: sounding sources, array or tensor; evaluated in float64.
        ests: estimates of the same sources, array or tensor; evaluated in float64.
        backend: 'mir_eval' (the reference metric, CPU, one sample at a time) or 'fast'
            (fast_bss_eval batched on the estimates' device; agrees with mir_eval within 0.01 dB,
            see tests/test_metrics.py).

    Shape:
        refs, ests: (B, N, L).
        Returns {'sdr', 'sir', 'sar'}: (B, N) float64 arrays in dB, and 'valid': (B,) bool array.
    """
    if backend not in _BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; valid names: {sorted(_BACKENDS)}")
    ests = _as_float64(ests)
    refs = _as_float64(refs).to(
        ests.device
    )  # computed where the estimates are (the model's device)
    _check_sources(refs, ests)
    B, N, _ = refs.shape

    valid = _is_audible(refs) & _is_audible(ests)  # (B,)
    valid_np = valid.cpu().numpy()
    scores = {name: np.full((B, N), np.nan) for name in ("sdr", "sir", "sar")}
    if valid_np.any():
        for name, values in zip(
            ("sdr", "sir", "sar"), _BACKENDS[backend](refs[valid], ests[valid])
        ):
            scores[name][valid_np] = values
    scores["valid"] = valid_np
    return scores


def mixture_sdr(refs, mix, backend="mir_eval"):
    """SDR of the unseparated mixture as the estimate of every source (the reference's SDR_mix).

    The baseline any separation has to beat. Samples with a silent reference or mixture are NaN. The
    reference only scores SDR_mix on samples whose separated estimates are valid; callers get that
    by excluding the samples that separation_metrics marks invalid.

    Args:
        refs: sounding sources, array or tensor.
        mix: mixture waveforms, array or tensor.
        backend: as in separation_metrics.

    Shape:
        refs: (B, N, L); mix: (B, L); returns (B, N) float64 array in dB.
    """
    mix = _as_float64(mix)
    refs = _as_float64(refs).to(mix.device)
    if mix.ndim != 2 or refs.ndim != 3 or mix.shape != (refs.shape[0], refs.shape[2]):
        raise ValueError(
            "expected refs (B, N, L) and mix (B, L), "
            f"got {tuple(refs.shape)} and {tuple(mix.shape)}"
        )
    ests = mix[:, None, :].expand_as(refs).contiguous()  # (B, N, L)
    return separation_metrics(refs, ests, backend)["sdr"]


def silent_leakage_db(silent_ests, mix, eps=1e-10):
    """Energy that leaks into each silent object's estimate, relative to the mixture, in dB.

    10·log10(Σ est² / Σ mix²): 0 dB means the slot received as much energy as the whole mixture.
    A perfectly gated (all-zero) estimate gets the floor 10·log10(eps) (-100 dB by default) instead
    of -inf, so means stay finite; report the floor with the number. Samples with an all-zero
    mixture are NaN.

    Args:
        silent_ests: estimates for the silent objects, array or tensor.
        mix: mixture waveforms, array or tensor.
        eps: smallest energy ratio reported; sets the floor.

    Shape:
        silent_ests: (B, M, L); mix: (B, L); returns (B, M) float64 array in dB.
    """
    silent_ests = _as_float64(silent_ests).cpu()
    mix = _as_float64(mix).cpu()
    if silent_ests.ndim != 3 or mix.shape != (silent_ests.shape[0], silent_ests.shape[2]):
        raise ValueError(
            "expected silent_ests (B, M, L) and mix (B, L), "
            f"got {tuple(silent_ests.shape)} and {tuple(mix.shape)}"
        )
    est_energy = silent_ests.pow(2).sum(dim=-1)  # (B, M)
    mix_energy = mix.pow(2).sum(dim=-1, keepdim=True)  # (B, 1)
    ratio = (est_energy / mix_energy).clamp(min=eps)
    ratio = torch.where(mix_energy > 0, ratio, torch.nan)
    return (10 * torch.log10(ratio)).numpy()


def reference_silent_sdr(refs4, ests4):
    """The number main_silent.py reports per sample ("reference protocol"); not a separation SDR.

    Adds 1e-6 to every reference and every estimate of all 4 slots (2 sounding, 2 silent whose
    reference is all-zero), runs mir_eval's bss_eval_sources without permutation and averages SDR
    over the 4 slots, as the reference does (docs/method.md, Silent-object protocol). A silent slot
    that is gated to zero then matches its constant 1e-6 reference almost exactly, so its SDR is
    hundreds of dB (or +inf) and dominates the mean; leaked energy makes it strongly negative. The
    value is returned as is, possibly huge or +inf; label it "reference protocol" wherever it is
    shown. Samples that fail the reference's validity test (never once the offset is added, unless
    L <= 10) are NaN.

    Args:
        refs4: references of the 4 slots, silent ones all-zero, array or tensor.
        ests4: the 4 (gated) estimates, array or tensor.

    Shape:
        refs4, ests4: (B, 4, L); returns (B,) float64 array in dB.
    """
    refs4 = _as_float64(refs4).cpu() + REFERENCE_SILENT_OFFSET
    ests4 = _as_float64(ests4).cpu() + REFERENCE_SILENT_OFFSET
    _check_sources(refs4, ests4)
    valid = np.flatnonzero((_is_audible(refs4) & _is_audible(ests4)).numpy())
    sdr = np.full(refs4.shape[0], np.nan)

    def one_sample(b):
        return _mir_eval_sources(refs4[b].numpy(), ests4[b].numpy())[0].mean()

    # mir_eval's time goes to LAPACK solves and FFTs, which release the GIL: threads use all cores.
    with ThreadPoolExecutor(max_workers=max(1, min(len(valid), os.cpu_count() or 1, 8))) as pool:
        sdr[valid] = list(pool.map(one_sample, valid))
    return sdr


def average_precision(scores, labels):
    """Average precision, the step-wise definition of sklearn's average_precision_score.

    AP = Σ_k (R_k − R_{k−1})·P_k over the distinct score thresholds in decreasing order, where P_k
    and R_k are precision and recall when every item scoring >= threshold k is called positive.
    Tied scores enter together (one threshold), so AP does not depend on the order of ties. NaN when
    there is no positive.

    Shape:
        scores, labels: (K,); labels are truthy for the positive class. Returns a float.
    """
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels, dtype=bool).ravel()
    num_positive = labels.sum()
    if num_positive == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # last index of each run of equal scores: where a threshold admits all tied items at once
    threshold_ends = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_pos = np.cumsum(labels)[threshold_ends]
    precision = true_pos / (threshold_ends + 1)
    recall = true_pos / num_positive
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _ratio(num, den):
    return float(num / den) if den > 0 else float("nan")


def grounding_metrics(sounding_prob, is_sounding, threshold=SOUNDING_THRESHOLD):
    """Sounding-object classification scores over a whole evaluation set (sounding = positive).

    An object is predicted sounding when prob > threshold, the rule that gates masks in the silent
    protocol (a prob of exactly 0.5 is silent, as with the reference's round()). Ratios whose
    denominator is empty (e.g. precision with no predicted positive) are NaN, not 0.

    Args:
        sounding_prob: predicted probability that each object sounds.
        is_sounding: true labels.
        threshold: decision threshold on the probability.

    Shape:
        sounding_prob, is_sounding: (K,), flattened over samples and objects.
        Returns a dict of floats: accuracy, precision, recall, f1, balanced_accuracy, ap, and ints
        num_positive, num_negative.
    """
    prob = np.asarray(sounding_prob, dtype=np.float64).ravel()
    label = np.asarray(is_sounding, dtype=bool).ravel()
    if prob.shape != label.shape:
        raise ValueError(
            f"sounding_prob and is_sounding must match, got {prob.shape} and {label.shape}"
        )
    pred = prob > threshold
    true_pos = int(np.sum(pred & label))
    false_pos = int(np.sum(pred & ~label))
    false_neg = int(np.sum(~pred & label))
    true_neg = int(np.sum(~pred & ~label))
    num_positive, num_negative = true_pos + false_neg, true_neg + false_pos

    recall = _ratio(true_pos, num_positive)
    specificity = _ratio(true_neg, num_negative)
    class_recalls = [r for r in (recall, specificity) if not np.isnan(r)]
    return {
        "accuracy": _ratio(true_pos + true_neg, label.size),
        "precision": _ratio(true_pos, true_pos + false_pos),
        "recall": recall,
        # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and is 0, not NaN, when TP = 0 but FP + FN > 0
        "f1": _ratio(2 * true_pos, 2 * true_pos + false_pos + false_neg),
        # mean recall over the classes present, as sklearn's balanced_accuracy_score
        "balanced_accuracy": float(np.mean(class_recalls)) if class_recalls else float("nan"),
        "ap": average_precision(prob, label),
        "num_positive": num_positive,
        "num_negative": num_negative,
    }


def _nan_stat(stat, values):
    """`stat` over the non-NaN values, NaN when there are none (no empty-slice warning)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    return float(stat(values)) if values.size else float("nan")


def summarize(records, keys=("sdr", "sir", "sar", "sdr_mix"), group_key="class"):
    """Mean, median and per-class mean of per-(sample, source) scores over the valid records only.

    Every record counts once (never a mean of batch means). Invalid records are counted but excluded
    from every statistic; NaN values inside valid records are skipped per key. Infinite scores are
    kept (the mean becomes inf; the median stays informative).

    Args:
        records: one dict per (sample, source) holding `keys`, `group_key` and 'valid'.
        keys: score names to summarise.
        group_key: record field to group by for the per-class means.

    Returns:
        {'mean': {key: float}, 'median': {key: float},
         'per_class': {class: {key: float, 'count': number of valid records}},
         'num_valid': int, 'num_invalid': int}
    """
    valid_records = [r for r in records if r["valid"]]
    per_class = {}
    for group in sorted({r[group_key] for r in records}):
        rows = [r for r in valid_records if r[group_key] == group]
        per_class[group] = {k: _nan_stat(np.mean, [r[k] for r in rows]) for k in keys}
        per_class[group]["count"] = len(rows)
    return {
        "mean": {k: _nan_stat(np.mean, [r[k] for r in valid_records]) for k in keys},
        "median": {k: _nan_stat(np.median, [r[k] for r in valid_records]) for k in keys},
        "per_class": per_class,
        "num_valid": len(valid_records),
        "num_invalid": len(records) - len(valid_records),
    }


def write_records_csv(path, records):
    """Write one CSV row per record (columns: the union of the records' keys, first seen first),
    atomically, as every file of a run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    utils.atomic_write_csv(records, str(path))


def format_summary_table(summary):
    """Render a `summarize` result as a fixed-width text table.

    Rows: mean, median, then one per class.
    """
    keys = list(summary["mean"])
    name_width = max([len("median")] + [len(str(c)) for c in summary["per_class"]]) + 2

    def row(name, stats, count):
        return f"{name:<{name_width}}" + "".join(f"{stats[k]:>10.3f}" for k in keys) + f"{count:>8}"

    lines = [f"{'':<{name_width}}" + "".join(f"{k:>10}" for k in keys) + f"{'count':>8}"]
    lines.append(row("mean", summary["mean"], summary["num_valid"]))
    lines.append(row("median", summary["median"], summary["num_valid"]))
    lines.extend(row(str(c), stats, stats["count"]) for c, stats in summary["per_class"].items())
    lines.append(
        f"valid records: {summary['num_valid']}, invalid (excluded): {summary['num_invalid']}"
    )
    return "\n".join(lines)
