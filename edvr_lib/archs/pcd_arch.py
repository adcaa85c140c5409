"""Pyramid, Cascading and Deformable (PCD) alignment (EDVR, Wang et al. 2019, Sec. 3.2)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import DCNv2Pack, conv_cat, lrelu

__all__ = ["PCDAlignment"]

_LEVELS = ("l3", "l2", "l1")  # coarse to fine; also the registration (state-dict) order


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PCDAlignment(nn.Module):
    """Align a neighbour frame's feature pyramid to the reference (centre) frame's pyramid.

    At each level ``l`` (L3 coarsest, L1 finest) an "offset feature" is computed from
    ``cat(neighbour, reference)`` and refined with the (x2 upsampled, x2 scaled) offset feature of the
    coarser level; a :class:`DCNv2Pack` predicts offsets and masks from it and samples the neighbour
    feature. The aligned features are merged coarse-to-fine, and a final cascading DCN refines L1.

    Args:
        num_feat: channels ``c`` of every pyramid level.
        deformable_groups: ``g`` of every DCN (8 in EDVR).
        dcn_backend: DCN backend name passed to :class:`DCNv2Pack` (None: default).

    Shapes:
        ``nbr_feat_l`` and ``ref_feat_l``: lists ``[L1, L2, L3]`` of ``(n, c, h, w)``, ``(n, c, h/2, w/2)``,
        ``(n, c, h/4, w/4)``; returns the aligned L1 feature ``(n, c, h, w)``. ``n`` may hold several frames
        (EDVR passes all ``b * t`` frames at once); the reference pyramid then has ``n`` or ``n / t`` samples
        (one reference per ``t`` consecutive frames: its share of each ``cat`` + conv runs once, see
        :func:`edvr_lib.archs.blocks.conv_cat`).
    """

    def __init__(self, num_feat: int = 64, deformable_groups: int = 8, dcn_backend: str | None = None):
        super().__init__()
        c = num_feat
        self.offset_conv1 = nn.ModuleDict()
        self.offset_conv2 = nn.ModuleDict()
        self.offset_conv3 = nn.ModuleDict()
        self.dcn_pack = nn.ModuleDict()
        self.feat_conv = nn.ModuleDict()
        # Registration order (dict by dict, l3 -> l1) defines the state-dict key order.
        for level in _LEVELS:
            self.offset_conv1[level] = nn.Conv2d(c * 2, c, 3, 1, 1)
        for level in _LEVELS:
            # L3 has no coarser level: its second conv sees only its own offset feature.
            self.offset_conv2[level] = nn.Conv2d(c if level == "l3" else c * 2, c, 3, 1, 1)
        for level in _LEVELS[1:]:
            self.offset_conv3[level] = nn.Conv2d(c, c, 3, 1, 1)
        for level in _LEVELS:
            self.dcn_pack[level] = DCNv2Pack(c, c, 3, padding=1, deformable_groups=deformable_groups,
                                             dcn_backend=dcn_backend)
        for level in _LEVELS[1:]:
            self.feat_conv[level] = nn.Conv2d(c * 2, c, 3, 1, 1)
        # Cascading refinement on L1 (EDVR Fig. 3, the light-purple box).
        self.cas_offset_conv1 = nn.Conv2d(c * 2, c, 3, 1, 1)
        self.cas_offset_conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.cas_dcnpack = DCNv2Pack(c, c, 3, padding=1, deformable_groups=deformable_groups, dcn_backend=dcn_backend)

    def forward(self, nbr_feat_l: list[torch.Tensor], ref_feat_l: list[torch.Tensor]) -> torch.Tensor:
        up_offset = up_feat = None
        feat = None
        for i in (3, 2, 1):
            level = f"l{i}"
            nbr, ref = nbr_feat_l[i - 1], ref_feat_l[i - 1]
            # Offset feature from [neighbour, reference] (neighbour first), EDVR Eq. 2.
            offset = lrelu(conv_cat(self.offset_conv1[level], [nbr, ref]))
            if i == 3:
                offset = lrelu(self.offset_conv2[level](offset))
            else:
                # Refine with the coarser level's offset feature, upsampled and doubled (Eq. 3).
                offset = lrelu(conv_cat(self.offset_conv2[level], [offset, up_offset]))
                offset = lrelu(self.offset_conv3[level](offset))
            feat = self.dcn_pack[level](nbr, offset)
            if i < 3:
                feat = conv_cat(self.feat_conv[level], [feat, up_feat])
            if i > 1:
                # No activation on L1 before the cascade.
                feat = lrelu(feat)
                up_offset = _up2(offset).mul_(2)
                up_feat = _up2(feat)
        # Cascading: one more DCN on L1, offsets from [aligned L1, reference L1].
        offset = lrelu(self.cas_offset_conv2(lrelu(conv_cat(self.cas_offset_conv1, [feat, ref_feat_l[0]]))))
        return lrelu(self.cas_dcnpack(feat, offset))
