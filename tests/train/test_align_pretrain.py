"""Alignment pre-stage: flips keep the flow true, only PCD trains, and the offsets move towards the flow."""
from __future__ import annotations

import pytest
import torch

from edvr_lib.archs import build_edvr
from edvr_lib.train.align_pretrain import flip_windows, pretrain_alignment
from edvr_lib.utils import EDVRError

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


def _shift_window(dy: int, dx: int, h: int = 16, w: int = 16):
    """A 3-frame window of a random image rolled by (dy, dx) per frame and its true flow (frame i holds the
    centre's pixel p at p + (i - 1) * (dy, dx))."""
    img = torch.rand(3, h, w, generator=torch.Generator().manual_seed(0))
    lq = torch.stack([img.roll(((i - 1) * dy, (i - 1) * dx), dims=(-2, -1)) for i in range(3)])[None]
    flow = torch.stack([torch.tensor([(i - 1) * dy, (i - 1) * dx], dtype=torch.float32).view(2, 1, 1)
                        .expand(2, h, w) for i in range(3)])[None]
    return lq, flow, torch.ones(1, 3, 1, h, w)


@pytest.mark.parametrize("flips", [(True, False, False), (False, True, False), (False, False, True),
                                   (True, True, True)])
def test_flips_keep_the_flow_true(flips):
    lq, flow, valid = _shift_window(1, 2)
    lq2, flow2, valid2 = flip_windows(lq, flow, valid, *flips)
    # the flipped window is again a rolled image, by the flipped flow
    dy, dx = (int(v) for v in flow2[0, 2, :, 0, 0])
    centre = lq2[0, 1]
    assert torch.equal(lq2[0, 2], centre.roll((dy, dx), dims=(-2, -1)))
    assert torch.equal(lq2[0, 0], centre.roll((-dy, -dx), dims=(-2, -1)))
    assert valid2.shape == valid.shape and (dy, dx) != (1, 2)


def test_pretrain_trains_only_pcd_towards_the_target_offsets():
    # a target a few steps can reach: both neighbours' offsets (0, +1), the centre's 0 (a neighbour differs from the
    # reference, the centre frame does not); real motion needs far longer
    torch.manual_seed(0)
    model = build_edvr("M", **TINY, num_frame=3)
    lq, flow, valid = _shift_window(0, 1, h=16, w=16)
    lq, valid = lq.expand(4, -1, -1, -1, -1), valid.expand(4, -1, -1, -1, -1)
    flow = torch.zeros(4, 3, 2, 16, 16)
    flow[:, [0, 2], 1] = 1.0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    log = pretrain_alignment(model, {"lq": lq, "flow": flow, "flow_valid": valid}, iters=40, batch_size=4, lr=1e-3,
                             threshold=0.0, flips=False, log_every=10)
    assert log[-1]["offset_loss"] < 0.8 * log[0]["offset_loss"]
    changed = {k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"pcd_align"}


def test_pretrain_refuses_a_bank_smaller_than_a_batch():
    model = build_edvr("M", **TINY, num_frame=3)
    lq, flow, valid = _shift_window(1, 0)
    with pytest.raises(EDVRError, match="fewer than batch_size"):
        pretrain_alignment(model, {"lq": lq, "flow": flow, "flow_valid": valid}, iters=1, batch_size=2)
