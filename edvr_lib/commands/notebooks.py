"""``edvr notebooks``: execute (run), check or strip the tutorial notebooks."""
from __future__ import annotations

import argparse

from edvr_lib.commands._options import add_output, existing_file
from edvr_lib.utils.notebooks import REPO_ROOT, convention_problems, execute, list_notebooks, strip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run", "check", "strip"])
    add_output(parser, "folder for executed copies and HTML (run only; default outputs/notebooks)", old="--out")
    parser.add_argument("--smoke", action="store_true", help="run with EDVR_SMOKE=1")
    parser.add_argument("notebooks", nargs="*", type=existing_file("notebook (.ipynb)", suffixes=(".ipynb",)),
                        help="default: every notebooks/NN_*.ipynb")


def run(args: argparse.Namespace) -> int:
    paths = args.notebooks or list_notebooks()
    if args.action == "strip":
        for p in paths:
            if strip(p):
                print(f"stripped {p}")
        return 0
    if args.action == "check":
        bad = {p: convention_problems(p) for p in paths}
        for p, probs in bad.items():
            for prob in probs:
                print(f"{p}: {prob}")
        return 1 if any(bad.values()) else 0
    out = args.output or REPO_ROOT / "outputs" / "notebooks"
    for p in paths:
        print(f"executing {p.name} ({'smoke' if args.smoke else 'full'}) ...", flush=True)
        summary = execute(p, out, smoke=args.smoke)
        print(f"  done in {summary['seconds']} s -> {out / p.name} and {out / (p.stem + '.html')}", flush=True)
    print(f"Executed notebooks and HTML are in {out}")
    return 0
