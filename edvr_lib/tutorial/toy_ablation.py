"""The EDVR paper's ablations at toy scale: one DCN vs pyramid vs pyramid + cascade, and TSA vs plain fusion.

The paper's comparisons (Wang et al., CVPRW 2019) retrained at CPU size (:data:`VARIANTS`, toy-width
:func:`edvr_lib.archs.build_edvr` s trained by :func:`edvr_lib.tutorial.fit.fit_demo`; on one CPU thread the results
repeat exactly) on windows rendered from the *training* clips, judged on held-out windows: the alignment variants on
large motion (1-4 LR px per frame) with plain fusion, by PSNR and the learned motion's end-point error; TSA vs plain
fusion on windows with one spoilt neighbour (:func:`edvr_lib.data.corruption.spoil_neighbour`). Effects can be small
or reversed at this scale: :func:`comparison_rows` puts each beside the paper's with a verdict.

Example::

    res = run_toy_ablation(ToyAblationConfig(steps=300))   # minutes on one CPU thread
    for row in comparison_rows(res): print(row)
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from edvr_lib.archs import DCNv2Pack, PCDAlignment, build_edvr
from edvr_lib.archs.blocks import lrelu
from edvr_lib.ops.fused import ConcatConv2d
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks

__all__ = ["ToyAblationConfig", "Variant", "VARIANTS", "COMPARISONS", "SingleDCNAlignment", "PyramidAlignment",
           "build_variant", "training_bank", "held_out_sets", "train_variant", "evaluate_variant", "run_variant",
           "run_toy_ablation", "comparison_rows", "variant_rows", "markdown_table", "toy_ablation_figure"]


class SingleDCNAlignment(nn.Module):
    """One modulated DCN on the L1 features: no pyramid, no cascade (the ablation's baseline alignment).

    Offsets from the concatenated neighbour and reference L1 features through two 3x3 convs (EDVR Eq. 2), one
    :class:`~edvr_lib.archs.DCNv2Pack` (``num_feat`` channels, ``deformable_groups``) sampling the neighbour (Eq. 1).

    Shapes:
        As :class:`~edvr_lib.archs.PCDAlignment` (only ``L1`` ``(n, c, h, w)`` is used) -> ``(n, c, h, w)``.
    """

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8):
        super().__init__()
        c = num_feat
        self.offset_conv1 = ConcatConv2d(c * 2, c, 3, 1, 1)
        self.offset_conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.dcn_pack = DCNv2Pack(c, c, 3, padding=1, deformable_groups=deformable_groups)

    def forward(self, nbr_feat_l: list[torch.Tensor], ref_feat_l: list[torch.Tensor]) -> torch.Tensor:
        offset = lrelu(self.offset_conv2(lrelu(self.offset_conv1([nbr_feat_l[0], ref_feat_l[0]]))))
        return lrelu(self.dcn_pack(nbr_feat_l[0], offset))


class _Skipped(nn.Module):
    """A parameter-free stand-in for one layer of a skipped stage: returns its first input (``pass_on``) or an
    empty tensor (a path whose result is unused; PCD's in-place activations must not alias the feature passed on)."""

    def __init__(self, pass_on: bool):
        super().__init__()
        self.pass_on = pass_on

    def forward(self, x, *_):
        first = x[0] if isinstance(x, (list, tuple)) else x
        return first if self.pass_on else first.new_zeros(0)


class PyramidAlignment(PCDAlignment):
    """PCD's pyramid (L3 -> L2 -> L1, EDVR Eq. 3) without the cascading DCN: the inherited forward runs with the
    cascade's layers replaced by parameter-free stand-ins (``cas_dcnpack`` passes the merged L1 feature through).
    Same arguments and shapes as :class:`~edvr_lib.archs.PCDAlignment`."""

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8):
        super().__init__(num_feat, deformable_groups)
        self.cas_offset_conv1 = _Skipped(pass_on=False)
        self.cas_offset_conv2 = _Skipped(pass_on=False)
        self.cas_dcnpack = _Skipped(pass_on=True)


@dataclass(frozen=True)
class Variant:
    """One network of the ablation and the data it learns from.

    Attributes:
        alignment: ``'dcn'`` (:class:`SingleDCNAlignment`), ``'pyramid'`` (:class:`PyramidAlignment`) or ``'pcd'``.
        fusion: ``'concat'`` (the aligned frames' channels stacked, one 1x1 conv: ``with_tsa=False``) or ``'tsa'``.
        data: ``'large motion'`` or ``'spoilt frame'`` (the same windows, half with one neighbour spoilt).
    """

    alignment: str
    fusion: str
    data: str


#: the variants, in the order of the tables
VARIANTS: dict[str, Variant] = {
    "one DCN": Variant("dcn", "concat", "large motion"),
    "pyramid (no cascade)": Variant("pyramid", "concat", "large motion"),
    "PCD (pyramid + cascade)": Variant("pcd", "concat", "large motion"),
    "concat + 1x1 conv": Variant("pcd", "concat", "spoilt frame"),
    "TSA": Variant("pcd", "tsa", "spoilt frame"),
}

#: (effect, variant, baseline, test set, the paper's direction): each row of the comparison table
COMPARISONS = (
    ("pyramid over one DCN", "pyramid (no cascade)", "one DCN", "large motion",
     "better (PCD > pyramid only > one DCN)"),
    ("cascade on top of the pyramid", "PCD (pyramid + cascade)", "pyramid (no cascade)", "large motion",
     "better (PCD > pyramid only)"),
    ("full PCD over one DCN", "PCD (pyramid + cascade)", "one DCN", "large motion", "better"),
    ("TSA over concat + 1x1 conv", "TSA", "concat + 1x1 conv", "spoilt frame", "better (TSA > no TSA)"),
)


@dataclass(frozen=True)
class ToyAblationConfig:
    """Sizes of the toy ablation (the defaults: about 15 minutes of one CPU thread for all five variants).

    Attributes:
        num_feat, deformable_groups, num_extract_block, num_reconstruct_block: the toy EDVR (EDVR-M: 64, 8, 5, 10).
        num_frame, gt_size: window length ``t`` and GT side of a training window (LR side ``gt_size / 4``).
        min_shift, max_shift: translation per frame, LR px.
        bank_size: training windows rendered once and drawn from at random.
        spoil_prob, spoil_strength: share of the ``'spoilt frame'`` training windows spoilt, and the fault's strength.
        steps, batch_size, lr: optimiser steps, windows per step, Adam's initial learning rate.
        eval_windows_per_source, eval_gt_size: the held-out set (:func:`held_out_sets`).
        seed: seeds the rendering, the spoiling, the initialisation and the batches.
    """

    num_feat: int = 16
    deformable_groups: int = 4
    num_extract_block: int = 1
    num_reconstruct_block: int = 2
    num_frame: int = 5
    gt_size: int = 64
    min_shift: float = 1.0
    max_shift: float = 4.0
    bank_size: int = 256
    spoil_prob: float = 0.5
    spoil_strength: float = 0.3
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-3
    eval_windows_per_source: int = 6
    eval_gt_size: int = 96
    seed: int = 0

    def replace(self, **overrides) -> "ToyAblationConfig":
        return dataclasses.replace(self, **overrides)


def build_variant(variant: Variant | str, cfg: ToyAblationConfig = ToyAblationConfig()) -> nn.Module:
    """A toy EDVR (random weights, seeded by the caller) with the alignment and fusion of ``variant`` (a
    :class:`Variant` or a name of :data:`VARIANTS`), sized by ``cfg``.

    Returns:
        An :class:`~edvr_lib.archs.EDVR`: ``(b, t, 3, h, w) -> (b, 3, 4h, 4w)``, ``h, w`` divisible by 4.
    """
    v = VARIANTS[variant] if isinstance(variant, str) else variant
    if v.alignment not in ("dcn", "pyramid", "pcd") or v.fusion not in ("concat", "tsa"):
        raise EDVRError(f"unknown variant {v}: alignment must be dcn, pyramid or pcd; fusion concat or tsa")
    model = build_edvr("M", num_feat=cfg.num_feat, deformable_groups=cfg.deformable_groups,
                       num_extract_block=cfg.num_extract_block, num_reconstruct_block=cfg.num_reconstruct_block,
                       num_frame=cfg.num_frame, with_tsa=v.fusion == "tsa")
    if v.alignment == "dcn":
        model.pcd_align = SingleDCNAlignment(cfg.num_feat, cfg.deformable_groups)
    elif v.alignment == "pyramid":
        model.pcd_align = PyramidAlignment(cfg.num_feat, cfg.deformable_groups)
    return model


def _spoil(lq: torch.Tensor, prob: float, strength: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Spoil one neighbour of each ``(n, t, 3, h, w)`` window with probability ``prob``; returns the spoilt copy and
    the spoilt frame's index per window ``(n,)`` (-1: none)."""
    from edvr_lib.data.corruption import spoil_neighbour
    from edvr_lib.data.motion_dataset import SPOIL_KINDS

    out, idx = lq.clone(), torch.full((lq.shape[0],), -1, dtype=torch.long)
    for i in range(lq.shape[0]):
        rng = np.random.default_rng([seed, i])
        if rng.random() < prob:
            out[i], idx[i] = spoil_neighbour(lq[i], rng, SPOIL_KINDS, strength=strength)
    return out, idx


def training_bank(root, cfg: ToyAblationConfig = ToyAblationConfig(),
                  progress: Callable[[int], None] | None = None) -> dict:
    """The training windows: large known motion rendered from the *training* clips' frames only.

    Args:
        root, cfg: the embedded set (:func:`edvr_lib.data.prepare_embedded`) and the sizes, motion range and seed.
        progress: called with the number of windows rendered.

    Returns:
        ``{'lq': (n, t, 3, h, w), 'gt': (n, 3, H, W), 'flow': (n, t, 2, h, w), 'flow_valid': (n, t, 1, h, w),
        'lq_spoilt': (n, t, 3, h, w), 'spoilt_idx': (n,)}`` (``-1``: window left clean).
    """
    from edvr_lib.data import embedded_paths
    from edvr_lib.data.motion_dataset import MotionWindowDataset
    from edvr_lib.train.align_pretrain import render_bank

    paths = embedded_paths(root)
    dataset = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=cfg.num_frame, gt_size=cfg.gt_size,
                                  max_shift=cfg.max_shift, min_shift=cfg.min_shift, static_prob=0.0,
                                  affine_prob=0.3, occlusion_prob=0.0)
    bank = render_bank(dataset, cfg.bank_size, seed=cfg.seed, progress=progress,
                       keys=("lq", "gt", "flow", "flow_valid"))
    bank["lq_spoilt"], bank["spoilt_idx"] = _spoil(bank["lq"], cfg.spoil_prob, cfg.spoil_strength, cfg.seed)
    return bank


def held_out_sets(root, cfg: ToyAblationConfig = ToyAblationConfig()) -> dict:
    """The held-out large-motion windows, clean and with one neighbour spoilt in every window.

    Returns:
        :func:`~edvr_lib.tutorial.checkpoint_report.large_motion_set`'s dict plus ``'lq_spoilt'`` and
        ``'spoilt_idx'`` (every window spoilt).
    """
    from edvr_lib.tutorial.checkpoint_report import large_motion_set

    data = large_motion_set(root, cfg.eval_windows_per_source, cfg.eval_gt_size, cfg.num_frame,
                            min_shift=cfg.min_shift, max_shift=cfg.max_shift, seed=cfg.seed)
    data["lq_spoilt"], data["spoilt_idx"] = _spoil(data["lq"], 1.0, cfg.spoil_strength, cfg.seed + 1)
    return data


def train_variant(model: nn.Module, bank: dict, cfg: ToyAblationConfig, spoilt: bool = False,
                  log_every: int = 25):
    """Train ``model`` (from :func:`build_variant`) in place on random batches of :func:`training_bank`'s ``bank``
    (``bank['lq_spoilt']`` if ``spoilt``), Charbonnier loss, ``cfg``'s ``steps``, ``batch_size``, ``lr``, ``seed``.

    Returns:
        The :class:`~edvr_lib.tutorial.fit.DemoHistory`.
    """
    from edvr_lib.losses import charbonnier
    from edvr_lib.tutorial.fit import fit_demo

    lq, gt = bank["lq_spoilt" if spoilt else "lq"], bank["gt"]
    device = next(model.parameters()).device

    def step_loss(rng):
        idx = torch.from_numpy(rng.integers(0, lq.shape[0], cfg.batch_size))
        return charbonnier(model(lq[idx].to(device)), gt[idx].to(device))

    return fit_demo(model, step_loss, cfg.steps, cfg.lr, cfg.seed, log_every)


@torch.no_grad()
def evaluate_variant(model: nn.Module, lq: torch.Tensor, gt: torch.Tensor, flow: torch.Tensor | None = None,
                     flow_valid: torch.Tensor | None = None, chunk: int = 8) -> dict:
    """PSNR per window, and the learned motion's end-point error where the true flow is given.

    Args:
        model: a trained variant.
        lq: ``(n, t, 3, h, w)``; gt: ``(n, 3, 4h, 4w)``.
        flow, flow_valid: ``(n, t, 2, h, w)`` true flow (LR px, ``(dy, dx)``) and ``(n, t, 1, h, w)`` validity.
        chunk: windows per forward.

    Returns:
        ``{'psnr': mean dB, 'psnr_per_window': [n]}`` (uint8-rounded RGB, as ``edvr test``) and, with ``flow``:
        ``'epe'`` (px, mean over valid neighbour pixels of ``|learned - true|``; learned: the L1 DCN's mask-weighted
        mean offset minus the centre frame's), ``'epe_zero'`` ("no motion"'s) and ``'epe_ratio'``.
    """
    from edvr_lib.introspect import offsets_to_flow
    from edvr_lib.metrics import calculate_psnr, tensor2img

    model.eval()
    device = next(model.parameters(), torch.empty(0)).device  # the bicubic baseline has no parameters
    b_all, t = lq.shape[:2]
    pack, kept = None, []
    if flow is not None:  # the learned motion: the DCN sampling the neighbour's own L1 feature
        pcd = model.pcd_align
        pack = pcd.dcn_pack if isinstance(pcd, SingleDCNAlignment) else pcd.dcn_pack["l1"]
    hooks = [(pack.conv_offset, lambda _m, _a, out: kept.append(out.detach().to("cpu", copy=True)))] if pack else []
    with forward_hooks(hooks):
        out = torch.cat([model(lq[i:i + chunk].to(device)).clamp(0, 1).cpu() for i in range(0, b_all, chunk)])
    per = [calculate_psnr(tensor2img(o), tensor2img(g)) for o, g in zip(out, gt)]
    res = {"psnr": float(np.mean(per)), "psnr_per_window": [float(p) for p in per]}
    if flow is None:
        return res
    offset, mask = DCNv2Pack.offsets_and_mask(torch.cat(kept))
    g, h, w = pack.deformable_groups, *offset.shape[-2:]
    motion = offsets_to_flow(offset.view(b_all, t, g, 9, 2, h, w), mask.view(b_all, t, g, 9, h, w))
    ctr = t // 2
    motion = motion - motion[:, ctr:ctr + 1]  # relative to the centre frame's self-alignment
    nbrs = [i for i in range(t) if i != ctr]
    valid = (flow_valid if flow_valid is not None else torch.ones_like(flow[:, :, :1]))[:, nbrs, 0]
    err = torch.linalg.vector_norm(motion[:, nbrs] - flow[:, nbrs], dim=2)
    zero = torch.linalg.vector_norm(flow[:, nbrs], dim=2)
    count = valid.sum().clamp_min(1.0)
    epe, epe_zero = float((err * valid).sum() / count), float((zero * valid).sum() / count)
    return {**res, "epe": epe, "epe_zero": epe_zero, "epe_ratio": epe / max(epe_zero, 1e-8)}


def run_variant(name: str, bank: dict, held_out: dict, cfg: ToyAblationConfig = ToyAblationConfig(),
                log_every: int = 25) -> dict:
    """Build, train and score one variant of :data:`VARIANTS`.

    Returns:
        ``{'alignment', 'fusion', 'data', 'parameters', 'train_seconds', 'train_cpu_seconds', 'loss': [[step,
        loss], ...], 'psnr', 'psnr_per_window'}`` on the variant's test set, plus ``epe``, ``epe_zero``,
        ``epe_ratio`` (alignment variants) or ``psnr_clean`` (fusion variants: the same windows unspoilt).
    """
    v = VARIANTS[name]
    torch.manual_seed(cfg.seed)
    model = build_variant(v, cfg)
    cpu0 = time.process_time()
    hist = train_variant(model, bank, cfg, spoilt=v.data == "spoilt frame", log_every=log_every)
    row = {**dataclasses.asdict(v), "parameters": sum(p.numel() for p in model.parameters()),
           "train_seconds": hist.seconds, "train_cpu_seconds": time.process_time() - cpu0,
           "loss": [[s, float(x)] for s, x in zip(hist.steps, hist.loss)]}
    if v.data == "spoilt frame":
        row.update(evaluate_variant(model, held_out["lq_spoilt"], held_out["gt"]))
        row["psnr_clean"] = evaluate_variant(model, held_out["lq"], held_out["gt"])["psnr"]
    else:
        row.update(evaluate_variant(model, held_out["lq"], held_out["gt"], held_out["flow"], held_out["flow_valid"]))
    return row


def run_toy_ablation(cfg: ToyAblationConfig = ToyAblationConfig(), root=None, variants: list[str] | None = None,
                     log: Callable[[str], None] | None = print,
                     on_variant: Callable[[dict], None] | None = None) -> dict:
    """Train and score every variant; the results :func:`comparison_rows` and the figure read.

    Args:
        cfg: sizes and seed.
        root: the embedded set (default: build / reuse it).
        variants: names of :data:`VARIANTS` (default all).
        log: called with one line per stage (None: silent).
        on_variant: called with the results so far after each variant.

    Returns:
        ``{'config': dict, 'held_out': {'windows', 'gt_size', 'keys', 'bicubic_psnr', 'bicubic_psnr_spoilt'},
        'variants': {name: run_variant's dict}, 'seconds', 'cpu_seconds'}``.
    """
    from edvr_lib.data import prepare_embedded
    from edvr_lib.models import bicubic_model

    say = log or (lambda _line: None)
    names = list(VARIANTS) if variants is None else variants
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        raise EDVRError(f"unknown variant {unknown[0]!r}; choose from {list(VARIANTS)}")
    wall0, cpu0 = time.perf_counter(), time.process_time()
    root = prepare_embedded(progress=False) if root is None else root
    bank = training_bank(root, cfg)
    held = held_out_sets(root, cfg)
    bicubic = bicubic_model(cfg.num_frame)
    res = {"config": dataclasses.asdict(cfg),
           "held_out": {"windows": len(held["keys"]), "gt_size": cfg.eval_gt_size, "keys": held["keys"],
                        "bicubic_psnr": evaluate_variant(bicubic, held["lq"], held["gt"])["psnr"],
                        "bicubic_psnr_spoilt": evaluate_variant(bicubic, held["lq_spoilt"], held["gt"])["psnr"]},
           "variants": {}}
    say(f"{cfg.bank_size} training windows, {len(held['keys'])} held-out windows "
        f"({time.perf_counter() - wall0:.0f} s)")
    for name in names:
        row = run_variant(name, bank, held, cfg)
        res["variants"][name] = row
        extra = f", learned-motion EPE / no motion {row['epe_ratio']:.3f}" if "epe_ratio" in row else ""
        say(f"{name:<26} PSNR {row['psnr']:.3f} dB{extra} (trained in {row['train_seconds']:.0f} s)")
        if on_variant:
            on_variant(res)
    res["seconds"], res["cpu_seconds"] = time.perf_counter() - wall0, time.process_time() - cpu0
    return res


def comparison_rows(res: dict, noise_factor: float = 2.0) -> list[dict]:
    """Each effect of :data:`COMPARISONS` beside the paper's direction, with a verdict: ``'same direction'`` or
    ``'reversed'`` when the mean PSNR difference exceeds ``noise_factor`` standard errors (paired over the held-out
    windows; the training's own randomness is not covered), else ``'no clear effect'``.

    Args:
        res: :func:`run_toy_ablation`'s results (or the JSON a run saved).
        noise_factor: how many standard errors make a difference clear.

    Returns:
        ``[{'effect', 'variant', 'baseline', 'test set', 'paper', 'measured_db', 'stderr_db', 'verdict'}]`` for
        the comparisons whose two variants were run.
    """
    rows = []
    for effect, a, b, test_set, paper in COMPARISONS:
        if a not in res["variants"] or b not in res["variants"]:
            continue
        d = np.asarray(res["variants"][a]["psnr_per_window"]) - np.asarray(res["variants"][b]["psnr_per_window"])
        delta, se = float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
        clear = abs(delta) > noise_factor * se
        verdict = ("same direction" if delta > 0 else "reversed") if clear else "no clear effect"
        rows.append({"effect": effect, "variant": a, "baseline": b, "test set": test_set, "paper": paper,
                     "measured_db": delta, "stderr_db": se, "verdict": verdict})
    return rows


def variant_rows(res: dict) -> list[dict]:
    """One row per variant: what it is, PSNR on its test set, learned-motion EPE ratio, training time."""
    return [{"variant": name, "alignment": row["alignment"], "fusion": row["fusion"], "data": row["data"],
             "parameters": row["parameters"], "psnr_db": row["psnr"], "psnr_clean_db": row.get("psnr_clean"),
             "epe_ratio": row.get("epe_ratio"), "train_seconds": row["train_seconds"]}
            for name, row in res["variants"].items()]


def markdown_table(rows: list[dict], digits: int = 3) -> str:
    """A Markdown table of :func:`comparison_rows` or :func:`variant_rows` (floats rounded, None blank)."""
    if not rows:
        return ""
    keys = list(rows[0])

    def cell(v):
        return "" if v is None else f"{v:.{digits}f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(cell(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def toy_ablation_figure(res: dict, title: str = "EDVR ablations at toy scale (held-out windows)"):
    """Bars: PSNR of every variant on its held-out test set (``res``: :func:`run_toy_ablation`'s), grouped by
    ablation, bicubic as a dashed line."""
    from edvr_lib.viz.data_figures import pyplot

    plt = pyplot()
    groups = (("alignment: large motion", "large motion", "bicubic_psnr"),
              ("fusion: one neighbour spoilt", "spoilt frame", "bicubic_psnr_spoilt"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
    for ax, (label, data, bic_key) in zip(axes, groups):
        names = [n for n, r in res["variants"].items() if r["data"] == data]
        values = [res["variants"][n]["psnr"] for n in names]
        per = [res["variants"][n]["psnr_per_window"] for n in names]
        errs = [np.std(p, ddof=1) / np.sqrt(len(p)) for p in per]
        bars = ax.bar(range(len(names)), values, yerr=errs, capsize=4,
                      color=["#8da0cb", "#66c2a5", "#fc8d62"][:len(names)])
        bic = res["held_out"][bic_key]
        ax.axhline(bic, color="k", ls="--", lw=1, label=f"bicubic x4: {bic:.2f} dB")
        for bar, v in zip(bars, values):
            ax.annotate(f"{v:.2f}", (bar.get_x() + bar.get_width() / 2, v), ha="center", va="bottom", fontsize=8,
                        xytext=(0, 3), textcoords="offset points")
        ax.set(xticks=range(len(names)), xticklabels=names, ylim=(min(values + [bic]) - 0.5, max(values + [bic]) + 0.4),
               ylabel="PSNR (dB, RGB, mean over windows)", title=label)
        ax.legend(loc="lower right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    n, steps = res["held_out"]["windows"], res["config"]["steps"]
    fig.suptitle(f"{title}: {n} windows, {steps} training steps per variant (error bars: standard error)")
    fig.tight_layout()
    return fig
