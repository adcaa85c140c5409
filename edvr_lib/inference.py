"""Running a trained network on real frames (shared by ``edvr infer``, ``edvr test``, training and notebooks):

* :func:`forward_padded`: any frame size (reflect-pad to the multiple the network needs, crop the output back);
* :func:`tiled_forward`: bounded memory for large frames (tiles with context, stitched; equal to untiled);
* :func:`self_ensemble_forward`: the 8 flip / transpose variants, averaged;
* :func:`super_resolve_stream`: every frame of a clip as the centre of its window, one at a time.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Container, Iterator

import numpy as np
import torch
from torch.nn import functional as F

from edvr_lib.models import SRModel
from edvr_lib.utils import EDVRError

__all__ = ["pad_to_multiple", "forward_padded", "padded_runner", "tile_boxes", "tiled_forward", "self_ensemble_forward",
           "autocast", "super_resolve_stream"]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad the bottom and right of ``x`` so that h and w are multiples of ``multiple``.

    Args:
        x, multiple: ``(b, t, c, h, w)`` or ``(b, c, h, w)``; the required divisor of h and w.

    Returns:
        The padded tensor and ``(pad_h, pad_w)``.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (0, 0)
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"  # 'reflect' needs pad < size
    flat = F.pad(x.reshape(-1, *x.shape[-3:]), (0, pad_w, 0, pad_h), mode=mode)
    return flat.reshape(*x.shape[:-3], *flat.shape[-3:]), (pad_h, pad_w)


def forward_padded(model: SRModel, x: torch.Tensor) -> torch.Tensor:
    """``model(x)`` for any h, w: reflect-pad to ``model.size_multiple``, run, crop back.

    Args:
        model: an :class:`~edvr_lib.models.SRModel` (EDVR, the bicubic baseline, an exported graph).
        x: ``(b, t, 3, h, w)``.

    Returns:
        ``(b, 3, model.scale * h, model.scale * w)``.
    """
    h, w = x.shape[-2:]
    return model(pad_to_multiple(x, model.size_multiple)[0])[..., : h * model.scale, : w * model.scale]


def padded_runner(model: SRModel) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> model(x)`` for any frame size (:func:`forward_padded`)."""
    return lambda x: forward_padded(model, x)


def tile_boxes(size: int, tile: int, pad: int, align: int = 4) -> list[tuple[int, int, int, int]]:
    """Split ``[0, size)`` into cores of ``tile`` pixels, each with up to ``pad`` pixels of context.

    Context starts are rounded down to a multiple of ``align`` (the pyramid sees the whole frame's pixel grid).

    Returns:
        ``(ctx_start, ctx_end, core_start, core_end)`` per tile.
    """
    return [(max(0, c - pad) // align * align, min(size, min(c + tile, size) + pad), c, min(c + tile, size))
            for c in range(0, size, tile)]


def tiled_forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int | None = None,
                  tile_pad: int = 16, scale: int = 4, align: int = 4) -> torch.Tensor:
    """Run ``model`` on ``x`` tile by tile and stitch the centre crops.

    Args:
        model: callable ``(b, t, c, h', w') -> (b, c, scale*h', scale*w')`` for any tile size (:func:`padded_runner`).
        x: ``(b, t, c, h, w)`` LR frames.
        tile: core size in LR pixels (None or >= the frame: one pass).
        tile_pad: context pixels on each side of a core, cropped from the output (16 is plenty for EDVR; raise
            it if you see seams).
        scale: upsampling factor of ``model``.
        align: tile context starts are multiples of this (4 = EDVR's pyramid stride).

    Returns:
        ``(b, c, scale*h, scale*w)``.
    """
    h, w = x.shape[-2:]
    if tile is None or tile <= 0 or (tile >= h and tile >= w):
        return model(x)
    if tile < align:
        raise EDVRError(f"`tile` {tile} is too small; use at least {align} LR pixels (e.g. 128)")
    out = None
    for ys, ye, cys, cye in tile_boxes(h, tile, tile_pad, align):
        for xs, xe, cxs, cxe in tile_boxes(w, tile, tile_pad, align):
            part = model(x[..., ys:ye, xs:xe])
            if out is None:
                out = part.new_zeros(*part.shape[:-2], h * scale, w * scale)
            out[..., cys * scale:cye * scale, cxs * scale:cxe * scale] = \
                part[..., (cys - ys) * scale:(cye - ys) * scale, (cxs - xs) * scale:(cxe - xs) * scale]
    return out


def autocast(device: str, precision: str, log: Callable[[str], None] | None = print):
    """The autocast context of ``precision`` on ``device`` (a no-op for float32).

    Args:
        device: torch device of the model.
        precision: ``'auto'`` (the speed policy's per-device default), ``'fp32'``, ``'bf16'`` (CUDA or CPU; emulated
            without native bf16, said once through ``log``) or ``'fp16'`` (CUDA). The DCNs run in float32.
        log: where the emulation line goes (None: nowhere).
    """
    from edvr_lib.ops.policy import autocast_dtype

    dtype = autocast_dtype(device, precision, log)
    return contextlib.nullcontext() if dtype is None else torch.autocast(torch.device(device).type, dtype=dtype)


def super_resolve_stream(model: SRModel, source, num_frame: int | None = None,
                         tile: int | None = None, tile_pad: int = 16, device: str = "cpu", precision: str = "auto",
                         padding: str = "reflection_circle", progress: bool = False,
                         skip: Container[int] = (), log: Callable[[str], None] | None = print,
                         ) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, sr_uint8_rgb)`` for every frame of ``source``, in order, one at a time.

    Args:
        model: an :class:`~edvr_lib.models.SRModel` in eval mode on ``device``.
        source: the frames (:func:`~edvr_lib.data.frame_sources.open_source`).
        num_frame: window length (default ``model.num_frame``).
        tile, tile_pad: see :func:`tiled_forward`.
        device, precision, log: see :func:`autocast`.
        padding, progress: window padding at the clip's ends; a tqdm progress bar.
        skip: indices of frames not to compute (an interrupted run finished them).
    """
    from edvr_lib.data.transforms import generate_frame_indices
    from edvr_lib.metrics import tensor2img

    num_frame = num_frame or model.num_frame
    n = len(source)
    if n < num_frame:
        raise EDVRError(f"the input has {n} frame(s) but the model uses windows of {num_frame}; "
                        f"give at least {num_frame} frames")
    from tqdm.auto import tqdm

    run_model = padded_runner(model)
    with torch.inference_mode(), autocast(device, precision, log):
        for i in tqdm(range(n), desc="edvr infer", unit="frame", disable=not progress):
            if i in skip:
                continue
            window = [source.get(j) for j in generate_frame_indices(i, num_frame, n, padding)]
            x = torch.from_numpy(np.stack(window)).permute(0, 3, 1, 2).unsqueeze(0).to(device)
            out = tiled_forward(run_model, x, tile, tile_pad, scale=model.scale)
            yield source.names[i], tensor2img(out[0].float())


_DIHEDRAL = ((1, lambda x: x.flip(-1)), (2, lambda x: x.flip(-2)), (4, lambda x: x.transpose(-1, -2)))


def _dihedral(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    for bit, op in reversed(_DIHEDRAL) if inverse else _DIHEDRAL:
        x = op(x) if k & bit else x
    return x


def self_ensemble_forward(run_model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Average of the 8 flip / transpose variants (each output transformed back).

    ``(b, t, c, h, w) -> (b, c, H, W)``.
    """
    return sum(_dihedral(run_model(_dihedral(x, k)), k, inverse=True) for k in range(8)) / 8
