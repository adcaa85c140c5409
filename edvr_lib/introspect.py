"""Look inside one EDVR forward pass: PCD offsets and masks, aligned features, TSA attention maps, offset statistics
while training, FLOPs per module.

Example::

    with record_internals(model) as rec:
        out = model(x)
    rec.pcd_offsets["l1"]   # (b, t, g, 9, 2, h, w), [..., 0, :, :] = dy, [..., 1, :, :] = dx, in L1 pixels
    rec.temporal_attn       # (b, t, h, w)
    with offset_monitor(model) as means:   # what the trainer logs: mean |offset| of every DCN
        model(x)
    offset_stats(means)     # {'pcd_align.dcn_pack.l1': 0.8, ...}
    edvr_gflop("M", 180, 320)   # 934.3: one output frame at REDS size

Recording uses forward hooks that exist only inside the ``with`` block (:func:`edvr_lib.utils.hooks.forward_hooks`),
so a model that is not being recorded runs exactly the code it always runs (no flag, no cost), and the recorded
forward gives the same outputs. Everything :func:`record_internals` records is a detached CPU tensor.
"""
from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass, field
from typing import Iterator

import torch
from torch import nn

from edvr_lib.archs import DCNv2Pack, PCDAlignment, TSAFusion, build_edvr
from edvr_lib.ops import speed_policy, split_offset_mask
from edvr_lib.utils.hooks import forward_hooks

__all__ = ["Internals", "record_internals", "offsets_to_flow", "offset_monitor", "offset_stats", "count_flops",
           "edvr_gflop"]


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
    kept: dict = {}  # this forward's 'batch', 'fusion_in' and {module name: [its outputs]}
    if isinstance(model, PCDAlignment):
        pcd, fusion, num_frame = model, None, 1
    elif isinstance(model, TSAFusion):
        pcd, fusion, num_frame = None, model, model.num_frame
    else:
        pcd, fusion, num_frame = model.pcd_align, model.fusion, model.num_frame
    packs = {} if pcd is None else {**pcd.dcn_pack, "cascade": pcd.cas_dcnpack}  # l3, l2, l1, cascade

    def start(_module, args):
        kept.clear()
        kept["batch"] = (args[0][0] if isinstance(model, PCDAlignment) else args[0]).shape[0]

    def keep(name):
        def hook(_module, _args, out):
            kept.setdefault(name, []).append(_cpu(out))
        return hook

    def finish(_module, _args, _out):
        b, t = kept["batch"], num_frame
        for key, pack in packs.items():
            chunks = kept[key]  # one call per frame (batch b each) or one batched call (b * t), joined b-major
            if len(chunks) == t and t > 1 and chunks[0].shape[0] == b:
                joined = torch.stack(chunks, dim=1).flatten(0, 1)
            else:
                joined = torch.cat(chunks, dim=0)
            offset, mask = DCNv2Pack.offsets_and_mask(joined.float())
            g, kk = pack.deformable_groups, pack.kernel_size ** 2
            h, w = offset.shape[-2:]
            rec.pcd_offsets[key] = offset.view(b, t, g, kk, 2, h, w)
            rec.pcd_masks[key] = mask.view(b, t, g, kk, h, w)
        if fusion is None:
            return
        aligned = kept["fusion_in"]
        rec.aligned = aligned.view(b, t, -1, *aligned.shape[-2:])
        if isinstance(fusion, TSAFusion):
            rec.temporal_attn = kept["temporal_gate"][-1]
            rec.spatial_attn = kept["spatial_gate"][-1]
            rec.spatial_attn_add = kept["spatial_attn_add2"][-1]

    hooks = [(pack.conv_offset, keep(key)) for key, pack in packs.items()]
    pre_hooks = [(model, start)]
    if fusion is not None:
        pre_hooks.append((fusion, lambda _m, args: kept.update(fusion_in=_cpu(args[0]))))
        if isinstance(fusion, TSAFusion):
            hooks += [(getattr(fusion, n), keep(n)) for n in ("temporal_gate", "spatial_gate", "spatial_attn_add2")]
    with forward_hooks(hooks + [(model, finish)], pre_hooks):
        yield rec


def offsets_to_flow(offsets: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Summarise DCN offsets as one displacement per pixel: the (mask-weighted) mean over groups and taps.

    For a neighbour that is the centre frame shifted by ``d`` pixels, a well-aligned DCN learns ``offset ~ d``
    at every tap, so this is comparable with an optical flow ``(dy, dx)`` in the convention "centre (reference)
    pixel ``p`` is found in the neighbour at ``p + flow``", the direction a backward warp uses
    (``warped(p) = neighbour(p + flow)``). Layout, and why learned motion is the ``'l1'`` DCN's, not the
    ``'cascade'``'s: :attr:`Internals.pcd_offsets`.

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


@contextlib.contextmanager
def offset_monitor(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Keep ``mean(|offset|)`` of every DCN pack's last forward inside the block (what the trainer logs).

    BasicSR warns when ``mean(|offset|) > 50`` with a Python ``if`` on a tensor inside the network, which syncs the
    device on every call and breaks tracing. Here a forward hook on each pack's ``conv_offset`` stores the statistic
    as a detached device tensor (no sync, no branch); read the values with :func:`offset_stats`. Hooks on the modules
    work through wrappers (DDP).

    Args:
        model: any module holding :class:`~edvr_lib.archs.DCNv2Pack` s (an EDVR).

    Yields:
        ``{module name: 0-dim tensor}``, filled by each forward (e.g. ``'pcd_align.dcn_pack.l1'``).
    """
    means: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(_module, _args, out):
            means[name] = split_offset_mask(out)[0].detach().abs().mean()
        return hook

    packs = [(m.conv_offset, keep(name)) for name, m in model.named_modules() if isinstance(m, DCNv2Pack)]
    with forward_hooks(packs):
        yield means


def offset_stats(means: dict[str, torch.Tensor]) -> dict[str, float]:
    """:func:`offset_monitor`'s values as floats (syncs once). Above ~50 px (BasicSR's warning threshold) the DCN
    training has usually diverged."""
    if not means:
        return {}
    device = next(iter(means.values())).device
    return dict(zip(means, torch.stack([v.float().to(device) for v in means.values()]).cpu().tolist()))


def _dcn_flops(x_shape, weight_shape, *_args, out_shape, **_kwargs) -> int:
    # torchvision::deform_conv2d: one k x k product per output value, as a convolution of the same shapes
    return 2 * math.prod(out_shape) * math.prod(weight_shape[1:])


def count_flops(model: nn.Module, *inputs: torch.Tensor) -> dict[str, int]:
    """FLOPs of one forward, per module: ``{'': total, 'pcd_align': ..., 'pcd_align.dcn_pack.l1': ...}``.

    Counted by ``torch.utils.flop_counter.FlopCounterMode`` (2 x multiply-adds of every convolution and matrix
    product, bias and element-wise work not counted) on fake tensors: shapes only, no arithmetic, so a full-size
    frame costs no time and the weights do not matter. The DCNs run torchvision's kernel, a custom op the counter
    does not know; it is counted here like a convolution of the same shapes (``2 * out.numel() * c_in * k * k``).

    Args:
        model: any module (its parameters may be real or fake tensors).
        inputs: the forward's arguments, real or fake (only their shapes are used).

    Returns:
        ``{dotted module name relative to model: FLOPs}``; ``''`` is the total.
    """
    from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    modes = {t.fake_mode for t in (*model.parameters(), *inputs) if isinstance(t, FakeTensor)}
    fake = modes.pop() if modes else FakeTensorMode(allow_non_fake_inputs=True)
    counter = FlopCounterMode(display=False, custom_mapping={torch.ops.torchvision.deform_conv2d: _dcn_flops})
    with fake, speed_policy(dcn_backend="torchvision"), torch.no_grad(), counter:
        model(*[x if isinstance(x, FakeTensor) else fake.from_tensor(x) for x in inputs])
    out = {"": counter.get_total_flops()}
    for name, per_op in counter.get_flop_counts().items():
        if "." in name:  # '<root class>.<module path>'
            out[name.split(".", 1)[1]] = sum(per_op.values())
    return out


@functools.lru_cache(maxsize=64)
def edvr_gflop(preset: str = "M", h: int = 64, w: int = 64, **overrides) -> float:
    """GFLOP of one EDVR forward (one output frame) for an input ``(1, num_frame, 3, h, w)``, by :func:`count_flops`.

    Every layer counts, predeblur and ``hr_in`` included. EDVR-M: 66.4 GFLOP at 64 x 64, 934.3 at 180 x 320
    (:func:`edvr_lib.tutorial.network_tour.module_table` explains the 39.3 GFLOP that counting PCD's first offset
    convolution whole for every frame would add).

    Args:
        preset: a name of :data:`edvr_lib.archs.PRESETS`.
        h, w: input size (LR, or HR with ``hr_in``).
        overrides: :class:`~edvr_lib.archs.EDVRConfig` fields (``num_feat=128``, ``num_reconstruct_block=40``).
    """
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode(allow_non_fake_inputs=True):  # fake weights: building even EDVR-L costs nothing
        model = build_edvr(preset, **overrides).eval()
        x = torch.empty(1, model.num_frame, 3, h, w)
    return count_flops(model, x)[""] / 1e9
