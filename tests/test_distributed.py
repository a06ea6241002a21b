"""DistributedDataParallel on CPU (gloo, 2 processes): steps on two halves of a batch equal steps
on the whole batch, and training.make_loader shards train and evaluation sets without duplicates.

What is compared, and why BatchNorm runs in eval mode: in train mode each replica normalises with
the statistics of its own half batch, so the replicas' losses legitimately differ from one process
on the whole batch. With BatchNorm in eval mode every loss term of GRD, CCoL and SoP is a mean of
per-sample terms, so the mean of the two half-batch losses is the whole-batch loss and DDP's
averaged gradient is the whole-batch gradient. COL is left out: its mixture MIL term takes the
minimum of batch means, which no split of the batch preserves.
"""

import datetime
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
from test_stages import fake_batch, tiny_args, tiny_stage

import training
import utils
from metrics import one_cpu_thread
from stages import STAGE_NETS, STAGES, StageConfig
from training import build_nets, frozen_modules, param_groups

# Forks worker processes. One xdist worker runs the whole module: ddp_results is built once.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ddp")]

WORLD_SIZE = 2
BATCH = 4  # global batch: 2 samples per rank
# A second step also checks that every trainable parameter joins the graph: DDP (without
# find_unused_parameters, as main.py builds it) fails on the forward after a step that missed one.
STEPS = 2
STAGES_COMPARED = ("grd", "ccol", "sop")
EVAL_SET = 11  # odd on purpose: sharding must neither pad nor drop evaluation samples
TRAIN_SET = 12
GROUNDING_NETS = set(STAGE_NETS["grd"])
SEPARATION_NETS = set(STAGE_NETS["sop"])


def batchnorm_in_eval(model: nn.Module) -> None:
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


def state(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train_steps(stage: str, batch_slice: slice, wrap=None) -> tuple[list, dict, dict]:
    """(losses of each step, parameters before, parameters after) STEPS SGD steps of a freshly
    seeded stage on part of the fixed batch."""
    torch.manual_seed(0)
    model, args = tiny_stage(stage, frozen=True)
    nets = model.nets
    # SGD, whose step is linear in the gradient: Adam's first steps are lr * sign(gradient), so a
    # gradient that is zero up to rounding (a dead ReLU's) moves by +-lr in either run, which
    # measures float rounding, not whether DDP averaged the right gradients.
    optimizer = torch.optim.SGD(param_groups(nets, args), momentum=0.9)
    before = state(model)
    wrapped = wrap(model) if wrap else model
    wrapped.train()
    batchnorm_in_eval(model)  # see the module docstring
    batch = {k: v[batch_slice] for k, v in fake_batch(args, batch_size=BATCH, seed=1).items()}
    history = []
    for _ in range(STEPS):
        losses, _ = wrapped(batch)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append({k: v.detach() for k, v in losses.items()})
    return history, before, state(model)


class IndexedSamples(torch.utils.data.Dataset):
    """Samples that only say which index they are, in the dict layout collate expects."""

    def __init__(self, length: int):
        self.length = length

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return {"index": torch.tensor(index), "infos": [str(index)]}


def shard_indices(train: bool, length: int) -> list[int]:
    args = tiny_args("ccol", "--workers", "0", "--batch_size", "2")
    loader = training.make_loader(IndexedSamples(length), args, torch.device("cpu"), train=train)
    return [i for batch in loader for i in batch["index"].tolist()]


def uneven_shard_means(rank: int) -> tuple[dict, int]:
    """Averager.reduce over evaluation-like shards of 6 and 5 mixtures (rank 0's values are
    tensors, as training accumulates them)."""
    averager = utils.Averager()
    if rank == 0:
        averager.add({"loss": torch.tensor(1.0), "stat": torch.tensor(3.0)}, 6)
    else:
        averager.add({"loss": 2.0, "stat": 5.0}, 5)
    total = averager.reduce()
    return total.means(), total.count


def epoch_with_a_bad_batch_on_one_rank(rank: int) -> None:
    """train_one_epoch under DDP where rank 1's second batch was wholly skipped (None): both ranks
    must skip that step and finish the epoch (a lone skip left rank 0 waiting in the all-reduce)."""
    args = tiny_args("grd", "--disp_iter", "100", "--batch_size", "4")
    nets = build_nets(args)
    stage = STAGES["grd"](nets, StageConfig.from_args(args), frozen_modules(nets, args))
    model = nn.parallel.DistributedDataParallel(stage)
    optimizer = torch.optim.SGD(param_groups(nets, args), momentum=0.9)
    batch = fake_batch(args, batch_size=2, seed=rank)
    loader = [dict(batch), None if rank == 1 else dict(batch), dict(batch)]
    loop = training.LoopSettings.from_args(args)
    training.train_one_epoch(model, loader, optimizer, loop, torch.device("cpu"), epoch=0)


def run_rank(rank: int, store: str, out_dir: str) -> None:
    # A collective that one rank never joins fails after the timeout instead of hanging the tests.
    dist.init_process_group(
        "gloo",
        init_method=f"file://{store}",
        rank=rank,
        world_size=WORLD_SIZE,
        timeout=datetime.timedelta(seconds=120),
    )
    try:
        torch.set_num_threads(1)
        per_rank = BATCH // WORLD_SIZE
        results = {}
        for stage in STAGES_COMPARED:
            history, _, params = train_steps(
                stage,
                slice(rank * per_rank, (rank + 1) * per_rank),
                wrap=nn.parallel.DistributedDataParallel,
            )
            for losses in history:
                for value in losses.values():
                    dist.all_reduce(value)
                    value /= WORLD_SIZE
            results[stage] = (history, params)
        shards = {"eval": shard_indices(False, EVAL_SET), "train": shard_indices(True, TRAIN_SET)}
        gathered = [None] * WORLD_SIZE
        dist.all_gather_object(gathered, shards)
        averaged = uneven_shard_means(rank)
        epoch_with_a_bad_batch_on_one_rank(rank)
        finished = [None] * WORLD_SIZE
        dist.all_gather_object(finished, rank)
        if rank == 0:
            torch.save(
                {
                    "stages": results,
                    "shards": gathered,
                    "averaged": averaged,
                    "finished_bad_batch_epoch": finished,
                },
                os.path.join(out_dir, "rank0.pt"),
            )
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("ddp")
    # Not forked from this process: after the suite's earlier tests it holds OpenMP and loader
    # threads, and a child forked while one of them held a lock waits on it for ever (the suite
    # hung here). A fork server is a fresh process: the ranks are forked from it, importing torch
    # once, not once per rank as spawned processes would.
    mp.start_processes(
        run_rank,
        args=(str(out_dir / "store"), str(out_dir)),
        nprocs=WORLD_SIZE,
        start_method="forkserver",
    )
    return torch.load(out_dir / "rank0.pt", weights_only=False)


@pytest.mark.parametrize("stage", STAGES_COMPARED)
def test_ddp_steps_on_two_halves_equal_steps_on_the_whole_batch(ddp_results, stage):
    # Two processes with two threads each on a small CPU stall for seconds in thread barriers.
    with one_cpu_thread():
        history, before, after = train_steps(stage, slice(0, BATCH))
    ddp_history, ddp_after = ddp_results["stages"][stage]
    for step, (ddp_losses, losses) in enumerate(zip(ddp_history, history)):
        assert ddp_losses.keys() == losses.keys()
        for name in losses:
            torch.testing.assert_close(
                ddp_losses[name], losses[name], atol=1e-5, rtol=1e-5, msg=f"{name} {step}"
            )
    assert ddp_after.keys() == after.keys()
    for name in after:
        torch.testing.assert_close(ddp_after[name], after[name], atol=1e-5, rtol=1e-5, msg=name)
    # Not vacuous: the steps moved the weights of the nets trained. (At initialisation CCoL's hard
    # grounding gate can close every mask, which then passes no gradient to the separation nets.)
    moved = {name.split(".")[1] for name in after if not torch.equal(after[name], before[name])}
    assert SEPARATION_NETS <= moved if stage == "sop" else GROUNDING_NETS <= moved, moved


def test_eval_shards_cover_every_sample_once(ddp_results):
    shards = [ranks["eval"] for ranks in ddp_results["shards"]]
    assert sorted(i for shard in shards for i in shard) == list(range(EVAL_SET))
    assert [len(shard) for shard in shards] == [6, 5]  # uneven, but no padded duplicate


def test_averager_weights_every_rank_by_its_samples(ddp_results):
    means, count = ddp_results["averaged"]
    assert count == 11
    assert means == pytest.approx(
        {"loss": (6 * 1.0 + 5 * 2.0) / 11, "stat": (6 * 3.0 + 5 * 5.0) / 11}
    )


def test_train_shards_are_disjoint_and_cover_the_set(ddp_results):
    shards = [ranks["train"] for ranks in ddp_results["shards"]]
    assert sorted(shards[0] + shards[1]) == list(range(TRAIN_SET))
    assert len(shards[0]) == len(shards[1])


def test_a_batch_skipped_on_one_rank_skips_the_step_on_every_rank(ddp_results):
    assert ddp_results["finished_bad_batch_epoch"] == [0, 1]
