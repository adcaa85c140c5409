"""The explorer's static grid, for readers without a live kernel."""
from __future__ import annotations

import numpy as np

from edvr_lib.viz.explorer.legends import colour_wheel
from edvr_lib.viz.explorer.maps import MAP_KINDS, OFFSET_RANGE_PX, flow_rgb, map_values, window_maps

__all__ = ["attention_grid_figure"]


def _few_ticks(cbar) -> None:
    from matplotlib.ticker import MaxNLocator

    cbar.locator = MaxNLocator(3)
    cbar.update_ticks()
    cbar.ax.tick_params(labelsize=7)


def attention_grid_figure(rec, lq, level: str = "l1", group: int = 0, title: str = "EDVR alignment and attention maps",
                          relative: bool = True, offset_range_px: float = OFFSET_RANGE_PX):
    """Static grid for readers without a live kernel: one row per frame of the window.

    Columns: LR frame, PCD offset magnitude, offset direction, DCN mask (``level``, ``group``; -1 = all groups)
    and, with TSA, the temporal attention; the last row shows the spatial attention (mean over channels).
    Every colour scale is FIXED (masks and attention 0..1, offsets ``0 .. offset_range_px`` LR pixels, relative to
    the centre frame's self-alignment unless ``relative=False``), so a map that hardly varies looks flat.

    Args:
        rec: recorded internals (:func:`compute_internals`).
        lq: ``(t, 3, h, w)`` LR frames.
    """
    import matplotlib.pyplot as plt

    lq, maps = lq[0] if lq.dim() == 5 else lq, window_maps(rec)
    t = maps.num_frame
    cols = [k for k in MAP_KINDS.values() if "frame" in k.controls and (maps.temporal_attn is not None or
                                                                         not k.needs_tsa)]
    rows = t + 1  # the last row: spatial attention (with TSA) and the colour wheel of the direction column
    (h, w), panel_w = lq.shape[-2:], 2.4
    figsize = (panel_w * (len(cols) + 1), (panel_w * h / w + 0.5) * rows + 1.6)
    fig, axes = plt.subplots(rows, len(cols) + 1, figsize=figsize, squeeze=False, layout="constrained")
    for f in range(t):
        axes[f, 0].imshow(np.clip(lq[f].permute(1, 2, 0).numpy(), 0, 1))
        axes[f, 0].set_ylabel(f"frame {f}" + (" (centre)" if f == maps.center_frame_idx else "") + "\ny (LR px)")
        for c, kind in enumerate(cols, start=1):
            ax = axes[f, c]
            if kind.values is None:
                ax.imshow(flow_rgb(maps.flow(level, group, relative)[f], offset_range_px), interpolation="nearest")
                continue
            vmax = offset_range_px if kind.offsets else 1.0
            im = ax.imshow(map_values(maps, kind.name, f, level, group, relative), cmap="viridis", vmin=0.0,
                           vmax=vmax, interpolation="nearest")
            if f == t - 1:
                cbar = fig.colorbar(im, ax=axes[:t, c].tolist(), location="bottom", shrink=0.9, aspect=25)
                unit = kind.axis if relative or not kind.offsets else "|offset| (LR px, raw)"
                cbar.set_label(unit + (f", fixed 0..{vmax:g}" if kind.offsets else ", fixed scale"), fontsize=8)
                _few_ticks(cbar)
    axes[0, 0].set_title("LR input", fontsize=9)
    grp = "all groups" if group < 0 else f"group {group}"
    for c, kind in enumerate(cols, start=1):
        lv = f" ({level}, {grp})" if "level" in kind.controls else ""
        extra = (f"\n(hue = direction, brightness = |offset|\non 0..{offset_range_px:g} LR px)"
                 if kind.values is None else "")
        axes[0, c].set_title(kind.name + lv + extra, fontsize=9)
    for ax in axes[t - 1]:
        ax.set_xlabel("x (LR px)")
    for ax in axes[-1]:
        ax.axis("off")
    if maps.spatial_attn is not None:
        axes[-1, 0].axis("on")
        im = axes[-1, 0].imshow(map_values(maps, "spatial attention"), cmap="viridis", vmin=0, vmax=1,
                                interpolation="nearest")
        axes[-1, 0].set_title("TSA spatial attention\n(mean over channels)", fontsize=9)
        axes[-1, 0].set(ylabel="y (LR px)", xlabel="x (LR px)")
        cbar = fig.colorbar(im, ax=axes[-1, 0], location="bottom", shrink=0.9, aspect=25)
        cbar.set_label(MAP_KINDS["spatial attention"].axis + ", fixed scale", fontsize=8)
        _few_ticks(cbar)
    wheel = axes[-1, 2]  # under the direction column: its legend
    wheel.axis("on")
    r = offset_range_px
    wheel.imshow(colour_wheel(101, r), extent=(-r, r, r, -r), interpolation="nearest")
    wheel.set_title("direction legend:\nthe colour of an offset (dx, dy)", fontsize=9)
    wheel.set(xlabel="dx (LR px)", ylabel="dy (LR px)")
    rel = "relative to the centre frame's self-alignment" if relative else "raw"
    fig.suptitle(f"{title}\n(offsets in LR pixels, {rel}; fixed colour scales shared by each column)", fontsize=10)
    return fig
