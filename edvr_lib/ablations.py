"""Ablations you can run: switch one EDVR module off on a trained model and see what it bought.

Each ablation is a context manager yielding the network to run; the changes are forward hooks on the model's own
modules (or a wrapper around it), removed on exit, so the weights are never touched.

* :func:`zero_offsets` -- **PCD off**: every alignment DCN samples the regular 3x3 grid (offsets 0, the learned
  masks kept), which removes exactly the sampling positions, i.e. the motion compensation.
* :func:`uniform_attention` -- **TSA's attention made uniform**: the temporal attention ``(b, t, h, w)`` becomes
  its mean over frames and pixels, the spatial attention and its additive map ``(b, c, h, w)`` their means over
  pixels. Means, not 1: the layers after the attention were trained on features at the attention's learned level
  (about 0.9 temporal, 0.5 spatial), so only *where and which frame* gets more weight changes, not the scale.
* :func:`centre_frame_only` -- the model fed its centre frame ``t`` times (:class:`CentreFrameOnly`).

:func:`run_ablations` returns the outputs and PSNR side by side (``edvr_lib.viz.figures.ablation_figure``)::

    res = run_ablations(model, item["lq"], item["gt"])
    res.psnr            # {'full model': 27.9, 'PCD off (zero offsets)': 27.1, ...}
    with zero_offsets(model) as ablated:
        out = ablated(x)  # (b, 3, 4h, 4w) without motion compensation
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn

from edvr_lib.archs import DCNv2Pack, TSAFusion
from edvr_lib.models import SRModel
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks

__all__ = ["ABLATIONS", "AblationResults", "zero_offsets", "centre_offsets", "uniform_attention", "centre_frame_only",
           "CentreFrameOnly", "run_ablations"]


def _edvr_part(model: nn.Module, name: str) -> nn.Module:
    part = getattr(model, name, None)
    if part is None:
        raise EDVRError(f"{type(model).__name__} has no {name!r}: ablations need an edvr_lib.archs.EDVR "
                        "(load one with edvr_lib.models.load_model)")
    return part


def _drop_offsets(_module, _args, offset_mask: torch.Tensor) -> torch.Tensor:
    # conv_offset output: offsets (first two thirds, see DCNv2Pack.offsets_and_mask), then mask logits
    n = offset_mask.shape[1] // 3
    return torch.cat([torch.zeros_like(offset_mask[:, : 2 * n]), offset_mask[:, 2 * n:]], dim=1)


def _alignment_packs(model: nn.Module) -> list[DCNv2Pack]:
    return [m for m in _edvr_part(model, "pcd_align").modules() if isinstance(m, DCNv2Pack)]


@contextlib.contextmanager
def zero_offsets(model: nn.Module) -> Iterator[nn.Module]:
    """PCD off: every alignment DCN samples the regular grid (offsets 0, masks as predicted).

    This also changes the centre frame's own path (a trained DCN aligns it to itself with non-zero offsets);
    :func:`centre_offsets` removes only the motion.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.

    Yields:
        ``model`` itself, changed until the block ends: ``(b, t, 3, h, w) -> (b, 3, 4h, 4w)``.
    """
    with forward_hooks([(pack.conv_offset, _drop_offsets) for pack in _alignment_packs(model)]):
        yield model


@contextlib.contextmanager
def centre_offsets(model: nn.Module) -> Iterator[nn.Module]:
    """PCD without motion: every frame is sampled with the offsets of the centre frame's self-alignment.

    Each DCN's offsets for frame ``i`` of a sample (EDVR aligns the ``b * t`` frames in one batch) are replaced by
    those of the sample's centre frame (masks kept), so only the motion the offsets encoded is removed.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.

    Yields:
        ``model`` itself, changed until the block ends.
    """
    t, ctr = model.num_frame, model.center_frame_idx

    def hook(_module, _args, offset_mask: torch.Tensor) -> torch.Tensor:
        n, ch, h, w = offset_mask.shape
        if n % t:
            raise EDVRError(f"centre_offsets: a DCN saw {n} frames, not a multiple of num_frame={t}")
        per_sample, k = offset_mask.reshape(n // t, t, ch, h, w), 2 * (ch // 3)
        offsets = per_sample[:, ctr:ctr + 1, :k].expand(-1, t, -1, -1, -1)
        return torch.cat([offsets, per_sample[:, :, k:]], dim=2).reshape(n, ch, h, w)

    with forward_hooks([(pack.conv_offset, hook) for pack in _alignment_packs(model)]):
        yield model


def _mean_over(dims: tuple[int, ...]) -> Callable:
    def hook(_module, _args, out: torch.Tensor) -> torch.Tensor:
        return out.mean(dim=dims, keepdim=True).expand_as(out).contiguous()
    return hook


@contextlib.contextmanager
def uniform_attention(model: nn.Module, temporal: bool = True, spatial: bool = True) -> Iterator[nn.Module]:
    """TSA with constant attention: each map replaced by its own mean (see the module docstring for why).

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` with TSA fusion (``with_tsa=True``).
        temporal: the temporal attention ``(b, t, h, w)`` becomes its mean over t, h, w.
        spatial: the spatial attention and its additive map ``(b, c, h, w)`` become their means over h, w.

    Yields:
        ``model`` itself, changed until the block ends.
    """
    fusion = _edvr_part(model, "fusion")
    if not isinstance(fusion, TSAFusion):
        raise EDVRError("uniform_attention needs TSA fusion; this model fuses with a plain conv (with_tsa=False)")
    if not (temporal or spatial):
        raise EDVRError("uniform_attention: set temporal=True, spatial=True or both")
    hooks = [(fusion.temporal_gate, _mean_over((1, 2, 3)))] if temporal else []
    if spatial:
        hooks += [(fusion.spatial_gate, _mean_over((2, 3))), (fusion.spatial_attn_add2, _mean_over((2, 3)))]
    with forward_hooks(hooks):
        yield model


class CentreFrameOnly(nn.Module):
    """``model`` fed its centre frame ``t`` times: ``(b, t, c, h, w) -> model(centre frame repeated t times)``."""

    def __init__(self, model: SRModel):
        super().__init__()
        self.model = model
        self.num_frame, self.center_frame_idx = model.num_frame, model.center_frame_idx
        self.size_multiple, self.scale = model.size_multiple, model.scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, self.center_frame_idx : self.center_frame_idx + 1]
        return self.model(centre.expand_as(x).contiguous())


@contextlib.contextmanager
def centre_frame_only(model: nn.Module) -> Iterator[nn.Module]:
    """The model fed its centre frame ``t`` times (a wrapper; ``model`` itself is not changed)."""
    yield CentreFrameOnly(model)


#: name -> (context manager factory, what it removes); the order of the side-by-side figure
ABLATIONS: dict[str, tuple[Callable, str]] = {
    "PCD motion off (centre's offsets)": (centre_offsets, "every frame sampled with the centre frame's "
                                          "self-alignment offsets: the motion the offsets encode"),
    "PCD off (zero offsets)": (zero_offsets, "every alignment DCN samples the regular grid, the centre frame too"),
    "uniform temporal attention": (lambda m: uniform_attention(m, spatial=False),
                                   "every frame and pixel weighted alike before the fusion"),
    "uniform TSA (temporal + spatial)": (uniform_attention,
                                         "temporal weights and spatial modulation constant over frames and pixels"),
    "centre frame only": (centre_frame_only, "the neighbours replaced by copies of the centre frame"),
}

FULL = "full model"


@dataclass
class AblationResults:
    """Outputs and PSNR of the full model and its ablations on the same windows.

    Attributes:
        outputs: ``{variant: (b, 3, 4h, 4w)}`` float outputs (clamped to [0, 1]), ``'full model'`` first.
        psnr: ``{variant: mean PSNR over the b windows}`` in dB (uint8-rounded RGB, crop border 0, as
            :func:`edvr_lib.evaluate.evaluate`).
        psnr_per_window: ``{variant: [b floats]}``.
        gt: ``(b, 3, 4h, 4w)``; ``lq``: ``(b, t, 3, h, w)``.
        descriptions: ``{variant: what it removes}``.
    """

    outputs: dict[str, torch.Tensor] = field(default_factory=dict)
    psnr: dict[str, float] = field(default_factory=dict)
    psnr_per_window: dict[str, list[float]] = field(default_factory=dict)
    gt: torch.Tensor | None = None
    lq: torch.Tensor | None = None
    descriptions: dict[str, str] = field(default_factory=dict)

    def gain(self, variant: str) -> float:
        """What the ablated part buys: PSNR of the full model minus that of ``variant`` (dB)."""
        return self.psnr[FULL] - self.psnr[variant]

    def table(self) -> str:
        """A Markdown table: variant, PSNR, change against the full model, what was removed."""
        lines = ["| variant | PSNR (dB) | vs full model (dB) | what is removed |", "|---|---:|---:|---|"]
        for name, value in self.psnr.items():
            delta = "" if name == FULL else f"{value - self.psnr[FULL]:+.3f}"
            lines.append(f"| {name} | {value:.2f} | {delta} | {self.descriptions.get(name, '')} |")
        return "\n".join(lines)


@torch.no_grad()
def run_ablations(model: nn.Module, lq: torch.Tensor, gt: torch.Tensor, variants: list[str] | None = None,
                  include_bicubic: bool = True) -> AblationResults:
    """Run the same windows through the full model and each ablation; outputs and PSNR side by side.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` in eval mode (left exactly as it was).
        lq: ``(t, 3, h, w)`` or ``(b, t, 3, h, w)`` LR windows in [0, 1] (any size: padded like ``edvr test``).
        gt: ``(3, 4h, 4w)`` or ``(b, 3, 4h, 4w)`` ground truth of the centre frames.
        variants: names from :data:`ABLATIONS` (default: all of them, in that order).
        include_bicubic: add the MATLAB-bicubic x4 of the centre frame (the usual baseline row).

    Returns:
        :class:`AblationResults`, with ``'full model'`` first.
    """
    from edvr_lib.inference import padded_runner
    from edvr_lib.metrics import calculate_psnr, tensor2img
    from edvr_lib.models import bicubic_model

    lq = lq if lq.dim() == 5 else lq.unsqueeze(0)
    gt = gt if gt.dim() == 4 else gt.unsqueeze(0)
    if lq.shape[0] != gt.shape[0] or gt.shape[-2:] != (lq.shape[-2] * 4, lq.shape[-1] * 4):
        raise EDVRError(f"run_ablations: lq {tuple(lq.shape)} and gt {tuple(gt.shape)} do not match; gt must be "
                        "(b, 3, 4h, 4w) for lq (b, t, 3, h, w)")
    variants = list(ABLATIONS) if variants is None else variants
    unknown = [v for v in variants if v not in ABLATIONS]
    if unknown:
        raise EDVRError(f"unknown ablation {unknown[0]!r}; choose from {list(ABLATIONS)}")
    device = next(model.parameters()).device
    x = lq.to(device)
    res = AblationResults(gt=gt.cpu(), lq=lq.cpu(), descriptions={FULL: "nothing (the trained network)"})

    def score(name: str, net: nn.Module) -> None:
        out = padded_runner(net)(x).float().clamp(0, 1).cpu()
        per = [calculate_psnr(tensor2img(o), tensor2img(g)) for o, g in zip(out, res.gt)]
        res.outputs[name], res.psnr_per_window[name], res.psnr[name] = out, per, sum(per) / len(per)

    score(FULL, model)
    for name in variants:
        factory, what = ABLATIONS[name]
        with factory(model) as ablated:
            score(name, ablated)
        res.descriptions[name] = what
    if include_bicubic:
        score("bicubic", bicubic_model(lq.shape[1]).to(device))
        res.descriptions["bicubic"] = "the network altogether (MATLAB bicubic x4 of the centre frame)"
    return res
