"""Alignment on real frames (notebook 02, section 8): Farneback flow, the learned EDVR's PCD motion, warp errors."""
from __future__ import annotations
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from edvr_lib.archs import build_edvr
from edvr_lib.data import embedded_paths, ground_truth_flow
from edvr_lib.data.io import read_image
from edvr_lib.models import random_weights_model
from edvr_lib.tutorial import alignment_real
from edvr_lib.utils import EDVRError

TINY = dict(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


def _clip(root, clip):
    fr = alignment_real.read_clip(embedded_paths(root)["lq"], clip)
    first = read_image(sorted((embedded_paths(root)["lq"] / clip).glob("*.png"))[0])
    assert fr.shape[1] % 4 == 0 and fr.shape[2] % 4 == 0 and np.array_equal(fr[0], first[: fr.shape[1], : fr.shape[2]])
    return fr


def test_true_flow_epe_on_the_translating_clip(embedded_smoke_root):
    clip = "syn_translate_astronaut"
    fr = _clip(embedded_smoke_root, clip)
    c = len(fr) // 2
    res = alignment_real.compare_alignment(build_edvr("M", **TINY).eval(), fr[c - 2: c + 3])
    epe = alignment_real.true_flow_epe(res, embedded_smoke_root, clip, c)
    assert epe["zero"] > 0.5  # the clip moves
    assert epe["learned"] == pytest.approx(epe["zero"])  # an untrained PCD moves nothing
    assert epe["farneback"] < 0.5 * epe["zero"]


def test_farneback_recovers_the_known_translation(embedded_smoke_root):
    clip = "syn_translate_astronaut"
    fr = _clip(embedded_smoke_root, clip)
    flow = alignment_real.farneback_flow(fr[3], fr[5])
    true = ground_truth_flow(embedded_smoke_root, clip, 3, 5, scale="lr")[:, : fr.shape[1], : fr.shape[2]]
    b = (slice(None), slice(4, -4), slice(4, -4))
    epe = np.linalg.norm(flow - true, axis=0)[b[1:]].mean()
    assert flow.shape == true.shape and flow.dtype == np.float32
    assert epe < 0.3 * np.linalg.norm(true, axis=0)[b[1:]].mean()  # same convention: [dy, dx], centre -> neighbour


def test_untrained_edvr_moves_nothing_and_the_centre_is_calibrated(embedded_smoke_root):
    fr = _clip(embedded_smoke_root, "bbb_102")[:5]
    torch.manual_seed(0)
    fresh = build_edvr("M", **TINY).eval()  # conv_offset zero-initialised: every offset 0
    res = alignment_real.compare_alignment(fresh, fr)
    assert res["learned"].abs().max() == 0
    assert np.allclose(res["err_learned"], res["err_none"])
    assert res["neighbours"] == [0, 1, 3, 4] and res["center"] == 2
    assert res["learned"].shape == res["farneback"].shape == (5, 2) + fr.shape[1:3]
    # with random offsets the centre frame's motion is exactly zero after subtracting its self-alignment
    model = random_weights_model(**TINY)
    est = alignment_real.learned_motion(model, torch.from_numpy(fr).permute(0, 3, 1, 2)[None])
    assert est["self_flow"].abs().mean() > 0 and est["flow"][2].abs().max() == 0
    assert torch.allclose(est["flow"][0], est["raw"][0] - est["raw"][2])
    assert est["masks"].shape == (5,) + fr.shape[1:3]
    assert est["output"].shape == (1, 3, 4 * fr.shape[1], 4 * fr.shape[2])


def test_farneback_warp_reduces_the_real_difference(embedded_smoke_root):
    fr = _clip(embedded_smoke_root, "bbb_102")
    c = alignment_real.most_moving_center(fr, 5)
    res = alignment_real.compare_alignment(build_edvr("M", **TINY).eval(), fr[c - 2: c + 3])
    assert res["mean_err_farneback"] < 0.95 * res["mean_err_none"]
    # independent: err_none is the plain mean |neighbour - centre| inside the border
    k = res["neighbours"][0]
    direct = np.abs(fr[c - 2 + k] - fr[c])[4:-4, 4:-4].mean(-1).mean()
    assert res["err_none"][0] == pytest.approx(direct, rel=1e-5)
    fig = alignment_real.real_alignment_figure(res, k)
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


def test_most_moving_center_finds_the_motion():
    fr = np.zeros((9, 8, 8, 3), np.float32)
    fr[6:] = 1.0  # a cut between frames 5 and 6: windows around 5..6 differ most
    assert alignment_real.most_moving_center(fr, 5) in (5, 6)
    with pytest.raises(EDVRError, match="shorter"):
        alignment_real.most_moving_center(fr[:3], 5)


def test_bad_inputs_name_the_problem():
    model = build_edvr("M", **TINY).eval()
    with pytest.raises(EDVRError, match="divisible by 4"):
        alignment_real.compare_alignment(model, np.zeros((5, 10, 12, 3), np.float32))
    with pytest.raises(EDVRError, match="5 frames"):
        alignment_real.compare_alignment(model, np.zeros((3, 8, 8, 3), np.float32))
    with pytest.raises(EDVRError, match="hr_in"):
        alignment_real.learned_motion(build_edvr("L-deblur", **TINY), torch.zeros(1, 5, 3, 16, 16))


def test_motion_report_scores_no_motion_as_one_and_true_motion_as_zero(embedded_smoke_root, monkeypatch):
    model = random_weights_model(seed=0)  # a fresh DCN's offsets are 0: exactly "no motion"
    rep = alignment_real.motion_report(model, embedded_smoke_root, windows_per_clip=2, max_side=32)
    assert rep["epe_ratio"] == pytest.approx(1.0, abs=1e-4) and rep["warp_ratio"] == pytest.approx(1.0, abs=1e-4)
    assert 0 < rep["warp_ratio_farneback"] < 1.0  # Farneback finds some motion in Big Buck Bunny
    assert {"bbb_102", "syn_mixed_ihc"} <= set(rep["clips"])  # the smoke set's held-out clips

    # a read-out that returns the true flow scores 0 (the crop offset is applied to the true flow too)
    def perfect(_model, window):
        return {"flow": truth["flow"], "self_flow": torch.zeros(2), "masks": torch.ones(5, 1, 1), "output": None}

    clip, c = "syn_mixed_ihc", 4  # rotation + zoom: the flow depends on the place, so the crop offset matters
    frames = alignment_real.read_clip(embedded_paths(embedded_smoke_root)["lq"], clip)
    y, x = 4, 8
    truth = {"flow": torch.stack([torch.from_numpy(ground_truth_flow(embedded_smoke_root, clip, c, c + d, scale="lr"))
                                  [:, y:y + 16, x:x + 16] for d in range(-2, 3)])}
    monkeypatch.setattr(alignment_real, "learned_motion", perfect)
    res = alignment_real.compare_alignment(model, frames[c - 2:c + 3, y:y + 16, x:x + 16])
    epe = alignment_real.true_flow_epe(res, embedded_smoke_root, clip, c, border=2, origin=(y, x))
    assert epe["learned"] < 1e-6 < epe["zero"]


def test_level_motion_reads_each_level_in_lr_pixels():
    """A known L3 offset field per frame (dx = 0.25 * (i - centre) L3 px) reads as (i - centre) LR px at LR size."""
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    pack = model.pcd_align.dcn_pack["l3"]
    g, calls = pack.deformable_groups, []

    def known_offsets(_module, _args, out):  # all 5 frames in one call (b * t rows), or one frame a call
        rows = torch.arange(5).float() - 2 if out.shape[0] == 5 else torch.tensor([len(calls) % 5 - 2.0])
        calls.append(out.shape[0])
        out = torch.zeros_like(out)  # offsets (g x 9 x (dy, dx)) then mask logits 0 (mask 0.5 everywhere)
        out[:, 1:2 * g * 9:2] = 0.25 * rows.view(-1, 1, 1, 1)
        return out

    handle = pack.conv_offset.register_forward_hook(known_offsets)
    try:
        window = torch.rand(1, 5, 3, 32, 32)
        res = alignment_real.level_motion(model, window)
        true = torch.zeros(5, 2, 32, 32)
        true[:, 1] = torch.arange(5).float().view(5, 1, 1) - 2
        with_truth = alignment_real.level_motion(model, window, true_flow=true)
    finally:
        handle.remove()
    assert torch.allclose(res["flow"]["l3"], true, atol=1e-5)
    assert set(res["flow"]) == {"l3", "l2", "l1", "cascade"} and res["epe"] is None
    assert with_truth["epe"]["l3"] < 1e-5 and with_truth["epe_zero"] == pytest.approx(1.5)  # (2 + 1 + 1 + 2) / 4
    assert torch.equal(res["flow"]["l1"], torch.zeros(5, 2, 32, 32))  # L1's conv_offset is zero-initialised
    fig = alignment_real.level_motion_figure(with_truth, 0, true, label="test")
    assert len(fig.axes) == 6 and all(ax.get_xlabel() for ax in fig.axes)
    plt.close(fig)


def test_level_motion_set_averages_the_windows():
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    windows = {"lq": torch.rand(2, 5, 3, 16, 16), "flow": torch.ones(2, 5, 2, 16, 16),
               "flow_valid": torch.ones(2, 5, 1, 16, 16)}
    res = alignment_real.level_motion_set(model, windows)
    assert len(res["windows"]) == 2 and res["epe_zero"] == pytest.approx(2 ** 0.5, rel=1e-5)  # |(1, 1)| everywhere
    for key in alignment_real.LEVEL_NAMES:  # an untrained PCD moves nothing: every level's error is no motion's
        assert res["epe"][key] == pytest.approx(np.mean([w["epe"][key] for w in res["windows"]]))
        assert res["epe"][key] == pytest.approx(res["epe_zero"], rel=1e-4)
