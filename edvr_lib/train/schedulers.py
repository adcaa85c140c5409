"""Learning-rate schedules of the EDVR recipe, as BasicSR defines them (``basicsr/models/lr_scheduler.py``).

Iteration ``k`` trains with the rate of scheduler epoch ``k - 1`` (the trainer's timing, BasicSR's). Cosine with
restarts, for cumulative period ends ``c_i`` and restart weights ``w_i`` (EDVR: periods [50k, 100k, 150k, 150k,
150k], eta_min 1e-7)::

    idx = first i with epoch <= c_i,    r = c_{idx-1} (0 for idx 0),    P = periods[idx]
    lr  = eta_min + w_idx * 0.5 * (base_lr - eta_min) * (1 + cos(pi * (epoch - r) / P))
"""
from __future__ import annotations

import math
import warnings
from collections import Counter

import torch
from torch.optim.lr_scheduler import LRScheduler

from edvr_lib.utils.errors import EDVRError

__all__ = ["CosineAnnealingRestartLR", "MultiStepRestartLR", "build_scheduler", "scale_lr", "warmup_lr"]


class _StepsFirst(LRScheduler):
    """A scheduler stepped before the optimizer, as BasicSR does (without PyTorch's warning about that order,
    which a resumed run would otherwise print)."""

    def step(self, epoch=None):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step\\(\\)` before")
            super().step(epoch)


class CosineAnnealingRestartLR(_StepsFirst):
    """Cosine annealing with restarts (BasicSR ``CosineAnnealingRestartLR``).

    Args:
        optimizer: the optimizer whose groups' ``lr`` it sets.
        periods: length of each cosine cycle, e.g. ``[50000, 100000, 150000, 150000, 150000]``.
        restart_weights: peak of each cycle relative to the base lr, one per period.
        eta_min: the floor every cycle decays to.
        last_epoch: -1 to start (sets every group to its epoch-0 rate).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, periods, restart_weights=(1,), eta_min: float = 0.0,
                 last_epoch: int = -1):
        if len(periods) != len(restart_weights):
            raise EDVRError(f"scheduler periods {list(periods)} and restart_weights {list(restart_weights)} must "
                            "have the same length (one weight per cosine cycle)")
        self.periods = [int(p) for p in periods]
        self.restart_weights = [float(w) for w in restart_weights]
        self.eta_min = float(eta_min)
        self.cumulative_period = [sum(self.periods[:i + 1]) for i in range(len(self.periods))]
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch: int, base_lr: float) -> float:
        """The rate of scheduler epoch ``epoch`` (past the last period: the last cycle's end value)."""
        idx = next((i for i, c in enumerate(self.cumulative_period) if epoch <= c), len(self.periods) - 1)
        epoch = min(epoch, self.cumulative_period[-1])
        start = 0 if idx == 0 else self.cumulative_period[idx - 1]
        return self.eta_min + self.restart_weights[idx] * 0.5 * (base_lr - self.eta_min) * (
            1 + math.cos(math.pi * (epoch - start) / self.periods[idx]))

    def get_lr(self) -> list[float]:
        return [self.lr_at(self.last_epoch, base_lr) for base_lr in self.base_lrs]


class MultiStepRestartLR(_StepsFirst):
    """Step decay with restarts (BasicSR ``MultiStepRestartLR``): ``lr *= gamma`` at each milestone, and
    ``lr = initial_lr * weight`` at each restart epoch.

    Args:
        optimizer: the optimizer.
        milestones: epochs at which the rate is multiplied by ``gamma``.
        gamma: decay factor.
        restarts: epochs at which the rate is reset (``[0]``: none besides the start).
        restart_weights: the reset rate relative to the initial one, one per restart.
        last_epoch: -1 to start.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, milestones, gamma: float = 0.1, restarts=(0,),
                 restart_weights=(1,), last_epoch: int = -1):
        if len(restarts) != len(restart_weights):
            raise EDVRError(f"scheduler restarts {list(restarts)} and restart_weights {list(restart_weights)} must "
                            "have the same length")
        self.milestones = Counter(int(m) for m in milestones)
        self.gamma = float(gamma)
        self.restarts = [int(r) for r in restarts]
        self.restart_weights = [float(w) for w in restart_weights]
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        groups = self.optimizer.param_groups
        if self.last_epoch in self.restarts:
            weight = self.restart_weights[self.restarts.index(self.last_epoch)]
            return [g["initial_lr"] * weight for g in groups]
        if self.last_epoch not in self.milestones:
            return [g["lr"] for g in groups]
        return [g["lr"] * self.gamma ** self.milestones[self.last_epoch] for g in groups]


def build_scheduler(optimizer: torch.optim.Optimizer, scheduler_opt: dict, total_iter: int) -> LRScheduler:
    """The scheduler named by ``train.scheduler.type`` with the rest of that block as arguments.

    Raises:
        EDVRError: an unknown type, or cosine periods that end before ``total_iter - 1`` (BasicSR would crash
            there; the fix is to lengthen the periods or lower ``total_iter``).
    """
    kwargs = {k: v for k, v in scheduler_opt.items() if k != "type"}
    kind = scheduler_opt.get("type")
    if kind == "CosineAnnealingRestartLR":
        if sum(kwargs.get("periods", [])) < total_iter - 1:
            raise EDVRError(f"train.scheduler.periods {kwargs.get('periods')} sum to {sum(kwargs.get('periods', []))}, "
                            f"less than total_iter - 1 = {total_iter - 1}. Fix: lengthen the periods or lower "
                            "train.total_iter.")
        return CosineAnnealingRestartLR(optimizer, **kwargs)
    if kind == "MultiStepRestartLR":
        return MultiStepRestartLR(optimizer, **kwargs)
    raise EDVRError(f"train.scheduler.type {kind!r} is not supported; use CosineAnnealingRestartLR (the EDVR "
                    "recipe) or MultiStepRestartLR")


def warmup_lr(optimizer: torch.optim.Optimizer, iteration: int, warmup_iter: int) -> None:
    """BasicSR's linear warm-up: below ``warmup_iter`` each group runs at ``initial_lr * iteration / warmup_iter``
    (overriding the scheduler's rate); ``warmup_iter = -1`` (EDVR) turns it off."""
    if iteration < warmup_iter:
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"] / warmup_iter * iteration


def scale_lr(optimizer: torch.optim.Optimizer, scheduler: LRScheduler, factor: float) -> None:
    """Multiply the whole schedule by ``factor`` from now on (the divergence guard's back-off).

    Scales the scheduler's base rates (and the cosine floor ``eta_min``), each group's ``initial_lr`` and current
    ``lr``, so closed-form and recursive schedules both continue at ``factor`` times their rate; saved with the
    optimizer and scheduler.
    """
    scheduler.base_lrs = [lr * factor for lr in scheduler.base_lrs]
    if hasattr(scheduler, "eta_min"):
        scheduler.eta_min *= factor
    for group in optimizer.param_groups:
        group["initial_lr"] *= factor
        group["lr"] *= factor
    scheduler._last_lr = [group["lr"] for group in optimizer.param_groups]
