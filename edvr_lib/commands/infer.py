"""``edvr infer``: super-resolve a folder of frames or a video (streaming, optional tiles)."""
from __future__ import annotations

import argparse

from edvr_lib.commands._options import (DEVICE_HELP, add_output, check_device, existing, flags_named, int_at_least,
                                        no_weights_for_bicubic, output_path, resolve_device)
from edvr_lib.data.frame_sources import VIDEO_EXTS
from edvr_lib.utils import EDVRError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, type=existing("folder of frames or video file", "any"),
                        help="folder of frames (sorted by name) or a video file")
    add_output(parser, "folder for PNG frames (same names), or a video file (.mp4)", required=True,
               type=output_path(file_suffixes=VIDEO_EXTS))
    parser.add_argument("--weights", type=existing("checkpoint (.pth) or ONNX file (.onnx)"),
                        help="checkpoint (default: the shipped checkpoints/edvr_aligning_embedded.pth), or with "
                             "--backend onnxruntime an .onnx file from `edvr export`")
    parser.add_argument("--model", default="edvr", choices=["edvr", "bicubic"], help="'bicubic' needs no weights")
    parser.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"],
                        help="what runs the network: torch (default) or onnxruntime (an exported .onnx)")
    parser.add_argument("--tile", type=int_at_least(4, example=128),
                        help="tile size in LR pixels, >= 4 (bounded memory, e.g. 128; default: whole frames)")
    parser.add_argument("--tile-pad", type=int_at_least(0, example=16), default=16,
                        help="context pixels around each tile, >= 0 (default 16)")
    parser.add_argument("--device", type=check_device, default="auto", help=DEVICE_HELP)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                        help="auto (default: fp32 unless a lower precision was measured faster on this kind of "
                             "device, see docs/performance.md), fp32, bf16 autocast (CUDA or CPU; emulated and "
                             "slower on a CPU without native bf16), fp16 autocast (CUDA only)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def run(args: argparse.Namespace) -> int:
    if args.backend == "torch":
        args.device = resolve_device(args.device)
    else:
        from edvr_lib.export import onnxruntime_device

        args.device = onnxruntime_device(args.device)
        if args.precision not in ("auto", "fp32"):
            raise EDVRError(f"--precision {args.precision} with --backend onnxruntime: the exported graph is float32; "
                            "use --precision fp32 (or --backend torch for autocast)")
    no_weights_for_bicubic(args.weights, args.model)
    if args.precision == "fp16" and not args.device.startswith("cuda"):
        raise EDVRError(f"--precision fp16 needs a CUDA device (got --device {args.device}); "
                        "use --precision fp32 (or bf16) on CPU")
    if args.output.resolve() == args.input.resolve():
        raise EDVRError(f"--output {args.output} is the --input folder: the frames would overwrite their "
                        "sources; give another --output")
    from edvr_lib.infer import infer, load_backend

    with flags_named(weights="--weights", backend="--backend", model="--model", output="--output", tile="--tile",
                     precision="--precision", device="--device"):
        net = load_backend(args.weights, args.backend, args.model, device=args.device)
        info = infer(args.input, args.output, net, tile=args.tile, tile_pad=args.tile_pad, device=args.device,
                     precision=args.precision, progress=not args.no_progress)
    h, w = info["input_size"]
    scale = net.scale  # deblurring models (hr_in) keep the size
    print(f"wrote {info['frames']} frames ({w}x{h} -> {w * scale}x{h * scale}) to {info['output']}")
    return 0
