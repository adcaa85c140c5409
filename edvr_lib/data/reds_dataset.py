"""REDS training dataset (also used for the embedded set): ``num_frame`` LQ frames around a centre and its GT frame,
randomly cropped and augmented with one of the 8 flips / rotations, identically for every frame (BasicSR recipe)."""
from __future__ import annotations

import os
import random

from torch.utils.data import Dataset

from edvr_lib.data.frame_store import check_pair_sizes, open_clip_stores, read_pair, scan_clips
from edvr_lib.data.transforms import augment, frames_to_tensor, image_to_tensor, paired_random_crop
from edvr_lib.utils import EDVRError

__all__ = ["REDSDataset", "REDS4_CLIPS", "REDS_OFFICIAL_VAL_CLIPS", "val_partition_clips"]

REDS4_CLIPS = ("000", "011", "015", "020")
REDS_OFFICIAL_VAL_CLIPS = tuple(f"{v:03d}" for v in range(240, 270))


def val_partition_clips(val_partition: str | None) -> tuple[str, ...]:
    """Clips held out for validation: ``'REDS4'`` (000, 011, 015, 020), ``'official'`` (240-269) or none."""
    if val_partition is None:
        return ()
    if val_partition == "REDS4":
        return REDS4_CLIPS
    if val_partition == "official":
        return REDS_OFFICIAL_VAL_CLIPS
    raise EDVRError(f"val_partition must be 'REDS4', 'official' or None, got {val_partition!r}")


class REDSDataset(Dataset):
    """REDS-layout training pairs: ``GT/<clip>/<frame>.png`` and ``LQ/<clip>/<frame>.png``.

    Args:
        dataroot_gt, dataroot_lq: GT (``REDS/train_sharp``) and LQ (``REDS/train_sharp_bicubic``, with or without
            ``X4``) folders or LMDBs.
        meta_info_file: BasicSR meta file (``"<clip> <num_frames> (<h>,<w>,<c>)"`` per line);
            ``None`` uses every clip folder in ``dataroot_gt`` (or every clip in the LMDB).
        val_partition: clips to leave out: ``'REDS4'``, ``'official'`` or ``None``.
        num_frame: odd number of input frames ``t``.
        gt_size: GT patch side (LQ patch ``gt_size // scale``); ``None`` returns whole frames.
        interval_list: frame spacings to draw from at random (``(1,)``: consecutive frames).
        random_reverse: reverse the window's frame order with p=0.5.
        use_hflip, use_rot: random horizontal flip; vertical flip and transpose (together the 8 dihedral variants).
        scale, io_backend: up-sampling factor; ``'disk'`` (PNG folders) or ``'lmdb'``.

    Windows crossing the clip's ends get a new random centre (as in BasicSR). Items: ``{'lq': (t, 3, h, w),
    'gt': (3, scale h, scale w), 'key': 'clip/frame'}``, float32 RGB in [0, 1]; randomness from Python's ``random``.
    """

    def __init__(self, dataroot_gt: str | os.PathLike, dataroot_lq: str | os.PathLike,
                 meta_info_file: str | os.PathLike | None = None, val_partition: str | None = "REDS4",
                 num_frame: int = 5, gt_size: int | None = 256, interval_list=(1,), random_reverse: bool = False,
                 use_hflip: bool = True, use_rot: bool = True, scale: int = 4, io_backend: str = "disk"):
        if num_frame < 1 or num_frame % 2 == 0:
            raise EDVRError(f"num_frame must be odd (the centre frame plus as many on each side), got {num_frame}")
        if not interval_list or any(int(i) < 1 for i in interval_list):
            raise EDVRError(f"interval_list must hold positive integers, got {interval_list!r}")
        if gt_size is not None and gt_size % scale:
            raise EDVRError(f"gt_size {gt_size} must be a multiple of scale {scale}")
        self.num_frame, self.gt_size, self.scale = num_frame, gt_size, scale
        self.interval_list = [int(i) for i in interval_list]
        self.random_reverse, self.use_hflip, self.use_rot = random_reverse, use_hflip, use_rot
        self.gt_store, self.lq_store, names, expected = open_clip_stores(dataroot_gt, dataroot_lq, io_backend,
                                                                         scale, meta_info_file)
        if not names:
            raise EDVRError(f"no clip folders in {dataroot_gt}. Fix: point dataroot_gt at a folder of clip "
                                "folders (REDS layout GT/<clip>/<frame>.png).")
        held_out = set(val_partition_clips(val_partition))
        names = [n for n in names if n not in held_out]
        if not names:
            raise EDVRError(f"no training clips left after removing val_partition={val_partition!r}.")
        self.clips = scan_clips(self.gt_store, self.lq_store, names, expected, min_frames=num_frame)
        self.intervals = {}
        for clip in self.clips:
            check_pair_sizes(self.gt_store, self.lq_store, clip.key(0), scale)
            fits = [i for i in self.interval_list if (num_frame - 1) * i + 1 <= clip.num_frames]
            if not fits:
                raise EDVRError(f"clip {clip.name!r} has {clip.num_frames} frames: too short for num_frame={num_frame} "
                                f"with any interval in {self.interval_list}. Fix: use smaller intervals.")
            self.intervals[clip.name] = fits
        self.index = [(c, i) for c in self.clips for i in range(c.num_frames)]
        self.keys = [c.key(i) for c, i in self.index]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        clip, center = self.index[item]
        n, half = clip.num_frames, self.num_frame // 2
        interval = random.choice(self.intervals[clip.name])
        # windows that cross the clip's ends get a new random centre (BasicSR)
        while center - half * interval < 0 or center + half * interval > n - 1:
            center = random.randint(0, n - 1)
        idxs = list(range(center - half * interval, center + half * interval + 1, interval))
        if self.random_reverse and random.random() < 0.5:
            idxs.reverse()
        gt_key = clip.key(center)
        img_gt, img_lqs = read_pair(self.gt_store, self.lq_store, gt_key, [clip.key(i) for i in idxs], self.scale)
        if self.gt_size is not None:
            img_gt, img_lqs = paired_random_crop(img_gt, img_lqs, self.gt_size, self.scale, gt_key)
        imgs = augment(img_lqs + [img_gt], self.use_hflip, self.use_rot)
        return {"lq": frames_to_tensor(imgs[:-1]), "gt": image_to_tensor(imgs[-1]), "key": gt_key}
