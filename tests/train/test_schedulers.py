"""Learning-rate schedules against values worked out by hand from BasicSR's formulas (lr_scheduler.py)."""
import math

import pytest
import torch

from edvr_lib.train.schedulers import (CosineAnnealingRestartLR, MultiStepRestartLR, build_scheduler, scale_lr,
                                       warmup_lr)
from edvr_lib.utils import EDVRError


def _optimizer(lr=4e-4, groups=1):
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(groups)]
    return torch.optim.Adam([{"params": [p], "lr": lr * (0.5 ** i)} for i, p in enumerate(params)])


def _epochs(scheduler, optimizer, n):
    """lr of scheduler epochs 0 .. n - 1 (group 0)."""
    out = [optimizer.param_groups[0]["lr"]]
    for _ in range(n - 1):
        scheduler.step()
        out.append(optimizer.param_groups[0]["lr"])
    return out


def test_cosine_restart_by_hand():
    # periods [3, 4, 5] -> cycle ends 3, 7, 12; weights [1, 0.5, 0.5]; base 4e-4, eta_min 1e-7.
    # lr = eta_min + w * 0.5 * (base - eta_min) * (1 + cos(pi * (e - start) / P)), cycle = first end >= e.
    opt = _optimizer()
    sched = CosineAnnealingRestartLR(opt, periods=[3, 4, 5], restart_weights=[1, 0.5, 0.5], eta_min=1e-7)
    span = 4e-4 - 1e-7
    expected = [
        4e-4,                                                   # e=0: cos 0 = 1
        1e-7 + 0.5 * span * (1 + 0.5),                          # e=1: cos(pi/3) = 0.5
        1e-7 + 0.5 * span * (1 - 0.5),                          # e=2: cos(2pi/3) = -0.5
        1e-7,                                                   # e=3: cos(pi) = -1 (still cycle 0: 3 <= 3)
        1e-7 + 0.25 * span * (1 + math.sqrt(0.5)),              # e=4: cycle 1 (start 3, P 4), cos(pi/4)
        1e-7 + 0.25 * span,                                     # e=5: cos(pi/2) = 0
        1e-7 + 0.25 * span * (1 - math.sqrt(0.5)),              # e=6
        1e-7,                                                   # e=7: end of cycle 1
        1e-7 + 0.25 * span * (1 + math.cos(math.pi / 5)),       # e=8: cycle 2 (start 7, P 5)
    ]
    assert _epochs(sched, opt, len(expected)) == pytest.approx(expected, rel=1e-12, abs=0)
    # the recipe's first step: 4e-4 at iteration 1, then epoch 1 of [50k, ...]
    opt = _optimizer()
    sched = CosineAnnealingRestartLR(opt, periods=[50000, 100000], restart_weights=[1, 1], eta_min=1e-7)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-7 + 0.5 * span * (1 + math.cos(math.pi / 50000)), rel=1e-12)


def test_cosine_restart_every_group_and_state_round_trip():
    opt = _optimizer(groups=2)
    sched = CosineAnnealingRestartLR(opt, periods=[4, 4], restart_weights=[1, 1], eta_min=0)
    for _ in range(2):
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([2e-4, 1e-4])  # cos(pi/2): half of each base
    state = sched.state_dict()
    opt2 = _optimizer(groups=2)
    sched2 = CosineAnnealingRestartLR(opt2, periods=[4, 4], restart_weights=[1, 1], eta_min=0)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(state)
    sched.step()
    sched2.step()
    assert [g["lr"] for g in opt2.param_groups] == [g["lr"] for g in opt.param_groups]


def test_multistep_restart_by_hand():
    opt = _optimizer(lr=1.0)
    sched = MultiStepRestartLR(opt, milestones=[2, 4, 4], gamma=0.1, restarts=[0, 5], restart_weights=[1, 0.5])
    # e=2: x0.1; e=4: milestone listed twice -> x0.01; e=5: restart at 0.5 x initial
    assert _epochs(sched, opt, 7) == pytest.approx([1, 1, 0.1, 0.1, 0.001, 0.5, 0.5])


def test_build_scheduler_and_errors():
    opt = _optimizer()
    assert isinstance(build_scheduler(opt, {"type": "CosineAnnealingRestartLR", "periods": [5], "restart_weights": [1],
                                            "eta_min": 0}, total_iter=6), CosineAnnealingRestartLR)
    with pytest.raises(EDVRError, match="total_iter"):
        build_scheduler(_optimizer(), {"type": "CosineAnnealingRestartLR", "periods": [5], "restart_weights": [1],
                                       "eta_min": 0}, total_iter=7)
    with pytest.raises(EDVRError, match="same length"):
        CosineAnnealingRestartLR(_optimizer(), periods=[5, 5], restart_weights=[1])
    with pytest.raises(EDVRError, match="not supported"):
        build_scheduler(_optimizer(), {"type": "StepLR"}, total_iter=1)


def test_warmup_and_scale():
    opt = _optimizer()
    sched = CosineAnnealingRestartLR(opt, periods=[10], restart_weights=[1], eta_min=0)
    warmup_lr(opt, 2, warmup_iter=4)  # BasicSR: initial_lr / warmup_iter * iteration
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4)
    warmup_lr(opt, 4, warmup_iter=4)  # from warmup_iter on the scheduler's value stays
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4)
    warmup_lr(opt, 1, warmup_iter=-1)
    assert opt.param_groups[0]["lr"] == pytest.approx(2e-4)
    sched.step()
    before = opt.param_groups[0]["lr"]
    scale_lr(opt, sched, 0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(before * 0.5)
    sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(0.5 * 0.5 * 4e-4 * (1 + math.cos(math.pi * 2 / 10)))
