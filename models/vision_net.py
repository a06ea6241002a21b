"""Visual nets: ResNet-18 trunks for grounding (pooled) and separation (dilated)."""

from __future__ import annotations

import contextlib
import os
import pickle

import torch
import torch.nn as nn
from torchvision.models import ResNet18_Weights
from torchvision.models.resnet import BasicBlock, conv1x1

# The paper's visual features: torchvision's ImageNet ResNet-18, loaded through torchvision's
# weights API (its hub cache, filled on first use when online).
IMAGENET_WEIGHTS = ResNet18_Weights.IMAGENET1K_V1
# --weights_imagenet values that are not paths.
IMAGENET, NO_WEIGHTS = "imagenet", "none"


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
        return feat.flatten(1)  # (B, 8w)


def imagenet_cache_path() -> str:
    """Where torchvision looks for (and downloads) the ImageNet ResNet-18 file, under
    $TORCH_HOME/hub/checkpoints."""
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(IMAGENET_WEIGHTS.url))


def imagenet_state_dict(source: str) -> dict:
    """The ImageNet ResNet-18 state_dict from torchvision's cache ('imagenet') or a local file.

    Raises:
        FileNotFoundError: not cached and not downloadable (offline), or no file at the path.
        ValueError: the file is not a readable torch state_dict.
    """
    if source == IMAGENET:
        cached = imagenet_cache_path()
        try:
            # Loads the cached file, or downloads it there first (hash-checked) when it is missing.
            state = IMAGENET_WEIGHTS.get_state_dict(
                progress=False, check_hash=True, map_location="cpu", weights_only=True
            )
        except OSError as err:  # URLError and socket errors included: offline, proxy, disk
            torch_home = os.environ.get("TORCH_HOME", "~/.cache/torch")
            raise FileNotFoundError(
                f"ImageNet ResNet-18 weights ({IMAGENET_WEIGHTS}) are not in torchvision's cache "
                f"and could not be downloaded ({err}). torchvision looks for {cached} (folder "
                f"$TORCH_HOME/hub/checkpoints, TORCH_HOME={torch_home}). Copy "
                f"{os.path.basename(cached)} from {IMAGENET_WEIGHTS.url} there, pass its path as "
                f"--weights_imagenet, or pass --weights_imagenet none to train the ResNets from "
                f"random init."
            ) from err
        except (RuntimeError, pickle.UnpicklingError) as err:
            raise ValueError(
                f"{cached} is not a readable torch file ({err}); delete it and run "
                f"again to download it"
            ) from err
        return state
    if not os.path.isfile(source):
        raise FileNotFoundError(
            f"ImageNet ResNet-18 weights not found at '{source}'. Pass --weights_imagenet "
            f"imagenet for torchvision's cached {os.path.basename(IMAGENET_WEIGHTS.url)}, or "
            f"--weights_imagenet none to train the ResNets from random init."
        )
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError) as err:
        raise ValueError(f"'{source}' is not a readable torch state_dict ({err})") from err


def load_imagenet(resnet: ResNet18, source: str) -> None:
    """Load torchvision's `resnet18` ImageNet state_dict into `resnet` (its fc is dropped).

    Args:
        source: 'imagenet' (torchvision's weights API) or the path of a local state_dict file.

    Raises:
        ValueError: 'imagenet' for a net not of width 64, or the file's keys or shapes do not
            match (a local file may hold another width, e.g. scripts/pretrain_visual.py's).
        FileNotFoundError: the weights are neither cached nor downloadable, or no file at the path.
    """
    if source == IMAGENET and resnet.width != 64:
        raise ValueError(
            f"ImageNet ResNet-18 weights need width 64, this net has width {resnet.width}"
        )
    state = imagenet_state_dict(source)
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    expected = resnet.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = [
        f"{k}: file {tuple(state[k].shape)} vs net {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        raise ValueError(
            f"'{source}' is not a torchvision resnet18 state_dict: missing keys "
            f"{missing[:5]}, unexpected keys {unexpected[:5]}, shape mismatches "
            f"{mismatched[:5]}"
        )
    resnet.load_state_dict(state)


def has_weights(weights: str | None) -> bool:
    return bool(weights) and weights != NO_WEIGHTS


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


def _per_object(net: nn.Module, frames: torch.Tensor, separately: bool) -> torch.Tensor:
    """`net.forward_multiframe` on (B, N, 3, T, H, W) objects -> (B, N, D).

    All N objects go through the net in one call, unless `separately` and the ResNet's BatchNorm
    layers are in train mode: then each object is its own call, as the authors' code runs it, so
    that the batch statistics (and the running-statistics updates, one per object) are per object.
    """
    if separately and net.features.training:
        objects = [net.forward_multiframe(frames[:, n]) for n in range(frames.shape[1])]
        return torch.stack(objects, 1)
    B, N = frames.shape[:2]
    return net.forward_multiframe(frames.flatten(0, 1)).view(B, N, -1)


class ResNet18Ground(nn.Module):
    """Grounding visual encoder: ResNet-18 through its global average pool, pooled over frames.

    Args:
        width: ResNet base width (64 = torchvision's resnet18).
        pool: 'maxpool' (reference) or 'avgpool' over the T frames.
        weights: 'imagenet' (torchvision's cache), a state_dict path, or 'none' / None (random).

    Shape:
        frames (..., 3, T, H, W) -> (..., 8w); e.g. (B, 3, 3, 224, 224) -> (B, 512).
    """

    def __init__(self, width: int = 64, pool: str = "maxpool", weights: str | None = None):
        super().__init__()
        trunk = ResNet18(width)
        if has_weights(weights):
            load_imagenet(trunk, weights)
        self.features = nn.Sequential(*trunk.children())  # conv1 ... layer4, avgpool
        self.pool = _check_pool(pool)
        self.out_dim = 8 * width

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) single images -> (B, 8w)."""
        return self.features(images).flatten(1)

    def forward_multiframe(self, frames: torch.Tensor) -> torch.Tensor:
        images, lead, num_frames = _frames_to_images(frames)  # (M*T, 3, H, W)
        feat = self(images).reshape(-1, num_frames, self.out_dim)  # (M, T, 8w)
        return _pool_frames(feat, (1,), self.pool).reshape(*lead, self.out_dim)

    def forward_objects(self, frames: torch.Tensor, separately: bool = False) -> torch.Tensor:
        """(B, N, 3, T, H, W) -> (B, N, 8w); `separately`: per-object BatchNorm batches."""
        return _per_object(self, frames, separately)

    def forward_pixelwise(self, frames: torch.Tensor) -> torch.Tensor:
        """The feature of every location before the global pool, at output stride 8.

        (..., 3, T, H, W) -> (..., 8w, H/8, W/8): what the pool would average, so the grounding
        head can score each location of a whole frame as it scores a pooled crop.
        """
        return _pixelwise_trunk(self.features[:-1], frames, self.pool)  # drop avgpool


def _dilate(layer: nn.Module, dilation: int) -> None:
    """Remove the stride of `layer` and dilate its 3x3 convs instead (SoP's `_nostride_dilate`).

    The receptive field of the (pretrained) filters is kept while the output stays at the input's
    resolution; the first block's 3x3 conv (the formerly strided one) gets half the dilation, as in
    the reference. Setting, not scaling, the dilations makes it safe on an already dilated layer.
    """
    first = layer[0].conv1
    for m in layer.modules():
        if isinstance(m, nn.Conv2d):
            m.stride = (1, 1)
            if m.kernel_size == (3, 3):
                d = dilation // 2 if m is first else dilation
                m.dilation = m.padding = (d, d)


# Output stride of the sounding maps: a 64-pixel frame gives 8 cells a side, where the plain
# ResNet's 32 gives 2.
MAP_STRIDE = 8


@contextlib.contextmanager
def _output_stride_8(features: nn.Sequential):
    """Run a trunk (torchvision's children order: ... layer3, layer4 at 6, 7) at output stride 8.

    layer3 and layer4 trade their strides for dilations while the context lasts, as SoP's
    dilate_scale 8: same weights, same receptive fields, 4x the locations of a stride-32 trunk.
    """
    layers = (features[6], features[7])
    convs = [m for layer in layers for m in layer.modules() if isinstance(m, nn.Conv2d)]
    saved = [(m.stride, m.dilation, m.padding) for m in convs]
    try:
        _dilate(layers[0], 2)
        _dilate(layers[1], 4)
        yield
    finally:
        for m, (stride, dilation, padding) in zip(convs, saved):
            m.stride, m.dilation, m.padding = stride, dilation, padding


def _pixelwise_trunk(
    features: nn.Sequential, frames: torch.Tensor, pool: str, head: nn.Module | None = None
) -> torch.Tensor:
    """(..., 3, T, H, W) -> (..., C, h, w): a trunk's un-pooled features (through `head`) at
    output stride 8, pooled over the T frames as the net pools them."""
    images, lead, num_frames = _frames_to_images(frames)  # (M*T, 3, H, W)
    with _output_stride_8(features):
        feat = features(images)  # (M*T, C, h, w)
        feat = head(feat) if head is not None else feat
    feat = _pool_frames(feat.reshape(-1, num_frames, *feat.shape[1:]), (1,), pool)  # (M, C, h, w)
    return feat.reshape(*lead, *feat.shape[1:])


_ACTIVATIONS = {
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "tanh": torch.tanh,
    "no": lambda x: x,
}


class ResNet18Dilated(nn.Module):
    """Separation visual net: dilated ResNet-18, 3x3 conv to K channels, pooled over T x h x w.

    Args:
        width: ResNet base width (64 = torchvision's resnet18).
        fc_dim: output channels K, matched to the U-Net's.
        pool: 'maxpool' (reference) or 'avgpool' over frames and space.
        dilate_scale: output stride: 16 dilates layer4 (224 -> 14 x 14), 8 also layer3, 32 none.
        activation: applied after pooling: 'sigmoid' (reference), 'relu', 'tanh' or 'no'.
        weights: 'imagenet' (torchvision's cache), a state_dict path, or 'none' / None (random).

    Shape:
        frames (..., 3, T, H, W) -> (..., fc_dim); e.g. (B, 3, 3, 224, 224) -> (B, 32).
    """

    def __init__(
        self,
        width: int = 64,
        fc_dim: int = 32,
        pool: str = "maxpool",
        dilate_scale: int = 16,
        activation: str = "sigmoid",
        weights: str | None = None,
    ):
        super().__init__()
        if dilate_scale not in (8, 16, 32):
            raise ValueError(f"dilate_scale must be one of [8, 16, 32], got {dilate_scale}")
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"unknown activation '{activation}', expected one of {sorted(_ACTIVATIONS)}"
            )
        trunk = ResNet18(width)
        if has_weights(weights):
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
        images, lead, num_frames = _frames_to_images(frames)  # (M*T, 3, H, W)
        feat = self.fc(self.features(images))  # (M*T, K, h, w)
        feat = feat.reshape(-1, num_frames, *feat.shape[1:]).transpose(1, 2)  # (M, K, T, h, w)
        return feat.reshape(*lead, *feat.shape[1:])

    def forward_multiframe(self, frames: torch.Tensor) -> torch.Tensor:
        feat = self.forward_features_map(frames)  # (..., K, T, h, w)
        pooled = _pool_frames(feat, (-3, -2, -1), self.pool)  # (..., K)
        return _ACTIVATIONS[self.activation](pooled)

    def forward_objects(self, frames: torch.Tensor, separately: bool = False) -> torch.Tensor:
        """(B, N, 3, T, H, W) -> (B, N, fc_dim); `separately`: per-object BatchNorm batches."""
        return _per_object(self, frames, separately)

    def forward_pixelwise(self, frames: torch.Tensor) -> torch.Tensor:
        """SoP's pixel-wise visual vectors: the activated K-vector of every location, at output
        stride 8, pooled over frames only.

        (..., 3, T, H, W) -> (..., fc_dim, H/8, W/8).
        """
        feat = _pixelwise_trunk(self.features, frames, self.pool, head=self.fc)
        return _ACTIVATIONS[self.activation](feat)
