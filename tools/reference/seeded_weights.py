"""Implementation-independent random EDVR weights from a seed and a list of (name, shape).

Both the reference (BasicSR) side of ``make_fixtures.py`` and our tests call :func:`seeded_state_dict` with
the same names, shapes and seed, so a fixture only needs the seed and per-tensor checksums instead of
megabytes of weights. Unlike the reference's own init, ``conv_offset`` layers get non-zero weights and
biases, so the DCN offsets are a few pixels (the reference zero-initialises them, which would hide any
offset-layout bug). Uses only ``torch`` (no edvr_lib, no basicsr).
"""
from __future__ import annotations

import math

import torch


def seeded_state_dict(names_shapes: list[tuple[str, tuple[int, ...]]], seed: int,
                      offset_bias_std: float = 1.5, temporal_gain: float = 24.0) -> dict[str, torch.Tensor]:
    """Random float32 tensors for every ``(name, shape)``, deterministic in ``seed`` and the list order.

    Conv weights ~ N(0, 1 / fan_in) (``conv_offset``: N(0, 2 / fan_in)); biases ~ N(0, 0.05)
    (``conv_offset`` biases ~ N(0, ``offset_bias_std``), i.e. offsets of a few pixels). The TSA embedding
    convs (``temporal_attn*``) get ``temporal_gain / (sqrt(c) * fan_in)`` so that the correlations are O(1) and the
    temporal attention really varies between frames (with small weights every sigmoid would sit at 0.5).
    """
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name, shape in names_shapes:
        is_offset = ".conv_offset." in name
        if len(shape) > 1:
            fan_in = math.prod(shape[1:])
            gain = 2.0 if is_offset else 1.0
            if ".temporal_attn" in name:  # correlations sum over c channels: scale by 1/sqrt(c)
                gain = temporal_gain / math.sqrt(shape[0])
            std = math.sqrt(gain / fan_in)
        else:
            std = offset_bias_std if is_offset else 0.05
        out[name] = torch.randn(tuple(shape), generator=gen, dtype=torch.float64).mul_(std).float()
    return out


def checksums(state_dict: dict[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """``{name: (sum, sum of squares)}`` in float64, to check that two sides built the same weights."""
    return {k: (float(v.double().sum()), float(v.double().pow(2).sum())) for k, v in state_dict.items()}
