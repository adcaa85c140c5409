"""Figures (``figures``, ``diagrams``, ``training_figures``, ``data_figures``, ``speed_figures``), the attention
explorer (``explorer``) and ``edvr docs`` (``make_docs``); import the submodules explicitly."""
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
