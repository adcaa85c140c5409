"""Building blocks shared by the EDVR modules: residual blocks, the DCNv2 pack, LeakyReLU(0.1).

Names and state-dict keys follow BasicSR (``ResidualBlockNoBN``, ``DCNv2Pack``) so that
checkpoints trained there load here unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.ops import deform_conv_pack, split_offset_mask

__all__ = ["ResidualBlockNoBN", "DCNv2Pack", "make_layer", "lrelu"]


def make_layer(block: type[nn.Module], num_blocks: int, **kwargs) -> nn.Sequential:
    """Stack ``num_blocks`` instances of ``block(**kwargs)`` in an ``nn.Sequential``."""
    return nn.Sequential(*[block(**kwargs) for _ in range(num_blocks)])


class ResidualBlockNoBN(nn.Module):
    """Residual block without batch norm: ``x + conv2(relu(conv1(x)))``.

    Args:
        num_feat: channels ``c`` of input and output.
        res_scale: scale of the residual branch (1 in EDVR).

    Shapes:
        ``(n, c, h, w) -> (n, c, h, w)``.
    """

    def __init__(self, num_feat: int = 64, res_scale: float = 1.0):
        super().__init__()
        self.res_scale = res_scale
        self.conv1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        # Kaiming-normal scaled by 0.1 keeps the residual branch small at init (EDSR / BasicSR habit).
        for conv in (self.conv1, self.conv2):
            nn.init.kaiming_normal_(conv.weight)
            conv.weight.data.mul_(0.1)
            nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.relu(self.conv1(x)))
        if self.res_scale != 1:  # skip a full pass for the usual scale 1 (same result)
            out = out * self.res_scale
        return out.add_(x)  # in place on the conv output (its backward does not need it)


class DCNv2Pack(nn.Module):
    """Modulated deformable convolution whose offsets and masks come from a separate feature.

    ``conv_offset(feat)`` gives ``3 * g * kh * kw`` channels; they are split in three equal chunks
    ``o1, o2, m``: ``offset = cat(o1, o2)`` (torchvision layout: channel ``g*2*K + 2k`` is dy,
    ``+1`` is dx, in pixels of ``x``) and ``mask = sigmoid(m)``. Then
    ``y(p) = b + sum_k w_k * x(p + p_k + offset_k) * mask_k`` (Zhu et al. 2019, EDVR Eq. 1).

    ``conv_offset`` is zero-initialised, so a fresh pack is a plain convolution scaled by 0.5.

    Args:
        in_channels: channels of ``x`` and of ``feat``.
        out_channels: output channels.
        kernel_size: square kernel size (3 in EDVR).
        stride, padding, dilation: as in ``nn.Conv2d`` (ints).
        deformable_groups: ``g``, groups of input channels sharing one offset field (8 in EDVR).

    Shapes:
        ``x: (n, c_in, h, w)``, ``feat: (n, c_in, h, w)`` -> ``(n, c_out, h, w)``.

    No offset check inside (BasicSR's ``if mean(|offset|) > 50`` syncs the device and breaks tracing): the
    trainer reads the offsets with a forward hook on ``conv_offset`` (:func:`edvr_lib.introspect.offset_monitor`).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, deformable_groups: int = 8):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.deformable_groups = deformable_groups
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        self.conv_offset = nn.Conv2d(in_channels, deformable_groups * 3 * kernel_size * kernel_size,
                                     kernel_size, stride, padding, dilation, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Main weight uniform(+-1/sqrt(c_in*k*k)), bias 0, ``conv_offset`` all zeros."""
        stdv = 1.0 / math.sqrt(self.in_channels * self.kernel_size * self.kernel_size)
        nn.init.uniform_(self.weight, -stdv, stdv)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset.weight)
        nn.init.zeros_(self.conv_offset.bias)

    @staticmethod
    def offsets_and_mask(offset_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Offsets ``(n, 2*g*k*k, h, w)`` and sigmoid masks ``(n, g*k*k, h, w)`` from a ``conv_offset`` output."""
        offset, mask_logits = split_offset_mask(offset_mask)
        return offset, torch.sigmoid(mask_logits)

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        offset_mask = self.conv_offset(feat)
        # y = DCN(x; offsets, sigmoid(mask logits)), both from conv_offset(feat) (EDVR Eq. 1)
        return deform_conv_pack(x, offset_mask, self.weight, self.bias, self.padding, self.stride, self.dilation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, padding={self.padding}, "
                f"deformable_groups={self.deformable_groups}")


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """LeakyReLU with slope 0.1, in place (as everywhere in EDVR)."""
    return F.leaky_relu(x, 0.1, inplace=True)
