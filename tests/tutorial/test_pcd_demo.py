"""The PCD demo of notebook 02: warping, known-motion pairs, the motion estimate, a short training run, figures."""
from __future__ import annotations
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from edvr_lib.tutorial import pcd_demo
from edvr_lib.tutorial.fit import DemoHistory, loss_figure
from edvr_lib.tutorial.pcd_demo import (PCDDemo, SyntheticPairs, evaluate_alignment, pcd_motion,
                                     train_pcd_demo, warp)
from edvr_lib.utils import EDVRError

TRAIN_CLIPS = ["syn_translate_astronaut", "syn_rotate_coffee", "syn_zoom_rocket"]


@pytest.fixture(scope="module")
def pairs(embedded_smoke_root):
    return SyntheticPairs(embedded_smoke_root, clips=TRAIN_CLIPS, max_distance=2)


def _all_figures_labelled(fig):
    assert fig._suptitle is not None and fig._suptitle.get_text()
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>":
            continue
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()


# ----------------------------------------------------------------------------------------- warp
def test_warp_zero_flow_is_identity_and_integer_flow_shifts():
    torch.manual_seed(0)
    img = torch.rand(2, 3, 8, 10)
    assert torch.allclose(warp(img, torch.zeros(2, 2, 8, 10)), img, atol=1e-6)
    flow = torch.zeros(2, 2, 8, 10)
    flow[:, 1] = 1.0  # dx = +1: out(y, x) = img(y, x + 1)
    out = warp(img, flow)
    assert torch.allclose(out[..., :-1], img[..., 1:], atol=1e-6)
    assert torch.allclose(out[..., -1], img[..., -1], atol=1e-6)  # border values outside
    flow = torch.zeros(2, 2, 8, 10)
    flow[:, 0] = -2.0  # dy = -2: out(y, x) = img(y - 2, x)
    assert torch.allclose(warp(img, flow)[..., 2:, :], img[..., :-2, :], atol=1e-6)


def test_warp_half_pixel_is_the_average_of_two_pixels():
    img = torch.arange(12, dtype=torch.float32).view(1, 1, 3, 4)
    flow = torch.zeros(1, 2, 3, 4)
    flow[:, 1] = 0.5
    out = warp(img, flow)
    assert torch.allclose(out[..., :-1], (img[..., :-1] + img[..., 1:]) / 2, atol=1e-5)


# ----------------------------------------------------------------------------------------- pairs
def test_pairs_count_and_batch_shapes(pairs):
    n = len(pairs.frames[TRAIN_CLIPS[0]])
    # neighbours at distance 1 and 2 on both sides, inside the clip: 2 * ((n - 1) + (n - 2)) per clip
    assert len(pairs.pairs()) == len(TRAIN_CLIPS) * 2 * ((n - 1) + (n - 2))
    assert all(1 <= abs(nb - c) <= 2 for _, c, nb in pairs.pairs())
    nbr, ref, flow = pairs.batch(pairs.pairs()[:3], crop=16, rng=np.random.default_rng(0))
    assert nbr.shape == ref.shape == (3, 3, 16, 16) and flow.shape == (3, 2, 16, 16)
    nbr, ref, flow = pairs.batch([(TRAIN_CLIPS[0], 2, 4)])
    h, w = pairs.frames[TRAIN_CLIPS[0]].shape[1:3]
    assert nbr.shape == (1, 3, h - h % 4, w - w % 4)


def test_true_flow_aligns_the_pairs(pairs):
    nbr, ref, flow = pairs.batch([(TRAIN_CLIPS[0], 3, 5), (TRAIN_CLIPS[0], 3, 1)])
    b = (slice(None), slice(None), slice(4, -4), slice(4, -4))
    assert (warp(nbr, flow) - ref)[b].abs().mean() < 0.5 * (nbr - ref)[b].abs().mean()


def test_pairs_without_synthetic_clips_raise(tmp_path):
    from edvr_lib.data.embedded import LQ_DIR

    (tmp_path / LQ_DIR).mkdir()
    with pytest.raises(EDVRError, match="prepare_embedded"):
        SyntheticPairs(tmp_path)


# ----------------------------------------------------------------------------------------- motion estimate
def test_untrained_pcd_moves_nothing(pairs):
    torch.manual_seed(0)
    model = PCDDemo(num_feat=8, deformable_groups=2)
    items = [(TRAIN_CLIPS[0], 3, 5), (TRAIN_CLIPS[1], 3, 2)]
    ev = evaluate_alignment(model, pairs, items)
    # conv_offset is zero-initialised: offsets 0, masks 0.5, so the learned flow is 0 and warping changes nothing
    assert ev["raw_flow"].abs().max() == 0 and ev["learned_flow"].abs().max() == 0
    assert torch.allclose(ev["l1_masks"], torch.tensor(0.5))
    assert ev["err_learned"] == pytest.approx(ev["err_before"], abs=1e-7)
    assert ev["epe"] == pytest.approx(ev["epe_zero"], abs=1e-6)
    h, w = ev["ref"].shape[-2:]
    assert ev["learned_flow"].shape == ev["true_flow"].shape == (2, 2, h, w)
    assert ev["l1_masks"].shape == (2, 2, 9, h, w)
    assert ev["pair_epe"].shape == (2,)


def test_calibration_subtracts_self_alignment(pairs):
    torch.manual_seed(0)
    model = PCDDemo(num_feat=8, deformable_groups=2)
    with torch.no_grad():  # non-zero offsets everywhere
        pcd = model.pcd_align
        for pack in list(pcd.dcn_pack.values()) + [pcd.cas_dcnpack]:
            pack.conv_offset.weight.normal_(0, 0.05)
            pack.conv_offset.bias.normal_(0, 0.5)
    items = [(TRAIN_CLIPS[0], 3, 3), (TRAIN_CLIPS[0], 3, 5)]  # a frame with itself, and a real pair
    cal = evaluate_alignment(model, pairs, items, calibrate=True)
    raw = evaluate_alignment(model, pairs, items, calibrate=False)
    assert cal["raw_flow"].abs().mean() > 0.05
    assert cal["learned_flow"][0].abs().max() < 1e-5  # same frame: motion exactly zero after calibration
    assert torch.allclose(raw["learned_flow"], raw["raw_flow"])
    assert torch.allclose(cal["learned_flow"][1], cal["raw_flow"][1] - cal["self_flow"][1])
    # independent: both pairs share the centre frame, so their self-alignment is the same and equals a separate run
    assert torch.allclose(cal["self_flow"][0], cal["self_flow"][1], atol=1e-6)
    ref = pairs.batch(items[1:])[1]
    assert torch.allclose(cal["self_flow"][1:], pcd_motion(model, ref, ref)["total"], atol=1e-6)
    est = pcd_motion(model, *pairs.batch(items[1:])[:2])
    assert torch.allclose(est["total"], est["l1"] + est["cascade"])

    # independent: each level's flow is the mask-weighted mean of its offsets over groups and taps, by hand
    def by_hand(level):
        off, m = est["offsets"][level][:, 0], est["masks"][level][:, 0]  # (n, g, 9, 2, h, w), (n, g, 9, h, w)
        return (off * m[:, :, :, None]).sum(dim=(1, 2)) / m.sum(dim=(1, 2))[:, None]
    assert torch.allclose(est["l1"], by_hand("l1"), atol=1e-5)
    assert torch.allclose(est["total"], by_hand("l1") + by_hand("cascade"), atol=1e-5)


def test_short_training_makes_the_decoded_output_closer(pairs):
    torch.manual_seed(0)
    model = PCDDemo(num_feat=8, deformable_groups=2)
    items = [(c, 3, 3 + d) for c in TRAIN_CLIPS for d in (-1, 1)]
    before = evaluate_alignment(model, pairs, items)
    hist = train_pcd_demo(model, pairs, steps=6, batch_size=4, crop=16, lr=2e-3, seed=0, log_every=2)
    after = evaluate_alignment(model, pairs, items)
    assert hist.steps == [1, 2, 4, 6] and len(hist.loss) == 4 and np.isfinite(hist.loss).all()
    assert hist.seconds > 0
    assert after["err_decoded"] < before["err_decoded"]
    assert not model.training


# ----------------------------------------------------------------------------------------- figures
def test_figures_are_titled_and_labelled(pairs):
    from edvr_lib.archs import build_edvr

    torch.manual_seed(0)
    edvr = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    with torch.no_grad():
        feats = edvr.extract_features(torch.rand(1, 5, 3, 16, 16))
    model = PCDDemo(num_feat=8, deformable_groups=2)
    ev = evaluate_alignment(model, pairs, [(TRAIN_CLIPS[0], 3, 5), (TRAIN_CLIPS[0], 3, 4)])
    hist = DemoHistory(steps=[1, 2], loss=[0.5, 0.4], seconds=1.0)
    img = np.random.default_rng(0).random((16, 16, 3))
    cases = {"zero": (np.zeros((9, 2)), np.ones(9)), "shift": (np.tile([1.0, -1.0], (9, 1)), np.full(9, 0.5))}
    figs = [pcd_demo.pyramid_figure(feats, frame_idx=2), pcd_demo.sampling_positions_figure(img, (8, 8), cases),
            pcd_demo.alignment_figure(ev, 0, label="test"), pcd_demo.flow_scatter_figure(ev)]
    for fig in figs:
        _all_figures_labelled(fig)
    loss = loss_figure(hist)
    assert loss.axes[0].get_title() and loss.axes[0].get_xlabel() and loss.axes[0].get_ylabel()
    plt.close("all")


def test_unknown_clip_names_the_clip(embedded_smoke_root):
    with pytest.raises(EDVRError, match="no_such_clip"):
        SyntheticPairs(embedded_smoke_root, clips=["no_such_clip"])
