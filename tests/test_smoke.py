"""End to end on a tiny synthetic set: each stage trains, chains, evaluates and writes its files."""

import json
import os
import shutil
import sys

import pytest
import torch
from conftest import main_py
from conftest import run as run_command

import checkpoints
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


def test_stages_chain_and_write_runs(trained_runs):
    for run, stage in [("grd", "grd"), ("col", "col"), ("ccol", "ccol"), ("sop", "sop")]:
        folder = trained_runs / run
        for name in [
            "args.json",
            "checkpoint_latest.pt",
            "checkpoint_best.pt",
            "history.json",
            "loss.png",
            "train.log",
            "visualization/index.html",
        ]:
            assert (folder / name).exists(), f"{run}: {name} missing"
        history = json.loads((folder / "history.json").read_text())
        # metrics.png plots what validation measured. One epoch of the tiny SoP can leave every
        # thresholded binary mask at 0: all estimates are silent, no SDR exists (counted invalid).
        measured = any(history["val"][-1].get(k) is not None for k in ("sdr", "grounding_acc"))
        assert (folder / "metrics.png").exists() == measured, run
        assert measured or run == "sop", run
        assert len(history["train"]) == (1 if run == "sop" else 2)
        assert all(torch.isfinite(torch.tensor(h["total"])) for h in history["train"])
        ckpt = torch.load(folder / "checkpoint_latest.pt", weights_only=False)
        assert ckpt["stage"] == stage
    # one checkpoint format: every net in checkpoint_<tag>.pt, no per-network weight files
    assert not list(trained_runs.glob("*/*.pth"))
    assert (
        "synthesizer" in checkpoints.load(str(trained_runs / "ccol" / "checkpoint_best.pt"))["nets"]
    )
    log = (trained_runs / "col" / "train.log").read_text()
    assert "initialised sound_ground, frame_ground, grounding from" in log
    assert (trained_runs / "index.html").exists()


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


def test_resume_gives_the_same_next_epoch(trained_runs, tiny_data_root, tmp_path):
    """Training 1 epoch then resuming for a 2nd gives the same losses as 2 epochs in one go."""
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    main_py(
        "--stage",
        "ccol",
        "--id",
        "once",
        "--num_epoch",
        "2",
        "--init_from",
        trained_runs / "col",
        **common,
    )
    main_py(
        "--stage",
        "ccol",
        "--id",
        "twice",
        "--num_epoch",
        "1",
        "--init_from",
        trained_runs / "col",
        **common,
    )
    main_py("--stage", "ccol", "--id", "twice", "--num_epoch", "2", "--resume", **common)
    once = json.loads((tmp_path / "once" / "history.json").read_text())["train"]
    twice = json.loads((tmp_path / "twice" / "history.json").read_text())["train"]
    assert len(once) == len(twice) == 2
    for a, b in zip(once, twice):
        assert a["total"] == pytest.approx(b["total"], rel=1e-5, abs=1e-6), (a, b)


def test_architecture_mismatch_is_a_clear_error(trained_runs, tiny_data_root, tmp_path):
    with pytest.raises(AssertionError, match="does not match this architecture"):
        main_py(
            "--stage",
            "col",
            "--id",
            "wide",
            "--num_epoch",
            "1",
            "--vggish_width",
            "16",
            "--init_from",
            trained_runs / "grd",
            ckpt=tmp_path,
            data_root=tiny_data_root,
        )
    broken = tmp_path / "broken"
    os.makedirs(broken)
    # --init_from reads the previous run's latest checkpoint (the authors' chaining)
    data = (trained_runs / "grd" / "checkpoint_latest.pt").read_bytes()
    (broken / "checkpoint_latest.pt").write_bytes(data[: len(data) // 3])
    with pytest.raises(AssertionError, match="unreadable"):
        main_py(
            "--stage",
            "col",
            "--id",
            "x",
            "--num_epoch",
            "1",
            "--init_from",
            broken,
            ckpt=tmp_path,
            data_root=tiny_data_root,
        )


def test_test_every_scores_the_test_mixtures_for_learning_curves(
    trained_runs, tiny_data_root, tmp_path
):
    main_py(
        "--stage",
        "ccol",
        "--id",
        "curve",
        "--num_epoch",
        "2",
        "--test_every",
        "1",
        "--init_from",
        trained_runs / "col",
        ckpt=tmp_path,
        data_root=tiny_data_root,
    )
    history = json.loads((tmp_path / "curve" / "history.json").read_text())
    tests = history["test"]
    assert [t["epoch"] for t in tests] == [1, 2]
    assert tests[1]["mixtures_seen"] == 2 * tests[0]["mixtures_seen"] > 0
    assert tests[0]["num_mixtures"] > 0 and tests[0]["sdr_mix"] is not None
    assert 0 <= tests[0]["grounding_acc"] <= 1


def _numbers(results: dict) -> dict:
    """results.json without what names the run or times it."""
    return {
        k: v
        for k, v in results.items()
        if k not in ("run", "checkpoint", "eval_seconds", "data_root", "split_file")
    }


def test_a_repeated_run_matches_itself(trained_runs, tiny_data_root, tmp_path):
    """The same seed and command on one machine give the same numbers, to the last digit."""
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    for name in ("first", "again"):
        main_py(
            "--stage", "ccol", "--id", name, "--num_epoch", "1", "--init_from",
            trained_runs / "col", **common,
        )  # fmt: skip
        main_py("--mode", "eval", "--id", name, "--num_val", "-1", "--test_clips", "2", **common)

    def read(name, file):
        return json.loads((tmp_path / name / file).read_text())

    first, again = read("first", "history.json"), read("again", "history.json")
    assert first["train"] == again["train"] and first["val"] == again["val"]
    assert _numbers(read("first", "results.json")) == _numbers(read("again", "results.json"))


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
