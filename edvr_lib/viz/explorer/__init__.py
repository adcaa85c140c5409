"""Look at what EDVR aligns and attends to: an ipywidgets explorer and a static grid.

Both read forward passes recorded with :func:`edvr_lib.introspect.record_internals` (the model's own tensors):

* **PCD offsets** in **LR pixels**: the mask-weighted mean offset ``(dy, dx)`` over the 9 taps of one deformable
  group or all (:func:`edvr_lib.introspect.offsets_to_flow`); ``l1+cascade`` adds the two last DCNs'. *Relative
  to self-alignment* (the default) subtracts the centre frame's own offsets (not zero in a trained DCN), so only
  motion remains. Magnitude (viridis) or direction (hue; the colour wheel is the legend) on a FIXED range
  ``0 .. offset_range_px``;
* **DCN mask**, **TSA temporal attention** of one frame and **TSA spatial attention** (one channel or the mean), on
  the fixed scale 0..1, so a map that hardly varies looks flat.

The explorer moves the centre frame through a clip (one cached forward pass per window), can spoil one frame to
watch the temporal attention react, and draws the true flow of the synthetic embedded clips beside the offsets.

Parts: :mod:`~edvr_lib.viz.explorer.maps` (:class:`WindowMaps` and :data:`MAP_KINDS`, the one table of map kinds),
:mod:`~edvr_lib.viz.explorer.legends`, :mod:`~edvr_lib.viz.explorer.widget` (:class:`AttentionExplorer`) and
:mod:`~edvr_lib.viz.explorer.grid` (:func:`attention_grid_figure`).
"""
from edvr_lib.viz.explorer.grid import attention_grid_figure
from edvr_lib.viz.explorer.legends import colour_bar, colour_wheel
from edvr_lib.viz.explorer.legends import gray as _gray
from edvr_lib.viz.explorer.maps import (CORRUPTIONS, LEVELS, MAP_KINDS, MAP_TYPES, OFFSET_RANGE_PX, MapKind,
                                        WindowMaps, compute_internals, corrupt, flow_rgb, map_image, map_values,
                                        offset_direction_rgb, offset_magnitude, window_maps)
from edvr_lib.viz.explorer.widget import AttentionExplorer
from edvr_lib.viz.figures import _upscale_nearest

__all__ = ["MAP_KINDS", "MAP_TYPES", "MapKind", "LEVELS", "CORRUPTIONS", "OFFSET_RANGE_PX", "AttentionExplorer",
           "WindowMaps", "compute_internals", "window_maps", "offset_magnitude", "offset_direction_rgb", "flow_rgb",
           "corrupt", "map_image", "map_values", "colour_wheel", "colour_bar", "attention_grid_figure", "_gray",
           "_upscale_nearest"]
