"""Training losses, imported by name: ``from edvr_lib.losses import charbonnier, offset_fidelity``."""
from edvr_lib.losses.charbonnier import charbonnier
from edvr_lib.losses.offset_fidelity import OffsetCapture, offset_fidelity, offset_weight

__all__ = ["charbonnier", "OffsetCapture", "offset_fidelity", "offset_weight"]
