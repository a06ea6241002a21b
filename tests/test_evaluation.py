"""Evaluation end to end on the tiny trained runs: results files and their intervals, the
silent-object protocol, the evaluation script reading its run, several clip positions per test row,
ideal masks, and paired comparisons of two runs."""

import json
import shutil
import sys

import pytest
from conftest import main_py
from conftest import run as run_command

import localization

RESULT_KEYS = {
    "stage",
    "split",
    "num_mixtures",
    "sdr",
    "sir",
    "sar",
    "sdr_mix",
    "sdr_median",
    "grounding_acc",
    *localization.LOC_KEYS,
}


def test_eval_writes_results(trained_runs, tiny_data_root, tmp_path):
    # On copies of the runs: the shared ones are read by other tests, perhaps at the same time.
    for name in ("ccol", "sop"):
        shutil.copytree(
            trained_runs / name, tmp_path / name, ignore=shutil.ignore_patterns("visualization")
        )
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    out = main_py("--mode", "eval", "--id", "ccol", "--num_val", "-1", **common).stdout
    # The run's trunks started random and trained; the evaluation loads them from its checkpoint.
    best = tmp_path / "ccol" / "checkpoint_best.pt"
    assert f"ResNet-18 features: weights of {best}, trained" in out
    assert "random" not in out.lower()
    main_py("--mode", "eval", "--id", "ccol", "--num_val", "-1", "--eval_silent", **common)
    result = json.loads((tmp_path / "ccol" / "results.json").read_text())
    assert RESULT_KEYS <= set(result)
    assert result["stage"] == "ccol" and result["split"] == "test" and result["num_mixtures"] == 8
    assert 0 <= result["grounding_acc"] <= 1
    # the synthetic root has true boxes: localization is measured (silent energy only where a
    # test frame shows a silent instrument, every third video)
    for key in localization.LOC_KEYS:
        measured = result[key] is not None or key == "loc_silent_energy"
        assert measured and 0 <= (result[key] or 0) <= 1, (key, result)
    silent = json.loads((tmp_path / "ccol" / "results_silent.json").read_text())
    assert RESULT_KEYS | {"silent_leakage_db", "silent_acc"} <= set(silent)
    assert silent["silent_leakage_db"] <= 0
    rows = (tmp_path / "ccol" / "eval_test.csv").read_text().splitlines()
    assert len(rows) == 1 + 8 * 2  # header + 2 sounding sources per mixture
    main_py("--mode", "eval", "--id", "sop", "--num_val", "-1", **common)
    sop = json.loads((tmp_path / "sop" / "results.json").read_text())
    assert sop["grounding_acc"] is None and sop["num_mixtures"] == 8
    for key in localization.LOC_KEYS:  # from its separation maps
        measured = sop[key] is not None or key == "loc_silent_energy"
        assert measured and 0 <= (sop[key] or 0) <= 1, (key, sop)


def test_eval_script_reads_the_run_and_refuses_other_values(
    trained_runs, tiny_data_root, tmp_path, monkeypatch
):
    """eval_ccol.sh passes no --profile: the demo run's configuration comes from its args.json; a
    flag set otherwise is refused, naming the option, the value given and the run's."""
    shutil.copytree(
        trained_runs / "ccol", tmp_path / "ccol", ignore=shutil.ignore_patterns("visualization")
    )
    for name, value in dict(CKPT=tmp_path, ID="ccol", DATA_ROOT=tiny_data_root, NUM_VAL=4).items():
        monkeypatch.setenv(name, str(value))
    run_command(["bash", "scripts/eval_ccol.sh", "--workers", "0"])
    result = json.loads((tmp_path / "ccol" / "results.json").read_text())
    assert result["num_mixtures"] == 4 and result["stage"] == "ccol"
    with pytest.raises(AssertionError, match="--ngf: given 64, the run's 8"):
        run_command(["bash", "scripts/eval_ccol.sh", "--workers", "0", "--ngf", "64"])


def test_eval_clips_intervals_and_paired_comparison(trained_runs, tiny_data_root, tmp_path):
    """--test_clips K scores every test row at K clip positions; results carry intervals over
    the test videos; results_table --compare pairs two runs on those mixtures."""
    for name in ("col", "ccol"):
        shutil.copytree(trained_runs / name, tmp_path / name)
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    for name in ("col", "ccol"):
        main_py("--mode", "eval", "--id", name, "--num_val", "-1", "--test_clips", "3", **common)
    res = json.loads((tmp_path / "ccol" / "results.json").read_text())
    assert res["num_mixtures"] == 8 * 3 and res["test_clips"] == 3 and res["num_videos"] == 4
    for key in ("sdr", "sdr_gain", "sir", "sar", "grounding_acc", "grounding_ap",
                "loc_pointing_acc"):  # fmt: skip
        low, high = res[key + "_ci95"]
        assert low <= res[key] <= high, key
    rows = (tmp_path / "ccol" / "eval_test.csv").read_text().splitlines()
    assert len(rows) == 1 + 8 * 3 * 2
    clips = {line.split(",")[rows[0].split(",").index("clip")] for line in rows[1:]}
    assert clips == {"0", "1", "2"}
    objects = (tmp_path / "ccol" / "eval_test_objects.csv").read_text().splitlines()
    assert len(objects) == 1 + 8 * 3 * 4
    page = (tmp_path / "ccol" / "visualization" / "test" / "index.html").read_text()
    assert "95% CI" in page
    out = run_script("scripts/results_table.py", "--ckpt", tmp_path, "--compare", "ccol", "col")
    assert "sdr_gain" in out and "grounding_acc" in out and "95% interval" in out
    out = run_script("scripts/results_table.py", "--ckpt", tmp_path, "ccol", "col")
    assert f"{res['sdr']:.2f} [{res['sdr_ci95'][0]:.2f}, {res['sdr_ci95'][1]:.2f}]" in out
    # the ideal masks (a diagnostic): written beside the run's results, shown under it, labelled
    main_py("--mode", "eval", "--id", "ccol", "--num_val", "-1", "--test_clips", "3",
            "--oracle_masks", **common)  # fmt: skip
    oracle = json.loads((tmp_path / "ccol" / "results_oracle.json").read_text())
    assert oracle["diagnostic"] == ["oracle_masks"] and oracle["sdr"] > res["sdr"]
    assert json.loads((tmp_path / "ccol" / "results.json").read_text()) == res
    out = run_script("scripts/results_table.py", "--ckpt", tmp_path, "ccol")
    assert "(diagnostic: oracle_masks)" in out and f"{oracle['sdr']:.2f} [" in out
    # an evaluation on other mixtures is refused, not compared
    main_py("--mode", "eval", "--id", "col", "--num_val", "-1", **common)
    with pytest.raises(AssertionError, match="different mixtures"):
        run_script("scripts/results_table.py", "--ckpt", tmp_path, "--compare", "ccol", "col")


def run_script(script, *args):
    return run_command([sys.executable, script, *map(str, args)]).stdout
