"""What bfloat16 costs in quality: fp32 against bf16 autocast, for inference and (optionally) for training.

Run from the repository root::

    python -m benchmarks.bf16_quality                          # inference, every held-out embedded frame
    python -m benchmarks.bf16_quality --frames-per-clip 3      # a subset (emulated bf16 is slow on AVX2 CPUs)
    python -m benchmarks.bf16_quality --train 300              # + the same short training run in fp32 and bf16

(a) Inference: the shipped checkpoint (or ``--weights``) restores the held-out embedded clips (``edvr test
--dataset embedded``'s frames; every frame the centre of its window) once in float32 and once under bf16 autocast
(what ``edvr infer --precision bf16`` runs: the DCNs in float32). Reported: PSNR against the ground truth of each,
their difference (target: within 0.02 dB), and the share of output pixels (uint8, every channel) on which the two
differ by at most one level (target: >= 99.9%).

(b) Training (``--train ITERS``): notebook 04's CPU run (``configs/train_EDVR_tiny_embedded.yml`` with
``notebook_overrides``: embedded clips, validation on the held-out ones) for ITERS iterations from the same seed,
once with ``train.amp`` unset and once with ``train.amp=bf16``; reported: the final validation PSNR of each and
their difference (target: within 0.05 dB). Validation itself runs in float32 in both. ``--smoke`` shrinks the
network (notebook 04's smoke settings) to check the script, not bf16.

Nothing is written unless ``--json FILE`` is given. bf16 on a CPU without native bf16 (AVX2 only) is emulated:
the numbers are those of native bf16 (the same roundings), only slower.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"infer_psnr_db": 0.02, "infer_within_one_level": 0.999, "train_val_psnr_db": 0.05}


def pick_frames(dataset, per_clip: int) -> list[int]:
    """Item indices of ``dataset``: ``per_clip`` evenly spaced frames of every clip (0: all frames)."""
    by_clip: dict[str, list[int]] = {}
    for k, (clip, _) in enumerate(dataset.index):
        by_clip.setdefault(clip.name, []).append(k)
    picked = []
    for items in by_clip.values():
        if per_clip <= 0 or per_clip >= len(items):
            picked += items
        else:
            picked += [items[round(j)] for j in np.linspace(0, len(items) - 1, per_clip)]
    return picked


def inference_quality(weights: str | None = None, per_clip: int = 0, clips: list[str] | None = None,
                      log=print) -> dict:
    """fp32 against bf16 inference on the held-out embedded clips (module docstring, (a)).

    Returns:
        ``{'frames', 'psnr_fp32', 'psnr_bf16', 'psnr_diff_db', 'within_one_level', 'max_level_diff',
        'seconds_fp32', 'seconds_bf16', 'per_clip': {clip: {...}}}``; PSNRs are means over the frames (dB).
    """
    from edvr_lib.evaluate import build_dataset
    from edvr_lib.inference import autocast, padded_runner
    from edvr_lib.metrics import calculate_psnr, tensor2img
    from edvr_lib.models import load_model

    model = load_model(weights).eval()
    dataset = build_dataset("embedded", clips=clips)
    run = padded_runner(model)
    rows, seconds = [], {"fp32": 0.0, "bf16": 0.0}
    within = total = 0
    worst = 0
    items = pick_frames(dataset, per_clip)
    with torch.inference_mode():
        for n, k in enumerate(items, 1):
            item = dataset[k]
            x, gt = item["lq"].unsqueeze(0), tensor2img(item["gt"])
            sr = {}
            for precision in ("fp32", "bf16"):
                t0 = time.perf_counter()
                with autocast("cpu", precision, log=log if n == 1 else None):  # the emulation line once
                    sr[precision] = tensor2img(run(x)[0].float())
                seconds[precision] += time.perf_counter() - t0
            diff = np.abs(sr["fp32"].astype(np.int16) - sr["bf16"].astype(np.int16))
            within, total, worst = within + int((diff <= 1).sum()), total + diff.size, max(worst, int(diff.max()))
            rows.append({"clip": item["clip"], "frame": int(item["frame_idx"]),
                         "psnr_fp32": calculate_psnr(sr["fp32"], gt, 0), "psnr_bf16": calculate_psnr(sr["bf16"], gt, 0),
                         "within_one_level": float((diff <= 1).mean())})
            log(f"  {item['clip']} frame {int(item['frame_idx']):3d}: PSNR fp32 {rows[-1]['psnr_fp32']:.3f} dB, "
                f"bf16 {rows[-1]['psnr_bf16']:.3f} dB, within one level {100 * rows[-1]['within_one_level']:.3f}%")
    per_clip = {}
    for r in rows:
        per_clip.setdefault(r["clip"], []).append(r)
    mean = lambda rs, key: float(np.mean([r[key] for r in rs]))  # noqa: E731
    return {"frames": len(rows), "psnr_fp32": mean(rows, "psnr_fp32"), "psnr_bf16": mean(rows, "psnr_bf16"),
            "psnr_diff_db": mean(rows, "psnr_bf16") - mean(rows, "psnr_fp32"), "within_one_level": within / total,
            "max_level_diff": worst, "seconds_fp32": seconds["fp32"], "seconds_bf16": seconds["bf16"],
            "per_clip": {c: {"frames": len(rs), "psnr_fp32": mean(rs, "psnr_fp32"), "psnr_bf16": mean(rs, "psnr_bf16"),
                             "within_one_level": mean(rs, "within_one_level")} for c, rs in per_clip.items()},
            "rows": rows}


def training_quality(iters: int, smoke: bool = False, seed: int = 10, out: Path | None = None, log=print) -> dict:
    """The same short training run in fp32 and bf16 (module docstring, (b)).

    Returns:
        ``{'iters', 'fp32': {'val_psnr', 'final_loss', 'seconds'}, 'bf16': {...}, 'val_psnr_diff_db'}``.
    """
    from edvr_lib.data import embedded_paths
    from edvr_lib.train import train
    from edvr_lib.train.options import load_options
    from edvr_lib.tutorial.training_demo import notebook_overrides

    config = REPO / "configs" / "train_EDVR_tiny_embedded.yml"
    base = notebook_overrides(config, embedded_paths(), iters, val_freq=iters, smoke=smoke) + [f"manual_seed={seed}"]
    out = Path(out or tempfile.mkdtemp(prefix="bf16_quality_"))
    result = {"iters": iters, "smoke": smoke, "seed": seed}
    for precision in ("fp32", "bf16"):
        opt = load_options(config, base + [f"train.amp={'~' if precision == 'fp32' else 'bf16'}"])[0]
        log(f"training {iters} iterations in {precision} into {out / precision}")
        summary = train(opt, out / precision, device="cpu", log=log)
        last = summary["losses"][max(summary["losses"])]
        result[precision] = {"val_psnr": summary["val"]["val_psnr"], "final_loss": last, "seconds": summary["seconds"]}
    result["val_psnr_diff_db"] = result["bf16"]["val_psnr"] - result["fp32"]["val_psnr"]
    return result


def verdict(value: float, target: float, at_least: bool = False) -> str:
    ok = value >= target if at_least else abs(value) <= target
    return f"{'met' if ok else 'NOT met'} (target {'>=' if at_least else 'within +-'} {target:g})"


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.bf16_quality", description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", help="checkpoint (default: the shipped checkpoints/edvr_tiny_embedded.pth)")
    p.add_argument("--frames-per-clip", type=int, default=0,
                   help="evenly spaced frames per held-out clip (default 0: every frame)")
    p.add_argument("--clips", nargs="+", help="held-out clips to use (default: all)")
    p.add_argument("--train", type=int, default=0, metavar="ITERS",
                   help="also train ITERS iterations in fp32 and in bf16 and compare validation PSNR")
    p.add_argument("--smoke", action="store_true", help="with --train: notebook 04's smoke network (a script check)")
    p.add_argument("--seed", type=int, default=10, help="with --train: manual_seed of both runs")
    p.add_argument("--train-output", type=Path, help="with --train: run folders (default: a temporary folder)")
    p.add_argument("--no-infer", action="store_true", help="skip the inference comparison")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    p.add_argument("--json", type=Path, help="write the results there")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from edvr_lib.ops.policy import cpu_bf16_support

    if args.threads:
        torch.set_num_threads(args.threads)
    native, detail = cpu_bf16_support()
    print(f"bf16 quality, {time.strftime('%Y-%m-%d %H:%M')}, torch {torch.__version__}, {torch.get_num_threads()} "
          f"threads; CPU: {detail}")
    record = {"date": time.strftime("%Y-%m-%d %H:%M"), "native_bf16": native, "cpu_bf16": detail,
              "threads": torch.get_num_threads(), "torch": torch.__version__, "argv": sys.argv[1:]}
    if not args.no_infer:
        inf = inference_quality(args.weights, args.frames_per_clip, args.clips)
        record["inference"] = inf
        print(f"inference, {inf['frames']} frames: PSNR fp32 {inf['psnr_fp32']:.4f} dB, "
              f"bf16 {inf['psnr_bf16']:.4f} dB, "
              f"difference {inf['psnr_diff_db']:+.4f} dB: {verdict(inf['psnr_diff_db'], TARGETS['infer_psnr_db'])}")
        print(f"  pixels within one uint8 level: {100 * inf['within_one_level']:.4f}%: "
              f"{verdict(inf['within_one_level'], TARGETS['infer_within_one_level'], at_least=True)}; "
              f"largest difference {inf['max_level_diff']} levels")
        print(f"  time: fp32 {inf['seconds_fp32']:.1f} s, bf16 {inf['seconds_bf16']:.1f} s"
              + ("" if native else " (bf16 emulated: not a speed figure)"))
    if args.train:
        tr = training_quality(args.train, args.smoke, args.seed, args.train_output)
        record["training"] = tr
        print(f"training {tr['iters']} iterations{' (smoke network)' if tr['smoke'] else ''}: val PSNR fp32 "
              f"{tr['fp32']['val_psnr']:.4f} dB, bf16 {tr['bf16']['val_psnr']:.4f} dB, difference "
              f"{tr['val_psnr_diff_db']:+.4f} dB: {verdict(tr['val_psnr_diff_db'], TARGETS['train_val_psnr_db'])}")
    if args.json:
        from edvr_lib.utils.io import atomic_write_text

        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
