"""``edvr infer``: super-resolve a folder of frames or a video, streaming and (optionally) tiled.

* every frame is restored as the centre of a ``num_frame`` window, padded at the clip's ends
  with ``reflection_circle`` (as EDVR's SR test configs do);
* frames are decoded on demand and kept in a small cache (at most ``2 * num_frame - 1``
  frames), so memory does not grow with the clip's length;
* ``--tile PX`` cuts each frame into tiles of ``PX`` LR pixels, each run with ``--tile-pad``
  pixels of context that are cropped away again, so memory is bounded for 4K input and
  the stitched result matches the untiled one;
* any frame size works (reflect-pad to the multiple the network needs, crop back);
* the output (PNG folder or video file) appears only when every frame succeeded;
* ``--backend onnxruntime`` runs a graph written by ``edvr export`` (:class:`edvr_lib.export.OnnxModel`) through
  the same padding, tiling and streaming.

Example::

    edvr infer --input my_frames/ --output out_frames/ --weights model.pth --tile 128
    edvr infer --input clip.mp4 --output clip_x4.mp4 --model bicubic
    edvr infer --input my_frames/ --output out_frames/ --backend onnxruntime --weights model.onnx
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from edvr_lib.data.frame_sources import VIDEO_EXTS, open_source
from edvr_lib.inference import super_resolve_stream
from edvr_lib.utils import EDVRError, atomic_path

__all__ = ["infer", "load_backend", "BACKENDS"]

#: What runs the network: PyTorch (``.pth`` checkpoints) or onnxruntime (``.onnx`` files from ``edvr export``).
BACKENDS = ("torch", "onnxruntime")


def load_backend(weights: str | os.PathLike | None = None, backend: str = "torch", model: str = "edvr",
                 device: str = "cpu"):
    """The network :func:`infer` runs: a torch module (:func:`edvr_lib.models.load_model`) or an onnxruntime graph.

    Args:
        weights: a checkpoint (``torch``; None: the shipped one) or an ``.onnx`` file from ``edvr export``
            (``onnxruntime``, required).
        backend: ``'torch'`` or ``'onnxruntime'``.
        model: ``'edvr'`` or ``'bicubic'`` (torch only).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'``; ``'auto'`` for onnxruntime picks CUDA when its provider exists.

    Returns:
        A model in eval mode with ``num_frame``, ``size_multiple``, ``hr_in`` and ``model(x)``
        (``(b, t, 3, h, w) -> (b, 3, 4h, 4w)``).
    """
    onnx_named = weights is not None and Path(weights).suffix.lower() == ".onnx"
    if backend == "torch":
        if onnx_named:
            raise EDVRError(f"--weights {weights} is an ONNX file; run it with --backend onnxruntime")
        from edvr_lib.models import load_model

        return load_model(weights, model, device=device)
    if backend != "onnxruntime":
        raise EDVRError(f"unknown --backend {backend!r}; use {' or '.join(BACKENDS)}")
    if model != "edvr":
        raise EDVRError(f"--model {model} with --backend onnxruntime: the baseline is not exported; "
                        "use --backend torch for --model bicubic")
    if weights is None or not onnx_named:
        hint = f"`edvr export --weights {weights} --output model.onnx`" if weights else "`edvr export`"
        raise EDVRError(f"--backend onnxruntime needs --weights FILE.onnx{f' (got {weights})' if weights else ''}; "
                        f"make one with {hint}")
    from edvr_lib.export import load_onnx, onnxruntime_device

    return load_onnx(weights, device=onnxruntime_device(device))


def _write_video(frames: Iterator[tuple[str, np.ndarray]], dest: Path, fps: float) -> int:
    import cv2

    count = 0
    with atomic_path(dest) as tmp:
        writer = None
        try:
            for _, img in frames:
                if writer is None:
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps, (img.shape[1], img.shape[0]))
                    if not writer.isOpened():
                        raise EDVRError(f"cannot write video {dest} (OpenCV has no mp4v encoder here); "
                                        "write PNG frames to a folder instead")
                writer.write(np.ascontiguousarray(img[..., ::-1]))
                count += 1
        finally:
            if writer is not None:
                writer.release()
    return count


def _write_folder(frames: Iterator[tuple[str, np.ndarray]], dest: Path) -> int:
    """Write PNGs into a temporary sibling folder, then move them into ``dest`` (no partial output)."""
    from edvr_lib.data.io import write_png

    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    count = 0
    try:
        for name, img in frames:
            write_png(tmp / (Path(name).stem + ".png"), img)
            count += 1
        dest.mkdir(exist_ok=True)
        for f in sorted(tmp.iterdir()):
            os.replace(f, dest / f.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return count


def infer(input: str | os.PathLike, output: str | os.PathLike, model: torch.nn.Module, tile: int | None = None,
          tile_pad: int = 16, device: str = "cpu", precision: str = "fp32", progress: bool = False) -> dict:
    """Super-resolve every frame of ``input`` into ``output`` (a folder of PNGs, or a video if it ends in .mp4, ...).

    Returns:
        ``{'frames': n, 'output': path, 'input_size': (h, w), 'max_cached_frames': k}``.
    """
    output = Path(output)
    source = open_source(input, getattr(model, "num_frame", 5))
    try:
        frames = super_resolve_stream(model, source, tile=tile, tile_pad=tile_pad, device=device, precision=precision,
                                      progress=progress)
        if output.suffix.lower() in VIDEO_EXTS:
            count = _write_video(frames, output, source.fps)
        else:
            if output.exists() and not output.is_dir():
                raise EDVRError(f"--output {output} is a file; give a folder or a video name ending in .mp4")
            count = _write_folder(frames, output)
    finally:
        source.close()
    return {"frames": count, "output": str(output), "input_size": source.size, "max_cached_frames": source.max_cached}


