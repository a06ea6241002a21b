"""Past one machine: the launchers pass torchrun's multi-node settings through. Two "nodes" of one
process each, meeting on 127.0.0.1, train exactly as one node of two processes (which
test_distributed.py shows equal to one process on the same global batch)."""

import json
import os
import socket
import subprocess

import pytest
from conftest import REPO, TINY_ARGS

pytestmark = pytest.mark.slow  # four training processes under torchrun


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(ckpt, data_root, run_id, **env):
    """scripts/train_grd.sh with the tiny configuration, started (not waited for)."""
    return subprocess.Popen(
        ["bash", "scripts/train_grd.sh", *TINY_ARGS, "--num_epoch", "1", "--num_val", "4"],
        cwd=REPO,
        env={
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "CKPT": str(ckpt),
            "DATA_ROOT": str(data_root),
            "ID": run_id,
            **env,
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc, timeout=600) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-4000:]


def losses(run_dir) -> list[dict]:
    """Each epoch's mean training losses."""
    history = json.loads((run_dir / "history.json").read_text())
    return [{k: v for k, v in e.items() if k not in ("epoch", "lr")} for e in history["train"]]


def test_two_nodes_of_one_process_train_as_one_node_of_two(tiny_data_root, tmp_path):
    one_node = launch(tmp_path, tiny_data_root, "one_node", NUM_GPUS="2")
    finish(one_node)
    port = str(free_port())
    nodes = [
        launch(
            tmp_path,
            tiny_data_root,
            "two_nodes",
            NUM_GPUS="1",
            NNODES="2",
            NODE_RANK=str(rank),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=port,
        )
        for rank in (0, 1)
    ]
    for node in nodes:
        finish(node)
    reference, multi = losses(tmp_path / "one_node"), losses(tmp_path / "two_nodes")
    assert reference and [e.keys() for e in reference] == [e.keys() for e in multi]
    for ref, got in zip(reference, multi):
        for key in ref:
            assert got[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-7), key
    log = (tmp_path / "two_nodes" / "train.log").read_text()
    assert "world size 2" in log, log[:2000]


def test_a_second_node_without_its_rank_or_address_is_refused(tmp_path):
    proc = launch(tmp_path, tmp_path, "x", NNODES="2", NODE_RANK="", MASTER_ADDR="")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "set NODE_RANK on each node" in out
