"""Shared fixtures: a tiny synthetic MUSIC root built by the real preprocessing scripts, and tiny
trained GRD -> COL -> CCoL runs on it (built once per test session, whatever the number of xdist
workers), and the helpers that several test files use."""

import contextlib
import json
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from filelock import FileLock

from arguments import TINY
from dataset import layout

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Worker pools and loader workers that tests start in this process come from a fork server, not
# from this process: after earlier tests it holds torch and loader threads, and a child forked
# while one of them held a lock waits on it for ever (the suite hung so in CI). Python 3.14 makes
# this the default on Linux; the scripts' own processes are fresh and keep fork.
multiprocessing.set_start_method("forkserver", force=True)

# Under pytest-xdist (scripts/test.sh runs one worker per core) each worker computes on one thread:
# two workers of two threads each on two cores stall for seconds in thread barriers.
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
# The build thread's lock waits log at debug level; tests that capture every log record (caplog)
# must not see them.
logging.getLogger("filelock").setLevel(logging.WARNING)
if XDIST_WORKER:
    torch.set_num_threads(1)

# The shared tiny configuration (arguments.TINY) with a batch, epoch and logging for short runs.
# How the tiny runs run (a few small batches, no loader workers), whatever their sizes.
TINY_RUN = ["--batch_size", "4", "--dup_trainset", "2", "--workers", "0", "--num_vis", "2",
            "--disp_iter", "2", "--test_clips", "1"]  # fmt: skip
TINY_ARGS = [*TINY, *TINY_RUN, "--lr_steps", "100"]


def run(cmd, env=None, **kw):
    """Run a command from the repo root in `env` (default: this process's environment); fail the
    test with its output when it fails."""
    # One thread per process: on a 2-core machine torch's thread pool only fights the data worker.
    env = {**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
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


# ------------------------------------------------------------------------------ one helper per idea


@pytest.fixture
def one_thread(monkeypatch):
    """One torch thread in this process and OMP_NUM_THREADS=1 for the processes a test starts: on a
    shared 2-core machine, several threads per process spin against the other jobs, stall for
    seconds in thread barriers and make runs 4x slower (same numbers either way)."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def nan_wav(root, video) -> str:
    """Make `video`'s wav under `root` a corrupt float wav (NaN samples); returns its path."""
    wav = layout.audio_path(str(root), video.audio)
    samples, rate = sf.read(wav, dtype="float32")
    samples[::100] = np.nan
    sf.write(wav, samples, rate, subtype="FLOAT")
    return wav


@contextlib.contextmanager
def mounted_tmpfs(folder, size: str):
    """A tmpfs of `size` ("256k", "64m") mounted on the new folder `folder` for the block: a real
    disk to fill, or to remount read-only. Yields `folder`, or None where it cannot be mounted
    (mounting needs root)."""
    folder.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
            capture_output=True,
        ).returncode
        != 0
    ):
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


# ---------------------------------------------------------------------- the end-to-end fixtures

# Tests that need these session fixtures build data with the real scripts and train: end to end.
END_TO_END_FIXTURES = {"tiny_data_root", "trained_runs"}


# The modules of the longest tests (30-50 s each) go first in their tier, so that no worker is
# left running one of them alone at the end.
LONGEST_FIRST = {"test_evaluation.py", "test_smoke.py", "test_cosep.py", "test_reference_config.py"}


def needs(item, fixture: str) -> bool:
    return fixture in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    for item in items:
        if any(needs(item, fixture) for fixture in END_TO_END_FIXTURES):
            item.add_marker(pytest.mark.slow)
    # The others first, then those on the data only, then those on the trained runs: the shared
    # runs are built in the background meanwhile (see _prebuild), so that no xdist worker waits.
    # A stable sort: the same order in every worker, as xdist requires.
    items.sort(
        key=lambda item: (
            needs(item, "trained_runs"),
            needs(item, "tiny_data_root"),
            item.path.name not in LONGEST_FIRST,
        )
    )


def shared_folder(tmp_path_factory, name: str, build, env=None) -> Path:
    """A folder built once per test session by `build(folder, env)` and shared by every xdist
    worker: the first worker to get here builds it under a file lock, writing where it lies to
    NAME.json beside the workers' temporary folders; the others wait on the lock and reuse it. A
    failed build is recorded too, so that the other workers fail at once instead of building again.
    Tests must not change the folder: one that does works on its own copy."""
    base = tmp_path_factory.getbasetemp()
    marker = (base.parent if XDIST_WORKER else base) / f"{name}.json"
    with FileLock(f"{marker}.lock"):
        if not marker.exists():
            folder = tmp_path_factory.mktemp(name)
            try:
                build(folder, env)
            except BaseException as err:
                marker.write_text(json.dumps({"error": f"{type(err).__name__}: {err}"[-10000:]}))
                raise
            marker.write_text(json.dumps({"path": str(folder)}))
    built = json.loads(marker.read_text())
    if "error" in built:
        pytest.fail(f"building the shared {name} failed:\n{built['error']}", pytrace=False)
    return Path(built["path"])


def build_data(folder, env):
    """4 classes x 3 videos of 9-10 s, prepared as a user prepares a root: generation,
    extraction, indexing and detection by the real scripts (make_synthetic_music.py --prepare)."""
    run(
        [sys.executable, "scripts/make_synthetic_music.py", "--prepare", "--out", folder / "data"]
        + ["--videos-per-class", "3", "--seed", "7", "--index-seed", "1", "--sep-per-video", "2"]
        + ["--classes", "cello", "flute", "trumpet", "xylophone", "--min-sec", "9"]
        + ["--max-sec", "10", "--width", "128", "--height", "96", "--workers", "2"],
        env=env,
    )


def data_root(tmp_path_factory, env=None) -> Path:
    return shared_folder(tmp_path_factory, "music", build_data, env) / "data"


def build_runs(data):
    def build(ckpt, env):
        """GRD -> COL -> CCoL (2 epochs each) and SoP on the tiny root."""
        common = dict(ckpt=ckpt, data_root=data, env=env)
        main_py("--stage", "grd", "--id", "grd", "--num_epoch", "2", **common)
        init = ["--init_from", ckpt / "grd"]
        main_py("--stage", "col", "--id", "col", "--num_epoch", "2", *init, **common)
        init = ["--init_from", ckpt / "col"]
        main_py("--stage", "ccol", "--id", "ccol", "--num_epoch", "2", *init, **common)
        main_py("--stage", "sop", "--id", "sop", "--num_epoch", "1", **common)

    return build


def runs(tmp_path_factory, env=None) -> Path:
    return shared_folder(
        tmp_path_factory, "ckpt", build_runs(data_root(tmp_path_factory, env)), env
    )


@pytest.fixture(scope="session", autouse=True)
def _prebuild(request, tmp_path_factory):
    """Start building the shared folders that the selected tests need in a background thread, while
    the tests that need none run (they come first): the build's processes then use the core that
    this process leaves free. The environment is the session's, before any test changes it."""
    items = request.session.items
    wanted = runs if any(needs(i, "trained_runs") for i in items) else None
    if wanted is None and any(needs(i, "tiny_data_root") for i in items):
        wanted = data_root
    if wanted is not None:
        env = dict(os.environ)
        # The base temporary folder is made on first use, which is not thread-safe: make it here,
        # before the build thread and the first test's tmp_path race for it.
        tmp_path_factory.getbasetemp()

        def build():
            with contextlib.suppress(BaseException):  # recorded: the fixture reports it
                wanted(tmp_path_factory, env)

        threading.Thread(target=build, name="prebuild", daemon=True).start()


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory):
    """4 classes x 3 videos of 9-10 s, prepared by the real scripts (see build_data)."""
    return data_root(tmp_path_factory)


@pytest.fixture(scope="session")
def trained_runs(tiny_data_root, tmp_path_factory):
    """GRD -> COL -> CCoL (2 epochs each) and SoP on the tiny root; returns the ckpt folder."""
    return runs(tmp_path_factory)
