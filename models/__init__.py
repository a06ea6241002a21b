"""Network builders: architecture name -> constructor for every net of CCoL, Sound of Pixels and
Co-Separation."""

from __future__ import annotations

from functools import partial

import torch.nn as nn

from .audio_net import UNet, VGGishGround
from .classifier_net import SpectrogramClassifier
from .criterion import LOSSES
from .grounding_net import GroundingHead
from .synthesizer_net import InnerProd
from .vision_net import NO_WEIGHTS, ResNet18Dilated, ResNet18Ground

SOUND_GROUND_NETS = {"vggish": VGGishGround}
FRAME_GROUND_NETS = {"resnet18": ResNet18Ground}
GROUNDING_NETS = {"base": GroundingHead}
# 'unetK' fixes the depth as the reference's names do; 'unet' takes it from `levels`.
SOUND_NETS = {"unet": UNet, **{f"unet{k}": partial(UNet, levels=k) for k in (5, 6, 7)}}
FRAME_NETS = {"resnet18dilated": ResNet18Dilated}
SYNTHESIZERS = {"linear": InnerProd}
CLASSIFIERS = {"resnet18": SpectrogramClassifier}


def _lookup(registry: dict, arch: str, role: str):
    if arch not in registry:
        raise ValueError(
            f"unknown {role} architecture '{arch}', expected one of {sorted(registry)}"
        )
    return registry[arch]


def count_parameters(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of `net` (only those with requires_grad when `trainable_only`)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only)


class ModelBuilder:
    """Builds each net from its architecture name.

    Loading a previous stage's weights is the caller's job, and so is saying which weights the
    ResNets end up with (training.log_visual_weights).
    """

    @staticmethod
    def build_sound_ground(
        arch: str = "vggish", width: int = 64, init: str = "default"
    ) -> nn.Module:
        return _lookup(SOUND_GROUND_NETS, arch, "sound_ground")(width=width, init=init)

    @staticmethod
    def build_frame_ground(
        arch: str = "resnet18",
        width: int = 64,
        weights_imagenet: str = NO_WEIGHTS,
        pool: str = "maxpool",
    ) -> nn.Module:
        """weights_imagenet: 'imagenet' (torchvision's cache), a state_dict path, or 'none'."""
        net_class = _lookup(FRAME_GROUND_NETS, arch, "frame_ground")
        return net_class(width=width, pool=pool, weights=weights_imagenet)

    @staticmethod
    def build_grounding(
        arch: str = "base", audio_dim: int = 512, visual_dim: int = 512, init_std: float = 1e-4
    ) -> nn.Module:
        return _lookup(GROUNDING_NETS, arch, "grounding")(
            audio_dim=audio_dim, visual_dim=visual_dim, init_std=init_std
        )

    @staticmethod
    def build_sound(
        arch: str = "unet7",
        ngf: int = 64,
        fc_dim: int = 32,
        levels: int | None = None,
        init: str = "default",
    ) -> nn.Module:
        net_class = _lookup(SOUND_NETS, arch, "sound")
        named_levels = getattr(net_class, "keywords", {}).get("levels")
        if levels is not None and named_levels is not None and levels != named_levels:
            raise ValueError(
                f"sound architecture '{arch}' has {named_levels} levels but levels={levels} "
                f"was given; use arch 'unet' to choose the depth with `levels`"
            )
        depth = {} if levels is None else {"levels": levels}
        return net_class(ngf=ngf, fc_dim=fc_dim, init=init, **depth)

    @staticmethod
    def build_frame(
        arch: str = "resnet18dilated",
        width: int = 64,
        fc_dim: int = 32,
        pool: str = "maxpool",
        weights_imagenet: str = NO_WEIGHTS,
    ) -> nn.Module:
        net_class = _lookup(FRAME_NETS, arch, "frame")
        return net_class(width=width, fc_dim=fc_dim, pool=pool, weights=weights_imagenet)

    @staticmethod
    def build_synthesizer(arch: str = "linear", fc_dim: int = 32) -> nn.Module:
        return _lookup(SYNTHESIZERS, arch, "synthesizer")(fc_dim=fc_dim)

    @staticmethod
    def build_classifier(
        num_classes: int,
        arch: str = "resnet18",
        width: int = 64,
        weights_imagenet: str = NO_WEIGHTS,
    ) -> nn.Module:
        """Co-Separation's classifier of separated spectrograms; weights as build_frame's."""
        net_class = _lookup(CLASSIFIERS, arch, "classifier")
        return net_class(num_classes=num_classes, width=width, weights=weights_imagenet)

    @staticmethod
    def build_criterion(arch: str = "l1", reduction: str = "none") -> nn.Module:
        return _lookup(LOSSES, arch, "loss")(reduction=reduction)
