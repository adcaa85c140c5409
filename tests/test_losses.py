"""Training losses: the Charbonnier loss against hand-computed values."""
from __future__ import annotations

import math

import pytest
import torch

from edvr_lib.losses import charbonnier
from edvr_lib.utils import EDVRError


def test_charbonnier_mean_and_sum_by_hand():
    pred = torch.tensor([[0.0, 3.0], [1.0, -4.0]])
    target = torch.zeros(2, 2)
    # sqrt(d^2 + eps) per element, eps = 16: 4, 5, sqrt(17), 4 * sqrt(2)
    total = 4 + 5 + math.sqrt(17) + 4 * math.sqrt(2)
    assert charbonnier(pred, target, eps=16.0).item() == pytest.approx(total / 4)
    assert charbonnier(pred, target, eps=16.0, reduction="sum").item() == pytest.approx(total)
    # default eps = 1e-6 (original EDVR): about the mean absolute error, and the mean is the default reduction
    assert charbonnier(pred, target).item() == pytest.approx((0 + 3 + 1 + 4) / 4 + 1e-3 / 4, rel=1e-6)
    assert charbonnier(pred, target, reduction="sum").item() == pytest.approx(8 + 1e-3, rel=1e-6)


def test_charbonnier_unknown_reduction():
    with pytest.raises(EDVRError, match="reduction.*'none'"):
        charbonnier(torch.zeros(2), torch.zeros(2), reduction="none")
