"""Look at what EDVR aligns and attends to: an ipywidgets explorer and a static grid.

Both read forward passes recorded with :func:`edvr_lib.introspect.record_internals` (the model's own tensors):

* **PCD offsets** as a displacement per pixel: the mask-weighted mean of the DCN offsets ``(dy, dx)`` over the 9
  taps of one deformable group (or over all groups), :func:`edvr_lib.introspect.offsets_to_flow`, converted to
  **LR pixels** (an ``l2`` offset of 1 px is 2 LR px, ``l3`` 4 LR px). ``l1+cascade`` adds the L1 DCN's and the
  cascading DCN's displacements (the cascade samples the already aligned feature, so they add up).
  *Relative to self-alignment* (the default) subtracts the centre frame's own offsets: a trained DCN aligning
  the centre frame to itself does not use zero offsets (its kernel weights absorbed a fixed pattern), so only
  the difference carries motion. Shown as magnitude (viridis) or direction (hue = direction, brightness =
  magnitude; the colour wheel is the legend), on a FIXED range ``0 .. offset_range_px`` LR pixels;
* **DCN mask** (modulation, 0..1), mean over the 9 taps;
* **TSA temporal attention** of one frame (sigmoid of its correlation with the centre frame, 0..1);
* **TSA spatial attention** (sigmoid, 0..1), one channel or the mean over channels.

Masks and attention always use the fixed scale 0..1, so a map that hardly varies looks flat, not like structure.

The explorer works on a clip: a slider moves the centre frame (each window is one forward pass, cached), a
control spoils one frame of the window (noise, an occluding square, blur, unrelated content) so the temporal
attention can be watched reacting, and for the synthetic embedded clips the true flow is drawn beside the
learned offsets. Every rendered picture is cached, so moving a slider back only redraws. The image is an
``ipywidgets.Image`` holding PNG bytes, which JupyterLab renders from the kernel side.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.figures import _upscale_nearest, as_uint8

__all__ = ["MAP_TYPES", "LEVELS", "CORRUPTIONS", "OFFSET_RANGE_PX", "AttentionExplorer", "WindowMaps",
           "compute_internals", "window_maps", "offset_magnitude", "offset_direction_rgb", "flow_rgb", "corrupt",
           "map_image", "map_values", "colour_wheel", "colour_bar", "attention_grid_figure"]

MAP_TYPES = ("offset magnitude", "offset direction", "DCN mask", "temporal attention", "spatial attention")
LEVELS = ("l3", "l2", "l1", "cascade", "l1+cascade")
#: size of one pixel of each DCN's level in LR pixels
LEVEL_SCALE = {"l3": 4, "l2": 2, "l1": 1, "cascade": 1}
CORRUPTIONS = ("none", "noise", "occlusion", "blur", "unrelated frame")  # "none" + data.corruption.FRAME_FAULTS
#: default top of the fixed offset colour scale, in LR pixels
OFFSET_RANGE_PX = 2.0
_OFFSET_MAPS = MAP_TYPES[:3]


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
    device = next(model.parameters()).device
    with torch.no_grad(), record_internals(model) as rec:
        out = model(x.to(device))
    return rec, out


# ----------------------------------------------------------------------------------------- the maps
@dataclass
class WindowMaps:
    """The explorer's compact view of one recorded window (sample 0), in LR pixels where a unit applies.

    Attributes:
        flows: ``{'l3', 'l2', 'l1', 'cascade': (t, g, 2, h_l, w_l)}`` mask-weighted mean offset ``(dy, dx)`` over
            the 9 taps of each group, in LR pixels.
        flows_all: same keys, ``(t, 2, h_l, w_l)``, mask-weighted mean over groups and taps, in LR pixels.
        masks: same keys, ``(t, g, h_l, w_l)``, DCN mask mean over the taps (0..1).
        temporal_attn: ``(t, h, w)`` or None; spatial_attn: ``(c, h, w)`` or None.
        center_frame_idx: index of the reference frame in the window.
    """

    flows: dict
    flows_all: dict
    masks: dict
    temporal_attn: np.ndarray | None
    spatial_attn: np.ndarray | None
    center_frame_idx: int

    @property
    def num_frame(self) -> int:
        return self.flows["l1"].shape[0]

    @property
    def num_groups(self) -> int:
        return self.flows["l1"].shape[1]

    def flow(self, level: str, group: int = -1, relative: bool = True) -> np.ndarray:
        """``(t, 2, h_l, w_l)`` displacement in LR px of ``level`` (or ``'l1+cascade'``), one group or all (-1)."""
        if level not in LEVELS:
            raise EDVRError(f"unknown pyramid level {level!r}; choose one of {LEVELS}")
        if not -1 <= group < self.num_groups:
            raise EDVRError(f"deformable group {group} out of range; choose -1 (all) or 0..{self.num_groups - 1}")
        parts = ("l1", "cascade") if level == "l1+cascade" else (level,)
        flow = sum(self.flows_all[p] if group < 0 else self.flows[p][:, group] for p in parts)
        return flow - flow[self.center_frame_idx] if relative else flow


def window_maps(rec, center_frame_idx: int | None = None) -> WindowMaps:
    """Summarise recorded :class:`~edvr_lib.introspect.Internals` (sample 0) as :class:`WindowMaps`."""
    from edvr_lib.introspect import offsets_to_flow

    if isinstance(rec, WindowMaps):
        return rec
    t = rec.pcd_offsets["l1"].shape[1]
    flows, flows_all, masks = {}, {}, {}
    for level, offs in rec.pcd_offsets.items():
        offs, m = offs[0].double(), rec.pcd_masks[level][0].double()  # (t, g, 9, 2, h, w), (t, g, 9, h, w)
        scale = LEVEL_SCALE[level]
        flows[level] = (offsets_to_flow(offs.unsqueeze(2), m.unsqueeze(2)) * scale).numpy()
        flows_all[level] = (offsets_to_flow(offs, m) * scale).numpy()
        masks[level] = m.mean(dim=2).numpy()
    return WindowMaps(flows, flows_all, masks,
                      None if rec.temporal_attn is None else rec.temporal_attn[0].double().numpy(),
                      None if rec.spatial_attn is None else rec.spatial_attn[0].double().numpy(),
                      t // 2 if center_frame_idx is None else center_frame_idx)


def offset_magnitude(offsets) -> np.ndarray:
    """``(9, 2, h, w)`` offsets of one group -> ``(h, w)`` magnitude of the tap-mean (dy, dx)."""
    mean = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    return np.sqrt(mean[0] ** 2 + mean[1] ** 2)


def flow_rgb(flow, max_mag: float) -> np.ndarray:
    """``(2, h, w)`` displacement ``(dy, dx)`` -> ``(h, w, 3)`` uint8 flow colours.

    Hue = direction of ``(dx, dy)`` (see :func:`colour_wheel`), value = ``|flow| / max_mag`` clipped to 1.
    """
    from matplotlib.colors import hsv_to_rgb

    dy, dx = np.asarray(flow, dtype=np.float64)
    mag = np.sqrt(dx ** 2 + dy ** 2)
    hue = (np.arctan2(-dy, -dx) / (2 * np.pi) + 0.5) % 1.0
    val = np.clip(mag / max(float(max_mag), 1e-12), 0, 1)
    rgb = hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], axis=-1))
    return (rgb * 255).round().astype(np.uint8)


def offset_direction_rgb(offsets, max_mag: float | None = None) -> np.ndarray:
    """``(9, 2, h, w)`` -> ``(h, w, 3)`` flow colours of the tap-mean; ``max_mag`` default: the largest one."""
    mean = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    return flow_rgb(mean, max_mag or max(float(np.sqrt((mean ** 2).sum(0)).max()), 1e-6))


def _colormap(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    from matplotlib import colormaps

    norm = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return (colormaps[cmap](norm)[..., :3] * 255).round().astype(np.uint8)


def corrupt(frame, kind: str, seed: int = 0):
    """A corrupted copy of one LR frame ``(3, h, w)`` in [0, 1]: ``'none'`` or one of
    :data:`edvr_lib.data.corruption.FRAME_FAULTS` (noise of std 0.3, a black occluding square, blur, the frame
    rotated by 180 degrees), seeded by ``seed``."""
    if kind not in CORRUPTIONS:
        raise EDVRError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")
    if kind == "none":
        return frame
    from edvr_lib.data.corruption import corrupt_frame

    return corrupt_frame(frame, kind, np.random.default_rng(seed), strength=0.3)[0]


def _maps(rec) -> WindowMaps:
    return rec if isinstance(rec, WindowMaps) else window_maps(rec)


def map_values(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0, relative: bool = True,
               channel: int = -1) -> np.ndarray:
    """The raw ``(h_l, w_l)`` values behind a scalar map.

    Offset magnitude in LR pixels (relative to the centre frame's self-alignment unless ``relative=False``);
    DCN mask and attention in 0..1. ``group=-1``: all deformable groups; ``channel=-1``: mean over channels.

    Args:
        rec: recorded :class:`~edvr_lib.introspect.Internals` or their :class:`WindowMaps`.
    """
    maps = _maps(rec)
    if map_type == "offset magnitude":
        return np.sqrt((maps.flow(level, group, relative)[frame] ** 2).sum(axis=0))
    if map_type == "DCN mask":
        m = maps.masks["cascade" if level == "l1+cascade" else level][frame]
        return m.mean(axis=0) if group < 0 else m[group]
    if map_type in ("temporal attention", "spatial attention") and maps.temporal_attn is None:
        raise EDVRError("this model has no TSA fusion (with_tsa=False): no attention maps to show")
    if map_type == "temporal attention":
        return maps.temporal_attn[frame]
    if map_type == "spatial attention":
        if not -1 <= channel < maps.spatial_attn.shape[0]:
            raise EDVRError(f"channel {channel} out of range; choose -1 (mean) or 0..{maps.spatial_attn.shape[0] - 1}")
        return maps.spatial_attn.mean(axis=0) if channel < 0 else maps.spatial_attn[channel]
    raise EDVRError(f"{map_type!r} has no scalar values; choose offset magnitude, DCN mask, temporal or "
                    "spatial attention")


def _describe(map_type: str, frame: int, level: str, group: int, relative: bool, channel: int) -> str:
    grp = "all groups" if group < 0 else f"group {group}"
    rel = "relative to the centre frame's self-alignment" if relative else "raw (self-alignment not subtracted)"
    if map_type in ("offset magnitude", "offset direction"):
        return f"PCD {map_type} ({level}, {grp}, frame {frame}; {rel})"
    if map_type == "DCN mask":
        lv = "cascade (the last DCN)" if level == "l1+cascade" else level
        return f"DCN mask, mean of 9 taps ({lv}, {grp}, frame {frame})"
    if map_type == "temporal attention":
        return f"TSA temporal attention of frame {frame}"
    return "TSA spatial attention, " + ("mean over channels" if channel < 0 else f"channel {channel}")


def map_image(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0, relative: bool = True,
              channel: int = -1, offset_range_px: float = OFFSET_RANGE_PX) -> tuple[np.ndarray, str]:
    """The selected map as an image on its FIXED scale, plus a one-line description.

    Returns:
        ``(img, text)``: ``img`` is ``(h_l, w_l, 3)`` uint8; offsets use ``0 .. offset_range_px`` LR pixels,
        masks and attention 0..1 (viridis; direction in flow colours).
    """
    if map_type not in MAP_TYPES:
        raise EDVRError(f"unknown map type {map_type!r}; choose one of {MAP_TYPES}")
    if level not in LEVELS:
        raise EDVRError(f"unknown pyramid level {level!r}; choose one of {LEVELS}")
    maps = _maps(rec)
    label = _describe(map_type, frame, level, group, relative, channel)
    if map_type == "offset direction":
        flow = maps.flow(level, group, relative)[frame]
        top = float(np.sqrt((flow ** 2).sum(0)).max())
        return flow_rgb(flow, offset_range_px), (f"{label}: hue = direction, brightness = magnitude on 0 .. "
                                                 f"{offset_range_px:g} LR px (largest here {top:.2f} px)")
    vals = map_values(maps, map_type, frame, level, group, relative, channel)
    if map_type == "offset magnitude":
        return _colormap(vals, 0, offset_range_px), (f"{label}: {vals.min():.2f} .. {vals.max():.2f} LR px "
                                                     f"(scale 0 .. {offset_range_px:g} LR px)")
    return _colormap(vals, 0, 1), f"{label}: {vals.min():.3f} .. {vals.max():.3f} (scale 0..1)"


# ----------------------------------------------------------------------------------------- legends
def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.35, colour=(0, 0, 0)) -> None:
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def colour_wheel(size: int, max_mag: float) -> np.ndarray:
    """The legend of :func:`flow_rgb`: ``(size, size, 3)`` uint8, the colour of a displacement ``(dx, dy)``
    drawn at that position from the centre (x right, y down), the rim at ``max_mag`` pixels."""
    r = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    dx, dy = (xs - r) / r * max_mag, (ys - r) / r * max_mag
    img = flow_rgb(np.stack([dy, dx]), max_mag)
    img[np.hypot(xs - r, ys - r) > r] = 255
    return img


def colour_bar(height: int, vmin: float, vmax: float, cmap: str = "viridis", width: int = 14) -> np.ndarray:
    """A vertical colour bar ``(height, width, 3)`` uint8, ``vmax`` at the top."""
    values = np.linspace(vmax, vmin, height)[:, None].repeat(width, axis=1)
    return _colormap(values, vmin, vmax, cmap)


def _legend(map_type: str, height: int, offset_range_px: float, level: str) -> np.ndarray:
    """The legend panel of the explorer: a colour wheel (direction) or a colour bar with its fixed range."""
    width = 96
    panel = np.full((height, width, 3), 255, np.uint8)
    if map_type == "offset direction":
        size = min(width - 16, height - 40)
        top = (height - size) // 2
        panel[top:top + size, 8:8 + size] = colour_wheel(size, offset_range_px)
        _text(panel, "+x", (8 + size - 14, top + size // 2 + 4))
        _text(panel, "+y", (8 + size // 2 - 6, top + size - 2))
        _text(panel, "direction", (4, top - 16))
        _text(panel, f"rim {offset_range_px:g} LR px", (2, top + size + 14))
        return panel
    vmax, unit = (offset_range_px, "LR px") if map_type == "offset magnitude" else (1.0, "mask" if map_type ==
                                                                                       "DCN mask" else "attention")
    bar_h = height - 36
    panel[18:18 + bar_h, 6:20] = colour_bar(bar_h, 0.0, vmax)
    for frac in (0.0, 0.5, 1.0):
        y = 18 + round((1 - frac) * (bar_h - 1))
        _text(panel, f"{frac * vmax:.2f}".rstrip("0").rstrip(".") if frac else "0", (24, y + 4))
    _text(panel, unit, (4, 12))
    _text(panel, "fixed scale", (4, height - 6))
    return panel


def _caption(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` with a 14-pixel caption strip on top (the text cut to the width)."""
    import cv2

    while len(text) > 1 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.33, 1)[0][0] > img.shape[1] - 4:
        text = text[:-1]
    strip = np.full((14, img.shape[1], 3), 255, np.uint8)
    _text(strip, text, (2, 10), scale=0.33)
    return np.concatenate([strip, img], axis=0)


def _gray(img: np.ndarray) -> np.ndarray:
    g = (img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None]
    return np.repeat(g, 3, axis=2)


# ----------------------------------------------------------------------------------------- the explorer
_CONTROLS = ("map_type", "frame", "level", "group", "channel", "relative", "opacity", "center", "corruption",
             "corrupt_frame")


class AttentionExplorer:
    """Sliders over the PCD offsets, DCN masks and TSA attention of a trained EDVR, frame by frame of a clip.

    Give a whole clip (``clip``, the centre-frame slider moves the window through it) or one window (``lq``,
    optionally with its recorded ``internals``). Without ``model`` (and without ``internals``) the project's
    learned checkpoint is used (:func:`edvr_lib.models.tutorial_model`). For a clip of the embedded set,
    :meth:`from_embedded` reads the frames and, for the synthetic clips, the true flow.

    Args:
        model: an EDVR in eval mode; None: the shipped checkpoint (or recorded ``internals`` only).
        lq: one window ``(t, 3, h, w)`` (or ``(1, t, 3, h, w)``) of LR frames in [0, 1].
        internals: a recorded :class:`~edvr_lib.introspect.Internals` of ``lq`` (skips its forward pass).
        clip: ``(n, 3, h, w)`` LR frames of a clip (instead of ``lq``); windows are built as ``edvr test`` does
            (``reflection_circle`` at the ends).
        center: the clip's frame at the centre of the first window (default: the middle of the clip).
        true_flow: ``f(center_idx, nbr_idx) -> (2, h, w)`` ``(dy, dx)`` in LR pixels for clip frames (as
            :func:`edvr_lib.data.ground_truth_flow`), drawn beside the learned offsets.
        display_height: the shown maps are scaled (nearest) to about this many pixels tall.
        title: shown above the controls (default: the model's label, e.g. the checkpoint's name).
        offset_range_px: top of the fixed offset colour scale, LR pixels.
        max_windows: recorded windows kept (each is one forward pass).

    Attributes:
        widgets: ipywidgets by control name (:data:`_CONTROLS`) plus ``'image'``, ``'info'``, ``'title'``.
        ui: the ``VBox`` to display (``display(explorer)`` works too).
        forward_passes: model runs so far (one per new window: centre frame, corruption).
        redraws: control changes that redrew; ``render_cache`` holds the drawn pictures (PNG bytes).
        draw_seconds: ``[(seconds, served_from_cache)]`` of each redraw (what a slider move costs).
        rec: the recorded internals of the current window.
    """

    def __init__(self, model=None, lq=None, internals=None, clip=None, center: int | None = None,
                 true_flow: Callable | None = None, display_height: int = 256, title: str | None = None,
                 offset_range_px: float = OFFSET_RANGE_PX, max_windows: int = 12, clip_name: str | None = None):
        import ipywidgets as W

        if model is None and internals is None:
            from edvr_lib.models import tutorial_model

            model, label = tutorial_model()
            title = title or f"{label}: attention explorer"
        if (lq is None) == (clip is None):
            raise EDVRError("AttentionExplorer needs the LR frames: one window `lq` ((t, 3, h, w), values in [0, 1]) "
                            "or a whole clip `clip` ((n, 3, h, w)), not both")
        if internals is not None and lq is None:
            raise EDVRError("AttentionExplorer: `internals` were recorded on one window; pass that window as `lq`")
        if display_height < 64:
            raise EDVRError(f"display_height must be at least 64 pixels (the legend needs them), got {display_height}")
        if offset_range_px <= 0:
            raise EDVRError(f"offset_range_px must be > 0 (LR pixels), got {offset_range_px}")
        self.model = model
        if model is not None:
            self.num_frame, self.center_frame_idx = model.num_frame, model.center_frame_idx
        else:  # recorded internals only
            self.num_frame = internals.pcd_offsets["l1"].shape[1]
            self.center_frame_idx = self.num_frame // 2
        if clip is not None:
            if clip.dim() != 4 or clip.shape[0] < 1:
                raise EDVRError(f"clip must be (n, 3, h, w) LR frames, got {tuple(clip.shape)}")
            self.clip = clip
        else:
            self.clip = None
            lq = lq[0] if lq.dim() == 5 else lq
            if lq.shape[0] != self.num_frame:
                raise EDVRError(f"lq has {lq.shape[0]} frames; this model takes num_frame={self.num_frame}")
            self.lq = lq
        self.true_flow, self.clip_name = true_flow, clip_name
        self.offset_range_px = float(offset_range_px)
        self.display_height = display_height
        self.max_windows = max_windows
        self.forward_passes = 0
        self.redraws = 0
        self.draw_seconds: list[tuple[float, bool]] = []
        self._windows: OrderedDict = OrderedDict()
        self.render_cache: OrderedDict = OrderedDict()
        self._images: OrderedDict = OrderedDict()
        n = 1 if self.clip is None else self.clip.shape[0]
        center = (n // 2 if center is None else center) if self.clip is not None else 0
        if not 0 <= center < n:
            raise EDVRError(f"center={center} outside the clip's frames 0..{n - 1}")
        if internals is not None:
            self._windows[(0, "none", 0)] = (self.lq, internals, window_maps(internals, self.center_frame_idx))
            self.rec = internals
        first = self._window(center, "none", 0)
        maps = first[2]
        has_tsa = maps.temporal_attn is not None
        map_types = MAP_TYPES if has_tsa else MAP_TYPES[:3]
        num_channels = maps.spatial_attn.shape[0] if has_tsa else 0
        style = {"description_width": "130px"}
        t = self.num_frame
        self.widgets: dict[str, Any] = {
            "title": W.HTML(f"<b>{title or 'EDVR attention explorer'}</b>"),
            "map_type": W.Dropdown(options=map_types, value=map_types[0], description="map", style=style),
            "frame": W.IntSlider(value=0, min=0, max=t - 1, description="frame (t)", style=style),
            "level": W.Dropdown(options=LEVELS, value="l1", description="pyramid level", style=style),
            "group": W.Dropdown(options=[("all (mask-weighted)", -1)] + [(str(g), g) for g in range(maps.num_groups)],
                                value=-1, description="deform. group", style=style),
            "channel": W.Dropdown(options=[("mean over channels", -1)] + [(str(c), c) for c in range(num_channels)],
                                  value=-1, description="attention channel", style=style),
            "relative": W.Checkbox(value=True, description="offsets minus the centre frame's", indent=False,
                                   tooltip="subtract the centre frame's self-alignment offsets (they are not 0)"),
            "opacity": W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="map opacity", style=style),
            "center": W.IntSlider(value=center, min=0, max=n - 1, description="clip centre frame", style=style,
                                  disabled=self.clip is None),
            "corruption": W.Dropdown(options=CORRUPTIONS, value="none", description="corrupt a frame", style=style,
                                     disabled=model is None),
            "corrupt_frame": W.IntSlider(value=0, min=0, max=t - 1, description="corrupted frame (t)", style=style),
            "image": W.Image(format="png"),
            "info": W.HTML(),
        }
        for name in _CONTROLS:
            self.widgets[name].observe(self._on_change, names="value")
        left = W.VBox([self.widgets[k] for k in ("map_type", "frame", "level", "group", "channel")])
        right = W.VBox([self.widgets[k] for k in ("center", "opacity", "corruption", "corrupt_frame", "relative")])
        self.ui = W.VBox([self.widgets["title"], W.HBox([left, right]), self.widgets["image"], self.widgets["info"]])
        self._shown: np.ndarray | None = None
        self._batch = self._dirty = False
        self._draw()

    @classmethod
    def from_embedded(cls, clip_name: str, root=None, model=None, center: int | None = None,
                      crop: tuple[int, int, int, int] | None = None, **kwargs) -> "AttentionExplorer":
        """An explorer over a clip of the embedded set (its LR frames; the true flow for synthetic clips).

        Args:
            clip_name: a clip folder of the set (``bbb_102``, ``syn_mixed_ihc``, ...).
            root: the built set (:func:`edvr_lib.data.prepare_embedded`'s folder; default: build / reuse it).
            model: as in the constructor (default: the shipped checkpoint).
            center: first centre frame.
            crop: ``(y, x, h, w)`` LR crop (h, w multiples of 4) to keep each window's forward pass quick.
            **kwargs: passed to the constructor (``display_height``, ``title``, ``offset_range_px``, ...).
        """
        import torch

        from edvr_lib.data import embedded_paths, ground_truth_flow, prepare_embedded, read_image, synthetic_clip_names

        paths = embedded_paths(root if root is not None else prepare_embedded(progress=False))
        folder = Path(paths["lq"]) / clip_name
        files = sorted(folder.glob("*.png"))
        if not files:
            known = ", ".join(sorted(p.name for p in Path(paths["lq"]).iterdir() if p.is_dir()))
            raise EDVRError(f"no LR frames in {folder}: {clip_name!r} is not a clip of this set (clips: {known})")
        clip = torch.from_numpy(np.stack([read_image(f) for f in files]).transpose(0, 3, 1, 2).copy())
        sl = (slice(None), slice(None))
        if crop is not None:
            y, x, h, w = crop
            if h % 4 or w % 4 or h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > clip.shape[-2] or x + w > clip.shape[-1]:
                raise EDVRError(f"crop={crop} must be (y, x, h, w) inside the {clip.shape[-2]}x{clip.shape[-1]} LR "
                                "frames with h and w multiples of 4")
            sl = (slice(y, y + h), slice(x, x + w))
            clip = clip[..., sl[0], sl[1]].contiguous()
        true_flow = None
        if clip_name in synthetic_clip_names(paths["root"]):
            def true_flow(c, j):
                return ground_truth_flow(paths["root"], clip_name, c, j)[:, sl[0], sl[1]]
        return cls(model=model, clip=clip, center=center, true_flow=true_flow, clip_name=clip_name, **kwargs)

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """Current control values, by control name."""
        return {k: self.widgets[k].value for k in _CONTROLS}

    def current_image(self) -> np.ndarray:
        """The RGB ``(H, W, 3)`` uint8 picture shown now (input frame | map over the frame | true flow | legend)."""
        return self._shown

    def set(self, **values) -> None:
        """Set controls by name (``explorer.set(frame=2, map_type='DCN mask')``), like moving them."""
        for k in values:
            if k not in _CONTROLS:
                raise EDVRError(f"unknown control {k!r}; use one of {', '.join(_CONTROLS)}")
        self._batch, self._dirty = True, False
        try:
            for k, v in values.items():
                self.widgets[k].value = v
        finally:
            self._batch = False
        if self._dirty:  # one redraw for the whole call
            self.redraws += 1
            self._draw()

    def clip_indices(self, center: int | None = None) -> list[int]:
        """Clip frame of each window position for a centre frame (``[0..t-1]`` for a single window)."""
        if self.clip is None:
            return list(range(self.num_frame))
        from edvr_lib.data import generate_frame_indices

        center = self.widgets["center"].value if center is None else center
        return generate_frame_indices(center, self.num_frame, self.clip.shape[0], "reflection_circle")

    def temporal_attention_per_frame(self) -> np.ndarray | None:
        """``(t,)`` mean temporal attention of each frame of the current window (None without TSA)."""
        maps = self._window(*self._window_key())[2]
        return None if maps.temporal_attn is None else maps.temporal_attn.mean(axis=(1, 2))

    # windows -------------------------------------------------------------------------------
    def _window_key(self) -> tuple:
        s = self.state
        kind = s["corruption"]
        return s["center"], kind, s["corrupt_frame"] if kind != "none" else 0

    def _window(self, center: int, corruption: str, corrupt_frame: int):
        key = (center, corruption, corrupt_frame)
        if key in self._windows:
            self._windows.move_to_end(key)
        else:
            if self.model is None:
                raise EDVRError("AttentionExplorer: a new window needs a model (only recorded internals were given)")
            lq = self.lq if self.clip is None else self.clip[self.clip_indices(center)]
            if corruption != "none":
                lq = lq.clone()
                lq[corrupt_frame] = corrupt(lq[corrupt_frame], corruption, seed=corrupt_frame)
            rec, _ = compute_internals(self.model, lq)
            rec.aligned = None  # not shown; the largest tensor
            self.forward_passes += 1
            self._windows[key] = (lq, rec, window_maps(rec, self.center_frame_idx))
            while len(self._windows) > self.max_windows:
                self._windows.popitem(last=False)
        self.rec = self._windows[key][1]
        return self._windows[key]

    # drawing -------------------------------------------------------------------------------
    def _on_change(self, _change) -> None:
        if self._batch:
            self._dirty = True
            return
        self.redraws += 1
        self._draw()

    def _key(self) -> tuple:
        s = self.state
        mt = s["map_type"]
        is_pcd = mt in _OFFSET_MAPS
        return (*self._window_key(), mt, s["frame"] if mt != "spatial attention" else 0,
                s["level"] if is_pcd else "", s["group"] if is_pcd else 0,
                s["relative"] if mt in _OFFSET_MAPS[:2] else False,
                s["channel"] if mt == "spatial attention" else -1, round(s["opacity"], 3))

    def _panel(self, img: np.ndarray) -> np.ndarray:
        h = self.display_height
        return _upscale_nearest(img, (h, max(1, round(img.shape[1] * h / img.shape[0]))))

    def _render(self, key: tuple) -> tuple[np.ndarray, str]:
        center, corruption, corrupt_frame, map_type, frame, level, group, relative, channel, opacity = key
        lq, _rec, maps = self._window(center, corruption, corrupt_frame)
        idx = self.clip_indices(center)
        lr_pos = self.center_frame_idx if map_type == "spatial attention" else frame
        lr = self._panel(as_uint8(lq[lr_pos].permute(1, 2, 0).numpy()))
        img, text = map_image(maps, map_type, frame, level or "l1", group, relative, channel, self.offset_range_px)
        m = self._panel(img)
        base = _gray(_upscale_nearest(lr, m.shape[:2]))
        over = (opacity * m + (1 - opacity) * base).round().astype(np.uint8)
        where = f"frame {lr_pos}" + (f" = clip {idx[lr_pos]}" if self.clip is not None else "")
        panels = [_caption(lr, ("corrupted " if corruption != "none" and lr_pos == corrupt_frame else "input ")
                           + where), _caption(over, map_type)]
        extra = ""
        if self.true_flow is not None and map_type in _OFFSET_MAPS[:2]:
            true = np.asarray(self.true_flow(idx[self.center_frame_idx], idx[frame]), dtype=np.float64)
            tmag = np.sqrt((true ** 2).sum(0))
            timg = flow_rgb(true, self.offset_range_px) if map_type == "offset direction" else \
                _colormap(tmag, 0, self.offset_range_px)
            panels.append(_caption(self._panel(timg), "true flow (LR px)"))
            learned = maps.flow(level, group, relative)[frame]
            if learned.shape == true.shape:
                epe = float(np.sqrt(((learned - true) ** 2).sum(0)).mean())
                extra = (f"; against the true flow: mean end-point error {epe:.2f} LR px, a zero-motion guess "
                         f"{float(tmag.mean()):.2f} px" + ("" if relative else " (compare with relative offsets on)"))
        panels.append(_caption(_legend(map_type, self.display_height, self.offset_range_px, level), "legend"))
        gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
        shown = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        centre = " (centre frame)" if lr_pos == self.center_frame_idx else ""
        info = f"left: LR input frame {lr_pos}{centre}" + (f" (clip frame {idx[lr_pos]})" if self.clip is not None
                                                            else "") + f"; middle: {text}{extra}"
        if maps.temporal_attn is not None:
            means = maps.temporal_attn.mean(axis=(1, 2))
            marks = [f"{i}{'*' if corruption != 'none' and i == corrupt_frame else ''}"
                     f"{' (centre)' if i == self.center_frame_idx else ''}: {v:.3f}" for i, v in enumerate(means)]
            info += "<br>mean temporal attention per frame: " + ", ".join(marks)
            if corruption != "none":
                info += f" (* {corruption})"
        return shown, info

    def _draw(self) -> None:
        start = time.perf_counter()
        s = self.state
        mt = s["map_type"]
        is_pcd = mt in _OFFSET_MAPS
        self.widgets["level"].disabled = self.widgets["group"].disabled = not is_pcd
        self.widgets["relative"].disabled = mt not in _OFFSET_MAPS[:2]
        self.widgets["frame"].disabled = mt == "spatial attention"
        self.widgets["channel"].disabled = mt != "spatial attention"
        self.widgets["corrupt_frame"].disabled = self.model is None or s["corruption"] == "none"
        key = self._key()
        cached = key in self.render_cache
        if cached:
            self.render_cache.move_to_end(key)
            png, info = self.render_cache[key]
            shown = self._images.get(key)
            if shown is None:
                from edvr_lib.data.io import decode_image

                shown = as_uint8(decode_image(png, "explorer picture"))
        else:
            from edvr_lib.data.io import encode_png

            shown, info = self._render(key)
            png = encode_png(shown, compression=1)
            self.render_cache[key] = (png, info)
            while len(self.render_cache) > 512:
                self.render_cache.popitem(last=False)
        self._images[key] = shown
        self._images.move_to_end(key)
        while len(self._images) > 32:  # decoded pictures kept for current_image(); the PNGs stay cached
            self._images.popitem(last=False)
        self._shown = shown
        self.widgets["image"].value = png
        self.widgets["info"].value = info
        self.draw_seconds.append((time.perf_counter() - start, cached))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)


_UNITS = {"offset magnitude": "|offset| (LR px, relative to self-alignment)", "DCN mask": "mask (0..1)",
          "temporal attention": "attention (0..1)", "spatial attention": "attention (0..1)"}


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
    Every colour scale is FIXED, not stretched to the values: masks and attention 0..1, offsets
    ``0 .. offset_range_px`` LR pixels (relative to the centre frame's self-alignment unless ``relative=False``),
    so a map that hardly varies looks flat instead of noise looking like structure.

    Args:
        rec: recorded internals (:func:`compute_internals`).
        lq: ``(t, 3, h, w)`` LR frames.
    """
    import matplotlib.pyplot as plt

    lq = lq[0] if lq.dim() == 5 else lq
    maps = window_maps(rec)
    t = maps.num_frame
    cols = ["offset magnitude", "offset direction", "DCN mask"]
    if maps.temporal_attn is not None:
        cols.append("temporal attention")
    rows = t + 1  # the last row: spatial attention (with TSA) and the colour wheel of the direction column
    h, w = lq.shape[-2:]
    panel_w = 2.4
    figsize = (panel_w * (len(cols) + 1), (panel_w * h / w + 0.5) * rows + 1.6)
    fig, axes = plt.subplots(rows, len(cols) + 1, figsize=figsize, squeeze=False, layout="constrained")
    scales = {c: (0.0, offset_range_px if c == "offset magnitude" else 1.0) for c in cols}
    units = dict(_UNITS, **({} if relative else {"offset magnitude": "|offset| (LR px, raw)"}))
    for f in range(t):
        axes[f, 0].imshow(np.clip(lq[f].permute(1, 2, 0).numpy(), 0, 1))
        axes[f, 0].set_ylabel(f"frame {f}" + (" (centre)" if f == maps.center_frame_idx else "") + "\ny (LR px)")
        for c, map_type in enumerate(cols, start=1):
            ax = axes[f, c]
            if map_type == "offset direction":
                ax.imshow(flow_rgb(maps.flow(level, group, relative)[f], offset_range_px), interpolation="nearest")
                continue
            vmin, vmax = scales[map_type]
            im = ax.imshow(map_values(maps, map_type, f, level, group, relative), cmap="viridis", vmin=vmin,
                           vmax=vmax, interpolation="nearest")
            if f == t - 1:
                cbar = fig.colorbar(im, ax=axes[:t, c].tolist(), location="bottom", shrink=0.9, aspect=25)
                cbar.set_label(units[map_type] + (f", fixed 0..{vmax:g}" if map_type == "offset magnitude" else
                                                  ", fixed scale"), fontsize=8)
                _few_ticks(cbar)
    axes[0, 0].set_title("LR input", fontsize=9)
    grp = "all groups" if group < 0 else f"group {group}"
    for c, map_type in enumerate(cols, start=1):
        lv = f" ({level}, {grp})" if map_type in _OFFSET_MAPS else ""
        extra = (f"\n(hue = direction, brightness = |offset|\non 0..{offset_range_px:g} LR px)"
                 if map_type == "offset direction" else "")
        axes[0, c].set_title(map_type + lv + extra, fontsize=9)
    for ax in axes[t - 1]:
        ax.set_xlabel("x (LR px)")
    for ax in axes[-1]:
        ax.axis("off")
    if maps.spatial_attn is not None:
        axes[-1, 0].axis("on")
        im = axes[-1, 0].imshow(map_values(maps, "spatial attention"), cmap="viridis", vmin=0, vmax=1,
                                interpolation="nearest")
        axes[-1, 0].set_title("TSA spatial attention\n(mean over channels)", fontsize=9)
        axes[-1, 0].set_ylabel("y (LR px)")
        axes[-1, 0].set_xlabel("x (LR px)")
        cbar = fig.colorbar(im, ax=axes[-1, 0], location="bottom", shrink=0.9, aspect=25)
        cbar.set_label(_UNITS["spatial attention"] + ", fixed scale", fontsize=8)
        _few_ticks(cbar)
    wheel = axes[-1, 2]  # under the direction column: its legend
    wheel.axis("on")
    r = offset_range_px
    wheel.imshow(colour_wheel(101, r), extent=(-r, r, r, -r), interpolation="nearest")
    wheel.set_title("direction legend:\nthe colour of an offset (dx, dy)", fontsize=9)
    wheel.set_xlabel("dx (LR px)")
    wheel.set_ylabel("dy (LR px)")
    rel = "relative to the centre frame's self-alignment" if relative else "raw"
    fig.suptitle(f"{title}\n(offsets in LR pixels, {rel}; fixed colour scales shared by each column)", fontsize=10)
    return fig
