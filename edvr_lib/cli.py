"""The ``edvr`` command line (also ``python -m edvr_lib``).

Each subcommand is one module of :mod:`edvr_lib.commands` with ``add_arguments(parser)`` and ``run(args) -> int``,
imported only when it runs (``edvr --help`` stays fast). An error the user can fix (argparse's, or an
:class:`~edvr_lib.utils.EDVRError` from the command) is one line on stderr, ``edvr <cmd>: error: <what, the value
and the fix>``, exit code 2, no traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand -> (module, one-line help). Explicit, no folder scanning.
COMMANDS: dict[str, tuple[str, str]] = {
    "env": ("edvr_lib.commands.env", "report versions, devices, a DCNv2 check and what this machine can do"),
    "prepare-embedded": ("edvr_lib.commands.prepare_embedded",
                         "build the offline embedded dataset (Big Buck Bunny + known-motion clips)"),
    "prepare-reds": ("edvr_lib.commands.prepare_reds",
                     "check a REDS download; regroup val, regenerate LR, write meta info"),
    "inspect-checkpoint": ("edvr_lib.commands.inspect_checkpoint",
                           "describe a .pth file: format, key naming, inferred preset, loads strict?"),
    "train": ("edvr_lib.commands.train", "train EDVR from a YAML config into an output folder (resumable)"),
    "test": ("edvr_lib.commands.test",
             "PSNR/SSIM on REDS4, Vid4, Vimeo-90K-T or the embedded clips, beside published numbers"),
    "infer": ("edvr_lib.commands.infer", "super-resolve a folder of frames or a video (streaming, optional tiles)"),
    "export": ("edvr_lib.commands.export",
               "export a checkpoint to ONNX (any frame size), verified in onnxruntime against torch"),
    "docs": ("edvr_lib.commands.docs", "regenerate the README results block, docs/results.md and its figures"),
    "notebooks": ("edvr_lib.commands.notebooks", "execute (run), check or strip the tutorial notebooks"),
}


class UsageError(Exception):
    """A command-line mistake argparse found; :func:`main` prints it as one line."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error becomes :class:`UsageError` (one line, exit 2) instead of usage + exit."""

    def error(self, message: str):
        raise UsageError(message)


def main(argv: list[str] | None = None) -> int:
    """Run ``edvr`` with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    from edvr_lib.utils.errors import EDVRError

    argv = sys.argv[1:] if argv is None else argv
    name = argv[0] if argv and argv[0] in COMMANDS else None
    if name is None:  # no command: the list of commands
        parser = Parser(prog="edvr", description="EDVR video super-resolution, hands-on.",
                        epilog="`edvr COMMAND --help` shows the options of one command.")
        sub = parser.add_subparsers(dest="command", metavar="COMMAND")
        for command, (_, help_text) in COMMANDS.items():
            sub.add_parser(command, help=help_text, add_help=False)
    else:  # only this command's module is imported and its parser built
        module = importlib.import_module(COMMANDS[name][0])
        parser = Parser(prog=f"edvr {name}", description=COMMANDS[name][1])
        module.add_arguments(parser)
    try:
        args = parser.parse_args(argv if name is None else argv[1:])
    except UsageError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    except SystemExit as done:  # --help
        return int(done.code or 0)
    if name is None:
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(module.run(args) or 0)
    except EDVRError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
