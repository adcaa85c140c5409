"""EDVR-M speed: this project's model against the reference (BasicSR 1.4.2), in one process.

Run from the repository root::

    python -m benchmarks.edvr_speed            # full run (~10-15 min on 2 CPU cores); updates docs/performance.*
    python -m benchmarks.edvr_speed --quick    # fewer repeats, writes nothing
    make bench

Workloads (fp32 unless ``--amp``): forward at 1x5x3x64x64, forward at 1x5x3x180x320 (REDS-sized), and one
training step at batch 4 (5x3x64x64 LR crops, 256x256 GT, Charbonnier loss, Adam). Both models get the
same seeded weights (non-zero offset layers, so the DCNs really sample off-grid). Runs are interleaved
(ours, reference, ours, ...) after one warm-up each and the *median* is reported, since other processes
on the machine add noise. Then:

* ratio = reference median / our median (> 1: we are faster);
* achieved GFLOP/s = FLOPs counted by ``edvr_lib.introspect.edvr_gflop`` (training step counted as 3x the forward)
  / median time, against a dense-convolution roofline measured on the spot (best of a 64->64 3x3
  convolution in NCHW and channels_last); "floor" = FLOPs / roofline;
* peak memory: each (implementation, workload) runs once more in a fresh subprocess, and the increase
  of the process's peak resident set size (``VmHWM``) over its value just before the workload is reported
  (weights, inputs and imports excluded; includes allocator slack);
* output check: max |ours - reference| of the forward outputs and of the first training step's loss and
  gradients (must be < 1e-4);
* bf16 column (fp32 runs only): our model once more under ``torch.autocast(bfloat16)`` (DCNs and loss in
  float32, as ``train.amp: bf16`` runs it), interleaved with the others, against our fp32 and the reference, with a
  bf16 dense-conv roofline measured the same way. ``--bf16 auto`` measures it where bf16 is native (a CPU with
  AVX512-BF16 / AMX) and prints why not elsewhere; ``--bf16 on`` runs it anyway (emulated on an AVX2 CPU: slow,
  says nothing about a CPU that has bf16); ``--bf16 off`` skips it.

The reference is imported from ``.reference_venv/site`` (made by ``python -m tools.reference.env``, or
``--install-reference``); when absent it is skipped with a note.

A full run (not ``--quick``) writes its results atomically: ``docs/performance.json`` (every timing) and the
table between the ``bench:begin`` / ``bench:end`` markers of ``docs/performance.md`` (``--no-write`` to skip).
Speed switches of our model: ``--dcn-backend``, ``--channels-last``, ``--threads``, ``--amp``, ``--compile``,
``--bf16``.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
REF_SITE = REPO / ".reference_venv" / "site"
DOCS = REPO / "docs" / "performance.md"
WORKLOADS = ("fwd64", "fwd180x320", "train")
LABELS = {"fwd64": "forward 1x5x3x64x64", "fwd180x320": "forward 1x5x3x180x320",
          "train": "train step b=4 (5x3x64x64 -> 256x256)"}
TARGETS = {"fwd64": 1.8, "fwd180x320": 2.0, "train": 3.5}  # speed-up over the reference (issue: Fast EDVR)
MARK_BEGIN, MARK_END = "<!-- bench:begin -->", "<!-- bench:end -->"


# ----------------------------------------------------------------------------------------------- models
def reference_edvr_class(install: bool = False):
    """BasicSR 1.4.2's ``EDVR`` class from the throwaway install, or ``(None, why)``."""
    if install:
        sys.path.insert(0, str(REPO))
        from tools.reference.env import ensure_reference

        try:
            ensure_reference(quiet=False)
        except RuntimeError as exc:  # offline, or pip failed: time our model alone
            return None, f"installing the reference failed ({str(exc).splitlines()[0]})"
    if not (REF_SITE / "basicsr" / "archs" / "edvr_arch.py").exists():
        return None, (f"reference not installed ({REF_SITE} missing): run `python -m tools.reference.env` "
                      "or pass --install-reference")
    import torchvision.transforms.functional as tvf

    # BasicSR 1.4.2 imports torchvision.transforms.functional_tensor, removed in torchvision 0.17 (BasicSR#663)
    sys.modules.setdefault("torchvision.transforms.functional_tensor", tvf)
    if str(REF_SITE) not in sys.path:
        sys.path.insert(0, str(REF_SITE))
    try:
        from basicsr.archs.edvr_arch import EDVR as RefEDVR
    except Exception as exc:  # noqa: BLE001 - any import problem means "skip the reference"
        return None, f"reference import failed: {type(exc).__name__}: {exc}"
    return RefEDVR, ""


def seeded_weights(model: torch.nn.Module, seed: int = 0) -> dict:
    sys.path.insert(0, str(REPO))
    from tools.reference.seeded_weights import seeded_state_dict

    return seeded_state_dict([(k, tuple(v.shape)) for k, v in model.state_dict().items()], seed)


def build_models(args, with_reference: bool):
    """``{'ours': model, 'reference': model}`` with identical weights (reference optional)."""
    from edvr_lib.archs import build_edvr
    from edvr_lib.ops import configure

    # the speed policy is the runner's (ours only; the reference runs its own code)
    configure(dcn_backend=args.dcn_backend, channels_last={"auto": None, "on": True, "off": False}[args.channels_last])
    ours = build_edvr("M")
    state = seeded_weights(ours)
    ours.load_state_dict(state)
    models, note = {"ours": ours}, ""
    if with_reference:
        ref_cls, note = reference_edvr_class(args.install_reference)
        if ref_cls is not None:
            ref = ref_cls(num_in_ch=3, num_out_ch=3, num_feat=64, num_frame=5, deformable_groups=8,
                          num_extract_block=5, num_reconstruct_block=10, center_frame_idx=None, hr_in=False,
                          with_predeblur=False, with_tsa=True)
            ref.load_state_dict(state)
            models["reference"] = ref
    dev = torch.device(args.device)
    for m in models.values():
        m.to(dev)
    if args.compile:
        models["ours"] = torch.compile(models["ours"])
    return models, note


# ------------------------------------------------------------------------------------------- workloads
def make_inputs(workload: str, device: torch.device, seed: int = 1):
    gen = torch.Generator().manual_seed(seed)
    if workload == "fwd64":
        return (torch.rand(1, 5, 3, 64, 64, generator=gen).to(device),)
    if workload == "fwd180x320":
        return (torch.rand(1, 5, 3, 180, 320, generator=gen).to(device),)
    lq = torch.rand(4, 5, 3, 64, 64, generator=gen).to(device)
    gt = torch.rand(4, 3, 256, 256, generator=gen).to(device)
    return lq, gt


class Runner:
    """Runs one workload on one model (keeps the optimizer of the training step)."""

    def __init__(self, model, workload: str, args, amp: str | None = None):
        self.model, self.workload, self.args = model, workload, args
        self.device = torch.device(args.device)
        self.inputs = make_inputs(workload, self.device)
        self.opt = None
        self.scaler = None
        amp = args.amp if amp is None else amp  # the bf16 column's runner overrides --amp
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(amp)
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=amp_dtype)) if amp_dtype else None
        if workload == "train":
            self.opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.9, 0.99))
            if amp == "fp16":
                self.scaler = torch.amp.GradScaler(self.device.type)

    def _ctx(self):
        import contextlib

        return self.autocast() if self.autocast else contextlib.nullcontext()

    def __call__(self, keep: bool = False):
        """One run; with ``keep`` return the output (forward) or (loss, grads) (training, before the step)."""
        if self.workload != "train":
            self.model.eval()
            with torch.no_grad(), self._ctx():
                out = self.model(self.inputs[0])
            return out.float() if keep else None
        from edvr_lib.losses import charbonnier

        self.model.train()
        lq, gt = self.inputs
        self.opt.zero_grad(set_to_none=True)
        with self._ctx():
            loss = charbonnier(self.model(lq).float(), gt, eps=1e-12)  # BasicSR CharbonnierLoss eps
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        kept = None
        if keep:
            kept = (loss.detach(), {k: p.grad.detach().clone() for k, p in self.model.named_parameters()
                                    if p.grad is not None})
        if self.scaler is not None:
            self.scaler.step(self.opt)
            self.scaler.update()
        else:
            self.opt.step()
        return kept


def _sync(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(runner: Runner) -> tuple[float, float]:
    """``(wall s, process CPU s)`` of one run; CPU time over wall time shows how many cores it really got."""
    _sync(runner.device)
    t0, c0 = time.perf_counter(), time.process_time()
    runner()
    _sync(runner.device)
    return time.perf_counter() - t0, time.process_time() - c0


# ---------------------------------------------------------------------------------------------- metrics
def conv_roofline(device: torch.device, repeats: int = 7, bf16: bool = False) -> tuple[float, str]:
    """Best GFLOP/s of a dense 64->64 3x3 convolution at 1x64x64x64 (NCHW vs channels_last, fastest run).

    With ``bf16``: the same convolution under bfloat16 autocast (the bf16 column's roofline).
    """
    import contextlib

    x = torch.randn(1, 64, 64, 64, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, 1, 1).to(device)
    gflop = 2 * 64 * 64 * 9 * 64 * 64 / 1e9
    best = (0.0, "")
    for fmt in (torch.contiguous_format, torch.channels_last):
        xf, cf = x.to(memory_format=fmt), conv.to(memory_format=fmt)
        times = []
        amp = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with torch.no_grad(), amp:
            for _ in range(3):  # warm-up (oneDNN primitive creation, page faults)
                cf(xf)
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(5):
                    cf(xf)
                _sync(device)
                times.append((time.perf_counter() - t0) / 5)
        rate = gflop / min(times)  # best run: the roofline is what the machine can do when left alone
        name = "channels_last" if fmt is torch.channels_last else "NCHW"
        print(f"  dense conv 64->64 3x3 @64x64 {name:13s}: {rate:7.1f} GFLOP/s" + (" (bf16 autocast)" if bf16 else ""))
        best = max(best, (rate, name))
    return best


def workload_gflop(workload: str) -> float:
    from edvr_lib.introspect import edvr_gflop

    if workload == "fwd64":
        return edvr_gflop("M", 64, 64)
    if workload == "fwd180x320":
        return edvr_gflop("M", 180, 320)
    return 3 * 4 * edvr_gflop("M", 64, 64)  # forward + backward (~2x forward) at batch 4


def max_abs_diff(a, b) -> float:
    if isinstance(a, torch.Tensor):
        return (a.float() - b.float()).abs().max().item()
    loss_a, grads_a = a
    loss_b, grads_b = b
    diffs = [abs(loss_a.item() - loss_b.item())]
    diffs += [(grads_a[k] - grads_b[k]).abs().max().item() for k in grads_a if k in grads_b]
    return max(diffs)


def peak_rss_kb() -> int:
    """This process's peak resident set size (kB).

    ``VmHWM`` of ``/proc/self/status`` where available: ``ru_maxrss`` of a freshly exec'd child starts at the RSS its
    parent had when it forked (Linux keeps the pre-exec high-water mark), which hides the child's own peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_worker(impl: str, workload: str, args) -> dict:
    """Run in a fresh process: the peak-RSS increase of one run of ``workload`` (kB)."""
    models, note = build_models(args, with_reference=impl == "reference")
    if impl not in models:
        return {"error": note}
    runner = Runner(models[impl], workload, args)
    cuda = runner.device.type == "cuda"
    if cuda:  # GPU: the caching allocator's peak above what is allocated before the run
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated() // 1024
    else:
        before = peak_rss_kb()
    runner()
    if workload == "train":
        runner()  # the second step includes Adam's state
    after = torch.cuda.max_memory_allocated() // 1024 if cuda else peak_rss_kb()
    return {"before_kb": before, "peak_kb": after, "delta_kb": after - before}


def measure_memory(impl: str, workload: str, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.edvr_speed", "--memory-worker", impl, workload,
           "--dcn-backend", args.dcn_backend, "--device", args.device, "--channels-last", args.channels_last,
           "--amp", args.amp]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------ bf16
NOT_NATIVE = "not measured: this CPU has no native bf16 (avx512_bf16 / amx_bf16); `--bf16 on` runs it emulated"


def bf16_plan(args, device: torch.device) -> tuple[bool, bool, str]:
    """Whether the bf16 column is measured, whether that bf16 is emulated, and the line saying why (not)."""
    from edvr_lib.ops.policy import cpu_bf16_support, native_bf16

    native = native_bf16(device)
    detail = cpu_bf16_support()[1] if device.type == "cpu" else f"bf16 on {device}: native={native}"
    if args.amp != "none":
        return False, False, f"not measured separately: the whole run is under --amp {args.amp}"
    if args.bf16 == "off":
        return False, False, "not measured (--bf16 off)"
    if args.bf16 == "on":
        how = "native" if native else "EMULATED (slower than fp32; says nothing about a CPU with bf16)"
        return True, not native, f"measured, {how}: {detail}"
    if device.type == "cpu" and native:
        return True, False, f"measured, native: {detail}"
    return False, False, NOT_NATIVE if device.type == "cpu" else f"not measured on {device} by default (`--bf16 on`)"


def bf16_rows(results: dict, roof_bf16: float | None) -> list[dict]:
    """The bf16 column per workload: our bf16 median against our fp32 and the reference."""
    rows = []
    for wl, r in results.items():
        if "ours_bf16" not in r["times"]:
            continue
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        ref_t, gf = med.get("reference"), workload_gflop(wl)
        rows.append({"workload": wl, "label": LABELS[wl], "ours_bf16_s": med["ours_bf16"], "ours_s": med["ours"],
                     "reference_s": ref_t, "vs_fp32": med["ours"] / med["ours_bf16"],
                     "vs_reference": ref_t / med["ours_bf16"] if ref_t else None,
                     "ours_bf16_gflops": gf / med["ours_bf16"],
                     "floor_s": gf / roof_bf16 if roof_bf16 else None, "diff_vs_fp32": r["bf16_diff"],
                     "ours_bf16_cpu_s": statistics.median(r["cpu"]["ours_bf16"])})
    return rows


def bf16_diff(bf16, fp32) -> float:
    """Forward: max |bf16 - fp32| of the outputs; training step: |loss difference| / fp32 loss."""
    if isinstance(bf16, torch.Tensor):
        return (bf16.float() - fp32.float()).abs().max().item()
    return abs(bf16[0].item() - fp32[0].item()) / max(abs(fp32[0].item()), 1e-12)


def format_bf16_table(bf16: dict) -> str:
    """The bf16 column as text (or the line saying why it was not measured)."""
    if not bf16["rows"]:
        return f"bf16: {bf16['note']}"
    lines = [f"bf16 (autocast; DCNs and loss in float32): {bf16['note']}",
             f"{'workload':40s} {'bf16 s':>8s} {'fp32 s':>8s} {'ref s':>8s} {'vs fp32':>7s} {'vs ref':>7s} "
             f"{'GF/s':>6s} {'floor s':>7s} {'bf16-fp32':>9s}"]
    for r in bf16["rows"]:
        lines.append(f"{r['label']:40s} {r['ours_bf16_s']:8.3f} {r['ours_s']:8.3f} "
                     f"{_fmt(r['reference_s'], '8.3f'):>8s} "
                     f"{r['vs_fp32']:7.2f} {_fmt(r['vs_reference'], '7.2f'):>7s} {r['ours_bf16_gflops']:6.1f} "
                     f"{_fmt(r['floor_s'], '7.3f'):>7s} {r['diff_vs_fp32']:9.1e}")
    if bf16.get("roofline_gflops"):
        lines.append(f"bf16 roofline {bf16['roofline_gflops']:.1f} GFLOP/s ({bf16['roofline_layout']}); "
                     "bf16-fp32: forward max |diff|, training step relative loss difference")
    return "\n".join(lines)


def markdown_bf16(bf16: dict) -> str:
    """The bf16 part of the results block of docs/performance.md."""
    if not bf16["rows"]:
        return f"bf16: {bf16['note']}."
    roof = (f" bf16 dense-conv roofline {bf16['roofline_gflops']:.0f} GFLOP/s ({bf16['roofline_layout']})."
            if bf16.get("roofline_gflops") else "")
    lines = [f"bf16 column (autocast; DCNs and loss in float32), {bf16['note']}.{roof}", "",
             "| workload | ours bf16 (s) | ours fp32 (s) | reference (s) | bf16 vs fp32 | bf16 vs reference "
             "| bf16 GFLOP/s | bf16 vs fp32 output |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in bf16["rows"]:
        what = "max abs diff" if r["workload"] != "train" else "loss rel. diff"
        lines.append(f"| {r['label']} | {r['ours_bf16_s']:.3f} | {r['ours_s']:.3f} | {_fmt(r['reference_s'], '.3f')} "
                     f"| {r['vs_fp32']:.2f}x | {_fmt(r['vs_reference'], '.2f')}{'x' if r['vs_reference'] else ''} "
                     f"| {r['ours_bf16_gflops']:.0f} | {r['diff_vs_fp32']:.1e} ({what}) |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------- main
def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict:
    info = {"cpu": cpu_model(), "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(), "device": str(device)}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def machine_line(info: dict) -> str:
    gpu = f", GPU {info['gpu']}" if "gpu" in info else ""
    return (f"{info['cpu']}, {info['cpu_count']} CPUs, torch {info['torch']}, {info['threads']} threads, "
            f"python {info['python']}{gpu}")


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.edvr_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (3 small forwards, 2 of the rest)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per implementation and workload")
    p.add_argument("--only", nargs="+", choices=WORKLOADS, default=list(WORKLOADS), help="workloads to run")
    p.add_argument("--skip-reference", action="store_true", help="time only this project's model")
    p.add_argument("--install-reference", action="store_true",
                   help="install basicsr 1.4.2 into .reference_venv/ first (needs the package index)")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    p.add_argument("--dcn-backend", default="auto", help="DCN backend of our model (auto, fast, torchvision)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--amp", choices=["none", "bf16", "fp16"], default="none",
                   help="autocast for both models (the DCN stays float32); outputs then differ by more than 1e-4")
    p.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                   help="our model's activations in NHWC (auto: per-device default, see edvr_lib.ops.fused)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--no-write", action="store_true", help="do not update docs/performance.{md,json}")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (slow first call)")
    p.add_argument("--bf16", choices=["auto", "on", "off"], default="auto",
                   help="bf16 column (fp32 runs): auto = where bf16 is native (a CPU with AVX512-BF16 / AMX), "
                        "on = also emulated (slow, not representative), off = skip")
    p.add_argument("--memory-worker", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args)))
        return 0
    torch.manual_seed(0)
    device = torch.device(args.device)
    info = machine_info(device)
    load_start = os.getloadavg()
    print(f"EDVR-M speed benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"machine: {machine_line(info)}")
    print(f"device: {device}, amp: {args.amp}, channels_last: {args.channels_last}, compile: {args.compile}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load_start)} (other processes slow every timing)")
    models, note = build_models(args, with_reference=not args.skip_reference)
    from edvr_lib.ops.policy import channels_last_for, dcn_backend_for

    backend = dcn_backend_for(device)
    layout = "NHWC" if channels_last_for(device) else "NCHW"
    print(f"our DCN backend: {backend}, activations: {layout}")
    if note:
        print(f"NOTE: reference skipped: {note}")
    print("roofline:")
    roof, roof_fmt = conv_roofline(device)
    with_bf16, emulated, bf16_note = bf16_plan(args, device)
    roof_bf16 = roof_bf16_fmt = None
    if with_bf16:  # our model once more, a copy (its training steps must not move the fp32 model's weights)
        ours_bf16 = copy.deepcopy(getattr(models["ours"], "_orig_mod", models["ours"]))
        ours_bf16 = torch.compile(ours_bf16) if args.compile else ours_bf16
        roof_bf16, roof_bf16_fmt = conv_roofline(device, bf16=True)

    results = {}
    for wl in args.only:
        reps = args.repeats or ((3 if wl == "fwd64" else 2) if args.quick else (7 if wl == "fwd64" else 5))
        runners = {name: Runner(m, wl, args) for name, m in models.items()}
        if with_bf16:
            runners["ours_bf16"] = Runner(ours_bf16, wl, args, amp="bf16")
        kept = {name: r(keep=True) for name, r in runners.items()}  # warm-up, also the output check
        diff = max_abs_diff(kept["ours"], kept["reference"]) if "reference" in kept else None
        diff_bf16 = bf16_diff(kept["ours_bf16"], kept["ours"]) if "ours_bf16" in kept else None
        del kept
        times, cpu = {name: [] for name in runners}, {name: [] for name in runners}
        for _ in range(reps):
            for name, r in runners.items():  # interleaved
                wall, cpu_s = timed(r)
                times[name].append(wall)
                cpu[name].append(cpu_s)
        results[wl] = {"times": times, "cpu": cpu, "diff": diff, "bf16_diff": diff_bf16}
        med = {k: statistics.median(v) for k, v in times.items()}
        line = f"  {LABELS[wl]}: ours {med['ours']:.3f} s (CPU {statistics.median(cpu['ours']):.2f} s)"
        if "reference" in med:
            line += (f", reference {med['reference']:.3f} s (CPU {statistics.median(cpu['reference']):.2f} s), "
                     f"ratio {ratio_text(med['reference'] / med['ours'], TARGETS[wl])}")
        print(line + f"  ({reps} runs each)", flush=True)
        if with_bf16:
            vs_ref = f", {med['reference'] / med['ours_bf16']:.2f}x the reference" if "reference" in med else ""
            print(f"    ours bf16 {med['ours_bf16']:.3f} s (CPU {statistics.median(cpu['ours_bf16']):.2f} s): "
                  f"{med['ours'] / med['ours_bf16']:.2f}x our fp32{vs_ref}", flush=True)
        del runners

    mem = {}
    if not args.no_memory and device.type in ("cpu", "cuda"):
        for wl in args.only:
            for name in models:
                mem[(name, wl)] = measure_memory(name, wl, args)
    load_end = os.getloadavg()

    rows, ok = [], True
    for wl, r in results.items():
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        gf = workload_gflop(wl)
        ref_t = med.get("reference")
        mem_mb = {name: mem[(name, wl)]["delta_kb"] / 1024 for name in models
                  if "delta_kb" in mem.get((name, wl), {})}
        diff = r["diff"]
        if diff is not None and args.amp == "none":
            ok &= diff < 1e-4
        rows.append({"workload": wl, "label": LABELS[wl], "ours_s": med["ours"], "reference_s": ref_t,
                     "ratio": ref_t / med["ours"] if ref_t else None, "target": TARGETS[wl],
                     "gflop": gf, "ours_gflops": gf / med["ours"], "reference_gflops": gf / ref_t if ref_t else None,
                     "floor_s": gf / roof, "ours_mb": mem_mb.get("ours"), "reference_mb": mem_mb.get("reference"),
                     "max_abs_diff": diff, "times": r["times"], "cpu_times": r["cpu"],
                     "ours_cpu_s": statistics.median(r["cpu"]["ours"]),
                     "reference_cpu_s": statistics.median(r["cpu"]["reference"]) if ref_t else None})
    print()
    print(format_text_table(rows))
    print(f"\nroofline {roof:.1f} GFLOP/s ({roof_fmt}, dense 64->64 3x3 conv); floor = GFLOP / roofline")
    bf16 = {"measured": with_bf16, "emulated": emulated, "note": bf16_note, "roofline_gflops": roof_bf16,
            "roofline_layout": roof_bf16_fmt, "rows": bf16_rows(results, roof_bf16)}
    print(format_bf16_table(bf16))
    print(f"memory: increase of peak {'RSS' if device.type == 'cpu' else 'CUDA allocation'} during one run "
          "(two for train) in a fresh process, MB"
          + ("" if mem else " (skipped)"))
    for key, m in mem.items():
        if "error" in m:
            print(f"  {key}: {m['error']}")
    for row in rows:  # the GPU figures the README asks for
        if row["workload"] == "fwd180x320":
            print(f"720p-output inference: {1 / row['ours_s']:.2f} frames/s (ours)")
        if row["workload"] == "train":
            print(f"training: {1 / row['ours_s']:.3f} iterations/s at batch 4 (ours)")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in load_end)}")
    if "reference" in models:
        print("outputs match (max |diff| < 1e-4): " + ("yes" if ok else "NO"))
    if not (args.quick or args.no_write):  # memory workers returned at the top of main
        record = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": info, "load_start": load_start,
                  "load_end": load_end, "dcn_backend": backend, "activations": layout, "amp": args.amp,
                  "compile": args.compile, "roofline_gflops": roof, "roofline_layout": roof_fmt,
                  "outputs_match": ok if "reference" in models else None, "reference_note": note, "rows": rows,
                  "bf16": bf16}
        write_results(record)
    return 0 if ok else 1


def ratio_text(ratio: float | None, target: float) -> str:
    """``2.11x``; three decimals where two would hide which side of the target it is (3.496 is not 3.50)."""
    if ratio is None:
        return "-"
    two = f"{ratio:.2f}"
    return f"{two}x" if (float(two) >= target) == (ratio >= target) else f"{ratio:.3f}x"


def _fmt(v, spec: str) -> str:
    """``format(v, spec)``, or ``-`` for a missing value (no reference, no memory figure)."""
    return "-" if v is None else format(v, spec)


def format_text_table(rows: list[dict]) -> str:
    lines = [f"{'workload':40s} {'ours s':>8s} {'ref s':>8s} {'ratio':>6s} {'target':>6s} {'ours GF/s':>9s} "
             f"{'ref GF/s':>8s} {'floor s':>7s} {'ours MB':>8s} {'ref MB':>7s} {'max|diff|':>9s}"]
    for r in rows:
        lines.append(f"{r['label']:40s} {r['ours_s']:8.3f} {_fmt(r['reference_s'], '8.3f'):>8s} "
                     f"{ratio_text(r['ratio'], r['target']).rstrip('x'):>6s} "
                     f"{r['target']:6.1f} {r['ours_gflops']:9.1f} {_fmt(r['reference_gflops'], '8.1f'):>8s} "
                     f"{r['floor_s']:7.3f} {_fmt(r['ours_mb'], '8.0f'):>8s} {_fmt(r['reference_mb'], '7.0f'):>7s} "
                     f"{_fmt(r['max_abs_diff'], '9.1e'):>9s}")
    return "\n".join(lines)


def markdown_table(record: dict) -> str:
    """The results block of docs/performance.md."""
    m = record["machine"]
    gpu = f", GPU {m['gpu']}" if "gpu" in m else ""
    lines = [f"Measured {record['date']} on {m['cpu']} ({m['cpu_count']} cores{gpu}), torch {m['torch']}, "
             f"{m['threads']} threads, device `{m['device']}`, amp: {record['amp']}; our DCN backend "
             f"`{record['dcn_backend']}`, activations {record['activations']}. Load average (1/5/15 min) "
             f"{' / '.join(f'{v:.2f}' for v in record['load_start'])} at the start and "
             f"{' / '.join(f'{v:.2f}' for v in record['load_end'])} at the end. Dense-conv roofline "
             f"{record['roofline_gflops']:.0f} GFLOP/s ({record['roofline_layout']}).", "",
             "| workload | ours (s) | reference (s) | speed-up | target | ours GFLOP/s | reference GFLOP/s | floor (s) "
             "| ours peak MB | reference peak MB | max abs diff |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in record["rows"]:
        met = "" if r["ratio"] is None else (" (met)" if r["ratio"] >= r["target"] else " (not met)")
        lines.append(f"| {r['label']} | {r['ours_s']:.3f} | {_fmt(r['reference_s'], '.3f')} "
                     f"| {ratio_text(r['ratio'], r['target'])} "
                     f"| {r['target']:.1f}x{met} | {r['ours_gflops']:.0f} | {_fmt(r['reference_gflops'], '.0f')} "
                     f"| {r['floor_s']:.2f} | {_fmt(r['ours_mb'], '.0f')} | {_fmt(r['reference_mb'], '.0f')} "
                     f"| {_fmt(r['max_abs_diff'], '.1e')} |")
    lines += ["", "Times are medians of interleaved runs; peak MB is the rise of the process's peak RSS during one run "
              "(two for training) in a fresh process. Outputs match the reference (max abs diff < 1e-4): "
              + {True: "yes", False: "NO", None: "not checked"}[record["outputs_match"]] + "."]
    if "bf16" in record:
        lines += ["", markdown_bf16(record["bf16"])]
    return "\n".join(lines)


def write_results(record: dict, docs: Path = DOCS) -> None:
    """``docs/performance.json`` and the marked block of ``docs/performance.md``, both written atomically.

    A missing ``docs`` is created with just the block; one without the markers gets the block appended.
    """
    from edvr_lib.utils import EDVRError
    from edvr_lib.utils.io import atomic_write_text
    from edvr_lib.viz.make_docs import update_readme

    docs.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(docs.with_suffix(".json"), json.dumps(record, indent=1) + "\n")
    block = f"{MARK_BEGIN}\n{markdown_table(record)}\n{MARK_END}"
    if not docs.exists():
        atomic_write_text(docs, f"# Performance\n\n{block}\n")
    else:
        try:  # the same marker-block replacement as `make docs`
            update_readme(docs, block, MARK_BEGIN, MARK_END)
        except EDVRError:  # no markers: append the block
            atomic_write_text(docs, docs.read_text().rstrip("\n") + "\n\n" + block + "\n")
    print(f"wrote {docs} and {docs.with_suffix('.json')}")


if __name__ == "__main__":
    sys.exit(main())
