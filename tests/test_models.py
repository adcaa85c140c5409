"""load_pretrained / inspect_checkpoint / `edvr inspect-checkpoint`: every wrapper and naming scheme, bad files."""
from __future__ import annotations

import os
import re

import pytest
import torch

from edvr_lib.archs import EDVR, PRESETS, build_edvr
from edvr_lib.models import (MMAGIC_TO_BASICSR, ORIGINAL_TO_BASICSR, _match_preset, infer_config,
                             inspect_checkpoint, load_pretrained, save_pretrained)
from edvr_lib.cli import main as cli_main
from edvr_lib.utils import EDVRError

TINY = dict(num_feat=8, num_extract_block=2, num_reconstruct_block=2)


def _model(preset="M", **kw):
    torch.manual_seed(0)
    model = build_edvr(preset, **{**TINY, **kw})
    with torch.no_grad():  # distinct values everywhere so a wrong mapping cannot go unnoticed
        for i, p in enumerate(model.parameters()):
            p.add_(torch.randn_like(p) * 0.01 + i * 1e-4)
    return model


def _to_original(sd):
    out = {}
    for k, v in sd.items():
        n = k
        n = re.sub(r"^conv_l([23])_([12])\.", r"fea_L\1_conv\2.", n)
        n = re.sub(r"^pcd_align\.offset_conv([123])\.l([123])\.", r"pcd_align.L\2_offset_conv\1.", n)
        n = re.sub(r"^pcd_align\.dcn_pack\.l([123])\.conv_offset\.", r"pcd_align.L\1_dcnpack.conv_offset_mask.", n)
        n = re.sub(r"^pcd_align\.dcn_pack\.l([123])\.", r"pcd_align.L\1_dcnpack.", n)
        n = re.sub(r"^pcd_align\.feat_conv\.l([123])\.", r"pcd_align.L\1_fea_conv.", n)
        n = re.sub(r"^pcd_align\.cas_dcnpack\.conv_offset\.", r"pcd_align.cas_dcnpack.conv_offset_mask.", n)
        n = re.sub(r"^fusion\.temporal_attn1\.", "tsa_fusion.tAtt_2.", n)
        n = re.sub(r"^fusion\.temporal_attn2\.", "tsa_fusion.tAtt_1.", n)
        n = re.sub(r"^fusion\.feat_fusion\.", "tsa_fusion.fea_fusion.", n)
        n = re.sub(r"^fusion\.spatial_attn([1-5])\.", r"tsa_fusion.sAtt_\1.", n)
        n = re.sub(r"^fusion\.spatial_attn_l([123])\.", r"tsa_fusion.sAtt_L\1.", n)
        n = re.sub(r"^fusion\.spatial_attn_add([12])\.", r"tsa_fusion.sAtt_add_\1.", n)
        n = re.sub(r"^fusion\.(weight|bias)$", r"tsa_fusion.\1", n)
        n = re.sub(r"^reconstruction\.", "recon_trunk.", n)
        n = re.sub(r"^conv_hr\.", "HRconv.", n)
        n = re.sub(r"^predeblur\.stride_conv_hr([12])\.", lambda m: f"pre_deblur.conv_first_{int(m.group(1)) + 1}.", n)
        n = re.sub(r"^predeblur\.stride_conv_l([23])\.", r"pre_deblur.deblur_L\1_conv.", n)
        n = re.sub(r"^predeblur\.resblock_l3\.", "pre_deblur.RB_L3_1.", n)
        n = re.sub(r"^predeblur\.resblock_l2_([12])\.", r"pre_deblur.RB_L2_\1.", n)
        n = re.sub(r"^predeblur\.resblock_l1\.([0-4])\.", lambda m: f"pre_deblur.RB_L1_{int(m.group(1)) + 1}.", n)
        out[n] = v
    return out


def _to_mmagic(sd):
    convmodules = re.compile(r"^(pcd_align\.(offset_conv[123]\.l[123]|feat_conv\.l[12]|cas_offset_conv[12])|"
                             r"fusion\.(feat_fusion|spatial_attn[1-4]|spatial_attn_l[123]|spatial_attn_add1))\.")
    out = {}
    for k, v in sd.items():
        n = k
        if convmodules.match(n):
            n = re.sub(r"\.(weight|bias)$", r".conv.\1", n)
        n = re.sub(r"^conv_l([23])_([12])\.", r"feat_l\1_conv\2.conv.", n)
        n = re.sub(r"^pcd_align\.", "pcd_alignment.", n)
        n = re.sub(r"^upconv([12])\.", r"upsample\1.upsample_conv.", n)
        out["generator." + n] = v
    return out


def _same(a: EDVR, b: EDVR):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("wrap", ["params", "params_ema", "bare", "module", "state_dict", "legacy"])
def test_basicsr_wrappers(tmp_path, wrap):
    model = _model()
    sd = model.state_dict()
    path = tmp_path / "ckpt.pth"
    if wrap in ("params", "params_ema"):
        torch.save({wrap: sd}, path)
    elif wrap == "bare":
        torch.save(sd, path)
    elif wrap == "module":
        torch.save({"params": {f"module.{k}": v for k, v in sd.items()}}, path)
    elif wrap == "state_dict":
        torch.save({"state_dict": sd, "meta": {"epoch": 3}}, path)
    else:  # BasicSR re-saves official files in the legacy (non-zip) format
        torch.save({"params": sd}, path, _use_new_zipfile_serialization=False)
    _same(load_pretrained(path), model)


def test_params_ema_preferred_and_param_key(tmp_path):
    a, b = _model(), _model()
    with torch.no_grad():
        next(b.parameters()).add_(1.0)
    path = tmp_path / "both.pth"
    torch.save({"params": a.state_dict(), "params_ema": b.state_dict()}, path)
    _same(load_pretrained(path), b)
    _same(load_pretrained(path, param_key="params"), a)


@pytest.mark.parametrize("preset,kw", [("M", {}), ("M-woTSA", {}), ("L-SRblur", {}), ("L-deblur", {}),
                                       ("M", {"hr_in": True})])
def test_original_xinntao_names(tmp_path, preset, kw):
    model = _model(preset, **kw)
    orig = _to_original(model.state_dict())
    if preset == "L-SRblur":
        orig = {k.replace("predeblur.conv_first.", "pre_deblur.conv_first."): v for k, v in orig.items()}
    elif preset == "L-deblur":
        orig = {k.replace("predeblur.conv_first.", "pre_deblur.conv_first_1."): v for k, v in orig.items()}
    elif kw.get("hr_in"):
        orig = {re.sub(r"^conv_first\.", "conv_first_1.", k): v for k, v in orig.items()}
        orig = {re.sub(r"^stride_conv_hr([12])\.", lambda m: f"conv_first_{int(m.group(1)) + 1}.", k): v
                for k, v in orig.items()}
    assert not any(k.startswith(("fusion.", "predeblur.", "reconstruction.")) for k in orig)
    path = tmp_path / "orig.pth"
    torch.save(orig, path)
    loaded = load_pretrained(path)
    _same(loaded, model)
    assert inspect_checkpoint(path)["naming"] == "original"


def test_original_tatt_swap_is_applied(tmp_path):
    model = _model()
    orig = _to_original(model.state_dict())
    assert torch.equal(orig["tsa_fusion.tAtt_2.weight"], model.fusion.temporal_attn1.weight)
    torch.save(orig, tmp_path / "o.pth")
    loaded = load_pretrained(tmp_path / "o.pth")
    assert torch.equal(loaded.fusion.temporal_attn1.weight, model.fusion.temporal_attn1.weight)
    assert any(p[0].startswith(r"^tsa_fusion\.tAtt_2") for p in ORIGINAL_TO_BASICSR)


@pytest.mark.parametrize("preset", ["M", "M-woTSA"])
def test_mmagic_names(tmp_path, preset):
    model = _model(preset)
    path = tmp_path / "mm.pth"
    torch.save({"meta": {"mmengine_version": "0.10.0"}, "state_dict": _to_mmagic(model.state_dict())}, path)
    _same(load_pretrained(path), model)
    info = inspect_checkpoint(path)
    assert info["naming"] == "mmagic" and info["loadable"]
    assert MMAGIC_TO_BASICSR


@pytest.mark.parametrize("preset", list(PRESETS))
def test_preset_inferred_from_names_and_shapes(preset):
    with torch.device("meta"):  # shapes only, no memory
        sd = build_edvr(preset).state_dict()
    config = infer_config(sd)
    assert _match_preset(config) == preset
    assert config.replace(center_frame_idx=None) == PRESETS[preset]


def test_inspect_reports_preset(tmp_path):
    torch.save({"params": build_edvr("M").state_dict()}, tmp_path / "m.pth")
    info = inspect_checkpoint(tmp_path / "m.pth")
    assert info["preset"] == "M" and info["loadable"] and info["num_params"] == 3_300_131


def test_saved_config_and_overrides(tmp_path):
    model = _model("M", num_frame=3, center_frame_idx=0)
    path = save_pretrained(model, tmp_path / "ours.pth")
    loaded = load_pretrained(path)
    assert loaded.center_frame_idx == 0 and loaded.num_frame == 3
    _same(loaded, model)
    assert load_pretrained(path, center_frame_idx=2).center_frame_idx == 2


def test_loaded_model_gives_same_output(tmp_path):
    model = _model().eval()
    torch.save({"params": model.state_dict()}, tmp_path / "m.pth")
    x = torch.rand(1, 5, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(load_pretrained(tmp_path / "m.pth")(x), model(x))


def test_bad_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(256))
    with pytest.raises(EDVRError, match="not a readable PyTorch checkpoint"):
        load_pretrained(garbage)
    text = tmp_path / "text.pth"
    text.write_text("hello")
    with pytest.raises(EDVRError, match="not a readable PyTorch checkpoint"):
        load_pretrained(text)
    with pytest.raises(EDVRError, match="does not exist"):
        load_pretrained(tmp_path / "nope.pth")
    notdict = tmp_path / "list.pth"
    torch.save([torch.zeros(1)], notdict)
    with pytest.raises(EDVRError, match="not a state dict"):
        load_pretrained(notdict)
    other = tmp_path / "other.pth"
    torch.save({"params": {"fc.weight": torch.zeros(2, 2)}}, other)
    with pytest.raises(EDVRError, match="not an EDVR state dict.*conv_first.weight"):
        load_pretrained(other)


def test_missing_and_wrong_shapes_are_listed(tmp_path):
    sd = _model().state_dict()
    missing = dict(sd)
    del missing["pcd_align.cas_dcnpack.weight"]
    torch.save({"params": missing}, tmp_path / "missing.pth")
    with pytest.raises(EDVRError, match=r"missing keys 1 \(pcd_align.cas_dcnpack.weight\)"):
        load_pretrained(tmp_path / "missing.pth")
    extra = dict(sd, **{"extra.weight": torch.zeros(1)})
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(EDVRError, match=r"unexpected keys 1 \(extra.weight\)"):
        load_pretrained(tmp_path / "extra.pth")
    wrong = dict(sd)
    wrong["conv_hr.weight"] = torch.zeros(64, 64, 1, 1)
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(EDVRError, match=r"wrong shapes 1 \(conv_hr.weight: file \(64, 64, 1, 1\)"):
        load_pretrained(tmp_path / "wrong.pth")
    with pytest.raises(EDVRError, match="missing keys"):
        load_pretrained(tmp_path / "extra.pth", with_tsa=False)


def test_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"params": _model().state_dict(), "payload": Evil()}, path)
    with pytest.raises(EDVRError, match="refused to load"):
        load_pretrained(path)
    assert not marker.exists()


def test_cli_inspect_checkpoint(tmp_path, capsys):
    model = _model()
    torch.save({"params": model.state_dict()}, tmp_path / "m.pth")
    assert cli_main(["inspect-checkpoint", str(tmp_path / "m.pth")]) == 0
    out = capsys.readouterr().out
    assert "container:   params" in out and "loads strict with edvr_lib.load_pretrained: yes" in out
    (tmp_path / "bad.pth").write_bytes(b"\x00" * 10)
    assert cli_main(["inspect-checkpoint", str(tmp_path / "bad.pth")]) == 2
    assert "not a readable PyTorch checkpoint" in capsys.readouterr().err


def test_top_level_lazy_export(tmp_path):
    import edvr_lib

    torch.save({"params": _model().state_dict()}, tmp_path / "m.pth")
    assert isinstance(edvr_lib.load_pretrained(tmp_path / "m.pth"), EDVR)


def test_save_pretrained_fp16_storage_loads_back_into_float32(tmp_path):
    """fp16 storage halves the file; load_pretrained gives a float32 model within fp16 rounding of the original."""
    torch.manual_seed(0)
    model = build_edvr("M", num_feat=16, deformable_groups=4, num_extract_block=1, num_reconstruct_block=1).eval()
    save_pretrained(model, tmp_path / "fp32.pth", ema=True)
    save_pretrained(model, tmp_path / "fp16.pth", ema=True, dtype=torch.float16, options={"name": "x"})
    assert (tmp_path / "fp16.pth").stat().st_size < 0.6 * (tmp_path / "fp32.pth").stat().st_size
    back = load_pretrained(tmp_path / "fp16.pth")
    assert all(p.dtype == torch.float32 for p in back.parameters())
    for (k, a), b in zip(model.state_dict().items(), back.state_dict().values()):
        assert torch.allclose(a, b, rtol=1e-3, atol=1e-4), k
    assert torch.load(tmp_path / "fp16.pth", weights_only=True)["options"] == {"name": "x"}
