"""``edvr prepare-reds``: check a REDS download; regroup val, regenerate LR, write meta info."""
from __future__ import annotations

import argparse

from edvr_lib.data.prepare_reds import prepare_reds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", required=True, help="folder holding train_sharp/ and train_sharp_bicubic/")
    parser.add_argument("--regroup-val", action="store_true", help="copy val clip k to train_sharp/<k+240>")
    parser.add_argument("--regenerate-lr", action="store_true", help="rewrite LR frames with MATLAB bicubic x1/4")
    parser.add_argument("--check-only", action="store_true", help="report only; write nothing")
    parser.add_argument("--quick", action="store_true", help="check PNG headers only (no decoding)")
    parser.add_argument("--jobs", type=int, default=None, help="processes for --regenerate-lr (default: all cores)")


def run(args: argparse.Namespace) -> int:
    report = prepare_reds(args.root, regroup_val=args.regroup_val, regenerate_lr=args.regenerate_lr,
                          check_only=args.check_only, quick=args.quick, jobs=args.jobs)
    print(report.format())
    return 0 if report.ok else 1
