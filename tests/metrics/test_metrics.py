"""PSNR/SSIM against hand-computed values and the reference conventions."""
import math

import numpy as np
import pytest

from edvr_lib.metrics import (average_overall, average_per_clip, calculate_psnr, calculate_ssim, rgb2y, summarize,
                              tensor2img)
from edvr_lib.utils import EDVRError


def test_psnr_constant_difference_by_hand():
    a = np.full((8, 8, 3), 100, np.uint8)
    b = a + 1  # MSE = 1
    assert calculate_psnr(a, b) == pytest.approx(10 * math.log10(255 ** 2), abs=1e-12)  # 48.1308
    assert calculate_psnr(a, b) == pytest.approx(48.1308036, abs=1e-6)
    # MSE = 0.25*16 = 4 when a quarter of the pixels differ by 4
    c = a.astype(np.int32).copy()
    c[:4, :4] += 4
    assert calculate_psnr(a, c) == pytest.approx(10 * math.log10(255 ** 2 / 4), abs=1e-12)


def test_psnr_identical_is_inf_and_uint8_no_overflow():
    a = np.zeros((4, 4, 3), np.uint8)
    assert calculate_psnr(a, a) == float("inf")
    # uint8 arithmetic would wrap around: 0 - 255 must give MSE 255^2 -> 0 dB
    assert calculate_psnr(a, a + 255) == pytest.approx(0.0, abs=1e-12)


def test_crop_border_and_chw():
    a = np.zeros((10, 10, 3), np.uint8)
    b = a.copy()
    b[0, :, :] = 50  # only the border row differs
    assert calculate_psnr(a, b, crop_border=1) == float("inf")
    assert calculate_psnr(a.transpose(2, 0, 1), b.transpose(2, 0, 1), input_order="CHW") == \
        pytest.approx(calculate_psnr(a, b))


def test_y_channel_matlab_bt601():
    red = np.zeros((2, 2, 3), np.uint8)
    red[..., 0] = 255
    assert rgb2y(red)[0, 0] == pytest.approx(16 + 65.481)
    white = np.full((1, 1, 3), 255, np.uint8)
    assert rgb2y(white)[0, 0] == pytest.approx(235.0)
    assert rgb2y(np.zeros((1, 1, 3)))[0, 0] == pytest.approx(16.0)
    # BGR order gives the same luma for the swapped image
    assert rgb2y(red[..., ::-1], channel_order="BGR")[0, 0] == pytest.approx(81.481)
    # PSNR on Y of two flat images: Y differs by 65.481*10/255
    a = np.zeros((4, 4, 3), np.uint8)
    b = a.copy()
    b[..., 0] = 10
    dy = 65.481 * 10 / 255
    assert calculate_psnr(a, b, test_y_channel=True) == pytest.approx(10 * math.log10(255 ** 2 / dy ** 2))


def test_ssim_flat_images_by_hand():
    # flat images: sigma = 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1)
    c1 = (0.01 * 255) ** 2
    a = np.full((16, 16, 3), 100.0)
    b = np.full((16, 16, 3), 120.0)
    expected = (2 * 100 * 120 + c1) / (100 ** 2 + 120 ** 2 + c1)
    assert calculate_ssim(a, b) == pytest.approx(expected, rel=1e-12)
    assert calculate_ssim(a, a) == pytest.approx(1.0)


def test_ssim_matches_skimage_gaussian_variant():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 48, 3)).astype(np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ours = calculate_ssim(a, b)
    ref = structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2, data_range=255,
                                gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    assert ours == pytest.approx(ref, abs=1e-9)
    assert 0 < ours < 1


def test_ssim_too_small_and_shape_mismatch_raise():
    with pytest.raises(EDVRError, match="11x11"):
        calculate_ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(EDVRError, match="different shapes"):
        calculate_psnr(np.zeros((8, 8, 3)), np.zeros((8, 9, 3)))


def test_tensor2img_rounds_and_clips():
    import torch

    t = torch.tensor([[[0.5 / 255, 1.5 / 255], [2.0, -1.0]]]).repeat(3, 1, 1)
    img = tensor2img(t)
    assert img.dtype == np.uint8 and img.shape == (2, 2, 3)
    assert img[..., 0].tolist() == [[0, 2], [255, 0]]  # numpy rounds half to even: 0.5 -> 0, 1.5 -> 2


def test_per_clip_then_overall_averaging():
    rows = [{"clip": "a", "psnr": 30.0, "ssim": 0.9}, {"clip": "a", "psnr": 32.0, "ssim": 0.8},
            {"clip": "a", "psnr": 34.0, "ssim": 0.7}, {"clip": "b", "psnr": 20.0, "ssim": 0.5}]
    per_clip = average_per_clip(rows)
    assert per_clip["a"]["psnr"] == pytest.approx(32.0) and per_clip["a"]["num_frames"] == 3
    overall = average_overall(per_clip)
    assert overall["psnr"] == pytest.approx(26.0)  # (32 + 20) / 2, not the frame mean 29
    assert overall["ssim"] == pytest.approx((0.8 + 0.5) / 2)
    assert summarize(rows)[1] == overall
