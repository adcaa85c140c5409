"""Charbonnier loss, EDVR's training loss (a differentiable L1)."""
from __future__ import annotations

import torch

from edvr_lib.utils.errors import EDVRError

__all__ = ["charbonnier"]


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, reduction: str = "mean") -> torch.Tensor:
    """Charbonnier loss ``sqrt((pred - target)^2 + eps)``, summed or averaged over every element.

    EDVR and BasicSR train with ``reduction="sum"``: the loss is then a sum over every pixel of the batch, so
    values of 1e4-1e7 are normal. ``"mean"`` (the default) gives the per-pixel loss, about the mean absolute
    error for errors much larger than ``sqrt(eps)``.

    Args:
        pred: prediction, any shape.
        target: ground truth, the same shape as ``pred``.
        eps: added under the square root. The original EDVR code used 1e-6 (the default here); BasicSR's
            ``CharbonnierLoss`` uses 1e-12.
        reduction: ``"mean"`` or ``"sum"``.

    Returns:
        The scalar loss.

    Raises:
        EDVRError: ``reduction`` is neither ``"mean"`` nor ``"sum"``.
    """
    if reduction not in ("mean", "sum"):
        raise EDVRError(f"charbonnier reduction must be one of ('mean', 'sum'), got {reduction!r}")
    loss = torch.sqrt((pred - target) ** 2 + eps)
    return loss.sum() if reduction == "sum" else loss.mean()
