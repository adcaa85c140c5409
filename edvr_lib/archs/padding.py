"""Run EDVR on any frame size: reflect-pad to the multiple it needs, then crop the output back."""
from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["forward_padded", "pad_to_multiple"]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right of ``x`` so that h and w are multiples of ``multiple``.

    Args:
        x: ``(b, t, c, h, w)`` or ``(b, c, h, w)``.
        multiple: required divisor of h and w.

    Returns:
        The padded tensor and ``(pad_h, pad_w)``.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    lead = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    # 'reflect' needs pad < size; fall back to 'replicate' for tiny frames.
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    flat = F.pad(flat, (0, pad_w, 0, pad_h), mode=mode)
    return flat.reshape(*lead, *flat.shape[-3:]), (pad_h, pad_w)


def forward_padded(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for any h, w: reflect-pad to ``model.size_multiple``, run, crop back.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` (anything with ``size_multiple`` and ``hr_in``).
        x: ``(b, t, 3, h, w)``.

    Returns:
        ``(b, 3, 4h, 4w)`` (``(b, 3, h, w)`` with ``hr_in``).
    """
    h, w = x.shape[-2:]
    padded, _ = pad_to_multiple(x, getattr(model, "size_multiple", 4))
    out = model(padded)
    scale = 1 if getattr(model, "hr_in", False) else 4
    return out[..., : h * scale, : w * scale]
