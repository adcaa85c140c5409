"""Notebook 06's demos: what stops an export (:func:`free_size_attempt`, :func:`opset_attempt`,
:func:`data_dependent_branch_attempt`), and the same weights in torch and onnxruntime, timed and compared frame by
frame (:func:`benchmark_backends`, :func:`stream_parity`). The export itself is :func:`edvr_lib.export.export_onnx`.
"""
from __future__ import annotations

import contextlib
import io
import os
import time
import warnings

import numpy as np
import torch

# the exporter's own set-up (quiet exporters, an exception's first line), so the demos fail as the export does
from edvr_lib.export import DEFAULT_OPSET, OnnxModel, _edvr_model, _first_line, _quiet, time_call
from edvr_lib.ops import speed_policy

__all__ = ["benchmark_backends", "stream_parity", "free_size_attempt", "opset_attempt", "data_dependent_branch_attempt"]


def benchmark_backends(model: torch.nn.Module, runner: OnnxModel, height: int, width: int, repeats: int = 3,
                       seed: int = 0) -> dict[str, float]:
    """Median seconds per window of the three ways to run the same weights on this machine.

    Args:
        model: the torch EDVR; runner: its export (:class:`OnnxModel`).
        height, width: the window's size (multiples of ``model.size_multiple``).

    Returns:
        ``{'torch, reference DCN (torchvision, NCHW)', 'torch, fast DCN (NHWC)' (torch's CPU default), 'onnxruntime'}``
        -> seconds.
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
        ``{'names', 'max_level_diff', 'differing_values' (per frame: largest uint8 difference, values differing),
        'values' (``h * w * 3`` of one output frame), 'torch_s', 'onnxruntime_s' (seconds in all), 'input_size' (h,
        w), 'torch_frames', 'onnxruntime_frames' (the uint8 RGB outputs)}``.
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
            "torch_s": results["torch_s"], "onnxruntime_s": results["onnxruntime_s"], "input_size": size,
            **{f"{k}_frames": [img for _, img in results[k]] for k in ("torch", "onnxruntime")}}


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
        except Exception as err:  # noqa: BLE001 - the refusal, whatever its type, is the demo's result
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
        exporter: ``'dynamo'`` or ``'torchscript'`` (the legacy exporter, as popular walkthroughs call it).

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
        except Exception as err:  # noqa: BLE001 - where and why the export stops is the result
            result["error"] = _first_line(err)
            return result
    result["ops"] = sorted({n.op_type for n in proto.graph.node})
    result["written_opset"] = {o.domain: o.version for o in proto.opset_import}.get("")
    result["stage"] = "onnxruntime"
    try:
        ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception as err:  # noqa: BLE001 - where and why loading stops is the result
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
            warnings.warn("Offset abs mean is > 50", stacklevel=2)
        return self.pack(x, feat)


def data_dependent_branch_attempt(pack: torch.nn.Module, example: tuple[torch.Tensor, ...],
                                  opset: int = DEFAULT_OPSET) -> dict:
    """Export ``pack`` wrapped with the reference's data-dependent offset check (``if mean(|offset|) > 50``).

    Returns:
        :func:`opset_attempt`'s result: the check stops ``torch.export``, while the plain pack exports.
    """
    return opset_attempt(_OffsetCheck(pack).eval(), example, opset)
