"""Alignment pre-stage: PCD trained on the offset-fidelity loss alone, before the full model trains.

A DCN's offsets learn motion slowly from the pixel loss alone (Chan et al., AAAI 2021), and most of a full step
goes to fusion, reconstruction and upsampling, which the offsets do not need. This stage runs only feature
extraction and PCD on a bank of motion windows with known flow, many more steps per minute; the full model then
starts from offsets that already follow the motion.

Example::

    bank = render_bank(dataset, 1200)             # {'lq', 'flow', 'flow_valid'} of MotionWindowDataset windows
    pretrain_alignment(model, bank, iters=3000)    # trains model.pcd_align in place
"""
from __future__ import annotations

import math
import random
from typing import Callable

import torch

from edvr_lib.losses.offset_fidelity import OffsetCapture, offset_fidelity
from edvr_lib.utils.errors import EDVRError

__all__ = ["render_bank", "flip_windows", "pretrain_alignment"]


def render_bank(dataset, size: int, seed: int = 0, progress: Callable[[int], None] | None = None,
                keys: tuple[str, ...] = ("lq", "flow", "flow_valid")) -> dict:
    """``size`` windows of a :class:`~edvr_lib.data.MotionWindowDataset` with known flow (real windows skipped).

    Args:
        dataset: a MotionWindowDataset (its ``bbb_mix`` and ``spoil_prob`` are ignored: every window rendered).
        size: number of windows.
        seed: seed of Python's ``random`` (the renderer's generator; its state is restored afterwards).
        progress: called with the number of windows done.
        keys: which items of each window to keep (add ``'gt'`` to train a whole EDVR on the bank).

    Returns:
        ``{'lq': (n, t, 3, h, w), 'flow': (n, t, 2, h, w), 'flow_valid': (n, t, 1, h, w)}`` (the ``keys`` asked
        for; ``'gt'``: ``(n, 3, H, W)``).
    """
    state = random.getstate()
    out = {k: [] for k in keys}
    try:
        for i in range(size):
            random.seed(seed * 1_000_003 + i)
            w = dataset.motion_window()
            for k in out:
                out[k].append(w[k])
            if progress:
                progress(i + 1)
    finally:
        random.setstate(state)
    return {k: torch.stack(v) for k, v in out.items()}


def flip_windows(lq: torch.Tensor, flow: torch.Tensor, valid: torch.Tensor, hflip: bool, vflip: bool,
                 transpose: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flip / transpose windows and their flow consistently.

    Args:
        lq: ``(b, t, 3, h, w)``; flow: ``(b, t, 2, h, w)`` ``(dy, dx)``; valid: ``(b, t, 1, h, w)``.
        hflip, vflip: mirror left-right (negates dx) / top-bottom (negates dy).
        transpose: swap the spatial axes (swaps dy and dx).
    """
    if hflip:
        lq, flow, valid = lq.flip(-1), flow.flip(-1), valid.flip(-1)
        flow = flow * torch.tensor([1.0, -1.0]).view(2, 1, 1)
    if vflip:
        lq, flow, valid = lq.flip(-2), flow.flip(-2), valid.flip(-2)
        flow = flow * torch.tensor([-1.0, 1.0]).view(2, 1, 1)
    if transpose:
        lq, flow, valid = lq.transpose(-1, -2), flow.transpose(-1, -2).flip(-3), valid.transpose(-1, -2)
    return lq.contiguous(), flow.contiguous(), valid.contiguous()


def pretrain_alignment(model, bank: dict, iters: int, batch_size: int = 8, lr: float = 1e-3,
                       threshold: float = 0.5, crop: int | None = None, flips: bool = True, seed: int = 0,
                       log: Callable[[dict], None] | None = None, log_every: int = 50) -> list[dict]:
    """Train ``model.pcd_align`` on the offset-fidelity loss alone.

    Adam (betas 0.9, 0.99) with a cosine decay from ``lr`` to ``lr / 100``; random flips and transposes of the
    bank's windows. The other parameters are untouched (no gradient reaches them).

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` (trained in place; left in train mode).
        bank: :func:`render_bank`'s windows.
        iters: optimisation steps.
        batch_size: windows per step.
        lr: peak learning rate.
        threshold: the loss's free radius in each level's pixels (:func:`~edvr_lib.losses.offset_fidelity`).
        crop: LR side of a random crop of each batch (a multiple of 4; default: whole windows): smaller steps,
            more of them per minute.
        flips: random flips and transposes of every batch.
        seed: seed of the batches and flips.
        log: called every ``log_every`` steps with ``{'iter', 'offset_loss', 'lr'}``.

    Returns:
        The logged entries.
    """
    if iters < 1 or batch_size < 1:
        raise EDVRError(f"pretrain_alignment needs iters >= 1 and batch_size >= 1; got {iters}, {batch_size}")
    n, h, w = bank["lq"].shape[0], *bank["lq"].shape[-2:]
    if crop is not None and (crop % 4 or not 4 <= crop <= min(h, w)):
        raise EDVRError(f"crop={crop} must be a multiple of 4 between 4 and the bank's window side {min(h, w)}")
    if n < batch_size:
        raise EDVRError(f"the bank holds {n} windows, fewer than batch_size={batch_size}; render more")
    optimizer = torch.optim.Adam(model.pcd_align.parameters(), lr=lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device
    model.train()
    entries, running, count = [], 0.0, 0
    for it in range(1, iters + 1):
        for group in optimizer.param_groups:  # cosine from lr to lr / 100
            group["lr"] = lr * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (it - 1) / iters)))
        idx = torch.randint(n, (batch_size,), generator=gen)
        hflip, vflip, transpose = (torch.rand(3, generator=gen) < (0.5 if flips else 0.0)).tolist()
        y, x = 0, 0
        if crop is not None:
            y, x = (int(torch.randint(0, (s - crop) // 4 + 1, (1,), generator=gen)) * 4 for s in (h, w))
        win = (..., slice(y, y + (crop or h)), slice(x, x + (crop or w)))
        lq, flow, valid = flip_windows(bank["lq"][idx][win], bank["flow"][idx][win], bank["flow_valid"][idx][win],
                                       hflip, vflip, transpose)
        lq, flow, valid = lq.to(device), flow.to(device), valid.to(device)
        with torch.no_grad():
            feats = model.extract_features(lq)
        with OffsetCapture(model) as offsets:
            model.align(feats)
        loss = offset_fidelity(offsets, flow, valid, threshold=threshold)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        running, count = running + float(loss.detach()), count + 1
        if it % log_every == 0 or it == iters:
            entry = {"iter": it, "offset_loss": running / count, "lr": optimizer.param_groups[0]["lr"]}
            running, count = 0.0, 0
            entries.append(entry)
            if log:
                log(entry)
    return entries
