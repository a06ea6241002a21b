"""training.py: the one log line of which weights the ResNet-18 trunks hold."""

import logging

import pytest
from test_stages import tiny_args

from training import build_nets, log_visual_weights


@pytest.mark.parametrize(
    "flags, loaded, line",
    [
        ([], {}, "random init (--weights_imagenet none), trained"),
        (["--weights_imagenet", "vis.pth"], {}, "weights of vis.pth, frozen"),
        # An evaluation (or a resume) loads every net: nothing of the start is left to mention.
        ([], {"frame_ground": "run/best.pt", "frame": "run/best.pt"}, "weights of run/best.pt, "),
        (
            ["--weights_imagenet", "imagenet", "--vis_width", "64"],
            {"frame_ground": "grd/latest.pt"},
            "frame_ground: weights of grd/latest.pt; frame: imagenet weights, frozen",
        ),
    ],
)
def test_the_weights_are_said_once_as_loaded(flags, loaded, line, caplog):
    args = tiny_args("ccol", *flags)
    nets = build_nets(args, starting_weights=False)  # no weight file is read to name it
    with caplog.at_level(logging.INFO, logger="ccol"):
        log_visual_weights(nets, args, loaded)
    (record,) = caplog.records
    assert record.getMessage().startswith("ResNet-18 features: " + line)
    assert "random" not in record.getMessage() or not loaded


def test_stages_without_a_resnet_say_nothing(caplog):
    args = tiny_args("grd")
    with caplog.at_level(logging.INFO, logger="ccol"):
        log_visual_weights({"sound_ground": None}, args, {})
    assert not caplog.records
