"""Vimeo-90K septuplets (TOFlow): 7-frame 448x256 sequences, the GT is the middle frame ``im4``.

Layout: ``vimeo_septuplet/sequences/<00001>/<0001>/im1.png ... im7.png`` (GT) and
``vimeo_septuplet_matlabLRx4/sequences/...`` (LQ, MATLAB bicubic x4); meta lines
``"00001/0001 7 (256,448,3)"`` (``meta_info_Vimeo90K_train_GT.txt`` / ``_test_GT.txt``).
"""
from __future__ import annotations

import os
import random
from pathlib import Path

from torch.utils.data import Dataset

from edvr_lib.data.frame_store import make_store, read_pair
from edvr_lib.data.io import read_meta_info
from edvr_lib.data.transforms import augment, frames_to_tensor, image_to_tensor, paired_random_crop
from edvr_lib.utils import EDVRError

__all__ = ["Vimeo90KDataset", "vimeo_neighbor_list"]


def vimeo_neighbor_list(num_frame: int) -> list[int]:
    """Frame numbers (1..7) of the ``num_frame`` LQ inputs centred on ``im4``: 7 -> 1..7, 5 -> 2..6."""
    if num_frame not in (1, 3, 5, 7):
        raise EDVRError(f"Vimeo-90K septuplets allow num_frame 1, 3, 5 or 7, got {num_frame}")
    return [i + (9 - num_frame) // 2 for i in range(num_frame)]


class Vimeo90KDataset(Dataset):
    """Vimeo-90K septuplet pairs: ``num_frame`` LQ frames around ``im4`` and the GT ``im4``.

    Args:
        dataroot_gt: ``vimeo_septuplet/sequences`` (or an LMDB with keys ``00001/0001/im4``).
        dataroot_lq: ``vimeo_septuplet_matlabLRx4/sequences`` (or an LMDB with ``.../im1`` ... ``im7``).
        meta_info_file: lines ``"00001/0001 7 (256,448,3)"``; ``None`` scans ``dataroot_gt`` for
            ``<seq>/<sub>/im4.png``.
        num_frame: 7 (im1..im7) or 5 (im2..im6) (3 and 1 also work).
        gt_size: GT patch side; ``None`` for whole frames (Vimeo-90K-T testing).
        random_reverse: reverse the frame order with p=0.5 (drawn per sample).
        use_hflip, use_rot: random horizontal flip; vertical flip and transpose.
        scale, io_backend: up-sampling factor; ``'disk'`` or ``'lmdb'``.

    Items: ``{'lq': (t, 3, h, w), 'gt': (3, scale h, scale w), 'key': '00001/0001'}``.
    For Vimeo-90K-T use ``gt_size=None, use_hflip=False, use_rot=False``.
    """

    def __init__(self, dataroot_gt: str | os.PathLike, dataroot_lq: str | os.PathLike,
                 meta_info_file: str | os.PathLike | None = None, num_frame: int = 7, gt_size: int | None = 256,
                 random_reverse: bool = False, use_hflip: bool = True, use_rot: bool = True, scale: int = 4,
                 io_backend: str = "disk"):
        self.neighbor_list = vimeo_neighbor_list(num_frame)
        self.num_frame, self.gt_size, self.scale = num_frame, gt_size, scale
        self.random_reverse, self.use_hflip, self.use_rot = random_reverse, use_hflip, use_rot
        self.gt_store = make_store(dataroot_gt, io_backend, "GT")
        self.lq_store = make_store(dataroot_lq, io_backend, "LQ")
        if meta_info_file is not None:
            self.keys = [m[0] for m in read_meta_info(meta_info_file)]
        elif io_backend == "disk":
            root = Path(dataroot_gt)
            self.keys = sorted(p.parent.relative_to(root).as_posix() for p in root.glob("*/*/im4.png"))
        else:
            self.keys = sorted({k.rsplit("/", 1)[0] for k in self.gt_store.meta})
        if not self.keys:
            raise EDVRError(f"no Vimeo-90K sequences found under {dataroot_gt} (expected <seq>/<sub>/im4.png). "
                            "Fix: point dataroot_gt at vimeo_septuplet/sequences.")
        if io_backend == "disk":
            first = self.keys[0]
            for p in [self.gt_store.path(f"{first}/im4")] + [self.lq_store.path(f"{first}/im{i}")
                                                              for i in self.neighbor_list]:
                if not p.is_file():
                    raise EDVRError(f"missing frame {p}. Fix: check dataroot_gt / dataroot_lq point at the "
                                    "'sequences' folders of vimeo_septuplet and vimeo_septuplet_matlabLRx4.")

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, item: int) -> dict:
        key = self.keys[item]
        order = list(self.neighbor_list)
        if self.random_reverse and random.random() < 0.5:
            order.reverse()
        img_gt, img_lqs = read_pair(self.gt_store, self.lq_store, f"{key}/im4", [f"{key}/im{i}" for i in order],
                                    self.scale)
        if self.gt_size is not None:
            img_gt, img_lqs = paired_random_crop(img_gt, img_lqs, self.gt_size, self.scale, key)
        imgs = augment(img_lqs + [img_gt], self.use_hflip, self.use_rot)
        return {"lq": frames_to_tensor(imgs[:-1]), "gt": image_to_tensor(imgs[-1]), "key": key}
