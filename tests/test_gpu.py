"""CUDA checks of the model's speed paths: same function on the GPU as on the CPU, whatever the DCN backend and the
activation layout, and bf16 autocast close to float32 with the DCNs kept in float32.

Skipped without CUDA (run them with ``pytest -m gpu``; ``benchmarks/gpu_check.sh`` does, with everything else
a GPU machine should check). TF32 is switched off inside these tests: with it cuDNN's float32 convolutions
round their inputs to 10 mantissa bits and no 1e-4 comparison would hold.
"""
from __future__ import annotations

import pytest
import torch

from edvr_lib.archs import build_edvr
from edvr_lib.archs.blocks import DCNv2Pack
from edvr_lib.ops import speed_policy
from tools.reference.seeded_weights import seeded_state_dict

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

TOL = 1e-4  # max abs difference allowed between float32 paths (outputs are O(1))


@pytest.fixture(autouse=True)
def no_tf32():
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


def _model(preset: str = "M"):
    """EDVR with seeded weights whose offset layers are non-zero, so every DCN samples off-grid."""
    model = build_edvr(preset)
    model.load_state_dict(seeded_state_dict([(k, tuple(v.shape)) for k, v in model.state_dict().items()], 5))
    return model


def _inputs(b=1, h=24, w=32, seed=2):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(b, 5, 3, h, w, generator=gen), torch.rand(b, 3, 4 * h, 4 * w, generator=gen)


def _forward_backward(model, x, gt, **policy):
    """Output and parameter gradients of an L1 loss, under the given speed policy."""
    model.zero_grad(set_to_none=True)
    with speed_policy(**policy):
        out = model(x)
        (out - gt).abs().mean().backward()
    return out.detach().float().cpu(), {k: p.grad.detach().float().cpu() for k, p in model.named_parameters()}


def _assert_grads_close(got: dict, want: dict, rel: float = 5e-3):
    """Per parameter, ``|got - want| <= rel |want|`` (L2 norms). Not element-wise: the gradient of a bilinear sample
    jumps where its position crosses a pixel, so float32 rounding of an offset (different on each device) can move a
    few sampling positions to the other side; on the CPU, ``fast`` against ``torchvision`` gave 4e-4 this way
    (element-wise: 1e-3 of the largest entry)."""
    for k, g in want.items():
        assert (got[k] - g).norm() <= rel * g.norm() + 1e-7, k


@pytest.fixture(scope="module")
def cpu_reference():
    """The CPU result with the reference DCN kernel (torchvision) and NCHW activations."""
    x, gt = _inputs()
    model = _model().train()
    return (x, gt, *_forward_backward(model, x, gt, dcn_backend="torchvision", channels_last=False))


@pytest.mark.parametrize("backend", ["torchvision", "fast"])
def test_cuda_equals_cpu_with_each_dcn_backend(cpu_reference, backend):
    x, gt, out_cpu, grads_cpu = cpu_reference
    model = _model().train().cuda()
    out, grads = _forward_backward(model, x.cuda(), gt.cuda(), dcn_backend=backend, channels_last=False)
    assert out.shape == out_cpu.shape
    assert (out - out_cpu).abs().max() < TOL
    _assert_grads_close(grads, grads_cpu)


@pytest.mark.parametrize("backend", ["torchvision", "fast"])
def test_channels_last_on_cuda_equals_nchw(backend):
    x, gt = _inputs(b=2, seed=3)
    x, gt = x.cuda(), gt.cuda()
    model = _model().train().cuda()
    out_nchw, grads_nchw = _forward_backward(model, x, gt, dcn_backend=backend, channels_last=False)
    out_nhwc, grads_nhwc = _forward_backward(model, x, gt, dcn_backend=backend, channels_last=True)
    assert (out_nhwc - out_nchw).abs().max() < TOL
    _assert_grads_close(grads_nhwc, grads_nchw)
    assert all(v.is_contiguous() for v in model.state_dict().values())  # checkpoints keep their layout


@pytest.mark.parametrize("backend", ["torchvision", "fast"])
def test_bf16_autocast_close_to_float32_and_dcn_in_float32(backend):
    x, _ = _inputs(h=32, w=48, seed=4)
    x = x.cuda()
    model = _model().eval().cuda()
    dcn_dtypes = []
    hooks = [m.register_forward_hook(lambda _m, _a, out: dcn_dtypes.append(out.dtype))
             for m in model.modules() if isinstance(m, DCNv2Pack)]
    with torch.no_grad(), speed_policy(dcn_backend=backend):
        ref = model(x).float()
        assert set(dcn_dtypes) == {torch.float32}
        dcn_dtypes.clear()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = model(x).float()
    for h in hooks:
        h.remove()
    assert dcn_dtypes and set(dcn_dtypes) == {torch.float32}  # the DCNs ran on float32 copies under autocast
    assert torch.isfinite(out).all()
    err = (out - ref).abs()
    # bf16 keeps ~3 significant digits. The same check with CPU autocast gave a mean error of 0.6% and a largest
    # error of 1.3% of the output's mean / largest magnitude (2026-11-28); a wrong path is far off (or not finite)
    assert err.mean() <= 2e-2 * ref.abs().mean(), (err.mean().item(), ref.abs().mean().item())
    assert err.max() <= 0.1 * ref.abs().max(), (err.max().item(), ref.abs().max().item())
