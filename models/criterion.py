"""Weighted spectrogram-mask losses with per-sample reduction (docs/method.md, Mask losses)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

_REDUCTIONS = ("none", "mean")


class _WeightedMaskLoss(nn.Module):
    """mean(weight * elementwise_loss(pred, target)) per mask; subclasses give the elementwise loss.

    Args:
        reduction: 'none' returns one value per mask; 'mean' the reference's scalar, the mean
            over every element (equal to the mean of the 'none' values).

    Shape:
        pred, target (B, 1, F, T) or (B, N, 1, F, T); weight broadcastable to them, a
        (B, 1, F, T) weight also applies to every object of a 5-D input, None means 1.
        Output: (B,) or (B, N) with 'none', a scalar with 'mean'.
    """

    def __init__(self, reduction: str = "none"):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"unknown reduction '{reduction}', expected one of {list(_REDUCTIONS)}"
            )
        self.reduction = reduction

    def elementwise(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if pred.shape != target.shape or pred.dim() not in (4, 5):
            raise ValueError(
                f"pred and target must have the same shape (B, [N,] 1, F, T), got "
                f"pred {tuple(pred.shape)} and target {tuple(target.shape)}"
            )
        # Losses are computed in float32 even when the nets ran in reduced precision.
        err = self.elementwise(pred.float(), target.float())
        if weight is not None:
            # A (B, 1, F, T) weight is shared by the N objects of a (B, N, 1, F, T) input.
            per_object = weight.unsqueeze(1) if weight.dim() == pred.dim() - 1 else weight
            try:
                err = err * per_object
            except RuntimeError as e:
                raise ValueError(
                    f"weight {tuple(weight.shape)} does not broadcast to pred {tuple(pred.shape)}"
                ) from e
            if err.shape != pred.shape:
                raise ValueError(
                    f"weight {tuple(weight.shape)} would enlarge pred {tuple(pred.shape)}"
                )
        per_mask = err.mean(dim=(-3, -2, -1))  # (B,) or (B, N)
        return per_mask if self.reduction == "none" else per_mask.mean()


class WeightedL1Loss(_WeightedMaskLoss):
    """Weighted L1 between predicted and ground-truth masks (the reference's `L1Loss`).

    Args:
        reduction: 'none' (one value per mask) or 'mean' (the reference's scalar).

    Shape:
        pred, target (B, [N,] 1, F, T), weight (B, 1, F, T) or broadcastable -> (B, [N]) or ().
    """

    def elementwise(self, pred, target):
        return (pred - target).abs()


class WeightedL2Loss(_WeightedMaskLoss):
    """Weighted squared error between predicted and ground-truth masks.

    Args:
        reduction: 'none' (one value per mask) or 'mean' (the reference's scalar).

    Shape:
        pred, target (B, [N,] 1, F, T), weight (B, 1, F, T) or broadcastable -> (B, [N]) or ().
    """

    def elementwise(self, pred, target):
        return (pred - target).pow(2)


class WeightedBCELoss(_WeightedMaskLoss):
    """Weighted binary cross-entropy of mask probabilities in [0, 1] vs binary masks (SoP's loss).

    `F.binary_cross_entropy` runs with autocast off (autocast refuses it): its logs clamped at
    -100 and its backward stay finite on saturated sigmoid outputs.

    Args:
        reduction: 'none' (one value per mask) or 'mean' (the reference's scalar).

    Shape:
        pred, target (B, [N,] 1, F, T), weight (B, 1, F, T) or broadcastable -> (B, [N]) or ().
    """

    def elementwise(self, pred, target):
        with torch.autocast(device_type=pred.device.type, enabled=False):
            return F.binary_cross_entropy(pred, target, reduction="none")


LOSSES = {"l1": WeightedL1Loss, "l2": WeightedL2Loss, "bce": WeightedBCELoss}
