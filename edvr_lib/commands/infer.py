"""``edvr infer``: super-resolve a folder of frames or a video (streaming, optional tiles)."""
from __future__ import annotations

import argparse

import torch

from edvr_lib.infer import infer
from edvr_lib.models import DEFAULT_CHECKPOINT, REPO_ROOT, load_model
from edvr_lib.utils import EDVRError


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
