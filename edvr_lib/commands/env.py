"""``edvr env``: the environment report of notebook 00."""
from __future__ import annotations

import argparse
import json

from edvr_lib.env import collect, format_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-measure", action="store_true", help="versions and devices only (no DCN check, no timing)")


def run(args: argparse.Namespace) -> int:
    report = collect(measure=not args.no_measure)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if any(d["dcn_ok"] is False for d in report["devices"]) else 0  # a DCNv2 check failed
