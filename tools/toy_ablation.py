"""The EDVR paper's PCD and TSA ablations at toy scale, retrained on CPU (edvr_lib.tutorial.toy_ablation).

    python -m tools.toy_ablation                       # all five variants, writes docs/toy_ablation.json
    python -m tools.toy_ablation --steps 20 --json /tmp/quick.json

Trains one DCN / pyramid without cascade / full PCD on large-motion windows and plain concatenation + 1x1 conv /
TSA on windows with a spoilt neighbour, all rendered from the embedded training clips, scores them on held-out
windows, and writes the figures with the command, the machine, the torch threads and the time it took. The JSON
is rewritten after each variant, so an interrupted run keeps what it finished. Notebook 03 reads it.
About 15 minutes of one CPU thread with the defaults; longer on a busy machine (the file records the wall and CPU
time it took, and the load average when it started).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

from benchmarks.edvr_speed import cpu_model
from edvr_lib.tutorial.toy_ablation import (VARIANTS, ToyAblationConfig, comparison_rows, markdown_table,
                                            run_toy_ablation, variant_rows)
from edvr_lib.utils import REPO_ROOT, atomic_write_text

DEFAULT_JSON = REPO_ROOT / "docs" / "toy_ablation.json"


def machine() -> dict:
    """Where the run happened: CPU, cores, torch threads, versions, the load when it started."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(), "torch": torch.__version__, "load_average_at_start": load,
            "niceness": os.nice(0) if hasattr(os, "nice") else None}


def main(argv=None) -> int:
    defaults = ToyAblationConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    for field in dataclasses.fields(ToyAblationConfig):
        p.add_argument(f"--{field.name.replace('_', '-')}", type=type(getattr(defaults, field.name)),
                       default=getattr(defaults, field.name))
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                   help=f"which variants (default all: {', '.join(VARIANTS)})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the recorded timings use 1)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    cfg = ToyAblationConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(ToyAblationConfig)})
    given = list(sys.argv[1:] if argv is None else argv)
    meta = {"command": " ".join(["python -m tools.toy_ablation", *given]), "machine": machine(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z")}

    def save(res: dict) -> None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps({**meta, **res}, indent=1) + "\n")

    res = run_toy_ablation(cfg, variants=args.variants, on_variant=save)
    save({**res, "finished": time.strftime("%Y-%m-%d %H:%M:%S %z")})
    print(markdown_table(variant_rows(res)))
    print()
    print(markdown_table(comparison_rows(res)))
    print(f"\n{res['seconds']:.0f} s wall, {res['cpu_seconds']:.0f} s CPU -> {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
