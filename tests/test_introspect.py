"""record_internals: shapes, values consistent with the modules, outputs unchanged, nothing left behind."""
from __future__ import annotations

import pytest
import torch

from edvr_lib.archs import PCDAlignment, build_edvr
from edvr_lib.introspect import offset_monitor, offset_stats, offsets_to_flow, record_internals

TINY = dict(num_feat=16, num_extract_block=1, num_reconstruct_block=1)


def _model(preset="M", **kw):
    torch.manual_seed(0)
    model = build_edvr(preset, **{**TINY, **kw}).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset" in name:
                p.normal_(0, 0.05)
    return model


@pytest.mark.parametrize("batch", [1, 2])
def test_shapes_and_outputs_unchanged(batch):
    model = _model()
    g = 8
    x = torch.rand(batch, 5, 3, 16, 12)
    with torch.no_grad():
        plain = model(x)
        with record_internals(model) as rec:
            recorded = model(x)
        after = model(x)
    assert torch.equal(plain, recorded) and torch.equal(plain, after)
    sizes = {"l1": (16, 12), "l2": (8, 6), "l3": (4, 3), "cascade": (16, 12)}
    assert set(rec.pcd_offsets) == set(sizes) == set(rec.pcd_masks)
    for key, (h, w) in sizes.items():
        assert rec.pcd_offsets[key].shape == (batch, 5, g, 9, 2, h, w)
        assert rec.pcd_masks[key].shape == (batch, 5, g, 9, h, w)
        m = rec.pcd_masks[key]
        assert (m > 0).all() and (m < 1).all()
    assert rec.aligned.shape == (batch, 5, 16, 16, 12)
    assert rec.temporal_attn.shape == (batch, 5, 16, 12)
    assert rec.spatial_attn.shape == (batch, 16, 16, 12) and rec.spatial_attn_add.shape == (batch, 16, 16, 12)
    for t in [rec.aligned, rec.temporal_attn, rec.spatial_attn, *rec.pcd_offsets.values()]:
        assert t.device.type == "cpu" and not t.requires_grad
    # No hooks remain after the block.
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_values_match_direct_computation():
    model = _model()
    x = torch.rand(2, 5, 3, 8, 8)
    with torch.no_grad(), record_internals(model) as rec:
        model(x)
        feats = model.extract_features(x)
        aligned = model.align(feats)
        fusion = model.fusion
        emb_ref = fusion.temporal_attn1(aligned[:, 2])
        emb = fusion.temporal_attn2(aligned.flatten(0, 1)).view(2, 5, 16, 8, 8)
        attn = torch.sigmoid((emb * emb_ref[:, None]).sum(2))
        # Offsets of frame 3 of sample 1 at L3, straight from the DCN pack.
        l3 = feats[2]
        pcd = model.pcd_align
        off_feat = torch.nn.functional.leaky_relu(pcd.offset_conv1["l3"](torch.cat([l3[1, 3:4], l3[1, 2:3]], 1)), 0.1)
        off_feat = torch.nn.functional.leaky_relu(pcd.offset_conv2["l3"](off_feat), 0.1)
        offset_mask = pcd.dcn_pack["l3"].conv_offset(off_feat)
        offset = torch.cat(torch.chunk(offset_mask, 3, dim=1)[:2], dim=1)  # BasicSR's split, spelled out
        mask = torch.sigmoid(torch.chunk(offset_mask, 3, dim=1)[2])
    assert torch.allclose(rec.aligned, aligned, atol=1e-6)
    assert torch.allclose(rec.temporal_attn, attn, atol=1e-6)
    # offset channel g*18 + 2k is dy, +1 dx; recorded as [..., g, k, (dy, dx), h, w].
    assert torch.allclose(rec.pcd_offsets["l3"][1, 3, 5, 4, 0], offset[0, 5 * 18 + 2 * 4], atol=1e-6)
    assert torch.allclose(rec.pcd_offsets["l3"][1, 3, 5, 4, 1], offset[0, 5 * 18 + 2 * 4 + 1], atol=1e-6)
    assert torch.allclose(rec.pcd_masks["l3"][1, 3, 5, 4], mask[0, 5 * 9 + 4], atol=1e-6)


def test_wotsa_has_no_attention():
    model = _model("M-woTSA")
    with torch.no_grad(), record_internals(model) as rec:
        model(torch.rand(1, 5, 3, 8, 8))
    assert rec.temporal_attn is None and rec.spatial_attn is None and rec.aligned.shape == (1, 5, 16, 8, 8)


def test_bare_pcd_and_offsets_to_flow():
    torch.manual_seed(0)
    pcd = PCDAlignment(num_feat=8, deformable_groups=2)
    with torch.no_grad():
        for key in ("l1", "l2", "l3"):
            pcd.dcn_pack[key].conv_offset.bias.zero_()
        pcd.dcn_pack["l1"].conv_offset.bias[0:36:2] = 1.5   # dy of every tap and group
        pcd.dcn_pack["l1"].conv_offset.bias[1:36:2] = -0.5  # dx
    feats = [torch.rand(3, 8, 8, 8), torch.rand(3, 8, 4, 4), torch.rand(3, 8, 2, 2)]
    with torch.no_grad(), record_internals(pcd) as rec:
        pcd(feats, feats)
    assert rec.pcd_offsets["l1"].shape == (3, 1, 2, 9, 2, 8, 8)
    flow = offsets_to_flow(rec.pcd_offsets["l1"], rec.pcd_masks["l1"])
    assert flow.shape == (3, 1, 2, 8, 8)
    assert torch.allclose(flow[:, :, 0], torch.full_like(flow[:, :, 0], 1.5), atol=1e-5)
    assert torch.allclose(flow[:, :, 1], torch.full_like(flow[:, :, 1], -0.5), atol=1e-5)
    assert rec.aligned is None


def test_gradients_unaffected_by_recording():
    model = _model()
    x = torch.rand(1, 5, 3, 8, 8)
    model(x).sum().backward()
    ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    with record_internals(model):
        model(x).sum().backward()
    assert all(torch.equal(ref[n], p.grad) for n, p in model.named_parameters())


# --- Trust the read-out first: known offsets in, the same motion out ---------------------------------------------

def _set_offsets(pack, dy, dx, mask_logit=0.0):
    """Make ``pack.conv_offset`` output the constant offset ``(dy, dx)`` at every group, tap and pixel."""
    g, kk = pack.deformable_groups, pack.kernel_size ** 2
    with torch.no_grad():
        pack.conv_offset.weight.zero_()
        bias = pack.conv_offset.bias
        bias[:2 * g * kk:2] = dy   # torchvision layout: channel g*2*K + 2k is dy ...
        bias[1:2 * g * kk:2] = dx  # ... and + 1 is dx
        bias[2 * g * kk:] = mask_logit
    return g, kk


@pytest.mark.parametrize("dy, dx", [(0.0, 1.0), (1.0, 0.0)])
@pytest.mark.parametrize("with_masks", [False, True])
def test_known_offsets_read_back_exactly(dy, dx, with_masks):
    torch.manual_seed(0)
    pcd = PCDAlignment(num_feat=8, deformable_groups=2)
    g, kk = _set_offsets(pcd.dcn_pack["l1"], dy, dx, mask_logit=0.3)
    feats = [torch.rand(2, 8, 8, 8), torch.rand(2, 8, 4, 4), torch.rand(2, 8, 2, 2)]
    with torch.no_grad(), record_internals(pcd) as rec:
        pcd(feats, feats)
    offs = rec.pcd_offsets["l1"]
    assert offs.shape == (2, 1, g, kk, 2, 8, 8)
    assert torch.equal(offs[..., 0, :, :], torch.full_like(offs[..., 0, :, :], dy))
    assert torch.equal(offs[..., 1, :, :], torch.full_like(offs[..., 1, :, :], dx))
    flow = offsets_to_flow(offs, rec.pcd_masks["l1"] if with_masks else None)
    expected = torch.tensor([dy, dx]).view(2, 1, 1).expand(2, 8, 8)
    assert torch.allclose(flow, expected.expand_as(flow), atol=1e-6, rtol=0)
    # the other levels were left at their zero initialisation and read back as no motion
    for key in ("l2", "l3"):
        assert rec.pcd_offsets[key].abs().max() == 0


@pytest.mark.parametrize("dy, dx", [(0, 1), (1, 0)])
def test_offset_sign_convention_aligns_a_shifted_neighbour_back(dy, dx):
    """Offset (dy, dx) makes the DCN at p sample the neighbour at p + (dy, dx): reference -> neighbour, the
    direction a backward warp uses. A neighbour whose content moved by (dy, dx) is aligned back onto the reference."""
    from edvr_lib.archs import DCNv2Pack

    torch.manual_seed(0)
    pack = DCNv2Pack(4, 5, deformable_groups=2)
    ref = torch.rand(1, 4, 10, 11)
    nbr = torch.zeros_like(ref)  # nbr(p + (dy, dx)) = ref(p): the reference moved by +1 px
    nbr[..., dy:, dx:] = ref[..., :ref.shape[-2] - dy, :ref.shape[-1] - dx]
    feat = torch.rand_like(ref)
    with torch.no_grad():
        plain = pack(ref, feat)  # zero offsets: a plain 3x3 convolution (times sigmoid(0) = 0.5)
        _set_offsets(pack, float(dy), float(dx))
        aligned = pack(nbr, feat)
        offset = DCNv2Pack.offsets_and_mask(pack.conv_offset(feat))[0]  # what that forward sampled with
    inner = (..., slice(2, -2), slice(2, -2))  # away from the zero padding and the edge the shift empties
    assert torch.allclose(aligned[inner], plain[inner], atol=1e-5)
    assert not torch.allclose(pack(ref, feat)[inner], plain[inner], atol=1e-3)  # the offset really moved it
    assert offset[:, 0::2].unique().tolist() == [float(dy)]


def test_offset_layout_group_tap_dy_dx():
    """Channel ``g*2*K + 2k`` (+1) of ``conv_offset`` is (dy, dx) of group g, tap k (row-major 3x3)."""
    torch.manual_seed(0)
    pcd = PCDAlignment(num_feat=8, deformable_groups=2)
    pack = pcd.dcn_pack["l1"]
    g, kk = _set_offsets(pack, 0.0, 1.0)
    grp, tap = 1, 5  # tap 5 = row 1, column 2 of the 3x3 kernel
    with torch.no_grad():
        pack.conv_offset.bias[grp * 2 * kk + 2 * tap] = 3.0      # dy
        pack.conv_offset.bias[grp * 2 * kk + 2 * tap + 1] = -2.0  # dx
    feats = [torch.rand(1, 8, 8, 8), torch.rand(1, 8, 4, 4), torch.rand(1, 8, 2, 2)]
    with torch.no_grad(), record_internals(pcd) as rec:
        pcd(feats, feats)
    offs = rec.pcd_offsets["l1"]  # (b, t, g, 9, 2, h, w)
    assert torch.equal(offs[:, :, grp, tap, 0], torch.full_like(offs[:, :, grp, tap, 0], 3.0))
    assert torch.equal(offs[:, :, grp, tap, 1], torch.full_like(offs[:, :, grp, tap, 1], -2.0))
    others = torch.ones(g, kk, dtype=torch.bool)
    others[grp, tap] = False
    rest = offs[:, :, others]  # (b, t, g*9 - 1, 2, h, w)
    assert torch.equal(rest[..., 0, :, :], torch.zeros_like(rest[..., 0, :, :]))
    assert torch.equal(rest[..., 1, :, :], torch.ones_like(rest[..., 1, :, :]))


def test_offset_monitor_reads_every_dcn_inside_the_block_only():
    model = _model()
    x = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        model.pcd_align.dcn_pack["l1"].conv_offset.weight.zero_()
        model.pcd_align.dcn_pack["l1"].conv_offset.bias.fill_(3.0)
        with offset_monitor(model) as means:
            assert offset_stats(means) == {}  # nothing before a forward
            model(x)
        stats = offset_stats(means)
        assert set(stats) == {"pcd_align.dcn_pack.l3", "pcd_align.dcn_pack.l2", "pcd_align.dcn_pack.l1",
                              "pcd_align.cas_dcnpack"}
        assert stats["pcd_align.dcn_pack.l1"] == pytest.approx(3.0, abs=1e-5)
        model(x * 0.5)  # outside the block: no hook left
    assert offset_stats(means) == stats
    assert not any(m._forward_hooks for m in model.modules())
    assert set(model.state_dict()) == set(build_edvr("M", **TINY).state_dict())  # the network holds no monitor
