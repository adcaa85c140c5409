"""Speed and parity figures: the machine's measured throughput (notebook 00), the backends' speed and onnxruntime
against torch (notebook 06). Each function returns the matplotlib ``Figure``.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from edvr_lib.introspect import edvr_gflop

__all__ = ["throughput_figure", "speed_figure", "parity_figure", "output_difference_figure"]


def throughput_figure(report: dict, sizes: tuple[int, ...] = (64, 128, 180, 256, 320)):
    """Two panels: measured dense-conv throughput per device (:func:`edvr_lib.env.collect`'s ``report``), and the
    EDVR-M forward time it implies (notebook 00)."""
    devices = [d for d in report["devices"] if d["dense_conv_gflops"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    ax1.bar([d["name"] for d in devices], [d["dense_conv_gflops"] for d in devices], color="tab:blue")
    ax1.set(title="Measured 64->64 3x3 convolution throughput", xlabel="device", ylabel="throughput (GFLOP/s)")
    for d in devices:
        ms = [1e3 * edvr_gflop("M", s, s) / d["dense_conv_gflops"] for s in sizes]
        ax2.plot(sizes, ms, marker="o", label=d["name"])
    ax2.set(title="EDVR-M forward time implied (lower bound)", xlabel="LR frame side (pixels, 5 frames in)",
            ylabel="time per output frame (ms)", yscale="log")
    ax2.legend(title="device")
    fig.tight_layout()
    return fig


def speed_figure(times: dict[str, float], title: str):
    """Bar chart of :func:`edvr_lib.tutorial.deployment.benchmark_backends`' seconds per window, in milliseconds."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    labels, ms = list(times), [v * 1e3 for v in times.values()]
    bars = ax.barh(labels, ms, color=["#999999", "#4c72b0", "#dd8452"][:len(labels)])
    ax.bar_label(bars, labels=[f"{v:.0f} ms" for v in ms], padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("time per window (ms, median)")
    ax.set_ylabel("backend")
    ax.set_xlim(0, max(ms) * 1.25)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def parity_figure(labels: list[str], rel_diffs: list[float], tolerance: float, title: str):
    """Max relative difference onnxruntime vs torch per input (log scale), with the tolerance line."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.bar(range(len(labels)), rel_diffs, color="#4c72b0")
    ax.axhline(tolerance, color="#c44e52", linestyle="--", label=f"tolerance {tolerance:.0e}")
    ax.set_yscale("log")
    ax.set_ylim(min(min(rel_diffs) / 10, tolerance / 1e4) if min(rel_diffs) > 0 else tolerance / 1e4, tolerance * 10)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_xlabel("input frames (h x w, LR pixels)")
    ax.set_ylabel("max |onnx - torch| / max |torch|")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def output_difference_figure(torch_img: np.ndarray, ort_img: np.ndarray, title: str):
    """torch's and onnxruntime's uint8 outputs of one frame side by side, and their difference in uint8 levels."""
    diff = np.abs(torch_img.astype(int) - ort_img.astype(int)).max(axis=2)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, img, name in ((axes[0], torch_img, "torch"), (axes[1], ort_img, "onnxruntime")):
        ax.imshow(img)
        ax.set_title(f"{name} ({img.shape[1]}x{img.shape[0]})")
    # each pixel that differs is drawn as a dot (single pixels would vanish at this scale)
    ys, xs = np.nonzero(diff)
    axes[2].imshow(np.zeros_like(diff), cmap="gray", vmin=0, vmax=1)
    dots = axes[2].scatter(xs, ys, c=diff[ys, xs], s=9, cmap="autumn", vmin=1, vmax=max(2, int(diff.max())))
    axes[2].set_title(f"{len(xs)} of {diff.size} px differ (max {int(diff.max())})")
    fig.colorbar(dots, ax=axes[2], label="difference (uint8 levels)")
    for ax in axes:
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
