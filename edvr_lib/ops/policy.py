"""The speed policy: which DCNv2 kernel and which activation layout the network runs with.

Speed only: every choice computes the same function to float32 rounding, and none is saved with a checkpoint.
It is the runner's choice, made once for the process (or for a ``with`` block), never a model argument::

    from edvr_lib import ops
    ops.configure(dcn_backend="torchvision", channels_last=False)   # from now on
    with ops.speed_policy(dcn_backend="torchvision"):               # only inside the block (e.g. ONNX export)
        ...

Defaults come from the environment, read once on first use: ``EDVR_DCN_BACKEND`` (``auto``, ``fast``,
``torchvision``) and ``EDVR_CHANNELS_LAST`` (``auto``, ``1``, ``0``). ``auto`` picks per device what was
measured fastest (``docs/performance.md``): the ``fast`` DCN and NHWC activations on CPU; torchvision's DCN and
NCHW elsewhere until measured.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Iterator

import torch

from edvr_lib.utils.errors import EDVRError

__all__ = ["SpeedPolicy", "configure", "current_policy", "speed_policy", "policy_from_env", "dcn_backend_for",
           "channels_last_for", "DCN_BACKENDS"]

DCN_BACKENDS = ("fast", "torchvision")
# device.type -> measured fastest; devices not listed use the reference kernel and NCHW
AUTO_DCN_BACKEND = {"cpu": "fast"}
AUTO_CHANNELS_LAST = {"cpu": True}

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SpeedPolicy:
    """How the network runs (never what it computes).

    Attributes:
        dcn_backend: ``'auto'``, ``'fast'`` (:mod:`edvr_lib.ops.dcn_fast`) or ``'torchvision'``
            (``torchvision.ops.deform_conv2d``, the reference kernel, also what ONNX export needs).
        channels_last: NHWC activations (True / False), or None for the per-device default.
    """

    dcn_backend: str = "auto"
    channels_last: bool | None = None

    def __post_init__(self):
        if self.dcn_backend not in ("auto", *DCN_BACKENDS):
            raise EDVRError(f"unknown DCN backend {self.dcn_backend!r}; choose one of auto, {', '.join(DCN_BACKENDS)}")
        if self.channels_last not in (None, True, False):
            raise EDVRError(f"channels_last must be True, False or None (auto), got {self.channels_last!r}")


def policy_from_env(environ=os.environ) -> SpeedPolicy:
    """The policy that ``EDVR_DCN_BACKEND`` and ``EDVR_CHANNELS_LAST`` ask for (unset: ``auto``)."""
    backend = environ.get("EDVR_DCN_BACKEND", "auto").strip().lower() or "auto"
    if backend not in ("auto", *DCN_BACKENDS):
        raise EDVRError(f"EDVR_DCN_BACKEND={backend!r} is not a DCN backend; use auto, {', '.join(DCN_BACKENDS)}")
    layout = environ.get("EDVR_CHANNELS_LAST", "auto").strip().lower() or "auto"
    if layout not in _TRUE | _FALSE | {"auto"}:
        raise EDVRError(f"EDVR_CHANNELS_LAST={layout!r} is not understood; use 1, 0 or auto")
    return SpeedPolicy(backend, None if layout == "auto" else layout in _TRUE)


_current: SpeedPolicy | None = None  # None until first use: then read from the environment


def current_policy() -> SpeedPolicy:
    """The policy in force."""
    global _current
    if _current is None:
        _current = policy_from_env()
    return _current


def configure(**changes) -> SpeedPolicy:
    """Change the policy for the rest of the process (``dcn_backend=``, ``channels_last=``); returns the old one."""
    global _current
    old = current_policy()
    unknown = set(changes) - {f.name for f in dataclasses.fields(SpeedPolicy)}
    if unknown:
        raise EDVRError(f"unknown speed policy option(s) {sorted(unknown)}; use dcn_backend and channels_last")
    _current = dataclasses.replace(old, **changes)
    return old


@contextlib.contextmanager
def speed_policy(**changes) -> Iterator[SpeedPolicy]:
    """``configure(**changes)`` inside the ``with`` block only."""
    global _current
    old = configure(**changes)
    try:
        yield current_policy()
    finally:
        _current = old


def dcn_backend_for(device: torch.device | str, name: str | None = None) -> str:
    """The DCN backend ``name`` (default: the policy's) means on ``device``; ``'auto'`` is the measured fastest."""
    name = name or current_policy().dcn_backend
    return AUTO_DCN_BACKEND.get(torch.device(device).type, "torchvision") if name == "auto" else name


def channels_last_for(device: torch.device | str) -> bool:
    """Whether the policy runs NHWC activations on ``device``."""
    setting = current_policy().channels_last
    return AUTO_CHANNELS_LAST.get(torch.device(device).type, False) if setting is None else setting
