"""A small PCD alignment module trained on the synthetic known-motion clips (notebook 02).

:class:`PCDDemo` is EDVR's front end at a small width (features, L2/L3 pyramid, a real
:class:`~edvr_lib.archs.PCDAlignment`) and a 3x3 conv decoding the aligned feature to RGB, trained so that
``decode(PCD(neighbour, centre))`` equals the centre frame. Sampling the neighbour where the content moved makes the
offsets a motion estimate, which :func:`evaluate_alignment` compares with the true flow (not the only way to
succeed: PCD also sees the reference). The ``*_figure`` functions draw notebook 02's figures.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import ResidualBlockNoBN, lrelu, make_layer
from edvr_lib.tutorial.fit import DemoHistory, fit_demo
from edvr_lib.introspect import offsets_to_flow, record_internals
from edvr_lib.archs.pcd_arch import PCDAlignment
from edvr_lib.data import ground_truth_flow
from edvr_lib.data.transforms import frames_to_tensor
from edvr_lib.losses import charbonnier
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks
from edvr_lib.viz.data_figures import as_image, pyplot

__all__ = ["PCDDemo", "SyntheticPairs", "train_pcd_demo", "evaluate_alignment", "pcd_motion", "warp",
           "record_pcd_level", "pyramid_figure", "sampling_positions_figure", "alignment_figure", "flow_scatter_figure"]


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp ``out(p) = img(p + flow(p))``, bilinear, border values outside.

    Args:
        img: ``(n, c, h, w)``.
        flow: ``(n, 2, h, w)``, channel 0 = dy, 1 = dx, in pixels.

    Returns:
        ``(n, c, h, w)``.
    """
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=img.dtype, device=img.device),
                            torch.arange(w, dtype=img.dtype, device=img.device), indexing="ij")
    gx = (xs + flow[:, 1]) * 2 / max(w - 1, 1) - 1
    gy = (ys + flow[:, 0]) * 2 / max(h - 1, 1) - 1
    return F.grid_sample(img, torch.stack([gx, gy], dim=-1), mode="bilinear", padding_mode="border",
                         align_corners=True)


class PCDDemo(nn.Module):
    """Feature pyramid + :class:`PCDAlignment` + RGB decoder.

    Args:
        num_feat: channels ``c`` (16-64 is plenty here).
        deformable_groups: DCN groups (must divide ``num_feat``).
        num_extract_block: residual blocks before the pyramid.

    Shapes:
        ``forward(nbr, ref)``: ``(n, 3, h, w)`` each (h, w divisible by 4) -> ``(n, 3, h, w)`` decoded aligned nbr.
    """

    def __init__(self, num_feat: int = 32, deformable_groups: int = 4, num_extract_block: int = 1):
        super().__init__()
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, num_extract_block, num_feat=num_feat)
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.pcd_align = PCDAlignment(num_feat=num_feat, deformable_groups=deformable_groups)
        self.decode = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def pyramid(self, img: torch.Tensor) -> list[torch.Tensor]:
        """``(n, 3, h, w)`` -> ``[L1, L2, L3]`` features at h, h/2, h/4."""
        l1 = self.feature_extraction(lrelu(self.conv_first(img)))
        l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(l1))))
        l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(l2))))
        return [l1, l2, l3]

    def forward(self, nbr: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return self.decode(self.pcd_align(self.pyramid(nbr), self.pyramid(ref)))


class SyntheticPairs:
    """(neighbour, centre, true flow) LR triples from the embedded synthetic clips.

    Args:
        root: the folder returned by :func:`edvr_lib.data.prepare_embedded`.
        clips: clip names (default: all of :func:`edvr_lib.data.synthetic_clip_names`).
        max_distance: neighbours are 1..max_distance frames from the centre.
    """

    def __init__(self, root: str | Path, clips: list[str] | None = None, max_distance: int = 2):
        from edvr_lib.data import embedded_paths, synthetic_clip_names
        from edvr_lib.data.frame_sources import FolderSource

        self.root = Path(root)
        self.clips = clips or synthetic_clip_names(self.root)
        if not self.clips:
            raise EDVRError(f"no synthetic clips with known motion under {self.root}; build them with "
                            "edvr_lib.data.prepare_embedded()")
        lq = embedded_paths(self.root)["lq"]
        missing = [c for c in self.clips if not any((lq / c).glob("*.png"))]
        if missing:
            raise EDVRError(f"no LR frames for clip(s) {missing} in {lq}; synthetic clips here: "
                            f"{synthetic_clip_names(self.root)}")
        self.frames = {c: FolderSource(lq / c).frames() for c in self.clips}
        self.max_distance, self._flows = max_distance, {}

    def flow(self, clip: str, center: int, nbr: int) -> np.ndarray:
        """True flow ``(2, h, w)`` [dy, dx] in LR pixels (cached)."""
        if (clip, center, nbr) not in self._flows:
            self._flows[clip, center, nbr] = ground_truth_flow(self.root, clip, center, nbr, scale="lr")
        return self._flows[clip, center, nbr]

    def pairs(self) -> list[tuple[str, int, int]]:
        """Every (clip, centre, neighbour) with 1 <= |neighbour - centre| <= max_distance."""
        r = self.max_distance
        return [(c, i, i + d) for c in self.clips for i in range(len(self.frames[c])) for d in range(-r, r + 1)
                if d and 0 <= i + d < len(self.frames[c])]

    def batch(self, items: list[tuple[str, int, int]], crop: int | None = None, rng: np.random.Generator | None = None):
        """Stack items into tensors ``nbr, ref (n, 3, s, s)`` and ``flow (n, 2, s, s)`` (random crops if ``crop``)."""
        nbrs, refs, flows = [], [], []
        for clip, center, nbr in items:
            frames = self.frames[clip]
            h, w = frames.shape[1:3]
            sl = (slice(0, h - h % 4), slice(0, w - w % 4))
            if crop:
                y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
                sl = (slice(y0, y0 + crop), slice(x0, x0 + crop))
            nbrs.append(frames[nbr][sl])
            refs.append(frames[center][sl])
            flows.append(self.flow(clip, center, nbr)[:, sl[0], sl[1]])
        return frames_to_tensor(nbrs), frames_to_tensor(refs), torch.from_numpy(np.ascontiguousarray(np.stack(flows)))


def train_pcd_demo(model: PCDDemo, data: SyntheticPairs, steps: int = 300, batch_size: int = 8, crop: int = 32,
                   lr: float = 2e-3, seed: int = 0, log_every: int = 10) -> DemoHistory:
    """Train ``model`` in place so that the decoded aligned neighbour matches the centre frame (Charbonnier loss,
    :func:`~edvr_lib.tutorial.fit.fit_demo`).

    Args:
        model: a :class:`PCDDemo`.
        data: training pairs (every clip, both directions, distances 1..max_distance).
        steps, lr: optimiser steps and the initial learning rate.
        batch_size, crop: pairs per step and LR crop size (multiple of 4).
        seed: seeds the pair / crop sampling and torch.

    Returns:
        The loss history.
    """
    device = next(model.parameters()).device
    pairs = data.pairs()

    def step_loss(rng):
        items = [pairs[i] for i in rng.integers(0, len(pairs), batch_size)]
        nbr, ref, _ = data.batch(items, crop=crop, rng=rng)
        nbr, ref = nbr.to(device), ref.to(device)
        return charbonnier(model(nbr, ref), ref)

    return fit_demo(model, step_loss, steps, lr, seed, log_every)


@torch.no_grad()
def pcd_motion(model: PCDDemo, nbr: torch.Tensor, ref: torch.Tensor) -> dict:
    """Run ``model`` once on ``(n, 3, h, w)`` frames and summarise its DCN offsets as motion in L1 pixels.

    Returns:
        ``dict`` with ``decoded`` ``(n, 3, h, w)``, ``l1`` and ``cascade`` ``(n, 2, h, w)`` (mask-weighted mean
        offsets, :func:`~edvr_lib.introspect.offsets_to_flow`), ``total`` (their sum: the cascade samples the aligned
        L1 feature), ``l1_masks`` ``(n, g, 9, h, w)``, ``offsets`` and ``masks`` (every level).
    """
    model.eval()
    device = next(model.parameters()).device
    with record_internals(model.pcd_align) as rec:
        decoded = model(nbr.to(device), ref.to(device)).cpu()
    l1 = offsets_to_flow(rec.pcd_offsets["l1"], rec.pcd_masks["l1"])[:, 0]
    cascade = offsets_to_flow(rec.pcd_offsets["cascade"], rec.pcd_masks["cascade"])[:, 0]
    return {"decoded": decoded, "l1": l1, "cascade": cascade, "total": l1 + cascade,
            "l1_masks": rec.pcd_masks["l1"][:, 0], "offsets": rec.pcd_offsets, "masks": rec.pcd_masks}


@torch.no_grad()
def evaluate_alignment(model: PCDDemo, data: SyntheticPairs, items: list[tuple[str, int, int]],
                       border: int = 4, calibrate: bool = True) -> dict:
    """Compare the PCD motion estimate (:func:`pcd_motion`'s ``total``) with the true flow on whole frames.

    With ``calibrate`` the estimate for the centre frame aligned to *itself* is subtracted (a constant offset pattern
    carries no motion); ``raw_flow`` keeps the uncalibrated estimate.

    Returns:
        ``dict`` with ``learned_flow``, ``raw_flow``, ``self_flow``, ``true_flow`` ``(n, 2, h, w)``, ``l1_masks``
        ``(n, g, 9, h, w)``, ``nbr``, ``ref``, ``decoded``, ``warped_learned`` ``(n, 3, h, w)``, ``offsets`` /
        ``masks`` and, excluding a ``border``, ``epe`` / ``epe_zero`` (px, of the learned and of a zero flow; per
        pair ``pair_epe`` / ``pair_epe_zero``) and the mean errors ``err_before`` (|nbr - ref|), ``err_learned``,
        ``err_true`` (after warping) and ``err_decoded``.
    """
    nbr, ref, true = data.batch(items)
    est = pcd_motion(model, nbr, ref)
    raw = est["total"]
    self_flow = pcd_motion(model, ref, ref)["total"] if calibrate else torch.zeros_like(raw)
    learned = raw - self_flow
    warped_learned, warped_true = warp(nbr, learned), warp(nbr, true)
    b = (slice(None), slice(None), slice(border, -border or None), slice(border, -border or None))

    def mean_abs(x):
        return float(x[b].abs().mean())

    epe_map = torch.linalg.vector_norm((learned - true)[b], dim=1)
    zero_map = torch.linalg.vector_norm(true[b], dim=1)
    return {
        "items": list(items), "learned_flow": learned, "raw_flow": raw, "self_flow": self_flow, "true_flow": true,
        "l1_masks": est["l1_masks"], "offsets": est["offsets"], "masks": est["masks"], "nbr": nbr, "ref": ref,
        "decoded": est["decoded"], "warped_learned": warped_learned, "epe": float(epe_map.mean()),
        "epe_zero": float(zero_map.mean()),
        "pair_epe": epe_map.mean(dim=(1, 2)), "pair_epe_zero": zero_map.mean(dim=(1, 2)),
        "err_before": mean_abs(nbr - ref), "err_learned": mean_abs(warped_learned - ref),
        "err_true": mean_abs(warped_true - ref), "err_decoded": mean_abs(est["decoded"] - ref)}


# ----------------------------------------------------------------------------------------- figures (notebook 02)
@torch.no_grad()
def record_pcd_level(pcd: nn.Module, nbr_feats: list[torch.Tensor], ref_feats: list[torch.Tensor],
                     level: str = "l2") -> dict[str, torch.Tensor]:
    """What one level of a :class:`~edvr_lib.archs.PCDAlignment` receives and produces in a real forward.

    Args:
        pcd: the alignment module.
        nbr_feats, ref_feats: ``[L1, L2, L3]`` pyramids, ``(n, c, h, w)``, ``(n, c, h/2, w/2)``, ``(n, c, h/4, w/4)``.
        level: ``'l2'`` or ``'l1'`` (the levels that also receive the coarser level's results).

    Returns:
        ``nbr``, ``ref`` (this level's features), ``up_offset`` / ``up_feat`` (the coarser level's offset feature x2
        and aligned feature, upsampled x2), ``feat`` (this level's aligned feature, activated below L1).
    """
    if level not in ("l2", "l1"):
        raise EDVRError(f"level must be 'l2' or 'l1', got {level!r}")
    i = int(level[1]) - 1
    kept = {"nbr": nbr_feats[i], "ref": ref_feats[i]}

    def second_input(key):
        return lambda _m, args: kept.update({key: args[0][1].clone()})

    def after_merge(_m, _args, out):
        kept["feat"] = out.clone() if level == "l1" else F.leaky_relu(out, 0.1)

    with forward_hooks([(pcd.feat_conv[level], after_merge)], pre_hooks=[
            (pcd.offset_conv2[level], second_input("up_offset")), (pcd.feat_conv[level], second_input("up_feat"))]):
        pcd(nbr_feats, ref_feats)
    return kept


def pyramid_figure(feats: list[torch.Tensor], frame_idx: int, channel: int = 0, title: str | None = None):
    """Feature ``channel`` of frame ``frame_idx`` (first sample) of the ``[L1, L2, L3]`` features ``(b, t, c, h_l,
    w_l)`` (``EDVR.extract_features``), each at its own resolution."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for i, (ax, f) in enumerate(zip(axes, feats), start=1):
        fmap = f[0, frame_idx, channel].detach().cpu().numpy()
        _panel(ax, fmap, f"L{i}: {tuple(f.shape[-3:])} (c, h, w), 1 px = {2 ** (i - 1)} L1 px", "activation",
               cmap="magma")
        ax.set(xlabel=f"x (L{i} pixels)", ylabel=f"y (L{i} pixels)")
    fig.suptitle(title or f"Feature pyramid of frame {frame_idx}, channel {channel}")
    fig.tight_layout()
    return fig


KERNEL_TAPS = np.array([[i, j] for i in (-1, 0, 1) for j in (-1, 0, 1)], dtype=np.float64)  # (9, 2) (dy, dx)


def sampling_positions_figure(img: np.ndarray, p: tuple[int, int], cases: dict, radius: int = 6,
                              title: str = "Where a 3x3 DCN samples for one output pixel"):
    """The 9 sampling positions ``p + p_k + offset_k`` of output pixel ``p`` ``(y, x)`` on the ``(h, w, 3)`` image
    ``img``, within ``radius`` px, one panel per ``{title: (offsets (9, 2) (dy, dx) in px, masks (9,) in 0..1)}``."""
    plt = pyplot()
    fig, axes = plt.subplots(1, len(cases), figsize=(3.6 * len(cases), 3.9), squeeze=False)
    y0, x0 = p
    for ax, (name, (offsets, masks)) in zip(axes[0], cases.items()):
        pos = np.asarray(p, float)[None] + KERNEL_TAPS + np.asarray(offsets, float)
        masks = np.asarray(masks, float)
        ax.imshow(img, interpolation="nearest")
        ax.scatter(x0 + KERNEL_TAPS[:, 1], y0 + KERNEL_TAPS[:, 0], s=60, facecolors="none", edgecolors="white",
                   linewidths=1.2, label="regular grid p + p_k")
        sc = ax.scatter(pos[:, 1], pos[:, 0], s=30 + 120 * masks, c=masks, cmap="autumn", vmin=0, vmax=1,
                        edgecolors="black", label="p + p_k + offset_k")
        for k in range(9):
            ax.annotate("", xy=(pos[k, 1], pos[k, 0]), xytext=(x0 + KERNEL_TAPS[k, 1], y0 + KERNEL_TAPS[k, 0]),
                        arrowprops=dict(arrowstyle="->", color="cyan", lw=0.8))
        ax.plot([x0], [y0], "w+", ms=12, mew=2)
        ax.set_xlim(x0 - radius - 0.5, x0 + radius + 0.5)
        ax.set_ylim(y0 + radius + 0.5, y0 - radius - 0.5)
        ax.set_title(name, fontsize=9)
        ax.set(xlabel="x (pixels)", ylabel="y (pixels)")
    fig.colorbar(sc, ax=axes[0].tolist(), fraction=0.02, label="mask (modulation, 0..1)")
    axes[0, 0].legend(loc="lower left", fontsize=7)
    fig.suptitle(title)
    return fig


ERROR_LABEL = "abs. error (0..1 intensity)"


def _panel(ax, img, title: str, colorbar: str | None = None, **imshow):
    """``img`` on ``ax`` (nearest-neighbour), titled, with a labelled colour bar if ``colorbar``; returns the image."""
    im = ax.imshow(img, interpolation="nearest", **imshow)
    ax.set_title(title, fontsize=9)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.046, label=colorbar)
    return im


def _quiver(ax, img, flow, step, scale, color, title):
    h, w = flow.shape[-2:]
    yy, xx = np.mgrid[step // 2:h:step, step // 2:w:step]
    _panel(ax, img, title)
    ax.quiver(xx, yy, flow[1, yy, xx], flow[0, yy, xx], color=color, angles="xy", scale_units="xy", scale=1 / scale,
              width=0.006)


def alignment_figure(ev: dict, index: int, label: str = "", arrow_scale: float = 3.0):
    """Learned PCD motion vs the true motion for pair ``index`` of :func:`evaluate_alignment`'s results: frames and
    flows (top), L1 DCN mask and the errors before and after warping and decoding (bottom)."""
    plt = pyplot()
    true, learned = ev["true_flow"][index].numpy(), ev["learned_flow"][index].numpy()
    h, w = true.shape[-2:]
    step = max(3, min(h, w) // 8)
    fig, axes = plt.subplots(2, 4, figsize=(15, 7.6))
    ref = as_image(ev["ref"][index])
    _panel(axes[0, 0], ref, "centre (reference) frame")
    _panel(axes[0, 1], as_image(ev["nbr"][index]), "neighbour frame")
    for ax, flow, colour, name in ((axes[0, 2], true, "yellow", "true flow"),
                                   (axes[0, 3], learned, "cyan", "learned PCD motion")):
        _quiver(ax, ref, flow, step, arrow_scale, colour, f"{name} (arrows x{arrow_scale:g}), mean |flow| "
                f"{np.linalg.norm(flow, axis=0).mean():.2f} px")
    _panel(axes[1, 0], ev["l1_masks"][index].mean(dim=(0, 1)).numpy(), "L1 DCN mask, mean of groups and taps",
           "mask (0..1)", cmap="viridis", vmin=0, vmax=1)
    errs = [("|neighbour - centre|", ev["nbr"][index] - ev["ref"][index]),
            ("|warp(neighbour, learned) - centre|", ev["warped_learned"][index] - ev["ref"][index]),
            ("|decoded PCD output - centre|", ev["decoded"][index] - ev["ref"][index])]
    vmax = float(errs[0][1].abs().mean(0).max())
    for ax, (name, e) in zip(axes[1, 1:], errs):
        e = e.abs().mean(0).numpy()
        _panel(ax, e, f"{name}: mean {e.mean():.4f}", ERROR_LABEL, cmap="inferno", vmin=0, vmax=vmax)
    for ax in axes.ravel():
        ax.set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    fig.suptitle(label or "PCD demo: learned motion vs the true motion")
    fig.tight_layout()
    return fig


def flow_scatter_figure(ev: dict, border: int = 4, max_points: int = 1500, seed: int = 0,
                        title: str = "Learned PCD motion vs true motion, every pixel"):
    """Scatter of learned against true ``dx`` and ``dy`` (pixels), one colour per clip, with ``y = x`` and the
    least-squares slope over all pixels in the title (1: right magnitude, 0: no motion found)."""
    plt = pyplot()
    b = (slice(border, -border or None), slice(border, -border or None))
    clips = list(dict.fromkeys(it[0] for it in ev["items"]))
    clip_idx = {clip: [i for i, it in enumerate(ev["items"]) if it[0] == clip] for clip in clips}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    rng = np.random.default_rng(seed)
    for ax, comp, name in ((axes[0], 1, "dx"), (axes[1], 0, "dy")):
        t_all, l_all = [], []
        for clip, idx in clip_idx.items():
            t = ev["true_flow"][idx, comp][(slice(None),) + b].flatten().numpy()
            lf = ev["learned_flow"][idx, comp][(slice(None),) + b].flatten().numpy()
            pick = rng.choice(t.size, min(max_points, t.size), replace=False)
            ax.scatter(t[pick], lf[pick], s=3, alpha=0.35, label=clip)
            t_all.append(t)
            l_all.append(lf)
        t, lf = np.concatenate(t_all), np.concatenate(l_all)
        lim = max(np.abs(t).max(), np.abs(lf).max(), 0.5) * 1.05
        ax.plot([-lim, lim], [-lim, lim], "k--", lw=1, label="learned = true")
        slope = float(np.polyfit(t, lf, 1)[0]) if t.std() > 1e-6 else float("nan")
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xlabel=f"true {name} (LR pixels)",
               ylabel=f"learned {name} (LR pixels)", title=f"{name}: least-squares slope {slope:.2f}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, markerscale=3)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
