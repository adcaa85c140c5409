"""The fused helpers the network uses: layouts, frame selection, a convolution over a concatenation.

Each computes exactly what its plain PyTorch spelling computes (to float32 rounding) with less memory traffic:

* NHWC (``channels_last``) activations: oneDNN's CPU convolutions run on NHWC natively; given NCHW they reorder
  input and output on every call. Measured on 2 CPU cores (``docs/performance.md``): 5-25% less CPU time per 3x3
  convolution, most in the backward. Whether the model uses them is the speed policy's call
  (:mod:`edvr_lib.ops.policy`); these helpers keep whatever layout they are given.
* :func:`select_frame`: ``x[:, idx]`` whose gradient keeps the frames' layout.
* :class:`ConcatConv2d`: ``conv(cat(parts))`` without building the concatenation, and with a part shared by
  groups of samples (PCD's reference frame) convolved once per group.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["ConcatConv2d", "frames_to_channels", "is_channels_last", "memory_format", "select_frame", "tracks_grad"]


def memory_format(channels_last: bool) -> torch.memory_format:
    """``torch.channels_last`` or ``torch.contiguous_format``."""
    return torch.channels_last if channels_last else torch.contiguous_format


def is_channels_last(t: torch.Tensor) -> bool:
    """True for a 4-D tensor stored NHWC (and not also plain contiguous, as 1x1 images are)."""
    return t.dim() == 4 and not t.is_contiguous() and t.is_contiguous(memory_format=torch.channels_last)


def frames_to_channels(x: torch.Tensor) -> torch.Tensor:
    """``(b, t, c, h, w)`` -> ``(b, t*c, h, w)`` (frame-major channels), in the frames' layout.

    NCHW frames give a view; NHWC frames (channel stride 1) need one copy into ``(b, h, w, t, c)`` order.
    """
    b, t, c, h, w = x.shape
    if x.stride(2) == 1 and c > 1:
        return x.permute(0, 3, 4, 1, 2).reshape(b, h, w, t * c).permute(0, 3, 1, 2)
    return x.reshape(b, t * c, h, w)


class _SelectFrame(torch.autograd.Function):
    """``x[:, idx]``; see :func:`select_frame`."""

    @staticmethod
    def forward(ctx, x, idx):
        ctx.idx, ctx.shape, ctx.strides = idx, x.shape, x.stride()
        return x[:, idx]

    @staticmethod
    def backward(ctx, grad):
        # zeros with the input's strides: autograd's own select_backward makes a plain contiguous tensor, which
        # for NHWC frames costs a transposing copy here and another before the next convolution's backward
        out = torch.empty_strided(ctx.shape, ctx.strides, dtype=grad.dtype, device=grad.device).zero_()
        out[:, ctx.idx] = grad
        return out, None


def tracks_grad(*tensors: torch.Tensor) -> bool:
    """Will autograd record an op on ``tensors``? The speed paths use their autograd Functions only then, so that
    inference stays plain tensor ops (which ``torch.export`` captures)."""
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def select_frame(x: torch.Tensor, idx: int) -> torch.Tensor:
    """``x[:, idx]`` of ``(b, t, c, h, w)`` frames, whose gradient keeps ``x``'s memory layout (NHWC frames too)."""
    return _SelectFrame.apply(x, idx) if tracks_grad(x) else x[:, idx]


class ConcatConv2d(nn.Conv2d):
    """A convolution over the channel concatenation of its inputs: ``conv(cat(parts, dim=1))``.

    An ``nn.Conv2d`` (same parameters, initialisation and state-dict keys) whose forward takes the list of parts
    and never builds the concatenation: one convolution per part with its slice of the weight, summed. A part
    may hold fewer samples than the first, ``n / t`` instead of ``n`` (PCD's reference frame, shared by the ``t``
    frames of a sample): it is convolved once per sample and added to all ``t`` frames, which saves ``(t - 1) / t``
    of that part's work in the forward and the backward.

    Shapes:
        ``parts = [(n, c_0, h, w), (n or n / t, c_1, h, w), ...]`` with ``sum(c_i) == in_channels``
        -> ``(n, out_channels, h', w')``. A single tensor is a plain convolution.
    """

    def forward(self, parts: list[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        if isinstance(parts, torch.Tensor):
            return super().forward(parts)
        kw = dict(stride=self.stride, padding=self.padding, dilation=self.dilation)
        c0, out = 0, None
        for part in parts:
            c1 = c0 + part.shape[1]
            y = F.conv2d(part, self.weight[:, c0:c1], self.bias if out is None else None, **kw)
            if out is None:
                out = y
            elif y.shape[0] == out.shape[0]:
                out.add_(y)
            elif tracks_grad(out, y):  # shared by consecutive groups of t samples
                out = _AddShared.apply(out, y)
            else:  # inference: a plain in-place add (which tracing and export also understand)
                _add_shared_(out, y)
            c0 = c1
        return out


def _add_shared_(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """In place: ``out`` viewed ``(n / t, t, ...)`` += ``y`` ``(n / t, ...)``."""
    out.view(y.shape[0], -1, *out.shape[1:]).add_(y.unsqueeze(1))
    return out


class _AddShared(torch.autograd.Function):
    """``out (n, ...) += y (n / t, ...)`` broadcast over groups of ``t`` consecutive samples, in place.

    Autograd's in-place add on a view of ``out`` would clone ``out`` in the backward; here the gradient passes
    through and ``y`` gets its sum over each group.
    """

    @staticmethod
    def forward(ctx, out, y):
        ctx.mark_dirty(out)
        ctx.groups = y.shape[0]
        return _add_shared_(out, y)

    @staticmethod
    def backward(ctx, grad):
        return grad, grad.view(ctx.groups, -1, *grad.shape[1:]).sum(1)
