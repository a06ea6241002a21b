"""End to end on a tiny synthetic set: each stage trains, chains, resumes and writes its files
(evaluation: test_evaluation.py)."""

import json
import os

import pytest
import torch
from conftest import main_py

import checkpoints


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
