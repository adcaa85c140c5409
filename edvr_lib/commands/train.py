"""``edvr train``: train EDVR from a YAML config into an output folder (resumable).

Checks the paths and the form of every option here, then hands over to
:func:`edvr_lib.train.trainer.run_train`, which checks the config's keys and values (``--set`` included) before
it starts. The library names an override ``override 'KEY=VALUE'``; its messages here say ``--set KEY=VALUE``.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from edvr_lib.commands._options import DEVICE_HELP, add_output, check_device, existing, flags_named
from edvr_lib.utils import EDVRError

_KEY = re.compile(r"[A-Za-z_][\w-]*([.:][A-Za-z_0-9][\w-]*)*")


def override(text: str) -> str:
    """A ``--set`` item: ``key.sub=value`` (keys as in the config; the value is read as YAML by the trainer)."""
    key, sep, _ = text.partition("=")
    if not sep or not _KEY.fullmatch(key.strip()):
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE; write it like train.optim_g.lr=2e-4")
    return text


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a previous ``edvr train`` run (its options file or its training states)."""
    return (folder / "options.yml").is_file() or (folder / "training_states").is_dir()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, type=existing("training YAML (configs/train_*.yml)"),
                        help="training options (configs/train_*.yml, BasicSR layout)")
    add_output(parser, "run folder: models/, training_states/, logs, options.yml", required=True)
    parser.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], type=override,
                        metavar="KEY=VALUE",
                        help="override options, e.g. --set train.total_iter=1000 datasets.train.gt_size=128 "
                             "(repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its latest state")
    parser.add_argument("--device", type=check_device, default="auto",
                        help=DEVICE_HELP + "; auto also follows the config's num_gpu (0: cpu)")


def run(args: argparse.Namespace) -> int:
    if args.resume and not holds_run(args.output):
        raise EDVRError(f"--resume but --output {args.output} holds no previous run (no options.yml or "
                        "training_states/); drop --resume to start a new run, or give the run's folder")
    if not args.resume and holds_run(args.output):
        raise EDVRError(f"--output {args.output} already holds a run; pass --resume or another --output")
    from edvr_lib.train.trainer import run_train

    with flags_named(override_flag="--set"):
        return run_train(args.config, args.output, overrides=args.overrides, resume=args.resume, device=args.device)
