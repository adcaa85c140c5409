"""The EDVR network and nothing else: blocks, PCD alignment, TSA fusion, pre-deblur module, EDVR, its config.

Imported explicitly (no registry scanning)::

    from edvr_lib.archs import EDVR, EDVRConfig, build_edvr

This package is the ground floor: it imports only ``torch``, :mod:`edvr_lib.ops` and :mod:`edvr_lib.utils`
(``docs/architecture.md``). Checkpoints live in :mod:`edvr_lib.models`, padding and tiling in
:mod:`edvr_lib.inference`, recording internals in :mod:`edvr_lib.introspect`.
"""
from edvr_lib.archs.blocks import DCNv2Pack, ResidualBlockNoBN, make_layer
from edvr_lib.archs.config import PRESETS, EDVRConfig, build_edvr, get_config
from edvr_lib.archs.edvr_arch import EDVR, EDVRSizeError
from edvr_lib.archs.pcd_arch import PCDAlignment
from edvr_lib.archs.predeblur_arch import PredeblurModule
from edvr_lib.archs.tsa_arch import TSAFusion

__all__ = ["DCNv2Pack", "EDVR", "EDVRConfig", "EDVRSizeError", "PCDAlignment", "PRESETS", "PredeblurModule",
           "ResidualBlockNoBN", "TSAFusion", "build_edvr", "get_config", "make_layer"]

