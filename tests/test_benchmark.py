"""scripts/benchmark.py: the quick CPU run measures and prints every figure; its parts run right."""

import json
import os
import subprocess
import sys

import pytest
import torch

import throughput
from arguments import parse_args
from scripts import benchmark
from training import train_step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Both crop kinds (top box, full frame) and the evaluated stage; GRD and COL add only time here.
STAGES = ("ccol", "sop")


@pytest.mark.slow
def test_quick_run_prints_every_figure_and_writes_them_to_json(tmp_path):
    output = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            sys.executable,
            "scripts/benchmark.py",
            "--quick",
            "--stages",
            *STAGES,
            "--json",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = proc.stdout[proc.stdout.index("measurement") :]
    expected = (
        [f"(a) loader {variant} samples/s" for variant in ("jpeg", "cache")]
        + [f"(b) step {stage} mixtures/s" for stage in STAGES]
        + [
            f"(c) end-to-end {stage} {variant} mixtures/s"
            for stage in STAGES
            for variant in ("jpeg", "cache")
        ]
        + [f"(d) eval metrics {backend}" for backend in ("fast", "mir_eval")]
        + [f"(d) eval 260 mixtures {backend}" for backend in ("fast", "mir_eval")]
    )
    for label in expected:
        assert label in table, label
    assert "n/a" not in table
    report = json.loads(output.read_text())
    assert report["config"]["sizes"] == "tiny" and report["config"]["device"] == "cpu"
    assert (
        report["loader"]["cache"]["samples_per_s"] > 0
        and report["loader"]["jpeg"]["samples_per_s"] > 0
    )
    assert all(report["step"][stage]["mixtures_per_s"] > 0 for stage in STAGES)
    assert all(
        report["end_to_end"][stage][variant]["mixtures_per_s"] > 0
        for stage in STAGES
        for variant in ("jpeg", "cache")
    )
    assert (
        report["eval"]["metrics_mir_eval_s_per_mixture"] > 0
        and report["eval"]["metrics_fast_s_per_mixture"] > 0
    )


@pytest.mark.parametrize("stage", ["grd", "ccol"])
def test_channels_last_steps_give_the_losses_of_the_default_layout(stage, one_thread):
    cpu = torch.device("cpu")
    losses = []
    for channels_last in (False, True):
        args = parse_args(
            benchmark.SIZES["tiny"]
            + ["--stage", stage, "--data_root", "/nonexistent"]
            + ["--channels_last"] * channels_last
        )
        torch.manual_seed(0)
        model, optimizer = throughput.stage_and_optimizer(args, cpu)
        batch = throughput.synthetic_batch(args, 2, cpu)
        losses.append(
            [
                float(train_step(model, batch, optimizer, cpu, args.amp)["total"].detach())
                for _ in range(2)
            ]
        )
    # Equal up to float summation order, which an Adam step (about lr x sign(grad)) amplifies.
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


def test_gpu_sampler_is_inert_without_cuda():
    with throughput.GpuUtilisation(torch.device("cpu")) as gpu:
        pass
    assert gpu.command is None and gpu.mean is None
