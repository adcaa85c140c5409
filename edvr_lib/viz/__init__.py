"""Figures and the attention explorer.

``edvr_lib.viz.figures``: comparison panels, error maps, temporal profile, PSNR per frame, the ablations.
``edvr_lib.viz.explorer``: the ipywidgets attention explorer and its static grid.
``edvr_lib.viz.diagrams``: block diagrams of EDVR, PCD and TSA with computed tensor shapes.
``edvr_lib.viz.make_docs``: ``edvr docs`` / ``make docs`` (figures + metrics table under ``docs/``).
Import the submodules explicitly (``data_figures`` belongs to the data tutorial and is not imported here).
"""
from edvr_lib.viz.figures import (ablation_figure, comparison_figure, error_map_figure, psnr_per_frame_figure,
                                  temporal_profile, temporal_profile_figure)

__all__ = ["ablation_figure", "comparison_figure", "error_map_figure", "psnr_per_frame_figure", "temporal_profile",
           "temporal_profile_figure", "AttentionExplorer", "attention_grid_figure"]


def __getattr__(name):
    # the explorer imports ipywidgets: load it on first use
    if name in ("AttentionExplorer", "attention_grid_figure"):
        from edvr_lib.viz import explorer

        return getattr(explorer, name)
    raise AttributeError(f"module 'edvr_lib.viz' has no attribute {name!r}")
