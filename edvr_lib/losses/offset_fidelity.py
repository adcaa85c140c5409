"""Offset-fidelity loss: PCD's offsets held near a known optical flow (Chan et al., "Understanding Deformable
Alignment in Video Super-Resolution", AAAI 2021, Sec. 4).

A DCN trained by the pixel loss alone rarely discovers alignment when little in the data rewards it: its offsets
start at zero and stay there. This term pulls every offset of the pyramid DCNs (L3, L2, L1) towards the true flow
of its frame, resized and scaled to that level; the cascade's DCN is left free (its input is already aligned).
Only deviations beyond ``threshold`` pixels are penalised, so each kernel point stays free to differ from the flow
by a little (the diversity Chan et al. show the offsets need); Chan et al. use 10 px as an overflow guard at REDS
motions, 0.5-1 px suits the few-pixel motions of the embedded training windows.

Example::

    with OffsetCapture(model) as offsets:
        out = model(lq)
    loss = offset_fidelity(offsets, flow, flow_valid, threshold=0.5)
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.ops.dcn_fast import split_offset_mask
from edvr_lib.utils.hooks import forward_hooks

__all__ = ["OffsetCapture", "offset_fidelity", "offset_weight"]

PYRAMID_LEVELS = ("l1", "l2", "l3")


@contextlib.contextmanager
def OffsetCapture(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Keeps the ``conv_offset`` outputs of PCD's pyramid DCNs (with their gradients) during a forward.

    Hooks exist only inside the ``with`` block. Works through wrappers (DDP) since the hooks sit on the modules.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.

    Yields:
        ``{'l1' | 'l2' | 'l3': (b * t, 3 * g * 9, h_l, w_l)}`` (offsets, then mask logits), filled by the forward.
    """
    outputs: dict[str, torch.Tensor] = {}

    def keep(level):
        def hook(_module, _args, out):
            outputs[level] = out
        return hook

    with forward_hooks([(model.pcd_align.dcn_pack[level].conv_offset, keep(level)) for level in PYRAMID_LEVELS]):
        yield outputs


def offset_fidelity(offsets: dict[str, torch.Tensor], flow: torch.Tensor, flow_valid: torch.Tensor,
                    threshold: float = 0.5, eps: float = 1e-6) -> torch.Tensor:
    """Mean Charbonnier distance between each pyramid DCN's offsets and the flow, beyond ``threshold`` pixels.

    Args:
        offsets: :class:`OffsetCapture`'s outputs, ``{'l1': (b * t, 3 * g * K, h, w), 'l2': ..., 'l3': ...}``.
        flow: ``(b, t, 2, h, w)`` true flow in L1 (LR) pixels, ``(dy, dx)``: centre-frame pixel ``p`` is found in
            frame ``i`` at ``p + flow[:, i, :, p]`` (the direction the DCN samples; 0 for the centre frame).
        flow_valid: ``(b, t, 1, h, w)``, 1 where the flow is known (0: occluded, out of view, or no flow at all).
        threshold: deviations (Euclidean, in that level's pixels) at or below this cost nothing.
        eps: Charbonnier's ``eps``.

    Returns:
        Scalar: the mean over levels of the per-level mean over valid (sample, frame, group, tap, pixel) entries.
    """
    b, t = flow.shape[:2]
    flow_l1, valid_l1 = flow.flatten(0, 1).float(), flow_valid.flatten(0, 1).float()  # (n, 2 | 1, h, w)
    total = flow.new_zeros(())
    for i, level in enumerate(PYRAMID_LEVELS):
        if level not in offsets:
            continue
        off = split_offset_mask(offsets[level])[0].float()  # (b * t, 2 * g * K, h_l, w_l)
        h, w = off.shape[-2:]
        off = off.reshape(b, t, -1, 9, 2, h, w)  # groups x 3x3 kernel points x (dy, dx), torchvision's order
        flow_l, valid_l, factor = flow_l1, valid_l1, 2 ** i
        if factor > 1:  # the flow in that level's pixels, valid only where every finer pixel is
            flow_l = F.avg_pool2d(flow_l1, factor, ceil_mode=True) / factor
            valid_l = -F.max_pool2d(-valid_l1, factor, ceil_mode=True)
        flow_l = flow_l[..., :h, :w].reshape(b, t, 1, 1, 2, h, w)
        valid_l = valid_l[..., :h, :w].reshape(b, t, 1, 1, 1, h, w)
        diff = off - flow_l
        far = (diff.detach().norm(dim=4, keepdim=True) > threshold).float() * valid_l
        per_entry = torch.sqrt(diff * diff + eps).sum(dim=4, keepdim=True)
        count = (valid_l.sum() * off.shape[2] * 9).clamp_min(1.0)
        total = total + (per_entry * far).sum() / count
    return total / len(PYRAMID_LEVELS)


def offset_weight(opt, iteration: int) -> float:
    """The loss weight at ``iteration``: ``loss_weight`` until ``full_until``, then linear to 0 at ``zero_at``.

    Args:
        opt: the resolved ``train.offset_opt`` section (None: 0).
        iteration: the 1-based training iteration.
    """
    if opt is None:
        return 0.0
    weight, start, zero = opt.loss_weight, opt.full_until or 0, opt.zero_at
    if zero is None or iteration <= start:
        return weight
    return weight * max(0.0, min(1.0, (zero - iteration) / max(zero - start, 1)))
