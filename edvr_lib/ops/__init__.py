"""Low-level operators: modulated deformable convolution (DCNv2) backends."""
from edvr_lib.ops.dcn_fast import split_offset_mask
from edvr_lib.ops.deform_conv import available_backends, deform_conv_pack, modulated_deform_conv2d, resolve_backend

__all__ = ["available_backends", "deform_conv_pack", "modulated_deform_conv2d", "resolve_backend",
           "split_offset_mask"]
