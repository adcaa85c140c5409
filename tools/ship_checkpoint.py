"""Make the shipped checkpoint from a finished `edvr train` run, measure it, and write its model card.

    python -m tools.ship_checkpoint --run experiments/EDVR_shipped_embedded

1. Takes the run's final weights (``models/net_g_latest.pth``, ``params`` by default: the run ends at the bottom of a
   cosine cycle, and an EMA with decay 0.999 still holds ``0.999**iters`` of the random initialisation after a short
   run; ``--param-key params_ema`` takes the EMA), stores them in float16 with the run's options as ``checkpoints/edvr_aligning_embedded.pth`` (``edvr infer``, ``edvr docs`` and notebooks 03 / 05 use
   it by default), and copies the run's ``options.yml`` and ``train_log.jsonl`` next to it.
2. Evaluates, on the held-out embedded test clips (never seen in training; RGB, crop border 0, every frame a
   centre, as REDS4 is reported): bicubic, the shipped file as users load it, and the same model fed its centre
   frame five times (what alignment and fusion add).
3. With ``--gates``, measures every acceptance figure of an aligning checkpoint on held-out material
   (:mod:`edvr_lib.tutorial.checkpoint_report`) for the shipped file and for ``--compare`` (an earlier checkpoint).
4. Writes the model card (``--card``, default ``checkpoints/README.md``) from those measurements.
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from benchmarks.edvr_speed import cpu_model
from edvr_lib.ablations import CentreFrameOnly
from edvr_lib.evaluate import build_dataset, evaluate
from edvr_lib.models import DEFAULT_CHECKPOINT, bicubic_model, load_pretrained, save_pretrained
from edvr_lib.train.options import Options, load_options
from edvr_lib.utils import REPO_ROOT, atomic_write_text


def _training_summary(log_path: Path, print_freq: int) -> dict:
    entries = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train_s = sum(print_freq / e["it_per_s"] for e in entries if e.get("it_per_s"))
    vals = [e for e in entries if "val_psnr" in e]
    return {"iterations": entries[-1]["iter"], "train_seconds": train_s, "val": vals,
            "final_loss": entries[-1]["loss"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a finished edvr train run folder")
    parser.add_argument("--output", type=Path, default=DEFAULT_CHECKPOINT, help="the shipped .pth")
    parser.add_argument("--param-key", default="params", choices=["params", "params_ema"],
                        help="which weights of the run to ship (default: params, see the module docstring)")
    parser.add_argument("--curve-every", type=int, default=400,
                        help="also evaluate the raw weights of every saved checkpoint at a multiple of this iteration "
                             "(the logged validation is the EMA's); 0: skip")
    parser.add_argument("--wall-minutes", type=float, default=None,
                        help="wall-clock time of the run as observed (pauses excluded), for the card")
    parser.add_argument("--config", default="configs/train_EDVR_shipped_embedded.yml",
                        help="the committed config the run used (named in the card)")
    parser.add_argument("--card", type=Path, default=None, help="the model card (default: checkpoints/README.md)")
    parser.add_argument("--gates", action="store_true", help="measure the aligning checkpoint's acceptance figures")
    parser.add_argument("--compare", type=Path, default=None, help="with --gates: an earlier checkpoint to measure "
                        "beside the shipped one")
    parser.add_argument("--stages", default="", help="a sentence for the card on how the run's starting weights "
                        "were made (multi-stage recipes)")
    args = parser.parse_args(argv)
    run, dest = args.run, args.output
    opt, _ = load_options(run / "options.yml")  # the resolved options the run saved
    model = load_pretrained(run / "models" / "net_g_latest.pth", param_key=args.param_key)
    save_pretrained(model, dest, ema=args.param_key == "params_ema", dtype=torch.float16, options=opt.to_dict())
    for name in ("options.yml", "train_log.jsonl"):
        shutil.copyfile(run / name, dest.parent / f"{dest.stem}.{name}")
    shipped = load_pretrained(dest)  # what users get

    dataset = build_dataset("embedded")
    results = {"Bicubic (MATLAB)": evaluate(bicubic_model(), dataset),
               "EDVR, centre frame x5 (no neighbours)": evaluate(CentreFrameOnly(shipped), dataset),
               "EDVR (shipped)": evaluate(shipped, dataset)}
    train = _training_summary(dest.parent / f"{dest.stem}.train_log.jsonl", opt.logger.print_freq)
    # the weights' own iteration (a run stopped between two log lines saves a checkpoint the log does not name)
    saved = {int(f.stem.split("_")[-1]): f for f in (run / "models").glob("net_g_[0-9]*.pth")}
    train["iterations"] = max(saved)
    train["curve"] = raw_weights_curve(saved, dataset, args.curve_every, train["val"])
    atomic_write_text(dest.parent / f"{dest.stem}.val_curve.json", json.dumps(train["curve"], indent=1) + "\n")
    gates = None
    if args.gates:
        from edvr_lib.tutorial.checkpoint_report import checkpoint_report

        held = dict(zip(("bicubic", "centre_x5", "model"), results.values()))  # evaluated above
        gates = {"shipped": checkpoint_report(shipped, held=held)}
        if args.compare:
            gates[str(args.compare)] = checkpoint_report(load_pretrained(args.compare))
        atomic_write_text(dest.parent / f"{dest.stem}.gates.json", json.dumps(gates, indent=1) + "\n")
    card = model_card(dest, shipped, opt, results, train, args.wall_minutes, args.param_key, args.config,
                      gates, args.stages)
    atomic_write_text(args.card or dest.parent / "README.md", card)
    print(card)
    return 0


def raw_weights_curve(saved: dict, dataset, every: int, logged: list[dict]) -> list[dict]:
    """PSNR of the raw weights (``params``) of the checkpoints saved at multiples of ``every``, beside the logged
    validation of the EMA weights at the same iterations (``None`` where none was logged)."""
    ema = {v["iter"]: v["val_psnr"] for v in logged}
    bicubic = logged[-1]["bicubic_psnr"] if logged else None
    curve = []
    for it in sorted(k for k in saved if every and k % every == 0):
        res = evaluate(load_pretrained(saved[it], param_key="params"), dataset)
        curve.append({"iter": it, "params_psnr": res["overall"]["psnr"], "params_ssim": res["overall"]["ssim"],
                      "ema_psnr": ema.get(it), "bicubic_psnr": bicubic})
        print(f"iteration {it}: raw weights {curve[-1]['params_psnr']:.2f} dB")
    return curve


def _data_row(ds) -> str:
    if ds.type == "MotionWindowDataset":
        return (f"the embedded TRAINING clips only ({ds.meta_info_file}): windows of their frames rendered under "
                f"random known motion (0-{ds.max_shift:g} LR px per frame, {ds.affine_prob:.0%} with rotation/zoom, "
                f"{ds.static_prob:.0%} static, {ds.occlusion_prob:.0%} with an occluding patch), "
                f"{ds.bbb_mix:.0%} real Big Buck Bunny windows (frame spacings {ds.interval_list}), one "
                f"neighbour spoilt in {ds.spoil_prob:.0%}; GT {ds.gt_size} px, batch {ds.batch_size_per_gpu}")
    return (f"the embedded TRAINING clips only ({ds.meta_info_file}): Big Buck Bunny shots and scikit-image photos "
            f"moved with known motion; GT {ds.gt_size} px crops, batch {ds.batch_size_per_gpu}, flips and rotations, "
            f"frame spacings {ds.interval_list}")


def _gates_section(gates: dict | None, stem: str) -> str:
    if not gates:
        return ""
    from edvr_lib.tutorial.checkpoint_report import gate_rows

    names = list(gates)
    rows = {name: {r["figure"]: r for r in gate_rows(rep)} for name, rep in gates.items()}
    first = gate_rows(gates[names[0]])
    head = "| figure | target | " + " | ".join(f"`{Path(n).name}`" if n != "shipped" else "this checkpoint"
                                              for n in names) + " |"
    lines = [head, "|---|---|" + "---:|" * len(names)]
    for r in first:
        cells = []
        for n in names:
            x = rows[n][r["figure"]]
            cells.append("-" if x["value"] is None else f"{x['value']:.3f} {'pass' if x['passed'] else 'miss'}")
        lines.append(f"| {r['what']} | {r['target']} | " + " | ".join(cells) + " |")
    lm = gates[names[0]]["large_motion"]
    return f"""
## What it has learned (held-out material only; `edvr_lib.tutorial.checkpoint_report`)

{chr(10).join(lines)}

The large-motion set: {lm['windows']} windows of {lm['gt_size']} GT px rendered as the training windows are
(1-4 LR px per frame, 30% with rotation/zoom) from held-out sources only (frame 0 of each held-out clip and a
scikit-image photo no clip uses). "PCD motion off" samples every frame with the centre frame's offsets. The attention
figure: the mean temporal attention of frame 0 of each large-motion window, clean minus with heavy noise (std 0.5).
Learned motion is the L1 pyramid DCN's offsets (mask-weighted mean over groups and taps, minus the centre frame's
self-alignment). All figures: `{stem}.gates.json`.
"""


def _limits(gates: dict | None, iterations: int) -> str:
    rep = (gates or {}).get("shipped")
    if rep is None or rep["epe_ratio"] is None or rep["epe_ratio"] > 0.9:
        return f"""Trained for {iterations:,} iterations on six short clips, it has seen little of the world: cartoon shots and photos under
synthetic motion. It has learned to super-resolve each frame far better than it has learned to align: its
neighbouring frames add only the gap between the last two rows of the table above (nothing on the Big Buck Bunny
clip), and its offsets, minus the centre frame's own, carry a small fraction of the true motion (notebook 05's
ablations and explorer show both). Alignment is the slow part of EDVR to learn; the official models train 600k
iterations."""
    return f"""Trained on six short clips (cartoon shots and photos under synthetic motion), it has seen little of the world. Its
offsets now follow the motion (learned-motion error {rep['epe_ratio']:.2f}x that of "no motion" on the held-out
synthetic clips), which the alignment pre-stage and the offset-fidelity term taught it; the table above says which
of the acceptance targets it meets and which it misses. The alignment is not yet used: the true window beats the centre
frame fed five times by only {rep['window_over_centre_db']:+.2f} dB on the held-out clips and
{rep['large_window_over_centre_db']:+.2f} dB on the large-motion set, so fusion and reconstruction have learned little
from the aligned neighbours so far. Alignment is the slow part of EDVR to learn; the official models train 600k
iterations."""


def model_card(dest: Path, model, opt: Options, results: dict, train: dict, wall_minutes: float | None,
               param_key: str, config: str = "configs/train_EDVR_shipped_embedded.yml", gates: dict | None = None,
               stages: str = "") -> str:
    cfg = model.config
    n_params = sum(p.numel() for p in model.parameters())
    bic = results["Bicubic (MATLAB)"]["overall"]
    rel = dest.relative_to(REPO_ROOT) if dest.is_relative_to(REPO_ROOT) else dest
    rows = []
    for label, res in results.items():
        o = res["overall"]
        rows.append(f"| {label} | {o['psnr']:.2f} | {o['ssim']:.4f} | {o['psnr'] - bic['psnr']:+.2f} |")
    clips = list(results["EDVR (shipped)"]["per_clip"])
    clip_rows = [f"| {c} | " + " | ".join(f"{results[k]['per_clip'][c]['psnr']:.2f}" for k in results) + " |"
                 for c in clips]
    val_rows = [f"| {v['iter']} | {v['val_psnr']:.2f} | {v['bicubic_psnr']:.2f} | {v['val_psnr'] - v['bicubic_psnr']:+.2f} |"
                for v in train["val"]]
    curve_rows = [f"| {c['iter']} | {c['params_psnr']:.2f} | {c['params_psnr'] - c['bicubic_psnr']:+.2f} | "
                  + (f"{c['ema_psnr']:.2f} |" if c["ema_psnr"] is not None else "- |") for c in train["curve"]]
    ds, tr = opt.datasets.train, opt.train
    offset = tr.offset_opt
    extras = (f"; offset fidelity (Chan et al. 2021) weight {offset.loss_weight:g}, threshold {offset.threshold:g} px"
              if offset else "")
    init = opt.path.pretrain_network_g
    start = f"; started from `{Path(init).name}`" if init else "; from scratch"
    wall = f"{wall_minutes:.0f} min wall clock as observed; " if wall_minutes else ""
    decay = opt.train.ema_decay
    ema_note = (f"; not the EMA (decay {decay:g}: after {train['iterations']} iterations it still holds "
                f"{decay ** train['iterations']:.0%} of the {'starting weights' if init else 'random initialisation'})"
                if param_key == "params" and decay else "")
    return f"""# Model card: `{rel}`

<!-- generated by `python -m tools.ship_checkpoint --run RUN`; do not edit by hand -->

A small EDVR (PCD alignment + TSA fusion, {cfg.num_frame} frames, x4) trained by this project with `edvr train`
from the committed config `{config}` (copied here as
`{dest.stem}.options.yml`, with the run's log `{dest.stem}.train_log.jsonl`).{(" " + stages) if stages else ""} It exists so that the tutorial's
learned pictures (offsets, masks, attention) and the README results are real on a laptop CPU. It is **not** a
substitute for the official REDS-trained EDVR-M / EDVR-L weights (see the README, *The official weights*).

| | |
|---|---|
| architecture | EDVR, num_feat {cfg.num_feat}, deformable_groups {cfg.deformable_groups}, {cfg.num_extract_block} extraction / {cfg.num_reconstruct_block} reconstruction blocks, TSA {cfg.with_tsa}; {n_params:,} parameters |
| file | {dest.stat().st_size / 1e6:.1f} MB: the run's final `{param_key}` stored in float16 (loaded into float32 by `load_pretrained`){ema_note} |
| data | {_data_row(ds)} |
| recipe | BasicSR's EDVR recipe (Adam {tr.optim_g.lr:g}, betas {tr.optim_g.betas}, Charbonnier sum, cosine restarts {tr.scheduler.periods}, EMA {tr.ema_decay}){extras} for {train['iterations']} iterations{start} |
| compute | {wall}{train['train_seconds'] / 60:.0f} min of training iterations by the log's it/s; {cpu_model()}, 2 cores, shared with other work during the run; torch {torch.__version__} |

## Held-out results (embedded test clips, never trained on; x4, RGB, crop border 0, every frame a centre)

| method | PSNR (dB) | SSIM | vs bicubic |
|---|---:|---:|---:|
{chr(10).join(rows)}

Per clip (PSNR, dB):

| clip | {' | '.join(results)} |
|---|{'---:|' * len(results)}
{chr(10).join(clip_rows)}

"Centre frame x5" is the same network given only the frame it restores: the gap to the shipped row is what PCD
alignment and TSA fusion take from the neighbouring frames.

## Validation during training (the run's EMA weights, as BasicSR validates; the same clips)

| iteration | EDVR PSNR (dB) | bicubic | gain |
|---:|---:|---:|---:|
{chr(10).join(val_rows)}

The EMA (decay {decay:g}) averages over about {1 / (1 - decay) if decay < 1 else float('inf'):.0f} iterations and starts from {"the loaded weights" if init else "the random initialisation"},
so in a run of {train['iterations']} iterations it lags the raw weights. The raw weights of the saved
checkpoints, measured afterwards on the same clips (`{dest.stem}.val_curve.json`):

| iteration | raw weights PSNR (dB) | vs bicubic | EMA (logged) |
|---:|---:|---:|---:|
{chr(10).join(curve_rows)}
{_gates_section(gates, dest.stem)}
## Limits

{_limits(gates, train['iterations'])} Expect a smaller gain on real camera footage, and far less than the official models (EDVR-M: 30.53 dB on
REDS4 as published in BasicSR's Model Zoo; bicubic: 26.14 dB in the BasicVSR paper's comparison table). Bicubic here is the MATLAB-exact kernel
that made the LR frames.
"""


if __name__ == "__main__":
    raise SystemExit(main())
