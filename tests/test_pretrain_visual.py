"""The demo's visual pretraining: a trunk of the demo's width, loaded frozen by every stage."""

import json
import sys

import torch
from conftest import TINY_ARGS, run

from arguments import parse_args
from training import build_nets, frozen_modules


def test_pretrained_trunk_loads_frozen_into_both_resnets(tiny_data_root, tmp_path):
    out = tmp_path / "vis" / "resnet18.pth"
    run(
        [
            sys.executable,
            "scripts/pretrain_visual.py",
            "--root",
            tiny_data_root,
            "--out",
            out,
            "--width",
            "8",
            "--epochs",
            "2",
            "--dup",
            "2",
            "--batch-size",
            "4",
            "--aud-len",
            "4095",
        ]
    )
    report = json.loads((tmp_path / "vis" / "resnet18.json").read_text())
    assert [h["epoch"] for h in report["history"]] == [1, 2]
    assert all(0 <= h["val_acc"] <= 1 and h["loss"] > 0 for h in report["history"])
    assert report["best_val_acc"] == max(h["val_acc"] for h in report["history"])
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
    assert args.train_visual == "no"
    nets = build_nets(args)
    for net in (nets["frame_ground"], nets["frame"]):
        torch.testing.assert_close(net.features[0].weight, state["conv1.weight"])
        torch.testing.assert_close(
            net.features[4][0].bn1.running_mean, state["layer1.0.bn1.running_mean"]
        )
    frozen = frozen_modules(nets, args)
    assert nets["frame_ground"] in frozen and nets["frame"].features in frozen
