"""Video test set: every frame of every clip is a centre (REDS4, Vid4, embedded test clips), windows filled at the
ends by :func:`~edvr_lib.data.transforms.generate_frame_indices`; Vimeo-90K-T uses ``Vimeo90KDataset``."""
from __future__ import annotations

import os

from torch.utils.data import Dataset

from edvr_lib.data.frame_store import check_pair_sizes, open_clip_stores, read_pair, scan_clips
from edvr_lib.data.transforms import PADDINGS, frames_to_tensor, generate_frame_indices, image_to_tensor
from edvr_lib.utils import EDVRError

__all__ = ["VideoTestDataset"]


class VideoTestDataset(Dataset):
    """Whole LQ windows and GT frames, one item per frame, clip by clip, in order.

    Args:
        dataroot_gt, dataroot_lq: GT and LQ folders of clip folders (``REDS/train_sharp``, ``Vid4/GT``, embedded
            ``GT``; ``REDS/train_sharp_bicubic`` with or without ``X4``, ``Vid4/BIx4``).
        meta_info_file: BasicSR meta file listing the clips (``meta_info_REDS4_test_GT.txt``); ``None``
            uses every clip folder in ``dataroot_gt`` (Vid4 has no meta file).
        num_frame: odd window length ``t``.
        padding: ``'reflection_circle'`` or ``'replicate'`` (also ``'reflection'``, ``'circle'``).
        clips: optional subset of clip names, kept in this order.
        scale, io_backend: up-sampling factor; ``'disk'`` or ``'lmdb'``.

    Items: ``{'lq': (t, 3, h, w), 'gt': (3, scale h, scale w), 'clip': str, 'frame_idx': int,
    'key': 'clip/frame'}``, float32 RGB in [0, 1]. Frames are sorted by file name.
    """

    def __init__(self, dataroot_gt: str | os.PathLike, dataroot_lq: str | os.PathLike,
                 meta_info_file: str | os.PathLike | None = None, num_frame: int = 5,
                 padding: str = "reflection_circle", clips: list[str] | None = None, scale: int = 4,
                 io_backend: str = "disk"):
        if num_frame < 1 or num_frame % 2 == 0:
            raise EDVRError(f"num_frame must be odd, got {num_frame}")
        if padding not in PADDINGS:
            raise EDVRError(f"padding must be one of {', '.join(PADDINGS)}, got {padding!r}")
        self.num_frame, self.padding, self.scale = num_frame, padding, scale
        self.gt_store, self.lq_store, names, expected = open_clip_stores(dataroot_gt, dataroot_lq, io_backend,
                                                                         scale, meta_info_file)
        if clips is not None:
            unknown = [c for c in clips if c not in names]
            if unknown:
                raise EDVRError(f"clips {unknown} are not in {meta_info_file or dataroot_gt} (known: {names[:10]}...).")
            names = list(clips)
        if not names:
            raise EDVRError(f"no clips found in {dataroot_gt}. Fix: point dataroot_gt at a folder of clip folders.")
        self.clips = scan_clips(self.gt_store, self.lq_store, names, expected, min_frames=num_frame)
        self.lq_sizes = {c.name: check_pair_sizes(self.gt_store, self.lq_store, c.key(0), scale) for c in self.clips}
        self.index = [(c, i) for c in self.clips for i in range(c.num_frames)]

    @property
    def clip_names(self) -> list[str]:
        return [c.name for c in self.clips]

    def num_frames(self, clip: str) -> int:
        """Number of frames of ``clip``."""
        return next(c.num_frames for c in self.clips if c.name == clip)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, item: int) -> dict:
        clip, center = self.index[item]
        idxs = generate_frame_indices(center, self.num_frame, clip.num_frames, self.padding)
        gt_key = clip.key(center)
        img_gt, img_lqs = read_pair(self.gt_store, self.lq_store, gt_key, [clip.key(i) for i in idxs], self.scale)
        return {"lq": frames_to_tensor(img_lqs), "gt": image_to_tensor(img_gt), "clip": clip.name,
                "frame_idx": center, "key": gt_key}
