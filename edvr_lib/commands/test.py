"""``edvr test``: PSNR/SSIM on REDS4, Vid4, Vimeo-90K-T or the embedded clips, beside published numbers."""
from __future__ import annotations

import argparse

from edvr_lib.commands._options import (DEVICE_HELP, add_output, existing, flags_named, int_at_least,
                                        no_weights_for_bicubic, odd_int, resolve_device)
from edvr_lib.evaluate import BENCHMARKS, load_test_config, run_test
from edvr_lib.utils import EDVRError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=existing("test YAML (configs/test_*.yaml)"),
                        help="test YAML (configs/test_*.yaml); flags given here win")
    parser.add_argument("--dataset", choices=list(BENCHMARKS), help="benchmark (default: embedded)")
    parser.add_argument("--root", type=existing("benchmark folder", "folder"),
                        help="benchmark folder (datasets/REDS, datasets/Vid4, datasets/vimeo90k)")
    parser.add_argument("--meta", type=existing("meta info file"),
                        help="meta info file listing the clips / sequences")
    parser.add_argument("--weights", type=existing("checkpoint (.pth)"),
                        help="checkpoint (default: the project's shipped one)")
    parser.add_argument("--model", choices=["edvr", "bicubic"], help="'bicubic' is the baseline (no weights)")
    parser.add_argument("--random-weights", action="store_true",
                        help="a small untrained EDVR (results are labelled as random weights)")
    parser.add_argument("--num-frame", type=odd_int, help="window length, odd (default: the model's / benchmark's)")
    parser.add_argument("--self-ensemble", action="store_true", help="average 8 flip/transpose variants")
    parser.add_argument("--y-channel", choices=["auto", "yes", "no"], default=None,
                        help="measure on Y (default auto: Vid4 / Vimeo-90K-T on Y, others RGB)")
    parser.add_argument("--max-frames", type=int_at_least(1, example=10),
                        help="only the first N frames, >= 1 (a quick look, not a benchmark)")
    add_output(parser, "folder for the CSV (default outputs/test/<name>)", old="--out")
    parser.add_argument("--device", type=resolve_device, help=DEVICE_HELP)
    parser.add_argument("--no-progress", action="store_true")


def _check(args: argparse.Namespace, opts: dict) -> None:
    """Options that contradict each other (the single ones were checked by argparse)."""
    if args.random_weights and (args.weights or args.model == "bicubic"):
        given = f"--weights {args.weights}" if args.weights else "--model bicubic"
        raise EDVRError(f"--random-weights with {given}: pick one network; drop --random-weights or {given}")
    no_weights_for_bicubic(args.weights, args.model)
    if args.config and args.num_frame is None and opts.get("num_frame") is not None:
        try:
            odd_int(str(opts["num_frame"]))
        except argparse.ArgumentTypeError as err:
            raise EDVRError(f"{args.config}: num_frame: {err}") from None
    dataset = opts.get("dataset") or "embedded"
    if dataset not in BENCHMARKS:
        raise EDVRError(f"unknown dataset {dataset!r} in {args.config or '--dataset'}; "
                        f"choose one of {', '.join(BENCHMARKS)}")


def run(args: argparse.Namespace) -> int:
    opts = load_test_config(args.config) if args.config else {"dataset": "embedded"}
    for key, flag in (("dataset", args.dataset), ("root", args.root), ("weights", args.weights), ("model", args.model),
                      ("num_frame", args.num_frame), ("meta_info_file", args.meta),
                      ("self_ensemble", args.self_ensemble or None), ("random_weights", args.random_weights or None)):
        if flag is not None:
            opts[key] = flag
    _check(args, opts)
    try:
        device = args.device or resolve_device(str(opts.get("device") or "auto"))
    except argparse.ArgumentTypeError as err:
        raise EDVRError(f"{args.config}: device: {err}") from None
    opts.update(dataset=opts.get("dataset") or "embedded", model=opts.get("model") or "edvr", device=device)
    if args.y_channel in ("yes", "no"):
        opts["test_y_channel"] = args.y_channel == "yes"
    with flags_named(dataset="--dataset", root="--root", num_frame="--num-frame", weights="--weights", model="--model"):
        res = run_test(**opts, output=args.output, max_frames=args.max_frames, progress=not args.no_progress)
    print(res["report"])
    return 0
