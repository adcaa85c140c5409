"""``edvr notebooks``: execute (run), check or strip the tutorial notebooks.

``run`` in full mode into the default folder (what ``make tutorial`` does) also writes ``docs/tutorial_results.md``
from the figures the notebooks recorded (:mod:`edvr_lib.tutorial.results`); smoke runs never touch ``docs/``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from edvr_lib.commands._options import add_output, existing
from edvr_lib.utils.notebooks import REPO_ROOT, convention_problems, execute, list_notebooks, results_file, strip

#: where ``run`` writes executed copies by default (``make tutorial``)
DEFAULT_OUTPUT = REPO_ROOT / "outputs" / "notebooks"
#: the page ``make tutorial`` writes (full mode, default output folder only)
RESULTS_DOC = REPO_ROOT / "docs" / "tutorial_results.md"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["run", "check", "strip"])
    add_output(parser, "folder for executed copies and HTML (run only; default outputs/notebooks)", old="--out")
    parser.add_argument("--smoke", action="store_true", help="run with EDVR_SMOKE=1")
    parser.add_argument("notebooks", nargs="*", type=existing("notebook (.ipynb)", suffixes=(".ipynb",)),
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
    from edvr_lib.tutorial import results

    out = args.output or DEFAULT_OUTPUT
    recorded = results_file(out, args.smoke)
    for p in paths:
        print(f"executing {p.name} ({'smoke' if args.smoke else 'full'}) ...", flush=True)
        results.forget(p.stem, recorded)  # this run's figures replace the notebook's old ones
        summary = execute(p, out, smoke=args.smoke)
        print(f"  done in {summary['seconds']} s -> {out / p.name} and {out / (p.stem + '.html')}", flush=True)
    print(f"Executed notebooks and HTML are in {out}; checked figures in {recorded}")
    if args.smoke:
        print("smoke mode: docs/tutorial_results.md is left as it is (it records full-mode runs only)")
    elif Path(out).resolve() != DEFAULT_OUTPUT.resolve():
        print(f"--output is not {DEFAULT_OUTPUT}: docs/tutorial_results.md is left as it is")
    elif recorded.exists() and results.load(recorded):
        print(f"wrote {results.write_markdown(recorded, RESULTS_DOC)}")
    return 0
