"""Frame windows, paired crops and the 8 augmentations."""
import random

import numpy as np
import pytest

from edvr_lib.data.transforms import (PADDINGS, augment, dihedral_variants, frames_to_tensor, generate_frame_indices,
                                      paired_random_crop)
from edvr_lib.utils import EDVRError


@pytest.mark.parametrize("padding,center,expected", [
    ("reflection_circle", 0, [4, 3, 0, 1, 2]),  # the example of EDVR's SR test configs
    ("reflection_circle", 1, [4, 0, 1, 2, 3]),
    ("reflection_circle", 99, [97, 98, 99, 96, 95]),
    ("replicate", 0, [0, 0, 0, 1, 2]),
    ("replicate", 98, [96, 97, 98, 99, 99]),
    ("reflection", 0, [2, 1, 0, 1, 2]),
    ("reflection", 99, [97, 98, 99, 98, 97]),
    ("circle", 0, [98, 99, 0, 1, 2]),
    ("circle", 99, [97, 98, 99, 0, 1]),
    ("reflection_circle", 50, [48, 49, 50, 51, 52]),
])
def test_generate_frame_indices_examples(padding, center, expected):
    assert generate_frame_indices(center, 5, 100, padding) == expected


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("num_frame,num_total", [(5, 5), (7, 9), (3, 3), (1, 4)])
def test_generate_frame_indices_stay_in_range(padding, num_frame, num_total):
    for c in range(num_total):
        idx = generate_frame_indices(c, num_frame, num_total, padding)
        assert len(idx) == num_frame and idx[num_frame // 2] == c
        assert all(0 <= i < num_total for i in idx)


def test_generate_frame_indices_bad_input():
    with pytest.raises(EDVRError, match="odd"):
        generate_frame_indices(0, 4, 10)
    with pytest.raises(EDVRError, match="shorter"):
        generate_frame_indices(0, 7, 5)
    with pytest.raises(EDVRError, match="padding"):
        generate_frame_indices(0, 5, 10, "zeros")


def test_eight_distinct_augmentations_applied_identically():
    img = np.arange(4 * 4 * 3, dtype=np.float32).reshape(4, 4, 3)
    variants = dihedral_variants(img)
    assert len(variants) == 8
    assert len({v.tobytes() for _, v in variants}) == 8
    assert variants[0][0] == "identity" and np.array_equal(variants[0][1], img)
    # one random draw: LQ frames and GT get the same transform
    random.seed(3)
    a, b = augment([img, img.copy()])
    assert np.array_equal(a, b)
    assert any(np.array_equal(a, v) for _, v in variants)
    # without hflip/rot nothing changes
    assert np.array_equal(augment(img, hflip=False, rotation=False), img)


def test_paired_random_crop_keeps_gt_and_lq_aligned():
    rng = np.random.default_rng(0)
    lq = rng.random((10, 12, 3)).astype(np.float32)
    gt = np.kron(lq, np.ones((4, 4, 1), np.float32))  # GT pixel block = its LQ pixel
    random.seed(1)
    for _ in range(5):
        g, (l1, l2) = paired_random_crop(gt, [lq, lq], 16, 4)
        assert g.shape == (16, 16, 3) and l1.shape == (4, 4, 3)
        np.testing.assert_array_equal(g, np.kron(l1, np.ones((4, 4, 1))))
        np.testing.assert_array_equal(l1, l2)
    with pytest.raises(EDVRError, match="smaller than the patch"):
        paired_random_crop(gt, lq, 64, 4)
    with pytest.raises(EDVRError, match="not 4x"):
        paired_random_crop(gt[:-1], lq, 16, 4, gt_path="x/00000000")


def test_frames_to_tensor_layout():
    frames = [np.full((2, 3, 3), i, np.float32) for i in range(4)]
    t = frames_to_tensor(frames)
    assert tuple(t.shape) == (4, 3, 2, 3) and float(t[2, 1, 0, 0]) == 2.0
