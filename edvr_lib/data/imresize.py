"""MATLAB-exact bicubic resize (``imresize(img, scale, 'bicubic')``).

REDS and Vimeo-90K LR frames were made with MATLAB's ``imresize(gt, 1/4, 'bicubic')``, which differs from
``cv2.resize(..., INTER_CUBIC)``: the cubic kernel (Keys, a = -0.5) is **widened by 1/scale when shrinking**
(antialiasing; OpenCV always uses 4 taps and aliases), and pixels outside the image come from **symmetric padding**,
each output's weights normalised to sum to 1. Output pixel ``x`` (1-based) is centred on input coordinate
``u = x / scale + 0.5 (1 - 1/scale)``; rows are resized first, then columns.

Numpy ``(h, w[, c])`` or torch ``(..., c, h, w)`` in, the same type and dtype out. Floats are resized in float64
(numpy) or the tensor's dtype and *not* clipped; ``uint8`` follows MATLAB's uint8 path (rounded half away from zero
and clipped after each pass).
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from edvr_lib.utils import EDVRError

__all__ = ["cubic", "imresize", "resize_weights"]


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    absx = np.abs(x)
    absx2, absx3 = absx * absx, absx * absx * absx
    near = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1)
    far = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1) & (absx <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_weights(in_length: int, out_length: int, scale: float,
                   antialiasing: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Taps of a 1-D MATLAB bicubic resize.

    Args:
        in_length, out_length: input and output length (pixels).
        scale: output / input size ratio (``0.25`` for x4 down-sampling).
        antialiasing: widen the kernel by ``1/scale`` when shrinking (MATLAB default).

    Returns:
        ``(indices, weights)``, both ``(out_length, p)``: output ``i`` is
        ``sum_k weights[i, k] * input[indices[i, k]]`` (0-based indices after symmetric padding).
    """
    shrink_aa = scale < 1 and antialiasing
    kernel_width = 4.0 / scale if shrink_aa else 4.0
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - kernel_width / 2.0)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p, dtype=np.float64)[None, :]  # 1-based, may fall outside
    dist = u[:, None] - indices
    weights = scale * cubic(dist * scale) if shrink_aa else cubic(dist)
    weights = weights / weights.sum(axis=1, keepdims=True)
    # symmetric padding: 1-based index k maps through [1..N, N..1] repeated
    period = 2 * in_length
    k = np.mod(indices.astype(np.int64) - 1, period)
    mirrored = np.where(k < in_length, k, period - 1 - k)
    # drop tap columns whose weight is zero for every output (MATLAB does the same)
    keep = np.any(weights != 0, axis=0)
    return mirrored[:, keep].copy(), weights[:, keep].copy()


def _round_uint8(x: np.ndarray) -> np.ndarray:
    # MATLAB rounds half away from zero, then saturates
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _output_size(h: int, w: int, scale: float | tuple[float, float]) -> tuple[int, int, float, float]:
    sh, sw = (float(scale[0]), float(scale[1])) if isinstance(scale, (tuple, list)) else (float(scale),) * 2
    if not (sh > 0 and sw > 0) or not (math.isfinite(sh) and math.isfinite(sw)):
        raise EDVRError(f"imresize: scale must be a positive number, got {scale!r}")
    # MATLAB: output size = ceil(scale * input size); 1e-9 guards 0.25 * 720 style float noise
    return int(math.ceil(h * sh - 1e-9)), int(math.ceil(w * sw - 1e-9)), sh, sw


def imresize(img, scale: float | tuple[float, float], antialiasing: bool = True):
    """Resize like MATLAB ``imresize(img, scale, 'bicubic')``.

    Args:
        img: numpy ``(h, w)`` / ``(h, w, c)`` (float in [0, 1] or uint8), or a torch tensor
            ``(c, h, w)`` or ``(b, c, h, w)`` (float).
        scale: one factor for both axes (``1/4`` for x4 LR) or ``(scale_h, scale_w)``.
        antialiasing: MATLAB's default ``True`` widens the kernel when shrinking.

    Returns:
        The resized image, same type/dtype/layout as ``img``; size ``ceil(scale * size)``.
    """
    import torch

    if isinstance(img, torch.Tensor):
        return _imresize_torch(img, scale, antialiasing)
    if not isinstance(img, np.ndarray):
        raise EDVRError(f"imresize: expected a numpy array or a torch tensor, got {type(img).__name__}")
    if img.ndim not in (2, 3):
        raise EDVRError(f"imresize: numpy input must be (h, w) or (h, w, c), got shape {img.shape}")
    h, w = img.shape[:2]
    out_h, out_w, sh, sw = _output_size(h, w, scale)
    idx_h, wt_h = resize_weights(h, out_h, sh, antialiasing)
    idx_w, wt_w = resize_weights(w, out_w, sw, antialiasing)
    is_uint8 = img.dtype == np.uint8
    if img.dtype not in (np.uint8, np.float32, np.float64, np.float16):
        raise EDVRError(f"imresize: dtype {img.dtype} not supported; convert to float in [0, 1] or uint8")
    x = _resize_axis(img.astype(np.float64).reshape(h, w, -1), idx_h, wt_h, axis=0)  # rows first
    if is_uint8:
        x = _round_uint8(x).astype(np.float64)
    x = _resize_axis(x, idx_w, wt_w, axis=1).reshape(out_h, out_w, *img.shape[2:])
    return _round_uint8(x) if is_uint8 else x.astype(img.dtype)


def _resize_axis(x, idx: np.ndarray, wt: np.ndarray, axis: int):
    """Weighted sum over taps along one axis (numpy, or torch with ``idx`` / ``wt`` as tensors), one pass per tap."""
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for k in range(idx.shape[1]):
        if isinstance(x, np.ndarray):
            term = np.take(x, idx[:, k], axis=axis) * wt[:, k].reshape(shape)
        else:
            term = x.index_select(axis, idx[:, k]) * wt[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


def _imresize_torch(img, scale, antialiasing):
    import torch

    if img.ndim < 3:
        raise EDVRError(f"imresize: torch input must be (c, h, w) or (b, c, h, w), got shape {tuple(img.shape)}")
    if not img.is_floating_point():
        raise EDVRError("imresize: torch input must be a float tensor in [0, 1] (use img.float() / 255)")
    h, w = img.shape[-2:]
    out_h, out_w, sh, sw = _output_size(int(h), int(w), scale)
    idx_h, wt_h = resize_weights(int(h), out_h, sh, antialiasing)
    idx_w, wt_w = resize_weights(int(w), out_w, sw, antialiasing)
    dev, dt = img.device, img.dtype
    x = _resize_axis(img, torch.from_numpy(idx_h).to(dev), torch.from_numpy(wt_h).to(dev, dt), axis=img.ndim - 2)
    return _resize_axis(x, torch.from_numpy(idx_w).to(dev), torch.from_numpy(wt_w).to(dev, dt),
                        axis=img.ndim - 1).contiguous()
