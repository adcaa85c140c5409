"""``edvr prepare-embedded``: build the offline embedded dataset (Big Buck Bunny + known-motion clips)."""
from __future__ import annotations

import argparse
import time

from edvr_lib.commands._options import output_path
from edvr_lib.data.embedded import manifest, prepare_embedded


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", type=output_path(),
                        help="parent folder of the variants, created when missing "
                             "(default: data/embedded, or $EDVR_DATA_DIR/embedded)")
    parser.add_argument("--smoke", action="store_true", help="build the tiny smoke variant (also EDVR_SMOKE=1)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a valid build exists")
    parser.add_argument("--verify", action="store_true",
                        help="also check every file against its SHA-256 (reads all of it); rebuild on a mismatch")


def run(args: argparse.Namespace) -> int:
    """Build (or reuse, or verify) the embedded set and print where it is and what it holds."""
    t0 = time.perf_counter()
    path = prepare_embedded(args.root, smoke=True if args.smoke else None, progress=True, force=args.force,
                            verify=args.verify)
    man = manifest(path)
    print(f"embedded dataset ({man['variant']}) at {path}")
    print(f"  {man['num_files']} files, {man['total_bytes'] / 1e6:.1f} MB; built in {man['build_seconds']} s "
          f"(this call: {time.perf_counter() - t0:.1f} s{', every SHA-256 checked' if args.verify else ''})")
    print(f"  train clips: {', '.join(man['train_clips'])}")
    print(f"  test clips:  {', '.join(man['test_clips'])}")
    print(f"  credits: {man['credits']}")
    return 0
