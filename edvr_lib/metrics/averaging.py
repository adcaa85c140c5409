"""Averaging per-frame metrics the way the reference does: frames within a clip, then clips.

Every frame of a clip counts (border frames included); the overall number is the mean of the per-clip means, so a
long clip does not outweigh a short one.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Mapping


def average_per_clip(records: Iterable[Mapping],
                     metrics: tuple[str, ...] = ("psnr", "ssim")) -> "OrderedDict[str, dict]":
    """Mean of each metric over the frames of each clip, clips in first-seen order.

    Args:
        records: per-frame rows such as ``{'clip': '000', 'frame_idx': 3, 'psnr': 30.1, 'ssim': 0.87}``.
        metrics: which keys to average.

    Returns:
        ``{clip: {metric: mean, 'num_frames': n}}``.
    """
    sums: "OrderedDict[str, dict]" = OrderedDict()
    for row in records:
        acc = sums.setdefault(str(row["clip"]), {m: 0.0 for m in metrics} | {"num_frames": 0})
        for m in metrics:
            acc[m] += float(row[m])
        acc["num_frames"] += 1
    return OrderedDict((clip, {m: acc[m] / acc["num_frames"] for m in metrics} | {"num_frames": acc["num_frames"]})
                       for clip, acc in sums.items())


def average_overall(per_clip: Mapping[str, Mapping], metrics: tuple[str, ...] = ("psnr", "ssim")) -> dict:
    """Mean over clips of the per-clip means (what the papers' tables report)."""
    if not per_clip:
        return {m: float("nan") for m in metrics}
    return {m: sum(float(c[m]) for c in per_clip.values()) / len(per_clip) for m in metrics}


def summarize(records: Iterable[Mapping], metrics: tuple[str, ...] = ("psnr", "ssim")) -> tuple[dict, dict]:
    """``(per_clip, overall)`` from per-frame rows (see :func:`average_per_clip`)."""
    per_clip = average_per_clip(list(records), metrics)
    return per_clip, average_overall(per_clip, metrics)
