"""``edvr prepare-reds``: check a REDS download; regroup val, regenerate LR, write meta info."""
from __future__ import annotations

import argparse
import os

from edvr_lib.commands._options import existing, int_at_least
from edvr_lib.data.prepare_reds import prepare_reds
from edvr_lib.utils import EDVRError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, type=existing("REDS folder", "folder"),
                        help="folder holding train_sharp/ and train_sharp_bicubic/")
    parser.add_argument("--regroup-val", action="store_true", help="copy val clip k to train_sharp/<k+240>")
    parser.add_argument("--regenerate-lr", action="store_true", help="rewrite LR frames with MATLAB bicubic x1/4")
    parser.add_argument("--check-only", action="store_true", help="report only; write nothing")
    parser.add_argument("--quick", action="store_true", help="check PNG headers only (no decoding)")
    parser.add_argument("--jobs", type=int_at_least(1, example=4),
                        help="processes for --regenerate-lr, >= 1 (default: all cores)")


def run(args: argparse.Namespace) -> int:
    if not args.check_only and not os.access(args.root, os.W_OK | os.X_OK):
        raise EDVRError(f"--root {args.root} is not writable (meta info files and LR frames go there); "
                        "pass --check-only, or make the folder writable")
    report = prepare_reds(args.root, regroup_val=args.regroup_val, regenerate_lr=args.regenerate_lr,
                          check_only=args.check_only, quick=args.quick, jobs=args.jobs)
    print(report.format())
    return 0 if report.ok else 1
