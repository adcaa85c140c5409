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

Precision: ``auto`` (``edvr infer``'s default) is float32 everywhere until a lower precision is measured to be
faster *and* to meet the quality bar on a kind of device (:data:`AUTO_PRECISION`). bfloat16 autocast runs on CUDA
and on CPUs; :func:`cpu_bf16_support` says whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX).
Without it, bf16 is emulated: the same numbers, but slower than float32. An explicit bf16 request still runs
there, with one line saying so (:func:`autocast_dtype`), so its quality can be checked on any machine.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import torch

from edvr_lib.utils.errors import EDVRError

__all__ = ["SpeedPolicy", "configure", "current_policy", "speed_policy", "policy_from_env", "dcn_backend_for",
           "channels_last_for", "DCN_BACKENDS", "PRECISIONS", "AUTO_PRECISION", "cpu_bf16_support", "native_bf16",
           "device_kind", "precision_for", "autocast_dtype", "emulated_bf16_note"]

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


# ------------------------------------------------------------------------------------------------ precision
PRECISIONS = ("fp32", "bf16", "fp16")
AUTODTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# device kind (:func:`device_kind`) -> the precision measured fastest that meets the quality bar
# (docs/performance.md, "bf16"); kinds not listed run float32. Candidate: "cpu-bf16": "bf16", once measured.
AUTO_PRECISION: dict[str, str] = {}
# CPU flags (/proc/cpuinfo) of native bfloat16 arithmetic: x86 AVX512-BF16 and AMX, Arm's BF16 extension
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.lru_cache(maxsize=None)
def cpu_bf16_support(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[bool, str]:
    """Whether this CPU has native bfloat16 arithmetic, and one line saying how that was decided.

    Reads the CPU flags of ``cpuinfo`` (Linux); elsewhere, or when it cannot be read, the answer is False
    (unknown: bf16 is then treated as emulated). ``torch.backends.cpu.get_cpu_capability()`` names the vector
    unit PyTorch's own kernels use (``AVX2``, ``AVX512``, ...); it is reported, but AVX512 alone does not imply
    bf16.

    Returns:
        ``(native, detail)``, e.g. ``(False, "no native bf16 (flags avx512_bf16 / amx_bf16 absent; torch CPU
        capability AVX2)")``.
    """
    capability = torch.backends.cpu.get_cpu_capability()
    try:
        flags = set()
        for line in Path(cpuinfo).read_text().splitlines():
            if line.split(":")[0].strip() in ("flags", "Features"):
                flags.update(line.split(":", 1)[1].split())
    except OSError:
        return False, (f"unknown ({cpuinfo} unreadable on {platform.system() or 'this system'}; torch CPU "
                       f"capability {capability}), treated as no native bf16")
    found = [f for f in _BF16_FLAGS if f in flags]
    if found:
        return True, f"native bf16 ({', '.join(found)}; torch CPU capability {capability})"
    return False, f"no native bf16 (flags avx512_bf16 / amx_bf16 absent; torch CPU capability {capability})"


def native_bf16(device: torch.device | str) -> bool:
    """Whether ``device`` computes bfloat16 natively (a CPU: :func:`cpu_bf16_support`; CUDA: Ampere or newer)."""
    device = torch.device(device)
    if device.type == "cpu":
        return cpu_bf16_support()[0]
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    return False


def device_kind(device: torch.device | str) -> str:
    """The key of :data:`AUTO_PRECISION`: ``'cpu-bf16'`` (a CPU with native bf16), ``'cpu'``, ``'cuda'``, ..."""
    device = torch.device(device)
    return "cpu-bf16" if device.type == "cpu" and native_bf16(device) else device.type


def precision_for(device: torch.device | str, precision: str = "auto") -> str:
    """The precision ``precision`` means on ``device``: ``'auto'`` is the per-device default (float32 unless
    measured)."""
    if precision not in ("auto", *PRECISIONS):
        raise EDVRError(f"unknown precision {precision!r}; use auto, {', '.join(PRECISIONS)}")
    return AUTO_PRECISION.get(device_kind(device), "fp32") if precision == "auto" else precision


def emulated_bf16_note(device: torch.device | str = "cpu") -> str:
    """The one line printed when bf16 is asked for on a CPU without native bf16."""
    return (f"bf16 on {torch.device(device)} is emulated, slower than fp32: {cpu_bf16_support()[1]}. Running it "
            "anyway (the same results as native bf16); for speed use fp32: `--precision fp32`, or no `train.amp`")


def autocast_dtype(device: torch.device | str, precision: str,
                   log: Callable[[str], None] | None = print) -> torch.dtype | None:
    """The autocast dtype of ``precision`` on ``device`` (None: float32), after checking that it can run there.

    bf16 runs on CUDA and on any CPU (``log`` gets :func:`emulated_bf16_note` where the CPU has no native bf16);
    fp16 needs CUDA.

    Args:
        device: where the network runs.
        precision: ``'auto'`` (:func:`precision_for`), ``'fp32'``, ``'bf16'`` or ``'fp16'``.
        log: where the emulation line goes (None: nowhere).

    Raises:
        EDVRError: an unknown precision, or fp16 / bf16 on a device that cannot autocast to it.
    """
    device = torch.device(device)
    precision = precision_for(device, precision)
    if precision == "fp32":
        return None
    if device.type == "cuda" or (device.type == "cpu" and precision == "bf16"):
        if device.type == "cpu" and not native_bf16(device) and log is not None:
            log(emulated_bf16_note(device))
        return AUTODTYPES[precision]
    fix = "use fp32 or bf16 on CPU" if device.type == "cpu" else "use fp32"
    raise EDVRError(f"precision {precision} needs a CUDA device (got {device}); {fix}")
