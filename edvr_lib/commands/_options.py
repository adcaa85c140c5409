"""Option types and checks shared by the ``edvr`` commands: every option is checked before any work starts.

Each checker is an argparse ``type=`` callable that returns the parsed value or raises
:class:`argparse.ArgumentTypeError` with the value and the fix (one line from :func:`edvr_lib.cli.main`); it only
looks (stat, access), never writes. Checks of two options together open each command's ``run`` (``EDVRError``).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

from edvr_lib.utils.errors import EDVRError

__all__ = ["DEVICE_HELP", "check_device", "resolve_device", "whole_number", "int_at_least", "odd_int", "existing",
           "output_path", "add_output", "no_weights_for_bicubic", "flags_named"]

DEVICE_HELP = "auto (default: cuda if available, else cpu), cpu, cuda or cuda:N"
_DEVICE = re.compile(r"(auto|cpu|cuda)(?::(\d+))?")
_OVERRIDE = re.compile(r"override '(.+?)'(?=:|$)")  # how edvr_lib.train.options names an override


def check_device(value: str) -> str:
    """Check a ``--device`` value (``auto``, ``cpu``, ``cuda``, ``cuda:N``) against this machine; return it as is.

    Raises:
        argparse.ArgumentTypeError: unknown text, or a CUDA device this machine does not have.
    """
    m = _DEVICE.fullmatch(value.strip().lower())
    if not m or (m[2] is not None and m[1] != "cuda"):
        raise argparse.ArgumentTypeError(f"unknown device {value!r}; use auto, cpu, cuda or cuda:N (e.g. cuda:0)")
    if m[1] == "cuda":
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise argparse.ArgumentTypeError(f"{value!r} but CUDA is not available on this machine "
                                             f"(torch {torch.__version__}); use --device cpu or --device auto")
        if m[2] is not None and int(m[2]) >= count:
            raise argparse.ArgumentTypeError(f"{value!r} but this machine has {count} CUDA device(s), "
                                             f"cuda:0..cuda:{count - 1}; use one of them or --device cuda")
    return m[0]


def resolve_device(value: str) -> str:
    """:func:`check_device`, then ``auto`` -> ``'cuda'`` if CUDA is available, else ``'cpu'``."""
    import torch

    value = check_device(value)
    return value if value != "auto" else "cuda" if torch.cuda.is_available() else "cpu"


def whole_number(text: str, fix: str = "") -> int:
    """``int(text)``, else :class:`argparse.ArgumentTypeError` ending in ``fix`` (e.g. ``'; give an opset ...'``)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number{fix}") from None


def int_at_least(minimum: int, example: int | None = None) -> Callable[[str], int]:
    """A ``type=`` for whole numbers ``>= minimum`` (``example`` goes into the fix)."""
    def parse(text: str) -> int:
        n = whole_number(text)
        if n < minimum:
            hint = f", e.g. {example}" if example is not None else ""
            raise argparse.ArgumentTypeError(f"{n} is too small; give a whole number >= {minimum}{hint}")
        return n

    return parse


def odd_int(text: str) -> int:
    """A ``type=`` for odd whole numbers >= 1 (a window of frames centred on one frame)."""
    n = whole_number(text)
    if n < 1 or n % 2 == 0:
        raise argparse.ArgumentTypeError(f"{n} is not an odd number >= 1; the window is centred on one frame, "
                                         "give 1, 3, 5, 7 ...")
    return n


def existing(what: str, kind: str = "file", suffixes: tuple[str, ...] = ()) -> Callable[[str], Path]:
    """A ``type=`` for a path that must exist.

    Args:
        what: names it in the message, e.g. ``'checkpoint (.pth)'``.
        kind: ``'file'``, ``'folder'`` or ``'any'`` (either).
        suffixes: accepted name endings of a file, any when empty.
    """
    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        if suffixes and path.suffix.lower() not in suffixes:
            raise argparse.ArgumentTypeError(f"{text} is not a {what}; give a file ending in {', '.join(suffixes)}")
        if kind == "file" and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a {what}")
        if kind == "folder" and path.exists() and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a file; give a {what}")
        if not (path.is_file() if kind == "file" else path.is_dir() if kind == "folder" else path.exists()):
            raise argparse.ArgumentTypeError(f"{text} does not exist; give an existing {what}")
        return path

    return parse


def output_path(file_suffixes: tuple[str, ...] = ()) -> Callable[[str], Path]:
    """A ``type=`` for where output goes, a folder: it may not exist yet, but it must be creatable and writable.

    Args:
        file_suffixes: names ending in one of these are files instead (``infer``'s ``.mp4``).
    """
    def parse(text: str) -> Path:
        path = Path(text).expanduser()
        is_file = path.suffix.lower() in file_suffixes
        if not is_file and path.exists() and not path.is_dir():
            kinds = f"a folder, or a video name ending in {', '.join(file_suffixes)}" if file_suffixes else "a folder"
            raise argparse.ArgumentTypeError(f"{text} is a file; give {kinds}")
        if is_file and path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name")
        # the nearest existing folder above (or at) the path must be a writable folder
        probe = path if path.exists() else path.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise argparse.ArgumentTypeError(f"{text} cannot be created: {probe} is a file; give another path")
        if not os.access(probe, os.W_OK | os.X_OK):
            raise argparse.ArgumentTypeError(f"{text} cannot be written: {probe} is not writable; "
                                             "give a path in a folder you can write to")
        return path

    return parse


class _DeprecatedAlias(argparse.Action):
    """Stores the value like the new option and warns on stderr; ``metavar`` (never shown) names the new option."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: {option_string} is deprecated; use {self.metavar}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_output(parser: argparse.ArgumentParser, help: str, default: str | None = None,
               type: Callable[[str], Path] | None = None, old: str | None = None, **kwargs) -> None:
    """Add ``--output`` (every command names its output location so); ``old`` is a hidden deprecated alias."""
    type = type or output_path()
    parser.add_argument("--output", type=type, default=default, help=help, **kwargs)
    if old:
        parser.add_argument(old, dest="output", type=type, action=_DeprecatedAlias, metavar="--output",
                            default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def no_weights_for_bicubic(weights: Path | None, model: str | None) -> None:
    """Refuse ``--weights`` with ``--model bicubic`` (the baseline has none) with :class:`EDVRError`."""
    if weights is not None and model == "bicubic":
        raise EDVRError(f"--weights {weights} with --model bicubic: the baseline has no weights; "
                        "drop --weights or --model bicubic")


@contextlib.contextmanager
def flags_named(override_flag: str | None = None, **flags: str) -> Iterator[None]:
    """Library errors name a parameter as `` `name` `` and an option override as ``override 'KEY=VALUE'``; inside
    this block they name the command's flags instead.

    Example: ``with flags_named(root="--root"): run_test(...)`` turns "needs `root`" into "needs --root";
    ``flags_named(override_flag="--set")`` turns "override 'train.lr=1': ..." into "--set train.lr=1: ...".
    """
    try:
        yield
    except EDVRError as err:
        text = str(err)
        for name, flag in flags.items():
            text = text.replace(f"`{name}`", flag)
        if override_flag:
            text = _OVERRIDE.sub(lambda m: f"{override_flag} {m[1]}", text)
        if text == str(err):
            raise
        raise EDVRError(text) from None
