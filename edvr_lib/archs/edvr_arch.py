"""EDVR: Video Restoration with Enhanced Deformable Convolutional Networks (Wang et al., CVPR-W 2019).

State-dict names, order and shapes equal BasicSR 1.4.2's ``EDVR`` for every official configuration, so
BasicSR checkpoints load strict (see :mod:`edvr_lib.models`).

One addition: ``hr_in=True`` without ``with_predeblur`` works here (it crashes in BasicSR). Like the original
code's ``conv_first_1/2/3``, the input passes ``conv_first`` (stride 1) and then two stride-2 convs, registered
as ``stride_conv_hr1`` and ``stride_conv_hr2`` (the names BasicSR uses for the same convs inside the
pre-deblur module); the checkpoint loader maps the original ``conv_first_1/2/3`` keys onto
``conv_first`` / ``stride_conv_hr1`` / ``stride_conv_hr2``.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import ResidualBlockNoBN, lrelu, make_layer
from edvr_lib.archs.pcd_arch import PCDAlignment
from edvr_lib.archs.predeblur_arch import PredeblurModule
from edvr_lib.archs.tsa_arch import TSAFusion
from edvr_lib.archs.config import EDVRConfig, get_config
from edvr_lib.ops.fused import frames_to_channels, memory_format, select_frame
from edvr_lib.ops.policy import channels_last_for
from edvr_lib.utils.errors import EDVRError

__all__ = ["EDVR", "EDVRSizeError"]


class EDVRSizeError(EDVRError, ValueError):
    """The input's height or width is not a multiple the network needs (4, or 16 with ``hr_in``)."""


class EDVR(nn.Module):
    """EDVR video super-resolution / restoration network.

    Pipeline: per-frame features (``conv_first`` or the pre-deblur module) -> residual blocks -> a 3-level
    pyramid -> PCD alignment of every frame to the centre frame -> TSA fusion (or a 1x1 conv) ->
    reconstruction residual blocks -> two pixel-shuffle x2 upsamplings -> + bilinear x4 of the centre frame.

    Args:
        config: an :class:`~edvr_lib.archs.EDVRConfig` (``build_edvr('M')`` builds a preset); keyword arguments
            with BasicSR's ``network_g`` names (``num_feat=128, num_reconstruct_block=40``) override its fields, so
            ``EDVR(**network_g)`` works as in BasicSR. Fields: ``num_in_ch`` / ``num_out_ch`` (3, RGB),
            ``num_feat`` (channels ``c``: 64 for M, 128 for L), ``num_frame`` (``t``: 5, or 7 for Vimeo-90K),
            ``deformable_groups`` (8), ``num_extract_block`` (5), ``num_reconstruct_block`` (10 for M, 40 for L),
            ``center_frame_idx`` (default ``t // 2``), ``hr_in`` (input already high resolution: deblurring),
            ``with_predeblur`` (pre-deblur module instead of ``conv_first``), ``with_tsa`` (TSA fusion, else a 1x1
            conv over the ``t * c`` stacked channels).

    Attributes:
        config: the resolved :class:`~edvr_lib.archs.EDVRConfig` (saved with checkpoints).

    How it runs (the DCN kernel, NHWC activations) is the speed policy's choice, not the model's
    (:mod:`edvr_lib.ops.policy`); results are the same to float32 rounding.

    Shapes:
        ``x: (b, t, 3, h, w)`` float RGB in [0, 1], ``h, w`` divisible by 4 (16 with ``hr_in``; use
        :func:`edvr_lib.inference.forward_padded` for other sizes) -> ``(b, 3, 4h, 4w)`` (``(b, 3, h, w)`` with
        ``hr_in``).
    """

    def __init__(self, config: EDVRConfig | None = None, **overrides):
        super().__init__()
        self.config = config = get_config(config if config is not None else EDVRConfig(), **overrides)
        num_in_ch, num_feat, num_frame = config.num_in_ch, config.num_feat, config.num_frame
        hr_in, with_predeblur, with_tsa = config.hr_in, config.with_predeblur, config.with_tsa
        deformable_groups, num_out_ch = config.deformable_groups, config.num_out_ch

        # Per-frame features (L1).
        if with_predeblur:
            self.predeblur = PredeblurModule(num_in_ch=num_in_ch, num_feat=num_feat, hr_in=hr_in)
            self.conv_1x1 = nn.Conv2d(num_feat, num_feat, 1, 1)
        else:
            self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
            if hr_in:  # not in BasicSR (crashes there); the original code's conv_first_2/3
                self.stride_conv_hr1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
                self.stride_conv_hr2 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, config.num_extract_block, num_feat=num_feat)

        # Pyramid: L2 and L3 by stride-2 convs.
        self.conv_l2_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l2_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.conv_l3_1 = nn.Conv2d(num_feat, num_feat, 3, 2, 1)
        self.conv_l3_2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)

        self.pcd_align = PCDAlignment(num_feat=num_feat, deformable_groups=deformable_groups)
        if with_tsa:
            self.fusion = TSAFusion(num_feat=num_feat, num_frame=num_frame, center_frame_idx=config.center)
        else:
            self.fusion = nn.Conv2d(num_frame * num_feat, num_feat, 1, 1)

        self.reconstruction = make_layer(ResidualBlockNoBN, config.num_reconstruct_block, num_feat=num_feat)
        # Upsampling head; the 64 channels after the second shuffle are hard-coded (as in the reference).
        self.upconv1 = nn.Conv2d(num_feat, num_feat * 4, 3, 1, 1)
        self.upconv2 = nn.Conv2d(num_feat, 64 * 4, 3, 1, 1)
        self.pixel_shuffle = nn.PixelShuffle(2)
        self.conv_hr = nn.Conv2d(64, 64, 3, 1, 1)
        self.conv_last = nn.Conv2d(64, num_out_ch, 3, 1, 1)

    # The config's fields, read where the forward needs them (one source of truth: ``self.config``).
    num_in_ch = property(lambda self: self.config.num_in_ch)
    num_feat = property(lambda self: self.config.num_feat)
    num_frame = property(lambda self: self.config.num_frame)
    center_frame_idx = property(lambda self: self.config.center)
    hr_in = property(lambda self: self.config.hr_in)
    with_predeblur = property(lambda self: self.config.with_predeblur)
    with_tsa = property(lambda self: self.config.with_tsa)

    @property
    def size_multiple(self) -> int:
        """H and W of the input must be multiples of this (4, or 16 with ``hr_in``)."""
        return 16 if self.hr_in else 4

    @property
    def scale(self) -> int:
        """Output size / input size: 4, or 1 with ``hr_in`` (deblurring keeps the size)."""
        return 1 if self.hr_in else 4

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 5:
            raise EDVRSizeError(f"EDVR expects frames shaped (b, t, c, h, w); got shape {tuple(x.shape)}")
        _, t, c, h, w = x.shape
        if t != self.num_frame or c != self.num_in_ch:
            raise EDVRSizeError(f"EDVR was built for {self.num_frame} frames of {self.num_in_ch} channels; got input "
                                f"(b, t, c, h, w) = {tuple(x.shape)}")
        m = self.size_multiple
        if h % m or w % m:
            raise EDVRSizeError(
                f"EDVR needs height and width divisible by {m}{' (hr_in=True)' if self.hr_in else ''}; got "
                f"{h}x{w}. Pad the input, e.g. with edvr_lib.inference.forward_padded(model, x), which reflect-pads "
                f"to a multiple of {m} and crops the output back.")

    def extract_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Per-frame feature pyramid.

        Args:
            x: ``(b, t, 3, H, W)``.

        Returns:
            ``[L1, L2, L3]`` shaped ``(b, t, c, h, w)``, ``(b, t, c, h/2, w/2)``, ``(b, t, c, h/4, w/4)`` where
            ``h, w = H, W`` (or ``H/4, W/4`` with ``hr_in``).
        """
        b, t, c, h, w = x.size()
        # NHWC from here on when the speed policy says so: every conv, pooling and upsampling keeps the layout
        frames = x.reshape(-1, c, h, w).contiguous(memory_format=memory_format(channels_last_for(x.device)))
        if self.with_predeblur:
            feat_l1 = self.conv_1x1(self.predeblur(frames))
        else:
            feat_l1 = lrelu(self.conv_first(frames))
            if self.hr_in:
                feat_l1 = lrelu(self.stride_conv_hr1(feat_l1))
                feat_l1 = lrelu(self.stride_conv_hr2(feat_l1))
        feat_l1 = self.feature_extraction(feat_l1)
        feat_l2 = lrelu(self.conv_l2_2(lrelu(self.conv_l2_1(feat_l1))))
        feat_l3 = lrelu(self.conv_l3_2(lrelu(self.conv_l3_1(feat_l2))))
        return [f.view(b, t, *f.shape[1:]) for f in (feat_l1, feat_l2, feat_l3)]

    def align(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """PCD-align every frame (the centre frame too) to the centre frame.

        Args:
            feats: ``[L1, L2, L3]`` from :meth:`extract_features`.

        Returns:
            ``(b, t, c, h, w)`` aligned L1 features.
        """
        b, t, c, h, w = feats[0].shape
        ctr = self.center_frame_idx
        # All b*t (neighbour, reference) pairs in one batch (frames within a sample are contiguous); the
        # reference is given once per sample and shared by its t frames.
        nbr = [f.reshape(b * t, *f.shape[2:]) for f in feats]
        ref = [select_frame(f, ctr) for f in feats]
        return self.pcd_align(nbr, ref).view(b, t, c, h, w)

    def fuse(self, aligned: torch.Tensor) -> torch.Tensor:
        """``(b, t, c, h, w)`` aligned features -> ``(b, c, h, w)`` fused feature."""
        if self.with_tsa:
            return self.fusion(aligned)
        b, t, c, h, w = aligned.shape
        return self.fusion(frames_to_channels(aligned))  # no activation (as in the reference)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Restore the centre frame; see the class docstring for shapes."""
        self._check_input(x)
        x_center = x[:, self.center_frame_idx].contiguous()
        # Features -> PCD alignment to the centre frame -> TSA fusion (Fig. 2).
        aligned = self.align(self.extract_features(x))
        feat = self.fuse(aligned)

        # Reconstruction blocks, then two pixel-shuffle x2 upsamplings.
        out = self.reconstruction(feat)
        out = lrelu(self.pixel_shuffle(self.upconv1(out)))
        out = lrelu(self.pixel_shuffle(self.upconv2(out)))
        out = lrelu(self.conv_hr(out))
        out = self.conv_last(out)
        # The network predicts a residual on the centre frame, upsampled x4 bilinearly (released code).
        if self.hr_in:
            base = x_center
        else:
            base = F.interpolate(x_center, scale_factor=4, mode="bilinear", align_corners=False)
        return (out + base).contiguous()  # plain NCHW for the caller, whatever the internal layout
