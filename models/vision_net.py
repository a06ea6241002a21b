"""Visual nets: ResNet-18 trunks for grounding (pooled) and separation (dilated), ref. §2.2, §2.5."""
from __future__ import annotations

import os

import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock, conv1x1

# torchvision's ImageNet ResNet-18 file (IMAGENET1K_V1), as cached by torch.hub.
IMAGENET_RESNET18_FILE = "resnet18-f37072fd.pth"


def _stage(in_ch: int, out_ch: int, stride: int) -> nn.Sequential:
    downsample = None
    if stride != 1 or in_ch != out_ch:
        downsample = nn.Sequential(conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
    return nn.Sequential(BasicBlock(in_ch, out_ch, stride, downsample), BasicBlock(out_ch, out_ch))


class ResNet18(nn.Module):
    """ResNet-18 without its classifier, with torchvision's module names and a variable width.

    At width 64 it is torchvision's `resnet18` (its ImageNet state_dict loads, fc ignored);
    narrower widths only serve the CPU demo. Random init is torchvision's.

    Args:
        width: channels of conv1 and layer1; layers 2-4 have 2w, 4w, 8w.

    Shape:
        images (B, 3, H, W) -> (B, 8w) after the global average pool.
    """

    def __init__(self, width: int = 64):
        super().__init__()
        self.width = width
        # Children in torchvision's order: the wrappers slice them into `features`.
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(width, width, 1)
        self.layer2 = _stage(width, 2 * width, 2)
        self.layer3 = _stage(2 * width, 4 * width, 2)
        self.layer4 = _stage(4 * width, 8 * width, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        feat = images
        for module in self.children():
            feat = module(feat)
        return feat.flatten(1)                                        # (B, 8w)


def cached_imagenet_weights() -> str:
    """Path of torchvision's cached ImageNet ResNet-18 file, or '' when the cache lacks it."""
    path = os.path.join(torch.hub.get_dir(), "checkpoints", IMAGENET_RESNET18_FILE)
    return path if os.path.isfile(path) else ""


def load_imagenet(resnet: ResNet18, path: str) -> None:
    """Load a local torchvision `resnet18` ImageNet state_dict into `resnet` (its fc is dropped).

    Raises:
        ValueError: `resnet` is not width 64, or the file's keys or shapes do not match.
        FileNotFoundError: no file at `path`.
    """
    if resnet.width != 64:
        raise ValueError(f"ImageNet ResNet-18 weights need width 64, this net has width {resnet.width}")
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ImageNet ResNet-18 weights not found at '{path}'. Nothing is downloaded at run time: "
            f"copy torchvision's {IMAGENET_RESNET18_FILE} there, or pass no weights to train from "
            f"random init.")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = resnet.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [f"{k}: file {tuple(state[k].shape)} vs net {tuple(v.shape)}"
                  for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or mismatched:
        raise ValueError(f"'{path}' is not a torchvision resnet18 state_dict: missing keys "
                         f"{missing[:5]}, unexpected keys {unexpected[:5]}, shape mismatches "
                         f"{mismatched[:5]}")
    resnet.load_state_dict(state)


def _pool_frames(feat: torch.Tensor, dims: tuple[int, ...], pool: str) -> torch.Tensor:
    if pool == "maxpool":
        return feat.amax(dim=dims)
    return feat.mean(dim=dims)


def _check_pool(pool: str) -> str:
    if pool not in ("maxpool", "avgpool"):
        raise ValueError(f"unknown pool '{pool}', expected one of ['avgpool', 'maxpool']")
    return pool


def _frames_to_images(frames: torch.Tensor) -> tuple[torch.Tensor, list[int], int]:
    # (..., 3, T, H, W) -> (M*T, 3, H, W) with M the product of the leading dims.
    *lead, channels, num_frames, height, width = frames.shape
    images = frames.reshape(-1, channels, num_frames, height, width).transpose(1, 2)
    return images.reshape(-1, channels, height, width), lead, num_frames


class ResNet18Ground(nn.Module):
    """Grounding visual encoder: ResNet-18 through its global average pool, pooled over frames (ref. §2.2).

    Args:
        width: ResNet base width (64 = torchvision's resnet18).
        pool: 'maxpool' (reference) or 'avgpool' over the T frames.
        weights: path of torchvision's ImageNet resnet18 file; None or '' keeps random init.

    Shape:
        frames (..., 3, T, H, W) -> (..., 8w); e.g. (B, 3, 3, 224, 224) -> (B, 512).
    """

    def __init__(self, width: int = 64, pool: str = "maxpool", weights: str | None = None):
        super().__init__()
        trunk = ResNet18(width)
        if weights:
            load_imagenet(trunk, weights)
        self.features = nn.Sequential(*trunk.children())            # conv1 ... layer4, avgpool
        self.pool = _check_pool(pool)
        self.out_dim = 8 * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) single images -> (B, 8w)."""
        return self.features(images).flatten(1)

    def forward_multiframe(self, frames: torch.Tensor) -> torch.Tensor:
        images, lead, num_frames = _frames_to_images(frames)          # (M*T, 3, H, W)
        feat = self(images).reshape(-1, num_frames, self.out_dim)    # (M, T, 8w)
        return _pool_frames(feat, (1,), self.pool).reshape(*lead, self.out_dim)


def _dilate(layer: nn.Module, dilation: int) -> None:
    """Remove the stride of `layer` and dilate its 3x3 convs instead (SoP's `_nostride_dilate`).

    The receptive field of the (pretrained) filters is kept while the output stays at the input's
    resolution; the formerly strided 3x3 conv gets half the dilation, as in the reference.
    """
    for m in layer.modules():
        if not isinstance(m, nn.Conv2d):
            continue
        if m.stride == (2, 2):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                m.dilation = m.padding = (dilation // 2, dilation // 2)
        elif m.kernel_size == (3, 3):
            m.dilation = m.padding = (dilation, dilation)


_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "no": lambda x: x,
}


class ResNet18Dilated(nn.Module):
    """Separation visual net: dilated ResNet-18, 3x3 conv to K channels, pooled over T x h x w (ref. §2.5).

    Args:
        width: ResNet base width (64 = torchvision's resnet18).
        fc_dim: output channels K, matched to the U-Net's.
        pool: 'maxpool' (reference) or 'avgpool' over frames and space.
        dilate_scale: output stride: 16 dilates layer4 (224 -> 14 x 14), 8 also layer3, 32 none.
        activation: applied after pooling: 'sigmoid' (reference), 'relu', 'tanh' or 'no'.
        weights: path of torchvision's ImageNet resnet18 file; None or '' keeps random init.

    Shape:
        frames (..., 3, T, H, W) -> (..., fc_dim); e.g. (B, 3, 3, 224, 224) -> (B, 32).
    """

    def __init__(self, width: int = 64, fc_dim: int = 32, pool: str = "maxpool",
                 dilate_scale: int = 16, activation: str = "sigmoid", weights: str | None = None):
        super().__init__()
        if dilate_scale not in (8, 16, 32):
            raise ValueError(f"dilate_scale must be one of [8, 16, 32], got {dilate_scale}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation '{activation}', expected one of {sorted(_ACTIVATIONS)}")
        trunk = ResNet18(width)
        if weights:
            load_imagenet(trunk, weights)
        if dilate_scale == 8:
            _dilate(trunk.layer3, 2)
            _dilate(trunk.layer4, 4)
        elif dilate_scale == 16:
            _dilate(trunk.layer4, 2)
        self.features = nn.Sequential(*list(trunk.children())[:-1])  # conv1 ... layer4
        self.fc = nn.Conv2d(8 * width, fc_dim, kernel_size=3, padding=1)
        self.pool = _check_pool(pool)
        self.activation = activation
        self.out_dim = fc_dim

    def forward_features_map(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., 3, T, H, W) -> (..., fc_dim, T, h, w) un-pooled, un-activated visual features."""
        images, lead, num_frames = _frames_to_images(frames)          # (M*T, 3, H, W)
        feat = self.fc(self.features(images))                        # (M*T, K, h, w)
        feat = feat.reshape(-1, num_frames, *feat.shape[1:]).transpose(1, 2)  # (M, K, T, h, w)
        return feat.reshape(*lead, *feat.shape[1:])

    def forward_multiframe(self, frames: torch.Tensor) -> torch.Tensor:
        feat = self.forward_features_map(frames)                      # (..., K, T, h, w)
        pooled = _pool_frames(feat, (-3, -2, -1), self.pool)          # (..., K)
        return _ACTIVATIONS[self.activation](pooled)
