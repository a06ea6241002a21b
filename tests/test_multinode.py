"""Past one machine: the launchers pass torchrun's multi-node settings through. Two "nodes" of one
process each, meeting on 127.0.0.1 by either rendezvous, train exactly as one node of two
processes (which test_distributed.py shows equal to one process on the same global batch)."""

import json
import os
import socket
import subprocess

import pytest
from conftest import REPO, TINY_ARGS

# Four training processes under torchrun. One xdist worker runs the whole module: the reference
# run (one_node) is trained once, and two launches never share the machine.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("multinode")]


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


@pytest.fixture(scope="module")
def one_node(tiny_data_root, tmp_path_factory):
    """The reference: one node of two processes (torchrun --standalone)."""
    ckpt = tmp_path_factory.mktemp("one_node")
    finish(launch(ckpt, tiny_data_root, "one_node", NUM_GPUS="2"))
    return losses(ckpt / "one_node")


def two_nodes(ckpt, data_root, run_id, rendezvous: str, ckpts=None) -> list:
    """Two one-process nodes on 127.0.0.1 meeting by `rendezvous`: static (NODE_RANK,
    MASTER_ADDR/PORT) or c10d (RDZV_ENDPOINT; torchrun numbers the nodes). `ckpts`: each node's
    CKPT (default `ckpt` for both). Returns the started launchers."""
    endpoint = {"static": {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port())},
                "c10d": {"RDZV_ENDPOINT": f"127.0.0.1:{free_port()}"}}[rendezvous]  # fmt: skip
    return [
        launch(
            (ckpts or (ckpt, ckpt))[rank],
            data_root,
            run_id,
            NUM_GPUS="1",
            NNODES="2",
            NODE_RANK=str(rank),
            **endpoint,
        )
        for rank in (0, 1)
    ]


@pytest.mark.parametrize("rendezvous", ["static", "c10d"])
def test_two_nodes_of_one_process_train_as_one_node_of_two(
    one_node, tiny_data_root, tmp_path, rendezvous
):
    for node in two_nodes(tmp_path, tiny_data_root, "two_nodes", rendezvous):
        finish(node)
    reference, multi = one_node, losses(tmp_path / "two_nodes")
    assert reference and [e.keys() for e in reference] == [e.keys() for e in multi]
    for ref, got in zip(reference, multi):
        for key in ref:
            assert got[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-7), key
    log = (tmp_path / "two_nodes" / "train.log").read_text()
    assert "world size 2" in log, log[:2000]


def test_a_run_folder_that_the_nodes_do_not_share_is_refused(tiny_data_root, tmp_path):
    """Each rank reads the checkpoints rank 0 writes: nodes that see two folders stop, all of
    them, naming the cause, before any step."""
    ckpts = (tmp_path / "node0", tmp_path / "node1")
    nodes = two_nodes(tmp_path, tiny_data_root, "run", "static", ckpts=ckpts)
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert all(node.returncode != 0 for node in nodes), outputs
    assert any("is not the same folder on every node" in out for out in outputs), outputs
    assert not (ckpts[0] / "run" / "checkpoint_latest.pt").exists()


def test_a_second_node_without_its_rank_or_address_is_refused(tmp_path):
    proc = launch(tmp_path, tmp_path, "x", NNODES="2", NODE_RANK="", MASTER_ADDR="")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "set NODE_RANK on each node" in out
