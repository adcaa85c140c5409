"""Temporal and Spatial Attention (TSA) fusion (EDVR, Wang et al. 2019, Sec. 3.3, Fig. 4).

Equation numbers are the EDVR paper's: Eq. 4 the temporal attention ``sigmoid(θ(F_i) · φ(F_ctr))``, Eq. 5 each frame
weighted by it, Eq. 6 the fusion convolution over the weighted frames. The spatial attention has no equation in
the paper (Fig. 4). PCD's are Eq. 1-3 (:mod:`edvr_lib.archs.pcd_arch`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import lrelu
from edvr_lib.ops.fused import frames_to_channels, select_frame

__all__ = ["TSAFusion"]


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class TSAFusion(nn.Module):
    """Fuse aligned frames with temporal attention, then modulate with a spatial attention pyramid.

    Temporal attention (Eq. 4-5): each frame's embedding ``temporal_attn2(F_t)`` is correlated (dot product over
    channels, per pixel) with the centre frame's embedding ``temporal_attn1(F_ctr)``; the sigmoid of that
    correlation weights the frame. The weighted frames are fused by a 1x1 conv (Eq. 6). Spatial attention: a
    three-level pyramid (max+avg pooling) on the same weighted frames gives a map ``a`` (pre-sigmoid) and an
    additive map ``add``; the output is ``fused * sigmoid(a) * 2 + add``.

    Args:
        num_feat: channels ``c`` per frame.
        num_frame: number of frames ``t``.
        center_frame_idx: index of the reference frame (default ``t // 2``).

    Shapes:
        ``aligned_feat: (b, t, c, h, w)`` with ``h, w`` divisible by 4 -> ``(b, c, h, w)``.
    """

    def __init__(self, num_feat: int = 64, num_frame: int = 5, center_frame_idx: int | None = None):
        super().__init__()
        c = num_feat
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2 if center_frame_idx is None else center_frame_idx
        # Temporal attention: 1 = reference embedding, 2 = all-frame embedding (BasicSR names).
        self.temporal_attn1 = nn.Conv2d(c, c, 3, 1, 1)
        self.temporal_attn2 = nn.Conv2d(c, c, 3, 1, 1)
        self.feat_fusion = nn.Conv2d(num_frame * c, c, 1, 1)
        # Spatial attention.
        self.max_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.avg_pool = nn.AvgPool2d(3, stride=2, padding=1)
        self.spatial_attn1 = nn.Conv2d(num_frame * c, c, 1)
        self.spatial_attn2 = nn.Conv2d(c * 2, c, 1)
        self.spatial_attn3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn4 = nn.Conv2d(c, c, 1)
        self.spatial_attn5 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_l1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_l2 = nn.Conv2d(c * 2, c, 3, 1, 1)
        self.spatial_attn_l3 = nn.Conv2d(c, c, 3, 1, 1)
        self.spatial_attn_add1 = nn.Conv2d(c, c, 1)
        self.spatial_attn_add2 = nn.Conv2d(c, c, 1)
        # The two sigmoids as modules (no parameters): their outputs are the attention maps that
        # edvr_lib.introspect records.
        self.temporal_gate = nn.Sigmoid()
        self.spatial_gate = nn.Sigmoid()

    def forward(self, aligned_feat: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = aligned_feat.size()
        # Temporal attention (Eq. 4): sigmoid of the per-pixel dot product of each frame's embedding with the
        # centre frame's embedding.
        embedding_ref = self.temporal_attn1(select_frame(aligned_feat, self.center_frame_idx))
        embedding = self.temporal_attn2(aligned_feat.reshape(-1, c, h, w)).view(b, t, c, h, w)
        temporal_attn = self.temporal_gate((embedding * embedding_ref.unsqueeze(1)).sum(dim=2))  # (b, t, h, w)

        # Each frame weighted by its attention (Eq. 5), then fused by a 1x1 conv (Eq. 6; frame-major channels).
        weighted = frames_to_channels(aligned_feat * temporal_attn.unsqueeze(2))  # (b, t*c, h, w)
        feat = lrelu(self.feat_fusion(weighted))

        # Spatial attention: a pyramid h -> h/2 -> h/4 and back, computed from the weighted frames (released code;
        # the paper's Fig. 4 draws it on the fused feature).
        attn = lrelu(self.spatial_attn1(weighted))
        attn = lrelu(self.spatial_attn2(torch.cat([self.max_pool(attn), self.avg_pool(attn)], dim=1)))
        attn_level = lrelu(self.spatial_attn_l1(attn))
        attn_level = lrelu(self.spatial_attn_l2(
            torch.cat([self.max_pool(attn_level), self.avg_pool(attn_level)], dim=1)))
        attn_level = _up2(lrelu(self.spatial_attn_l3(attn_level)))
        attn = lrelu(self.spatial_attn3(attn)) + attn_level
        attn = lrelu(self.spatial_attn4(attn))
        attn = self.spatial_attn5(_up2(attn))  # logits
        attn_add = self.spatial_attn_add2(lrelu(self.spatial_attn_add1(attn)))
        spatial_attn = self.spatial_gate(attn)
        # Modulation: fused * sigmoid(a) * 2 + add (x2 so that sigmoid ~ 0.5 at init leaves the feature unchanged).
        return torch.addcmul(attn_add, feat, spatial_attn, value=2)
