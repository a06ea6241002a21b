"""Co-Separation's audio classifier: which object class a separated spectrogram sounds like."""

from __future__ import annotations

import torch
import torch.nn as nn

from .vision_net import ResNet18, has_weights, load_imagenet


class SpectrogramClassifier(nn.Module):
    """ResNet-18 on a one-channel log spectrogram, global max pool, linear layer to the classes.

    As Co-Separation's classifier (Gao and Grauman 2019): a ResNet-18 whose first convolution is
    replaced by a one-channel one, starting from the visual nets' ResNet-18 weights when there are
    any (CoSep's starts from ImageNet's), max-pooled (its `classifier_pool`) before the linear
    layer. Narrower widths only serve the CPU demo.

    Args:
        num_classes: C, the object classes of the detector (layout.CLASS_TO_ID).
        width: ResNet base width (64 = torchvision's resnet18).
        weights: 'imagenet' (torchvision's cache), a state_dict path, or 'none' / None (random);
            every layer but the replaced first convolution loads them.

    Shape:
        log_spec (M, 1, F, T) -> (M, C) class logits; F and T at least 32 (the trunk's stride).
    """

    def __init__(self, num_classes: int, width: int = 64, weights: str | None = None):
        super().__init__()
        trunk = ResNet18(width)
        if has_weights(weights):
            load_imagenet(trunk, weights)
        # A spectrogram has one channel: the RGB filters of conv1 have no counterpart to keep.
        trunk.conv1 = nn.Conv2d(1, width, kernel_size=7, stride=2, padding=3, bias=False)
        nn.init.kaiming_normal_(trunk.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.features = nn.Sequential(*list(trunk.children())[:-1])  # conv1 ... layer4
        self.fc = nn.Linear(8 * width, num_classes)
        self.num_classes = num_classes

    def forward(self, log_spec: torch.Tensor) -> torch.Tensor:
        feat = self.features(log_spec)  # (M, 8w, F/32, T/32)
        return self.fc(torch.amax(feat, dim=(2, 3)))  # (M, C)
