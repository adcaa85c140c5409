"""The TSA demo of notebook 03: tracing the fusion, attention semantics, aligned windows, corruption, training."""
from __future__ import annotations
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs import TSAFusion, build_edvr
from edvr_lib.data.corruption import corrupt_frame
from edvr_lib.introspect import record_internals
from edvr_lib.tutorial import tsa_demo
from edvr_lib.tutorial.tsa_demo import (AlignedWindows, TSADemo, corruption_attention,
                                     edvr_corruption_attention, frame_usefulness, trace_fusion, train_tsa_demo)
from edvr_lib.utils import EDVRError

TRAIN_CLIPS = ["syn_translate_astronaut", "syn_rotate_coffee", "syn_zoom_rocket"]


@pytest.fixture(scope="module")
def windows(embedded_smoke_root):
    return AlignedWindows(embedded_smoke_root, clips=TRAIN_CLIPS, num_frame=5)


# ----------------------------------------------------------------------------------------- trace_fusion
def test_trace_matches_the_module_and_the_formulas():
    torch.manual_seed(0)
    fusion = TSAFusion(num_feat=8, num_frame=3).eval()
    aligned = torch.randn(2, 3, 8, 12, 20)
    tr = trace_fusion(fusion, aligned)
    with torch.no_grad():
        out = fusion(aligned)
        # temporal attention by hand from the two embedding convs (EDVR Eq. 4-5)
        e_ref = F.conv2d(aligned[:, 1], fusion.temporal_attn1.weight, fusion.temporal_attn1.bias, padding=1)
        e = F.conv2d(aligned.flatten(0, 1), fusion.temporal_attn2.weight, fusion.temporal_attn2.bias,
                     padding=1).view(2, 3, 8, 12, 20)
    assert torch.allclose(tr.output, out, atol=1e-6)
    assert torch.allclose(tr.temporal_attn, torch.sigmoid((e * e_ref[:, None]).sum(2)), atol=1e-5)
    assert torch.allclose(tr.output, tr.fused * tr.spatial_attn * 2 + tr.spatial_add, atol=1e-5)
    assert tr.temporal_attn.shape == (2, 3, 12, 20) and tr.emb.shape == (2, 3, 8, 12, 20)
    shapes = dict(tr.shapes)  # pyramid: h -> ceil(h/2) -> ceil(h/4) -> h
    assert shapes["spatial_attn2"][-2:] == (6, 10)
    assert shapes["spatial_attn_l2"][-2:] == (3, 5)
    assert shapes["spatial_attn5"][-2:] == (12, 20)


def _lrelu(x):
    return F.leaky_relu(x, 0.1)


def _up2(x):
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def _pool2(x, fusion):
    return torch.cat([fusion.max_pool(x), fusion.avg_pool(x)], dim=1)


def test_trace_agrees_with_a_direct_computation_on_edvr():
    """Every traced map recomputed from the fusion's own layers (EDVR Eq. 4-6 and the released spatial pyramid)."""
    torch.manual_seed(0)
    model = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    with torch.no_grad(), record_internals(model) as rec:
        model(torch.rand(1, 5, 3, 12, 16))
    aligned, fu = rec.aligned / rec.aligned.std(), model.fusion  # unit scale: attention far from 0.5, per frame
    tr = trace_fusion(fu, aligned)
    b, t, c, h, w = aligned.shape
    with torch.no_grad():
        emb_ref = fu.temporal_attn1(aligned[:, fu.center_frame_idx])
        emb = fu.temporal_attn2(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
        corr = (emb * emb_ref[:, None]).sum(dim=2)
        attn = torch.sigmoid(corr)
        weighted = (aligned * attn[:, :, None]).reshape(b, t * c, h, w)
        fused = _lrelu(fu.feat_fusion(weighted))
        a = _lrelu(fu.spatial_attn2(_pool2(_lrelu(fu.spatial_attn1(weighted)), fu)))
        level = _lrelu(fu.spatial_attn_l2(_pool2(_lrelu(fu.spatial_attn_l1(a)), fu)))
        a = _lrelu(fu.spatial_attn3(a)) + _up2(_lrelu(fu.spatial_attn_l3(level)))
        logits = fu.spatial_attn5(_up2(_lrelu(fu.spatial_attn4(a))))
        add = fu.spatial_attn_add2(_lrelu(fu.spatial_attn_add1(logits)))
    gate = torch.sigmoid(logits)
    direct = {"emb_ref": emb_ref, "emb": emb, "corr": corr, "temporal_attn": attn, "fused": fused,
              "spatial_logits": logits, "spatial_attn": gate, "spatial_add": add, "output": fused * gate * 2 + add}
    for name, expected in direct.items():
        assert torch.allclose(getattr(tr, name), expected, atol=1e-5), name
    # the maps differ from 0.5 and from frame to frame, so a wrong or swapped map cannot match
    assert (attn - 0.5).abs().amax() > 0.1 and (attn - attn[:, :1]).abs().amax() > 0.05


def test_trace_rejects_non_tsa_and_bad_shapes():
    with pytest.raises(EDVRError, match="TSAFusion"):
        trace_fusion(nn.Conv2d(40, 8, 1), torch.zeros(1, 5, 8, 4, 4))
    with pytest.raises(EDVRError, match=r"t=5"):
        trace_fusion(TSAFusion(num_feat=8, num_frame=5), torch.zeros(1, 3, 8, 4, 4))


def test_temporal_attention_is_correlation_with_the_centre():
    """Identity embeddings: corr = <F_t, F_ctr> per pixel, so a copy of the centre gets sigmoid(|F|^2) > 0.5,
    its negative sigmoid(-|F|^2) < 0.5, and an all-zero frame exactly 0.5."""
    c = 4
    fusion = TSAFusion(num_feat=c, num_frame=3).eval()
    with torch.no_grad():
        for conv in (fusion.temporal_attn1, fusion.temporal_attn2):
            conv.weight.zero_()
            conv.weight[:, :, 1, 1] = torch.eye(c)
            conv.bias.zero_()
    torch.manual_seed(0)
    ref = torch.randn(1, c, 8, 8)
    aligned = torch.stack([-ref, ref, torch.zeros_like(ref)], dim=1)
    attn = trace_fusion(fusion, aligned).temporal_attn[0]
    norm2 = (ref[0] ** 2).sum(0)
    assert torch.allclose(attn[1], torch.sigmoid(norm2), atol=1e-6)
    assert torch.allclose(attn[0], torch.sigmoid(-norm2), atol=1e-6)
    assert torch.allclose(attn[2], torch.full((8, 8), 0.5))


# ----------------------------------------------------------------------------------------- data
def test_aligned_windows_are_aligned(embedded_smoke_root, windows):
    from edvr_lib.data import embedded_paths, read_image

    lq = embedded_paths(embedded_smoke_root)["lq"]
    n = len(list((lq / TRAIN_CLIPS[0]).glob("*.png")))
    assert len(windows) == len(TRAIN_CLIPS) * (n - 4)  # windows wholly inside each clip
    assert windows.clean.shape[1:3] == (5, 3)
    clip, ctr = windows.keys[0]
    centre = torch.from_numpy(read_image(lq / clip / f"{ctr:08d}.png")).permute(2, 0, 1)
    h, w = windows.clean.shape[-2:]
    assert torch.equal(windows.clean[0, 2], centre[:, :h, :w])
    raw = torch.from_numpy(read_image(lq / clip / f"{ctr - 2:08d}.png")).permute(2, 0, 1)
    b = (slice(None), slice(4, -4), slice(4, -4))
    # the warped neighbour is much closer to the centre than the raw one
    assert (windows.clean[0, 0] - centre)[b].abs().mean() < 0.5 * (raw - centre)[b].abs().mean()


def test_batch_corruption_bookkeeping(windows):
    rng = np.random.default_rng(0)
    b = windows.batch(6, 16, rng, noise_sigma=0.0, corrupt_prob=0.0)
    assert b["lq"].shape == (6, 5, 3, 16, 16) and b["gt"].shape == (6, 3, 16, 16)
    assert (b["corrupt_idx"] == -1).all() and not b["region"].any()
    assert torch.equal(b["lq"][:, 2], b["gt"])  # no noise, no corruption: the input centre is the target
    b = windows.batch(32, 16, rng, corrupt_prob=1.0)
    assert ((b["corrupt_idx"] >= 0) & (b["corrupt_idx"] != 2)).all()
    assert b["region"].flatten(1).any(1).all()
    with pytest.raises(EDVRError, match="crop"):
        windows.batch(2, 18, rng)


def test_corrupt_frame():
    rng = np.random.default_rng(0)
    frame, other = torch.rand(3, 10, 12), torch.rand(3, 10, 12)
    out, region = corrupt_frame(frame, "occlusion", rng, other=other, size=0.5)
    assert region.sum() == 5 * 5
    assert torch.equal(out[:, ~region], frame[:, ~region]) and torch.equal(out[:, region], other[:, region])
    out, region = corrupt_frame(frame, "noise", rng, strength=0.5)
    assert region.all() and (out - frame).abs().mean() > 0.2 and out.min() >= 0 and out.max() <= 1
    out, region = corrupt_frame(frame, "blur", rng, strength=0.5)
    assert region.all() and out.shape == frame.shape and out.std() < frame.std() / 2  # smoothed
    assert abs(float(out.mean() - frame.mean())) < 0.02  # a blur keeps the mean (reflect padding: nearly)
    with pytest.raises(EDVRError, match="unknown corruption"):
        corrupt_frame(frame, "rain", rng)


def test_frame_usefulness_averaging_needs_weights(windows):
    res = frame_usefulness(windows, frame=0, noise_sigma=0.1, seed=0)
    # averaging five aligned noisy frames beats the centre alone (about 10 log10(5) = 7 dB for pure noise)
    assert res["mean of all frames"] > res["centre only"] + 4
    for kind in ("noise", "occlusion", "blur"):  # a faulty frame costs PSNR; leaving it out gets it back
        assert res[f"{kind}: mean of all"] < res["mean of all frames"]
        assert res[f"{kind}: mean without it"] > res[f"{kind}: mean of all"]
    assert res["noise: mean of all"] < res["occlusion: mean of all"] < res["blur: mean of all"]  # worst to mildest
    assert set(res["example"]) == {"noise", "occlusion", "blur"} and res["example"]["blur"].shape[0] == 5
    with pytest.raises(EDVRError, match="not the centre"):
        frame_usefulness(windows, frame=2)


# ----------------------------------------------------------------------------------------- model and training
def test_tsa_demo_shapes_and_identity_at_zero_head():
    torch.manual_seed(0)
    model = TSADemo(num_feat=8, num_frame=5).eval()
    x = torch.rand(2, 5, 3, 12, 16)
    with torch.no_grad():
        assert model(x).shape == (2, 3, 12, 16)
        nn.init.zeros_(model.conv_last.weight)
        nn.init.zeros_(model.conv_last.bias)
        assert torch.equal(model(x), x[:, 2])  # the output is a residual on the centre frame
    with pytest.raises(EDVRError, match="t=5"):
        model(torch.rand(1, 3, 3, 12, 16))


def test_short_training_and_attention_summary(windows):
    torch.manual_seed(0)
    model = TSADemo(num_feat=8, num_frame=5)
    before = corruption_attention(model, windows, "occlusion", num_windows=4, crop=16)
    hist = train_tsa_demo(model, windows, steps=6, batch_size=4, crop=16, seed=0, log_every=3)
    after = corruption_attention(model, windows, "occlusion", num_windows=4, crop=16)
    assert hist.steps == [1, 3, 6] and np.isfinite(hist.loss).all()
    assert any(not torch.equal(a, b) for a, b in zip(before["attn"], after["attn"]))
    assert after["attn"].shape == (4, 5, 16, 16) and after["per_frame"].shape == (4, 5)
    assert (after["corrupt_idx"] == 0).all() and after["region"].flatten(1).any(1).all()
    for key in ("clean_neighbours", "corrupted_region", "corrupted_outside_region", "err_out", "err_centre"):
        assert np.isfinite(after[key])
    # the summary is the mean of the maps over the right pixels
    r, a = after["region"], after["attn"]
    assert after["corrupted_region"] == pytest.approx(float(np.mean([a[j, 0][r[j]].mean() for j in range(4)])),
                                                      abs=1e-6)
    with torch.no_grad():  # the output computed from the trace is the model's forward
        assert torch.allclose(after["output"], model(after["lq"]), atol=1e-6)
    with pytest.raises(EDVRError, match="centre"):
        corruption_attention(model, windows, "noise", frame=2)


def test_edvr_corruption_attention():
    torch.manual_seed(0)
    model = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    lq = torch.rand(5, 3, 12, 16)
    res = edvr_corruption_attention(model, lq, "noise", frame=1)
    with torch.no_grad(), record_internals(model) as rec:
        model(lq[None])
    assert torch.allclose(res["clean"], rec.temporal_attn[0].mean(dim=(-2, -1)))
    # the corrupted neighbour's attention changes; a frame that was not touched keeps its attention
    assert not torch.allclose(res["attn_corrupted"][1], res["attn_clean"][1], atol=1e-4)
    assert not torch.isclose(res["corrupted"][1], res["clean"][1], atol=1e-6)
    assert torch.allclose(res["attn_corrupted"][0], res["attn_clean"][0], atol=1e-6)
    assert res["attn_corrupted"].shape == (5, 12, 16) and res["region"].all()
    assert not torch.equal(res["lq_corrupted"][1], lq[1]) and torch.equal(res["lq_corrupted"][0], lq[0])
    wo = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1, with_tsa=False)
    with pytest.raises(EDVRError, match="with_tsa=False"):
        edvr_corruption_attention(wo, lq, "noise")


@pytest.mark.slow
def test_trained_tsa_gives_a_noisy_neighbour_less_weight(windows):
    torch.manual_seed(0)
    model = TSADemo(num_feat=16, num_frame=5)
    train_tsa_demo(model, windows, steps=400, batch_size=16, crop=32, seed=0)
    res = corruption_attention(model, windows, "noise", crop=32)
    assert res["corrupted_region"] < res["clean_neighbours"] - 0.1
    assert res["err_out"] < res["err_centre"]


# ----------------------------------------------------------------------------------------- figures
def test_figures_are_titled_and_labelled(windows):
    torch.manual_seed(0)
    model = TSADemo(num_feat=8, num_frame=5)
    res = corruption_attention(model, windows, "occlusion", num_windows=2, crop=16)
    tr = trace_fusion(model.fusion, model.features(res["lq"]))
    figs = [tsa_demo.attention_maps_figure(res["lq"][0], res["attn"][0], "maps", corrupted=0, region=res["region"][0]),
            tsa_demo.attention_maps_figure(res["lq"][0], None, "frames only"),
            tsa_demo.spatial_attention_figure(tr), tsa_demo.attention_bars_figure({"a": res["per_frame"][0]}, 0),
            tsa_demo.frame_usefulness_figure(frame_usefulness(windows))]
    for fig in figs:
        for ax in fig.axes:
            if ax.get_label() == "<colorbar>":
                continue
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    assert figs[0]._suptitle.get_text() == "maps" and len(figs[1].axes) == 5
    plt.close("all")


def test_aligned_windows_bad_input(embedded_smoke_root):
    with pytest.raises(EDVRError, match="no_such_clip"):
        AlignedWindows(embedded_smoke_root, clips=["no_such_clip"])
    with pytest.raises(EDVRError, match="odd"):
        AlignedWindows(embedded_smoke_root, clips=TRAIN_CLIPS, num_frame=4)


def test_one_corruption_vocabulary_for_training_notebooks_and_explorer():
    from edvr_lib.data.corruption import FRAME_FAULTS, spoil_neighbour
    from edvr_lib.tutorial import tsa_demo
    from edvr_lib.viz import explorer

    assert explorer.CORRUPTIONS == ("none", *FRAME_FAULTS)
    assert set(tsa_demo.USEFULNESS_FAULTS) <= set(FRAME_FAULTS) and set(tsa_demo.CORRUPTIONS) <= set(FRAME_FAULTS)
    frame = torch.rand(3, 16, 16)
    occluded = explorer.corrupt(frame, "occlusion", seed=1)
    changed = (occluded != frame).any(0)
    assert changed.float().mean().item() == pytest.approx(0.25, abs=0.02)  # a black square of half the side
    assert occluded[:, changed].max().item() == 0.0
    lq = torch.rand(5, 3, 8, 8)
    for seed in range(10):
        spoilt, idx = spoil_neighbour(lq, np.random.default_rng(seed), kinds=("noise",))
        assert idx != 2 and (spoilt[idx] - lq[idx]).abs().mean() > 0.1
        assert torch.equal(spoilt[[i for i in range(5) if i != idx]], lq[[i for i in range(5) if i != idx]])
