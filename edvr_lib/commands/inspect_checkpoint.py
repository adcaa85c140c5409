"""``edvr inspect-checkpoint``: describe a .pth file: format, key naming, inferred preset, loads strict?"""
from __future__ import annotations

import argparse
import json

from edvr_lib.commands._options import existing


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=existing("checkpoint (.pth)"), help="checkpoint (.pth) to describe")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from edvr_lib.models import inspect_checkpoint

    report = inspect_checkpoint(args.file)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0 if report["loadable"] else 1
    print(f"file:        {report['path']} ({report['size_bytes']:,} bytes)")
    print(f"container:   {report['container']}   naming: {report['naming']}   "
          f"top-level keys: {report['top_level_keys']}")
    print(f"tensors:     {report['num_tensors']}   parameters: {report['num_params']:,}")
    if report["config"]:
        print(f"preset:      {report['preset'] or '(custom)'}")
        print("config:      " + ", ".join(f"{k}={v}" for k, v in report["config"].items()))
    strict = "yes" if report["loadable"] else f"NO\n  {report['problem']}"
    print(f"loads strict with edvr_lib.load_pretrained: {strict}")
    return 0 if report["loadable"] else 1
