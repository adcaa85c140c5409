"""A small PCD alignment module trained on the synthetic known-motion clips (notebook 02).

The demo network is EDVR's front end at a small width: ``conv_first`` + residual blocks + the L2/L3 pyramid, a
real :class:`~edvr_lib.archs.PCDAlignment`, and a 3x3 conv that decodes the aligned feature back to RGB. It is
trained to make ``decode(PCD(neighbour, centre))`` equal the centre frame, so the only way to succeed is to
sample the neighbour where the centre frame's content moved to: the learned offsets become a motion estimate
that can be compared with the clips' true flow (:func:`edvr_lib.data.ground_truth_flow`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.arch_util import ResidualBlockNoBN, lrelu, make_layer
from edvr_lib.archs.introspect import offsets_to_flow, record_internals
from edvr_lib.archs.pcd_arch import PCDAlignment
from edvr_lib.utils.errors import EDVRError

__all__ = ["PCDDemo", "SyntheticPairs", "train_pcd_demo", "evaluate_alignment", "warp", "PCDDemoHistory"]


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: ``out(p) = img(p + flow(p))``, bilinear, border values outside.

    Args:
        img: ``(n, c, h, w)``.
        flow: ``(n, 2, h, w)`` with channel 0 = dy, 1 = dx, in pixels.
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
        ``forward(nbr, ref)``: ``(n, 3, h, w)`` each (h, w divisible by 4) -> ``(n, 3, h, w)`` decoded aligned
        neighbour.
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
        from edvr_lib.data import embedded_paths, ground_truth_flow, synthetic_clip_names
        from edvr_lib.data.io import read_image

        self.root = Path(root)
        self.clips = clips or synthetic_clip_names(self.root)
        if not self.clips:
            raise EDVRError(f"no synthetic clips with known motion under {self.root}; build them with "
                            "edvr_lib.data.prepare_embedded()")
        lq = embedded_paths(self.root)["lq"]
        self.frames = {c: np.stack([read_image(p) for p in sorted((lq / c).glob("*.png"))]) for c in self.clips}
        self.max_distance = max_distance
        self._flow = ground_truth_flow
        self._flow_cache: dict = {}

    def flow(self, clip: str, center: int, nbr: int) -> np.ndarray:
        """True flow ``(2, h, w)`` [dy, dx] in LR pixels (cached)."""
        key = (clip, center, nbr)
        if key not in self._flow_cache:
            self._flow_cache[key] = self._flow(self.root, clip, center, nbr, scale="lr")
        return self._flow_cache[key]

    def pairs(self) -> list[tuple[str, int, int]]:
        """Every (clip, centre, neighbour) with 1 <= |neighbour - centre| <= max_distance."""
        out = []
        for c in self.clips:
            n = len(self.frames[c])
            for i in range(n):
                for d in range(-self.max_distance, self.max_distance + 1):
                    if d and 0 <= i + d < n:
                        out.append((c, i, i + d))
        return out

    def batch(self, items: list[tuple[str, int, int]], crop: int | None = None, rng: np.random.Generator | None = None):
        """Stack items into tensors ``nbr, ref (n, 3, s, s)`` and ``flow (n, 2, s, s)`` (random crops if ``crop``)."""
        nbrs, refs, flows = [], [], []
        for clip, center, nbr in items:
            frames = self.frames[clip]
            h, w = frames.shape[1:3]
            y0 = x0 = 0
            s_h, s_w = (crop, crop) if crop else (h - h % 4, w - w % 4)
            if crop:
                y0, x0 = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
            sl = (slice(y0, y0 + s_h), slice(x0, x0 + s_w))
            nbrs.append(frames[nbr][sl])
            refs.append(frames[center][sl])
            flows.append(self.flow(clip, center, nbr)[:, sl[0], sl[1]])

        def to_t(a):
            return torch.from_numpy(np.ascontiguousarray(np.stack(a)))
        return to_t(nbrs).permute(0, 3, 1, 2).contiguous(), to_t(refs).permute(0, 3, 1, 2).contiguous(), to_t(flows)


@dataclass
class PCDDemoHistory:
    """Loss per step and wall time of :func:`train_pcd_demo`."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train_pcd_demo(model: PCDDemo, data: SyntheticPairs, steps: int = 300, batch_size: int = 8, crop: int = 32,
                   lr: float = 2e-3, seed: int = 0, log_every: int = 10) -> PCDDemoHistory:
    """Train ``model`` so that the decoded aligned neighbour matches the centre frame (Charbonnier loss).

    Args:
        model: a :class:`PCDDemo` (trained in place, on CPU or wherever its parameters are).
        data: training pairs (all clips, both directions, distances 1..max_distance).
        steps: optimiser steps (Adam, cosine-decayed learning rate ``lr``).
        batch_size, crop: pairs per step and LR crop size (multiple of 4).
        seed: seeds the crop / pair sampling and torch.

    Returns:
        The loss history.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    device = next(model.parameters()).device
    pairs = data.pairs()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    hist = PCDDemoHistory()
    t0 = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        items = [pairs[i] for i in rng.integers(0, len(pairs), batch_size)]
        nbr, ref, _ = data.batch(items, crop=crop, rng=rng)
        nbr, ref = nbr.to(device), ref.to(device)
        loss = torch.sqrt((model(nbr, ref) - ref) ** 2 + 1e-6).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == 1 or step == steps:
            hist.steps.append(step)
            hist.loss.append(float(loss))
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


@torch.no_grad()
def evaluate_alignment(model: PCDDemo, data: SyntheticPairs, items: list[tuple[str, int, int]],
                       border: int = 4) -> dict:
    """Compare the PCD motion estimate with the true flow on whole frames.

    The estimate is the mask-weighted mean of the L1 DCN offsets over groups and taps
    (:func:`~edvr_lib.archs.offsets_to_flow`); the cascade's residual offsets are reported separately.

    Returns:
        ``dict`` with ``learned_flow``, ``true_flow`` ``(n, 2, h, w)``, ``l1_masks`` ``(n, g, 9, h, w)``,
        ``nbr``, ``ref``, ``warped_learned``, ``warped_true`` ``(n, 3, h, w)`` and the scalars
        ``epe`` (mean end-point error of the learned flow, px), ``epe_zero`` (of a zero flow = mean true motion),
        ``err_before`` (mean |nbr - ref|), ``err_learned`` (|warp(nbr, learned) - ref|), ``err_true``
        (|warp(nbr, true) - ref|), ``err_decoded`` (|model(nbr, ref) - ref|), all excluding a ``border``.
    """
    model.eval()
    device = next(model.parameters()).device
    nbr, ref, true = data.batch(items)
    with record_internals(model.pcd_align) as rec:
        decoded = model(nbr.to(device), ref.to(device)).cpu()
    learned = offsets_to_flow(rec.pcd_offsets["l1"], rec.pcd_masks["l1"])[:, 0]
    cascade = offsets_to_flow(rec.pcd_offsets["cascade"], rec.pcd_masks["cascade"])[:, 0]
    warped_learned, warped_true = warp(nbr, learned), warp(nbr, true)
    b = (slice(None), slice(None), slice(border, -border or None), slice(border, -border or None))

    def mean_abs(x):
        return float(x[b].abs().mean())

    return {
        "learned_flow": learned, "cascade_flow": cascade, "true_flow": true, "l1_masks": rec.pcd_masks["l1"][:, 0],
        "nbr": nbr, "ref": ref, "decoded": decoded, "warped_learned": warped_learned, "warped_true": warped_true,
        "epe": float(torch.linalg.vector_norm((learned - true)[b], dim=1).mean()),
        "epe_zero": float(torch.linalg.vector_norm(true[b], dim=1).mean()),
        "err_before": mean_abs(nbr - ref), "err_learned": mean_abs(warped_learned - ref),
        "err_true": mean_abs(warped_true - ref), "err_decoded": mean_abs(decoded - ref),
        "cascade_mean_abs": float(cascade[b].abs().mean()),
    }
