"""Speed-only paths (channels_last activations, DCN backends) change neither results nor the state dict."""
from __future__ import annotations

import pytest
import torch

from edvr_lib.archs import PRESETS, build_edvr
from edvr_lib.ops import speed_policy
from edvr_lib.ops.fused import frames_to_channels, is_channels_last
from edvr_lib.ops.policy import channels_last_for, configure, current_policy, policy_from_env
from edvr_lib.utils.errors import EDVRError
from tools.reference.seeded_weights import seeded_state_dict

SMALL = dict(num_feat=16, deformable_groups=4, num_extract_block=1, num_reconstruct_block=2)


def _model(preset: str):
    torch.manual_seed(0)
    model = build_edvr(preset, **SMALL)
    # seeded weights with non-zero offset layers, so the DCNs really sample off-grid
    model.load_state_dict(seeded_state_dict([(k, tuple(v.shape)) for k, v in model.state_dict().items()], 3))
    return model


def _run(model, x, gt, **policy):
    with speed_policy(**policy):
        out = model(x)
        loss = (out - gt).abs().mean()
        loss.backward()
    return out.detach(), {k: p.grad.clone() for k, p in model.named_parameters()}


@pytest.mark.parametrize("preset", ["M", "M-woTSA", "L-deblur"])
def test_channels_last_same_outputs_and_gradients(preset):
    cfg = PRESETS[preset]
    h, w = (32, 48) if cfg.hr_in else (12, 16)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(2, cfg.num_frame, 3, h, w, generator=gen)
    gt = torch.rand(2, 3, h * (1 if cfg.hr_in else 4), w * (1 if cfg.hr_in else 4), generator=gen)
    plain, fast = _model(preset), _model(preset)
    out_p, grads_p = _run(plain, x, gt, channels_last=False)
    out_f, grads_f = _run(fast, x, gt, channels_last=True)
    assert out_f.is_contiguous()  # the caller always gets plain NCHW
    assert (out_f - out_p).abs().max() < 1e-5
    for k, g in grads_p.items():
        # fp32 sums in another order (NHWC kernels) move every gradient a little, and a DCN's gradient with respect
        # to its sampling positions jumps where a sample crosses a pixel edge, so the offset path can move more
        # (seen on an AVX2-only CPU: up to 3% of an offset layer's norm); a layout bug moves whole tensors by O(1)
        assert (grads_f[k] - g).norm() <= 5e-2 * g.norm() + 1e-7, k
    # parameters keep their layout and order: checkpoints are unaffected
    sd_p, sd_f = plain.state_dict(), fast.state_dict()
    assert list(sd_p) == list(sd_f)
    assert all(v.is_contiguous() for v in sd_f.values())


def test_channels_last_really_runs_nhwc():
    model = _model("M").eval()
    seen = []
    hook = model.reconstruction[0].conv1.register_forward_hook(lambda _m, args, _o: seen.append(args[0]))
    with torch.no_grad(), speed_policy(channels_last=True):
        model(torch.rand(1, 5, 3, 8, 8))
    hook.remove()
    assert is_channels_last(seen[0])


def test_speed_policy_from_env_configure_and_context(monkeypatch):
    monkeypatch.delenv("EDVR_CHANNELS_LAST", raising=False)
    monkeypatch.delenv("EDVR_DCN_BACKEND", raising=False)
    assert policy_from_env().channels_last is None and policy_from_env().dcn_backend == "auto"
    monkeypatch.setenv("EDVR_CHANNELS_LAST", "0")
    monkeypatch.setenv("EDVR_DCN_BACKEND", "torchvision")
    assert policy_from_env().channels_last is False and policy_from_env().dcn_backend == "torchvision"
    monkeypatch.setenv("EDVR_CHANNELS_LAST", "maybe")
    with pytest.raises(EDVRError, match="EDVR_CHANNELS_LAST"):
        policy_from_env()
    monkeypatch.setenv("EDVR_DCN_BACKEND", "cudnn")
    with pytest.raises(EDVRError, match="EDVR_DCN_BACKEND"):
        policy_from_env()
    before = current_policy()
    with speed_policy(channels_last=None):
        assert channels_last_for("cpu") is True and channels_last_for("cuda") is False  # measured defaults
        with speed_policy(channels_last=False):
            assert channels_last_for("cpu") is False
    assert current_policy() == before  # the context restores
    old = configure(channels_last=True)
    try:
        assert channels_last_for("cuda") is True and old == before
    finally:
        configure(**old.__dict__)
    with pytest.raises(EDVRError, match="dcn_backend"):
        configure(dcn_backnd="fast")
    with pytest.raises(EDVRError, match="unknown DCN backend"):
        configure(dcn_backend="cudnn")


def test_frames_to_channels_is_frame_major_in_both_layouts():
    x = torch.arange(2 * 3 * 4 * 5 * 6, dtype=torch.float32).view(2, 3, 4, 5, 6)
    want = x.reshape(2, 12, 5, 6)  # channel j*c + k is channel k of frame j
    nhwc = x.reshape(6, 4, 5, 6).contiguous(memory_format=torch.channels_last).view(2, 3, 4, 5, 6)
    got = frames_to_channels(nhwc)
    assert torch.equal(got, want) and is_channels_last(got)
    assert torch.equal(frames_to_channels(x), want)


def test_benchmark_writes_results_between_markers(tmp_path):
    """The benchmark replaces only its marked block of docs/performance.md and writes the JSON next to it."""
    import json

    from benchmarks import edvr_speed

    docs = tmp_path / "performance.md"
    docs.write_text(f"# Perf\n\nprose before\n\n{edvr_speed.MARK_BEGIN}\nold table\n{edvr_speed.MARK_END}\n\n"
                    "prose after\n")
    row = {"workload": "fwd64", "label": "forward 1x5x3x64x64", "ours_s": 0.5, "reference_s": 1.0, "ratio": 2.0,
           "target": 1.8, "gflop": 69.2, "ours_gflops": 138.4, "reference_gflops": 69.2, "floor_s": 0.3,
           "ours_mb": 100.0, "reference_mb": 120.0, "max_abs_diff": 2e-6, "times": {"ours": [0.5]}}
    record = {"date": "2026-01-01 00:00", "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch": "2.x", "threads": 2,
                                                      "python": "3.11", "device": "cpu"},
              "load_start": [0.1, 0.2, 0.3], "load_end": [0.1, 0.2, 0.3], "dcn_backend": "fast", "activations": "NHWC",
              "amp": "none", "compile": False, "roofline_gflops": 220.0, "roofline_layout": "channels_last",
              "outputs_match": True, "reference_note": "", "rows": [row]}
    edvr_speed.write_results(record, docs)
    text = docs.read_text()
    assert "old table" not in text and "prose before" in text and "prose after" in text
    assert "| forward 1x5x3x64x64 | 0.500 | 1.000 | 2.00x | 1.8x (met) |" in text
    assert json.loads((tmp_path / "performance.json").read_text())["rows"][0]["ratio"] == 2.0
    # atomic_path's temporaries are hidden ".<name>.<random><suffix>" files: none may be left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["performance.json", "performance.md"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    block = text[text.index(edvr_speed.MARK_BEGIN):text.index(edvr_speed.MARK_END) + len(edvr_speed.MARK_END)]
    # no markers: the block is appended; no file: one is made with just the block
    docs.write_text("# Perf\n\nno markers here\n")
    edvr_speed.write_results(record, docs)
    assert docs.read_text() == f"# Perf\n\nno markers here\n\n{block}\n"
    new_docs = tmp_path / "sub" / "performance.md"
    edvr_speed.write_results(record, new_docs)
    assert new_docs.read_text() == f"# Performance\n\n{block}\n"


def test_benchmark_bf16_column(monkeypatch):
    """The bf16 column: measured where bf16 is native or asked for, one line saying why not elsewhere."""
    import argparse

    from benchmarks import edvr_speed
    from edvr_lib.ops import policy

    cpu = torch.device("cpu")
    args = argparse.Namespace(amp="none", bf16="auto")
    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (False, "no native bf16 (test)"))
    assert edvr_speed.bf16_plan(args, cpu) == (False, False, edvr_speed.NOT_NATIVE)
    measured, emulated, note = edvr_speed.bf16_plan(argparse.Namespace(amp="none", bf16="on"), cpu)
    assert measured and emulated and "EMULATED" in note
    assert not edvr_speed.bf16_plan(argparse.Namespace(amp="bf16", bf16="on"), cpu)[0]
    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (True, "native bf16 (test)"))
    assert edvr_speed.bf16_plan(args, cpu)[:2] == (True, False)

    absent = {"measured": False, "emulated": False, "note": edvr_speed.NOT_NATIVE, "roofline_gflops": None,
              "roofline_layout": None, "rows": []}
    assert edvr_speed.format_bf16_table(absent).startswith("bf16: not measured: this CPU has no native bf16")
    assert edvr_speed.markdown_bf16(absent) == f"bf16: {edvr_speed.NOT_NATIVE}."
    results = {"fwd64": {"times": {"ours": [0.4], "reference": [1.0], "ours_bf16": [0.2]},
                         "cpu": {"ours": [0.8], "reference": [1.0], "ours_bf16": [0.4]}, "bf16_diff": 2e-3}}
    rows = edvr_speed.bf16_rows(results, roof_bf16=500.0)
    assert rows[0]["vs_fp32"] == pytest.approx(2.0) and rows[0]["vs_reference"] == pytest.approx(5.0)
    shown = {**absent, "measured": True, "note": "measured, native", "roofline_gflops": 500.0,
             "roofline_layout": "channels_last", "rows": rows}
    assert "| forward 1x5x3x64x64 | 0.200 | 0.400 | 1.000 | 2.00x | 5.00x |" in edvr_speed.markdown_bf16(shown)
    assert "2.00" in edvr_speed.format_bf16_table(shown)


def test_autocast_bf16_with_channels_last_runs_dcn_in_float32():
    """The GPU recipe (AMP + channels_last), checked on CPU with bfloat16: close to the float32 output."""
    model = _model("M").eval()
    x = torch.rand(1, 5, 3, 12, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), speed_policy(channels_last=True):
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
    assert out.shape == ref.shape and torch.isfinite(out).all()
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()


@pytest.mark.parametrize("channels_last", [False, True])
def test_concat_conv_equals_conv_of_concatenation(channels_last):
    """ConcatConv2d([a, b]) = conv(cat([a, b])) in value and in every gradient, also with a part shared by t=3
    frames."""
    from edvr_lib.ops import ConcatConv2d

    gen = torch.Generator().manual_seed(4)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    conv = ConcatConv2d(12, 5, 3, 1, 1).double()
    a = torch.randn(6, 8, 7, 9, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    shared = torch.randn(2, 4, 7, 9, generator=gen, dtype=torch.float64).contiguous(memory_format=fmt)
    leaves = [a.clone().requires_grad_(), shared.clone().requires_grad_()]
    ref_leaves = [a.clone().requires_grad_(), shared.clone().requires_grad_()]
    out = conv(leaves)
    ref = conv(torch.cat([ref_leaves[0], ref_leaves[1].repeat_interleave(3, dim=0)], dim=1))
    gy = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    grads = torch.autograd.grad(out, leaves + [conv.weight, conv.bias], gy)
    ref_grads = torch.autograd.grad(ref, ref_leaves + [conv.weight, conv.bias], gy)
    assert torch.allclose(out, ref, atol=1e-12)
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape and torch.allclose(g, r, atol=1e-12)


def test_select_frame_gradient_keeps_the_layout():
    from edvr_lib.ops.fused import select_frame

    x = torch.randn(6, 4, 5, 7).contiguous(memory_format=torch.channels_last).view(2, 3, 4, 5, 7).requires_grad_()
    y = select_frame(x, 1)
    assert torch.equal(y, x[:, 1])
    (g,) = torch.autograd.grad(y, x, torch.ones_like(y))
    assert g.stride() == x.stride()
    want = torch.zeros_like(x)
    want[:, 1] = 1
    assert torch.equal(g, want)


def test_benchmark_ratio_text_never_rounds_across_the_target():
    from benchmarks.edvr_speed import ratio_text

    assert ratio_text(3.496, 3.5) == "3.496x"  # "3.50x" would read as met
    assert ratio_text(3.52, 3.5) == "3.52x" and ratio_text(2.114, 2.0) == "2.11x"
    assert ratio_text(None, 2.0) == "-"


def test_inference_model_exports_with_the_torchvision_dcn():
    """Deployment: in inference the speed paths are plain tensor ops, so ``torch.export`` captures the model (with
    the torchvision DCN; the fast CPU DCN is a Python autograd.Function with ``out=`` ops that export refuses)."""
    model = _model("M").eval()
    x = torch.rand(1, 5, 3, 12, 16, generator=torch.Generator().manual_seed(5))
    with speed_policy(dcn_backend="torchvision"):
        with torch.no_grad():
            ref = model(x)
        exported = torch.export.export(model, (x,))
        with torch.no_grad():
            assert torch.allclose(exported.module()(x), ref, atol=1e-6)
