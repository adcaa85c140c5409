"""A fast, multi-threaded DCNv2 built from dense PyTorch kernels (the ``"fast"`` backend).

Why: ``torchvision.ops.deform_conv2d`` runs its CPU kernels on one thread and its backward costs
about 6x its forward. Here the same operation is split into three kernels that PyTorch already
parallelises and vectorises:

1. **one sampling grid** for every kernel tap ``k`` and deformable group ``g``: the sample position
   ``p = p_0 + p_k + dp_k`` in pixels, normalised for ``grid_sample`` as ``(2p + 1) / S - 1``
   (``align_corners=False``), which reproduces torchvision's bilinear interpolation with zeros
   outside the image;
2. **one** ``grid_sample`` call on the input viewed as ``(b*g, c/g, h, w)``; its output
   ``(b*g, c/g, K*h_out, w_out)`` is, in memory, already the im2col matrix ``(b, c*K, L)`` in the
   order of ``weight.view(c_out, c*K)``, so no copy is needed;
3. the mask multiply (in place) and **one GEMM** per batch element with the weight.

The backward is hand-written (``torch.autograd.Function``): it re-samples the columns per tile (keeping them
from the forward measured no faster and costs memory), gets their gradient with one GEMM, the mask gradient
with a channel reduction, and the input and offset gradients from one ``grid_sampler_2d_backward`` call that
reuses the same grid.

:func:`fast_dcn_pack` takes a DCN pack's raw ``conv_offset`` output (offsets, then mask logits): the sigmoid
runs on the per-tile mask copy, and the backward returns one gradient for that output in its own layout.

Layouts: ``x`` may be NCHW or channels_last (NHWC); the output (and ``x``'s gradient) then has the same
layout, the forward GEMM computing ``cols^T @ W^T`` straight into the output's contiguous ``(L, c_out)`` rows.
Inside, ``x`` is read as NCHW (one copy when given NHWC, kept for the backward): an NHWC gather was measured
slower in training. Offsets and mask are copied to contiguous NCHW per tile, so that the per-tap planes are
contiguous (measured; see ``docs/performance.md``).

Matches torchvision to float32 rounding (~1e-6 relative) in outputs and gradients, except exactly at
integer sample positions, where bilinear interpolation has a kink and the offset gradient may take the
other one-sided derivative.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from edvr_lib.ops.fused import is_channels_last, memory_format


# Bytes of sampled columns per tile (a tile is a few batch elements, or a band of output rows of one).
# Tiles keep the im2col buffer below the allocator's mmap threshold (a fresh 30+ MB buffer per call
# costs more in page faults than the sampling) and bound the memory of the op; large tiles keep the
# number of kernel launches (and thread synchronisations, costly on a busy CPU) small.
TILE_BYTES_FORWARD = 16 << 20
TILE_BYTES_BACKWARD = 16 << 20


def _tiles(b: int, c: int, k: int, h_out: int, w_out: int, budget: int, device: torch.device):
    """``(n0, n1, r0, r1)`` tiles: several whole batch elements, or row bands of a single one."""
    per_row = c * k * w_out * 4
    if device.type != "cpu" or per_row * h_out * b <= budget:
        return [(0, b, 0, h_out)]  # on accelerators one large launch beats many small ones
    if per_row * h_out <= budget:
        nb = budget // (per_row * h_out)
        return [(n, min(b, n + nb), 0, h_out) for n in range(0, b, nb)]
    rows = max(1, budget // per_row)
    return [(n, n + 1, r, min(h_out, r + rows)) for n in range(b) for r in range(0, h_out, rows)]


def _base_positions(h_out: int, w_out: int, kh: int, kw: int, padding: int, stride: int, dilation: int,
                    dtype: torch.dtype, device: torch.device):
    """Sample positions without offsets, in pixels: ``(K, h_out, 1)`` rows and ``(K, 1, w_out)`` columns."""
    ys = torch.arange(h_out, device=device, dtype=dtype) * stride - padding
    xs = torch.arange(w_out, device=device, dtype=dtype) * stride - padding
    ky = torch.arange(kh, device=device, dtype=dtype).repeat_interleave(kw) * dilation  # row-major taps
    kx = torch.arange(kw, device=device, dtype=dtype).repeat(kh) * dilation
    return ky.view(-1, 1, 1) + ys.view(1, -1, 1), kx.view(-1, 1, 1) + xs.view(1, 1, -1)


def _grid(off: torch.Tensor, base_y: torch.Tensor, base_x: torch.Tensor, h: int, w: int, y0: int = 0):
    """Normalised ``grid_sample`` grid ``(n, g, K, rows, w_out, 2)`` (x first).

    Args:
        off: offsets viewed ``(n, g, K, 2, rows, w_out)`` (dy, dx).
        base_y, base_x: positions without offsets from :func:`_base_positions`, rows already sliced.
        h, w: size of the sampled image, whose first row is row ``y0`` of the full image.
    """
    n, g, k, _, rows, w_out = off.shape
    grid = off.new_empty(n, g, k, rows, w_out, 2)
    # normalised coordinate (2p + 1) / S - 1 with p = base + delta (align_corners=False)
    torch.add(base_x * (2.0 / w) + (1.0 / w - 1.0), off[:, :, :, 1], alpha=2.0 / w, out=grid[..., 0])
    torch.add((base_y - y0) * (2.0 / h) + (1.0 / h - 1.0), off[:, :, :, 0], alpha=2.0 / h, out=grid[..., 1])
    return grid


def _gemm(w2d, cols, bias, dst):
    """``dst (n, c_out, L) = w2d @ cols (n, c*K, L) (+ bias)`` without temporaries.

    ``dst`` may be a transposed view (channels_last output): then ``dst^T = cols^T @ w2d^T`` is computed into its
    contiguous ``(L, c_out)`` rows (an ``out=`` that is not contiguous would make a temporary and a copy).
    """
    if dst.stride(-1) != 1:
        for i in range(dst.shape[0]):
            if bias is not None:
                torch.addmm(bias, cols[i].t(), w2d.t(), out=dst[i].t())
            else:
                torch.mm(cols[i].t(), w2d.t(), out=dst[i].t())
    elif dst.shape[0] == 1:
        if bias is not None:
            torch.addmm(bias.view(-1, 1), w2d, cols[0], out=dst[0])
        else:
            torch.mm(w2d, cols[0], out=dst[0])
    elif bias is not None:
        torch.baddbmm(bias.view(1, -1, 1), w2d.expand(dst.shape[0], -1, -1), cols, out=dst)
    else:
        torch.matmul(w2d, cols, out=dst)


class _FastModulatedDeformConv(torch.autograd.Function):
    """``offset`` holds the offsets; ``mask`` the mask after sigmoid, or None when ``offset`` is a DCN pack's whole
    ``conv_offset`` output ``(b, 3*g*K, h, w)`` whose last third are the mask logits (the sigmoid, and its
    gradient, then happen per tile here: no full-size mask, and one gradient buffer in ``offset``'s layout)."""

    @staticmethod
    def forward(ctx, x, offset, mask, weight, bias, padding, stride, dilation):
        b, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        k = kh * kw
        h_out, w_out = offset.shape[-2:]
        logits = mask is None
        g = offset.shape[1] // ((3 if logits else 2) * k)
        cl = is_channels_last(x)
        # NCHW inside: grid_sample gathers faster from it (one copy of x when given NHWC, kept for the backward),
        # and the per-tap offset and mask planes are copied to contiguous NCHW one tile at a time (no full-size
        # copy: less peak memory)
        x_nchw = x.contiguous()
        x_g = x_nchw.view(b * g, c // g, h, w)
        off, msk = _offset_mask_views(offset, mask, g, k)
        w2d = weight.reshape(c_out, c * k)
        base_y, base_x = _base_positions(h_out, w_out, kh, kw, padding, stride, dilation, x.dtype, x.device)
        # The output follows the input's layout; in channels_last the GEMM writes (L, c_out) rows directly.
        out = torch.empty(b, c_out, h_out, w_out, dtype=x.dtype, device=x.device, memory_format=memory_format(cl))
        out3 = out.flatten(2)  # (b, c_out, L) view in both layouts
        for n0, n1, r0, r1 in _tiles(b, c, k, h_out, w_out, TILE_BYTES_FORWARD, x.device):
            nb, nr = n1 - n0, r1 - r0
            grid = _grid(off[n0:n1, :, :, :, r0:r1].contiguous(), base_y[:, r0:r1], base_x, h, w)
            # (nb*g, c/g, K*rows, w_out) is, in memory, the im2col matrix (nb, c*K, rows*w_out) in weight order
            cols = F.grid_sample(x_g[n0 * g:n1 * g], grid.view(nb * g, k * nr, w_out, 2), mode="bilinear",
                                 padding_mode="zeros", align_corners=False)
            cols.view(nb, g, c // g, k, nr, w_out).mul_(_mask_tile(msk, logits, n0, n1, r0, r1))
            _gemm(w2d, cols.view(nb, c * k, nr * w_out), bias, out3[n0:n1, :, r0 * w_out:r1 * w_out])
        if any(ctx.needs_input_grad[:5]):
            ctx.save_for_backward(x_nchw, offset, mask, weight)
            ctx.conf = (padding, stride, dilation, g, bias is not None, cl)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, offset, mask, weight = ctx.saved_tensors
        padding, stride, dilation, g, has_bias, cl = ctx.conf
        b, c, h, w = x.shape
        c_out, _, kh, kw = weight.shape
        k = kh * kw
        h_out, w_out = offset.shape[-2:]
        logits = mask is None
        need_x, need_off, need_mask, need_w, need_b = ctx.needs_input_grad[:5]
        need_mask = need_mask or (logits and need_off)
        if not (grad_out.is_contiguous() or is_channels_last(grad_out)):
            grad_out = grad_out.contiguous(memory_format=memory_format(cl))
        go = grad_out.flatten(2)  # (b, c_out, L), a transposed view in channels_last
        x_g = x.view(b, g, c // g, h, w)
        off, msk = _offset_mask_views(offset, mask, g, k)
        w2d = weight.reshape(c_out, c * k)
        base_y, base_x = _base_positions(h_out, w_out, kh, kw, padding, stride, dilation, x.dtype, x.device)
        tiles = _tiles(b, c, k, h_out, w_out, TILE_BYTES_BACKWARD, x.device)
        row_tiles = tiles[0][3] - tiles[0][2] < h_out
        grad_x = None
        if need_x:  # in the input's layout
            grad_x = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=memory_format(cl))
            if row_tiles:  # bands add into overlapping input rows
                grad_x.zero_()
        if logits:  # one buffer in the offset conv output's layout (its backward reads it without a copy)
            grad_off = torch.empty_like(offset) if need_off else None
            grad_mask = None
            goff, gmsk = _offset_mask_views(grad_off, None, g, k) if need_off else (None, None)
        else:  # NCHW, whatever the layout of offset and mask
            grad_off = offset.new_empty(offset.shape) if need_off else None
            grad_mask = mask.new_empty(mask.shape) if need_mask else None
            goff = grad_off.unflatten(1, (g, k, 2)) if need_off else None
            gmsk = grad_mask.unflatten(1, (g, 1, k)) if need_mask else None
        grad_wt = w2d.new_zeros(w2d.shape[::-1]) if need_w else None  # (c*K, c_out): the faster GEMM here
        gx_g = grad_x.unflatten(1, (g, c // g)) if need_x else None
        need_sampling_grad = need_x or need_off
        for n0, n1, r0, r1 in tiles:
            nb, nr = n1 - n0, r1 - r0
            off_t = off[n0:n1, :, :, :, r0:r1].contiguous()
            y0, y1 = 0, h
            if row_tiles and need_x:
                # a band of output rows only reaches some input rows: sample (and get gradients for) a crop
                lo, hi = torch.aminmax(off_t[:, :, :, 0])
                y0 = min(max(0, int(torch.floor(lo + base_y[:, r0:r1].min()))), h - 1)
                y1 = max(min(h, int(torch.floor(hi + base_y[:, r0:r1].max())) + 2), y0 + 1)
            x_t = x_g[n0:n1, :, :, y0:y1].reshape(nb * g, c // g, y1 - y0, w) if y1 - y0 < h else \
                x_g[n0:n1].view(nb * g, c // g, h, w)
            grid = _grid(off_t, base_y[:, r0:r1], base_x, y1 - y0, w, y0).view(nb * g, k * nr, w_out, 2)
            sampled = F.grid_sample(x_t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
            s6 = sampled.view(nb, g, c // g, k, nr, w_out)
            m = _mask_tile(msk, logits, n0, n1, r0, r1)  # (nb, g, 1, K, rows, w_out), after sigmoid
            go_t = go[n0:n1, :, r0 * w_out:r1 * w_out]  # (nb, c_out, rows*w_out)
            grad_cols = None
            if need_mask or need_sampling_grad:
                grad_cols = sampled.new_empty(nb, c * k, nr * w_out)
                for i in range(nb):  # (c*K, rows*w_out) = w2d^T @ go
                    torch.mm(w2d.t(), go_t[i], out=grad_cols[i])
            gc6 = grad_cols.view(nb, g, c // g, k, nr, w_out) if grad_cols is not None else None
            if need_mask and not logits:  # d/dmask = sum_c gc * s, from the unmasked samples
                torch.sum(gc6 * s6, dim=2, out=gmsk[n0:n1, :, 0, :, r0:r1])
            if need_w or (need_mask and logits):
                s6.mul_(m)  # the masked columns s * m
            if need_w:
                cols = sampled.view(nb, c * k, nr * w_out)
                for i in range(nb):
                    grad_wt.addmm_(cols[i], go_t[i].t())
            if need_mask and logits:
                # d/dlogit = sum_c gc * s * m * (1 - m): the product in place of the columns (no temporary)
                gm = torch.sum(s6.mul_(gc6), dim=2)
                gmsk[n0:n1, :, 0, :, r0:r1] = gm.mul_(1 - m.squeeze(2))
            del sampled, s6
            if need_sampling_grad:
                grad_cols.view(nb, g, c // g, k, nr, w_out).mul_(m)
                gxs, gg = torch.ops.aten.grid_sampler_2d_backward(
                    grad_cols.view(nb * g, c // g, k * nr, w_out), x_t, grid, 0, 0, False, [need_x, need_off])
                if need_x:
                    if row_tiles:
                        gx_g[n0:n1, :, :, y0:y1].add_(gxs.view(nb, g, c // g, y1 - y0, w))
                    else:
                        gx_g[n0:n1] = gxs.view(nb, g, c // g, h, w)
                if need_off:
                    gg = gg.view(nb, g, k, nr, w_out, 2)
                    torch.mul(gg[..., 1], 2.0 / (y1 - y0), out=goff[n0:n1, :, :, 0, r0:r1])
                    torch.mul(gg[..., 0], 2.0 / w, out=goff[n0:n1, :, :, 1, r0:r1])
        grad_b = go.sum((0, 2)) if (need_b and has_bias) else None
        grad_w = grad_wt.t().reshape(weight.shape) if need_w else None
        return grad_x, grad_off, grad_mask, grad_w, grad_b, None, None, None


def split_offset_mask(offset_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Offsets (first two thirds) and mask logits (last third) of a DCN pack's ``conv_offset`` output, as views.

    BasicSR chunks the output in three and concatenates the first two: that is just its first two thirds.
    """
    n = offset_mask.shape[1] // 3
    return torch.split(offset_mask, [2 * n, n], dim=1)


def _offset_mask_views(offset, mask, g, k):
    """``(b, g, K, 2, h, w)`` offsets (dy, dx) and ``(b, g, 1, K, h, w)`` mask (or logits) views, any layout.

    With ``mask`` None, ``offset`` is a whole ``conv_offset`` output: offsets, then mask logits.
    """
    if mask is None:
        offset, mask = split_offset_mask(offset)
    return offset.unflatten(1, (g, k, 2)), mask.unflatten(1, (g, 1, k))


def _mask_tile(msk, logits, n0, n1, r0, r1):
    """One tile of the mask as contiguous NCHW, the sigmoid applied on the way for logits."""
    src = msk[n0:n1, :, :, :, r0:r1]
    if not logits:
        return src.contiguous()
    return torch.sigmoid(src, out=torch.empty(src.shape, dtype=src.dtype, device=src.device))


def fast_modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                                 bias: torch.Tensor | None, padding: int = 1, stride: int = 1,
                                 dilation: int = 1) -> torch.Tensor:
    """DCNv2 with torchvision semantics via one ``grid_sample`` and one GEMM (see module docstring).

    Args:
        x: ``(b, c_in, h, w)``.
        offset: ``(b, 2*g*kh*kw, h_out, w_out)``, torchvision layout (dy, dx interleaved per tap).
        mask: ``(b, g*kh*kw, h_out, w_out)``, after sigmoid.
        weight: ``(c_out, c_in, kh, kw)``.
        bias: ``(c_out,)`` or None.
        padding, stride, dilation: ints as in ``nn.Conv2d``.

    Returns:
        ``(b, c_out, h_out, w_out)``.
    """
    return _FastModulatedDeformConv.apply(x, offset, mask, weight, bias, padding, stride, dilation)


def fast_dcn_pack(x: torch.Tensor, offset_mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  padding: int = 1, stride: int = 1, dilation: int = 1) -> torch.Tensor:
    """DCNv2 from a DCN pack's raw ``conv_offset`` output: equals :func:`fast_modulated_deform_conv2d` with
    ``offset = offset_mask[:, :2*g*K]`` and ``mask = sigmoid(offset_mask[:, 2*g*K:])``.

    The sigmoid runs per tile on the copy the op makes anyway, and the backward returns one gradient for
    ``offset_mask`` in its own layout (no concatenation, sigmoid pass or layout copy before the offset conv's
    backward).

    Args:
        offset_mask: ``(b, 3*g*kh*kw, h_out, w_out)``: offsets (torchvision layout), then mask logits.
        x, weight, bias, padding, stride, dilation: as in :func:`fast_modulated_deform_conv2d`.
    """
    return _FastModulatedDeformConv.apply(x, offset_mask, None, weight, bias, padding, stride, dilation)
