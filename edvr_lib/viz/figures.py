"""Comparison figures (matplotlib ``Figure``, titled and labelled): LR / bicubic / EDVR / GT panels with a zoom
box, error maps, an x-t temporal profile, PSNR per frame, the ablations. Images are RGB ``(h, w, 3)``, uint8 or
float in [0, 1]."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.data_figures import finish, pyplot

__all__ = ["as_uint8", "comparison_figure", "error_map_figure", "temporal_profile", "temporal_profile_figure",
           "psnr_per_frame_figure", "default_zoom_box", "ablation_figure"]


def as_uint8(img) -> np.ndarray:
    """``(h, w, 3)`` uint8 from uint8, float [0, 1] or a ``(3, h, w)`` tensor."""
    if hasattr(img, "detach"):
        from edvr_lib.metrics import tensor2img

        return tensor2img(img)
    img = np.asarray(img)
    return img if img.dtype == np.uint8 else (np.clip(img, 0, 1) * 255).round().astype(np.uint8)


def _upscale_nearest(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    ys = (np.arange(h) * img.shape[0] // h).clip(0, img.shape[0] - 1)
    xs = (np.arange(w) * img.shape[1] // w).clip(0, img.shape[1] - 1)
    return img[ys][:, xs]


def _zoom(ax, img: np.ndarray, box: tuple[int, int, int, int]) -> None:
    """Draw the ``(y, x, h, w)`` crop of ``img`` with the axes in the full image's pixel coordinates."""
    y, x, bh, bw = box
    ax.imshow(img[y:y + bh, x:x + bw], interpolation="nearest", extent=(x - 0.5, x + bw - 0.5, y + bh - 0.5, y - 0.5))


def default_zoom_box(gt: np.ndarray, size: int | None = None) -> tuple[int, int, int, int]:
    """``(y, x, h, w)`` of the most textured square (highest gradient energy) of ``gt``."""
    gt = as_uint8(gt).astype(np.float64).mean(axis=2)
    h, w = gt.shape
    size = min(size or max(8, min(h, w) // 3), h, w)
    energy = np.abs(np.diff(gt, axis=0))[:, :-1] + np.abs(np.diff(gt, axis=1))[:-1, :]
    best, box = -1.0, (0, 0, size, size)
    step = max(1, size // 4)
    for y in range(0, h - size + 1, step):
        for x in range(0, w - size + 1, step):
            e = energy[y:y + size - 1, x:x + size - 1].sum()
            if e > best:
                best, box = e, (y, x, size, size)
    return box


def comparison_figure(panels: Mapping[str, np.ndarray], gt: np.ndarray | None = None,
                      box: tuple[int, int, int, int] | None = None, scores: Mapping[str, str] | None = None,
                      title: str = "LR / bicubic / EDVR / GT"):
    """Full GT frame with a zoom box, and the zoomed crop of every panel side by side.

    Args:
        panels: ``{'LR': lr, 'Bicubic': ..., 'EDVR': ..., 'GT': gt}``; HR panels ``(4h, 4w, 3)``;
            a smaller LR panel is shown with nearest upsampling so pixels stay visible.
        gt: the frame drawn in full (default: the last panel).
        box: ``(y, x, h, w)`` zoom box in HR pixels (default: :func:`default_zoom_box`).
        scores: optional text per panel, e.g. ``{'EDVR': '28.31 dB'}``.
        title: figure title.
    """
    from matplotlib.patches import Rectangle

    plt = pyplot()
    if not panels:
        raise EDVRError("comparison_figure needs at least one panel")
    names = list(panels)
    gt = as_uint8(gt if gt is not None else panels[names[-1]])
    hr_size = gt.shape[:2]
    y, x, bh, bw = box or default_zoom_box(gt)
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(3.2 * (len(names) + 1), 3.6),
                             gridspec_kw={"width_ratios": [gt.shape[1] / gt.shape[0] * bh / bw] + [1] * len(names)})
    axes[0].imshow(gt)
    axes[0].add_patch(Rectangle((x - 0.5, y - 0.5), bw, bh, fill=False, edgecolor="red", linewidth=1.5))
    axes[0].set_title(f"{names[-1]} (zoom box in red)")
    axes[0].set(xlabel="x (HR pixels)", ylabel="y (HR pixels)")
    for ax, name in zip(axes[1:], names):
        img = as_uint8(panels[name])
        if img.shape[:2] != hr_size:
            img = _upscale_nearest(img, hr_size)
        _zoom(ax, img, (y, x, bh, bw))
        ax.set_title(name if not scores or name not in scores else f"{name}\n{scores[name]}")
        ax.set(xlabel="x (HR pixels)", ylabel="y (HR pixels)")
    return finish(fig, title)


def error_map_figure(preds: Mapping[str, np.ndarray], gt: np.ndarray, vmax: float = 64.0,
                     title: str = "Absolute error against GT"):
    """``|pred - gt|`` averaged over RGB, one panel per method, shared colour scale.

    Args:
        preds: ``{'Bicubic': img, 'EDVR': img}`` at GT size.
        gt: ground truth.
        vmax: top of the colour scale in 8-bit levels.
    """
    plt = pyplot()
    gt_f = as_uint8(gt).astype(np.float64)
    fig, axes = plt.subplots(1, len(preds), figsize=(4.2 * len(preds), 3.6), squeeze=False)
    im = None
    for ax, (name, img) in zip(axes[0], preds.items()):
        err = np.abs(as_uint8(img).astype(np.float64) - gt_f).mean(axis=2)
        im = ax.imshow(err, cmap="inferno", vmin=0, vmax=vmax)
        ax.set_title(f"{name}: mean |error| {err.mean():.2f}")
        ax.set(xlabel="x (HR pixels)", ylabel="y (HR pixels)")
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.85).set_label("|error| (8-bit levels)")
    fig.suptitle(title)
    return fig


def temporal_profile(frames: Sequence[np.ndarray], row: int) -> np.ndarray:
    """The x-t slice: row ``row`` of every frame stacked in time, ``(t, w, 3)`` uint8.

    Flicker shows up as horizontal streaks; temporally consistent restoration gives smooth lines.
    """
    rows = [as_uint8(f)[row] for f in frames]
    if len({r.shape for r in rows}) != 1:
        raise EDVRError("temporal_profile: all frames must have the same size")
    return np.stack(rows)


def temporal_profile_figure(clips: Mapping[str, Sequence[np.ndarray]], row: int, repeat: int = 4,
                            title: str | None = None):
    """x-t slices of several versions of a clip (e.g. bicubic, EDVR, GT) one above the other.

    Args:
        clips: ``{'Bicubic': [frame0, frame1, ...], 'EDVR': [...], 'GT': [...]}`` at the same size.
        row: image row (HR pixels) to slice.
        repeat: each frame is drawn ``repeat`` pixels tall so short clips stay visible.
    """
    plt = pyplot()
    fig, axes = plt.subplots(len(clips), 1, figsize=(8, 1.2 + 0.9 * len(clips) + 0.02 * repeat * 10), squeeze=False)
    for ax, (name, frames) in zip(axes[:, 0], clips.items()):
        prof = temporal_profile(frames, row)
        ax.imshow(np.repeat(prof, repeat, axis=0), aspect="auto", interpolation="nearest",
                  extent=(-0.5, prof.shape[1] - 0.5, prof.shape[0] - 0.5, -0.5))
        ax.set_title(name, fontsize=10)
        ax.set_ylabel("frame t")
    axes[-1, 0].set_xlabel("x (HR pixels)")
    return finish(fig, title or f"Temporal profile (x-t slice at row y = {row})")


def psnr_per_frame_figure(series: Mapping[str, Sequence[float]], title: str = "PSNR per frame",
                          published: Mapping[str, float] | None = None):
    """PSNR (dB) against frame index for each method; optional dashed published averages.

    Args:
        series: ``{'Bicubic': [...], 'EDVR': [...]}`` per-frame PSNR.
        published: ``{'EDVR-M (published, REDS4)': 30.53}`` drawn as dashed lines (labelled published).
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        ax.plot(np.arange(len(values)), values, marker="o", markersize=3, label=f"{name} (mean {values.mean():.2f} dB)")
    for name, value in (published or {}).items():
        ax.axhline(value, linestyle="--", linewidth=1, color="gray", label=f"{name}: {value:.2f} dB")
    ax.set(xlabel="frame index", ylabel="PSNR (dB)", title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def ablation_figure(results, window: int = 0, box: tuple[int, int, int, int] | None = None,
                    title: str = "What each EDVR module buys: the same window with one module switched off"):
    """Crops of the full model and its ablations side by side, and their PSNR as bars.

    Args:
        results: an :class:`edvr_lib.ablations.AblationResults` (``outputs``, ``psnr``, ``gt``).
        window: which of its windows the crops show (the bars are the mean over all windows).
        box: ``(y, x, h, w)`` zoom box in HR pixels (default: the most textured square of the GT).
        title: figure title.
    """
    plt = pyplot()
    names = list(results.outputs)
    gt = as_uint8(results.gt[window])
    y, x, bh, bw = box or default_zoom_box(gt)
    full = results.psnr[names[0]]
    fig = plt.figure(figsize=(2.6 * (len(names) + 1), 6.4), layout="constrained")
    grid = fig.add_gridspec(2, len(names) + 1, height_ratios=[1.2, 1])
    crops = [(n, as_uint8(results.outputs[n][window]), results.psnr_per_window[n][window]) for n in names]
    for i, (name, img, value) in enumerate(crops + [("GT", gt, None)]):
        ax = fig.add_subplot(grid[0, i])
        _zoom(ax, img, (y, x, bh, bw))
        ax.set_title(name if value is None else f"{name}\n{value:.2f} dB", fontsize=9)
        ax.set(xlabel="x (HR pixels)", ylabel="y (HR pixels)")
    ax = fig.add_subplot(grid[1, :])
    values = [results.psnr[n] for n in names]
    colours = ["tab:green"] + ["tab:gray" if n == "bicubic" else "tab:orange" for n in names[1:]]
    bars = ax.barh(range(len(names)), values, color=colours)
    for bar, value in zip(bars, values):
        delta = "" if bar is bars[0] else f" ({value - full:+.3f})"
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {value:.2f} dB{delta}", va="center", fontsize=8)
    ax.axvline(full, color="tab:green", linestyle="--", linewidth=1, label="full model")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.invert_yaxis()
    low, high = min(values), max(values)
    ax.set_xlim(low - 0.25 * (high - low) - 0.1, high + 0.45 * (high - low) + 0.3)
    n = len(results.psnr_per_window[names[0]])
    ax.set_xlabel(f"PSNR (dB), RGB, mean over {n} window{'s' if n > 1 else ''}")
    ax.set_ylabel("variant")
    ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(title)
    return fig
