"""MATLAB bicubic resize, checked against values derived by hand from MATLAB's definition."""
import math

import numpy as np
import pytest
import torch

from edvr_lib.data.imresize import imresize
from edvr_lib.utils import EDVRError


def _keys_cubic(x):
    """Keys cubic, a = -0.5, written from the formula (independent of the library)."""
    x = abs(x)
    if x <= 1:
        return 1.5 * x ** 3 - 2.5 * x ** 2 + 1
    if x <= 2:
        return -0.5 * x ** 3 + 2.5 * x ** 2 - 4 * x + 2
    return 0.0


def _mirror(i, n):
    """Symmetric padding of a 0-based index: ... 1 0 | 0 1 ... n-1 | n-1 n-2 ..."""
    while i < 0 or i >= n:
        i = -i - 1 if i < 0 else 2 * n - 1 - i
    return i


def _reference_1d(values, scale, antialiasing=True):
    """Per-pixel loop over MATLAB's definition: centre u, widened kernel, normalised weights."""
    n = len(values)
    out_n = math.ceil(n * scale - 1e-9)
    widen = scale < 1 and antialiasing
    width = 4 / scale if widen else 4
    out = []
    for x in range(1, out_n + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - width / 2)
        taps = range(left, left + math.ceil(width) + 2)
        w = [scale * _keys_cubic(scale * (u - j)) if widen else _keys_cubic(u - j) for j in taps]
        total = sum(w)
        out.append(sum(wk / total * values[_mirror(j - 1, n)] for wk, j in zip(w, taps)))
    return np.array(out)


def _reference_2d(img, scale, antialiasing=True):
    rows = np.stack([_reference_1d(img[:, j], scale, antialiasing) for j in range(img.shape[1])], axis=1)
    return np.stack([_reference_1d(rows[i], scale, antialiasing) for i in range(rows.shape[0])], axis=0)


def test_hand_derived_halving_of_a_ramp():
    # weights for output 1 of a x1/2 shrink of 4 pixels, derived by hand from the widened kernel:
    # x1: 0.546875, x2: 0.3984375, x3: 0.1015625, x4: -0.046875
    out = imresize(np.array([[1.0], [2.0], [3.0], [4.0]]), (0.5, 1.0))
    np.testing.assert_allclose(out[:, 0], [1.4609375, 3.5390625], atol=1e-12)


def test_hand_derived_doubling_of_an_impulse():
    # x2 upsampling: output 1 = 1.09375 x1 - 0.09375 x2, output 2 = 0.796875 x1 + 0.2265625 x2 - 0.0234375 x3
    out = imresize(np.array([[1.0], [0.0], [0.0], [0.0]]), (2.0, 1.0))[:, 0]
    assert out.shape == (8,)
    np.testing.assert_allclose(out[:5], [1.09375, 0.796875, 0.203125, -0.0703125, -0.0234375], atol=1e-12)
    out2 = imresize(np.array([[0.0], [1.0], [0.0], [0.0]]), (2.0, 1.0))[:, 0]
    np.testing.assert_allclose(out2[:2], [-0.09375, 0.2265625], atol=1e-12)


@pytest.mark.parametrize("shape,scale,aa", [((16, 12), 0.25, True), ((9, 7), 0.5, True), ((10, 11), 1 / 3, True),
                                            ((5, 6), 2.0, True), ((4, 5), 3.0, True), ((16, 12), 0.25, False)])
def test_matches_loop_reference(shape, scale, aa):
    rng = np.random.default_rng(0)
    img = rng.random(shape)
    np.testing.assert_allclose(imresize(img, scale, antialiasing=aa), _reference_2d(img, scale, aa), atol=1e-12)


def test_linear_ramp_is_reproduced_inside():
    # bicubic weights are symmetric and sum to 1, so away from the borders output x equals the
    # input coordinate it is centred on: u = x / s + 0.5 (1 - 1/s)
    n, s = 64, 0.25
    ramp = np.arange(1, n + 1, dtype=float)[:, None]
    out = imresize(ramp, (s, 1.0))[:, 0]
    x = np.arange(1, n // 4 + 1)
    u = x / s + 0.5 * (1 - 1 / s)
    np.testing.assert_allclose(out[3:-3], u[3:-3], atol=1e-10)


def test_constant_image_stays_constant_and_sizes_round_up():
    img = np.full((13, 10, 3), 0.3)
    out = imresize(img, 0.25)
    assert out.shape == (4, 3, 3)  # ceil(13/4), ceil(10/4)
    np.testing.assert_allclose(out, 0.3, atol=1e-12)


def test_antialiasing_suppresses_stripes_above_the_new_nyquist():
    # stripes with a 3-pixel period cannot be represented after x1/4 (LR Nyquist: 8 px)
    xx = np.mgrid[0:64, 0:64][1]
    stripes = 0.5 + 0.5 * np.cos(2 * np.pi * xx / 3)  # amplitude 0.5, std 0.35
    smooth = imresize(stripes, 0.25)
    aliased = imresize(stripes, 0.25, antialiasing=False)
    assert smooth.std() < 0.05  # MATLAB's widened kernel low-passes them to grey
    assert aliased.std() > 0.2  # 4 taps alone fold them into a false low-frequency pattern


def test_torch_and_numpy_agree_and_keep_type():
    rng = np.random.default_rng(1)
    img = rng.random((24, 20, 3))
    t = torch.from_numpy(img.transpose(2, 0, 1).copy())
    out_t = imresize(t, 0.25)
    assert isinstance(out_t, torch.Tensor) and out_t.dtype == torch.float64 and out_t.shape == (3, 6, 5)
    np.testing.assert_allclose(out_t.numpy().transpose(1, 2, 0), imresize(img, 0.25), atol=1e-12)
    batch = torch.stack([t, t]).float()
    out_b = imresize(batch, 0.25)
    assert out_b.shape == (2, 3, 6, 5) and out_b.dtype == torch.float32
    assert imresize(img.astype(np.float32), 0.5).dtype == np.float32


def test_uint8_path_rounds_after_each_pass():
    rng = np.random.default_rng(2)
    img = rng.integers(0, 256, (16, 12, 3), dtype=np.uint8)
    out = imresize(img, 0.25)
    assert out.dtype == np.uint8
    rows = np.clip(np.floor(_reference_2d_rows(img.astype(float), 0.25) + 0.5), 0, 255)
    expected = np.clip(np.floor(_reference_2d_cols(rows, 0.25) + 0.5), 0, 255)
    np.testing.assert_array_equal(out, expected.astype(np.uint8))


def _reference_2d_rows(img, scale):
    return np.stack([np.stack([_reference_1d(img[:, j, c], scale) for j in range(img.shape[1])], 1)
                     for c in range(img.shape[2])], 2)


def _reference_2d_cols(img, scale):
    return np.stack([np.stack([_reference_1d(img[i, :, c], scale) for i in range(img.shape[0])], 0)
                     for c in range(img.shape[2])], 2)


def test_bad_input_is_refused():
    with pytest.raises(EDVRError, match="scale"):
        imresize(np.zeros((4, 4)), 0)
    with pytest.raises(EDVRError, match="float"):
        imresize(torch.zeros(3, 4, 4, dtype=torch.uint8), 0.5)
    with pytest.raises(EDVRError):
        imresize([[0.0]], 0.5)
