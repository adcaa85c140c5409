"""Pyramid, Cascading and Deformable (PCD) alignment (EDVR, Wang et al. 2019, Sec. 3.2, Fig. 3).

Equation numbers are the EDVR paper's: Eq. 1 the modulated deformable convolution, Eq. 2 offsets from the
concatenated neighbour and reference features, Eq. 3 the pyramid (offsets ``h`` and aligned features ``g`` from the
coarser level, upsampled). TSA's are Eq. 4-6 (:mod:`edvr_lib.archs.tsa_arch`).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import DCNv2Pack, lrelu
from edvr_lib.ops.fused import ConcatConv2d

__all__ = ["PCDAlignment"]

_LEVELS = ("l3", "l2", "l1")  # coarse to fine; also the registration (state-dict) order


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Align a neighbour frame's feature pyramid to the reference (centre) frame's pyramid.

    At each level ``l`` (L3 coarsest, L1 finest) an offset feature ``dP^l`` is computed from the neighbour and
    reference features ``[F_t^l, F_ref^l]`` (Eq. 2) and, below L3, refined with the coarser level's offset feature
    upsampled x2 (Eq. 3; the released code also multiplies that feature by 2). A :class:`DCNv2Pack` predicts
    offsets and masks from ``dP^l`` and samples the neighbour feature; aligned features are merged coarse to fine,
    and a last cascading DCN refines L1 against the reference.

    ``ConcatConv2d`` layers are convolutions over the concatenation of their inputs (``conv(cat([a, b]))``),
    computed without building it; the reference frame's share runs once per sample.

    Args:
        num_feat: channels ``c`` of every pyramid level.
        deformable_groups: ``g`` of every DCN (8 in EDVR).

    Shapes:
        ``nbr_feat_l`` and ``ref_feat_l``: lists ``[L1, L2, L3]`` of ``(n, c, h, w)``, ``(n, c, h/2, w/2)``,
        ``(n, c, h/4, w/4)``; returns the aligned L1 feature ``(n, c, h, w)``. ``n`` may hold several frames
        (EDVR passes all ``b * t`` frames at once); the reference pyramid then has ``n`` or ``n / t`` samples
        (one reference per ``t`` consecutive frames).
    """

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8):
        super().__init__()
        c = num_feat
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        # Registration order (dict by dict, l3 -> l1) defines the state-dict key order.
        for level in _LEVELS:
            self.offset_conv1[level] = ConcatConv2d(c * 2, c, 3, 1, 1)
        for level in _LEVELS:
            # L3 has no coarser level: its second conv sees only its own offset feature.
            self.offset_conv2[level] = nn.Conv2d(c, c, 3, 1, 1) if level == "l3" else ConcatConv2d(c * 2, c, 3, 1, 1)
        for level in _LEVELS[1:]:
            self.offset_conv3[level] = nn.Conv2d(c, c, 3, 1, 1)
        for level in _LEVELS:
            self.dcn_pack[level] = DCNv2Pack(c, c, 3, padding=1, deformable_groups=deformable_groups)
        for level in _LEVELS[1:]:
            self.feat_conv[level] = ConcatConv2d(c * 2, c, 3, 1, 1)
        # Cascading refinement on L1 (Fig. 3, the light-purple box).
        self.cas_offset_conv1 = ConcatConv2d(c * 2, c, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(c, c, 3, padding=1, deformable_groups=deformable_groups)

    def forward(self, nbr_feat_l: list[torch.Tensor], ref_feat_l: list[torch.Tensor]) -> torch.Tensor:
        up_offset = up_feat = None
        for i in (3, 2, 1):
            level = f"l{i}"
            nbr, ref = nbr_feat_l[i - 1], ref_feat_l[i - 1]
            # Offset feature from [neighbour, reference] (Eq. 2).
            offset = lrelu(self.offset_conv1[level]([nbr, ref]))
            if i == 3:
                offset = lrelu(self.offset_conv2[level](offset))
            else:
                # ... refined with the coarser level's offset feature, upsampled (Eq. 3).
                offset = lrelu(self.offset_conv2[level]([offset, up_offset]))
                offset = lrelu(self.offset_conv3[level](offset))
            # Deformable alignment of the neighbour feature (Eq. 1; the DConv of Eq. 3).
            feat = self.dcn_pack[level](nbr, offset)
            if i < 3:
                # ... merged with the coarser level's aligned feature, upsampled (Eq. 3, g).
                feat = self.feat_conv[level]([feat, up_feat])
            if i > 1:
                feat = lrelu(feat)  # no activation on L1 before the cascade
                up_offset = _up2(offset).mul_(2)  # x2: released code, not in the paper's Eq. 3
                up_feat = _up2(feat)
        # Cascade: one more DCN on L1, offsets from [aligned L1, reference L1] (Fig. 3, top right).
        offset = lrelu(self.cas_offset_conv2(lrelu(self.cas_offset_conv1([feat, ref_feat_l[0]]))))
        return lrelu(self.cas_dcnpack(feat, offset))
