"""Crash safety of main.py: SIGKILL mid-epoch then --resume replays the run exactly; NaN audio stops
training naming the file and keeps the last good checkpoint; an existing run is never deleted or
overwritten."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import REPO, TINY_ARGS, main_py, nan_wav

import checkpoints
from arguments import ARCH_KEYS
from dataset.index import read_index

# 16 iterations per epoch, each logged: the kill lands well inside epoch 2. Validation only after
# the last epoch, and a learning-rate step after epoch 1, so that the scheduler state matters too.
KILL_ARGS = [
    "--stage",
    "ccol",
    "--num_epoch",
    "2",
    "--dup_trainset",
    "16",
    "--disp_iter",
    "1",
    "--eval_epoch",
    "100",
    "--num_val",
    "4",
    "--num_vis",
    "0",
    "--lr_steps",
    "1",
]
LOSS_KEYS = ("total", "sep", "grd_solo_pos", "grd_solo_neg", "grd_mix_pos", "grd_mix_neg")

# One torch thread here, OMP_NUM_THREADS=1 in the processes started (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")


def file_digests(folder) -> dict:
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in sorted(os.listdir(folder))
        if (folder / name).is_file()
    }


def history(run_dir) -> dict:
    return json.loads((run_dir / "history.json").read_text())


def start_and_kill_in_epoch_2(cmd, run_dir, timeout=240.0) -> None:
    """Start training, SIGKILL it once the log shows epoch 2 under way, and wait for it to die."""
    log = run_dir / "train.log"
    proc = subprocess.Popen(
        cmd,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + timeout
        while "[train] epoch 2 it 1/" not in (log.read_text() if log.exists() else ""):
            if proc.poll() is not None:
                pytest.fail(
                    f"training ended (rc {proc.returncode}) before it could be killed:\n"
                    f"{proc.stderr.read()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail(f"epoch 2 did not start within {timeout} s")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def test_kill_mid_epoch_then_resume_matches_an_uninterrupted_run(
    trained_runs, tiny_data_root, tmp_path
):
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    init = ["--init_from", str(trained_runs / "col")]
    main_py(*KILL_ARGS, *init, "--id", "straight", **common)

    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        "main.py",
        *TINY_ARGS,
        "--ckpt",
        str(tmp_path),
        "--data_root",
        str(tiny_data_root),
        *KILL_ARGS,
        *init,
        "--id",
        "killed",
    ]
    start_and_kill_in_epoch_2(cmd, killed)
    ckpt = checkpoints.load(str(killed / "checkpoint_latest.pt"))
    assert ckpt["epoch"] == 1, "the kill should land inside epoch 2, after the epoch-1 checkpoint"
    assert len(history(killed)["train"]) == 1

    # Starting the same run again without --resume is refused and leaves every file as it was.
    before = file_digests(killed)
    with pytest.raises(AssertionError, match="already holds a run"):
        main_py(*KILL_ARGS, *init, "--id", "killed", **common)
    assert file_digests(killed) == before

    main_py(*KILL_ARGS, "--id", "killed", "--resume", **common)
    assert "resumed" in (killed / "train.log").read_text()
    straight, resumed = history(tmp_path / "straight"), history(killed)
    assert [h["epoch"] for h in resumed["train"]] == [1, 2]
    for a, b in zip(straight["train"], resumed["train"]):
        assert a["lr"] == b["lr"]
        for key in LOSS_KEYS:
            assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (key, a, b)
    # the scheduler state survived: the rate stepped down by 10x after epoch 1
    first_lr = resumed["train"][0]["lr"]["sound"]
    assert resumed["train"][1]["lr"]["sound"] == pytest.approx(0.1 * first_lr)
    for key, value in straight["val"][-1].items():
        if isinstance(value, float):
            assert resumed["val"][-1][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def architecture(run_dir) -> dict:
    saved = json.loads((run_dir / "args.json").read_text())
    return {key: saved.get(key) for key in ARCH_KEYS}


def copy_of_run(trained_runs, tmp_path, run="ccol"):
    """A private copy of a trained run (2 epochs), to resume without touching the shared fixture."""
    shutil.copytree(
        trained_runs / run, tmp_path / run, ignore=shutil.ignore_patterns("visualization")
    )
    return tmp_path / run


def test_nan_audio_stops_training_naming_the_file_and_keeps_the_run(
    trained_runs, tiny_data_root, tmp_path
):
    run_dir = copy_of_run(trained_runs, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(tiny_data_root, data, ignore=shutil.ignore_patterns("videos"))
    wavs = [nan_wav(data, video) for video in read_index(data / "train.csv")]
    before = file_digests(run_dir)

    with pytest.raises(AssertionError) as failure:
        main_py(
            "--stage",
            "ccol",
            "--id",
            "ccol",
            "--num_epoch",
            "3",
            "--resume",
            ckpt=tmp_path,
            data_root=data,
        )
    message = str(failure.value)
    assert "command failed (1)" in message and "Traceback" not in message
    assert "holds NaN or inf samples" in message and any(wav in message for wav in wavs)
    after = file_digests(run_dir)
    for name in ("checkpoint_latest.pt", "checkpoint_best.pt", "history.json"):
        assert after[name] == before[name], f"{name} changed after the failed epoch"
    assert checkpoints.load(str(run_dir / "checkpoint_latest.pt"))["epoch"] == 2


def test_resume_with_a_broken_or_foreign_checkpoint_is_a_clear_error(
    trained_runs, tiny_data_root, tmp_path
):
    run_dir = copy_of_run(trained_runs, tmp_path)
    common = dict(ckpt=tmp_path, data_root=tiny_data_root)
    arch_before = architecture(run_dir)
    with pytest.raises(
        AssertionError, match=r"trained with another configuration .*'ngf': \(8, 16\)"
    ):
        main_py(
            "--stage",
            "ccol",
            "--id",
            "ccol",
            "--num_epoch",
            "3",
            "--resume",
            "--ngf",
            "16",
            **common,
        )
    # The refused resume must not rewrite the run's configuration, or evaluation builds the
    # wrong nets.
    assert architecture(run_dir) == arch_before

    latest = run_dir / "checkpoint_latest.pt"
    data = latest.read_bytes()
    latest.write_bytes(data[: len(data) // 2])
    with pytest.raises(AssertionError, match="checkpoint_latest.pt is unreadable") as failure:
        main_py("--stage", "ccol", "--id", "ccol", "--num_epoch", "3", "--resume", **common)
    assert "copy" in str(failure.value) and "another --id" in str(failure.value)
