"""checkpoint_report: the held-out large-motion set and the model card's gates."""
from __future__ import annotations

import random

import pytest
import torch

from edvr_lib.archs import build_edvr
from edvr_lib.tutorial import checkpoint_report as cr

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = dict(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


def test_large_motion_set_is_held_out_moving_and_deterministic(embedded_smoke_root):
    random.seed(123)
    before = random.random()
    random.seed(123)
    data = cr.large_motion_set(embedded_smoke_root, windows_per_source=2, gt_size=64)
    assert random.random() == before  # the caller's random stream is untouched
    n = len(data["keys"])
    assert data["lq"].shape == (n, 5, 3, 16, 16) and data["gt"].shape == (n, 3, 64, 64)
    # only held-out sources: the smoke set's test clips and the photos no clip uses
    assert {k.split("/")[0] for k in data["keys"]} == {"bbb_102", "syn_mixed_ihc", "motorcycle_left"}
    # every neighbour moves at least 1 LR px per frame of distance from the centre
    mag = torch.linalg.vector_norm(data["flow"], dim=2)  # (n, t, h, w)
    for i, dist in ((0, 2), (1, 1), (3, 1), (4, 2)):
        assert mag[:, i].mean(dim=(-2, -1)).min() >= 0.9 * dist
    assert torch.all(data["flow"][:, 2] == 0)
    again = cr.large_motion_set(embedded_smoke_root, windows_per_source=2, gt_size=64)
    assert torch.equal(again["lq"], data["lq"]) and again["keys"] == data["keys"]


@pytest.mark.slow
def test_report_of_a_model_without_motion(embedded_smoke_root, monkeypatch):
    # a fresh EDVR's conv_offset is zero-initialised: it moves nothing, so every motion figure says "no motion"
    model = build_edvr("M", **TINY).eval()
    monkeypatch.setattr(cr, "HELD_OUT_PHOTOS", ())
    rep = cr.checkpoint_report(model, embedded_smoke_root, windows_per_source=1, gt_size=64,
                               motion_windows_per_clip=1)
    assert rep["epe_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert rep["large_pcd_motion_off_cost_db"] == pytest.approx(0.0, abs=1e-6)  # no motion to switch off
    assert rep["large_motion"]["windows"] == 2
    rows = cr.gate_rows(rep)
    assert [r["figure"] for r in rows] == [g[0] for g in cr.GATES]
    by = {r["figure"]: r for r in rows}
    assert not by["epe_ratio"]["passed"] and not by["large_pcd_motion_off_cost_db"]["passed"]


def test_gate_rows_compare_in_the_stated_direction():
    rep = {g[0]: g[2] for g in cr.GATES}  # every figure exactly at its target passes
    assert all(r["passed"] for r in cr.gate_rows(rep))
    rep["epe_ratio"] = 0.51
    rep["gain_over_bicubic_db"] = 0.99
    failed = {r["figure"] for r in cr.gate_rows(rep) if not r["passed"]}
    assert failed == {"epe_ratio", "gain_over_bicubic_db"}
