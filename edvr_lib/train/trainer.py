"""Training EDVR: the loop behind ``edvr train``, the recipe of BasicSR's ``EDVRModel`` in one function.

One iteration, top to bottom: get batch, schedule, (un)freeze the TSA-only stage, forward, loss, backward,
clip, step, EMA, log, validate, save. The state, its files, the guard, the log, the batches, the schedules and
torchrun live in the sibling modules (``state``, ``checkpoint``, ``guard``, ``runlog``, ``data``, ``schedulers``,
``distributed``).

Timing as in BasicSR (``basicsr/train.py``, ``models/base_model.py``, ``models/edvr_model.py``): the scheduler
steps before iteration ``k``'s update and only from ``k = 2``, so iteration ``k`` uses scheduler epoch ``k - 1``;
with ``tsa_iter`` every parameter without ``'fusion'`` in its name is frozen for iterations ``1 .. tsa_iter - 1``
(also after a resume inside that stage, which BasicSR forgets; and ``tsa_iter: 1`` means no such stage, where
BasicSR would freeze for good); frozen parameters get no gradient, so Adam starts their state when they first
train; the EMA is updated after every step over all parameters, frozen ones included.
``tests/fixtures/train_parity/README.md`` lists these rules with BasicSR's recorded values.

Example::

    from edvr_lib.train import train
    summary = train(opt, "experiments/tiny")           # opt from edvr_lib.train.options.load_options
    summary = train(opt, "experiments/tiny", resume=True)
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Callable, Sequence

import torch

from edvr_lib.train import distributed
from edvr_lib.train.data import (build_train_dataset, build_val_dataset, check_first_sample, explicit_stream,
                                 train_stream, validate)
from edvr_lib.train.checkpoint import open_run, save_checkpoint
from edvr_lib.train.guard import DivergenceGuard
from edvr_lib.train.options import Options, dump_options, load_options
from edvr_lib.train.runlog import RunLog
from edvr_lib.train.schedulers import warmup_lr
from edvr_lib.train.state import init_state, seed_everything

__all__ = ["train", "run_train"]


def amp_dtype(amp: str | None, device: torch.device, log: Callable[[str], None]) -> torch.dtype | None:
    """The autocast dtype of ``train.amp`` on ``device`` (None: float32).

    bf16 runs on CUDA and on CPUs (where the CPU has no native bf16, emulated and slower: ``log`` gets one line);
    fp16 needs CUDA, elsewhere training runs in float32 with one line saying so. Weights, optimizer state,
    checkpoints, the DCNs and the loss stay float32.
    """
    from edvr_lib.ops.policy import autocast_dtype

    if not amp:
        return None
    if device.type == "cuda" or (device.type == "cpu" and amp == "bf16"):
        return autocast_dtype(device, amp, log)
    log(f"train.amp={amp!r} needs CUDA{' (or bf16 on CPU)' if device.type == 'cpu' else ''}; "
        f"training in float32 on {device}")
    return None


def train(opt: Options, output_dir, *, resume: bool = False, device: str = "auto",
          batches: Sequence[dict] | None = None, log: Callable[[str], None] = print) -> dict:
    """Train EDVR as the options say, writing checkpoints and logs into ``output_dir``.

    Args:
        opt: resolved options (BasicSR structure with every default filled; see
            :func:`edvr_lib.train.options.load_options`).
        output_dir: the run folder (``models/``, ``training_states/``, ``train_log.jsonl``, ``options.yml``,
            ``tb_logger/``).
        resume: continue from ``output_dir/training_states/latest.state`` (starts at 0 if there is none).
        device: ``'auto'``, ``'cpu'``, ``'cuda'`` or ``'cuda:N'`` (under torchrun: ``cuda:LOCAL_RANK``).
        batches: instead of the dataset, ``batches[k - 1] = {'lq': (B, t, 3, h, w), 'gt': (B, 3, H, W)}`` trains
            iteration ``k`` (reference-parity tests, notebooks).
        log: where one-line messages go (rank 0 only).

    Returns:
        ``{'iter', 'losses': {iter: loss}, 'lrs': {iter: [lr per group]}, 'val' (last validation or None),
        'interrupted', 'rollbacks', 'run_dir', 'checkpoint', 'seconds', 'model', 'ema'}`` for the iterations of
        this call (``model`` / ``ema``: the trained network and its EMA copy, or None, on this process's device).

    Raises:
        EDVRError: bad options or data, a folder of another run, a full disk, a divergence the guard could
            not fix. The message names the culprit and the fix; files on disk stay valid.
    """
    ddp = distributed.setup(device, opt.num_gpu)
    try:
        return _train(opt, Path(output_dir), resume, ddp, batches, log if ddp.is_main else (lambda msg: None))
    finally:
        distributed.cleanup(ddp)


def _train(opt, run_dir, resume, ddp, batches, log) -> dict:
    from tqdm.auto import tqdm

    from edvr_lib.introspect import offset_monitor, offset_stats
    from edvr_lib.losses import OffsetCapture, charbonnier, offset_fidelity, offset_weight

    tr, lg, dev = opt.train, opt.logger, ddp.device
    total_iter, tsa_iter, pix, off_opt = tr.total_iter, tr.tsa_iter, tr.pixel_opt, tr.offset_opt
    val_freq = opt.val.val_freq if opt.val is not None else 0
    amp = amp_dtype(tr.amp, dev, log)

    # ---- state: fresh from the options (+ pretrained weights), or the run folder's latest checkpoint
    saved = open_run(run_dir, opt, resume, log)
    seed_everything(opt.manual_seed + ddp.rank)
    state = init_state(opt, dev, log, load_pretrain=saved is None)
    if saved is not None:
        state.load_state_dict(saved)
        del saved
    distributed.sync_from_rank0([m for m in (state.model, state.ema) if m is not None], ddp)
    if ddp.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        dump_options(opt, run_dir / "options.yml")

    # ---- data: the options' dataset (or the given batches), from the position of the state's iteration
    dataset = build_train_dataset(opt) if batches is None else None
    if dataset is not None:
        check_first_sample(dataset, opt)
    val_set = build_val_dataset(opt) if ddp.is_main and val_freq else None

    def open_stream(start: int):
        if batches is not None:
            return explicit_stream(batches, start, total_iter)
        return train_stream(opt, dataset, start, total_iter, ddp.rank, ddp.world_size, pin_memory=dev.type == "cuda")

    stream = open_stream(state.iteration)
    params = list(state.model.parameters())
    ema_params = list(state.ema.parameters()) if state.ema is not None else []
    frozen, net = None, state.model  # set by the TSA stage check of the first iteration
    guard = DivergenceGuard(tr.guard, state, log)
    runlog = RunLog(run_dir, upto=state.iteration, tensorboard=lg.use_tb_logger and ddp.is_main, log=log)
    losses, lrs, last_val, bicubic = {}, {}, None, {}
    start_time = last_log_time = time.perf_counter()
    last_log_iter = state.iteration
    bar = tqdm(total=total_iter, initial=state.iteration, desc="edvr train", unit="it", disable=not ddp.is_main,
               dynamic_ncols=True)
    with distributed.StopRequest(log) as stop, offset_monitor(state.model) as offset_means:
        def roll_back(it: int, problem: str) -> None:  # the last good state, lr lowered (or stop with a message)
            nonlocal stream, frozen
            guard.roll_back(state, it, problem)
            runlog.drop_after(state.iteration)
            stream, frozen, bar.n = open_stream(state.iteration), None, state.iteration

        while state.iteration < total_iter:
            it = state.iteration + 1
            batch = next(stream)

            # schedule: BasicSR's update_learning_rate, before the step and only from iteration 2
            if it > 1:
                state.scheduler.step()
            warmup_lr(state.optimizer, it, tr.warmup_iter)
            lr = [g["lr"] for g in state.optimizer.param_groups]

            # TSA-only stage: only parameters named '...fusion...' train during iterations 1 .. tsa_iter - 1
            if frozen != (it < tsa_iter):
                frozen = it < tsa_iter
                for name, p in state.model.named_parameters():
                    p.requires_grad_(not frozen or "fusion" in name)
                net = distributed.wrap_model(state.model, ddp)  # DDP over the parameters that now train
                if frozen:
                    log(f"TSA-only stage: training the 'fusion' parameters only until iteration {tsa_iter}")
                elif it == tsa_iter:  # the end of the TSA-only stage (not a resume after it)
                    log(f"iteration {it}: training all parameters")

            # forward, loss (Charbonnier, sum over the batch in the recipe; + offset fidelity if asked), backward
            lq, gt = batch["lq"].to(dev, non_blocking=True), batch["gt"].to(dev, non_blocking=True)
            state.optimizer.zero_grad(set_to_none=True)  # frozen parameters keep grad None: no Adam state
            off_w = offset_weight(off_opt, it)
            with torch.autocast(dev.type, dtype=amp or torch.float32, enabled=amp is not None), \
                    (OffsetCapture(state.model) if off_w else contextlib.nullcontext()) as offsets:
                out = net(lq)
            loss = pix.loss_weight * charbonnier(out.float(), gt, pix.eps, pix.reduction)
            if off_w:
                off_loss = offset_fidelity(offsets, batch["flow"].to(dev), batch["flow_valid"].to(dev),
                                           off_opt.threshold, off_opt.eps)
                loss = loss + off_w * off_loss
            if state.scaler is not None:
                state.scaler.scale(loss).backward()
            else:
                loss.backward()

            # one all-reduce: the mean loss and whether any process was asked to stop
            flags = torch.stack([loss.detach().float(), torch.tensor(float(stop.requested), device=dev)])
            loss_value, stop_share = distributed.all_reduce(flags, ddp).tolist()
            stop_now = stop_share > 0  # any process was asked
            if problem := guard.problem(loss_value):  # non-finite loss
                roll_back(it, problem)
                continue

            # clip, step
            if state.scaler is not None:
                state.scaler.unscale_(state.optimizer)
            if tr.grad_clip:
                torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], float(tr.grad_clip))
            if state.scaler is not None:
                state.scaler.step(state.optimizer)
                state.scaler.update()
            else:
                state.optimizer.step()

            # EMA: ema = d * ema + (1 - d) * param, every parameter
            if ema_params:
                with torch.no_grad():
                    torch._foreach_mul_(ema_params, tr.ema_decay)
                    torch._foreach_add_(ema_params, params, alpha=1 - tr.ema_decay)
            state.iteration = it
            losses[it], lrs[it] = loss_value, lr
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4g}", lr=f"{lr[0]:.3g}", refresh=False)

            # log (and check the DCN offsets once per log)
            entry = None
            if it % lg.print_freq == 0 or it == total_iter:
                offsets = list(offset_stats(offset_means).values())
                offset_max = distributed.all_reduce(torch.tensor(max(offsets, default=0.0)), ddp, "max").item()
                if problem := guard.problem(loss_value, offset_max):
                    roll_back(it, problem)
                    continue
                guard.keep(state)
                now = time.perf_counter()
                entry = {"iter": it, "loss": loss_value, "lr": lr,
                         **({"offset_loss": off_loss.item(), "offset_weight": off_w} if off_w else {}),
                         "offset_mean": sum(offsets) / len(offsets) if offsets else None, "offset_max": offset_max,
                         "it_per_s": (it - last_log_iter) / max(now - last_log_time, 1e-9),
                         "lr_scale": state.guard.lr_scale}  # < 1 after the guard's rollbacks
                last_log_iter, last_log_time = it, now

            # validate (rank 0; the EMA weights when there are some, as BasicSR)
            if val_freq and (it % val_freq == 0 or it == total_iter):
                if val_set is not None:
                    last_val = validate(state.ema or state.model, val_set, opt, dev, bicubic)
                    entry = {**(entry or {"iter": it, "loss": loss_value, "lr": lr}), **last_val}
                    log(f"iteration {it}: val PSNR {last_val['val_psnr']:.2f} dB (bicubic "
                        f"{last_val['bicubic_psnr']:.2f} dB), SSIM {last_val['val_ssim']:.4f}")
                distributed.barrier(ddp)
            if entry is not None and ddp.is_main:
                runlog.write(entry)

            # save (rank 0), also at the end and when asked to stop
            if it % lg.save_checkpoint_freq == 0 or it == total_iter or stop_now:
                distributed.on_main(lambda: save_checkpoint(state, run_dir, opt), ddp)
            if stop_now:
                log(f"stopped at iteration {it}; resume with the same command and --resume")
                break
    bar.close()
    runlog.close()
    return {"iter": state.iteration, "losses": losses, "lrs": lrs, "val": last_val,
            "interrupted": state.iteration < total_iter, "rollbacks": guard.rollbacks, "run_dir": str(run_dir),
            "checkpoint": str(run_dir / "training_states" / "latest.state"),
            "seconds": time.perf_counter() - start_time, "model": state.model, "ema": state.ema}


def run_train(config_path, output_dir, overrides=(), resume: bool = False, device: str = "auto") -> int:
    """``edvr train``: load the option file (+ ``key=value`` overrides), print its notes, train.

    Returns:
        0 when training finished, 130 when it was stopped by Ctrl-C / SIGTERM after saving a resumable state.

    Raises:
        EDVRError: bad options, data or run folder (the command prints it and exits 2).
    """
    say = print if int(os.environ.get("RANK", "0")) == 0 else (lambda msg: None)  # torchrun: rank 0 speaks
    opt, notes = load_options(config_path, overrides)
    for note in notes:
        say(f"note: {note}")
    summary = train(opt, output_dir, resume=resume, device=device)
    if summary["interrupted"]:
        return 130
    last = summary["losses"].get(summary["iter"])
    say(f"done: iteration {summary['iter']}" + (f", loss {last:.5g}" if last is not None else "")
        + f"; checkpoints in {Path(output_dir) / 'models'}")
    return 0
