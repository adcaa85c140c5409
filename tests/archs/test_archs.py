"""EDVR architecture: key tables, parameter totals, shapes, sizes, DCN semantics, gradients."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from edvr_lib.archs import (EDVR, PRESETS, DCNv2Pack, EDVRConfig, EDVRSizeError, PCDAlignment, PredeblurModule,
                            TSAFusion, build_edvr)
from edvr_lib.inference import forward_padded
from edvr_lib.utils import EDVRError

TABLES = Path(__file__).parents[1] / "fixtures" / "state_dicts"
TABLE_FILES = {"M": "EDVR_M", "M-woTSA": "EDVR_M_woTSA", "L": "EDVR_L", "L-woTSA": "EDVR_L_woTSA",
               "L-Vimeo": "EDVR_L_Vimeo", "L-SRblur": "EDVR_L_SRblur", "L-deblur": "EDVR_L_deblur"}
TOTALS = {"M": 3_300_131, "M-woTSA": 2_996_259, "L": 20_633_827, "L-woTSA": 19_419_875, "L-Vimeo": 20_699_363,
          "L-SRblur": 23_306_851, "L-deblur": 23_602_019}
TINY = dict(num_feat=8, num_extract_block=1, num_reconstruct_block=1)


def _table(preset: str) -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in (TABLES / f"{TABLE_FILES[preset]}_state_dict.txt").read_text().splitlines():
        name, shape = line.split("\t")
        rows.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return rows


@pytest.mark.parametrize("preset", list(TABLE_FILES))
def test_state_dict_equals_reference_table(preset):
    with torch.device("meta"):  # structure only: no memory, no init cost
        model = build_edvr(preset)
    rows = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert rows == _table(preset)
    assert sum(p.numel() for p in model.parameters()) == TOTALS[preset]


def test_presets_cover_all_tables():
    assert set(PRESETS) == set(TABLE_FILES)
    assert PRESETS["L-Vimeo"].num_frame == 7 and PRESETS["L-deblur"].hr_in and PRESETS["L-deblur"].with_predeblur


@pytest.mark.parametrize("preset", list(TABLE_FILES))
def test_forward_shapes_all_presets(preset):
    torch.manual_seed(0)
    model = build_edvr(preset, **TINY).eval()
    cfg = PRESETS[preset]
    h, w = (32, 48) if cfg.hr_in else (8, 12)
    x = torch.rand(2, cfg.num_frame, 3, h, w)
    with torch.no_grad():
        out = model(x)
    scale = 1 if cfg.hr_in else 4
    assert out.shape == (2, 3, h * scale, w * scale)
    assert torch.isfinite(out).all()


def test_full_width_edvr_l_forward_small_input():
    torch.manual_seed(0)
    model = build_edvr("L", num_reconstruct_block=2).eval()  # full width (128), short trunk for speed
    with torch.no_grad():
        out = model(torch.rand(1, 5, 3, 8, 8))
    assert out.shape == (1, 3, 32, 32)


def test_fresh_model_output_is_close_to_bilinear_base():
    # conv_offset is zero-initialised and residual blocks are scaled by 0.1, as in the reference.
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    x = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
    base = F.interpolate(x[:, 2], scale_factor=4, mode="bilinear", align_corners=False)
    assert out.shape == base.shape and (out - base).abs().mean() < 0.5


@pytest.mark.parametrize("hw", [(9, 13), (17, 6), (4, 4), (3, 5)])
def test_forward_padded_any_size(hw):
    torch.manual_seed(0)
    model = build_edvr("M", **TINY).eval()
    x = torch.rand(1, 5, 3, *hw)
    with torch.no_grad():
        out = forward_padded(model, x)
    assert out.shape == (1, 3, hw[0] * 4, hw[1] * 4)


def test_forward_padded_equals_plain_forward_when_divisible():
    torch.manual_seed(0)
    model = build_edvr("M-woTSA", **TINY).eval()
    x = torch.rand(1, 5, 3, 8, 12)
    with torch.no_grad():
        assert torch.equal(forward_padded(model, x), model(x))


def test_forward_padded_hr_in():
    torch.manual_seed(0)
    model = build_edvr("L-deblur", **TINY).eval()
    with torch.no_grad():
        out = forward_padded(model, torch.rand(1, 5, 3, 20, 33))
    assert out.shape == (1, 3, 20, 33)


@pytest.mark.parametrize("preset,hw,multiple", [("M", (9, 12), 4), ("L-deblur", (20, 32), 16)])
def test_bad_size_raises_clear_error(preset, hw, multiple):
    model = build_edvr(preset, **TINY)
    with pytest.raises(EDVRSizeError) as info:
        model(torch.rand(1, 5, 3, *hw))
    msg = str(info.value)
    assert f"divisible by {multiple}" in msg and "forward_padded" in msg and f"{hw[0]}x{hw[1]}" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, EDVRError)


def test_wrong_frame_count_raises():
    model = build_edvr("M", **TINY)
    with pytest.raises(EDVRSizeError, match="5 frames"):
        model(torch.rand(1, 3, 3, 8, 8))


def test_hr_in_without_predeblur_works():
    torch.manual_seed(0)
    model = EDVR(hr_in=True, with_predeblur=False, **TINY).eval()
    keys = list(model.state_dict())
    assert keys[:6] == ["conv_first.weight", "conv_first.bias", "stride_conv_hr1.weight", "stride_conv_hr1.bias",
                        "stride_conv_hr2.weight", "stride_conv_hr2.bias"]
    with torch.no_grad():
        out = model(torch.rand(1, 5, 3, 32, 16))
    assert out.shape == (1, 3, 32, 16)


def test_build_edvr_overrides_and_errors():
    assert isinstance(build_edvr(EDVRConfig(num_feat=8, num_frame=3)), EDVR)
    model = build_edvr("L", num_feat=8, num_reconstruct_block=2)
    assert model.num_feat == 8 and len(model.reconstruction) == 2
    with pytest.raises(EDVRError, match="unknown EDVR preset"):
        build_edvr("XL")
    with pytest.raises(EDVRError, match="unknown EDVR option"):
        build_edvr("M", num_feats=8)
    with pytest.raises(EDVRError, match="center_frame_idx"):
        EDVR(num_frame=5, center_frame_idx=5)


def test_dcn_with_zero_offsets_is_half_a_plain_conv():
    torch.manual_seed(0)
    dcn = DCNv2Pack(8, 4, 3, padding=1, deformable_groups=2)  # conv_offset zero-initialised -> mask 0.5
    x, feat = torch.rand(2, 8, 7, 9), torch.rand(2, 8, 7, 9)
    ref = F.conv2d(x, dcn.weight * 0.5, dcn.bias, padding=1)
    assert torch.allclose(dcn(x, feat), ref, atol=1e-5)


def test_dcn_offset_layout_integer_shift():
    # Offset channel g*18 + 2k is dy, +1 is dx: a constant (dy, dx) = (0, 1) shift samples x one pixel right.
    torch.manual_seed(0)
    dcn = DCNv2Pack(2, 2, 3, padding=1, deformable_groups=1)
    with torch.no_grad():
        dcn.conv_offset.bias.zero_()
        dcn.conv_offset.bias[1:18:2] = 1.0  # dx of every tap
        dcn.conv_offset.bias[18:27] = 20.0  # mask ~ 1
    x = torch.rand(1, 2, 6, 8)
    shifted = torch.zeros_like(x)
    shifted[..., :-1] = x[..., 1:]
    ref = F.conv2d(shifted, dcn.weight, dcn.bias, padding=1)
    out = dcn(x, torch.zeros(1, 2, 6, 8))
    assert torch.allclose(out[..., 1:-2], ref[..., 1:-2], atol=1e-5)  # borders differ (padding)


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    for preset in ("M", "M-woTSA", "L-SRblur", "L-deblur"):
        model = build_edvr(preset, **TINY)
        # conv_offset starts at zero; give it small weights so gradients also flow through it to earlier layers.
        for m in model.modules():
            if isinstance(m, DCNv2Pack):
                torch.nn.init.normal_(m.conv_offset.weight, std=0.01)
        h = 16 if model.hr_in else 8
        model(torch.rand(1, 5, 3, h, h)).abs().mean().backward()
        missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert missing == [], f"{preset}: no gradient for {missing}"


def test_submodules_standalone_shapes():
    torch.manual_seed(0)
    pcd = PCDAlignment(num_feat=8, deformable_groups=2)
    feats = [torch.rand(3, 8, 8, 8), torch.rand(3, 8, 4, 4), torch.rand(3, 8, 2, 2)]
    assert pcd(feats, feats).shape == (3, 8, 8, 8)
    tsa = TSAFusion(num_feat=8, num_frame=3)
    assert tsa(torch.rand(2, 3, 8, 8, 12)).shape == (2, 8, 8, 12)
    assert PredeblurModule(num_feat=8, hr_in=True)(torch.rand(1, 3, 16, 16)).shape == (1, 8, 4, 4)


@pytest.mark.parametrize("preset", ["M", "L-deblur"])
def test_edvr_follows_the_model_protocol_and_scale_is_its_output_ratio(preset):
    from edvr_lib.ablations import CentreFrameOnly
    from edvr_lib.models import SRModel, bicubic_model

    model = build_edvr(preset, num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    assert isinstance(model, SRModel) and isinstance(bicubic_model(), SRModel)
    assert model.scale == (1 if preset == "L-deblur" else 4) == CentreFrameOnly(model).scale
    m = model.size_multiple
    with torch.no_grad():
        out = model(torch.rand(1, model.num_frame, 3, 2 * m, 3 * m))
    assert out.shape[-2:] == (2 * m * model.scale, 3 * m * model.scale)
    assert not isinstance(torch.nn.Identity(), SRModel)  # the protocol can tell a model without it
