"""bfloat16 on CPU: detection of native support, the precision policy, and bf16 inference against float32."""
import numpy as np
import pytest
import torch

from edvr_lib.inference import autocast, super_resolve_stream
from edvr_lib.ops import policy
from edvr_lib.utils import EDVRError

pytestmark = pytest.mark.usefixtures("one_thread")

X86_BF16 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
X86_AMX = "flags\t\t: fpu avx2 amx_tile amx_bf16\n"
X86_AVX2 = "flags\t\t: fpu sse avx avx2 fma\n"
ARM_BF16 = "Features\t: fp asimd bf16 i8mm\n"


@pytest.mark.parametrize("text, native", [(X86_BF16, True), (X86_AMX, True), (X86_AVX2, False), (ARM_BF16, True)])
def test_cpu_bf16_support_reads_the_cpu_flags(tmp_path, text, native):
    info = tmp_path / "cpuinfo"
    info.write_text(text)
    got, detail = policy.cpu_bf16_support(info)
    assert got is native and isinstance(detail, str)
    assert detail.startswith("native bf16" if native else "no native bf16 (flags avx512_bf16 / amx_bf16 absent")


def test_cpu_bf16_support_unreadable_and_this_machine(tmp_path):
    native, detail = policy.cpu_bf16_support(tmp_path / "missing")
    assert native is False and "unknown" in detail
    native, detail = policy.cpu_bf16_support()  # this machine: whatever it is, a bool and a line
    assert isinstance(native, bool) and isinstance(detail, str) and detail


def test_precision_policy_defaults_to_fp32_unless_measured(monkeypatch):
    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (False, "test CPU"))
    assert policy.device_kind("cpu") == "cpu" and policy.precision_for("cpu") == "fp32"
    assert policy.precision_for("cpu", "bf16") == "bf16"
    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (True, "test CPU"))
    assert policy.device_kind("cpu") == "cpu-bf16" and policy.precision_for("cpu") == "fp32"
    monkeypatch.setitem(policy.AUTO_PRECISION, "cpu-bf16", "bf16")  # once measured to help
    assert policy.precision_for("cpu") == "bf16" and policy.precision_for("cpu", "fp32") == "fp32"
    with pytest.raises(EDVRError, match="unknown precision 'fp8'"):
        policy.precision_for("cpu", "fp8")


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_cpu_runs_and_says_once_when_emulated(monkeypatch, native):
    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (native, "no native bf16 (test)"))
    lines = []
    assert policy.autocast_dtype("cpu", "bf16", lines.append) is torch.bfloat16
    assert policy.autocast_dtype("cpu", "fp32", lines.append) is None
    if native:
        assert lines == []
    else:
        assert len(lines) == 1 and "emulated" in lines[0] and "slower" in lines[0] and "--precision fp32" in lines[0]
    with autocast("cpu", "bf16", log=None):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") is torch.bfloat16
    with pytest.raises(EDVRError, match="fp16 needs a CUDA device .*use fp32 or bf16 on CPU"):
        policy.autocast_dtype("cpu", "fp16")


class _Frames:
    """A 7-frame clip of smooth random 12x16 frames (uint8 RGB)."""

    def __init__(self, n=7, seed=3):
        gen = np.random.default_rng(seed)
        base = gen.random((16, 20, 3))
        self.frames = [np.clip(np.roll(base, i, axis=1)[2:14, 2:18] * 255, 0, 255).astype(np.uint8) for i in range(n)]
        self.names = [f"{i:03d}.png" for i in range(n)]
        self.size = (12, 16)

    def __len__(self):
        return len(self.frames)

    def get(self, i):
        return self.frames[i].astype(np.float32) / 255


def test_bf16_inference_close_to_fp32(monkeypatch):
    """``precision='bf16'`` on CPU: the DCNs in float32, the output within a few uint8 levels of float32's."""
    from edvr_lib.archs.blocks import DCNv2Pack
    from edvr_lib.models import random_weights_model

    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (False, "test CPU"))
    torch.manual_seed(0)
    model = random_weights_model(num_frame=5, seed=1, num_feat=16, deformable_groups=2, num_extract_block=1,
                                 num_reconstruct_block=1).eval()
    dcn = []
    hooks = [m.register_forward_hook(lambda _m, _a, out: dcn.append(out.dtype)) for m in model.modules()
             if isinstance(m, DCNv2Pack)]
    lines = []
    fp32 = dict(super_resolve_stream(model, _Frames(), precision="fp32", log=lines.append))
    bf16 = dict(super_resolve_stream(model, _Frames(), precision="bf16", log=lines.append))
    for h in hooks:
        h.remove()
    assert dcn and set(dcn) == {torch.float32} and len(lines) == 1 and "emulated" in lines[0]
    diff = np.concatenate([np.abs(fp32[k].astype(int) - bf16[k].astype(int)).ravel() for k in fp32])
    assert diff.max() <= 8 and (diff <= 1).mean() >= 0.95, (diff.max(), (diff <= 1).mean())


def test_quality_script_picks_evenly_spaced_frames_per_clip():
    from types import SimpleNamespace

    from benchmarks.bf16_quality import pick_frames, verdict

    a, b = SimpleNamespace(name="a"), SimpleNamespace(name="b")
    dataset = SimpleNamespace(index=[(a, i) for i in range(10)] + [(b, i) for i in range(3)])
    assert pick_frames(dataset, 3) == [0, 4, 9, 10, 11, 12]  # b has only 3 frames: all of them
    assert pick_frames(dataset, 0) == list(range(13))
    assert verdict(0.01, 0.02).startswith("met") and verdict(-0.03, 0.02).startswith("NOT met")
    assert verdict(0.9995, 0.999, at_least=True).startswith("met")
