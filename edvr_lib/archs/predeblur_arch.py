"""Pre-deblurring module used by the EDVR deblurring / blurry-SR models (EDVR, Sec. 3.4)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import ResidualBlockNoBN, lrelu

__all__ = ["PredeblurModule"]


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class PredeblurModule(nn.Module):
    """A small three-level encoder-decoder of residual blocks applied to every frame before alignment.

    Args:
        num_in_ch: input channels (3).
        num_feat: channels ``c``.
        hr_in: input is high resolution: two extra stride-2 convs (``stride_conv_hr1/2``) divide h, w by 4.

    Shapes:
        ``(n, 3, h, w) -> (n, c, h, w)``, or ``(n, c, h/4, w/4)`` with ``hr_in``.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, hr_in: bool = False):
        super().__init__()
        self.hr_in = hr_in
        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        if hr_in:
            self.stride_conv_hr1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
            self.stride_conv_hr2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.stride_conv_l3 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.resblock_l3 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l2_1 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l2_2 = ResidualBlockNoBN(num_feat=num_feat)
        self.resblock_l1 = nn.ModuleList([ResidualBlockNoBN(num_feat=num_feat) for _ in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat_l1 = lrelu(self.conv_first(x))
        if self.hr_in:
            feat_l1 = lrelu(self.stride_conv_hr1(feat_l1))
            feat_l1 = lrelu(self.stride_conv_hr2(feat_l1))
        feat_l2 = lrelu(self.stride_conv_l2(feat_l1))
        feat_l3 = lrelu(self.stride_conv_l3(feat_l2))
        # Decoder: coarse level upsampled and added to the finer one.
        feat_l3 = _up2(self.resblock_l3(feat_l3))
        feat_l2 = self.resblock_l2_1(feat_l2) + feat_l3
        feat_l2 = _up2(self.resblock_l2_2(feat_l2))
        for i in range(2):
            feat_l1 = self.resblock_l1[i](feat_l1)
        feat_l1 = feat_l1 + feat_l2
        for i in range(2, 5):
            feat_l1 = self.resblock_l1[i](feat_l1)
        return feat_l1
