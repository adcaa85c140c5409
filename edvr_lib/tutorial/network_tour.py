"""The whole EDVR once, end to end (notebook 02): shapes at every stage (:func:`trace_shapes`), parameters and
FLOPs per stage (:func:`module_table`, FLOPs by :func:`edvr_lib.introspect.count_flops`)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs import build_edvr
from edvr_lib.archs.config import EDVRConfig, get_config
from edvr_lib.introspect import count_flops, record_internals
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks

__all__ = ["STAGES", "stage_of", "trace_shapes", "format_trace", "module_table",
           "format_module_table", "paper_vs_code"]

#: top-level module name -> the stage of EDVR it belongs to (in forward order)
STAGES = {name: stage for stage, names in (
    ("feature extraction", "predeblur conv_1x1 conv_first stride_conv_hr1 stride_conv_hr2 feature_extraction"),
    ("pyramid (L2, L3)", "conv_l2_1 conv_l2_2 conv_l3_1 conv_l3_2"), ("PCD alignment", "pcd_align"),
    ("TSA fusion", "fusion"), ("reconstruction", "reconstruction"),
    ("upsampling", "upconv1 pixel_shuffle upconv2 conv_hr conv_last")) for name in names.split()}


def stage_of(name: str) -> str:
    """The stage of a top-level EDVR module name (``'pcd_align'`` -> ``'PCD alignment'``)."""
    return STAGES.get(name.split(".")[0], "other")


@torch.no_grad()
def trace_shapes(model: nn.Module, x: torch.Tensor) -> dict:
    """Run ``model`` on ``x`` once and record each top-level module's output shape, in call order.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.
        x: ``(b, t, 3, h, w)`` window.

    Returns:
        ``dict`` with ``rows`` (``[{'module', 'stage', 'input', 'output'}]``; per-frame stages show ``b * t``),
        ``out`` ``(b, 3, H, W)``, ``residual`` (``conv_last``'s output) and ``base`` (the bilinear x4 centre frame,
        or the centre frame with ``hr_in``): ``out == residual + base``.
    """
    rows, kept = [], {}

    def hook(name):
        def fn(_module, args, out):
            rows.append({"module": name, "stage": stage_of(name),
                         "input": [tuple(a.shape) for a in _tensors(args)], "output": tuple(out.shape)})
            if name == "conv_last":
                kept["residual"] = out.detach().clone()
        return fn

    with forward_hooks([(child, hook(name)) for name, child in model.named_children()]):
        out = model.eval()(x)
    ctr = model.config.center
    centre = x[:, ctr]
    base = centre if model.config.hr_in else F.interpolate(centre, scale_factor=4, mode="bilinear",
                                                           align_corners=False)
    return {"rows": rows, "out": out, "residual": kept["residual"], "base": base}


def _tensors(args) -> list[torch.Tensor]:
    return [x for a in args for x in ([a] if isinstance(a, torch.Tensor) else
                                      _tensors(a) if isinstance(a, (list, tuple)) else [])]


def module_table(preset: str | EDVRConfig = "M", h: int = 180, w: int = 320, **overrides) -> dict:
    """Parameters and GFLOP per stage of one EDVR preset, for one output frame from a ``(1, t, 3, h, w)`` input.

    FLOPs by :func:`edvr_lib.introspect.count_flops`: EDVR-M at 180 x 320 costs 934.3 GFLOP (973.6 as written in
    BasicSR's code: PCD here computes the reference half of its first offset convolutions once per window).

    Args:
        preset: a name of :data:`edvr_lib.archs.PRESETS` or a config.
        h, w: input size (default REDS LR, 180 x 320); multiples of 4 (16 with ``hr_in``).
        overrides: config fields to change.

    Returns:
        ``dict`` with ``config``, ``stages`` (``{stage: {'params': int, 'gflop': float}}`` in forward order),
        ``params`` and ``gflop`` (totals), ``h``, ``w``.
    """
    config = get_config(preset, **overrides)
    model = build_edvr(config)
    stages: dict[str, dict] = {}
    flops = count_flops(model.eval(), torch.empty(1, config.num_frame, 3, h, w))
    for name, child in model.named_children():
        s = stages.setdefault(stage_of(name), {"params": 0, "gflop": 0.0})
        s["params"] += sum(p.numel() for p in child.parameters())
        s["gflop"] += flops.get(name, 0) / 1e9
    return {"config": config, "stages": stages, "h": h, "w": w,
            "params": sum(s["params"] for s in stages.values()), "gflop": sum(s["gflop"] for s in stages.values())}


def format_module_table(tables: dict[str, dict]) -> str:
    """A Markdown table, one row per stage and one column pair per preset (``{'M': module_table('M'), ...}``)."""
    names = list(tables)
    stages = list(dict.fromkeys(s for t in tables.values() for s in t["stages"]))
    any_t = next(iter(tables.values()))
    head = "| stage | " + " | ".join(f"{n}: params | {n}: GFLOP" for n in names) + " |"
    lines = [f"Per output frame, LR input {any_t['h']} x {any_t['w']}, {any_t['config'].num_frame} frames.", "",
             head, "|---|" + "---:|---:|" * len(names)]
    for s in stages:
        cells = []
        for n in names:
            st = tables[n]["stages"].get(s, {"params": 0, "gflop": 0.0})
            share = 100 * st["gflop"] / tables[n]["gflop"]
            cells += [f"{st['params']:,}", f"{st['gflop']:.1f} ({share:.0f}%)"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{tables[n]['params']:,}** | **{tables[n]['gflop']:.1f}**"
                                               for n in names) + " |")
    return "\n".join(lines)


def format_trace(trace: dict) -> str:
    """:func:`trace_shapes`'s rows as aligned text: module, stage, input shape(s) -> output shape."""
    lines = [f"{'module':<20} {'stage':<20} {'input':<34} -> output"]
    for r in trace["rows"]:
        ins = ", ".join(str(s) for s in r["input"][:2]) + (", ..." if len(r["input"]) > 2 else "")
        lines.append(f"{r['module']:<20} {r['stage']:<20} {ins:<34} -> {r['output']}")
    lines.append(f"{'+ base':<20} {'(bilinear x4 / hr_in)':<20} {str(tuple(trace['base'].shape)):<34} -> "
                 f"{tuple(trace['out'].shape)}")
    return "\n".join(lines)


@torch.no_grad()
def paper_vs_code(model: nn.Module, x: torch.Tensor) -> dict:
    """Measure, in one forward of an EDVR with TSA, three places where the released code differs from the paper.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` with ``with_tsa=True`` and LR input.
        x: ``(b, t, 3, h, w)`` window.

    Returns:
        ``dict`` of max absolute differences: ``offset_x2`` / ``offset_x1`` (PCD L2's coarse offset feature against
        ``2 * up(L3's)``, the code, and ``up(L3's)``, Eq. 3), ``spatial_from_weighted`` (TSA's spatial attention
        input against the weighted aligned frames; ``spatial_in_channels`` / ``fused_channels`` show it is not the
        fused feature of Fig. 4), ``base_bilinear`` / ``base_bicubic`` (``output - residual`` against an x4 centre).
    """
    if not model.config.with_tsa or model.config.hr_in:
        raise EDVRError("paper_vs_code needs an EDVR with TSA and LR input (with_tsa=True, hr_in=False)")
    pcd, tsa, seen = model.pcd_align, model.fusion, {}

    def keep(name, what):
        def fn(_m, args, out):
            got = out if what == "output" else args[0]
            seen[name] = [a.detach().clone() for a in got] if isinstance(got, (list, tuple)) else got.detach().clone()
        return fn

    hooks = [(pcd.offset_conv2["l3"], keep("l3_offset", "output")), (pcd.offset_conv2["l2"], keep("l2_in", "input")),
             (tsa.spatial_attn1, keep("spatial_in", "input")), (tsa.feat_fusion, keep("fused", "output"))]
    with forward_hooks(hooks), record_internals(model) as rec:
        trace = trace_shapes(model, x)
    up = F.interpolate(F.leaky_relu(seen["l3_offset"], 0.1), scale_factor=2, mode="bilinear", align_corners=False)
    coarse = seen["l2_in"][1]  # offset_conv2['l2'] gets [this level's offset feature, the coarser one]
    b, t, c, h, w = rec.aligned.shape
    weighted = (rec.aligned * rec.temporal_attn.unsqueeze(2)).reshape(b, t * c, h, w)
    centre = x[:, model.config.center]
    base = trace["out"] - trace["residual"]

    def diff(a, b_):
        return float((a - b_).abs().max())

    return {"offset_x2": diff(coarse, 2 * up), "offset_x1": diff(coarse, up),
            "spatial_from_weighted": diff(seen["spatial_in"], weighted),
            "spatial_in_channels": int(seen["spatial_in"].shape[1]), "fused_channels": int(seen["fused"].shape[1]),
            "base_bilinear": diff(base, F.interpolate(centre, scale_factor=4, mode="bilinear", align_corners=False)),
            "base_bicubic": diff(base, F.interpolate(centre, scale_factor=4, mode="bicubic", align_corners=False))}
