"""Spoilt frames: one vocabulary of frame faults for training, notebook 03 and the explorer.

A window with one worse neighbour gives TSA's temporal attention something to learn (with equal frames a fixed
average is as good as any attention)::

    rng = np.random.default_rng(0)
    bad, region = corrupt_frame(frame, "occlusion", rng)
    lq, idx = spoil_neighbour(lq, rng, kinds=("noise", "occlusion"))
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torchvision.transforms.functional import gaussian_blur

from edvr_lib.utils.errors import EDVRError

__all__ = ["FRAME_FAULTS", "corrupt_frame", "spoil_neighbour"]

#: every fault a frame can get
FRAME_FAULTS = ("noise", "occlusion", "blur", "unrelated frame")


def corrupt_frame(frame: torch.Tensor, kind: str, rng: np.random.Generator, other: torch.Tensor | None = None,
                  strength: float = 0.5, size: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """A corrupted copy of one frame, and where it was corrupted.

    Args:
        frame: ``(3, h, w)`` in [0, 1].
        kind: one of :data:`FRAME_FAULTS`: ``'noise'`` (Gaussian, std ``strength``, clipped), ``'occlusion'`` (a
            random square of side ``size * min(h, w)`` from ``other``, default black), ``'blur'`` (Gaussian, std
            ``4 * strength`` px), ``'unrelated frame'`` (``other``, default the frame rotated by 180 degrees).
        rng: random generator (noise values, the occluder's place).
        other: ``(3, H, W)`` with ``H >= h``, ``W >= w``: the occluder or the unrelated frame (top-left crop).

    Returns:
        ``(corrupted frame (3, h, w), region (h, w) bool)``.
    """
    if kind not in FRAME_FAULTS:
        raise EDVRError(f"unknown corruption {kind!r}; choose one of {FRAME_FAULTS}")
    _, h, w = frame.shape
    region = torch.ones(h, w, dtype=torch.bool)
    if kind == "noise":
        noise = torch.from_numpy(rng.standard_normal(frame.shape).astype(np.float32)).to(frame.dtype)
        return (frame + strength * noise).clamp(0, 1), region
    if kind == "blur":
        sigma = 4 * strength
        return gaussian_blur(frame.clone(), kernel_size=2 * max(1, round(3 * sigma)) + 1, sigma=sigma), region
    if kind == "unrelated frame":
        out = frame.flip(-1, -2) if other is None else other[:, :h, :w]
        return out.to(frame.dtype).contiguous(), region
    side = max(2, int(round(size * min(h, w))))
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out, region = frame.clone(), torch.zeros(h, w, dtype=torch.bool)
    out[:, y:y + side, x:x + side] = 0 if other is None else other[:, y:y + side, x:x + side]
    region[y:y + side, x:x + side] = True
    return out, region


def spoil_neighbour(lq: torch.Tensor, rng: np.random.Generator, kinds: Sequence[str] = FRAME_FAULTS,
                    other: torch.Tensor | None = None, center_frame_idx: int | None = None,
                    **kwargs) -> tuple[torch.Tensor, int]:
    """Corrupt one random neighbour (never the centre frame) of a window.

    Args:
        lq: ``(t, 3, h, w)`` window.
        rng, kinds: random generator (frame, fault and the fault itself); faults to draw from.
        other, **kwargs: ``other``, ``strength``, ``size`` of :func:`corrupt_frame`.
        center_frame_idx: default ``t // 2``.

    Returns:
        ``(window with one frame corrupted (t, 3, h, w), index of that frame)``.
    """
    ctr = lq.shape[0] // 2 if center_frame_idx is None else center_frame_idx
    neighbours = [i for i in range(lq.shape[0]) if i != ctr]
    idx = neighbours[int(rng.integers(0, len(neighbours)))]
    kind = kinds[int(rng.integers(0, len(kinds)))]
    out = lq.clone()
    out[idx] = corrupt_frame(lq[idx], kind, rng, other=other, **kwargs)[0]
    return out, idx
