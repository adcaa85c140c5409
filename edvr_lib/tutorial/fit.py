"""Training loop, loss history and loss figure shared by the PCD and TSA demos (notebooks 02 and 03)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from edvr_lib.viz.data_figures import pyplot

__all__ = ["DemoHistory", "fit_demo", "loss_figure"]


@dataclass
class DemoHistory:
    """Loss per logged step and wall time of a demo trainer (``train_pcd_demo``, ``train_tsa_demo``)."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    seconds: float = 0.0


def fit_demo(model: nn.Module, step_loss, steps: int, lr: float, seed: int, log_every: int) -> DemoHistory:
    """The demos' training loop: Adam, cosine decay to 5% of ``lr``, the loss logged every ``log_every`` steps.

    Args:
        model: trained in place, left in eval mode.
        step_loss: ``rng -> loss``; draws one batch with the numpy ``rng`` and returns the scalar loss.
        steps, lr: optimiser steps and the initial learning rate.
        seed: seeds torch and the numpy ``rng``.
        log_every: logging period in steps (the first and last steps are always logged).

    Returns:
        The loss history.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(steps, 1), eta_min=lr * 0.05)
    hist = DemoHistory()
    t0 = time.perf_counter()
    model.train()
    for step in range(1, steps + 1):
        loss = step_loss(rng)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % log_every == 0 or step == 1 or step == steps:
            hist.steps.append(step)
            hist.loss.append(loss.item())
    model.eval()
    hist.seconds = time.perf_counter() - t0
    return hist


def loss_figure(hist, title: str = "Training loss"):
    """Loss against step of a :class:`DemoHistory` (or any object with ``steps``, ``loss`` and ``seconds``)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(hist.steps, hist.loss, "-o", ms=3)
    ax.set(title=f"{title} ({hist.seconds:.0f} s)", xlabel="optimiser step", ylabel="Charbonnier loss (per pixel)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
