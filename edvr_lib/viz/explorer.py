"""Look at what EDVR aligns and attends to: an ipywidgets explorer and a static grid.

Both read one forward pass recorded with :func:`edvr_lib.introspect.record_internals`:

* **PCD offset magnitude** ``|(dy, dx)|`` (pixels of that pyramid level), averaged over the 9 taps
  of one deformable group;
* **PCD offset direction** in optical-flow colours (hue = direction, brightness = magnitude);
* **DCN mask** (modulation, 0..1) averaged over the 9 taps;
* **TSA temporal attention** of one neighbour frame (sigmoid of its correlation with the centre);
* **TSA spatial attention** (sigmoid, mean over channels).

The maps are computed once; each rendered image is cached, so moving a slider only
redraws. The image is an ``ipywidgets.Image`` holding PNG bytes, which JupyterLab renders
from the kernel side (no browser-side plotting needed).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.figures import _upscale_nearest, as_uint8

__all__ = ["MAP_TYPES", "AttentionExplorer", "compute_internals", "offset_magnitude", "offset_direction_rgb",
           "map_image", "map_values", "attention_grid_figure"]

MAP_TYPES = ("offset magnitude", "offset direction", "DCN mask", "temporal attention", "spatial attention")
LEVELS = ("l3", "l2", "l1", "cascade")


def compute_internals(model, lq):
    """Run ``model`` once on ``lq`` and return the recorded internals and the output.

    Args:
        model: an EDVR in eval mode.
        lq: ``(t, 3, h, w)`` or ``(1, t, 3, h, w)`` frames in [0, 1]; h, w multiples of 4.

    Returns:
        ``(internals, output (1, 3, 4h, 4w))``.
    """
    import torch

    from edvr_lib.introspect import record_internals

    x = lq if lq.dim() == 5 else lq.unsqueeze(0)
    with torch.no_grad(), record_internals(model) as rec:
        out = model(x)
    return rec, out


def offset_magnitude(offsets) -> np.ndarray:
    """``(9, 2, h, w)`` offsets of one group -> ``(h, w)`` magnitude of the tap-mean (dy, dx)."""
    mean = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    return np.sqrt(mean[0] ** 2 + mean[1] ** 2)


def offset_direction_rgb(offsets, max_mag: float | None = None) -> np.ndarray:
    """``(9, 2, h, w)`` -> ``(h, w, 3)`` uint8 flow colours: hue = direction of (dx, dy), value = magnitude."""
    from matplotlib.colors import hsv_to_rgb

    mean = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    dy, dx = mean
    mag = np.sqrt(dx ** 2 + dy ** 2)
    max_mag = max_mag or max(float(mag.max()), 1e-6)
    hue = (np.arctan2(-dy, -dx) / (2 * np.pi) + 0.5) % 1.0
    val = np.clip(mag / max_mag, 0, 1)
    rgb = hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], axis=-1))
    return (rgb * 255).round().astype(np.uint8)


def _colormap(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    from matplotlib import colormaps

    norm = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return (colormaps[cmap](norm)[..., :3] * 255).round().astype(np.uint8)


def map_image(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0) -> tuple[np.ndarray, str]:
    """The selected map as an image plus a one-line description.

    Returns:
        ``(img, text)``: ``img`` is ``(h_l, w_l, 3)`` uint8 (colour maps use viridis with the
        range in ``text``).
    """
    if map_type not in MAP_TYPES:
        raise EDVRError(f"unknown map type {map_type!r}; choose one of {MAP_TYPES}")
    where = f"level {level}, group {group}, frame {frame}"
    if map_type in MAP_TYPES[:3]:
        if level not in rec.pcd_offsets:
            raise EDVRError(f"unknown pyramid level {level!r}; choose one of {LEVELS}")
        if map_type == "offset direction":
            offs = rec.pcd_offsets[level][0, frame, group].numpy()  # (9, 2, h, w)
            return offset_direction_rgb(offs), (f"PCD offset direction ({where}): hue = direction, "
                                                f"brightness = magnitude up to {offset_magnitude(offs).max():.3f} px")
    elif rec.temporal_attn is None:
        raise EDVRError("this model has no TSA fusion (with_tsa=False): no attention maps to show")
    vals = map_values(rec, map_type, frame, level, group)
    if map_type == "offset magnitude":
        return _colormap(vals, 0, max(float(vals.max()), 1e-6)), \
            f"PCD offset magnitude ({where}): 0 .. {vals.max():.3f} px of level {level}"
    label = {"DCN mask": f"DCN mask, mean of 9 taps ({where})",
             "temporal attention": f"TSA temporal attention of frame {frame}",
             "spatial attention": "TSA spatial attention, mean over channels"}[map_type]
    return _colormap(vals, 0, 1), f"{label}: {vals.min():.3f} .. {vals.max():.3f} (scale 0..1)"


def _png(img: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", np.ascontiguousarray(img[..., ::-1]))
    if not ok:  # pragma: no cover
        raise EDVRError("could not encode the explorer image as PNG")
    return buf.tobytes()


class AttentionExplorer:
    """Sliders over PCD offsets / DCN masks / TSA attention of one recorded forward pass.

    Args:
        model: an EDVR in eval mode (run once here), or None with ``internals`` given.
        lq: ``(t, 3, h, w)`` (or ``(1, t, 3, h, w)``) LR frames in [0, 1].
        internals: a recorded :class:`~edvr_lib.introspect.Internals` (skips the forward pass).
        display_height: the shown maps are scaled (nearest) to about this many pixels tall.
        title: shown above the controls (say here if the weights are random).

    Attributes:
        widgets: ``{'frame', 'level', 'group', 'map_type', 'image', 'info', 'title'}`` ipywidgets.
        ui: the ``VBox`` to display (``display(explorer)`` works too).
        forward_passes: number of model runs (1).
        redraws: number of slider-triggered redraws; ``render_cache`` holds every image drawn.
    """

    def __init__(self, model=None, lq=None, internals=None, display_height: int = 256, title: str = "EDVR attention explorer"):
        import ipywidgets as W

        if lq is None:
            raise EDVRError("AttentionExplorer needs the LR frames `lq` ((t, 3, h, w), values in [0, 1])")
        self.lq = lq[0] if lq.dim() == 5 else lq
        self.forward_passes = 0
        if internals is None:
            if model is None:
                raise EDVRError("AttentionExplorer needs a model or recorded internals")
            internals, _ = compute_internals(model, self.lq)
            self.forward_passes = 1
        self.rec = internals
        self.num_frame = self.rec.pcd_offsets["l1"].shape[1]
        self.num_groups = self.rec.pcd_offsets["l1"].shape[2]
        self.center_frame_idx = getattr(model, "center_frame_idx", self.num_frame // 2)
        self.display_height = display_height
        self.render_cache: dict[tuple, tuple[np.ndarray, str]] = {}
        self.redraws = 0
        map_types = MAP_TYPES if self.rec.temporal_attn is not None else MAP_TYPES[:3]
        style = {"description_width": "110px"}
        self.widgets: dict[str, Any] = {
            "title": W.HTML(f"<b>{title}</b>"),
            "map_type": W.Dropdown(options=map_types, value=map_types[0], description="map", style=style),
            "frame": W.IntSlider(value=0, min=0, max=self.num_frame - 1, description="frame (t)",
                                 continuous_update=True, style=style),
            "level": W.Dropdown(options=LEVELS, value="l1", description="pyramid level", style=style),
            "group": W.IntSlider(value=0, min=0, max=self.num_groups - 1, description="deform. group", style=style),
            "image": W.Image(format="png"),
            "info": W.HTML(),
        }
        for name in ("map_type", "frame", "level", "group"):
            self.widgets[name].observe(self._on_change, names="value")
        controls = W.VBox([self.widgets[k] for k in ("map_type", "frame", "level", "group")])
        self.ui = W.VBox([self.widgets["title"], controls, self.widgets["image"], self.widgets["info"]])
        self._shown: np.ndarray | None = None
        self._draw()

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """Current control values."""
        return {k: self.widgets[k].value for k in ("map_type", "frame", "level", "group")}

    def current_image(self) -> np.ndarray:
        """The RGB ``(H, W, 3)`` uint8 image shown now (LR frame | map, side by side)."""
        return self._shown

    def set(self, **values) -> None:
        """Set controls by name (``explorer.set(frame=2, map_type='DCN mask')``), like moving them."""
        for k, v in values.items():
            if k not in ("map_type", "frame", "level", "group"):
                raise EDVRError(f"unknown control {k!r}; use map_type, frame, level or group")
            self.widgets[k].value = v

    # drawing -------------------------------------------------------------------------------
    def _on_change(self, _change) -> None:
        self.redraws += 1
        self._draw()

    def _render(self, key: tuple) -> tuple[np.ndarray, str]:
        if key not in self.render_cache:
            map_type, frame, level, group = key
            img, text = map_image(self.rec, map_type, frame, level, group)
            lr_idx = self.center_frame_idx if map_type == "spatial attention" else frame
            lr = as_uint8(self.lq[lr_idx].permute(1, 2, 0).numpy())
            h = self.display_height
            lr_w = max(1, round(lr.shape[1] * h / lr.shape[0]))
            map_w = max(1, round(img.shape[1] * h / img.shape[0]))
            gap = np.full((h, 6, 3), 255, np.uint8)
            shown = np.concatenate([_upscale_nearest(lr, (h, lr_w)), gap, _upscale_nearest(img, (h, map_w))], axis=1)
            self.render_cache[key] = (shown, text)
        return self.render_cache[key]

    def _draw(self) -> None:
        s = self.state
        is_pcd = s["map_type"] in MAP_TYPES[:3]
        self.widgets["level"].disabled = not is_pcd
        self.widgets["group"].disabled = not is_pcd
        self.widgets["frame"].disabled = s["map_type"] == "spatial attention"
        # level and group do not apply to TSA maps: one cache entry per TSA map and frame
        key = (s["map_type"], s["frame"], s["level"], s["group"]) if is_pcd else (s["map_type"], s["frame"], "l1", 0)
        shown, text = self._render(key)
        self._shown = shown
        self.widgets["image"].value = _png(shown)
        centre = " (centre frame)" if s["frame"] == self.center_frame_idx else ""
        self.widgets["info"].value = f"left: LR input frame {s['frame']}{centre}; right: {text}"

    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)


def map_values(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0) -> np.ndarray:
    """The raw ``(h_l, w_l)`` values behind a scalar map (offset magnitude in px, mask / attention in 0..1)."""
    if map_type == "offset magnitude":
        return offset_magnitude(rec.pcd_offsets[level][0, frame, group].numpy())
    if map_type == "DCN mask":
        return rec.pcd_masks[level][0, frame, group].numpy().mean(axis=0)
    if map_type == "temporal attention":
        return rec.temporal_attn[0, frame].numpy()
    if map_type == "spatial attention":
        return rec.spatial_attn[0].numpy().mean(axis=0)
    raise EDVRError(f"{map_type!r} has no scalar values; choose offset magnitude, DCN mask, temporal or "
                    "spatial attention")


_UNITS = {"offset magnitude": "|offset| (px of level {level})", "DCN mask": "mask (0..1)",
          "temporal attention": "attention (0..1)", "spatial attention": "attention (0..1)"}


def _few_ticks(cbar) -> None:
    from matplotlib.ticker import MaxNLocator

    cbar.locator = MaxNLocator(3)
    cbar.update_ticks()
    cbar.ax.tick_params(labelsize=7)


def attention_grid_figure(rec, lq, level: str = "l1", group: int = 0, title: str = "EDVR alignment and attention maps"):
    """Static grid for readers without a live kernel: one row per frame of the window.

    Columns: LR frame, PCD offset magnitude, offset direction, DCN mask (``level``, ``group``) and,
    with TSA, the temporal attention; the last row shows the spatial attention. Each scalar
    column shares one colour scale over all frames (the range of its values), with a colour bar.

    Args:
        rec: recorded internals (:func:`compute_internals`).
        lq: ``(t, 3, h, w)`` LR frames.
    """
    import matplotlib.pyplot as plt

    lq = lq[0] if lq.dim() == 5 else lq
    t = rec.pcd_offsets[level].shape[1]
    cols = ["offset magnitude", "offset direction", "DCN mask"]
    if rec.temporal_attn is not None:
        cols.append("temporal attention")
    rows = t + (1 if rec.spatial_attn is not None else 0)
    h, w = lq.shape[-2:]
    panel_w = 2.4
    figsize = (panel_w * (len(cols) + 1), (panel_w * h / w + 0.5) * rows + 1.6)
    fig, axes = plt.subplots(rows, len(cols) + 1, figsize=figsize, squeeze=False, layout="constrained")
    values = {c: [map_values(rec, c, f, level, group) for f in range(t)] for c in cols if c != "offset direction"}
    ranges = {c: (min(float(v.min()) for v in vs), max(float(v.max()) for v in vs)) for c, vs in values.items()}
    max_mag = max(ranges["offset magnitude"][1], 1e-6)
    for f in range(t):
        axes[f, 0].imshow(np.clip(lq[f].permute(1, 2, 0).numpy(), 0, 1))
        axes[f, 0].set_ylabel(f"frame {f}\ny (LR px)")
        for c, map_type in enumerate(cols, start=1):
            ax = axes[f, c]
            if map_type == "offset direction":
                ax.imshow(offset_direction_rgb(rec.pcd_offsets[level][0, f, group].numpy(), max_mag),
                          interpolation="nearest")
                continue
            vmin, vmax = ranges[map_type]
            im = ax.imshow(values[map_type][f], cmap="viridis", vmin=vmin, vmax=max(vmax, vmin + 1e-6),
                           interpolation="nearest")
            if f == t - 1:
                cbar = fig.colorbar(im, ax=axes[:t, c].tolist(), location="bottom", shrink=0.9, aspect=25)
                cbar.set_label(_UNITS[map_type].format(level=level), fontsize=8)
                _few_ticks(cbar)
    axes[0, 0].set_title("LR input", fontsize=9)
    for c, map_type in enumerate(cols, start=1):
        lv = f" ({level}, group {group})" if map_type in MAP_TYPES[:3] else ""
        extra = "\n(hue = direction, brightness = magnitude)" if map_type == "offset direction" else ""
        axes[0, c].set_title(map_type + lv + extra, fontsize=9)
    for ax in axes[t - 1]:
        ax.set_xlabel("x (LR px)")
    if rec.spatial_attn is not None:
        sp = map_values(rec, "spatial attention")
        im = axes[-1, 0].imshow(sp, cmap="viridis", interpolation="nearest")
        axes[-1, 0].set_title("TSA spatial attention\n(mean over channels)", fontsize=9)
        axes[-1, 0].set_ylabel("y (LR px)")
        axes[-1, 0].set_xlabel("x (LR px)")
        cbar = fig.colorbar(im, ax=axes[-1, 0], location="bottom", shrink=0.9, aspect=25)
        cbar.set_label(_UNITS["spatial attention"], fontsize=8)
        _few_ticks(cbar)
        for ax in axes[-1, 1:]:
            ax.axis("off")
    fig.suptitle(f"{title}\n(offsets in pixels of level {level}; each colour bar is shared by its column)", fontsize=10)
    return fig
