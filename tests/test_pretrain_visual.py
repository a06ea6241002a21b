"""The demo's visual pretraining: a trunk of the demo's width, loaded frozen by every stage."""

import json
import sys

import torch
from conftest import TINY_ARGS, run

from arguments import parse_args
from scripts import pretrain_visual
from training import build_nets, frozen_modules

# A tiny image set and schedule: 11 scenes (one per instrument class) filmed once, 2 epochs.
TINY_PRETRAIN = ["--scenes", "11", "--scene-frames", "1", "--epochs", "2", "--batch-size", "8",
                 "--width", "8"]  # fmt: skip


def test_pretrained_trunk_loads_frozen_into_both_resnets(tiny_data_root, tmp_path):
    out = tmp_path / "vis" / "resnet18.pth"
    cmd = [sys.executable, "scripts/pretrain_visual.py", "--root", tiny_data_root, "--out", out,
           "--source", "both", *TINY_PRETRAIN]  # fmt: skip
    run(cmd)
    report = json.loads((tmp_path / "vis" / "resnet18.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert all(0 <= h["val_acc"] <= 1 and h["loss"] > 0 for h in report["history"])
    trained_on = report["trained_on"]
    assert trained_on["source"] == "both" and trained_on["train_crops"] > 0
    assert trained_on["image_set"]["crops"] >= 11 and trained_on["image_set"]["render_seconds"] > 0
    for split in ("val", "test"):
        accuracy = report["accuracy"][split]
        assert 0 <= accuracy["all"] <= accuracy["instruments"] <= 1 and accuracy["crops"] > 0
    assert report["accuracy"]["val"]["all"] == report["history"][-1]["val_acc"]
    # A second run reuses the rendered set.
    run(cmd)
    report = json.loads((tmp_path / "vis" / "resnet18.json").read_text())
    assert report["trained_on"]["image_set"]["render_seconds"] == 0
    state = torch.load(out, weights_only=True)
    assert "conv1.weight" in state and not any(k.startswith("fc.") for k in state)

    args = parse_args(
        [
            *TINY_ARGS,
            "--stage",
            "ccol",
            "--data_root",
            str(tiny_data_root),
            "--weights_imagenet",
            str(out),
        ]
    )
    assert args.train_resnets is False
    nets = build_nets(args)
    for net in (nets["frame_ground"], nets["frame"]):
        torch.testing.assert_close(net.features[0].weight, state["conv1.weight"])
        torch.testing.assert_close(
            net.features[4][0].bn1.running_mean, state["layer1.0.bn1.running_mean"]
        )
    frozen = frozen_modules(nets, args)
    assert nets["frame_ground"] in frozen and nets["frame"].features in frozen


def test_pretraining_is_deterministic(tiny_data_root, tmp_path):
    states = []
    for name in ("a", "b"):  # each run renders its own image set
        out = tmp_path / name / "resnet18.pth"
        argv = ["--root", str(tiny_data_root), "--out", str(out), "--seed", "5", *TINY_PRETRAIN]
        assert pretrain_visual.main(argv) == 0
        states.append(torch.load(out, weights_only=True))
    assert states[0].keys() == states[1].keys()
    for key, value in states[0].items():
        torch.testing.assert_close(states[1][key], value, rtol=0, atol=0, msg=key)
