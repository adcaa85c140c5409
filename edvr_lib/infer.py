"""``edvr infer``: super-resolve a folder of frames or a video, streaming and (optionally) tiled.

Every frame is the centre of a ``num_frame`` window (``reflection_circle`` at the ends), decoded on demand into a
bounded cache; ``--tile PX`` bounds memory; any frame size works (padded); the output appears only when every frame
succeeded (frames staged beside it are reused by a rerun); ``--backend onnxruntime`` runs an ``edvr export`` graph.

Example::

    edvr infer --input my_frames/ --output out_frames/ --weights model.pth --tile 128
    edvr infer --input clip.mp4 --output clip_x4.mp4 --model bicubic
    edvr infer --input my_frames/ --output out_frames/ --backend onnxruntime --weights model.onnx
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
import torch

from edvr_lib.data.frame_sources import VIDEO_EXTS, open_source
from edvr_lib.inference import super_resolve_stream
from edvr_lib.models import SRModel
from edvr_lib.utils import EDVRError, atomic_path, atomic_write_text
from edvr_lib.utils.io import NoRoomError, free_bytes, no_room_as_error

__all__ = ["infer", "load_backend", "BACKENDS"]

#: What runs the network: PyTorch (``.pth`` checkpoints) or onnxruntime (``.onnx`` files from ``edvr export``).
BACKENDS = ("torch", "onnxruntime")


def load_backend(weights: str | os.PathLike | None = None, backend: str = "torch", model: str = "edvr",
                 device: str = "cpu") -> SRModel:
    """The network :func:`infer` runs: a torch module (:func:`edvr_lib.models.load_model`) or an onnxruntime graph.

    Args:
        weights: a checkpoint (``torch``; None: the shipped one) or an ``.onnx`` file (``onnxruntime``, required).
        backend, model: ``'torch'`` or ``'onnxruntime'``; ``'edvr'`` or ``'bicubic'`` (torch only).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:N'``; ``'auto'`` for onnxruntime picks CUDA when its provider exists.

    Returns:
        An :class:`~edvr_lib.models.SRModel` in eval mode: ``(b, t, 3, h, w) -> (b, 3, scale * h, scale * w)``.
    """
    onnx_named = weights is not None and Path(weights).suffix.lower() == ".onnx"
    if backend == "torch":
        if onnx_named:
            raise EDVRError(f"`weights` {weights} is an ONNX file; run it with `backend` onnxruntime")
        from edvr_lib.models import load_model

        return load_model(weights, model, device=device)
    if backend != "onnxruntime":
        raise EDVRError(f"unknown `backend` {backend!r}; use {' or '.join(BACKENDS)}")
    if model != "edvr":
        raise EDVRError(f"`model` {model} with `backend` onnxruntime: the baseline is not exported; "
                        "use `backend` torch for `model` bicubic")
    if weights is None or not onnx_named:
        hint = f"`edvr export --weights {weights} --output model.onnx`" if weights else "`edvr export`"
        raise EDVRError(f"`backend` onnxruntime needs `weights` FILE.onnx{f' (got {weights})' if weights else ''}; "
                        f"make one with {hint}")
    from edvr_lib.export import load_onnx, onnxruntime_device

    return load_onnx(weights, device=onnxruntime_device(device))


#: the folder an unfinished ``edvr infer`` keeps its frames in, beside ``--output``
STAGING = ".{}.partial"
STAMP = "stamp.json"
_PNG_END = b"IEND\xaeB`\x82"  # the last 8 bytes of every complete PNG


def _png_name(name: str) -> str:
    return Path(name).stem + ".png"


def _model_stamp(model: SRModel) -> dict:
    """What identifies the network: a digest of its weights (torch), or its file (onnxruntime: ``model.path``)."""
    if isinstance(model, torch.nn.Module):
        h = hashlib.sha256()
        for key, value in model.state_dict().items():
            value = value.detach().cpu().contiguous()
            h.update(f"{key} {value.dtype} {tuple(value.shape)}".encode())
            h.update(value.reshape(-1).view(torch.uint8).numpy().tobytes())
        return {"type": type(model).__name__, "num_frame": model.num_frame, "weights": h.hexdigest()}
    path = Path(model.path).resolve()
    st = path.stat() if path.is_file() else None
    return {"type": type(model).__name__, "file": str(path), "size": st and st.st_size,
            "mtime_ns": st and st.st_mtime_ns}


def _input_stamp(input: Path, source) -> dict:
    """What identifies the input: its frames' (or video's) names, sizes and modification times."""
    files = list(getattr(source, "paths", None) or [input])
    return {"input": str(input.resolve()), "files": [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]}


def _staging(output: Path, stamp: dict, log) -> tuple[Path, set[str]]:
    """The staging folder of ``output`` and the frames an interrupted run with the same stamp finished; one made with
    other arguments is removed (one line says so), those of other outputs are only named."""
    staging, done = output.parent / STAGING.format(output.name), set()
    if staging.is_dir():
        try:
            old = json.loads((staging / STAMP).read_text())
        except (OSError, ValueError):
            old = None
        if old == stamp:
            done = {f.name for f in staging.glob("*.png") if _complete_png(f)}
        else:
            shutil.rmtree(staging)
            changed = [k for k in sorted(set(old or {}) | set(stamp)) if (old or {}).get(k) != stamp.get(k)]
            log(f"removed {staging}: frames of an interrupted `edvr infer` with other "
                f"{', '.join(changed) if old is not None and changed else 'arguments'}")
    for other in sorted(output.parent.glob(STAGING.format("*"))):
        if other != staging and (other / STAMP).is_file():
            log(f"note: {other} holds the frames of an interrupted `edvr infer` into "
                f"{output.parent / other.name[1:-len('.partial')]}; rerun that command to finish it, or delete it")
    with no_room_as_error(staging / STAMP):
        staging.mkdir(parents=True, exist_ok=True)
    atomic_write_text(staging / STAMP, json.dumps(stamp))
    return staging, done


def _complete_png(path: Path) -> bool:
    """True for a whole PNG (frames are renamed into place, so only a damaged disk leaves a partial one)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(-8, os.SEEK_END)
            return head == b"\x89PNG\r\n\x1a\n" and f.read() == _PNG_END
    except OSError:
        return False


def _encode_video(staging: Path, names: list[str], dest: Path, fps: float) -> None:
    """Encode the staged frames ``names`` (in order) into ``dest`` atomically."""
    import cv2

    with atomic_path(dest) as tmp:
        writer = None
        try:
            for name in names:
                img = cv2.imread(str(staging / name))  # BGR, as the writer wants
                if writer is None:
                    writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"mp4v"), fps,
                                             (img.shape[1], img.shape[0]))
                    if not writer.isOpened():
                        raise EDVRError(f"cannot write video {dest} (OpenCV has no mp4v encoder here); "
                                        "write PNG frames to a folder instead")
                writer.write(img)
        finally:
            if writer is not None:
                writer.release()
        written = cv2.VideoCapture(str(tmp))
        frames = int(written.get(cv2.CAP_PROP_FRAME_COUNT)) if written.isOpened() else 0
        written.release()
        if frames != len(names):  # OpenCV's writer does not raise when the disk fills up
            free = free_bytes(dest.parent)
            if free is not None and free < 1 << 20:
                with no_room_as_error(dest):
                    raise OSError(errno.ENOSPC, "No space left on device")
            raise EDVRError(f"OpenCV encoded {frames} of {len(names)} frames into {dest}; write PNG frames to a "
                            "folder instead")


def _move_into(staging: Path, dest: Path) -> None:
    """Give ``dest`` the staged frames: one rename when it does not exist yet, else frame by frame."""
    (staging / STAMP).unlink()
    if not dest.exists():
        os.replace(staging, dest)
        return
    for f in sorted(staging.iterdir()):
        os.replace(f, dest / f.name)
    staging.rmdir()


def infer(input: str | os.PathLike, output: str | os.PathLike, model: SRModel, tile: int | None = None,
          tile_pad: int = 16, device: str = "cpu", precision: str = "auto", progress: bool = False,
          log=print) -> dict:
    """Super-resolve every frame of ``input`` into ``output`` (a folder of PNGs, or a video if it ends in .mp4, ...).

    Frames go one by one into a hidden staging folder beside ``output`` (:data:`STAGING`) stamped with the input,
    weights and settings; ``output`` appears only when every frame is done, and a rerun with the same arguments
    reuses the finished frames (a bad input removes the staging folder).

    Args:
        model: an :class:`~edvr_lib.models.SRModel` (:func:`load_backend`).
        tile, tile_pad, device, precision, progress: as :func:`edvr_lib.inference.super_resolve_stream`.
        log: one-line messages (reused frames, removed or other staging folders, emulated bf16).

    Returns:
        ``{'frames': n, 'reused': frames taken from an interrupted run, 'output': path, 'input_size': (h, w),
        'max_cached_frames': k}``.
    """
    from edvr_lib.data.io import write_png  # looked up per call (a test slows it down)
    from edvr_lib.ops.policy import precision_for

    input, output = Path(input), Path(output)
    if isinstance(model, torch.nn.Module):
        precision = precision_for(device, precision)
    elif precision == "auto":  # a graph from `edvr export` is float32
        precision = "fp32"
    video = output.suffix.lower() in VIDEO_EXTS
    if not video and output.exists() and not output.is_dir():
        raise EDVRError(f"`output` {output} is a file; give a folder or a video name ending in .mp4")
    source = open_source(input, model.num_frame)
    try:
        stamp = {"input": _input_stamp(input, source), "model": _model_stamp(model),
                 "settings": {"tile": tile, "tile_pad": tile_pad, "precision": precision,
                              "device": torch.device(device).type}}
        try:
            staging, done = _staging(output, stamp, log)
        except NoRoomError as err:
            raise err.retold(output) from None  # name --output's folder, not the hidden one
        names = [_png_name(n) for n in source.names]
        done &= set(names)
        if done:
            log(f"reusing {len(done)} finished frames of {len(names)} from {staging}")
        try:
            frames = super_resolve_stream(model, source, tile=tile, tile_pad=tile_pad, device=device,
                                          precision=precision, progress=progress,
                                          skip={i for i, n in enumerate(names) if n in done}, log=log)
            # closed at once when a write fails: a suspended stream would keep inference mode on for the caller
            with contextlib.closing(frames):
                for name, img in frames:  # atomically: a kill leaves only whole frames
                    write_png(staging / _png_name(name), img)
            if video:
                _encode_video(staging, names, output, source.fps)
        except NoRoomError as err:
            kept = [f.stat().st_size for f in staging.glob("*.png")]
            needed = sum(kept) // len(kept) * (len(names) - len(kept)) if kept else None  # the frames to come
            err = err.retold(output, needed)
            raise NoRoomError(f"{err} It reuses the {len(kept)} finished frames in {staging}.", err.info) from None
        except EDVRError:
            shutil.rmtree(staging, ignore_errors=True)  # bad input: its frames would not be reused
            raise
        if video:
            shutil.rmtree(staging)
        else:
            _move_into(staging, output)
    finally:
        source.close()
    return {"frames": len(names), "reused": len(done), "output": str(output), "input_size": source.size,
            "max_cached_frames": source.max_cached}
