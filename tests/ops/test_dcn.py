"""Parity of the fast DCNv2 backend with ``torchvision.ops.deform_conv2d`` (outputs and all gradients)."""
import pytest
import torch
from torchvision.ops import deform_conv2d

import edvr_lib.ops.dcn_fast as dcn_fast
from edvr_lib.ops import available_backends, modulated_deform_conv2d, resolve_backend
from edvr_lib.ops.dcn_fast import fast_modulated_deform_conv2d
from edvr_lib.utils.errors import EDVRError


def _inputs(b=2, c=16, h=13, w=19, groups=4, c_out=8, k=3, padding=1, stride=1, dilation=1,
            max_offset=10.0, dtype=torch.float32, seed=0):
    """Random DCN inputs; offsets up to ``max_offset`` px, fractional parts kept away from integers."""
    gen = torch.Generator().manual_seed(seed)
    h_out = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    x = torch.randn(b, c, h, w, generator=gen, dtype=dtype)
    whole = torch.randint(-int(max_offset), int(max_offset), (b, 2 * groups * k * k, h_out, w_out), generator=gen)
    frac = 0.1 + 0.8 * torch.rand(whole.shape, generator=gen, dtype=dtype)  # bilinear kink at integers
    offset = whole.to(dtype) + frac
    mask = torch.rand(b, groups * k * k, h_out, w_out, generator=gen, dtype=dtype)
    weight = torch.randn(c_out, c, k, k, generator=gen, dtype=dtype) / (c * k * k) ** 0.5
    bias = torch.randn(c_out, generator=gen, dtype=dtype)
    return [x, offset, mask, weight, bias]


def _outputs_and_grads(fn, tensors, needs=(True,) * 5, seed=1):
    leaves = [t.clone().requires_grad_(n) if t is not None else None for t, n in zip(tensors, needs)]
    y = fn(*leaves)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(seed), dtype=y.dtype)
    wrt = [t for t in leaves if t is not None and t.requires_grad]
    grads = torch.autograd.grad(y, wrt, gy)
    return y, grads


def _tv(padding=1, stride=1, dilation=1):
    return lambda x, o, m, w, b: deform_conv2d(x, o, w, b, stride=stride, padding=padding, dilation=dilation, mask=m)


def _fast(padding=1, stride=1, dilation=1):
    return lambda x, o, m, w, b: fast_modulated_deform_conv2d(x, o, m, w, b, padding, stride, dilation)


def _rel(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def _assert_parity(tensors, conf=None, tol=1e-5, needs=(True,) * 5):
    conf = conf or {}
    y_ref, g_ref = _outputs_and_grads(_tv(**conf), tensors, needs)
    y, g = _outputs_and_grads(_fast(**conf), tensors, needs)
    assert y.shape == y_ref.shape and y.dtype == y_ref.dtype
    assert _rel(y, y_ref) < tol, f"output rel err {_rel(y, y_ref):.2e}"
    names = [n for n, t, need in zip(["x", "offset", "mask", "weight", "bias"], tensors, needs)
             if t is not None and need]
    assert len(g) == len(g_ref) == len(names)
    for name, a, r in zip(names, g, g_ref):
        assert _rel(a, r) < tol, f"grad {name} rel err {_rel(a, r):.2e}"


def test_offsets_reach_outside_the_image():
    """The test inputs really sample outside the image (so zero padding is exercised)."""
    x, offset, *_ = _inputs()
    assert offset.abs().max() > 9.0
    assert (offset.abs() > 13).sum() == 0  # and stay within ~10 px
    assert (offset > 6).any() and (offset < -6).any()


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_parity_outputs_and_all_gradients(dtype, tol):
    _assert_parity(_inputs(dtype=dtype), tol=tol)


@pytest.mark.parametrize("conf", [dict(padding=0), dict(stride=2), dict(dilation=2, padding=2),
                                  dict(stride=2, dilation=2, padding=0)])
def test_parity_padding_stride_dilation(conf):
    _assert_parity(_inputs(dtype=torch.float64, h=15, w=11, **conf), conf=conf, tol=1e-10)


def test_parity_edvr_shape_float32():
    """EDVR's DCNv2Pack: 64 ch, 8 deformable groups, 3x3, at a 20x24 level."""
    _assert_parity(_inputs(b=1, c=64, c_out=64, groups=8, h=20, w=24), tol=1e-5)


def test_parity_no_bias_and_partial_gradients():
    t = _inputs(dtype=torch.float64)
    t[4] = None
    _assert_parity(t, tol=1e-10)
    # frozen features / weights: only offset and mask get gradients
    _assert_parity(_inputs(dtype=torch.float64), tol=1e-10, needs=(False, True, True, False, False))
    _assert_parity(_inputs(dtype=torch.float64), tol=1e-10, needs=(True, False, False, True, True))


@pytest.mark.parametrize("forward_bytes,backward_bytes", [(1, 4000), (60_000, 60_000)])
def test_parity_with_tiles(monkeypatch, forward_bytes, backward_bytes):
    """Row-band tiles (with the backward's input crop) and batch tiles do not change results."""
    monkeypatch.setattr(dcn_fast, "TILE_BYTES_FORWARD", forward_bytes)
    monkeypatch.setattr(dcn_fast, "TILE_BYTES_BACKWARD", backward_bytes)
    tensors = _inputs(b=3, dtype=torch.float64, h=17, w=9)
    per_element = 16 * 9 * 17 * 9 * 4
    tiles = dcn_fast._tiles(3, 16, 9, 17, 9, backward_bytes, torch.device("cpu"))
    assert len(tiles) > 1 and (backward_bytes < per_element) == (tiles[0][3] - tiles[0][2] < 17)
    _assert_parity(tensors, tol=1e-10)


def test_gradcheck_fast_backend():
    x, o, m, w, b = _inputs(b=1, c=2, c_out=2, groups=2, h=4, w=3, max_offset=3, dtype=torch.float64)
    args = [t.requires_grad_() for t in (x, o, m, w, b)]
    assert torch.autograd.gradcheck(lambda *a: fast_modulated_deform_conv2d(*a), args, eps=1e-6, atol=1e-5)


def test_large_offsets_sample_zeros():
    """All samples far outside the image: output is the bias only, input gradient is zero."""
    x, o, m, w, b = _inputs(dtype=torch.float64)
    o = torch.full_like(o, 100.5)
    x.requires_grad_()
    y = fast_modulated_deform_conv2d(x, o, m, w, b)
    assert torch.allclose(y, b.view(1, -1, 1, 1).expand_as(y))
    y.sum().backward()
    assert torch.count_nonzero(x.grad) == 0


def test_dispatcher_backends_and_errors():
    from edvr_lib.ops import speed_policy

    assert {"fast", "torchvision"} <= set(available_backends())
    with speed_policy(dcn_backend="auto"):
        assert resolve_backend(None, torch.device("cpu")) == "fast"
        assert resolve_backend(None, torch.device("cuda")) == "torchvision"
    assert resolve_backend("auto", torch.device("cuda")) == "torchvision"
    assert resolve_backend("torchvision", torch.device("cpu")) == "torchvision"
    with speed_policy(dcn_backend="torchvision"):
        assert resolve_backend(None, torch.device("cpu")) == "torchvision"
        assert resolve_backend("fast", torch.device("cpu")) == "fast"  # the argument wins over the policy
    with pytest.raises(EDVRError, match="cudnn"):
        resolve_backend("cudnn", torch.device("cpu"))


def test_dispatcher_matches_between_backends():
    x, o, m, w, b = _inputs()
    y_fast = modulated_deform_conv2d(x, o, m, w, b, backend="fast")
    y_tv = modulated_deform_conv2d(x, o, m, w, b, backend="torchvision")
    assert _rel(y_fast, y_tv) < 1e-5


def test_dispatcher_autocast_keeps_dcn_in_float32():
    x, o, m, w, b = _inputs()
    ref = modulated_deform_conv2d(x, o, m, w, b, backend="torchvision")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = modulated_deform_conv2d(x.bfloat16(), o, m, w, b, backend="fast")
    assert y.dtype == torch.float32
    assert _rel(y, ref) < 2e-2  # only the bf16 rounding of the input remains


@pytest.mark.parametrize("b", [1, 3])
def test_parity_channels_last_and_strided_offsets(b):
    """channels_last inputs (and offsets/mask that are channel slices of one tensor, as in DCNv2Pack) give the
    same results as contiguous NCHW ones; the output and the input gradient keep the channels_last layout."""
    x, offset, mask, weight, bias = _inputs(b=b, dtype=torch.float64)
    cl = torch.channels_last
    packed = torch.cat([offset, mask], dim=1).contiguous(memory_format=cl)  # (b, 3*g*K, h, w) in NHWC
    n_off = offset.shape[1]
    y_ref, g_ref = _outputs_and_grads(_tv(), [x, offset, mask, weight, bias])

    leaves = [x.contiguous(memory_format=cl).requires_grad_(), packed.clone().requires_grad_(),
              weight.clone().requires_grad_(), bias.clone().requires_grad_()]
    y = fast_modulated_deform_conv2d(leaves[0], leaves[1][:, :n_off], leaves[1][:, n_off:], leaves[2], leaves[3])
    assert y.is_contiguous(memory_format=cl) and not y.is_contiguous()
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    gx, gpacked, gw, gb = torch.autograd.grad(y, leaves, gy.contiguous(memory_format=cl))
    assert gx.is_contiguous(memory_format=cl)
    assert _rel(y, y_ref) < 1e-10
    for a, r in zip([gx, gpacked[:, :n_off], gpacked[:, n_off:], gw, gb], g_ref):
        assert _rel(a, r) < 1e-10


def test_parity_channels_last_with_row_tiles(monkeypatch):
    monkeypatch.setattr(dcn_fast, "TILE_BYTES_FORWARD", 4000)
    monkeypatch.setattr(dcn_fast, "TILE_BYTES_BACKWARD", 4000)
    t = _inputs(b=2, dtype=torch.float64, h=17, w=9)
    t_cl = [v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v for v in t]
    y_ref, g_ref = _outputs_and_grads(_tv(), t)
    y, g = _outputs_and_grads(_fast(), t_cl)
    assert _rel(y, y_ref) < 1e-10
    for a, r in zip(g, g_ref):
        assert _rel(a, r) < 1e-10


@pytest.mark.parametrize("channels_last,tile_bytes", [(False, None), (True, None), (True, 4000)])
def test_fast_dcn_pack_equals_sigmoid_mask_path(monkeypatch, channels_last, tile_bytes):
    """``fast_dcn_pack`` on a raw conv_offset output (offsets, then mask logits) equals torchvision with
    ``mask = sigmoid(logits)``; the single gradient w.r.t. the raw output has its layout and both parts' values."""
    if tile_bytes:
        monkeypatch.setattr(dcn_fast, "TILE_BYTES_FORWARD", tile_bytes)
        monkeypatch.setattr(dcn_fast, "TILE_BYTES_BACKWARD", tile_bytes)
    x, offset, _, weight, bias = _inputs(b=2, dtype=torch.float64, h=17, w=9)
    logits = torch.randn(2, offset.shape[1] // 2, 17, 9, generator=torch.Generator().manual_seed(5),
                         dtype=torch.float64) * 3
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    raw = torch.cat([offset, logits], dim=1).contiguous(memory_format=fmt).requires_grad_()
    x_in = x.contiguous(memory_format=fmt).requires_grad_()
    y = dcn_fast.fast_dcn_pack(x_in, raw, weight, bias)
    gy = torch.randn(y.shape, generator=torch.Generator().manual_seed(1), dtype=y.dtype)
    gx, graw = torch.autograd.grad(y, [x_in, raw], gy)

    n_off = offset.shape[1]
    ref_raw = raw.detach().clone().requires_grad_()
    ref_x = x.clone().requires_grad_()
    y_ref = deform_conv2d(ref_x, ref_raw[:, :n_off], weight, bias, padding=1, mask=torch.sigmoid(ref_raw[:, n_off:]))
    gx_ref, graw_ref = torch.autograd.grad(y_ref, [ref_x, ref_raw], gy)
    assert graw.is_contiguous(memory_format=fmt) and gx.is_contiguous(memory_format=fmt)
    assert _rel(y, y_ref) < 1e-10 and _rel(gx, gx_ref) < 1e-10
    assert _rel(graw[:, :n_off], graw_ref[:, :n_off]) < 1e-10  # offsets
    assert _rel(graw[:, n_off:], graw_ref[:, n_off:]) < 1e-10  # mask logits, through the sigmoid
