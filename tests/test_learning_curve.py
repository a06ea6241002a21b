"""Learning curves: stages laid end to end on the mixtures axis, seeds averaged, figure written."""

import json
import os

from scripts import learning_curve


def _write_chain(ckpt, gains, accs, per_epoch=100):
    """Three stages of two test points each; returns nothing, writes <ckpt>/<id>/history.json."""
    for (stage, run_id), gain, acc in zip(learning_curve.STAGES, gains, accs):
        os.makedirs(os.path.join(ckpt, run_id))
        tests = [
            {
                "epoch": e,
                "mixtures_seen": e * per_epoch,
                "grounding_acc": acc + 0.01 * e,
                "sdr": None if stage == "grd" else 1.0 + gain + e,
                "sdr_mix": None if stage == "grd" else 1.0,
            }
            for e in (1, 2)
        ]
        with open(os.path.join(ckpt, run_id, "history.json"), "w") as f:
            json.dump({"train": [], "val": [], "test": tests}, f)


def test_chains_laid_end_to_end_and_averaged(tmp_path, capsys):
    _write_chain(str(tmp_path / "s1"), (0, 1, 2), (0.5, 0.6, 0.7))
    _write_chain(str(tmp_path / "s2"), (0, 3, 4), (0.5, 0.8, 0.9))
    out = str(tmp_path / "curve.png")
    assert (
        learning_curve.main(["--ckpt", str(tmp_path / "s1"), str(tmp_path / "s2"), "--out", out])
        == 0
    )
    rows = json.load(open(str(tmp_path / "curve.json")))
    assert [r["mixtures"] for r in rows] == [100, 200, 300, 400, 500, 600]
    assert "sdr_gain" not in rows[0]  # GRD separates nothing
    col_first = rows[2]["sdr_gain"]
    assert (col_first["mean"], col_first["min"], col_first["max"]) == (3.0, 2.0, 4.0)
    assert abs(rows[-1]["grounding_acc"]["mean"] - 0.82) < 1e-9
    assert os.path.getsize(out) > 10_000
    assert "ccol epoch  2" in capsys.readouterr().out
