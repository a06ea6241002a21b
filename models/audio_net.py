"""Audio nets: the VGG-style grounding encoder and the separation U-Net (docs/method.md)."""

from __future__ import annotations

import torch
import torch.nn as nn


class VGGishGround(nn.Module):
    """Grounding audio encoder: a randomly initialised VGG-style CNN, no BatchNorm.

    Not a pretrained VGGish despite the name: the reference leaves PyTorch's default init.

    Args:
        width: channels of the first conv; the blocks have w, 2w, 4w, 4w, 8w, 8w (w = 64 in the
            paper).
        init: 'default' keeps PyTorch's init as the reference; its activations shrink layer after
            layer (features ~50x smaller than the ResNet's), so the grounding MLP at first sees
            mostly the visual feature. 'kaiming' (He normal, fan_in: the forward activation scale
            is kept layer after layer) brings them to the visual feature's scale (demo sizes,
            measured: feature norm 21 vs the ResNet's 13; fan_out would give 1).

    Shape:
        log_mag (B, 1, F, T) log1p magnitude -> (B, 8w) after a global max pool.
        F and T must be divisible by 16 for the map to tile exactly (256 x 256 -> 16 x 16 map).
    """

    def __init__(self, width: int = 64, init: str = "default"):
        super().__init__()
        if init not in ("default", "kaiming"):
            raise ValueError(f"unknown init '{init}', expected 'default' or 'kaiming'")
        w = width
        # Layer indices match the reference's `features.{i}` keys.
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, 4 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(4 * w, 8 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(8 * w, 8 * w, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        self.out_dim = 8 * w
        if init == "kaiming":
            for conv in self.features:
                if isinstance(conv, nn.Conv2d):
                    nn.init.kaiming_normal_(conv.weight, mode="fan_in", nonlinearity="relu")
                    nn.init.zeros_(conv.bias)

    def forward(self, log_mag: torch.Tensor) -> torch.Tensor:
        feat = self.features(log_mag)  # (B, 8w, F/16, T/16)
        return torch.amax(feat, dim=(2, 3))  # (B, 8w)


class UNetBlock(nn.Module):
    """One U-Net level: down conv, the inner levels, up conv, then skip concat `[x, up(...)]`.

    Layout of `model` (a Sequential, as the reference's `UnetBlock`, so checkpoint keys match):
    outermost   [down conv, inner, ReLU, upsample, conv (bias)]        no norm, no skip
    innermost   [LeakyReLU, down conv, ReLU, upsample, conv, BN]
    middle      [LeakyReLU, down conv, BN, inner, ReLU, upsample, conv, BN]

    Args:
        outer_nc: channels this level outputs before the skip concat.
        inner_nc: channels of the down conv's output.
        input_nc: channels entering the level (default outer_nc).
        inner: the next level down, or None for the innermost level.
        outermost: first level (no activation before the down conv, biased up conv, no skip).
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        inner: UNetBlock | None = None,
        outermost: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        # Every non-innermost level receives the inner level's skip concat: 2 * inner_nc channels.
        up_in = inner_nc if inner is None else 2 * inner_nc

        down_conv = nn.Conv2d(input_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=False)
        upsample = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)
        if outermost:
            up_conv = nn.Conv2d(up_in, outer_nc, kernel_size=3, padding=1)
            layers = [down_conv, inner, nn.ReLU(True), upsample, up_conv]
        else:
            up_conv = nn.Conv2d(up_in, outer_nc, kernel_size=3, padding=1, bias=False)
            down = [nn.LeakyReLU(0.2, True), down_conv]
            if inner is not None:
                down += [nn.BatchNorm2d(inner_nc), inner]
            layers = down + [nn.ReLU(True), upsample, up_conv, nn.BatchNorm2d(outer_nc)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UNet(nn.Module):
    """Separation audio net: a U-Net on the log-magnitude mixture (Zhao et al. 2018).

    Level i (0 = outermost) has ngf * min(2^i, 8) channels: 64, 128, 256, 512, 512, 512, 512 for
    `unet7` with ngf = 64. No output activation (`sound_activation='no'`).

    Args:
        levels: number of stride-2 downsamplings (7 for `unet7`), at least 2.
        ngf: channels of the outermost level.
        fc_dim: output channels K, the sound components combined by the synthesizer.
        input_nc: input channels.
        init: 'default' (PyTorch's, as CCoL) or 'sop' (Sound of Pixels': conv weights N(0, 1e-3),
            BatchNorm weights N(1, 0.02) and biases 0, so every mask starts near sigmoid(0)).

    Shape:
        log_mag_mix (B, input_nc, H, W) -> (B, fc_dim, H, W); H and W divisible by 2 ** levels.
    """

    def __init__(
        self,
        levels: int = 7,
        ngf: int = 64,
        fc_dim: int = 32,
        input_nc: int = 1,
        init: str = "default",
    ):
        super().__init__()
        if levels < 2:
            raise ValueError(f"UNet needs at least 2 levels, got {levels}")
        self.levels = levels
        channels = [ngf * min(2**i, 8) for i in range(levels)]
        block = UNetBlock(channels[-2], channels[-1])  # innermost
        for i in range(levels - 2, 0, -1):
            block = UNetBlock(channels[i - 1], channels[i], inner=block)
        self.bn0 = nn.BatchNorm2d(input_nc)
        self.unet_block = UNetBlock(
            fc_dim, channels[0], input_nc=input_nc, inner=block, outermost=True
        )
        if init not in ("default", "sop"):
            raise ValueError(f"unknown init '{init}', expected 'default' or 'sop'")
        if init == "sop":
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, 0.0, 1e-3)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.normal_(m.weight, 1.0, 0.02)
                    nn.init.zeros_(m.bias)

    def forward(self, log_mag_mix: torch.Tensor) -> torch.Tensor:
        height, width = log_mag_mix.shape[-2:]
        factor = 2**self.levels
        if height % factor or width % factor:
            raise ValueError(
                f"UNet with {self.levels} levels needs H and W divisible by {factor}, "
                f"got input shape {tuple(log_mag_mix.shape)}"
            )
        return self.unet_block(self.bn0(log_mag_mix))  # (B, fc_dim, H, W)
