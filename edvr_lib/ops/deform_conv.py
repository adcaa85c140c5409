"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) behind one function.

Semantics are those of ``torchvision.ops.deform_conv2d`` with a mask: offsets of shape
``(b, 2*g*kh*kw, h, w)`` laid out as torchvision's (channel ``g*2*K + 2k`` is dy,
``g*2*K + 2k + 1`` is dx for kernel tap ``k`` in row-major order), the mask ``(b, g*kh*kw, h, w)``
already passed through a sigmoid, and zero padding outside the image.

Backends:
    ``torchvision``: ``torchvision.ops.deform_conv2d`` (the reference backend). Its CPU kernels run
    on one thread and its backward costs ~6x its forward.
    ``fast``: :mod:`edvr_lib.ops.dcn_fast`, one sampling grid, one ``grid_sample`` and one GEMM per
    tile with a hand-written backward; multi-threaded, same results to float32 rounding, 3-7x faster
    than ``torchvision`` on one CPU thread at EDVR shapes (more with several threads).

The backend is the speed policy's choice (:mod:`edvr_lib.ops.policy`: ``configure``, ``speed_policy``, or the
``EDVR_DCN_BACKEND`` environment variable as the default); ``backend=`` overrides it for one call. ``auto``:
``fast`` on CPU (measured fastest, see ``docs/performance.md``); ``torchvision`` on CUDA and other devices,
whose native kernel runs the whole op in one launch (compare with
``python -m benchmarks.edvr_speed --dcn-backend fast`` on your GPU).

Under autocast (AMP) the DCN always runs in float32: offsets are sub-pixel positions and lose
their precision in half types; the output is float32 and the next convolution casts it again.
"""
from __future__ import annotations

import torch
from torchvision.ops import deform_conv2d as _tv_deform_conv2d

from edvr_lib.ops.dcn_fast import fast_dcn_pack, fast_modulated_deform_conv2d, split_offset_mask
from edvr_lib.ops.policy import dcn_backend_for
from edvr_lib.utils.errors import EDVRError


def _torchvision_backend(x, offset, mask, weight, bias, padding, stride, dilation):
    return _tv_deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding,
                             dilation=dilation, mask=mask)


# each backend: (x, offset, mask, weight, bias, padding, stride, dilation) -> output
_BACKENDS = {"torchvision": _torchvision_backend, "fast": fast_modulated_deform_conv2d}


def available_backends() -> list[str]:
    """Names accepted by ``backend=``, :func:`edvr_lib.ops.configure` and ``EDVR_DCN_BACKEND``."""
    return sorted(_BACKENDS)


def resolve_backend(backend: str | None, device: torch.device) -> str:
    """The backend to run on ``device``: ``backend`` if given (``'auto'``: the per-device default), else the
    policy's."""
    if backend not in (None, "auto", *_BACKENDS):
        raise EDVRError(f"unknown DCN backend {backend!r}; choose one of {available_backends()} or 'auto'")
    return dcn_backend_for(device, backend)


def modulated_deform_conv2d(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None, padding: int = 1, stride: int = 1, dilation: int = 1,
                            backend: str | None = None) -> torch.Tensor:
    """DCNv2: ``y(p) = sum_k w_k * x(p + p_k + dp_k) * m_k + b``.

    Args:
        x: input features ``(b, c_in, h, w)``.
        offset: ``(b, 2*g*kh*kw, h_out, w_out)``, torchvision layout (dy, dx interleaved per tap).
        mask: ``(b, g*kh*kw, h_out, w_out)``, after sigmoid.
        weight: ``(c_out, c_in, kh, kw)``.
        bias: ``(c_out,)`` or None.
        padding, stride, dilation: as in ``nn.Conv2d`` (ints).
        backend: backend name for this call only; None: the speed policy's (module docstring).

    Returns:
        ``(b, c_out, h_out, w_out)``.
    """
    name = resolve_backend(backend, x.device)
    fn = _BACKENDS[name]
    if _needs_float32(x, weight, offset, mask):
        # AMP: the DCN runs in float32 (sub-pixel offsets need the precision)
        with torch.autocast(x.device.type, enabled=False):
            f32 = [None if t is None else t.float() for t in (x, offset, mask, weight, bias)]
            return fn(*f32, padding, stride, dilation)
    return fn(x, offset, mask, weight, bias, padding, stride, dilation)


def deform_conv_pack(x: torch.Tensor, offset_mask: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                     padding: int = 1, stride: int = 1, dilation: int = 1, backend: str | None = None) -> torch.Tensor:
    """DCNv2 whose offsets and mask come from a DCN pack's ``conv_offset`` output (EDVR's ``DCNv2Pack``).

    Same as ``modulated_deform_conv2d(x, offset, sigmoid(logits), ...)`` with ``offset, logits =
    split_offset_mask(offset_mask)``. The ``fast`` backend takes the output whole (:func:`fast_dcn_pack`: the sigmoid
    per tile, one gradient buffer in the conv's layout); other backends, and AMP, get the two views.

    Args:
        offset_mask: ``(b, 3*g*kh*kw, h_out, w_out)``: offsets (torchvision layout), then mask logits.
        x, weight, bias, padding, stride, dilation, backend: as in :func:`modulated_deform_conv2d`.
    """
    name = resolve_backend(backend, x.device)
    if name == "fast" and not _needs_float32(x, weight, offset_mask):
        return fast_dcn_pack(x, offset_mask, weight, bias, padding, stride, dilation)
    offset, mask_logits = split_offset_mask(offset_mask)
    return modulated_deform_conv2d(x, offset, torch.sigmoid(mask_logits), weight, bias, padding, stride, dilation,
                                   backend=name)


def _needs_float32(x: torch.Tensor, weight: torch.Tensor, *others: torch.Tensor) -> bool:
    """Under autocast, or with mixed dtypes, the DCN runs on float32 copies."""
    return torch.is_autocast_enabled(x.device.type) or any(t.dtype != weight.dtype for t in (x, *others))
