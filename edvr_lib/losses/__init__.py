"""Training losses.

Imported explicitly::

    from edvr_lib.losses import charbonnier
"""
from edvr_lib.losses.charbonnier import charbonnier

__all__ = ["charbonnier"]
