"""Ablations: each one changes the function the model computes, in the documented way, and leaves the model
exactly as it was; on the shipped checkpoint, PCD's offsets are worth PSNR on a held-out window."""
from __future__ import annotations

import contextlib

import pytest
import torch

from edvr_lib.ablations import (ABLATIONS, centre_frame_only, centre_offsets, run_ablations, uniform_attention,
                                zero_offsets)
from edvr_lib.archs import build_edvr
from edvr_lib.introspect import record_internals
from edvr_lib.utils import EDVRError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    with torch.no_grad():  # the training init is nearly an identity (small residuals, zero offsets): liven it up
        for conv in model.modules():
            if isinstance(conv, torch.nn.Conv2d):
                torch.nn.init.normal_(conv.weight, 0, 1.4 / conv.weight[0].numel() ** 0.5)
                conv.bias.normal_(0, 0.1)
    x = torch.rand(2, 5, 3, 12, 16)
    return model, x


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_changes_the_output_and_restores_the_model(tiny, name):
    model, x = tiny
    weights = _snapshot(model)
    with torch.no_grad():
        before = model(x)
        with ABLATIONS[name][0](model) as ablated:
            changed = ablated(x)
        after = model(x)
    assert changed.shape == before.shape
    assert (changed - before).abs().max() > 1e-4, f"{name} did not change the output"
    assert torch.equal(after, before)  # exactly the same function afterwards
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert _no_hooks(model)


def test_model_restored_when_the_block_raises(tiny):
    model, x = tiny
    with torch.no_grad():
        before = model(x)
        with pytest.raises(RuntimeError, match="boom"):
            with zero_offsets(model), uniform_attention(model):
                raise RuntimeError("boom")
        assert torch.equal(model(x), before) and _no_hooks(model)


def _record(model, x, ablation=None):
    """Internals of one forward pass, inside ``ablation`` (a context manager) if given."""
    with torch.no_grad(), ablation or contextlib.nullcontext(), record_internals(model) as rec:
        model(x)
    return rec


def test_zero_offsets_samples_the_regular_grid_and_keeps_masks(tiny):
    model, x = tiny
    full, rec = _record(model, x), _record(model, x, zero_offsets(model))
    for level, offs in rec.pcd_offsets.items():
        assert torch.count_nonzero(offs) == 0, level
    assert torch.count_nonzero(full.pcd_offsets["l3"]) > 0
    # L3 is the first DCN: its offset features are not yet affected, so its masks are the model's own
    assert torch.allclose(rec.pcd_masks["l3"], full.pcd_masks["l3"], atol=1e-6)


def test_centre_offsets_removes_only_the_motion(tiny):
    model, x = tiny
    ctr = model.center_frame_idx
    full, rec = _record(model, x), _record(model, x, centre_offsets(model))
    for level, offs in rec.pcd_offsets.items():  # (b, t, g, 9, 2, h, w): every frame uses the centre's offsets
        assert torch.equal(offs, offs[:, ctr:ctr + 1].expand_as(offs)), level
        assert torch.allclose(offs[:, ctr], full.pcd_offsets[level][:, ctr], atol=1e-6), level
    # the centre frame's own path is untouched; the neighbours' aligned features change
    assert torch.allclose(rec.aligned[:, ctr], full.aligned[:, ctr], atol=1e-6)
    assert (rec.aligned[:, 0] - full.aligned[:, 0]).abs().max() > 1e-4


def test_uniform_attention_uses_each_maps_own_mean(tiny):
    model, x = tiny
    full, rec = _record(model, x), _record(model, x, uniform_attention(model))
    sp = _record(model, x, uniform_attention(model, temporal=False))
    b = x.shape[0]
    # temporal: one number per sample, the mean of the learned map (the temporal gate comes first)
    want = full.temporal_attn.mean(dim=(1, 2, 3))
    assert torch.allclose(rec.temporal_attn, want.view(b, 1, 1, 1).expand_as(rec.temporal_attn), atol=1e-6)
    assert full.temporal_attn.std() > 1e-3  # the learned map did vary
    # spatial only: one number per channel, the mean over pixels of the map the model computes
    want = full.spatial_attn.mean(dim=(2, 3), keepdim=True).expand_as(sp.spatial_attn)
    assert torch.allclose(sp.spatial_attn, want, atol=1e-6)
    assert torch.allclose(sp.spatial_attn_add, full.spatial_attn_add.mean(dim=(2, 3), keepdim=True).expand_as(
        sp.spatial_attn_add), atol=1e-6)
    assert torch.allclose(sp.temporal_attn, full.temporal_attn)  # temporal untouched when temporal=False


def test_centre_frame_only_feeds_the_centre_frame(tiny):
    model, x = tiny
    with torch.no_grad(), centre_frame_only(model) as ablated:
        out = ablated(x)
        want = model(x[:, 2:3].expand_as(x).contiguous())
    assert torch.equal(out, want)


def test_run_ablations_side_by_side(tiny):
    from edvr_lib.metrics import calculate_psnr, tensor2img

    model, x = tiny
    gt = torch.rand(2, 3, 48, 64)
    res = run_ablations(model, x, gt)
    assert list(res.psnr) == ["full model", *ABLATIONS, "bicubic"]
    for name, out in res.outputs.items():
        assert out.shape == (2, 3, 48, 64)
        per = [calculate_psnr(tensor2img(o), tensor2img(g)) for o, g in zip(out, gt)]
        assert res.psnr_per_window[name] == pytest.approx(per)
        assert res.psnr[name] == pytest.approx(sum(per) / 2)
    assert res.gain("PCD off (zero offsets)") == pytest.approx(res.psnr["full model"] -
                                                               res.psnr["PCD off (zero offsets)"])
    table = res.table()
    assert table.count("\n") == len(res.psnr) + 1 and "| full model |" in table
    one = run_ablations(model, x[0], gt[0], variants=["uniform temporal attention"], include_bicubic=False)
    assert list(one.psnr) == ["full model", "uniform temporal attention"]
    assert one.psnr["full model"] == pytest.approx(res.psnr_per_window["full model"][0])


def test_bad_inputs_say_what_to_fix(tiny):
    model, x = tiny
    with pytest.raises(EDVRError, match="do not match"):
        run_ablations(model, x, torch.rand(2, 3, 12, 16))
    with pytest.raises(EDVRError, match="unknown ablation 'PCD'"):
        run_ablations(model, x, torch.rand(2, 3, 48, 64), variants=["PCD"])
    wotsa = build_edvr("M-woTSA", num_feat=8, num_extract_block=1, num_reconstruct_block=1)
    with pytest.raises(EDVRError, match="with_tsa=False"):
        with uniform_attention(wotsa):
            pass
    with pytest.raises(EDVRError, match="edvr_lib.archs.EDVR"):
        with zero_offsets(torch.nn.Conv2d(3, 3, 1)):
            pass


def test_shipped_checkpoint_pcd_offsets_buy_psnr(embedded_smoke_root):
    """On a held-out embedded test window the learned offsets matter; the numbers are printed for the report."""
    from edvr_lib.evaluate import build_dataset
    from edvr_lib.models import DEFAULT_CHECKPOINT, load_model

    if not DEFAULT_CHECKPOINT.exists():
        pytest.skip(f"the shipped checkpoint {DEFAULT_CHECKPOINT} is not there (the training notebook writes it)")
    model = load_model(None, "edvr")
    ds = build_dataset("embedded", root=embedded_smoke_root, clips=["bbb_102", "syn_mixed_ihc"])
    picks = [i for i, (clip, f) in enumerate(ds.index) if f in (2, 5)]  # frames 2 and 5 of each held-out clip
    items = [ds[i] for i in picks]
    lq = torch.stack([it["lq"][..., 4:28, 4:28] for it in items])  # 24 x 24 LR crops: quick
    gt = torch.stack([it["gt"][..., 16:112, 16:112] for it in items])
    res = run_ablations(model, lq, gt)
    print("\n" + res.table())
    full = res.psnr["full model"]
    assert full > res.psnr["bicubic"] + 0.2
    # zeroing the offsets breaks even the centre frame's self-alignment: a large loss
    assert res.gain("PCD off (zero offsets)") > 0.2
    for name in ABLATIONS:  # every ablation changes what the learned model outputs
        assert (res.outputs[name] - res.outputs["full model"]).abs().max() > 1e-4, name
