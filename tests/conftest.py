"""Shared fixtures: a tiny synthetic MUSIC root built by the real preprocessing scripts, and tiny
trained GRD -> COL -> CCoL runs on it (built once per test session)."""

import multiprocessing
import os
import subprocess
import sys

import pytest

from arguments import TINY

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Worker pools and loader workers that tests start in this process come from a fork server, not
# from this process: after earlier tests it holds torch and loader threads, and a child forked
# while one of them held a lock waits on it for ever (the suite hung so in CI). Python 3.14 makes
# this the default on Linux; the scripts' own processes are fresh and keep fork.
multiprocessing.set_start_method("forkserver", force=True)

# The shared tiny configuration (arguments.TINY) with a batch, epoch and logging for short runs.
# How the tiny runs run (a few small batches, no loader workers), whatever their sizes.
TINY_RUN = ["--batch_size", "4", "--dup_trainset", "2", "--workers", "0", "--num_vis", "2",
            "--disp_iter", "2", "--test_clips", "1"]  # fmt: skip
TINY_ARGS = [*TINY, *TINY_RUN, "--lr_steps", "100"]


def run(cmd, **kw):
    """Run a command from the repo root; fail the test with its output when it fails."""
    # One thread per process: on a 2-core machine torch's thread pool only fights the data worker.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise AssertionError(
            f"command failed ({proc.returncode}): {' '.join(map(str, cmd))}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def main_py(*args, ckpt, data_root, **kw):
    return run(
        [
            sys.executable,
            "main.py",
            *TINY_ARGS,
            "--ckpt",
            str(ckpt),
            "--data_root",
            str(data_root),
            *map(str, args),
        ],
        **kw,
    )


# Tests that need these session fixtures build data with the real scripts and train: end to end.
END_TO_END_FIXTURES = {"tiny_data_root", "trained_runs"}


def pytest_collection_modifyitems(items):
    for item in items:
        if END_TO_END_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    """4 classes x 3 videos of 9-10 s, prepared as a user prepares a root: generation,
    extraction, indexing and detection by the real scripts (make_synthetic_music.py --prepare)."""
    root = tmp_path_factory.mktemp("music") / "data"
    run(
        [sys.executable, "scripts/make_synthetic_music.py", "--prepare", "--out", root]
        + ["--videos-per-class", "3", "--seed", "7", "--index-seed", "1", "--sep-per-video", "2"]
        + ["--classes", "cello", "flute", "trumpet", "xylophone", "--min-sec", "9"]
        + ["--max-sec", "10", "--width", "128", "--height", "96", "--workers", "2"]
    )
    return root


@pytest.fixture(scope="session")
def trained_runs(tiny_data_root, tmp_path_factory):
    """GRD -> COL -> CCoL (2 epochs each) and SoP on the tiny root; returns the ckpt folder."""
    ckpt = tmp_path_factory.mktemp("ckpt")
    common = dict(ckpt=ckpt, data_root=tiny_data_root)
    main_py("--stage", "grd", "--id", "grd", "--num_epoch", "2", **common)
    main_py(
        "--stage", "col", "--id", "col", "--num_epoch", "2", "--init_from", ckpt / "grd", **common
    )
    main_py(
        "--stage", "ccol", "--id", "ccol", "--num_epoch", "2", "--init_from", ckpt / "col", **common
    )
    main_py("--stage", "sop", "--id", "sop", "--num_epoch", "1", **common)
    return ckpt
