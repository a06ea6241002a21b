"""Synthesizer: mask logits as a scaled inner product of visual and sound features."""

from __future__ import annotations

import torch
import torch.nn as nn


class InnerProd(nn.Module):
    """z[f, t] = sum_k v[k] * scale[k] * S[k, f, t] + bias: one mask per object (Zhao et al. 2018).

    Args:
        fc_dim: K, channels of both the visual vector and the U-Net output.

    Shape:
        feat_img (B, K) or (B, N, K), feat_sound (B, K, F, T) -> (B, 1, F, T) or (B, N, 1, F, T)
        mask logits; with N objects the sound features of one mixture are shared by all of them.
    """

    def __init__(self, fc_dim: int = 32):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(fc_dim))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, feat_img: torch.Tensor, feat_sound: torch.Tensor) -> torch.Tensor:
        per_object = feat_img.unsqueeze(1) if feat_img.dim() == 2 else feat_img  # (B, N, K)
        if (
            per_object.dim() != 3
            or feat_sound.dim() != 4
            or per_object.shape[::2] != feat_sound.shape[:2]
        ):
            raise ValueError(
                f"expected feat_img (B, [N,] K) and feat_sound (B, K, F, T), got "
                f"{tuple(feat_img.shape)} and {tuple(feat_sound.shape)}"
            )
        z = torch.einsum("bnk,bkft->bnft", per_object * self.scale, feat_sound)  # (B, N, F, T)
        masks = (z + self.bias).unsqueeze(2)  # (B, N, 1, F, T)
        return masks.squeeze(1) if feat_img.dim() == 2 else masks

    def forward_pixelwise(self, feat_map: torch.Tensor, feat_sound: torch.Tensor) -> torch.Tensor:
        """One mask per location, each location's K-vector taken as an object (SoP's pixel-wise
        synthesizer): (B, K, h, w), (B, K, F, T) -> (B, h, w, 1, F, T) mask logits."""
        h, w = feat_map.shape[-2:]
        return self(feat_map.flatten(2).transpose(1, 2), feat_sound).unflatten(1, (h, w))
