"""The divergence guard (``train.guard``): back to the last good state, with a lower learning rate, when the loss
or the DCN offsets blow up."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from edvr_lib.utils.errors import EDVRError

if TYPE_CHECKING:
    from edvr_lib.train.state import TrainState

__all__ = ["GuardCounters", "DivergenceGuard"]


@dataclasses.dataclass
class GuardCounters:
    """The guard's part of the training state (a ``{'retries', 'failed_at', 'lr_scale'}`` dict in the files).

    Attributes:
        retries: rollbacks in a row (0 again once training passes the iteration that failed).
        failed_at: the latest iteration that diverged.
        lr_scale: the learning rate's factor on the schedule (1, then ``lr_factor`` per rollback in a row).
    """

    retries: int = 0
    failed_at: int = 0
    lr_scale: float = 1.0


class DivergenceGuard:
    """Rolls the training back to the last good state when the loss stops being finite or the DCN offsets
    explode (``train.guard``), with the learning rate times ``lr_factor``; gives up after ``max_retries``
    consecutive failures.

    Args:
        guard_opt: the resolved ``train.guard`` (``enabled``, ``max_retries``, ``lr_factor``, ``offset_limit``).
        state: the training state (its first snapshot is taken now).
        log: one-line messages.
    """

    def __init__(self, guard_opt, state: TrainState, log=print):
        self.enabled, self.max_retries = guard_opt.enabled, guard_opt.max_retries
        self.lr_factor, self.offset_limit = guard_opt.lr_factor, guard_opt.offset_limit
        self.log = log
        self.rollbacks = 0  # in this process
        # (snapshot, its lr_scale): ``good`` passed a later check; ``pending`` (taken at the last healthy check)
        # becomes good only when the next check passes too, because the offsets a check sees come from the
        # weights *before* that iteration's step
        self.good = (state.snapshot(), state.guard.lr_scale) if self.enabled else None
        self.pending = None

    def problem(self, loss: float, offset_max: float | None = None) -> str | None:
        """Why this iteration counts as diverged (None when it does not)."""
        if not np.isfinite(loss):
            return f"loss is {loss}"
        if offset_max is not None and self.enabled and offset_max > self.offset_limit:
            return f"DCN offsets mean |offset| {offset_max:.1f} px > offset_limit {self.offset_limit:g}"
        return None

    def keep(self, state: TrainState) -> None:
        """A healthy check: the state kept at the previous check is good; keep this one until the next check."""
        if self.enabled:
            if state.iteration > state.guard.failed_at:
                state.guard.retries = 0
            if self.pending is not None:
                self.good = self.pending
            self.pending = (state.snapshot(), state.guard.lr_scale)

    def roll_back(self, state: TrainState, iteration: int, reason: str) -> None:
        """Restore the last good state with a lower learning rate, or raise when the retries are used up.

        Raises:
            EDVRError: the guard is off, or ``max_retries`` rollbacks in a row did not help.
        """
        from edvr_lib.train.schedulers import scale_lr

        if not self.enabled:
            raise EDVRError(f"training diverged at iteration {iteration}: {reason}. Fix: lower train.optim_g.lr (or "
                            "dcn_lr_mul), or turn on train.guard to roll back automatically; resume from the last "
                            "checkpoint.")
        retries = state.guard.retries + 1
        if retries > self.max_retries:
            raise EDVRError(f"training diverged at iteration {iteration} ({reason}) again after {self.max_retries} "
                            f"rollbacks with lr x{self.lr_factor:g} each. Fix: lower train.optim_g.lr or dcn_lr_mul, "
                            "or initialise from a good checkpoint; the last checkpoint on disk is still valid.")
        snapshot, snapshot_scale = self.good
        state.restore(snapshot)  # its optimizer and schedule run at snapshot_scale
        self.pending = None
        self.rollbacks += 1
        lr_scale = state.guard.lr_scale * self.lr_factor  # each rollback in a row lowers the lr further
        state.guard = GuardCounters(retries, max(iteration, state.guard.failed_at), lr_scale)
        scale_lr(state.optimizer, state.scheduler, lr_scale / snapshot_scale)
        self.log(f"guard: {reason} at iteration {iteration}; rolled back to iteration {state.iteration} with lr "
                 f"x{lr_scale:g} of the schedule (retry {retries}/{self.max_retries})")
