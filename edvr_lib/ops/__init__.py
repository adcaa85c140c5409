"""Operators under the network: DCNv2 behind one dispatch, the fused helpers, and the speed policy.

``from edvr_lib import ops``; ``ops.configure(dcn_backend=..., channels_last=...)`` or
``with ops.speed_policy(...)`` choose how the network runs (:mod:`edvr_lib.ops.policy`, also the precision:
``ops.autocast_dtype``, ``ops.cpu_bf16_support``).
"""
from edvr_lib.ops.dcn_fast import split_offset_mask
from edvr_lib.ops.deform_conv import available_backends, deform_conv_pack, modulated_deform_conv2d, resolve_backend
from edvr_lib.ops.fused import ConcatConv2d, frames_to_channels, select_frame
from edvr_lib.ops.policy import (SpeedPolicy, autocast_dtype, configure, cpu_bf16_support, current_policy,
                                 policy_from_env, precision_for, speed_policy)

__all__ = ["ConcatConv2d", "SpeedPolicy", "autocast_dtype", "available_backends", "configure", "cpu_bf16_support",
           "current_policy", "deform_conv_pack", "frames_to_channels", "modulated_deform_conv2d", "policy_from_env",
           "precision_for", "resolve_backend", "select_frame", "speed_policy", "split_offset_mask"]
