"""Low-level operators: modulated deformable convolution (DCNv2) backends."""
from edvr_lib.ops.deform_conv import available_backends, modulated_deform_conv2d, resolve_backend

__all__ = ["available_backends", "modulated_deform_conv2d", "resolve_backend"]
