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


# ---- offset fidelity (Chan et al. 2021)

from edvr_lib.archs import EDVR  # noqa: E402
from edvr_lib.losses import OffsetCapture, offset_fidelity, offset_weight  # noqa: E402


def _offsets_like(flow_l1: torch.Tensor, g: int = 2) -> dict[str, torch.Tensor]:
    """``conv_offset``-shaped outputs whose every tap carries the flow of its level (mask logits 0)."""
    out = {}
    n, _, h, w = flow_l1.shape
    for i, level in enumerate(("l1", "l2", "l3")):
        f = flow_l1[:, :, :: 2 ** i, :: 2 ** i] / 2 ** i
        off = f.reshape(n, 1, 1, 2, *f.shape[-2:]).expand(n, g, 9, 2, *f.shape[-2:]).reshape(n, g * 18, *f.shape[-2:])
        out[level] = torch.cat([off, torch.zeros(n, g * 9, *f.shape[-2:])], dim=1).requires_grad_(True)
    return out


def test_offset_fidelity_is_zero_on_the_flow_and_grows_beyond_the_threshold():
    b, t, h, w = 2, 3, 8, 8
    flow = torch.zeros(b, t, 2, h, w)
    flow[:, 0, 1] = 2.0  # frame 0: +2 px in x (so 1 px at L2, 0.5 px at L3)
    flow[:, 2, 0] = -1.2
    valid = torch.ones(b, t, 1, h, w)
    exact = _offsets_like(flow.flatten(0, 1))
    assert offset_fidelity(exact, flow, valid, threshold=0.0, eps=1e-12).item() == pytest.approx(0.0, abs=1e-5)
    # every offset 0 (the untrained DCN): mean Charbonnier of |flow| per (dy, dx), beyond the threshold only
    zero = {k: torch.zeros_like(v) for k, v in exact.items()}
    loss = offset_fidelity(zero, flow, valid, threshold=0.0, eps=1e-12).item()
    expected = sum((2.0 / 2 ** i + 1.2 / 2 ** i) / t for i in range(3)) / 3  # frames 0 and 2 deviate, frame 1 not
    assert loss == pytest.approx(expected, rel=1e-4)
    # a threshold of 0.7 px frees L3's 0.5 px and 0.3 px deviations and L2's 0.6 px one
    loss_thr = offset_fidelity(zero, flow, valid, threshold=0.7, eps=1e-12).item()
    assert loss_thr == pytest.approx((2.0 + 1.2 + 1.0) / t / 3, rel=1e-4)
    # unknown flow costs nothing
    assert offset_fidelity(zero, flow, torch.zeros_like(valid), threshold=0.0).item() == 0.0


def test_offset_fidelity_gradient_pulls_a_real_pcd_towards_the_flow():
    torch.manual_seed(0)
    model = EDVR(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    lq = torch.rand(1, 3, 3, 16, 16)
    flow = torch.zeros(1, 3, 2, 16, 16)
    flow[:, :, 1] = 1.0  # every frame 1 px to the right (the loss does not care which frame is the centre)
    valid = torch.ones(1, 3, 1, 16, 16)
    params = [p for n, p in model.named_parameters() if "dcn_pack" in n and "conv_offset" in n]
    opt = torch.optim.Adam(params, lr=0.05)
    losses = []
    for _ in range(40):
        with OffsetCapture(model) as offsets:
            model(lq)
        loss = offset_fidelity(offsets, flow, valid, threshold=0.1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert set(offsets) == {"l1", "l2", "l3"}
    assert losses[-1] < 0.3 * losses[0], losses
    dx = offsets["l1"][:, :2 * 2 * 9].reshape(3, 2, 9, 2, 16, 16)[:, :, :, 1]
    assert 0.6 < dx.mean().item() < 1.4  # the L1 offsets moved from 0 to about the flow
    # the hooks are gone after the block: a plain forward records nothing more
    offsets.clear()
    model(lq)
    assert not offsets


def test_offset_weight_schedule():
    from edvr_lib.train.options import OffsetFidelityLoss

    opt = OffsetFidelityLoss(loss_weight=2.0, full_until=100, zero_at=200)
    assert [offset_weight(opt, i) for i in (1, 100, 150, 200, 250)] == [2.0, 2.0, 1.0, 0.0, 0.0]
    assert offset_weight(OffsetFidelityLoss(loss_weight=0.5), 10 ** 6) == 0.5
    assert offset_weight(None, 5) == 0.0
