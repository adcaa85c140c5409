"""Figures of a training run (notebook 04): loss, validation PSNR, DCN offsets, learning-rate schedules.

A run is read from its ``train_log.jsonl`` (one JSON object per logged iteration, written by ``edvr train``);
schedules are computed from options with the trainer's timing. Every figure has a title, axis labels and units::

    from edvr_lib.viz import training_figures as tf
    log = tf.read_train_log("outputs/notebooks/04_run")
    tf.loss_figure(log, pixels=tf.pixels_in_loss(opt)); tf.val_psnr_figure(log)
    tf.lr_schedule_figure({"EDVR-M recipe": opt_m, "this run": opt})
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.data_figures import finish, pyplot

__all__ = ["read_train_log", "pixels_in_loss", "lr_schedule", "loss_figure", "val_psnr_figure", "offsets_figure",
           "lr_schedule_figure"]

LOSS_UNIT = "pixel values in [0, 1]"


# ----------------------------------------------------------------------------------------------- reading
def read_train_log(path: str | os.PathLike) -> list[dict]:
    """The entries of a run's ``train_log.jsonl``, in file order (iterations ascending).

    Args:
        path: the run folder or the ``train_log.jsonl`` file itself.

    Raises:
        EDVRError: no log there, or a line that is not JSON (names the line).
    """
    path = Path(path) / "train_log.jsonl" if Path(path).is_dir() else Path(path)
    if not path.is_file():
        raise EDVRError(f"no training log at {path}. Fix: pass a run folder written by `edvr train` / "
                        "edvr_lib.train.train (it holds train_log.jsonl once the first iteration is logged).")
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            if line.strip():
                entries.append(json.loads(line))
        except json.JSONDecodeError:
            raise EDVRError(f"{path} line {number} is not JSON: {line[:80]!r}. Fix: remove that line (edited by "
                            "hand, or cut short by a kill; a resume drops it).") from None
    return entries


def _entries_with(log, key: str, missing: str) -> tuple[list[dict], list[int]]:
    """The entries of ``log`` (entries, or a run folder / log file) that have ``key``, and their iterations."""
    entries = read_train_log(log) if isinstance(log, (str, os.PathLike)) else list(log)
    entries = [e for e in entries if e.get(key) is not None]
    if not entries:
        raise EDVRError(f"the training log has no {missing}")
    return entries, [e["iter"] for e in entries]


def pixels_in_loss(opt) -> int:
    """How many values the summed Charbonnier adds up per iteration and process: ``B * C * H * W`` of the GT patch.

    With ``pixel_opt.reduction: sum`` (the EDVR recipe) the logged loss is this many times the per-pixel loss
    (786,432 per GPU for the REDS recipe: losses of 1e4 to 1e7 are normal); with ``reduction: mean`` it is 1.
    """
    if opt.train.pixel_opt.reduction != "sum":
        return 1
    d = opt.datasets.train
    return d.batch_size_per_gpu * opt.network_g.num_out_ch * d.gt_size ** 2


# ----------------------------------------------------------------------------------------------- schedules
def lr_schedule(opt, iterations: Sequence[int] | None = None, points: int = 4000) -> tuple[np.ndarray, np.ndarray]:
    """The learning rate every iteration trains with, as the trainer applies the options' scheduler.

    Iteration ``k`` uses scheduler epoch ``k - 1``, below ``train.warmup_iter`` the linear warm-up (as the trainer
    and BasicSR); the first parameter group's rate.

    Args:
        opt: resolved options (:func:`edvr_lib.train.options.load_options`).
        iterations: 1-based iterations; ``None``: about ``points`` spread over ``1 .. total_iter``, plus the two
            after every cosine restart (sharp jumps).
        points: how many iterations to sample when ``iterations`` is None.

    Returns:
        ``(iterations, lrs)``: int64 and float64 arrays of the same length.
    """
    import torch

    from edvr_lib.train.schedulers import CosineAnnealingRestartLR, build_scheduler

    tr = opt.train
    total, base_lr, warmup, sched_opt = tr.total_iter, tr.optim_g.lr, tr.warmup_iter, tr.scheduler.to_dict()
    if iterations is None:
        its = set(np.linspace(1, total, min(points, total)).round().astype(int).tolist())
        if sched_opt["type"] == "CosineAnnealingRestartLR":
            for end in np.cumsum(sched_opt["periods"]):
                its |= {int(end) + 1, int(end) + 2}
        iterations = sorted(i for i in its if 1 <= i <= total)
    iterations = np.asarray(iterations, dtype=np.int64)
    if iterations.size and iterations.min() < 1:
        raise EDVRError(f"iterations start at 1, got {int(iterations.min())}")
    optimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=base_lr)
    scheduler = build_scheduler(optimizer, sched_opt, total)
    if isinstance(scheduler, CosineAnnealingRestartLR):  # closed form: any iteration directly
        lrs = np.array([scheduler.lr_at(int(k) - 1, base_lr) for k in iterations], dtype=np.float64)
    else:  # recursive (MultiStepRestartLR): step through, as the trainer does
        wanted, lrs, last = {int(k) for k in iterations}, {}, int(iterations.max(initial=0))
        for k in range(1, last + 1):
            if k > 1:
                scheduler.step()
            if k in wanted:
                lrs[k] = optimizer.param_groups[0]["lr"]
        lrs = np.array([lrs[int(k)] for k in iterations], dtype=np.float64)
    if warmup > 0:
        warm = iterations < warmup
        lrs[warm] = base_lr / warmup * iterations[warm]
    return iterations, lrs


# ----------------------------------------------------------------------------------------------- figures
def _iteration_axis(ax) -> None:
    """Whole iterations on the x axis (no 2.5 for a 4-iteration run), and a light grid."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)


def _rollbacks(entries: list[dict]) -> list[int]:
    """Iterations from which the logged ``lr_scale`` is lower than before (the divergence guard's rollbacks)."""
    out, scale = [], 1.0
    for e in (e for e in entries if e.get("lr_scale") is not None):
        if e["lr_scale"] < scale:
            out.append(e["iter"])
        scale = e["lr_scale"]
    return out


def loss_figure(log, pixels: int | None = None, title: str = "Training loss (Charbonnier)"):
    """The logged training loss against iteration (log scale), and per pixel when ``pixels`` is given.

    From 10 entries on, a moving average over about an eighth of them shows the trend of the noisy batch losses.

    Args:
        log: entries of :func:`read_train_log`, or a run folder / log file.
        pixels: values the loss sums per iteration (:func:`pixels_in_loss`): a right panel with the loss divided
            by it, comparable across batch and crop sizes.
        title: figure title.
    """
    entries, its = _entries_with(log, "loss", "loss entries. Fix: train at least logger.print_freq iterations.")
    plt, rollbacks = pyplot(), _rollbacks(entries)
    loss = np.array([e["loss"] for e in entries], dtype=np.float64)
    panels = [("summed over the batch" if pixels and pixels > 1 else "as logged", loss,
               f"loss ({'sum over B·C·H·W' if pixels and pixels > 1 else 'logged'}; {LOSS_UNIT})")]
    if pixels:
        panels.append((f"per pixel (÷ {pixels:,})", loss / pixels, f"loss per pixel value ({LOSS_UNIT})"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 3.6), squeeze=False)
    window = max(2, len(its) // 8)
    for ax, (name, values, ylabel) in zip(axes[0], panels):
        ax.plot(its, values, "-", lw=1, alpha=0.6 if len(its) >= 10 else 1, marker="o" if len(its) < 40 else None,
                ms=3, label="one batch per log entry")
        if len(its) >= 10:
            trend = np.convolve(values, np.ones(window) / window, mode="valid")
            ax.plot(its[window - 1:], trend, "-", lw=2.2, color="tab:orange",
                    label=f"moving average of {window} entries")
            ax.legend(fontsize=8, loc="upper right")
        ax.set(title=f"Loss {name}", xlabel="iteration", ylabel=ylabel)
        if np.all(values[np.isfinite(values)] > 0):
            ax.set_yscale("log")
        for k in rollbacks:
            ax.axvline(k, color="tab:red", ls=":", lw=1)
        _iteration_axis(ax)
    if rollbacks:
        axes[0][0].plot([], [], color="tab:red", ls=":", label="guard rollback (lr lowered)")
        axes[0][0].legend(fontsize=8, loc="upper right")
    return finish(fig, title)


def val_psnr_figure(log, title: str = "Validation PSNR against bicubic", raw_curve: Sequence[dict] | None = None):
    """Validation PSNR (of the EMA weights when the run has EMA) against iteration, with the bicubic baseline.

    Args:
        log: entries of :func:`read_train_log`, or a run folder / log file.
        title: figure title.
        raw_curve: optionally, the raw weights' PSNR of saved checkpoints, ``[{"iter": k, "params_psnr": dB}, ...]``
            (``checkpoints/edvr_aligning_embedded.val_curve.json``), drawn as a second line.
    """
    entries, its = _entries_with(log, "val_psnr", "validation entries (val_psnr). Fix: train with datasets.val and "
                                 "val.val_freq <= train.total_iter (the trainer also validates at the last iteration).")
    plt = pyplot()
    psnr = [e["val_psnr"] for e in entries]
    bicubic = entries[-1].get("bicubic_psnr")
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot(its, psnr, "-o", ms=4, label="EDVR (validation)")
    if raw_curve:
        raw_its, raw_psnr = [c["iter"] for c in raw_curve], [c["params_psnr"] for c in raw_curve]
        ax.plot(raw_its, raw_psnr, "-s", ms=4, label="EDVR raw weights (saved checkpoints)")
        if raw_its[-1] >= its[-1]:  # the gain annotated is the latest point's
            its, psnr = raw_its, raw_psnr
    if bicubic is not None:
        ax.axhline(bicubic, color="tab:gray", ls="--", label=f"bicubic {bicubic:.2f} dB")
        ax.annotate(f"{psnr[-1] - bicubic:+.2f} dB vs bicubic", (its[-1], psnr[-1]), textcoords="offset points",
                    xytext=(-8, -14), ha="right", fontsize=9)
        ax.margins(y=0.12)
    ax.set(title=title, xlabel="iteration", ylabel="PSNR (dB, RGB, crop border 0)")
    _iteration_axis(ax)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def offsets_figure(log, limit: float | None = None, title: str = "DCN offsets during training"):
    """Mean |offset| of the DCN packs against iteration: the mean over packs and the largest pack's.

    Offsets are in pixels of each pack's feature map (L1 = LR size). ``limit``: the guard's
    ``train.guard.offset_limit``, drawn as a line on a symmetric-log axis (linear below 0.01 px).
    """
    entries, its = _entries_with(log, "offset_max", "offset statistics. Fix: train at least logger.print_freq "
                                 "iterations of an EDVR (its DCN packs are monitored at every log step).")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    marker = "o" if len(its) < 40 else None
    ax.plot(its, [e["offset_mean"] for e in entries], "-", marker=marker, ms=3, label="mean over DCN packs")
    ax.plot(its, [e["offset_max"] for e in entries], "-", marker=marker, ms=3, label="largest pack")
    if limit is not None:
        ax.axhline(limit, color="tab:red", ls="--", label=f"guard offset_limit {limit:g} px")
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_ylim(bottom=0)
    ax.set(title=title, xlabel="iteration", ylabel="mean |offset| (feature-map pixels)")
    _iteration_axis(ax)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def lr_schedule_figure(schedules: Mapping[str, dict], logged: Mapping[str, Sequence[dict]] | None = None,
                       title: str = "Learning-rate schedules"):
    """One panel per options dict: the learning rate of every iteration (:func:`lr_schedule`), the TSA-only stage
    shaded, and optionally the rates a run actually logged.

    Args:
        schedules: ``{label: resolved options}``, e.g. ``{"EDVR-M recipe (stage 2)": opt_m, "this notebook": opt}``.
        logged: ``{label: log entries}`` for some of those labels: the logged ``lr`` drawn as dots on that panel.
        title: figure title.
    """
    plt, logged = pyplot(), logged or {}
    fig, axes = plt.subplots(1, len(schedules), figsize=(6.0 * len(schedules), 3.6), squeeze=False)
    for ax, (label, opt) in zip(axes[0], schedules.items()):
        its, lrs = lr_schedule(opt)
        total, tsa = opt.train.total_iter, opt.train.tsa_iter
        ax.plot(its, lrs, "-", lw=1.3, label="schedule")
        if tsa > 1:
            ax.axvspan(1, tsa - 1, color="tab:orange", alpha=0.18, label=f"TSA-only stage (1 .. {tsa - 1})")
        if label in logged:
            entries = [e for e in logged[label] if e.get("lr")]
            ax.plot([e["iter"] for e in entries], [e["lr"][0] for e in entries], ".", color="tab:green", ms=4,
                    label="logged by the run")
        sched = opt.train.scheduler
        detail = (f"periods {sched.periods}, eta_min {sched.eta_min:g}"
                  if sched.type == "CosineAnnealingRestartLR" else sched.type)
        ax.set(title=f"{label}\n{detail}", xlabel="iteration", ylabel="learning rate")
        ax.title.set_fontsize(9)
        ax.set_xlim(0, total)
        _iteration_axis(ax)
        if total >= 10_000:
            ax.xaxis.set_major_formatter(lambda x, _: f"{x / 1000:g}k")  # a FuncFormatter
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
        ax.legend(fontsize=8, loc="upper right", framealpha=0.95)
    return finish(fig, title)


def motion_curve_figure(recorded: Sequence[dict], lesson: dict | None = None,
                        title: str = "Learned motion against training steps"):
    """Learned-motion error (over "no motion"'s) against training steps, one line per run.

    Args:
        recorded: rows ``{'run', 'step', 'epe_ratio'}`` (steps counted from the start of the recipe), e.g.
            :func:`edvr_lib.tutorial.training_demo.motion_curve`.
        lesson: optionally :func:`edvr_lib.tutorial.training_demo.alignment_lesson`'s result, drawn as its own line.
        title: figure title.
    """
    fig, ax = pyplot().subplots(figsize=(7.2, 4.0))
    runs: dict[str, list[dict]] = {}
    for row in recorded:
        runs.setdefault(row["run"], []).append(row)
    for name, rows in runs.items():
        ax.plot([r["step"] for r in rows], [r["epe_ratio"] for r in rows], "-o", ms=4, label=name)
    if lesson is not None:
        ax.plot(lesson["steps"], lesson["epe_ratio"], "-s", ms=4, color="black",
                label="this notebook: its model + the alignment pre-stage")
    ax.axhline(1.0, color="tab:gray", ls="--", lw=1, label="no motion (offsets carry nothing)")
    ax.axhline(0.5, color="tab:red", ls=":", lw=1, label="the shipped model's target (0.5)")
    ax.set(title=title, xlabel="training step (stages of a recipe follow each other)",
           ylabel="learned-motion EPE / no-motion EPE")
    ax.set_ylim(0, max(1.15, ax.get_ylim()[1]))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig
