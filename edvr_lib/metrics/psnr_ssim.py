"""PSNR and SSIM computed the way the EDVR / BasicSR papers report them.

Conventions (those of BasicSR's ``basicsr/metrics/psnr_ssim.py`` and the EDVR test option files):

* images are ``[0, 255]`` arrays, normally the **uint8-rounded** model output (:func:`tensor2img`), compared in
  float64;
* ``crop_border`` pixels are removed on every side before measuring (0 for EDVR);
* ``test_y_channel=True`` measures only the luma of MATLAB's BT.601 ``rgb2ycbcr``
  (``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` with R, G, B in [0, 1], so Y is in 16..235);
* SSIM uses an 11x11 Gaussian window (sigma 1.5), ``C1 = (0.01*255)^2``, ``C2 = (0.03*255)^2``, keeps only the
  'valid' part of the filtered maps (5 pixels lost on each side) and averages the per-channel SSIM for RGB.

Unlike BasicSR, which reads images with OpenCV (BGR), this project keeps frames in **RGB** order; pass
``channel_order='BGR'`` for OpenCV arrays.
"""
from __future__ import annotations

import math

import numpy as np

from edvr_lib.utils.errors import EDVRError

# MATLAB rgb2ycbcr luma weights for R, G, B on a [0, 1] scale (BT.601, studio swing).
_Y_WEIGHTS_RGB = np.array([65.481, 128.553, 24.966])


def tensor2img(tensor) -> np.ndarray:
    """Convert a model output in [0, 1] to a uint8 image, rounding like the reference.

    Args:
        tensor: torch tensor or array ``(3, h, w)``, ``(1, 3, h, w)`` or ``(h, w)`` in [0, 1] (clipped to it).

    Returns:
        ``(h, w, 3)`` (or ``(h, w)``) uint8 array.
    """
    arr = tensor.detach().float().cpu().numpy() if hasattr(tensor, "detach") else np.asarray(tensor, dtype=np.float64)
    if arr.ndim == 4:
        if arr.shape[0] != 1:
            raise EDVRError(f"tensor2img expects one image, got a batch of shape {arr.shape}; index it first")
        arr = arr[0]
    if arr.ndim == 3:
        arr = arr.transpose(1, 2, 0)
    return (np.clip(arr, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def rgb2y(img: np.ndarray, channel_order: str = "RGB") -> np.ndarray:
    """Luma of MATLAB's ``rgb2ycbcr`` (BT.601) for a ``[0, 255]`` image.

    Args:
        img: ``(h, w, 3)`` array in [0, 255] (any dtype).
        channel_order: ``'RGB'`` (this project) or ``'BGR'`` (OpenCV).

    Returns:
        ``(h, w)`` float64 array in [16, 235] (not rounded).
    """
    img = np.asarray(img, dtype=np.float64) / 255.0
    weights = _Y_WEIGHTS_RGB if channel_order == "RGB" else _Y_WEIGHTS_RGB[::-1]
    return img @ weights + 16.0


def _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order):
    """Both images as float64 ``(h, w, c)`` (a 2-D image gets ``c = 1``), cropped, Y only if asked."""
    if input_order not in ("HWC", "CHW"):
        raise EDVRError(f"input_order must be 'HWC' or 'CHW', got {input_order!r}")
    img, img2 = (a[..., None] if a.ndim == 2 else a.transpose(1, 2, 0) if input_order == "CHW" else a
                 for a in map(np.asarray, (img, img2)))
    if img.shape != img2.shape:
        raise EDVRError(f"images to compare have different shapes {img.shape} and {img2.shape}; "
                        "crop or resize the output to the ground-truth size first")
    img, img2 = img.astype(np.float64), img2.astype(np.float64)
    if crop_border:
        img, img2 = (a[crop_border:-crop_border, crop_border:-crop_border] for a in (img, img2))
    if test_y_channel and img.shape[2] == 3:
        img, img2 = rgb2y(img, channel_order)[..., None], rgb2y(img2, channel_order)[..., None]
    return img, img2


def calculate_psnr(img, img2, crop_border: int = 0, input_order: str = "HWC", test_y_channel: bool = False,
                   channel_order: str = "RGB") -> float:
    """Peak signal-to-noise ratio in dB, peak 255, MSE in float64.

    Args:
        img: ``(h, w, c)`` (or ``(c, h, w)`` with ``input_order='CHW'``) image in [0, 255].
        img2: the reference image, same shape.
        crop_border: pixels removed on each side before measuring.
        input_order: ``'HWC'`` or ``'CHW'``.
        test_y_channel: measure only the BT.601 luma (see :func:`rgb2y`).
        channel_order: ``'RGB'`` or ``'BGR'`` (only matters for the Y channel).

    Returns:
        PSNR in dB (``inf`` for identical images).
    """
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order)
    mse = float(np.mean((img - img2) ** 2))
    if mse == 0:
        return float("inf")
    return 10.0 * math.log10(255.0 * 255.0 / mse)


def _filter_valid(img: np.ndarray, g: np.ndarray) -> np.ndarray:
    """2-D separable correlation of ``(h, w)`` ``img`` with ``outer(g, g)``, 'valid' part only."""
    k = len(g)
    h, w = img.shape
    rows = sum(g[i] * img[i:h - k + 1 + i, :] for i in range(k))
    return sum(g[j] * rows[:, j:w - k + 1 + j] for j in range(k))


def _ssim_single(img: np.ndarray, img2: np.ndarray) -> float:
    """SSIM of two ``(h, w)`` float64 images in [0, 255] (Wang et al. 2004)."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    x = np.arange(11, dtype=np.float64) - 5.0
    g = np.exp(-(x ** 2) / (2 * 1.5 ** 2))
    g /= g.sum()  # normalised 1-D Gaussian, 11 taps, sigma 1.5
    mu1, mu2 = _filter_valid(img, g), _filter_valid(img2, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 ** 2, mu2 ** 2, mu1 * mu2
    sigma1_sq = _filter_valid(img * img, g) - mu1_sq
    sigma2_sq = _filter_valid(img2 * img2, g) - mu2_sq
    sigma12 = _filter_valid(img * img2, g) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / ((mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2))
    return float(ssim_map.mean())


def calculate_ssim(img, img2, crop_border: int = 0, input_order: str = "HWC", test_y_channel: bool = False,
                   channel_order: str = "RGB") -> float:
    """Structural similarity, averaged over channels (same arguments as :func:`calculate_psnr`).

    The filtered maps keep only their 'valid' part, so the image (after ``crop_border``) must be at least 11x11.
    """
    img, img2 = _prepare(img, img2, crop_border, input_order, test_y_channel, channel_order)
    if min(img.shape[:2]) < 11:
        raise EDVRError(f"SSIM needs images of at least 11x11 pixels after cropping, got {img.shape[:2]}")
    return float(np.mean([_ssim_single(img[..., i], img2[..., i]) for i in range(img.shape[2])]))
