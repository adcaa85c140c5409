"""Speed-only switches of the EDVR model: they change how fast it runs, never what it computes.

``channels_last``: activations in NHWC memory order. oneDNN's CPU convolutions run on NHWC natively;
given NCHW they reorder input and output on every call. Measured on 2 CPU cores (``docs/performance.md``):
5-25% less CPU time per 3x3 convolution (most in the backward), and the forward convolutions of a
training step 1.75x faster in wall time with 2 threads. The weights (and so the state dict) stay as
they are. Results equal NCHW ones to float32 rounding.

Each switch resolves as: explicit setting (an argument or a model attribute), then an environment variable,
then the per-device default below (the fastest measured; devices not measured keep the plain path).
"""
from __future__ import annotations

import os

import torch

from edvr_lib.utils.errors import EDVRError

# device.type -> default; CUDA is not measured yet (docs/performance.md), so it keeps NCHW
CHANNELS_LAST_AUTO = {"cpu": True}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def resolve_channels_last(setting: bool | None, device: torch.device | str) -> bool:
    """Use channels_last on ``device``? ``setting`` (True/False) wins, then ``EDVR_CHANNELS_LAST``, then the default."""
    if setting is not None:
        return bool(setting)
    env = os.environ.get("EDVR_CHANNELS_LAST", "auto").strip().lower()
    if env in _TRUE:
        return True
    if env in _FALSE:
        return False
    if env != "auto":
        raise EDVRError(f"EDVR_CHANNELS_LAST={env!r} is not understood; use 1, 0 or auto")
    return CHANNELS_LAST_AUTO.get(torch.device(device).type, False)


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
