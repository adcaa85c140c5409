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

Parts: :mod:`~edvr_lib.viz.explorer.maps` (the recorded window summarised, and :data:`MAP_KINDS`, the one table of
map kinds everything else reads), :mod:`~edvr_lib.viz.explorer.legends`, :mod:`~edvr_lib.viz.explorer.widget`
(:class:`AttentionExplorer`) and :mod:`~edvr_lib.viz.explorer.grid` (:func:`attention_grid_figure`).
"""
from edvr_lib.viz.explorer.grid import attention_grid_figure
from edvr_lib.viz.explorer.legends import colour_bar, colour_wheel
from edvr_lib.viz.explorer.legends import gray as _gray
from edvr_lib.viz.explorer.maps import (CORRUPTIONS, LEVELS, MAP_KINDS, MAP_TYPES, OFFSET_RANGE_PX, MapKind, WindowMaps,
                                        compute_internals, corrupt, flow_rgb, map_image, map_values, offset_direction_rgb,
                                        offset_magnitude, window_maps)
from edvr_lib.viz.explorer.widget import AttentionExplorer
from edvr_lib.viz.figures import _upscale_nearest

__all__ = ["MAP_KINDS", "MAP_TYPES", "MapKind", "LEVELS", "CORRUPTIONS", "OFFSET_RANGE_PX", "AttentionExplorer",
           "WindowMaps", "compute_internals", "window_maps", "offset_magnitude", "offset_direction_rgb", "flow_rgb",
           "corrupt", "map_image", "map_values", "colour_wheel", "colour_bar", "attention_grid_figure", "_gray",
           "_upscale_nearest"]
