"""Motion-rich training windows with their true optical flow, rendered from training frames.

Each sample crops a random frame of a *training* clip (those of the meta info file, never held-out material) and
renders a ``t``-frame window of it under a random, known camera motion: a per-frame translation of up to
``max_shift`` LR pixels (never a whole number of LR pixels, which adds no sub-pixel information), sometimes a small
rotation and zoom, sometimes none, sometimes with an independently moving foreground patch (occlusion). Frames are
rendered at twice the GT resolution, reduced with MATLAB bicubic to GT and then to LR, as the embedded set's
synthetic clips. A fraction ``bbb_mix`` are plain windows of real frames, whose flow is unknown (zeros).

No flip / rotation augmentation (the motion direction is already random). Randomness comes from Python's
``random`` only (seeded per sample by :class:`edvr_lib.train.data.SeededDataset`), so a resumed run sees the same
samples. About 13 samples/s on one CPU core (gt_size 128, num_frame 5).
"""
from __future__ import annotations

import math
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from edvr_lib.data.corruption import FRAME_FAULTS, spoil_neighbour
from edvr_lib.data.embedded import _affine, affine_flow
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import png_header, read_image_uint8, read_meta_info, to_uint8
from edvr_lib.utils import EDVRError

__all__ = ["MotionWindowDataset", "draw_motion", "render_motion_window"]

_SS = 2  # supersampling factor of the rendering
_MIN_FRAC = 0.1  # a neighbour's shift must stay this far (LR px) from the integer lattice
_MAX_DEG = 1.0  # rotation per frame, degrees
_MAX_LOG_ZOOM = 0.01  # log-zoom per frame


def _off_lattice(v: np.ndarray) -> bool:
    """True when the 2-vector ``v`` (LR px) is at least ``_MIN_FRAC`` away from every integer point."""
    return float(np.max(np.abs(v - np.round(v)))) >= _MIN_FRAC


def _random_shift(max_shift: float, half: int, min_mag: float = 0.0) -> np.ndarray:
    """A per-frame ``[dy, dx]`` (LR px) of magnitude in ``[min_mag, max_shift]``, random direction, such that no
    neighbour's total shift ``s * d`` (``1 <= |s| <= half``) is an integer number of LR pixels."""
    while True:
        mag, ang = random.uniform(min_mag, max_shift), random.uniform(0.0, 2 * math.pi)
        d = mag * np.array([math.sin(ang), math.cos(ang)])
        if all(_off_lattice(s * d) for s in range(1, half + 1)):
            return d


def draw_motion(num_frame: int, max_shift: float = 4.0, static_prob: float = 0.1,
                affine_prob: float = 0.3, min_shift: float = 0.0) -> dict:
    """One random camera motion (Python's ``random``): a translation of ``min_shift`` to ``max_shift`` LR px per
    frame, sometimes with a small rotation and zoom, or none (``static_prob``).

    Returns:
        ``dict(kind='static'|'translate'|'affine', shift_lr=[dy, dx] (LR px), deg, log_zoom)``, all per frame.
    """
    if random.random() < static_prob:
        return {"kind": "static", "shift_lr": np.zeros(2), "deg": 0.0, "log_zoom": 0.0}
    d = _random_shift(max_shift, num_frame // 2, min_mag=min_shift)
    if random.random() < affine_prob:
        return {"kind": "affine", "shift_lr": d, "deg": random.uniform(-_MAX_DEG, _MAX_DEG),
                "log_zoom": random.uniform(-_MAX_LOG_ZOOM, _MAX_LOG_ZOOM)}
    return {"kind": "translate", "shift_lr": d, "deg": 0.0, "log_zoom": 0.0}


def _warp(src: np.ndarray, a: np.ndarray, b: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Render the frame of GT size ``out_hw`` that sees ``src`` through ``q = a p + b`` (GT continuous ``[y, x]``
    -> source continuous ``[y, x]``), at ``_SS`` x supersampling, bicubic; float32 ``(SS h, SS w, 3)``."""
    import cv2

    m, t = a / _SS, a @ np.full(2, 0.5 / _SS) + b - 0.5  # hi-res pixel j: GT centre (j + 0.5) / SS; index q - 0.5
    mat = np.array([[m[1, 1], m[1, 0], t[1]], [m[0, 1], m[0, 0], t[0]]], np.float64)  # yx -> cv2's xy
    return cv2.warpAffine(src, mat, (out_hw[1] * _SS, out_hw[0] * _SS),
                          flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101)


def _in_box(p: np.ndarray, top_left: np.ndarray, size: np.ndarray, margin: float) -> np.ndarray:
    """Mask of the points ``p`` (..., 2) inside the box ``[top_left - margin, top_left + size + margin)``."""
    return np.all((p >= top_left - margin) & (p < top_left + size + margin), axis=-1)


#: faults of the spoilt neighbour (edvr_lib.data.corruption)
SPOIL_KINDS = tuple(k for k in FRAME_FAULTS if k != "blur")  # noise, occlusion, unrelated frame


class MotionWindowDataset(Dataset):
    """Windows of a training frame under a random known motion, with the true flow of every frame.

    Args:
        dataroot_gt: GT folder of clip folders (``GT/<clip>/<frame>.png``).
        meta_info_file: the *training* clips (required: a folder scan would also find held-out clips).
        num_frame: odd window length ``t``.
        gt_size, scale: GT patch side ``H = W`` (LR ``h = gt_size // scale``).
        max_shift, min_shift: largest and smallest translation per frame of a moving window, LR pixels.
        static_prob, affine_prob, occlusion_prob: probabilities of no motion, of a small rotation and zoom, and of
            an independently moving foreground patch.
        bbb_mix: fraction of plain windows of real frames (clips not named ``syn_*``), flow unknown (zeros).
        interval_list: frame spacings for the real windows.
        length: samples per epoch (every sample is drawn at random).
        spoil_prob: fraction of windows with one neighbour spoilt by one of ``spoil_kinds``
            (:func:`~edvr_lib.data.corruption.spoil_neighbour`), its ``flow_valid`` 0; ``'spoilt_idx'`` (-1: none).

    Items:
        ``{'lq': (t, 3, h, w), 'gt': (3, H, W)`` (centre frame), ``'key': str, 'flow': (t, 2, h, w)`` float32
        (dy, dx) LR pixels: centre-frame pixel ``p`` is found in frame ``i`` at ``p + flow[i]``,
        ``'flow_valid': (t, 1, h, w)`` 0 where the flow is unknown (occluded, leaving the view)}; RGB in [0, 1].
    """

    def __init__(self, dataroot_gt: str | os.PathLike, meta_info_file: str | os.PathLike, num_frame: int = 5,
                 gt_size: int = 128, scale: int = 4, max_shift: float = 4.0, static_prob: float = 0.1,
                 affine_prob: float = 0.3, occlusion_prob: float = 0.2, bbb_mix: float = 0.0,
                 interval_list=(1,), length: int = 1000, spoil_prob: float = 0.0,
                 spoil_kinds: tuple[str, ...] = SPOIL_KINDS, min_shift: float = 0.0):
        if num_frame < 1 or num_frame % 2 == 0:
            raise EDVRError(f"num_frame must be odd, got {num_frame}")
        if gt_size % scale:
            raise EDVRError(f"gt_size {gt_size} must be a multiple of scale {scale}")
        if meta_info_file is None:
            raise EDVRError("MotionWindowDataset needs meta_info_file (the training clips): scanning the GT folder "
                            "would also use held-out clips. Fix: pass meta_info_embedded_train_GT.txt or REDS's.")
        for name, v in (("static_prob", static_prob), ("affine_prob", affine_prob),
                        ("occlusion_prob", occlusion_prob), ("bbb_mix", bbb_mix), ("spoil_prob", spoil_prob)):
            if not 0.0 <= v <= 1.0:
                raise EDVRError(f"{name} must be in [0, 1], got {v}")
        if max_shift <= _MIN_FRAC:
            raise EDVRError(f"max_shift must be > {_MIN_FRAC} LR px, got {max_shift}")
        if not 0.0 <= min_shift < max_shift:
            raise EDVRError(f"min_shift must be in [0, max_shift={max_shift}), got {min_shift}")
        self.root = Path(dataroot_gt)
        if not self.root.is_dir():
            raise EDVRError(f"GT folder not found: {self.root}. Fix: check dataroot_gt.")
        self.num_frame, self.gt_size, self.scale = num_frame, gt_size, scale
        self.max_shift, self.min_shift = float(max_shift), float(min_shift)
        self.static_prob, self.affine_prob, self.occlusion_prob = static_prob, affine_prob, occlusion_prob
        self.bbb_mix, self.length = bbb_mix, int(length)
        self.spoil_prob, self.spoil_kinds = spoil_prob, tuple(spoil_kinds)
        unknown = [k for k in self.spoil_kinds if k not in FRAME_FAULTS]
        if unknown or not self.spoil_kinds:
            raise EDVRError(f"spoil_kinds {list(spoil_kinds)} must be a non-empty list of {list(FRAME_FAULTS)}")
        self.interval_list = [int(i) for i in interval_list]
        self.clips = []  # (name, num_frames)
        for clip, n, _ in read_meta_info(meta_info_file):
            head = png_header(self._path(clip, 0))
            h, w = head["height"], head["width"]
            if min(h, w) < gt_size:
                raise EDVRError(f"clip {clip!r} has {w}x{h} frames, smaller than gt_size={gt_size}. Fix: use a "
                                f"smaller gt_size (at most {min(h, w)}) or leave the clip out of the meta file.")
            self.clips.append((clip, n))
        self.real = [(c, n) for c, n in self.clips if not c.startswith("syn_")
                     and (num_frame - 1) * min(self.interval_list) + 1 <= n] or None
        if bbb_mix > 0 and self.real is None:
            raise EDVRError(f"bbb_mix={bbb_mix} but no real clip (not named syn_*) with {num_frame} frames in "
                            f"{meta_info_file}")

    def _path(self, clip: str, idx: int) -> Path:
        return self.root / clip / f"{idx:08d}.png"

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, item: int) -> dict:
        sample = self._real_window() if self.bbb_mix > 0 and random.random() < self.bbb_mix else self.motion_window()
        sample["spoilt_idx"] = -1
        if self.spoil_prob > 0 and random.random() < self.spoil_prob:
            # unequal frames for TSA: one neighbour spoilt; its flow no longer describes its pixels
            rng = np.random.default_rng(random.getrandbits(32))
            sample["lq"], idx = spoil_neighbour(sample["lq"], rng, self.spoil_kinds, strength=0.3)
            sample["flow_valid"][idx] = 0
            sample["spoilt_idx"] = idx
        return sample

    # ------------------------------------------------------------------------------------------- real windows
    def _real_window(self) -> dict:
        clip, n = random.choice(self.real)
        t, half, size = self.num_frame, self.num_frame // 2, self.gt_size
        interval = random.choice([i for i in self.interval_list if (t - 1) * i + 1 <= n])
        center = random.randint(half * interval, n - 1 - half * interval)
        frames = [read_image_uint8(self._path(clip, center + (i - half) * interval)) for i in range(t)]
        h, w = frames[0].shape[:2]
        top = random.randint(0, (h - size) // self.scale) * self.scale
        left = random.randint(0, (w - size) // self.scale) * self.scale
        gts = [f[top:top + size, left:left + size] for f in frames]
        lq = np.stack([imresize(g, 1.0 / self.scale) for g in gts]).astype(np.float32) / 255.0
        hw = size // self.scale
        return {"lq": torch.from_numpy(lq.transpose(0, 3, 1, 2).copy()),
                "gt": torch.from_numpy(gts[half].astype(np.float32).transpose(2, 0, 1) / 255.0),
                "key": f"{clip}/{center:08d}/real", "flow": torch.zeros(t, 2, hw, hw),
                "flow_valid": torch.zeros(t, 1, hw, hw)}

    # ----------------------------------------------------------------------------------------- motion windows
    def motion_window(self) -> dict:
        """One rendered window with known motion (never a real window, never spoilt)."""
        clip, n = random.choice(self.clips)
        idx = random.randrange(n)
        src = read_image_uint8(self._path(clip, idx)).astype(np.float32) / 255.0
        sample = render_motion_window(src, self.num_frame, self.gt_size, self.scale, self.max_shift,
                                      self.static_prob, self.affine_prob, self.occlusion_prob, self.min_shift)
        sample["key"] = f"{clip}/{idx:08d}/{sample['key']}"
        return sample


def render_motion_window(src: np.ndarray, num_frame: int = 5, gt_size: int = 128, scale: int = 4,
                         max_shift: float = 4.0, static_prob: float = 0.1, affine_prob: float = 0.3,
                         occlusion_prob: float = 0.2, min_shift: float = 0.0) -> dict:
    """One window of ``src`` under a random known motion (Python's ``random``), as :class:`MotionWindowDataset`
    renders its samples (also for held-out material: :mod:`edvr_lib.tutorial.checkpoint_report`).

    Args:
        src: ``(H_src, W_src, 3)`` float32 RGB in [0, 1], at least ``gt_size`` on each side.
        num_frame, gt_size, scale, max_shift, static_prob, affine_prob, occlusion_prob, min_shift: as
            :class:`MotionWindowDataset`.

    Returns:
        ``{'lq', 'gt', 'flow', 'flow_valid'}`` as the dataset's items, and ``'key'``: the kind of motion.
    """
    t, half, size, sc, frame_hw = num_frame, num_frame // 2, gt_size, scale, (gt_size, gt_size)
    sh, sw = src.shape[:2]
    centre = np.array([random.uniform(size / 2, sh - size / 2), random.uniform(size / 2, sw - size / 2)])
    motion = draw_motion(t, max_shift, static_prob, affine_prob, min_shift)
    maps = []
    for i in range(t):
        s = i - half
        p = {"shift_yx": list(s * sc * motion["shift_lr"]), "angle_deg": s * motion["deg"],
             "zoom": math.exp(s * motion["log_zoom"])}
        maps.append(_affine(p, 1.0, tuple(2 * centre), frame_hw))  # centre frame = crop around `centre`

    # LR pixel centres in GT continuous coordinates, and the background flow
    hw = size // sc
    pts = np.stack(np.meshgrid((np.arange(hw) + 0.5) * sc, (np.arange(hw) + 0.5) * sc, indexing="ij"), -1)
    flow = np.stack([affine_flow(pts, maps[half], maps[i], sc) for i in range(t)])  # (t, 2, h, w)
    p_nbr = pts[None] + flow.transpose(0, 2, 3, 1) * sc  # (t, h, w, 2) where p lies in frame i (GT coords)
    valid = np.all((p_nbr >= sc / 2) & (p_nbr <= size - sc / 2), axis=-1)  # stays in view (LR pixel centres)

    occ = None
    if random.random() < occlusion_prob:
        psize = np.array([random.randint(size // 4, size // 2), random.randint(size // 4, size // 2)], float)
        src0 = np.array([random.uniform(0, sh - psize[0]), random.uniform(0, sw - psize[1])])
        pos0 = np.array([random.uniform(0, size - psize[0]), random.uniform(0, size - psize[1])])
        vel = _random_shift(max_shift, half, min_mag=0.5) * sc  # GT px per frame, own motion
        occ = (psize, src0, pos0, vel)
        margin = 1.5 * sc  # cubic support + a pixel
        in_centre = _in_box(pts, pos0, psize, margin)
        for i in range(t):
            covered = _in_box(p_nbr[i], pos0 + (i - half) * vel, psize, margin)
            valid[i] &= ~(covered | in_centre)
    valid[half], flow[half] = True, 0.0  # the centre frame's flow (0) is known everywhere

    gts, lqs = [], []
    if occ is not None:
        jy = (np.arange(size * _SS) + 0.5) / _SS  # GT coordinates of the rendering's pixel centres
        hi_pts = np.stack(np.meshgrid(jy, jy, indexing="ij"), -1)
    for i, (a, b) in enumerate(maps):
        hi = _warp(src, a, b, frame_hw)
        if occ is not None:
            psize, src0, pos0, vel = occ
            pos = pos0 + (i - half) * vel
            patch = _warp(src, np.eye(2), src0 - pos, frame_hw)  # frame point p shows source p - pos + src0
            inside = _in_box(hi_pts, pos, psize, 0.0)
            hi = np.where(inside[..., None], patch, hi)
        gts.append(to_uint8(imresize(hi.astype(np.float64), 1.0 / _SS)))
        lqs.append(imresize(gts[-1], 1.0 / sc))
    lq = np.stack(lqs).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    key = motion["kind"] + ("+occlusion" if occ is not None else "")
    return {"lq": torch.from_numpy(np.ascontiguousarray(lq)),
            "gt": torch.from_numpy(gts[half].astype(np.float32).transpose(2, 0, 1) / 255.0),
            "key": key, "flow": torch.from_numpy(flow.astype(np.float32)),
            "flow_valid": torch.from_numpy(valid[:, None].astype(np.float32))}
