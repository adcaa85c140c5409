"""``edvr infer``: super-resolve a folder of frames or a video, streaming and (optionally) tiled.

* every frame is restored as the centre of a ``num_frame`` window, padded at the clip's ends
  with ``reflection_circle`` (as EDVR's SR test configs do);
* frames are decoded on demand and kept in a small cache (at most ``2 * num_frame - 1``
  frames), so memory does not grow with the clip's length;
* ``--tile PX`` cuts each frame into tiles of ``PX`` LR pixels, each run with ``--tile-pad``
  pixels of context that are cropped away again, so memory is bounded for 4K input and
  the stitched result matches the untiled one;
* any frame size works (reflect-pad to the multiple the network needs, crop back);
* the output (PNG folder or video file) appears only when every frame succeeded.

Example::

    edvr infer --input my_frames/ --output out_frames/ --weights model.pth --tile 128
    edvr infer --input clip.mp4 --output clip_x4.mp4 --model bicubic
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import tempfile
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from edvr_lib.utils import EDVRError, atomic_path

__all__ = ["DEFAULT_CHECKPOINT", "FrameSource", "FolderSource", "VideoSource", "open_source", "tiled_forward",
           "tile_boxes", "bicubic_model", "load_model", "super_resolve_stream", "infer", "add_arguments", "run"]

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where the project's trained checkpoint lives once the training issue ships it.
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "edvr_tiny_embedded.pth"
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


# ----------------------------------------------------------------------------------------- frame sources
class FrameSource:
    """Random access to the frames of a clip, decoded on demand with a bounded cache.

    Subclasses implement ``_decode(i)``; ``get(i)`` returns RGB float32 ``(h, w, 3)`` in [0, 1].

    Args:
        cache_size: most frames kept decoded at once.
    """

    names: list[str]
    size: tuple[int, int]  # (h, w)
    fps: float = 25.0

    def __init__(self, cache_size: int = 9):
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.max_cached = 0  # peak number of cached frames (tests check memory stays bounded)

    def __len__(self) -> int:
        return len(self.names)

    def _decode(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def get(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        img = self._decode(i)
        if img.shape[:2] != self.size:
            raise EDVRError(f"frame {self.names[i]} is {img.shape[1]}x{img.shape[0]} but the clip's frames are "
                            f"{self.size[1]}x{self.size[0]}; all frames of a clip must have the same size")
        self._cache[i] = img
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self.max_cached = max(self.max_cached, len(self._cache))
        return img

    def close(self) -> None:
        self._cache.clear()


class FolderSource(FrameSource):
    """The image files of a folder, in sorted name order (sizes checked up front from the headers)."""

    def __init__(self, folder: str | os.PathLike, cache_size: int = 9):
        super().__init__(cache_size)
        folder = Path(folder)
        if not folder.exists():
            raise EDVRError(f"input folder not found: {folder}")
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not self.paths:
            raise EDVRError(f"no image frames ({', '.join(IMAGE_EXTS)}) in {folder}; put the clip's frames there "
                            "(e.g. 00000000.png, 00000001.png, ...)")
        self.names = [p.name for p in self.paths]
        self.size = self._header_size(self.paths[0])
        for p in self.paths[1:]:  # cheap check before any compute: headers only
            size = self._header_size(p)
            if size != self.size:
                raise EDVRError(f"mixed frame sizes: {p} is {size[1]}x{size[0]} but {self.paths[0].name} is "
                                f"{self.size[1]}x{self.size[0]}; all frames of a clip must have the same size")

    @staticmethod
    def _header_size(path: Path) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return im.size[1], im.size[0]
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise EDVRError(f"unreadable frame: {path} (not a valid image); replace or remove it") from None

    def _decode(self, i: int) -> np.ndarray:
        from edvr_lib.data.io import read_image

        return read_image(self.paths[i])


class VideoSource(FrameSource):
    """Frames of a video file read sequentially with ``cv2.VideoCapture``.

    Frames are counted once up front (``grab`` only), then decoded in order; the windows
    of consecutive centres only move forward, so a cache of ``2 * num_frame - 1`` frames
    is enough and the file is read once more.
    """

    def __init__(self, path: str | os.PathLike, cache_size: int = 9):
        import cv2

        super().__init__(cache_size)
        self.path = Path(path)
        if not self.path.is_file():
            raise EDVRError(f"input video not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise EDVRError(f"cannot open video {self.path} (unsupported codec or not a video); "
                            "extract its frames to PNG with ffmpeg and pass the folder instead")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        count = 0
        while cap.grab():
            count += 1
        cap.release()
        if count == 0:
            raise EDVRError(f"video {self.path} has no readable frames")
        self.names = [f"{i:08d}.png" for i in range(count)]
        self._cap = cv2.VideoCapture(str(self.path))
        self._next = 0  # index of the frame the next read returns

    def _decode(self, i: int) -> np.ndarray:
        import cv2

        if i < self._next:  # going back: reopen (not needed by the streaming order)
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            self._next = 0
        rgb = None
        while self._next <= i:
            ok, frame = self._cap.read()
            if not ok:
                raise EDVRError(f"cannot decode frame {self._next} of {self.path}")
            rgb = np.ascontiguousarray(frame[..., ::-1], dtype=np.float32) / 255.0
            self._next += 1
            if self._next <= i:  # keep skipped frames: they are the next windows' neighbours
                self._cache[self._next - 1] = rgb
        return rgb

    def close(self) -> None:
        super().close()
        self._cap.release()


def open_source(path: str | os.PathLike, num_frame: int = 5) -> FrameSource:
    """A :class:`FolderSource` or :class:`VideoSource` for ``path`` with a cache for ``num_frame`` windows."""
    path = Path(path)
    cache = 2 * num_frame - 1
    if path.is_dir():
        return FolderSource(path, cache)
    if path.suffix.lower() in VIDEO_EXTS:
        return VideoSource(path, cache)
    if not path.exists():
        raise EDVRError(f"input not found: {path}; pass a folder of frames or a video file")
    raise EDVRError(f"cannot use {path} as input: pass a folder of frames or a video ({', '.join(VIDEO_EXTS)})")


# ----------------------------------------------------------------------------------------- tiling
def tile_boxes(size: int, tile: int, pad: int, align: int = 4) -> list[tuple[int, int, int, int]]:
    """Split ``[0, size)`` into cores of ``tile`` pixels, each with up to ``pad`` pixels of context.

    Context starts are rounded down to a multiple of ``align`` so the network's stride-2
    pyramid sees the same pixel grid as on the whole frame.

    Returns:
        ``(ctx_start, ctx_end, core_start, core_end)`` per tile.
    """
    boxes = []
    for core_start in range(0, size, tile):
        core_end = min(core_start + tile, size)
        ctx_start = max(0, core_start - pad) // align * align
        ctx_end = min(size, core_end + pad)
        boxes.append((ctx_start, ctx_end, core_start, core_end))
    return boxes


def tiled_forward(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int | None = None,
                  tile_pad: int = 16, scale: int = 4, align: int = 4) -> torch.Tensor:
    """Run ``model`` on ``x`` tile by tile and stitch the centre crops.

    Args:
        model: callable ``(b, t, c, h', w') -> (b, c, scale*h', scale*w')`` for any tile size
            (e.g. ``lambda x: forward_padded(net, x)``).
        x: ``(b, t, c, h, w)`` LR frames.
        tile: core size in LR pixels (None or >= the frame: one pass).
        tile_pad: context pixels on each side of a core, cropped from the output. The
            result equals the untiled one when the network's influence beyond ``tile_pad``
            pixels is negligible (16 is plenty for EDVR in practice; raise it if you see seams).
        scale: upsampling factor of ``model``.
        align: tile context starts are multiples of this (4 = EDVR's pyramid stride).

    Returns:
        ``(b, c, scale*h, scale*w)``.
    """
    h, w = x.shape[-2:]
    if tile is None or tile <= 0 or (tile >= h and tile >= w):
        return model(x)
    if tile < align:
        raise EDVRError(f"--tile {tile} is too small; use at least {align} LR pixels (e.g. 128)")
    out = None
    for ys, ye, cys, cye in tile_boxes(h, tile, tile_pad, align):
        for xs, xe, cxs, cxe in tile_boxes(w, tile, tile_pad, align):
            part = model(x[..., ys:ye, xs:xe])
            if out is None:
                out = part.new_zeros(*part.shape[:-2], h * scale, w * scale)
            out[..., cys * scale:cye * scale, cxs * scale:cxe * scale] = \
                part[..., (cys - ys) * scale:(cye - ys) * scale, (cxs - xs) * scale:(cxe - xs) * scale]
    return out


# ----------------------------------------------------------------------------------------- models
class BicubicUpsampler(torch.nn.Module):
    """Baseline 'model': MATLAB-style bicubic x4 of the centre frame (``(b, t, c, h, w) -> (b, c, 4h, 4w)``).

    Uses :func:`edvr_lib.data.imresize.imresize` (the resize the papers' "Bicubic" rows use).
    """

    def __init__(self, num_frame: int = 5, scale: int = 4):
        super().__init__()
        self.num_frame, self.scale, self.center_frame_idx = num_frame, scale, num_frame // 2
        self.size_multiple, self.hr_in = 1, False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from edvr_lib.data.imresize import imresize

        return imresize(x[:, self.center_frame_idx].float(), self.scale).clamp(0, 1)


def bicubic_model(num_frame: int = 5) -> BicubicUpsampler:
    """The bicubic baseline with the model interface (used by ``--model bicubic``)."""
    return BicubicUpsampler(num_frame)


def load_model(weights: str | os.PathLike | None = None, model: str = "edvr", num_frame: int = 5,
               device: str = "cpu") -> torch.nn.Module:
    """The network ``edvr infer`` / ``edvr test`` runs, in eval mode on ``device``.

    Args:
        weights: checkpoint path (any format :func:`edvr_lib.load_pretrained` accepts); None uses
            :data:`DEFAULT_CHECKPOINT` if it exists.
        model: ``'edvr'`` or ``'bicubic'`` (the baseline; needs no weights).
        num_frame: frames per window for the bicubic baseline.
        device: torch device string.
    """
    if model == "bicubic":
        return bicubic_model(num_frame).to(device).eval()
    if model != "edvr":
        raise EDVRError(f"unknown --model {model!r}; use 'edvr' or 'bicubic'")
    if weights is None:
        if not DEFAULT_CHECKPOINT.exists():
            raise EDVRError(
                f"no --weights given and the project's shipped checkpoint {DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)} "
                "does not exist yet. Pass --weights FILE (e.g. an official BasicSR EDVR_*.pth or a checkpoint "
                "from `edvr train`), or use --model bicubic for the baseline.")
        weights = DEFAULT_CHECKPOINT
    weights = Path(weights)
    if not weights.is_file():
        raise EDVRError(f"checkpoint not found: {weights}; check the --weights path")
    import edvr_lib

    try:
        net = edvr_lib.load_pretrained(str(weights))
    except EDVRError as err:
        if str(weights) in str(err):
            raise
        raise EDVRError(f"cannot load checkpoint {weights}: {err}") from None
    except Exception as err:  # torch.load / state-dict errors: name the file
        raise EDVRError(f"cannot load checkpoint {weights}: {type(err).__name__}: {err}. "
                        "Pass an EDVR checkpoint (.pth) that load_pretrained accepts.") from None
    return net.to(device).eval()


# ----------------------------------------------------------------------------------------- streaming
def _autocast(device: str, precision: str):
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    if dtype is None:
        raise EDVRError(f"unknown --precision {precision!r}; use fp32, fp16 or bf16")
    if not str(device).startswith("cuda"):
        raise EDVRError(f"--precision {precision} needs a CUDA device (got --device {device}); use fp32 on CPU")
    return torch.autocast(device_type="cuda", dtype=dtype)


def super_resolve_stream(model: torch.nn.Module, source: FrameSource, num_frame: int | None = None,
                         tile: int | None = None, tile_pad: int = 16, device: str = "cpu", precision: str = "fp32",
                         padding: str = "reflection_circle", progress: bool = False) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, sr_uint8_rgb)`` for every frame of ``source``, in order, one at a time.

    Args:
        model: EDVR (or the bicubic baseline) in eval mode on ``device``.
        source: the frames (:func:`open_source`).
        num_frame: window length (default ``model.num_frame``).
        tile, tile_pad: see :func:`tiled_forward`.
        device: torch device of ``model``.
        precision: ``'fp32'``, or ``'fp16'`` / ``'bf16'`` autocast on CUDA.
        padding: window padding at the clip's ends.
        progress: show a tqdm progress bar.
    """
    from edvr_lib.archs.padding import forward_padded
    from edvr_lib.data.transforms import generate_frame_indices
    from edvr_lib.metrics import tensor2img

    num_frame = num_frame or getattr(model, "num_frame", 5)
    n = len(source)
    if n < num_frame:
        raise EDVRError(f"the input has {n} frame(s) but the model uses windows of {num_frame}; "
                        f"give at least {num_frame} frames")
    scale = 1 if getattr(model, "hr_in", False) else 4
    run_model = (lambda x: forward_padded(model, x)) if hasattr(model, "size_multiple") else model
    indices = range(n)
    if progress:
        from tqdm.auto import tqdm

        indices = tqdm(indices, desc="edvr infer", unit="frame")
    with torch.inference_mode(), _autocast(device, precision):
        for i in indices:
            window = [source.get(j) for j in generate_frame_indices(i, num_frame, n, padding)]
            x = torch.from_numpy(np.stack(window)).permute(0, 3, 1, 2).unsqueeze(0).to(device)
            out = tiled_forward(run_model, x, tile, tile_pad, scale=scale)
            yield source.names[i], tensor2img(out[0].float())


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


# ----------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="folder of frames (sorted by name) or a video file")
    parser.add_argument("--output", required=True, help="folder for PNG frames (same names), or a video file (.mp4)")
    parser.add_argument("--weights", default=None,
                        help=f"checkpoint (default: the shipped {DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)})")
    parser.add_argument("--model", default="edvr", choices=["edvr", "bicubic"], help="'bicubic' needs no weights")
    parser.add_argument("--tile", type=int, default=None, help="tile size in LR pixels (bounded memory, e.g. 128)")
    parser.add_argument("--tile-pad", type=int, default=16, help="context pixels around each tile (default 16)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"],
                        help="fp16/bf16 autocast (CUDA only)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise EDVRError(f"--device {device} requested but CUDA is not available; use --device cpu")
    net = load_model(args.weights, args.model, device=device)
    info = infer(args.input, args.output, net, tile=args.tile, tile_pad=args.tile_pad, device=device,
                 precision=args.precision, progress=not args.no_progress)
    h, w = info["input_size"]
    print(f"wrote {info['frames']} frames ({w}x{h} -> {w * 4}x{h * 4}) to {info['output']}")
    return 0
