"""The explorer's maps: one recorded window summarised (:class:`WindowMaps`) and :data:`MAP_KINDS`, the table of
map kinds (controls, values, labels) that the widget, the legends and the static grid read."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from edvr_lib.data.corruption import FRAME_FAULTS
from edvr_lib.utils.errors import EDVRError

__all__ = ["MapKind", "MAP_KINDS", "MAP_TYPES", "LEVELS", "LEVEL_SCALE", "CORRUPTIONS", "OFFSET_RANGE_PX",
           "WindowMaps", "compute_internals", "window_maps", "offset_magnitude", "flow_rgb", "offset_direction_rgb",
           "colormap", "corrupt", "map_kind", "map_values", "map_image"]

LEVELS = ("l3", "l2", "l1", "cascade", "l1+cascade")
#: size of one pixel of each DCN's level in LR pixels
LEVEL_SCALE = {"l3": 4, "l2": 2, "l1": 1, "cascade": 1}
CORRUPTIONS = ("none", *FRAME_FAULTS)
#: default top of the fixed offset colour scale, in LR pixels
OFFSET_RANGE_PX = 2.0


def compute_internals(model, lq):
    """Run ``model`` (an EDVR in eval mode) once on ``lq`` ``(t, 3, h, w)`` or ``(1, t, 3, h, w)`` in [0, 1] (h, w
    multiples of 4); returns ``(internals, output (1, 3, 4h, 4w))``."""
    import torch

    from edvr_lib.introspect import record_internals

    x = lq if lq.dim() == 5 else lq.unsqueeze(0)
    with torch.no_grad(), record_internals(model) as rec:
        out = model(x.to(next(model.parameters()).device))
    return rec, out


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
    dy, dx = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    return np.sqrt(dy ** 2 + dx ** 2)


def flow_rgb(flow, max_mag: float) -> np.ndarray:
    """``(2, h, w)`` displacement ``(dy, dx)`` -> ``(h, w, 3)`` uint8 flow colours: hue = direction
    (:func:`~edvr_lib.viz.explorer.colour_wheel`), value = ``|flow| / max_mag`` clipped to 1."""
    from matplotlib.colors import hsv_to_rgb

    dy, dx = np.asarray(flow, dtype=np.float64)
    hue = (np.arctan2(-dy, -dx) / (2 * np.pi) + 0.5) % 1.0
    val = np.clip(np.sqrt(dx ** 2 + dy ** 2) / max(float(max_mag), 1e-12), 0, 1)
    rgb = hsv_to_rgb(np.stack([hue, np.ones_like(hue), val], axis=-1))
    return (rgb * 255).round().astype(np.uint8)


def offset_direction_rgb(offsets, max_mag: float | None = None) -> np.ndarray:
    """``(9, 2, h, w)`` -> ``(h, w, 3)`` flow colours of the tap-mean; ``max_mag`` default: the largest one."""
    mean = np.asarray(offsets, dtype=np.float64).mean(axis=0)
    return flow_rgb(mean, max_mag or max(float(np.sqrt((mean ** 2).sum(0)).max()), 1e-6))


def colormap(values: np.ndarray, vmin: float, vmax: float, cmap: str = "viridis") -> np.ndarray:
    """``(h, w)`` values -> ``(h, w, 3)`` uint8 colours of ``cmap`` on the fixed range ``vmin .. vmax``."""
    from matplotlib import colormaps

    norm = np.clip((values - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    return (colormaps[cmap](norm)[..., :3] * 255).round().astype(np.uint8)


def corrupt(frame, kind: str, seed: int = 0):
    """A corrupted copy of one LR frame ``(3, h, w)`` in [0, 1]: ``'none'`` or one of
    :data:`edvr_lib.data.corruption.FRAME_FAULTS` at strength 0.3, seeded by ``seed``."""
    if kind not in CORRUPTIONS:
        raise EDVRError(f"unknown corruption {kind!r}; choose one of {CORRUPTIONS}")
    if kind == "none":
        return frame
    from edvr_lib.data.corruption import corrupt_frame

    return corrupt_frame(frame, kind, np.random.default_rng(seed), strength=0.3)[0]


# ----------------------------------------------------------------------------------------- the table
def _magnitude(maps: WindowMaps, frame, level, group, relative, _channel):
    return np.sqrt((maps.flow(level, group, relative)[frame] ** 2).sum(axis=0))


def _mask(maps: WindowMaps, frame, level, group, _relative, _channel):
    m = maps.masks["cascade" if level == "l1+cascade" else level][frame]
    return m.mean(axis=0) if group < 0 else m[group]


def _temporal(maps: WindowMaps, frame, *_):
    return maps.temporal_attn[frame]


def _spatial(maps: WindowMaps, _frame, _level, _group, _relative, channel):
    if not -1 <= channel < maps.spatial_attn.shape[0]:
        raise EDVRError(f"channel {channel} out of range; choose -1 (mean) or 0..{maps.spatial_attn.shape[0] - 1}")
    return maps.spatial_attn.mean(axis=0) if channel < 0 else maps.spatial_attn[channel]


@dataclass(frozen=True)
class MapKind:
    """One kind of map the explorer shows.

    Attributes:
        name: its label (the dropdown's option).
        controls: the controls that change it (``'frame'``, ``'level'``, ``'group'``, ``'relative'``, ``'channel'``).
        values: ``(maps, frame, level, group, relative, channel) -> (h_l, w_l)``; None: drawn in flow colours.
        legend: the legend's one-word unit; axis: the colour bar label of the static grid.
        offsets: values in LR pixels on ``0 .. offset_range_px`` (else 0..1).
        needs_tsa: only a model with TSA fusion has it.
    """

    name: str
    controls: frozenset
    values: Callable | None
    legend: str
    axis: str
    offsets: bool = False
    needs_tsa: bool = False

    def describe(self, frame: int, level: str, group: int, relative: bool, channel: int) -> str:
        """One line saying what is shown."""
        grp = "all groups" if group < 0 else f"group {group}"
        if self.offsets:
            rel = "relative to the centre frame's self-alignment" if relative else "raw (self-alignment not subtracted)"
            return f"PCD {self.name} ({level}, {grp}, frame {frame}; {rel})"
        if "level" in self.controls:
            lv = "cascade (the last DCN)" if level == "l1+cascade" else level
            return f"{self.name}, mean of 9 taps ({lv}, {grp}, frame {frame})"
        if "frame" in self.controls:
            return f"TSA {self.name} of frame {frame}"
        return f"TSA {self.name}, " + ("mean over channels" if channel < 0 else f"channel {channel}")


_PCD = frozenset({"frame", "level", "group"})
#: every map kind, in the dropdown's order
MAP_KINDS = {k.name: k for k in (
    MapKind("offset magnitude", _PCD | {"relative"}, _magnitude, "LR px",
            "|offset| (LR px, relative to self-alignment)", offsets=True),
    MapKind("offset direction", _PCD | {"relative"}, None, "direction", "", offsets=True),
    MapKind("DCN mask", _PCD, _mask, "mask", "mask (0..1)"),
    MapKind("temporal attention", frozenset({"frame"}), _temporal, "attention", "attention (0..1)", needs_tsa=True),
    MapKind("spatial attention", frozenset({"channel"}), _spatial, "attention", "attention (0..1)", needs_tsa=True),
)}
MAP_TYPES = tuple(MAP_KINDS)


def map_kind(name: str) -> MapKind:
    """The row of :data:`MAP_KINDS` called ``name``."""
    if name not in MAP_KINDS:
        raise EDVRError(f"unknown map type {name!r}; choose one of {MAP_TYPES}")
    return MAP_KINDS[name]


def map_values(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0, relative: bool = True,
               channel: int = -1) -> np.ndarray:
    """The raw ``(h_l, w_l)`` values behind a scalar map of ``rec`` (recorded internals or :class:`WindowMaps`):
    offset magnitude in LR pixels (relative to self-alignment unless ``relative=False``), DCN mask and attention in
    0..1. ``group=-1``: all deformable groups; ``channel=-1``: mean over channels."""
    kind, maps = map_kind(map_type), window_maps(rec)
    if kind.values is None:
        raise EDVRError(f"{map_type!r} has no scalar values; choose one of "
                        f"{[k.name for k in MAP_KINDS.values() if k.values is not None]}")
    if kind.needs_tsa and maps.temporal_attn is None:
        raise EDVRError("this model has no TSA fusion (with_tsa=False): no attention maps to show")
    return kind.values(maps, frame, level, group, relative, channel)


def map_image(rec, map_type: str, frame: int = 0, level: str = "l1", group: int = 0, relative: bool = True,
              channel: int = -1, offset_range_px: float = OFFSET_RANGE_PX) -> tuple[np.ndarray, str]:
    """The selected map as an image on its FIXED scale, plus a one-line description.

    Returns:
        ``(img, text)``: ``img`` is ``(h_l, w_l, 3)`` uint8; offsets use ``0 .. offset_range_px`` LR pixels,
        masks and attention 0..1 (viridis; direction in flow colours).
    """
    kind = map_kind(map_type)
    if level not in LEVELS:
        raise EDVRError(f"unknown pyramid level {level!r}; choose one of {LEVELS}")
    maps = window_maps(rec)
    label = kind.describe(frame, level, group, relative, channel)
    if kind.values is None:
        flow = maps.flow(level, group, relative)[frame]
        top = float(np.sqrt((flow ** 2).sum(0)).max())
        return flow_rgb(flow, offset_range_px), (f"{label}: hue = direction, brightness = magnitude on 0 .. "
                                                 f"{offset_range_px:g} LR px (largest here {top:.2f} px)")
    vals = map_values(maps, map_type, frame, level, group, relative, channel)
    if kind.offsets:
        return colormap(vals, 0, offset_range_px), (f"{label}: {vals.min():.2f} .. {vals.max():.2f} LR px "
                                                    f"(scale 0 .. {offset_range_px:g} LR px)")
    return colormap(vals, 0, 1), f"{label}: {vals.min():.3f} .. {vals.max():.3f} (scale 0..1)"
