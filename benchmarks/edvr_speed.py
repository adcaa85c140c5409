"""EDVR-M speed: this project's model against the reference (BasicSR 1.4.2), in one process.

Run from the repository root::

    python -m benchmarks.edvr_speed            # full run (~10 min on 2 CPU cores)
    python -m benchmarks.edvr_speed --quick    # fewer repeats
    make bench

Workloads (fp32 unless ``--amp``): forward at 1x5x3x64x64, forward at 1x5x3x180x320 (REDS-sized), and one
training step at batch 4 (5x3x64x64 LR crops, 256x256 GT, Charbonnier loss, Adam). Both models get the
same seeded weights (non-zero offset layers, so the DCNs really sample off-grid). Runs are interleaved
(ours, reference, ours, ...) after one warm-up each and the *median* is reported, since other processes
on the machine add noise. Then:

* ratio = reference median / our median (> 1: we are faster);
* achieved GFLOP/s = analytic FLOPs (``edvr_lib.utils.flops``; training step counted as 3x the forward)
  / median time, against a dense-convolution roofline measured on the spot (best of a 64->64 3x3
  convolution in NCHW and channels_last); "floor" = FLOPs / roofline;
* peak memory: each (implementation, workload) runs once more in a fresh subprocess, and the increase
  of the process's peak resident set size (``resource.getrusage(...).ru_maxrss``) over its value just
  before the workload is reported (weights, inputs and imports excluded; includes allocator slack);
* output check: max |ours - reference| of the forward outputs and of the first training step's loss and
  gradients (must be < 1e-4).

The reference is imported from ``.reference_venv/site`` (made by ``python -m tools.reference.env``, or
``--install-reference``); when absent it is skipped with a note.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parents[1]
REF_SITE = REPO / ".reference_venv" / "site"
WORKLOADS = ("fwd64", "fwd180x320", "train")
LABELS = {"fwd64": "forward 1x5x3x64x64", "fwd180x320": "forward 1x5x3x180x320",
          "train": "train step b=4 (5x3x64x64 -> 256x256)"}


# ----------------------------------------------------------------------------------------------- models
def reference_edvr_class(install: bool = False):
    """BasicSR 1.4.2's ``EDVR`` class from the throwaway install, or ``(None, why)``."""
    if install:
        sys.path.insert(0, str(REPO))
        from tools.reference.env import ensure_reference

        ensure_reference(quiet=False)
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

    ours = build_edvr("M", dcn_backend=None if args.dcn_backend == "auto" else args.dcn_backend)
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
    for name, m in models.items():
        m.to(dev)
        if args.channels_last and name == "ours":
            m.to(memory_format=torch.channels_last)
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


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """BasicSR's CharbonnierLoss (mean of sqrt(diff^2 + eps)), the loss EDVR trains with."""
    return torch.sqrt((pred - target) ** 2 + eps).mean()


class Runner:
    """Runs one workload on one model (keeps the optimizer of the training step)."""

    def __init__(self, model, workload: str, args):
        self.model, self.workload, self.args = model, workload, args
        self.device = torch.device(args.device)
        self.inputs = make_inputs(workload, self.device)
        self.opt = None
        self.scaler = None
        amp_dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(args.amp)
        self.autocast = (lambda: torch.autocast(self.device.type, dtype=amp_dtype)) if amp_dtype else None
        if workload == "train":
            self.opt = torch.optim.Adam(model.parameters(), lr=4e-4, betas=(0.9, 0.99))
            if args.amp == "fp16":
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
        self.model.train()
        lq, gt = self.inputs
        self.opt.zero_grad(set_to_none=True)
        with self._ctx():
            loss = charbonnier(self.model(lq).float(), gt)
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


def timed(runner: Runner) -> float:
    _sync(runner.device)
    t0 = time.perf_counter()
    runner()
    _sync(runner.device)
    return time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------- metrics
def conv_roofline(device: torch.device, repeats: int = 7) -> tuple[float, str]:
    """Best GFLOP/s of a dense 64->64 3x3 convolution at 1x64x64x64 (NCHW vs channels_last)."""
    x = torch.randn(1, 64, 64, 64, device=device)
    conv = torch.nn.Conv2d(64, 64, 3, 1, 1).to(device)
    gflop = 2 * 64 * 64 * 9 * 64 * 64 / 1e9
    best = (0.0, "")
    for fmt in (torch.contiguous_format, torch.channels_last):
        xf, cf = x.to(memory_format=fmt), conv.to(memory_format=fmt)
        times = []
        with torch.no_grad():
            cf(xf)
            for _ in range(repeats):
                _sync(device)
                t0 = time.perf_counter()
                for _ in range(5):
                    cf(xf)
                _sync(device)
                times.append((time.perf_counter() - t0) / 5)
        rate = gflop / statistics.median(times)
        name = "channels_last" if fmt is torch.channels_last else "NCHW"
        print(f"  dense conv 64->64 3x3 @64x64 {name:13s}: {rate:7.1f} GFLOP/s")
        best = max(best, (rate, name))
    return best


def workload_gflop(workload: str) -> float:
    from edvr_lib.utils.flops import edvr_gflop

    if workload == "fwd64":
        return edvr_gflop(h=64, w=64)
    if workload == "fwd180x320":
        return edvr_gflop(h=180, w=320)
    return 3 * 4 * edvr_gflop(h=64, w=64)  # forward + backward (~2x forward) at batch 4


def max_abs_diff(a, b) -> float:
    if isinstance(a, torch.Tensor):
        return (a.float() - b.float()).abs().max().item()
    loss_a, grads_a = a
    loss_b, grads_b = b
    diffs = [abs(loss_a.item() - loss_b.item())]
    diffs += [(grads_a[k] - grads_b[k]).abs().max().item() for k in grads_a if k in grads_b]
    return max(diffs)


def memory_worker(impl: str, workload: str, args) -> dict:
    """Run in a fresh process: the peak-RSS increase of one run of ``workload`` (kB)."""
    import resource

    models, note = build_models(args, with_reference=impl == "reference")
    if impl not in models:
        return {"error": note}
    runner = Runner(models[impl], workload, args)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    runner()
    if workload == "train":
        runner()  # the second step includes Adam's state
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"before_kb": before, "peak_kb": after, "delta_kb": after - before}


def measure_memory(impl: str, workload: str, args) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.edvr_speed", "--memory-worker", impl, workload,
           "--dcn-backend", args.dcn_backend, "--device", args.device]
    if args.channels_last:
        cmd.append("--channels-last")
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit {res.returncode}"}
    return json.loads(res.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------- main
def machine_line() -> str:
    name = platform.processor() or platform.machine()
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                name = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return (f"{name}, {os.cpu_count()} CPUs, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"python {platform.python_version()}")


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
    p.add_argument("--channels-last", action="store_true", help="our model in channels_last memory format")
    p.add_argument("--compile", action="store_true", help="torch.compile our model (slow first call)")
    p.add_argument("--memory-worker", nargs=2, metavar=("IMPL", "WORKLOAD"), help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args)))
        return 0
    torch.manual_seed(0)
    device = torch.device(args.device)
    print(f"EDVR-M speed benchmark, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"machine: {machine_line()}")
    print(f"device: {device}, amp: {args.amp}, channels_last: {args.channels_last}, compile: {args.compile}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    models, note = build_models(args, with_reference=not args.skip_reference)
    from edvr_lib.ops import resolve_backend

    print(f"our DCN backend: {resolve_backend(None if args.dcn_backend == 'auto' else args.dcn_backend, device)}")
    if note:
        print(f"NOTE: reference skipped: {note}")
    print("roofline:")
    roof, roof_fmt = conv_roofline(device)

    results = {}
    for wl in args.only:
        reps = args.repeats or ((3 if wl == "fwd64" else 2) if args.quick else (7 if wl == "fwd64" else 5))
        runners = {name: Runner(m, wl, args) for name, m in models.items()}
        kept = {name: r(keep=True) for name, r in runners.items()}  # warm-up, also the output check
        diff = max_abs_diff(kept["ours"], kept["reference"]) if "reference" in kept else None
        del kept
        times = {name: [] for name in runners}
        for _ in range(reps):
            for name, r in runners.items():  # interleaved
                times[name].append(timed(r))
        results[wl] = {"times": times, "diff": diff}
        med = {k: statistics.median(v) for k, v in times.items()}
        line = f"  {LABELS[wl]}: ours {med['ours']:.3f} s"
        if "reference" in med:
            line += f", reference {med['reference']:.3f} s, ratio {med['reference'] / med['ours']:.2f}x"
        print(line + f"  ({reps} runs each)", flush=True)
        del runners

    mem = {}
    if not args.no_memory and device.type == "cpu":
        for wl in args.only:
            for name in models:
                mem[(name, wl)] = measure_memory(name, wl, args)

    print()
    print(f"{'workload':40s} {'ours s':>8s} {'ref s':>8s} {'ratio':>6s} {'ours GF/s':>9s} {'ref GF/s':>8s} "
          f"{'floor s':>7s} {'ours MB':>8s} {'ref MB':>7s} {'max|diff|':>9s}")
    ok = True
    for wl, r in results.items():
        med = {k: statistics.median(v) for k, v in r["times"].items()}
        gf = workload_gflop(wl)
        ref_t = med.get("reference")

        def mb(name):
            m = mem.get((name, wl), {})
            return f"{m['delta_kb'] / 1024:.0f}" if "delta_kb" in m else "-"

        diff = r["diff"]
        if diff is not None and args.amp == "none":
            ok &= diff < 1e-4
        print(f"{LABELS[wl]:40s} {med['ours']:8.3f} {ref_t if ref_t else float('nan'):8.3f} "
              f"{(ref_t / med['ours']) if ref_t else float('nan'):6.2f} {gf / med['ours']:9.1f} "
              f"{(gf / ref_t) if ref_t else float('nan'):8.1f} {gf / roof:7.3f} {mb('ours'):>8s} {mb('reference'):>7s} "
              f"{'-' if diff is None else f'{diff:.1e}':>9s}")
    print(f"\nroofline {roof:.1f} GFLOP/s ({roof_fmt}); GFLOP per run: "
          + ", ".join(f"{wl} {workload_gflop(wl):.1f}" for wl in results))
    print("memory: increase of peak RSS during one run (two for train) in a fresh process, MB"
          + ("" if mem else " (skipped)"))
    for key, m in mem.items():
        if "error" in m:
            print(f"  {key}: {m['error']}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    if "reference" in models:
        print("outputs match (max |diff| < 1e-4): " + ("yes" if ok else "NO"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
