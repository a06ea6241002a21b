"""The networks of CCoL, Sound of Pixels and Co-Separation, built by name from a run's options."""

from __future__ import annotations

from collections.abc import Iterable

import torch.nn as nn

from dataset.layout import CLASS_TO_ID

from .audio_net import UNet, VGGishGround
from .classifier_net import SpectrogramClassifier
from .grounding_net import GroundingHead
from .synthesizer_net import InnerProd
from .vision_net import NO_WEIGHTS, ResNet18Dilated, ResNet18Ground


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `net` (only those with requires_grad when `trainable_only`)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


def build_nets(args, names: Iterable[str], starting_weights: bool = True) -> nn.ModuleDict:
    """The nets `names` (e.g. stages.STAGE_NETS[stage]) as the options `args` describe them.

    starting_weights: the ResNet-18 trunks load --weights_imagenet; False where a checkpoint
    replaces every weight (evaluation, inference), which then needs no ImageNet file. Loading a
    previous stage's weights is the caller's job, and so is saying which weights the ResNets end
    up with (training.log_visual_weights).
    """
    visual = args.weights_imagenet if starting_weights else NO_WEIGHTS
    width, channels = args.vis_width, args.num_channels
    constructors = {
        "sound_ground": lambda: VGGishGround(width=args.vggish_width, init=args.sound_ground_init),
        "frame_ground": lambda: ResNet18Ground(width=width, pool=args.img_pool, weights=visual),
        "grounding": lambda: GroundingHead(
            audio_dim=8 * args.vggish_width,
            visual_dim=8 * width,
            init_std=args.grounding_init_std,
        ),
        "sound": lambda: UNet(
            levels=args.unet_levels, ngf=args.ngf, fc_dim=channels, init=args.sound_init
        ),
        "frame": lambda: ResNet18Dilated(
            width=width, fc_dim=channels, pool=args.img_pool, weights=visual
        ),
        "synthesizer": lambda: InnerProd(fc_dim=channels),
        # Co-Separation's classifier: the visual nets' ResNet-18 width and starting weights.
        "classifier": lambda: SpectrogramClassifier(len(CLASS_TO_ID), width=width, weights=visual),
    }
    unknown = sorted(set(names) - constructors.keys())
    if unknown:
        raise ValueError(f"unknown nets {unknown}, expected some of {sorted(constructors)}")
    return nn.ModuleDict({name: constructors[name]() for name in names})
