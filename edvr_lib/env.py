"""Environment check: what this machine has, and what it can do with EDVR (``edvr env``, notebook 00).

Everything in the verdict table is measured on the spot: a real DCNv2 forward + backward (``deform_conv2d`` with a
mask) and a gradient check on each device, the dense 3x3 convolution throughput that bounds EDVR's speed, memory,
and free disk.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import sys
import time
from pathlib import Path

from edvr_lib.utils.io import REPO_ROOT, free_bytes

REDS_DISK_GB = 100  # REDS train_sharp + train_sharp_bicubic PNGs, plus room for LMDB copies
TRAIN_STEP_FACTOR = 3.0  # a training step costs ~3 forwards (forward + backward w.r.t. activations and weights)
RECIPE_BATCH, RECIPE_ITERS = 32, 600_000  # BasicSR's EDVR option files: 8 GPUs x batch 4


@dataclasses.dataclass
class DeviceInfo:
    name: str  # "cpu" or "cuda:N"
    description: str
    memory_gb: float
    dense_conv_gflops: float | None = None  # measured 64->64 3x3 conv throughput
    dcn_ok: bool | None = None
    dcn_detail: str = ""


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Python, torch, torchvision, CUDA and cuDNN versions (None when absent)."""
    import torch

    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"python": platform.python_version(), "platform": platform.platform(), "torch": torch.__version__,
            "torchvision": _version("torchvision"), "cuda (torch build)": torch.version.cuda,
            "cuda available": str(torch.cuda.is_available()), "cudnn": str(cudnn) if cudnn else None,
            **{d: _version(d) for d in ("numpy", "opencv-python-headless", "ipywidgets", "jupyterlab", "edvr_lib")}}


def _cpu_memory_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


def available_memory_gb() -> float:
    """Memory available to new processes (Linux ``MemAvailable``; total RAM elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return _cpu_memory_gb()


def list_devices() -> list[DeviceInfo]:
    """The CPU and every CUDA device, with memory in GiB."""
    import torch

    devices = [DeviceInfo("cpu", f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, "
                                 f"{torch.get_num_threads()} torch threads", round(_cpu_memory_gb(), 1))]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            devices.append(DeviceInfo(f"cuda:{i}", f"{p.name} (sm_{p.major}{p.minor})",
                                      round(p.total_memory / 2**30, 1)))
    return devices


def _now(device) -> float:
    """``time.perf_counter()`` once ``device`` has finished its queued work."""
    import torch

    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def dcn_check(device: str = "cpu", seed: int = 0) -> tuple[bool, str]:
    """A real DCNv2 forward + backward on ``device``, with a gradient check.

    Runs ``torchvision.ops.deform_conv2d`` with a mask on an EDVR-shaped problem (64 channels, 8 deformable groups),
    then checks analytic gradients against central finite differences on a small float64 problem (on CUDA:
    gradients compared with the CPU's).

    Returns:
        (ok, human-readable detail).
    """
    import torch
    from torchvision.ops import deform_conv2d

    gen = torch.Generator().manual_seed(seed)

    def problem(b, c, h, w, g, dtype):
        x = torch.randn(b, c, h, w, generator=gen, dtype=dtype)
        # offsets up to a few pixels, away from integer positions
        offset = (torch.rand(b, 2 * g * 9, h, w, generator=gen, dtype=dtype) - 0.5) * 6 + 0.25
        mask = torch.rand(b, g * 9, h, w, generator=gen, dtype=dtype)
        weight = torch.randn(c, c, 3, 3, generator=gen, dtype=dtype) * 0.05
        bias = torch.randn(c, generator=gen, dtype=dtype)
        return [t.to(device).requires_grad_() for t in (x, offset, mask, weight, bias)]

    try:
        x, offset, mask, weight, bias = problem(1, 64, 32, 32, 8, torch.float32)
        t0 = _now(device)
        y = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
        t1 = _now(device)
        y.square().mean().backward()
        t2 = _now(device)
        if not all(t.grad is not None and torch.isfinite(t.grad).all() for t in (x, offset, mask, weight, bias)):
            return False, "backward produced missing or non-finite gradients"
        small = problem(1, 4, 5, 5, 2, torch.float64)  # for the gradient check

        def f(*args):
            return deform_conv2d(args[0], args[1], args[3], args[4], padding=1, mask=args[2])

        if torch.device(device).type == "cpu":
            ok = torch.autograd.gradcheck(f, tuple(small), eps=1e-6, atol=1e-5, raise_exception=False)
            how = "finite-difference gradcheck (float64)"
        else:
            grads_dev = torch.autograd.grad(f(*small).sum(), small)
            cpu = [t.detach().cpu().requires_grad_() for t in small]
            grads_cpu = torch.autograd.grad(f(*cpu).sum(), cpu)
            ok = all(torch.allclose(a.cpu(), b, atol=1e-8) for a, b in zip(grads_dev, grads_cpu))
            how = "gradients equal to the CPU's (float64)"
        detail = (f"forward {1e3 * (t1 - t0):.1f} ms, backward {1e3 * (t2 - t1):.1f} ms at 1x64x32x32 "
                  f"(8 groups); {how}: {'passed' if ok else 'FAILED'}")
        return bool(ok), detail
    except Exception as err:  # noqa: BLE001 - report any failure, do not crash the whole check
        return False, f"{type(err).__name__}: {err}"


def dense_conv_gflops(device: str = "cpu", size: int = 64, repeats: int = 3, bf16: bool = False) -> float:
    """Measured throughput of a 64->64 3x3 convolution on ``(5, 64, size, size)`` (the bulk of EDVR's FLOPs).

    With ``bf16``: under bfloat16 autocast, as ``train.amp: bf16`` and ``edvr infer --precision bf16`` run it.
    """
    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(device)
    x = torch.randn(5, 64, size, size, device=device)
    flop = 2 * 64 * 64 * 9 * 5 * size * size
    amp = torch.autocast(torch.device(device).type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.no_grad(), amp:
        conv(x)  # warm-up
        best = float("inf")
        for _ in range(repeats):
            t0 = _now(device)
            conv(x)
            best = min(best, _now(device) - t0)
    return flop / best / 1e9


def cpu_bf16(measure: bool = True) -> dict:
    """Whether this CPU has native bfloat16 (:func:`edvr_lib.ops.policy.cpu_bf16_support`), and its measured speed.

    Args:
        measure: time the dense 3x3 convolution under bf16 autocast against float32, where bf16 is native (an
            emulated one is slow and says nothing about a CPU that has it).

    Returns:
        ``{'native': bool, 'detail': str, 'default_precision': 'fp32' or 'bf16', 'conv_gflops_fp32': float or None,
        'conv_gflops_bf16': float or None}``.
    """
    from edvr_lib.ops.policy import cpu_bf16_support, precision_for

    native, detail = cpu_bf16_support()
    fp32 = bf16 = None
    if measure and native:
        fp32, bf16 = (round(dense_conv_gflops("cpu", bf16=b), 1) for b in (False, True))
        detail += f"; dense 3x3 conv {bf16} GFLOP/s in bf16 against {fp32} in fp32"
    elif not native:
        detail += "; bf16 would be emulated, slower than fp32 (its speed is not measured)"
    return {"native": native, "detail": detail, "default_precision": precision_for("cpu"),
            "conv_gflops_fp32": fp32, "conv_gflops_bf16": bf16}


def widget_frontend() -> tuple[bool, str]:
    """Whether JupyterLab's widget front end matches the installed ipywidgets.

    ipywidgets 8 talks to the ``@jupyter-widgets/jupyterlab-manager`` 5.x lab extension, shipped by
    ``jupyterlab_widgets`` 3.x; ipywidgets 7 needs jupyterlab_widgets 1.x.
    """
    ipyw, jlw = _version("ipywidgets"), _version("jupyterlab_widgets")
    if ipyw is None:
        return False, "ipywidgets is not installed: `pip install 'ipywidgets>=8.1,<9'`"
    if jlw is None:
        return False, (f"ipywidgets {ipyw} is installed but jupyterlab_widgets (the JupyterLab front end) is not: "
                       "`pip install 'jupyterlab_widgets>=3,<4'`")
    want = {"8": "3", "7": "1"}.get(ipyw.split(".")[0])
    if want != jlw.split(".")[0]:
        return False, (f"ipywidgets {ipyw} needs jupyterlab_widgets {want}.x, found {jlw}: "
                       f"`pip install 'jupyterlab_widgets=={want}.*'`")
    ext = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager/package.json"
    if not ext.exists():
        return False, f"lab extension not found at {ext}: reinstall jupyterlab_widgets in this environment"
    return True, (f"ipywidgets {ipyw} + jupyterlab_widgets {jlw} (lab extension jupyterlab-manager "
                  f"{json.loads(ext.read_text())['version']})")


def disk_free_gb(path: str | os.PathLike | None = None) -> tuple[Path, float]:
    """Free space where datasets go (``EDVR_DATA_DIR`` or the repository's ``data/``); NaN when unreadable."""
    path = Path(path or os.environ.get("EDVR_DATA_DIR") or REPO_ROOT / "data")
    free = free_bytes(path)
    return path, float("nan") if free is None else free / 2**30


def verdicts(devices: list[DeviceInfo], mem_available_gb: float, disk_gb: float) -> list[dict]:
    """What this machine can do, judged from the measurements.

    Speeds are estimated from the measured dense-conv throughput and EDVR's FLOP count (the dense convolutions are
    ~95% of EDVR's FLOPs), so they are upper bounds on speed.
    """
    from edvr_lib.introspect import edvr_gflop

    def row(task: str, ok: bool, why: str) -> dict:
        return {"task": task, "verdict": "yes" if ok else "no", "why": why}

    m_gflop, l_gflop = edvr_gflop("M"), edvr_gflop("L")  # 5 frames, LR 64x64
    cpu = devices[0]
    cpu_ok, cpu_gflops = bool(cpu.dcn_ok), cpu.dense_conv_gflops
    step_s = m_gflop * TRAIN_STEP_FACTOR * 4 / cpu_gflops if cpu_gflops else None
    rows = [
        row("smoke run on CPU (make test)", cpu_ok and mem_available_gb >= 2,
            f"DCNv2 check {'passed' if cpu_ok else 'failed'} on CPU; {mem_available_gb:.1f} GiB RAM available "
            "(needs 2)"),
        row("full tutorial on CPU (make tutorial)",
            cpu_ok and mem_available_gb >= 6 and cpu_gflops is not None and cpu_gflops >= 30,
            f"dense conv {cpu_gflops or 0:.0f} GFLOP/s (needs 30), {mem_available_gb:.1f} GiB RAM available "
            f"(needs 6); an EDVR-M training step (batch 4, LR 64x64) costs >= {step_s or float('nan'):.1f} s here"),
    ]
    best = max((d for d in devices if d.name.startswith("cuda")), key=lambda d: d.dense_conv_gflops or 0, default=None)
    for label, gflop, need_gb in (("EDVR-M", m_gflop, 8), ("EDVR-L", l_gflop, 24)):
        task = f"{label} training on GPU (REDS recipe, batch {RECIPE_BATCH}, {RECIPE_ITERS // 1000}k iters)"
        if best is None:
            rows.append(row(task, False, "no CUDA device"))
            continue
        hours = gflop * TRAIN_STEP_FACTOR * RECIPE_BATCH * RECIPE_ITERS / (best.dense_conv_gflops or 1e-9) / 3600
        rows.append(row(task, bool(best.dcn_ok) and best.memory_gb >= need_gb and disk_gb >= REDS_DISK_GB,
                        f"{best.name}: {best.memory_gb:.0f} GiB (needs {need_gb} for batch 4/GPU with gradient "
                        f"accumulation), DCNv2 {'ok' if best.dcn_ok else 'FAILED'}, {disk_gb:.0f} GB disk free "
                        f"(REDS needs ~{REDS_DISK_GB}); >= {hours:.0f} GPU-hours at the measured "
                        f"{best.dense_conv_gflops:.0f} GFLOP/s fp32"))
    return rows


def collect(measure: bool = True) -> dict:
    """Run every check and return the report as a JSON-serialisable dict."""
    devices = list_devices()
    if measure:
        for d in devices:
            d.dcn_ok, d.dcn_detail = dcn_check(d.name)
            d.dense_conv_gflops = round(dense_conv_gflops(d.name, size=64 if d.name == "cpu" else 256), 1)
    widgets_ok, widgets_detail = widget_frontend()
    data_dir, free = disk_free_gb()
    mem_avail = available_memory_gb()
    return {
        "versions": versions(),
        "devices": [dataclasses.asdict(d) for d in devices],
        "widgets": {"ok": widgets_ok, "detail": widgets_detail},
        "disk": {"path": str(data_dir), "free_gb": round(free, 1), "reds_needs_gb": REDS_DISK_GB,
                 "enough_for_reds": free >= REDS_DISK_GB},
        "memory_available_gb": round(mem_avail, 1),
        "cpu_bf16": cpu_bf16(measure),
        "verdicts": verdicts(devices, mem_avail, free) if measure else [],
    }


def format_report(report: dict) -> str:
    """Plain-text rendering of :func:`collect`'s report (what ``edvr env`` prints)."""
    lines = ["Versions", *(f"  {k:<24} {v}" for k, v in report["versions"].items()), "Devices"]
    for d in report["devices"]:
        lines.append(f"  {d['name']:<8} {d['description']}, {d['memory_gb']} GiB")
        if d["dcn_ok"] is not None:
            lines += [f"           DCNv2: {'ok' if d['dcn_ok'] else 'FAILED'} ({d['dcn_detail']})",
                      f"           dense 3x3 conv: {d['dense_conv_gflops']} GFLOP/s"]
    bf16 = report.get("cpu_bf16")
    if bf16:
        lines.append(f"CPU bf16    {'native' if bf16['native'] else 'not native'}: {bf16['detail']} "
                     f"(default precision {bf16['default_precision']})")
    w, disk = report["widgets"], report["disk"]
    lines += [f"Widgets     {'ok' if w['ok'] else 'PROBLEM'}: {w['detail']}",
              f"Disk        {disk['free_gb']} GB free at {disk['path']} (REDS needs ~{disk['reds_needs_gb']} GB: "
              f"{'enough' if disk['enough_for_reds'] else 'not enough'})",
              f"Memory      {report['memory_available_gb']} GiB available"]
    if report["verdicts"]:
        width = max(len(v["task"]) for v in report["verdicts"])
        lines += ["What this machine can do",
                  *(f"  {v['task']:<{width}}  {v['verdict']:<3}  {v['why']}" for v in report["verdicts"])]
    return "\n".join(lines)


def verdict_markdown(report: dict) -> str:
    """The verdict table of :func:`collect`'s report as Markdown (for notebooks)."""
    rows = ["| task | verdict | measured |", "|---|---|---|"]
    rows += [f"| {v['task']} | **{v['verdict']}** | {v['why']} |" for v in report["verdicts"]]
    return "\n".join(rows)
