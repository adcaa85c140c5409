"""Notebook 04 (training EDVR with :func:`edvr_lib.train.train`): its option overrides, a reusable run folder,
Ctrl-C and a diverging batch on cue, a comparison of two runs, and the alignment lesson (the alignment pre-stage run
briefly, the learned-motion error measured as it trains)."""
from __future__ import annotations

import inspect
import math
import os
import shutil
import signal
from collections.abc import Sequence
from pathlib import Path

import yaml

from edvr_lib.utils.errors import EDVRError

__all__ = ["notebook_overrides", "SMOKE_NETWORK", "fresh_run_dir", "draw_batches", "CtrlCAt", "PoisonedBatches",
           "compare_runs", "trainer_loop_source", "RUN_FILES", "ALIGNING_CONFIG", "alignment_lesson",
           "motion_curve"]

# The smallest EDVR that still has every part (PCD with its 3 levels, TSA, reconstruction), for smoke runs.
SMOKE_NETWORK = {"network_g.num_feat": 8, "network_g.num_frame": 3, "network_g.deformable_groups": 2,
                 "network_g.num_extract_block": 1, "network_g.num_reconstruct_block": 1}
# What a run folder of edvr_lib.train holds (fresh_run_dir deletes nothing else).
RUN_FILES = {"options.yml", "train_log.jsonl", "models", "training_states", "tb_logger"}
# The shipped aligning recipe's data: motion-rich windows rendered from the training clips (MotionWindowDataset).
ALIGNING_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train_EDVR_aligning_stage2.yml"


def _get(tree: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return None
        tree = tree[part]
    return tree


def _text(value) -> str:
    if value is None:
        return "~"
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()


def notebook_overrides(config: str | os.PathLike, data: dict, iters: int, val_freq: int, *, smoke: bool = False,
                       device: str = "cpu", print_freq: int | None = None) -> list[str]:
    """The ``--set`` items that turn an option file into notebook 04's run on the embedded dataset.

    Only items that change the file are returned: the embedded clips (absolute paths; held-out clips validate);
    ``total_iter = iters`` in two cosine cycles of 1/3 and 2/3, the second at half the rate; validation and a
    checkpoint every ``val_freq``; from scratch (no pretrained weights, no TSA-only stage), EMA 0.99 (suits a short
    run); ``num_gpu: 0`` on CPU, ``amp: bf16`` on CUDA, no TensorBoard; ``smoke``: :data:`SMOKE_NETWORK`, 32x32
    GT crops, batch 2, no loader workers.

    Args:
        config: the option file (e.g. ``configs/train_EDVR_tiny_embedded.yml``).
        data: :func:`edvr_lib.data.embedded_paths` of the built embedded set.
        iters, val_freq: training iterations and the validation period.
        smoke: shrink everything for a few-second run.
        device: ``'cpu'`` or a CUDA device (``'cuda'``, ``'cuda:0'``).
        print_freq: log period (default: about 40 log points over the run, at least 1).

    Returns:
        ``['key.sub=value', ...]`` for :func:`edvr_lib.train.options.load_options`.
    """
    path = Path(config)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as err:
        raise EDVRError(f"cannot read the option file {path} ({err}). Fix: pass a configs/train_*.yml file") from None
    if iters < 1 or val_freq < 1:
        raise EDVRError(f"iters ({iters}) and val_freq ({val_freq}) must be >= 1")
    cuda = str(device).startswith("cuda")
    first = max(1, iters // 3)
    wanted = {
        "datasets.train.dataroot_gt": str(data["gt"]), "datasets.train.dataroot_lq": str(data["lq"]),
        "datasets.train.meta_info_file": str(data["meta_train"]), "datasets.train.val_partition": None,
        "datasets.val.dataroot_gt": str(data["gt"]), "datasets.val.dataroot_lq": str(data["lq"]),
        "datasets.val.meta_info_file": str(data["meta_test"]), "num_gpu": 1 if cuda else 0, "train.total_iter": iters,
        "train.scheduler.periods": [first, max(1, iters - first)] if iters > 1 else [1],
        "train.scheduler.restart_weights": [1, 0.5] if iters > 1 else [1],
        "path.pretrain_network_g": None, "path.strict_load_g": True, "train.tsa_iter": 0, "train.ema_decay": 0.99,
        "train.amp": "bf16" if cuda else None, "val.val_freq": val_freq,
        "logger.print_freq": print_freq or max(1, iters // 40), "logger.save_checkpoint_freq": val_freq,
        "logger.use_tb_logger": False,
    }
    if smoke:
        wanted.update(SMOKE_NETWORK)
        wanted.update({"datasets.train.num_frame": SMOKE_NETWORK["network_g.num_frame"],
                       "datasets.val.num_frame": SMOKE_NETWORK["network_g.num_frame"],
                       "datasets.train.gt_size": 32, "datasets.train.batch_size_per_gpu": 2,
                       "datasets.train.num_worker_per_gpu": 0, "datasets.train.dataset_enlarge_ratio": 1})
    sched_type = _get(raw, "train.scheduler.type")
    if sched_type not in (None, "CosineAnnealingRestartLR"):
        for key in ("train.scheduler.periods", "train.scheduler.restart_weights"):
            wanted.pop(key)
    return [f"{key}={_text(value)}" for key, value in wanted.items() if _get(raw, key) != value]


def fresh_run_dir(path: str | os.PathLike) -> Path:
    """Make ``path`` an empty run folder, deleting an earlier run there; only a folder that holds nothing but a
    training run's files (:data:`RUN_FILES`) is deleted, so a wrong path cannot wipe other work.

    Raises:
        EDVRError: ``path`` is a file, or a folder with files that are not a training run's.
    """
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise EDVRError(f"{path} is a file, not a run folder. Fix: choose another output path.")
        others = sorted(p.name for p in path.iterdir() if p.name not in RUN_FILES)
        if others:
            raise EDVRError(f"{path} holds files that are not a training run's ({', '.join(others[:5])}); not "
                            "deleting it. Fix: choose another output path or empty it yourself.")
        shutil.rmtree(path)
    path.mkdir(parents=True)
    return path


def draw_batches(opt, count: int, start: int = 0) -> list[dict]:
    """Batches ``start .. start + count - 1`` of the options' training stream, exactly as the trainer would draw them
    (same samples, crops and flips: they depend only on the seed and the position), without loader workers.

    Returns:
        ``[{'lq': (B, t, 3, h, w), 'gt': (B, 3, H, W), 'key': [...]}, ...]`` for ``train(..., batches=...)``.
    """
    from edvr_lib.train.data import build_train_dataset, train_stream

    solo = opt.model_copy(deep=True)
    solo.datasets.train.num_worker_per_gpu = 0
    return list(train_stream(solo, build_train_dataset(solo), start, start + count))


class _Cued(Sequence):
    """``batches`` that do something when iteration ``iteration`` (1-based) is fetched."""

    def __init__(self, batches: Sequence[dict], iteration: int):
        if not 1 <= iteration <= len(batches):
            raise EDVRError(f"iteration {iteration} is outside the {len(batches)} batches")
        self.batches, self.iteration = batches, iteration

    def __len__(self) -> int:
        return len(self.batches)


class CtrlCAt(_Cued):
    """``batches`` for :func:`edvr_lib.train.train` that press Ctrl-C (a real SIGINT, as Jupyter's *Interrupt*) once,
    while iteration ``iteration`` is fetched: the trainer finishes it, saves a resumable state and returns with
    ``summary['interrupted']``."""

    def __init__(self, batches: Sequence[dict], iteration: int):
        super().__init__(batches, iteration)
        self.pressed = False

    def __getitem__(self, index):
        if index == self.iteration - 1 and not self.pressed:
            self.pressed = True
            signal.raise_signal(signal.SIGINT)
        return self.batches[index]


class PoisonedBatches(_Cued):
    """``batches`` in which iteration ``iteration``'s input holds a NaN (a non-finite loss, as in a divergence) the
    first ``times`` times it is fetched: ``1`` is a glitch the divergence guard's rollback gets past, ``None`` a
    failure that comes back after every rollback until the guard gives up."""

    def __init__(self, batches: Sequence[dict], iteration: int, times: int | None = 1):
        super().__init__(batches, iteration)
        self.times, self.served = times, 0

    def __getitem__(self, index):
        batch = self.batches[index]
        if index == self.iteration - 1 and (self.times is None or self.served < self.times):
            self.served += 1
            lq = batch["lq"].clone()
            lq.view(-1)[0] = math.nan
            batch = {**batch, "lq": lq}
        return batch


def compare_runs(run_a: str | os.PathLike, run_b: str | os.PathLike) -> dict:
    """How equal two finished runs are: their logged losses and their final training states.

    Returns:
        ``{'iters': [logged iterations of a], 'same_log': bool (same iterations and bit-equal losses),
        'same_weights': bool (network, EMA and Adam moments bit-equal), 'max_weight_diff': float}``.
    """
    import torch

    from edvr_lib.viz.training_figures import read_train_log

    log_a, log_b = read_train_log(run_a), read_train_log(run_b)
    same_log = [(e["iter"], e["loss"]) for e in log_a] == [(e["iter"], e["loss"]) for e in log_b]
    states = [torch.load(Path(r) / "training_states" / "latest.state", map_location="cpu", weights_only=True)
              for r in (run_a, run_b)]
    diffs = []
    for key in ("params", "params_ema"):
        a, b = states[0].get(key) or {}, states[1].get(key) or {}
        if set(a) != set(b):
            return {"iters": [e["iter"] for e in log_a], "same_log": same_log, "same_weights": False,
                    "max_weight_diff": math.inf}
        diffs += [(a[n].double() - b[n].double()).abs().max().item() if a[n].numel() else 0.0 for n in a]
    moments_a, moments_b = states[0]["optimizer"]["state"], states[1]["optimizer"]["state"]
    same_moments = moments_a.keys() == moments_b.keys() and all(
        torch.equal(moments_a[i][k], moments_b[i][k]) for i in moments_a for k in ("exp_avg", "exp_avg_sq"))
    max_diff = max(diffs, default=0.0)
    return {"iters": [e["iter"] for e in log_a], "same_log": same_log,
            "same_weights": max_diff == 0.0 and same_moments and states[0]["iter"] == states[1]["iter"],
            "max_weight_diff": max_diff}


def trainer_loop_source() -> str:
    """The source of the training loop in :func:`edvr_lib.train.trainer._train` (from the ``with`` around the
    iterations to the end of the loop), to read it in the notebook without pasting it."""
    from edvr_lib.train import trainer

    lines = inspect.getsource(trainer._train).splitlines()
    start = next(i for i, line in enumerate(lines) if "with distributed.StopRequest" in line)
    end = next(i for i, line in enumerate(lines) if i > start and line.strip() == "bar.close()")
    return "\n".join(lines[start:end])


def alignment_lesson(model, data: dict, steps: int, eval_every: int, bank_size: int = 96, bank_gt_size: int = 128,
                     lr: float = 1e-3, windows_per_clip: int = 2, seed: int = 0) -> dict:
    """Does PCD learn motion when motion pays? A copy of ``model`` (``model`` is not changed) gets the alignment
    pre-stage (:func:`~edvr_lib.train.align_pretrain.pretrain_alignment`) on large known motion from the training
    clips (:data:`ALIGNING_CONFIG`'s data); its held-out motion error
    (:func:`~edvr_lib.tutorial.alignment_real.motion_report`) is measured before and every ``eval_every`` steps.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` with LR input, e.g. the one notebook 04 trained.
        data: :func:`edvr_lib.data.embedded_paths` of the embedded set.
        steps, eval_every: training steps and the measuring period.
        bank_size, bank_gt_size: windows rendered once (GT side; LR side a quarter).
        lr, seed: peak learning rate (cosine decay to 1/100); seed of the rendering and the batches.
        windows_per_clip: windows per held-out clip of each measurement.

    Returns:
        ``{'steps': [0, eval_every, ...], 'epe_ratio': [...], 'offset_loss': [...] (None at step 0),
        'seconds': training time}``: ``epe_ratio`` is the learned motion's end-point error over "no motion"'s.
    """
    import copy
    import time

    from edvr_lib.train.align_pretrain import pretrain_alignment, render_bank
    from edvr_lib.train.data import build_train_dataset
    from edvr_lib.train.options import load_options
    from edvr_lib.tutorial.alignment_real import motion_report

    if steps < 1 or eval_every < 1:
        raise EDVRError(f"alignment_lesson needs steps >= 1 and eval_every >= 1; got {steps}, {eval_every}")
    opt, _ = load_options(ALIGNING_CONFIG, [
        f"datasets.train.dataroot_gt={data['gt']}", f"datasets.train.meta_info_file={data['meta_train']}",
        f"datasets.train.gt_size={bank_gt_size}", f"datasets.train.num_frame={model.num_frame}",
        f"network_g.num_frame={model.num_frame}", "datasets.val=~"])
    bank = render_bank(build_train_dataset(opt), bank_size, seed=seed)
    pupil = copy.deepcopy(model)

    def measure() -> float:
        ratio = motion_report(pupil, data["root"], windows_per_clip=windows_per_clip)["epe_ratio"]
        pupil.train()
        return ratio

    curve = {"steps": [0], "epe_ratio": [measure()], "offset_loss": [None]}
    measuring = 0.0  # seconds spent measuring during training, not training

    def log(entry):
        nonlocal measuring
        t0 = time.perf_counter()
        curve["steps"].append(entry["iter"])
        curve["epe_ratio"].append(measure())
        curve["offset_loss"].append(entry["offset_loss"])
        measuring += time.perf_counter() - t0

    start = time.perf_counter()
    pretrain_alignment(pupil, bank, steps, lr=lr, crop=min(32, bank_gt_size // 4), seed=seed, log=log,
                       log_every=eval_every)
    pupil.eval()
    return {**curve, "seconds": time.perf_counter() - start - measuring}


def motion_curve(path: str | os.PathLike) -> list[dict]:
    """The recorded learned-motion errors of the aligning recipe's runs (a JSON list beside the checkpoint).

    Returns:
        ``[{'run': str, 'iter': int, 'epe_ratio': float, ...}]``.
    """
    import json

    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise EDVRError(f"cannot read the recorded motion curve {path} ({err}). Fix: restore it from the "
                        "repository (git checkout -- checkpoints/)") from None
