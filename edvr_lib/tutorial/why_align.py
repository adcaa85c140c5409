"""Why align before fusing (notebook 02's opening): a moving window averaged raw (ghosts) and after warping every
frame onto the centre with the true flow (sharp), compared by PSNR and sharpness (:func:`fusion_demo`,
:func:`fusion_figure`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edvr_lib.metrics import calculate_psnr
from edvr_lib.tutorial.pcd_demo import ERROR_LABEL, _panel, warp
from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.data_figures import pyplot

__all__ = ["sharpness", "fusion_demo", "fusion_figure"]


def sharpness(img: np.ndarray, border: int = 0) -> float:
    """Mean gradient magnitude (intensity units per pixel) of the grey ``(h, w, 3)`` image in [0, 1], ``border`` px
    ignored on each side; blur and ghosting lower it."""
    grey = np.asarray(img, np.float64).mean(axis=-1)
    gy, gx = np.gradient(grey)
    mag = np.hypot(gx, gy)
    if border:
        mag = mag[border:-border, border:-border]
    return float(mag.mean())


def fusion_demo(root: str | Path, clip: str, center: int | None = None, num_frame: int = 5, border: int = 4) -> dict:
    """Average ``num_frame`` LR frames of the known-motion ``clip`` around ``center`` (default: the middle) raw and
    aligned with the true flow; ``border`` px are excluded from PSNR and sharpness.

    Returns:
        ``dict`` with ``frames`` and ``aligned`` ``(t, h, w, 3)``, ``centre``, ``raw_mean``, ``aligned_mean``
        ``(h, w, 3)`` in [0, 1], ``motion_px`` ``(t,)`` (mean |true flow|), ``psnr_raw`` / ``psnr_aligned`` (dB
        against the centre frame), ``sharp_centre`` / ``sharp_raw`` / ``sharp_aligned``, ``indices``.

    Raises:
        EDVRError: the clip has no known motion, or the window does not fit in it.
    """
    from edvr_lib.data import embedded_paths, ground_truth_flow, synthetic_clip_names
    from edvr_lib.data.frame_sources import FolderSource

    root = Path(root)
    if clip not in synthetic_clip_names(root):
        raise EDVRError(f"clip {clip!r} has no known motion; use one of {synthetic_clip_names(root)}")
    source = FolderSource(embedded_paths(root)["lq"] / clip)
    n, r = len(source), num_frame // 2
    center = n // 2 if center is None else center
    if num_frame % 2 == 0 or center - r < 0 or center + r >= n:
        raise EDVRError(f"a window of {num_frame} frames (odd) around frame {center} does not fit in {clip}'s "
                        f"{n} frames; choose center in {r}..{n - 1 - r}")
    indices = list(range(center - r, center + r + 1))
    frames = source.frames(indices)
    aligned, motion = [], []
    for i, f in zip(indices, frames):
        flow = ground_truth_flow(root, clip, center, i, scale="lr")
        img = torch.from_numpy(f).permute(2, 0, 1)[None]
        aligned.append(warp(img, torch.from_numpy(flow)[None].float())[0].permute(1, 2, 0).numpy())
        motion.append(float(np.linalg.norm(flow, axis=0).mean()))
    aligned = np.stack(aligned)
    centre = frames[r]
    raw_mean, aligned_mean = frames.mean(0), aligned.mean(0)

    def psnr(x):
        return calculate_psnr(x * 255.0, centre * 255.0, crop_border=border)

    return {"indices": indices, "frames": frames, "aligned": aligned, "centre": centre, "raw_mean": raw_mean,
            "aligned_mean": aligned_mean, "motion_px": np.array(motion), "psnr_raw": psnr(raw_mean),
            "psnr_aligned": psnr(aligned_mean), "sharp_centre": sharpness(centre, border),
            "sharp_raw": sharpness(raw_mean, border), "sharp_aligned": sharpness(aligned_mean, border)}


def fusion_figure(demo: dict, title: str = "Fusing five frames: raw average vs aligned average"):
    """Centre frame, raw average, aligned average and the raw average's error, with PSNR and sharpness."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 4.2))
    panels = [(demo["centre"], f"centre frame (sharpness {demo['sharp_centre']:.3f})"),
              (demo["raw_mean"], f"raw average: {demo['psnr_raw']:.1f} dB, sharpness {demo['sharp_raw']:.3f}"),
              (demo["aligned_mean"], f"aligned average: {demo['psnr_aligned']:.1f} dB, "
                                     f"sharpness {demo['sharp_aligned']:.3f}")]
    for ax, (img, name) in zip(axes, panels):
        _panel(ax, np.clip(img, 0, 1), name)
    err = np.abs(demo["raw_mean"] - demo["centre"]).mean(-1)
    _panel(axes[3], err, "|raw average - centre|: the ghosts", ERROR_LABEL, cmap="inferno", vmin=0,
           vmax=max(float(err.max()), 1e-6))
    for ax in axes:
        ax.set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    fig.suptitle(title + f" (frames {demo['indices'][0]}..{demo['indices'][-1]}, mean motion to the farthest "
                 f"{demo['motion_px'].max():.1f} px)")
    fig.tight_layout()
    return fig
