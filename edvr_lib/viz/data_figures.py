"""Figures for notebook 01 (dataset preparation). Each function returns a matplotlib Figure.

Images are numpy ``(h, w, 3)`` RGB in [0, 1] or tensors ``(3, h, w)``; every figure is titled
and its axes are labelled in pixels.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["show_frames", "show_lr_vs_gt", "show_window", "show_crops", "show_augmentations", "show_synthetic_motion",
           "resize_pitfall", "show_resize_pitfall", "as_image", "pyplot", "finish"]


def pyplot():
    """``matplotlib.pyplot``, imported on first use (shared with the notebook 02/03 demo figures)."""
    import matplotlib.pyplot as plt

    return plt


def finish(fig, title: str):
    """``fig`` with its suptitle ``title``, laid out tight."""
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def as_image(img) -> np.ndarray:
    """An image to show: a ``(3, h, w)`` / ``(1, h, w)`` tensor or any array -> float32 numpy (``(h, w, 3)``
    for a 3-channel tensor) clipped to [0, 1]."""
    if hasattr(img, "detach"):
        img = img.detach().cpu().numpy()
        if img.ndim == 3 and img.shape[0] in (1, 3):
            img = img.transpose(1, 2, 0)
    return np.clip(np.asarray(img, dtype=np.float32), 0, 1)


def _imshow(ax, img, title: str) -> None:
    ax.imshow(as_image(img), interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x (pixels)", fontsize=8)
    ax.set_ylabel("y (pixels)", fontsize=8)
    ax.tick_params(labelsize=7)


def show_frames(gt_dir: str | os.PathLike, clips: list[str], frame_idx: int = 0, title: str = "GT frames"):
    """One GT frame of each clip, side by side."""
    from edvr_lib.data.io import read_image

    plt = pyplot()
    fig, axes = plt.subplots(1, len(clips), figsize=(3.2 * len(clips), 2.8), squeeze=False)
    for ax, clip in zip(axes[0], clips):
        img = read_image(os.path.join(gt_dir, clip, f"{frame_idx:08d}.png"))
        _imshow(ax, img, f"{clip} frame {frame_idx} ({img.shape[1]}x{img.shape[0]})")
    return finish(fig, title)


def show_lr_vs_gt(gt: np.ndarray, lq: np.ndarray, box: tuple[int, int, int] | None = None, scale: int = 4):
    """GT, its x4 LR (shown at its own pixel size) and both zoomed on ``box = (top, left, size)`` (GT pixels)."""
    plt = pyplot()
    gt, lq = as_image(gt), as_image(lq)
    if box is None:
        size = min(gt.shape[:2]) // 3 // scale * scale
        box = ((gt.shape[0] - size) // 2 // scale * scale, (gt.shape[1] - size) // 2 // scale * scale, size)
    t, l_, s = box
    fig, axes = plt.subplots(1, 4, figsize=(14, 3.4), gridspec_kw={"width_ratios": [2, 2, 1.2, 1.2]})
    _imshow(axes[0], gt, f"GT {gt.shape[1]}x{gt.shape[0]}")
    axes[0].add_patch(plt.Rectangle((l_, t), s, s, fill=False, color="yellow", lw=1.5))
    _imshow(axes[1], lq, f"LR x{scale} {lq.shape[1]}x{lq.shape[0]} (MATLAB bicubic)")
    _imshow(axes[2], gt[t:t + s, l_:l_ + s], "GT zoom")
    _imshow(axes[3], lq[t // scale:(t + s) // scale, l_ // scale:(l_ + s) // scale], "LR zoom (same region)")
    return finish(fig, "Low-resolution input vs ground truth")


def show_window(item: dict, title: str | None = None):
    """The LQ window of a dataset item (``'lq'`` ``(t, 3, h, w)``) and its GT centre frame."""
    plt = pyplot()
    lq, t = item["lq"], item["lq"].shape[0]
    fig, axes = plt.subplots(1, t + 1, figsize=(2.6 * (t + 1), 2.6))
    idx = item.get("frame_indices") or [None] * t
    for i in range(t):
        label = f"LQ input {i}" + (f" = frame {idx[i]}" if idx[i] is not None else "")
        if i == t // 2:
            label += " (centre)"
        _imshow(axes[i], lq[i], label)
    _imshow(axes[t], item["gt"], "GT (centre frame)")
    return finish(fig, title or f"A {t}-frame window: {item.get('key', '')}")


def show_crops(items: list[dict]):
    """Training samples: the centre LQ crop above its paired GT crop, one column per sample."""
    plt = pyplot()
    n = len(items)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.4), squeeze=False)
    for j, item in enumerate(items):
        c = item["lq"].shape[0] // 2
        _imshow(axes[0, j], item["lq"][c], f"LQ crop {tuple(item['lq'].shape[-2:])}\n{item['key']}")
        _imshow(axes[1, j], item["gt"], f"GT crop {tuple(item['gt'].shape[-2:])}")
    return finish(fig, "Paired random crops (same region, GT = 4 x LQ) after random flips/rotations")


def show_augmentations(img: np.ndarray):
    """All 8 flips/rotations that ``augment`` can apply (identically to every frame)."""
    from edvr_lib.data.transforms import dihedral_variants

    plt = pyplot()
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.6))
    for ax, (label, v) in zip(axes.ravel(), dihedral_variants(as_image(img))):
        _imshow(ax, v, label)
    return finish(fig, "The 8 dihedral augmentations (hflip x vflip x transpose)")


def show_synthetic_motion(root, clips: list[str], center_idx: int | None = None, quiver_clip: str | None = None):
    """Per-frame camera motion of the synthetic clips, and the true LR flow of one clip as arrows."""
    from edvr_lib.data.embedded import embedded_paths, ground_truth_flow, load_motion
    from edvr_lib.data.io import read_image

    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for clip in clips:
        rec = load_motion(root, clip)
        fr = rec["frames"]
        t = np.arange(len(fr))
        axes[0].plot(t, [f["shift_yx"][1] for f in fr], "-o", ms=3, label=f"{clip} dx")
        axes[0].plot(t, [f["shift_yx"][0] for f in fr], "--", label=f"{clip} dy")
        axes[1].plot(t, [f["angle_deg"] for f in fr], "-o", ms=3, label=clip)
        axes[2].plot(t, [f["zoom"] for f in fr], "-o", ms=3, label=clip)
    axes[0].set(title="Camera shift", xlabel="frame index", ylabel="shift (GT pixels)")
    axes[1].set(title="Camera rotation", xlabel="frame index", ylabel="angle (degrees)")
    axes[2].set(title="Camera zoom", xlabel="frame index", ylabel="zoom factor (1 = none)")
    for ax in axes[:3]:
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
    qc = quiver_clip or clips[-1]
    n = len(load_motion(root, qc)["frames"])
    c = n // 2 if center_idx is None else center_idx
    nb = min(c + 2, n - 1)
    flow = ground_truth_flow(root, qc, c, nb, "lr")
    img = read_image(embedded_paths(root)["lq"] / qc / f"{c:08d}.png")
    h, w = flow.shape[1:]
    step = max(1, min(h, w) // 12)
    yy, xx = np.mgrid[0:h:step, 0:w:step]
    axes[3].imshow(img, interpolation="nearest")
    axes[3].quiver(xx, yy, flow[1, ::step, ::step], flow[0, ::step, ::step], color="yellow", angles="xy",
                   scale_units="xy", scale=0.25)
    axes[3].set_title(f"True LR flow {qc}\nframe {c} -> {nb} (arrows x4)", fontsize=9)
    axes[3].set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    return finish(fig, "Synthetic clips: known sub-pixel camera motion (the answer key for PCD offsets)")


def resize_pitfall(gt_uint8: np.ndarray, scale: int = 4) -> dict:
    """MATLAB bicubic vs ``cv2.resize(INTER_CUBIC)`` down-scaling of one GT frame.

    Returns:
        dict with ``lr_matlab``, ``lr_cv2`` (uint8), ``diff`` (float |difference| in grey levels),
        ``psnr_lr`` (dB between the two LR images), ``psnr_up_matlab`` / ``psnr_up_cv2`` (dB of each
        LR brought back to GT size with MATLAB bicubic, against the GT) and ``gap_db``.
    """
    import cv2

    from edvr_lib.data.imresize import imresize
    from edvr_lib.metrics import calculate_psnr as psnr  # RGB, no border crop (the defaults)

    h, w = gt_uint8.shape[:2]
    lr_m = imresize(gt_uint8, 1 / scale)
    lr_c = cv2.resize(gt_uint8, (w // scale, h // scale), interpolation=cv2.INTER_CUBIC)
    up_m, up_c = imresize(lr_m, scale), imresize(lr_c, scale)
    out = {"lr_matlab": lr_m, "lr_cv2": lr_c,
           "diff": np.abs(lr_m.astype(np.float64) - lr_c.astype(np.float64)).mean(axis=2),
           "psnr_lr": psnr(lr_m, lr_c), "psnr_up_matlab": psnr(up_m, gt_uint8), "psnr_up_cv2": psnr(up_c, gt_uint8)}
    out["gap_db"] = out["psnr_up_matlab"] - out["psnr_up_cv2"]
    return out


def show_resize_pitfall(gt_uint8: np.ndarray, scale: int = 4, zoom: tuple[int, int, int] | None = None):
    """Figure: MATLAB LR, OpenCV LR, their difference (grey levels) on a zoomed region."""
    plt = pyplot()
    r = resize_pitfall(gt_uint8, scale)
    lr_m, lr_c, diff = r["lr_matlab"], r["lr_cv2"], r["diff"]
    if zoom is None:
        s = min(lr_m.shape[:2]) // 2
        zoom = ((lr_m.shape[0] - s) // 2, (lr_m.shape[1] - s) // 2, s)
    t, l_, s = zoom
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    _imshow(axes[0], lr_m[t:t + s, l_:l_ + s] / 255.0, "MATLAB imresize 1/4 (antialiased)")
    _imshow(axes[1], lr_c[t:t + s, l_:l_ + s] / 255.0, "cv2.resize INTER_CUBIC (aliased)")
    im = axes[2].imshow(diff[t:t + s, l_:l_ + s], cmap="magma", interpolation="nearest")
    axes[2].set_title(f"|MATLAB - OpenCV|\n(PSNR between the LRs {r['psnr_lr']:.1f} dB)", fontsize=9)
    axes[2].set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    fig.colorbar(im, ax=axes[2], label="mean abs difference (grey levels, 0-255)")
    return finish(fig, f"The INTER_CUBIC pitfall (zoomed): bicubic x4 baseline {r['psnr_up_matlab']:.2f} dB "
                       f"(MATLAB LR) vs {r['psnr_up_cv2']:.2f} dB (OpenCV LR)")
