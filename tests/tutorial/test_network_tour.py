"""Notebook 02's opening: fusing misaligned frames, the whole network's shapes, parameters / FLOPs, paper vs code."""
from __future__ import annotations
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torch.nn import functional as F

from edvr_lib.archs import build_edvr
from edvr_lib.tutorial import network_tour, why_align
from edvr_lib.utils import EDVRError
from edvr_lib.introspect import count_flops, edvr_gflop

TINY = dict(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)


# ----------------------------------------------------------------------------------------- why align
def test_aligned_average_beats_the_raw_average_on_moving_content(embedded_smoke_root):
    demo = why_align.fusion_demo(embedded_smoke_root, "syn_translate_astronaut")
    assert demo["frames"].shape == demo["aligned"].shape and demo["frames"].shape[0] == 5
    assert demo["motion_px"][2] == 0 and demo["motion_px"][0] > 1.0  # the centre does not move, the ends do
    assert np.allclose(demo["aligned"][2], demo["centre"], atol=1e-6)  # zero flow: the centre frame unchanged
    assert demo["psnr_aligned"] > demo["psnr_raw"] + 3  # ghosts removed
    assert demo["sharp_raw"] < demo["sharp_aligned"] <= demo["sharp_centre"] * 1.01
    # independent: the raw average is the plain mean of the frames
    assert np.allclose(demo["raw_mean"], demo["frames"].mean(0))


def test_sharpness_of_known_images():
    ramp = np.tile(np.linspace(0, 1, 11)[None, :, None], (5, 1, 3))  # gradient 0.1 per pixel along x
    assert why_align.sharpness(ramp) == pytest.approx(0.1)
    assert why_align.sharpness(np.full((6, 6, 3), 0.3)) == 0


def test_fusion_demo_rejects_bad_clips_and_windows(embedded_smoke_root):
    with pytest.raises(EDVRError, match="bbb_000"):
        why_align.fusion_demo(embedded_smoke_root, "bbb_000")
    with pytest.raises(EDVRError, match="does not fit"):
        why_align.fusion_demo(embedded_smoke_root, "syn_translate_astronaut", center=1)


def test_fusion_figure_is_labelled(embedded_smoke_root):
    fig = why_align.fusion_figure(why_align.fusion_demo(embedded_smoke_root, "syn_translate_astronaut"))
    assert fig._suptitle.get_text()
    for ax in fig.axes:
        if ax.get_label() != "<colorbar>":
            assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel()
    plt.close("all")


# ----------------------------------------------------------------------------------------- the whole network
def test_trace_shapes_follows_the_forward():
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    x = torch.rand(1, 5, 3, 16, 24)
    tr = network_tour.trace_shapes(model, x)
    order = [r["module"] for r in tr["rows"]]
    assert order[0] == "conv_first" and order[-1] == "conv_last"
    assert order.index("pcd_align") < order.index("fusion") < order.index("reconstruction")
    assert order.count("pixel_shuffle") == 2
    shapes = {r["module"]: r["output"] for r in tr["rows"]}
    assert shapes["conv_l3_2"] == (5, 8, 4, 6) and shapes["fusion"] == (1, 8, 16, 24)
    assert torch.allclose(tr["out"], model(x), atol=1e-6)  # the traced forward is the ordinary forward
    assert torch.allclose(tr["out"], tr["residual"] + tr["base"], atol=1e-6)
    assert "+ base" in network_tour.format_trace(tr)


def test_deblur_track_restores_at_the_same_size():
    torch.manual_seed(0)
    model = build_edvr("L-deblur", **TINY).eval()
    x = torch.rand(1, 5, 3, 32, 32)
    tr = network_tour.trace_shapes(model, x)
    shapes = {r["module"]: r["output"] for r in tr["rows"]}
    assert shapes["predeblur"] == (5, 8, 8, 8) and tr["out"].shape == (1, 3, 32, 32)
    assert torch.equal(tr["base"], x[:, 2])


@pytest.mark.parametrize("preset, params", [("M", 3_300_131), ("L", 20_633_827), ("M-woTSA", 2_996_259)])
def test_module_table_matches_the_reference_and_the_flop_count(preset, params):
    tab = network_tour.module_table(preset, h=64, w=96)
    assert tab["params"] == params  # BasicSR 1.4.2's counts for the official presets
    assert tab["params"] == sum(p.numel() for p in build_edvr(preset).parameters())
    assert tab["gflop"] == pytest.approx(edvr_gflop(preset, 64, 96), rel=1e-9)
    assert list(tab["stages"])[:3] == ["feature extraction", "pyramid (L2, L3)", "PCD alignment"]
    text = network_tour.format_module_table({preset: tab})
    assert f"**{params:,}**" in text


def test_flop_counter_counts_a_conv_and_a_dcn_by_hand():
    from edvr_lib.archs import DCNv2Pack

    conv = torch.nn.Sequential()
    conv.add_module("c", torch.nn.Conv2d(3, 4, 3, padding=1))
    flops = 2 * (2 * 4 * 5 * 6) * 3 * 9
    assert count_flops(conv, torch.zeros(2, 3, 5, 6)) == {"": flops, "c": flops}
    dcn = DCNv2Pack(8, 4, deformable_groups=2)  # conv_offset (8 -> 54 channels) + the deformable product (8 -> 4)
    x = torch.zeros(1, 8, 5, 6)
    assert count_flops(dcn, x, x)[""] == 2 * 30 * 9 * 8 * (54 + 4)


def test_edvr_m_flops_and_what_the_shared_reference_half_saves():
    """973.6 GFLOP at REDS size when PCD's concatenating convolutions run whole for every frame (BasicSR's code);
    here their reference half runs once per window of 5 frames: 4 of those halves fewer per convolution."""
    c, area = 64, 180 * 320
    per_level = 2 * c * c * 9 * (area + area // 4 + area // 16 + area)  # ref half of offset_conv1 l1, l2, l3, cascade
    assert edvr_gflop("M", 180, 320) == pytest.approx(973.6261632 - 4 * per_level / 1e9, abs=1e-6)
    assert edvr_gflop("M", 64, 64) == pytest.approx(66.442231808, abs=1e-6)


def test_module_table_rejects_sizes_the_network_does_not_take():
    with pytest.raises(EDVRError, match="divisible by 4"):
        network_tour.module_table("M", h=90, w=320)


def test_paper_vs_code_measures_the_released_code():
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    for name, module in model.named_modules():  # non-zero offsets, so the offset features are not trivial
        if name.endswith("conv_offset"):
            module.reset_parameters()
    pvc = network_tour.paper_vs_code(model, torch.rand(1, 5, 3, 16, 16))
    assert pvc["offset_x2"] < 1e-5 < pvc["offset_x1"]
    assert pvc["spatial_from_weighted"] < 1e-5 and pvc["spatial_in_channels"] == 5 * pvc["fused_channels"] == 40
    assert pvc["base_bilinear"] < 1e-5 < pvc["base_bicubic"]
    with pytest.raises(EDVRError, match="with_tsa"):
        network_tour.paper_vs_code(build_edvr("M-woTSA", **TINY), torch.rand(1, 5, 3, 16, 16))
    # independent of the hooks: the base is what F.interpolate gives
    x = torch.rand(1, 5, 3, 8, 8)
    tr = network_tour.trace_shapes(model, x)
    assert torch.allclose(tr["base"], F.interpolate(x[:, 2], scale_factor=4, mode="bilinear", align_corners=False))
