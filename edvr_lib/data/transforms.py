"""Frame windows, paired crops and the 8 dihedral augmentations (BasicSR semantics).

Images here are numpy ``(h, w, 3)`` RGB float32 in [0, 1] until :func:`frames_to_tensor`.
"""
from __future__ import annotations

import itertools
import random

import numpy as np
import torch

from edvr_lib.utils import EDVRError

__all__ = ["PADDINGS", "generate_frame_indices", "paired_random_crop", "augment", "dihedral_variants",
           "frames_to_tensor", "image_to_tensor"]

PADDINGS = ("replicate", "reflection", "reflection_circle", "circle")


def generate_frame_indices(center_idx: int, num_frame: int, num_total: int,
                           padding: str = "reflection_circle") -> list[int]:
    """Indices of the ``num_frame`` frames around ``center_idx`` in a clip of ``num_total``.

    Positions outside ``[0, num_total)`` become: ``replicate`` the nearest border frame; ``reflection`` mirrored at
    the border; ``reflection_circle`` (EDVR's SR test configs) mirrored about the *window*, for centre 0 and 5
    frames ``[4, 3, 0, 1, 2]``; ``circle`` wrapped around the clip.

    Args:
        center_idx: index of the centre frame, ``0 <= center_idx < num_total``.
        num_frame, num_total: odd window length; frames in the clip (``>= num_frame``).
        padding: one of :data:`PADDINGS`.

    Returns:
        ``num_frame`` indices, all in ``[0, num_total)``; the middle one is ``center_idx``.
    """
    if num_frame % 2 != 1 or num_frame < 1:
        raise EDVRError(f"num_frame must be odd and positive, got {num_frame}")
    if padding not in PADDINGS:
        raise EDVRError(f"unknown padding {padding!r}; choose one of {', '.join(PADDINGS)}")
    if num_total < num_frame:
        raise EDVRError(f"a clip of {num_total} frames is shorter than num_frame={num_frame}; "
                        "use a smaller num_frame or a longer clip")
    if not 0 <= center_idx < num_total:
        raise EDVRError(f"center_idx {center_idx} outside the clip's frames 0..{num_total - 1}")
    max_idx, half, out = num_total - 1, num_frame // 2, []
    for i in range(center_idx - half, center_idx + half + 1):
        if i < 0:
            j = {"replicate": 0, "reflection": -i, "reflection_circle": center_idx + half - i,
                 "circle": num_total + i}[padding]
        elif i > max_idx:
            j = {"replicate": max_idx, "reflection": 2 * max_idx - i,
                 "reflection_circle": center_idx - half - (i - max_idx), "circle": i - num_total}[padding]
        else:
            j = i
        out.append(j)
    return out


def paired_random_crop(img_gts: np.ndarray | list[np.ndarray], img_lqs: np.ndarray | list[np.ndarray],
                       gt_patch_size: int, scale: int, gt_path: str = "", rng: random.Random | None = None):
    """Crop the same region from GT frames and LQ frames (the LQ patch is ``gt_patch_size // scale``).

    Args:
        img_gts, img_lqs: one ``(H, W, 3)`` GT frame or a list; one ``(h, w, 3)`` LQ frame or a list (``H = scale h``).
        gt_patch_size, scale: GT patch side (e.g. 256; LQ patch 64 for x4); up-sampling factor.
        gt_path: shown in error messages.
        rng: random source (defaults to Python's ``random`` module, seeded per DataLoader worker).

    Returns:
        ``(gt_patches, lq_patches)`` in the same single/list form as the inputs.
    """
    rng = rng or random
    single_gt, single_lq = not isinstance(img_gts, list), not isinstance(img_lqs, list)
    gts = [img_gts] if single_gt else img_gts
    lqs = [img_lqs] if single_lq else img_lqs
    (h_lq, w_lq), (h_gt, w_gt) = lqs[0].shape[:2], gts[0].shape[:2]
    if gt_patch_size % scale:
        raise EDVRError(f"gt_size {gt_patch_size} must be a multiple of scale {scale}")
    lq_patch = gt_patch_size // scale
    if (h_gt, w_gt) != (h_lq * scale, w_lq * scale):
        raise EDVRError(f"GT {w_gt}x{h_gt} is not {scale}x the LQ {w_lq}x{h_lq} ({gt_path}). "
                        "Fix: regenerate LR frames (`edvr prepare-reds --regenerate-lr`) or crop GT to a "
                        f"multiple of {scale}.")
    if h_lq < lq_patch or w_lq < lq_patch:
        raise EDVRError(f"LQ frame {w_lq}x{h_lq} is smaller than the patch {lq_patch}x{lq_patch} "
                        f"(gt_size={gt_patch_size}) for {gt_path}. Fix: use a smaller gt_size.")
    top, left = rng.randint(0, h_lq - lq_patch), rng.randint(0, w_lq - lq_patch)
    lqs = [v[top:top + lq_patch, left:left + lq_patch] for v in lqs]
    t, l_ = top * scale, left * scale
    gts = [v[t:t + gt_patch_size, l_:l_ + gt_patch_size] for v in gts]
    return (gts[0] if single_gt else gts), (lqs[0] if single_lq else lqs)


def _dihedral(img: np.ndarray, hflip: bool, vflip: bool, transpose: bool) -> np.ndarray:
    if hflip:
        img = img[:, ::-1]
    if vflip:
        img = img[::-1]
    if transpose:
        img = img.transpose(1, 0, 2)
    return img


def augment(imgs: np.ndarray | list[np.ndarray], hflip: bool = True, rotation: bool = True,
            rng: random.Random | None = None, flags: tuple[bool, bool, bool] | None = None):
    """Apply one random dihedral transform identically to every image.

    Horizontal flip (p=0.5, with ``hflip``), vertical flip and H/W transpose (p=0.5 each, with ``rotation``):
    together the 8 symmetries of the square.

    Args:
        imgs: one ``(h, w, c)`` image or a list (LQ frames and GT together).
        hflip, rotation: allow horizontal flips; vertical flips and transposes.
        rng: random source (defaults to the ``random`` module).
        flags: force ``(hflip, vflip, transpose)`` instead of drawing them.

    Returns:
        The transformed image(s) (contiguous copies), same single/list form.
    """
    rng = rng or random
    if flags is None:
        flags = (hflip and rng.random() < 0.5, rotation and rng.random() < 0.5, rotation and rng.random() < 0.5)
    single = not isinstance(imgs, list)
    out = [np.ascontiguousarray(_dihedral(v, *flags)) for v in ([imgs] if single else imgs)]
    return out[0] if single else out


def dihedral_variants(img: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """All 8 outputs :func:`augment` can produce, labelled (for figures and tests)."""
    return [("+".join(n for n, on in zip(("hflip", "vflip", "transpose"), flags) if on) or "identity",
             augment(img, flags=flags)) for flags in itertools.product((False, True), repeat=3)]


def image_to_tensor(img: np.ndarray) -> torch.Tensor:
    """``(h, w, 3)`` float32 RGB -> ``(3, h, w)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def frames_to_tensor(imgs: list[np.ndarray]) -> torch.Tensor:
    """List of ``t`` frames ``(h, w, 3)`` -> ``(t, 3, h, w)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(np.stack(imgs, 0).transpose(0, 3, 1, 2)))
