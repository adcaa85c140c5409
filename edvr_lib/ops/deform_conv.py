"""Modulated deformable convolution (DCNv2, Zhu et al. 2019) behind one function.

Semantics are those of ``torchvision.ops.deform_conv2d`` with a mask: offsets of shape
``(b, 2*g*kh*kw, h, w)`` laid out as torchvision's (channel ``g*2*K + 2k`` is dy,
``g*2*K + 2k + 1`` is dx for kernel tap ``k`` in row-major order), the mask ``(b, g*kh*kw, h, w)``
already passed through a sigmoid, and zero padding outside the image.

Backends:
    ``torchvision``: ``torchvision.ops.deform_conv2d`` (the reference backend).

Choose with the ``backend`` argument, the ``EDVR_DCN_BACKEND`` environment variable,
or leave it to ``"auto"``.
"""
from __future__ import annotations

import os

import torch
from torchvision.ops import deform_conv2d as _tv_deform_conv2d

from edvr_lib.utils.errors import EDVRError


def _torchvision_backend(x, offset, mask, weight, bias, padding, stride, dilation):
    return _tv_deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding,
                             dilation=dilation, mask=mask)


_BACKENDS = {"torchvision": _torchvision_backend}


def available_backends() -> list[str]:
    """Names accepted by ``backend=`` and ``EDVR_DCN_BACKEND``."""
    return sorted(_BACKENDS)


def resolve_backend(backend: str | None, device: torch.device) -> str:
    """Pick the backend name: explicit argument, then ``EDVR_DCN_BACKEND``, then per-device default."""
    name = backend or os.environ.get("EDVR_DCN_BACKEND") or "auto"
    if name == "auto":
        return "torchvision"
    if name not in _BACKENDS:
        raise EDVRError(f"unknown DCN backend {name!r}; choose one of {available_backends()} or 'auto' "
                        "(set via backend=... or the EDVR_DCN_BACKEND environment variable)")
    return name


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
        backend: backend name or None for the default (see module docstring).

    Returns:
        ``(b, c_out, h_out, w_out)``.
    """
    name = resolve_backend(backend, x.device)
    return _BACKENDS[name](x, offset, mask, weight, bias, padding, stride, dilation)
