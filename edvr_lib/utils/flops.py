"""Analytic FLOP count of EDVR (multiply-adds x 2 of every convolution; elementwise work ignored).

Follows the layers of :mod:`edvr_lib.archs`; used by ``edvr env`` to turn a measured
convolution throughput into time estimates, and by the benchmarks to report achieved GFLOP/s.
"""
from __future__ import annotations


def edvr_gflop(num_feat: int = 64, num_frame: int = 5, num_extract_block: int = 5, num_reconstruct_block: int = 10,
               h: int = 64, w: int = 64, with_tsa: bool = True, deformable_groups: int = 8) -> float:
    """GFLOP of one EDVR forward (one output frame) for LR input ``(1, num_frame, 3, h, w)`` (no predeblur)."""
    c, t, k = num_feat, num_frame, 9
    a1, a2, a3 = h * w, (h // 2) * (w // 2), (h // 4) * (w // 4)
    off = deformable_groups * 3 * k  # conv_offset output channels (dy, dx, mask per tap and group)

    def conv(cin, cout, area, ksize=k):
        return cin * cout * ksize * area

    # feature extraction, per frame: conv_first, residual blocks, two stride-2 levels
    per_frame = conv(3, c, a1) + 2 * num_extract_block * conv(c, c, a1)
    per_frame += 2 * conv(c, c, a2) + 2 * conv(c, c, a3)
    # PCD, per frame: L3 (2 offset convs), L2 and L1 (3 offset convs + feat_conv), cascade; DCN = conv_offset + main conv
    dcn = lambda area: conv(c, off, area) + conv(c, c, area)  # noqa: E731
    per_frame += conv(2 * c, c, a3) + conv(c, c, a3) + dcn(a3)
    for area in (a2, a1):
        per_frame += conv(2 * c, c, area) + conv(2 * c, c, area) + conv(c, c, area) + dcn(area) + conv(2 * c, c, area)
    per_frame += conv(2 * c, c, a1) + conv(c, c, a1) + dcn(a1)
    total = t * per_frame
    if with_tsa:
        q2, q4 = a1 // 4 if h % 2 == 0 else a2, a3
        total += conv(c, c, a1) + t * conv(c, c, a1)  # temporal embeddings (centre + all frames)
        total += 2 * conv(t * c, c, a1, 1)  # feat_fusion, spatial_attn1
        total += conv(2 * c, c, q2, 1) + conv(c, c, q2, 1)  # spatial_attn2, spatial_attn_l1
        total += conv(2 * c, c, q4) + conv(c, c, q4)  # spatial_attn_l2, spatial_attn_l3
        total += conv(c, c, q2) + conv(c, c, q2, 1)  # spatial_attn3, spatial_attn4
        total += conv(c, c, a1) + 2 * conv(c, c, a1, 1)  # spatial_attn5, add1, add2
    else:
        total += conv(t * c, c, a1, 1)
    total += 2 * num_reconstruct_block * conv(c, c, a1)
    # upsampling head: upconv1 (C -> 4C), upconv2 (C -> 256) at 2x, conv_hr and conv_last (64 ch) at 4x
    total += conv(c, 4 * c, a1) + conv(c, 256, 4 * a1) + conv(64, 64, 16 * a1) + conv(64, 3, 16 * a1)
    return 2 * total / 1e9
