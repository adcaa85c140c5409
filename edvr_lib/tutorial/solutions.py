"""Reference solutions of the notebooks' exercises (read them after trying), checked by
:mod:`edvr_lib.tutorial.exercises`: a function per *implement it* exercise, named as in the notebook's cell, and
:data:`ANSWERS` for the *predict, then reveal* ones. The notebooks never print them before the learner's answer.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.nn import functional as F

__all__ = ["ANSWERS", "conv_gflop", "reflection_circle_indices", "dcn_grid_sample", "pcd_level", "temporal_attention",
           "cosine_restart_lr", "psnr_uint8", "reflect_pad_to_multiple"]

#: predict-then-reveal answers, ``'<notebook>.<name>'`` -> value (compared with a tolerance by ``exercises.check``)
ANSWERS = {
    "00.weights_mib": 3_300_131 * 4 / 2**20,      # float32: 4 bytes per parameter
    "00.gflop_ratio": 4.0,                          # twice the side, four times the pixels
    "01.lr_crop_ratio": 4.0,                        # x4: the LR crop is gt_size // 4
    "01.flat_value": 0.5,                           # weights sum to 1: a constant stays that constant
    "02.pyramid_px": [1.5, 3.0],                    # 6 px at L3 (/4), then up x2 and times 2 at L2
    "03.worst_fault": "noise",                      # spoils every pixel with a large error
    "03.most_trusted": "centre",                    # the reference correlates best with itself
    "04.lr_50001": 1e-7,                            # scheduler epoch 50,000: the end of the first cycle
    "04.lr_50002": 4e-4,                            # the restart, one iteration later
    "05.y_higher": True,                            # chroma errors no longer count
    "05.crop_higher": True,                         # the extrapolated border is left out
    "06.opset_21": "ok",                            # DeformConv exists in every opset from 19 on
    "06.direct_30x42": "refused",                   # 30 and 42 are not multiples of 4
}


def conv_gflop(c_in: int, c_out: int, k: int, h: int, w: int) -> float:
    """GFLOP of one ``k x k`` convolution (stride 1, same padding) on an ``h x w`` map: 2 FLOPs per multiply-add,
    ``c_in * k * k`` multiply-adds for each of the ``c_out * h * w`` outputs (the bias is not counted)."""
    return 2.0 * c_in * c_out * k * k * h * w / 1e9


def reflection_circle_indices(center: int, num_frame: int, num_total: int) -> list[int]:
    """The frames of the window around ``center`` with ``reflection_circle`` padding: a position before frame 0
    takes the frame mirrored about the *window* (``center + half - i``), one after the last frame
    ``center - half - (i - last)``."""
    half, last = num_frame // 2, num_total - 1
    out = []
    for i in range(center - half, center + half + 1):
        if i < 0:
            out.append(center + half - i)
        elif i > last:
            out.append(center - half - (i - last))
        else:
            out.append(i)
    return out


def dcn_grid_sample(x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None = None, padding: int = 1) -> torch.Tensor:
    """Modulated deformable 3x3 convolution (DCNv2, stride 1) from ``grid_sample`` and one matrix product.

    ``y(p) = b + sum_k w_k · x(p + p_k + Δp_k) · m_k``: each of the 9 taps of each deformable group samples ``x``
    bilinearly at its moved position (zero outside the frame), the samples are weighted by the mask, and the
    weights contract channels and taps.

    Args:
        x: ``(n, c, h, w)``.
        offset: ``(n, 2·g·9, h, w)``, torchvision's layout: channel ``g·18 + 2k`` is Δy, ``g·18 + 2k + 1`` is Δx for
            tap ``k`` (row-major over the 3x3 kernel), in pixels.
        mask: ``(n, g·9, h, w)``, channel ``g·9 + k``.
        weight: ``(c_out, c, 3, 3)``; bias: ``(c_out,)`` or None.
        padding: 1 (same size).

    Returns:
        ``(n, c_out, h, w)``, equal to ``torchvision.ops.deform_conv2d(x, offset, weight, bias, padding=1,
        mask=mask)`` to float32 rounding.
    """
    n, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    taps = kh * kw
    groups = mask.shape[1] // taps
    ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype, device=x.device),
                            torch.arange(w, dtype=x.dtype, device=x.device), indexing="ij")
    off = offset.view(n, groups, taps, 2, h, w)
    samples = []
    for k in range(taps):
        ki, kj = divmod(k, kw)
        py = ys + (ki - padding) + off[:, :, k, 0]  # (n, g, h, w)
        px = xs + (kj - padding) + off[:, :, k, 1]
        # grid_sample with align_corners=True maps -1 .. 1 to pixel centres 0 .. size - 1; outside: zeros
        grid = torch.stack([2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1], dim=-1)  # (n, g, h, w, 2)
        xg = x.view(n * groups, c // groups, h, w)
        s = F.grid_sample(xg, grid.view(n * groups, h, w, 2), mode="bilinear", padding_mode="zeros",
                          align_corners=True)
        samples.append(s.view(n, groups, c // groups, h, w) * mask.view(n, groups, 1, taps, h, w)[:, :, :, k])
    cols = torch.stack(samples, dim=3).reshape(n, c * taps, h, w)  # channel-major, then tap: as weight.view
    out = torch.einsum("ok,nkhw->nohw", weight.reshape(weight.shape[0], -1), cols)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def pcd_level(pcd, level: str, nbr: torch.Tensor, ref: torch.Tensor, up_offset: torch.Tensor,
              up_feat: torch.Tensor) -> torch.Tensor:
    """One level below L3 of :class:`~edvr_lib.archs.PCDAlignment` (EDVR Eq. 2-3), written from its docstring.

    Args:
        pcd: the alignment module (its ``offset_conv1/2/3``, ``dcn_pack`` and ``feat_conv`` of ``level``).
        level: ``'l2'`` or ``'l1'``.
        nbr, ref: this level's neighbour and reference features, ``(n, c, h, w)``.
        up_offset: the coarser level's offset feature, upsampled x2 and doubled, ``(n, c, h, w)``.
        up_feat: the coarser level's aligned feature, upsampled x2, ``(n, c, h, w)``.

    Returns:
        this level's aligned feature ``(n, c, h, w)`` (with its activation below L1; L1's goes to the cascade as is).
    """
    def act(x):
        return F.leaky_relu(x, 0.1)

    offset = act(pcd.offset_conv1[level]([nbr, ref]))            # offset feature from [neighbour, reference]
    offset = act(pcd.offset_conv2[level]([offset, up_offset]))    # ... with the coarser level's
    offset = act(pcd.offset_conv3[level](offset))
    feat = pcd.dcn_pack[level](nbr, offset)                       # deformable alignment (Eq. 1)
    feat = pcd.feat_conv[level]([feat, up_feat])                  # merged with the coarser aligned feature
    return feat if level == "l1" else act(feat)


def temporal_attention(aligned: torch.Tensor, fusion, center: int) -> torch.Tensor:
    """TSA's temporal attention (EDVR Eq. 4) from a :class:`~edvr_lib.archs.TSAFusion`'s two embedding convolutions.

    Args:
        aligned: ``(b, t, c, h, w)`` aligned features.
        fusion: the ``TSAFusion`` whose ``temporal_attn1`` (centre frame) and ``temporal_attn2`` (every frame) embed.
        center: index of the centre frame.

    Returns:
        ``(b, t, h, w)``: ``sigmoid(sum_c θ(F_i) · φ(F_center))`` per frame and pixel.
    """
    b, t, c, h, w = aligned.shape
    emb_ref = fusion.temporal_attn1(aligned[:, center])
    emb = fusion.temporal_attn2(aligned.reshape(b * t, c, h, w)).view(b, t, c, h, w)
    return torch.sigmoid((emb * emb_ref.unsqueeze(1)).sum(dim=2))


def cosine_restart_lr(epoch: int, base_lr: float, periods, restart_weights, eta_min: float) -> float:
    """The learning rate of scheduler epoch ``epoch`` under cosine annealing with restarts: find the cycle the epoch
    falls in (a cycle ends *at* its cumulative period), then ``eta_min + weight · (base - eta_min) · (1 + cos(π ·
    progress)) / 2`` with ``progress`` the fraction of that cycle done."""
    end = 0
    for period, weight in zip(periods, restart_weights):
        start, end = end, end + period
        if epoch <= end:
            return eta_min + weight * 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * (epoch - start) / period))
    return eta_min + restart_weights[-1] * 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi))


def psnr_uint8(img: np.ndarray, ref: np.ndarray, crop_border: int = 0) -> float:
    """PSNR in dB of two ``(h, w, c)`` images in [0, 255], peak 255, MSE in float64 over every channel, after
    removing ``crop_border`` pixels on each side; ``inf`` for identical images."""
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        ref = ref[crop_border:-crop_border, crop_border:-crop_border]
    mse = np.mean((img.astype(np.float64) - ref.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def reflect_pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom and right of a ``(b, t, c, h, w)`` window so that ``h`` and ``w`` become multiples of
    ``multiple`` (no padding when they already are)."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if not pad_h and not pad_w:
        return x
    flat = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pad_w, 0, pad_h), mode="reflect")
    return flat.reshape(*x.shape[:-2], h + pad_h, w + pad_w)
