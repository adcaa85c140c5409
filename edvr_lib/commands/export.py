"""``edvr export``: a checkpoint to an ONNX file that onnxruntime runs at any frame size, verified against torch."""
from __future__ import annotations

import argparse
from pathlib import Path

from edvr_lib.commands._options import add_output, existing, flags_named, int_at_least, output_path, whole_number
from edvr_lib.export import MAX_OPSET, MIN_OPSET, check_opset
from edvr_lib.utils import EDVRError


def onnx_file(text: str) -> Path:
    """A ``type=`` for the output: a file name ending in ``.onnx`` in a folder that can be written."""
    if Path(text).suffix.lower() != ".onnx":
        raise argparse.ArgumentTypeError(f"{text} does not end in .onnx; give a file name such as model.onnx")
    return output_path(file_suffixes=(".onnx",))(text)


def opset(text: str) -> int:
    """A ``type=`` for ``--opset``: DeformConv exists from :data:`MIN_OPSET`; checked here up to :data:`MAX_OPSET`."""
    n = whole_number(text, f"; give an opset such as {MIN_OPSET}")
    try:
        with flags_named(opset="--opset"):
            check_opset(n)
    except EDVRError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return n


def multiple_of_4(text: str) -> int:
    """A ``type=`` for ``--height`` / ``--width``: a multiple of 4, at least 8 (16 and 32 with ``hr_in``: checked
    once the checkpoint is read)."""
    n = int_at_least(8, example=64)(text)
    if n % 4:
        raise argparse.ArgumentTypeError(f"{n} is not a multiple of 4 (EDVR's pyramid halves the frame twice); "
                                         f"use {n // 4 * 4 or 8} or {n // 4 * 4 + 4}")
    return n


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", type=existing("checkpoint (.pth)"),
                        help="checkpoint (any file `edvr inspect-checkpoint` loads; default: the shipped "
                             "checkpoints/edvr_aligning_embedded.pth)")
    add_output(parser, "the ONNX file to write (.onnx)", required=True, type=onnx_file)
    parser.add_argument("--frames", type=int_at_least(1, example=5),
                        help="frames per window; must be the checkpoint's num_frame (default: read from it)")
    parser.add_argument("--height", type=multiple_of_4, default=64,
                        help="example input height in LR pixels, a multiple of 4 (16 for deblurring) (default 64); the "
                             "exported graph runs any multiple")
    parser.add_argument("--width", type=multiple_of_4, default=64, help="example input width (default 64)")
    parser.add_argument("--opset", type=opset, default=MIN_OPSET,
                        help=f"ONNX opset, {MIN_OPSET} (DeformConv) to {MAX_OPSET} (default {MIN_OPSET})")
    parser.add_argument("--repeats", type=int_at_least(1, example=3), default=3,
                        help="timed runs per backend, median reported (default 3)")


def run(args: argparse.Namespace) -> int:
    from edvr_lib.export import export_onnx
    from edvr_lib.models import DEFAULT_CHECKPOINT, load_model

    weights = args.weights or DEFAULT_CHECKPOINT
    with flags_named(weights="--weights", height="--height", width="--width", opset="--opset"):
        net = load_model(weights, "edvr", device="cpu")
        if args.frames is not None and args.frames != net.num_frame:
            raise EDVRError(f"--frames {args.frames} but {weights} is an EDVR built for num_frame={net.num_frame} "
                            f"(its fusion layers fix the window); drop --frames or pass --frames {net.num_frame}")
        report = export_onnx(net, args.output, height=args.height, width=args.width, opset=args.opset,
                             repeats=args.repeats, source=Path(weights).name)
    config = ", ".join(f"{k}={v}" for k, v in net.config.to_dict().items())
    shape = "(" + ", ".join(str(d) for d in report["input_shape"]) + ")"
    print(f"exported {weights} (EDVR {config}) to {report['output']} ({report['bytes'] / 1e6:.1f} MB, "
          f"opset {report['opset']}, input {shape})")
    for check in report["checks"]:
        print(f"  onnxruntime vs torch, {check['name']}: max abs difference {check['max_abs_diff']:.2e}, "
              f"relative {check['max_rel_diff']:.2e}")
    print(f"  speed per window at {args.height}x{args.width}, {report['threads']} thread(s), median of "
          f"{args.repeats}: torch ({report['torch_dcn']} DCN) {report['torch_s'] * 1e3:.1f} ms, "
          f"onnxruntime {report['onnxruntime_s'] * 1e3:.1f} ms")
    return 0
