"""``edvr test``: PSNR/SSIM on REDS4, Vid4, Vimeo-90K-T or the embedded clips, beside published numbers."""
from __future__ import annotations

import argparse
from pathlib import Path

from edvr_lib.commands._options import (DEVICE_HELP, add_output, existing_dir, existing_file, int_at_least, odd_int,
                                        resolve_device)
from edvr_lib.evaluate import (BENCHMARKS, PUBLISHED, build_dataset, evaluate, format_table,
                               load_test_config, write_csv)
from edvr_lib.models import REPO_ROOT, load_model, random_weights_model
from edvr_lib.utils import EDVRError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=existing_file("test YAML (configs/test_*.yaml)"),
                        help="test YAML (configs/test_*.yaml); flags given here win")
    parser.add_argument("--dataset", choices=list(BENCHMARKS), help="benchmark (default: embedded)")
    parser.add_argument("--root", type=existing_dir("benchmark folder"),
                        help="benchmark folder (datasets/REDS, datasets/Vid4, datasets/vimeo90k)")
    parser.add_argument("--meta", type=existing_file("meta info file"),
                        help="meta info file listing the clips / sequences")
    parser.add_argument("--weights", type=existing_file("checkpoint (.pth)"),
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
    if args.weights and args.model == "bicubic":
        raise EDVRError(f"--weights {args.weights} with --model bicubic: the baseline has no weights; "
                        "drop --weights or --model bicubic")
    if args.config and args.num_frame is None and opts.get("num_frame") is not None:
        try:
            odd_int(str(opts["num_frame"]))
        except argparse.ArgumentTypeError as err:
            raise EDVRError(f"{args.config}: num_frame: {err}") from None
    dataset = opts.get("dataset") or "embedded"
    if dataset not in BENCHMARKS:
        raise EDVRError(f"unknown dataset {dataset!r} in {args.config or '--dataset'}; "
                        f"choose one of {', '.join(BENCHMARKS)}")


def _device(args: argparse.Namespace, opts: dict) -> str:
    if args.device:
        return args.device
    try:
        return resolve_device(str(opts.get("device") or "auto"))
    except argparse.ArgumentTypeError as err:
        raise EDVRError(f"{args.config}: device: {err}") from None


def run(args: argparse.Namespace) -> int:
    opts = load_test_config(args.config) if args.config else {"name": None, "model": "edvr", "dataset": "embedded",
                                                               "padding": "reflection_circle", "crop_border": 0}
    for key, flag in (("dataset", args.dataset), ("root", args.root), ("weights", args.weights), ("model", args.model),
                      ("num_frame", args.num_frame), ("meta_info_file", args.meta)):
        if flag is not None:
            opts[key] = flag
    if args.self_ensemble:
        opts["self_ensemble"] = True
    if args.random_weights:
        opts["random_weights"] = True
    _check(args, opts)
    dataset_name = opts.get("dataset") or "embedded"
    device = _device(args, opts)
    y = opts.get("test_y_channel")
    if args.y_channel in ("yes", "no"):
        y = args.y_channel == "yes"
    if y is None:
        y = BENCHMARKS[dataset_name]["test_y_channel"]

    num_frame = opts.get("num_frame") or BENCHMARKS[dataset_name]["num_frame"]
    if opts.get("random_weights"):
        model, label = random_weights_model(num_frame=num_frame).to(device), "EDVR (random weights, untrained)"
    elif opts.get("model", "edvr") == "bicubic":
        model, label = load_model(None, "bicubic", num_frame=num_frame, device=device), "Bicubic"
    else:
        model = load_model(opts.get("weights"), "edvr", device=device)
        label = f"EDVR ({Path(opts.get('weights') or 'shipped checkpoint').name})"
        if opts.get("num_frame") and opts["num_frame"] != model.num_frame:
            raise EDVRError(f"--num-frame {opts['num_frame']} does not match the checkpoint's num_frame "
                            f"{model.num_frame}; leave --num-frame out")
        num_frame = model.num_frame
    if opts.get("self_ensemble"):
        label += " + self-ensemble x8"
    dataset = build_dataset(dataset_name, opts.get("root"), num_frame, opts.get("dataroot_gt"), opts.get("dataroot_lq"),
                            opts.get("meta_info_file"), opts.get("clips"), opts.get("padding", "reflection_circle"))
    res = evaluate(model, dataset, test_y_channel=y, crop_border=opts.get("crop_border", 0),
                   self_ensemble=bool(opts.get("self_ensemble")), device=device, max_frames=args.max_frames,
                   progress=not args.no_progress)
    name = opts.get("name") or f"{dataset_name}_{label.split(' ')[0].lower()}"
    out_dir = args.output or REPO_ROOT / "outputs" / "test" / name
    csv_path = write_csv(res["rows"], out_dir / "metrics.csv")
    channel = "Y" if y else "RGB"
    print(f"{dataset_name}: {len(res['rows'])} frames in {len(res['per_clip'])} clips, {channel}, "
          f"crop_border {opts.get('crop_border', 0)}, {res['seconds']:.1f} s")
    for clip, m in res["per_clip"].items():
        print(f"  {clip:<28} {m['num_frames']:>4} frames  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}")
    if args.max_frames:
        print(f"  (only the first {args.max_frames} frames: not comparable with published numbers)")
    print()
    print(format_table(dataset_name, {label: res}, y))
    if not PUBLISHED.get(dataset_name):
        print(f"({dataset_name}: {BENCHMARKS[dataset_name]['note']})")
    print(f"\nper-frame metrics: {csv_path}")
    return 0
