"""Look inside one EDVR forward pass: PCD offsets and masks, aligned features, TSA attention maps.

Example::

    with record_internals(model) as rec:
        out = model(x)
    rec.pcd_offsets["l1"]   # (b, t, g, 9, 2, h, w), [..., 0, :, :] = dy, [..., 1, :, :] = dx, in L1 pixels
    rec.temporal_attn       # (b, t, h, w)

Recording uses forward hooks that exist only inside the ``with`` block, so a model that is not being recorded
runs exactly the code it always runs (no flag, no cost), and the recorded forward gives the same outputs.
Everything recorded is a detached CPU tensor.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from edvr_lib.archs import DCNv2Pack, PCDAlignment, TSAFusion

__all__ = ["Internals", "record_internals", "offsets_to_flow"]

PCD_KEYS = ("l3", "l2", "l1", "cascade")


@dataclass
class Internals:
    """What :func:`record_internals` captured during the last forward inside its block.

    Attributes:
        pcd_offsets: ``{'l3','l2','l1','cascade': (b, t, g, 9, 2, h_l, w_l)}``; axis -3 is ``(dy, dx)`` in pixels of
            that pyramid level; the 9 taps are the 3x3 kernel positions in row-major order. Tap ``k`` of group ``g``
            at pixel ``p`` samples the neighbour feature at ``p + p_k + offset``. Layout (pinned by
            tests/test_introspect.py): groups x kernel points x ``(dy, dx)``, torchvision order, i.e. channel
            ``g*2*9 + 2k`` of ``conv_offset`` is dy of group ``g``, tap ``k`` and ``+1`` its dx. Convention:
            reference -> neighbour, the direction a backward warp uses (an offset ``(0, 1)`` aligns a neighbour
            whose content moved 1 px to the right). "Learned motion" in this project means the L1 pyramid DCN
            (``'l1'``); the ``'cascade'`` DCN samples the already aligned L1 feature, so its offsets are a residual
            on top of L1 (read-outs that want the total add them: ``l1 + cascade``).
        pcd_masks: same keys, ``(b, t, g, 9, h_l, w_l)``, modulation after the sigmoid (0..1).
        aligned: ``(b, t, c, h, w)`` PCD output (input of the fusion).
        temporal_attn: ``(b, t, h, w)`` sigmoid of the correlation with the centre embedding (None without TSA).
        spatial_attn: ``(b, c, h, w)`` sigmoid spatial attention (None without TSA).
        spatial_attn_add: ``(b, c, h, w)`` additive spatial attention (None without TSA).

    When recording a bare :class:`PCDAlignment`, ``b`` is its batch ``n`` and ``t`` is 1; a bare
    :class:`TSAFusion` fills only the fusion fields.
    """

    pcd_offsets: dict[str, torch.Tensor] = field(default_factory=dict)
    pcd_masks: dict[str, torch.Tensor] = field(default_factory=dict)
    aligned: torch.Tensor | None = None
    temporal_attn: torch.Tensor | None = None
    spatial_attn: torch.Tensor | None = None
    spatial_attn_add: torch.Tensor | None = None


def _cpu(x: torch.Tensor) -> torch.Tensor:
    return x.detach().to("cpu", copy=True)


def _untangle(chunks: list[torch.Tensor], b: int, t: int) -> torch.Tensor:
    """Join per-call tensors into ``(b, t, ...)``: one call per frame (each batch b) or one batched call (b*t)."""
    if len(chunks) == t and t > 1 and chunks[0].shape[0] == b:
        return torch.stack(chunks, dim=1)
    joined = torch.cat(chunks, dim=0)
    return joined.reshape(b, t, *joined.shape[1:])


@contextlib.contextmanager
def record_internals(model: nn.Module) -> Iterator[Internals]:
    """Record the internals of the forward passes run inside the block (the last one wins).

    Every recorded tensor is one the model itself computed (a hooked module's output), never recomputed here:
    the DCN packs' ``conv_offset`` outputs (split by :meth:`DCNv2Pack.offsets_and_mask`, the one place that
    knows their layout), the fusion's input, and TSA's ``temporal_gate`` / ``spatial_gate`` (its sigmoids) and
    ``spatial_attn_add2``.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`, a bare :class:`~edvr_lib.archs.PCDAlignment` or a bare
            :class:`~edvr_lib.archs.TSAFusion`.

    Yields:
        An :class:`Internals`, filled when the forward finishes.
    """
    rec = Internals()
    kept: dict = {"dcn": {k: [] for k in PCD_KEYS}}
    if isinstance(model, PCDAlignment):
        pcd, fusion, num_frame = model, None, 1
    elif isinstance(model, TSAFusion):
        pcd, fusion, num_frame = None, model, model.num_frame
    else:
        pcd, fusion, num_frame = model.pcd_align, model.fusion, model.num_frame
    packs = {} if pcd is None else {"l3": pcd.dcn_pack["l3"], "l2": pcd.dcn_pack["l2"], "l1": pcd.dcn_pack["l1"],
                                    "cascade": pcd.cas_dcnpack}

    def start(_module, args):
        for chunks in kept["dcn"].values():
            chunks.clear()
        first = args[0][0] if isinstance(model, PCDAlignment) else args[0]
        kept["batch"] = first.shape[0]

    def keep(name):
        def hook(_module, _args, out):
            kept[name] = _cpu(out)
        return hook

    def keep_dcn(key):
        def hook(_module, _args, out):
            kept["dcn"][key].append(_cpu(out))
        return hook

    def finish(_module, _args, _out):
        b, t = kept["batch"], num_frame
        for key, pack in packs.items():
            offset, mask = DCNv2Pack.offsets_and_mask(_untangle(kept["dcn"][key], b, t).float().flatten(0, 1))
            g, kk = pack.deformable_groups, pack.kernel_size ** 2
            h, w = offset.shape[-2:]
            rec.pcd_offsets[key] = offset.view(b, t, g, kk, 2, h, w)
            rec.pcd_masks[key] = mask.view(b, t, g, kk, h, w)
        if fusion is None:
            return
        aligned = kept["fusion_in"]
        rec.aligned = aligned.view(b, t, -1, *aligned.shape[-2:])
        if isinstance(fusion, TSAFusion):
            rec.temporal_attn = kept["temporal_gate"]
            rec.spatial_attn = kept["spatial_gate"]
            rec.spatial_attn_add = kept["spatial_attn_add2"]

    handles = [model.register_forward_pre_hook(start)]
    try:
        for key, pack in packs.items():
            handles.append(pack.conv_offset.register_forward_hook(keep_dcn(key)))
        if fusion is not None:
            handles.append(fusion.register_forward_pre_hook(lambda _m, args: kept.update(fusion_in=_cpu(args[0]))))
            if isinstance(fusion, TSAFusion):
                for name in ("temporal_gate", "spatial_gate", "spatial_attn_add2"):
                    handles.append(getattr(fusion, name).register_forward_hook(keep(name)))
        handles.append(model.register_forward_hook(finish))
        yield rec
    finally:
        for handle in handles:
            handle.remove()


def offsets_to_flow(offsets: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Summarise DCN offsets as one displacement per pixel: the (mask-weighted) mean over groups and taps.

    For a neighbour that is the centre frame shifted by ``d`` pixels, a well-aligned DCN learns ``offset ~ d``
    at every tap, so this is comparable with an optical flow ``(dy, dx)`` in the convention "centre (reference)
    pixel ``p`` is found in the neighbour at ``p + flow``", the direction a backward warp uses
    (``warped(p) = neighbour(p + flow)``). The offsets are laid out groups x kernel points x ``(dy, dx)`` in
    torchvision order (:attr:`Internals.pcd_offsets`). Learned motion is the ``'l1'`` DCN's; the ``'cascade'``
    offsets are a residual (its input is already aligned), not a motion of their own.

    Args:
        offsets: ``(..., g, 9, 2, h, w)`` as in :attr:`Internals.pcd_offsets`.
        masks: optional ``(..., g, 9, h, w)``; when given, taps are weighted by their mask.

    Returns:
        ``(..., 2, h, w)`` with channel 0 = dy, 1 = dx.
    """
    if masks is None:
        return offsets.mean(dim=(-5, -4))
    wts = masks.unsqueeze(-3)
    return (offsets * wts).sum(dim=(-5, -4)) / wts.sum(dim=(-5, -4)).clamp_min(1e-8)
