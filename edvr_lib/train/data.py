"""The training data stream: the dataset from the options, BasicSR's sampler order, and randomness that is a
function of the batch position, so a resumed run sees exactly the batches the uninterrupted one would have.

Batch ``b`` (0-based; iteration ``k`` trains on batch ``k - 1``) on rank ``r`` of ``W`` processes holds, like
BasicSR's ``EnlargedSampler`` with ``drop_last`` (``total = ceil(len * enlarge / W) * W``)::

    epoch, j = divmod(b, batches_per_epoch)
    perm     = randperm(total, generator seeded with epoch) % len(dataset)
    indices  = perm[r::W][j * B:(j + 1) * B]

The datasets crop, flip and pick frames with Python's ``random``; before each sample it is seeded from
``(manual_seed, epoch, position in perm)`` (numpy too), in whichever DataLoader worker loads it. So nothing
depends on worker scheduling or on how many batches the loader had prefetched when the run was killed.
"""
from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from edvr_lib.train.options import Options, PSNRMetric
from edvr_lib.utils.errors import EDVRError

__all__ = ["build_train_dataset", "build_val_dataset", "SampleOrder", "sample_seed", "train_stream",
           "SeededDataset"]


def build_train_dataset(opt: Options):
    """The ``REDSDataset``, ``Vimeo90KDataset`` or ``MotionWindowDataset`` of ``opt.datasets.train``.

    Raises:
        EDVRError: the datasets' own errors (missing folders, clips too short, ...).
    """
    d = opt.datasets.train
    if d.type == "MotionWindowDataset":  # GT frames only: the LR is rendered
        from edvr_lib.data import MotionWindowDataset

        _check_folders(d, "datasets.train", ("dataroot_gt", "meta_info_file"))
        keys = ("num_frame", "gt_size", "max_shift", "static_prob", "affine_prob", "occlusion_prob", "bbb_mix",
                "interval_list", "length", "spoil_prob")  # resolved options hold every one (the schema's defaults)
        return MotionWindowDataset(d.dataroot_gt, d.meta_info_file, scale=opt.scale,
                                   **{k: getattr(d, k) for k in keys})
    _check_folders(d, "datasets.train")
    common = dict(dataroot_gt=d.dataroot_gt, dataroot_lq=d.dataroot_lq, meta_info_file=d.meta_info_file,
                  num_frame=d.num_frame, gt_size=d.gt_size, random_reverse=d.random_reverse, use_hflip=d.use_hflip,
                  use_rot=d.use_rot, scale=opt.scale, io_backend=d.io_backend.type)
    if d.type == "REDSDataset":
        from edvr_lib.data import REDSDataset

        return REDSDataset(**common, val_partition=d.val_partition, interval_list=d.interval_list)
    from edvr_lib.data import Vimeo90KDataset

    return Vimeo90KDataset(**common)


def build_val_dataset(opt: Options):
    """``VideoTestDataset`` from ``opt.datasets.val``, or None when the options have no validation."""
    d = opt.datasets.val
    if d is None or opt.val is None:
        return None
    _check_folders(d, "datasets.val")
    from edvr_lib.data import VideoTestDataset

    return VideoTestDataset(d.dataroot_gt, d.dataroot_lq, meta_info_file=d.meta_info_file, num_frame=d.num_frame,
                            padding=d.padding, scale=opt.scale, io_backend=d.io_backend.type)


def _check_folders(d, where: str, keys=("dataroot_gt", "dataroot_lq")) -> None:
    for key in keys:
        path = getattr(d, key)
        if not Path(path).exists():
            raise EDVRError(f"{where}.{key} does not exist: {path}. Fix: correct the path in the options, or build "
                            "the data first (`edvr prepare-embedded`, `edvr prepare-reds --root PATH`).")


def sample_seed(manual_seed: int, epoch: int, position: int) -> int:
    """The seed of one sample: a hash of ``(manual_seed, epoch, position in the epoch's permutation)``."""
    return int(np.random.SeedSequence([int(manual_seed) & 0xFFFFFFFF, epoch, position]).generate_state(1)[0])


class SampleOrder:
    """Which samples batch ``b`` of ``rank`` holds (BasicSR's ``EnlargedSampler`` + ``drop_last``; module docstring).

    Args:
        dataset_len: samples in the dataset.
        batch_size: samples per batch and process.
        enlarge: ``dataset_enlarge_ratio`` (one epoch visits every sample this many times).
        rank, world_size: this process's interleaved share.
    """

    def __init__(self, dataset_len: int, batch_size: int, enlarge: int = 1, rank: int = 0, world_size: int = 1):
        self.dataset_len, self.batch_size, self.rank, self.world_size = dataset_len, batch_size, rank, world_size
        self.num_samples = math.ceil(dataset_len * enlarge / world_size)
        self.batches_per_epoch = self.num_samples // batch_size
        self._epoch, self._perm = None, None

    def batch(self, b: int) -> tuple[int, list[tuple[int, int]]]:
        """``(epoch, [(dataset index, position in the epoch's permutation), ...])`` of batch ``b`` (0-based)."""
        epoch, j = divmod(b, self.batches_per_epoch)
        if epoch != self._epoch:  # one permutation per epoch, seeded with the epoch as in BasicSR
            g = torch.Generator().manual_seed(epoch)
            self._epoch, self._perm = epoch, torch.randperm(self.num_samples * self.world_size, generator=g)
        first = self.rank + j * self.batch_size * self.world_size
        positions = range(first, first + self.batch_size * self.world_size, self.world_size)
        return epoch, [(int(self._perm[p]) % self.dataset_len, p) for p in positions]


class SeededDataset(Dataset):
    """Wraps a training dataset: item ``(index, seed)`` loads ``dataset[index]`` with Python's ``random`` and
    numpy's global generator seeded with ``seed``, and puts both back as they were afterwards."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, item: tuple[int, int]) -> dict:
        index, seed = item
        py_state, np_state = random.getstate(), np.random.get_state()
        random.seed(seed)
        np.random.seed(seed)
        try:
            return self.dataset[index]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


def _position_batches(order: SampleOrder, seed: int, start: int, stop: int) -> Iterator[list[tuple[int, int]]]:
    """The ``[(index, seed), ...]`` of batches ``start .. stop - 1`` (a DataLoader's ``batch_sampler``)."""
    for b in range(start, stop):
        epoch, items = order.batch(b)
        yield [(index, sample_seed(seed, epoch, p)) for index, p in items]


def train_stream(opt: Options, dataset, start: int, stop: int, rank: int = 0, world_size: int = 1,
                 pin_memory: bool = False) -> Iterator[dict]:
    """Batches ``start .. stop - 1`` (0-based) of this rank, from a DataLoader with the options' workers.

    Args:
        opt: resolved options (``datasets.train`` batch size, enlarge ratio, workers; ``manual_seed``).
        dataset: the training dataset (:func:`build_train_dataset`).
        start: first batch (= the iteration the run resumes from).
        stop: one past the last batch (= ``total_iter``).
        rank, world_size: this process's share (DistributedSampler-style interleaving).
        pin_memory: pin host memory (for CUDA).

    Yields:
        ``{'lq': (B, t, 3, h, w), 'gt': (B, 3, H, W), 'key': [...]}``.
    """
    d = opt.datasets.train
    batch_size, enlarge = d.batch_size_per_gpu, d.dataset_enlarge_ratio
    order = SampleOrder(len(dataset), batch_size, enlarge, rank, world_size)
    if order.num_samples < batch_size:
        raise EDVRError(f"datasets.train.batch_size_per_gpu={batch_size} x {world_size} process(es) is larger than "
                        f"the dataset ({len(dataset)} samples x dataset_enlarge_ratio {enlarge}). Fix: lower "
                        "batch_size_per_gpu, raise dataset_enlarge_ratio, or add data.")
    sampler, workers = _position_batches(order, opt.manual_seed, start, stop), d.num_worker_per_gpu
    return iter(DataLoader(SeededDataset(dataset), batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
                           prefetch_factor=2 if workers else None))


def explicit_stream(batches: Sequence[dict], start: int, stop: int) -> Iterator[dict]:
    """The given batches ``start .. stop - 1`` (``batches[k - 1]`` trains iteration ``k``)."""
    if len(batches) < stop:
        raise EDVRError(f"batches holds {len(batches)} batches but training runs to iteration {stop}. Fix: pass at "
                        "least train.total_iter batches or lower train.total_iter.")
    return (batches[b] for b in range(start, stop))


def check_first_sample(dataset, opt: Options) -> None:
    """Report a crop larger than the frames (or an unreadable frame) before training starts rather than in a
    worker later: every clip's LQ frame size (header only, where the dataset can tell it), then one sample."""
    gt_size, scale = opt.datasets.train.gt_size, opt.scale
    store = getattr(dataset, "lq_store", None)
    if gt_size and hasattr(store, "frame_hw"):
        for clip in getattr(dataset, "clips", []):
            h, w = store.frame_hw(clip.key(0))
            if min(h, w) < gt_size // scale:
                raise EDVRError(f"datasets.train.gt_size={gt_size} needs LQ frames of at least {gt_size // scale}x"
                                f"{gt_size // scale} but clip {clip.name!r} has {w}x{h}. Fix: use a smaller gt_size "
                                f"(at most {min(h, w) * scale}) or leave that clip out of the meta info file.")
    SeededDataset(dataset)[(0, sample_seed(opt.manual_seed, 0, 0))]


def validate(model: torch.nn.Module, dataset, opt: Options, device: torch.device, cache: dict) -> dict:
    """PSNR / SSIM of ``model`` on the validation clips (every frame a centre, uint8-rounded, as ``edvr test``),
    and the bicubic baseline's PSNR on the same clips (computed once, kept in ``cache``).

    Returns:
        ``{'val_psnr', 'val_ssim', 'bicubic_psnr'}``.
    """
    from edvr_lib.evaluate import evaluate

    metric = opt.val.metrics.get("psnr") or PSNRMetric(type="calculate_psnr")  # defaults without a psnr entry
    kwargs = dict(test_y_channel=metric.test_y_channel, crop_border=metric.crop_border, device=str(device))
    if "bicubic_psnr" not in cache:
        from edvr_lib.models import bicubic_model

        bicubic = bicubic_model(dataset.num_frame).to(device).eval()
        cache["bicubic_psnr"] = evaluate(bicubic, dataset, ssim=False, **kwargs)["overall"]["psnr"]
    was_training = model.training
    model.eval()
    try:
        overall = evaluate(model, dataset, **kwargs)["overall"]
    finally:
        model.train(was_training)
    return {"val_psnr": overall["psnr"], "val_ssim": overall["ssim"], "bicubic_psnr": cache["bicubic_psnr"]}
