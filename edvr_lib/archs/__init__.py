"""EDVR network: DCNv2 pack, PCD alignment, TSA fusion, pre-deblur module, presets, checkpoints, introspection.

Imported explicitly (no registry scanning)::

    from edvr_lib.archs import EDVR, build_edvr, forward_padded, record_internals
"""
from edvr_lib.archs.arch_util import DCNv2Pack, ResidualBlockNoBN, make_layer, offset_stats, set_offset_monitor
from edvr_lib.archs.edvr_arch import EDVR, EDVRSizeError
from edvr_lib.archs.introspect import Internals, offsets_to_flow, record_internals
from edvr_lib.archs.padding import forward_padded, pad_to_multiple
from edvr_lib.archs.pcd_arch import PCDAlignment
from edvr_lib.archs.predeblur_arch import PredeblurModule
from edvr_lib.archs.presets import PRESETS, EDVRConfig, build_edvr, get_config
from edvr_lib.archs.tsa_arch import TSAFusion

# Explicit registry (name -> class), BasicSR-style but without folder scanning.
ARCH_REGISTRY = {"EDVR": EDVR, "PCDAlignment": PCDAlignment, "TSAFusion": TSAFusion,
                 "PredeblurModule": PredeblurModule}


def load_pretrained(path, **overrides):
    """See :func:`edvr_lib.archs.checkpoint.load_pretrained`."""
    from edvr_lib.archs.checkpoint import load_pretrained as _load

    return _load(path, **overrides)


__all__ = ["ARCH_REGISTRY", "DCNv2Pack", "EDVR", "EDVRConfig", "EDVRSizeError", "Internals", "PCDAlignment", "PRESETS",
           "PredeblurModule", "ResidualBlockNoBN", "TSAFusion", "build_edvr", "forward_padded", "get_config",
           "load_pretrained", "make_layer", "offset_stats", "offsets_to_flow", "pad_to_multiple", "record_internals",
           "set_offset_monitor"]
