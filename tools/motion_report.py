"""Alignment scores of checkpoints on the held-out embedded clips (pilot runs, the model card).

    python -m tools.motion_report --weights checkpoints/edvr_tiny_embedded.pth experiments/RUN/models/net_g_800.pth

Per checkpoint: the learned PCD motion's end-point error over "no motion"'s on the held-out clips with known
motion (1.00: no motion learned), and the learned warp error over "no motion"'s on the held-out Big Buck Bunny clip
beside Farneback's (see :func:`edvr_lib.tutorial.alignment_real.motion_report`). ``--json FILE`` keeps the figures.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from edvr_lib.models import load_model
from edvr_lib.tutorial.alignment_real import motion_report
from edvr_lib.utils import atomic_write_text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", nargs="+", required=True, type=Path, help="EDVR checkpoints (.pth)")
    parser.add_argument("--windows", type=int, default=3, help="windows per held-out clip")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    results = {}
    print(f"{'checkpoint':60s} {'EPE / no motion':>16s} {'warp / no motion':>17s} {'Farneback':>10s}")
    for path in args.weights:
        rep = motion_report(load_model(path), windows_per_clip=args.windows)
        results[str(path)] = rep
        print(f"{str(path)[-60:]:60s} {rep['epe_ratio']:16.3f} {rep['warp_ratio']:17.3f} "
              f"{rep['warp_ratio_farneback']:10.3f}")
    if args.json:
        atomic_write_text(args.json, json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
