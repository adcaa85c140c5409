"""A run folder's files: checkpoints written atomically, the newest readable one found, a resume checked.

A run folder::

    DIR/options.yml                    the resolved options
    DIR/models/net_g_<iter>.pth        {'params', 'params_ema' (with EMA), 'options', 'config'} (BasicSR format)
    DIR/models/net_g_latest.pth        the newest of them (a hard link: a real .pth, no second write)
    DIR/training_states/<iter>.state   the whole TrainState (torch.load(weights_only=True) reads it)
    DIR/training_states/latest.state   the newest of them (a hard link), what ``resume`` reads
                                       (both are copies on a filesystem without hard links)
    DIR/train_log.jsonl                one line per logged iteration (:mod:`edvr_lib.train.runlog`)

Every file is written to a temporary name and renamed, the state last, so a kill at any moment leaves
``latest.state`` pointing at a complete checkpoint.
"""
from __future__ import annotations

import errno
import math
import os
import shutil
from pathlib import Path

import torch

from edvr_lib.train.options import options_diff, options_fingerprint
from edvr_lib.train.schedulers import build_scheduler
from edvr_lib.train.state import SCHEDULE_SHAPE_KEYS, STATE_FORMAT, TrainState
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import NoRoomError, atomic_path, free_bytes, space_text, tensor_bytes, write_failure

__all__ = ["save_checkpoint", "load_latest", "open_run"]


def _save(obj, dest: Path, latest: Path, needed: int) -> None:
    """``torch.save`` ``obj`` to ``dest``, then point ``latest`` at it (a hard link; a copy where links are not
    supported), each atomically."""
    with atomic_path(dest, needed=needed) as tmp:
        torch.save(obj, tmp)
    with atomic_path(latest) as tmp:
        tmp.unlink()
        try:
            os.link(dest, tmp)
        except OSError:
            shutil.copyfile(dest, tmp)


def _raise_no_room(info: dict, target: Path, prev: Path):
    """The one-line EDVRError of a checkpoint that could not be written (:func:`save_checkpoint`)."""
    numbered = _numbered_states(prev.parent)
    if prev.exists() and numbered:  # latest.state is the newest <iter>.state: its name says the iteration
        kept = f"the previous checkpoint {prev} is still valid"
        resume = f"rerun with --resume (it continues from iteration {numbered[0].stem})"
    else:
        kept, resume = "there is no earlier checkpoint", "rerun"
    raise EDVRError(f"could not write {target} ({info['reason']}); {kept}. Fix: {info['fix']} "
                    f"({space_text(info)}), then {resume}.") from None


def save_checkpoint(state: TrainState, run_dir: str | os.PathLike, opt) -> Path:
    """Write the network files and the training state of ``state.iteration`` (module docstring), atomically.

    Raises:
        EDVRError: a write failed (full disk, permissions); the previous checkpoint is left as it was.
    """
    run_dir = Path(run_dir)
    it = state.iteration
    models, states = run_dir / "models", run_dir / "training_states"
    net = {"params": state.model.state_dict()}
    if state.ema is not None:
        net["params_ema"] = state.ema.state_dict()
    net.update(options=opt.to_dict(), config=state.model.config.to_dict())
    payload = {**state.state_dict(), "options": opt.to_dict(), "fingerprint": options_fingerprint(opt)}
    target = models / f"net_g_{it}.pth"
    needed = tensor_bytes(net) + tensor_bytes(payload)
    prev = states / "latest.state"
    free = free_bytes(run_dir)
    if free is not None and free < needed:  # say so before a half-written file
        info = write_failure(OSError(errno.ENOSPC, "not enough free space"), target, needed)
        _raise_no_room({**info, "free": free}, target, prev)
    try:
        _save(net, target, models / "net_g_latest.pth", needed)
        target = states / f"{it}.state"
        _save(payload, target, states / "latest.state", needed)
    except NoRoomError as err:
        _raise_no_room({**err.info, "needed": needed}, target, prev)
    except OSError as err:
        _raise_no_room({"reason": err.strerror or str(err), "folder": target.parent, "needed": needed,
                        "free": free_bytes(target.parent), "fix": "check the folder's permissions"}, target, prev)
    return states / f"{it}.state"


def _numbered_states(folder: Path) -> list[Path]:
    """The ``<iter>.state`` files of ``folder``, newest first."""
    return sorted((p for p in folder.glob("[0-9]*.state") if p.stem.isdigit()), key=lambda p: -int(p.stem))


def load_latest(run_dir: str | os.PathLike, log=print) -> dict | None:
    """The newest complete training state in ``run_dir`` (None when there is none).

    A damaged ``latest.state`` (truncated, corrupt) is named and the newest readable ``<iter>.state`` is used.

    Raises:
        EDVRError: states exist but none of them can be read.
    """
    folder = Path(run_dir) / "training_states"
    candidates = [p for p in (folder / "latest.state",) if p.exists()] + _numbered_states(folder)
    if not candidates:
        return None
    damaged = []
    for candidate in candidates:
        try:
            sd = torch.load(candidate, map_location="cpu", weights_only=True)
            if not isinstance(sd, dict) or sd.get("format") != STATE_FORMAT:
                raise ValueError(f"not an edvr_lib training state (format {STATE_FORMAT})")
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
            damaged.append(candidate.name)
            log(f"training state {candidate} is damaged ({type(err).__name__}: {str(err)[:120]}); trying an older one")
            continue
        if damaged:
            log(f"using {candidate} (iteration {sd['iter']}) instead of the damaged {', '.join(damaged)}")
        return sd
    raise EDVRError(f"every training state in {folder} is damaged ({', '.join(damaged)}). Fix: train into a new "
                    "folder, or initialise from models/net_g_<iter>.pth with path.pretrain_network_g.")


def open_run(run_dir: str | os.PathLike, opt, resume: bool, log=print) -> dict | None:
    """Check ``run_dir`` against the request and return the training state to resume from (or None).

    Raises:
        EDVRError: the folder holds a run but ``resume`` is off, or it holds a run of other options.
    """
    run_dir = Path(run_dir)
    saved = load_latest(run_dir, log=log)
    if saved is None:
        if resume:
            log(f"nothing to resume in {run_dir} (no training_states/latest.state); starting at iteration 0")
        return None
    if not resume:
        raise EDVRError(f"{run_dir} already holds a training run (at iteration {saved['iter']}). Fix: resume it "
                        "(--resume / resume=True), or choose another output folder.")
    opt = opt.to_dict()  # compared with the options the state file holds
    if saved.get("fingerprint") != options_fingerprint(opt) and not _allowed_extension(run_dir, saved, opt, log):
        diff = options_diff(saved.get("options") or {}, opt)
        raise EDVRError(f"{run_dir} was trained with other options ({'; '.join(diff[:4]) or 'fingerprint differs'}"
                        f"{'; ...' if len(diff) > 4 else ''}). Fix: resume with {run_dir / 'options.yml'}, or train "
                        "into a new folder.")
    log(f"resuming {run_dir} from iteration {saved['iter']}")
    return saved


def _allowed_extension(run_dir: Path, saved: dict, opt: dict, log) -> bool:
    """True when ``opt`` only extends the saved run (BasicSR allows it): ``train.total_iter`` and/or the schedule's
    shape (:data:`SCHEDULE_SHAPE_KEYS`) changed; False for any other difference. Raises an EDVRError when the
    extension ends before the saved iteration or changes the learning rate of an iteration up to it."""
    old = saved.get("options")
    if not isinstance(old, dict) or not isinstance(old.get("train"), dict) or not isinstance(opt.get("train"), dict):
        return False
    tr_old, tr_new = old["train"], opt["train"]
    sched_old, sched_new = dict(tr_old.get("scheduler") or {}), dict(tr_new.get("scheduler") or {})
    probe = {**old, "train": {**tr_old, "total_iter": tr_new.get("total_iter"),
                              "scheduler": {**{k: v for k, v in sched_old.items() if k not in SCHEDULE_SHAPE_KEYS},
                                            **{k: v for k, v in sched_new.items() if k in SCHEDULE_SHAPE_KEYS}}}}
    if options_fingerprint(probe) != options_fingerprint(opt):
        return False  # something besides total_iter and the schedule's shape changed
    at, a, b = int(saved["iter"]), int(tr_old.get("total_iter", 0)), int(tr_new.get("total_iter", 0))
    if b < at:
        raise EDVRError(f"{run_dir} is at iteration {at}; train.total_iter {b} would end before it. Fix: set "
                        f"train.total_iter >= {at}, or train into a new folder.")
    lr = float(tr_old["optim_g"]["lr"])

    def past_lrs(scheduler_opt: dict, total_iter: int) -> list[float]:  # iteration k runs at scheduler epoch k - 1
        optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
        scheduler = build_scheduler(optimizer, scheduler_opt, total_iter)
        out = []
        for it in range(1, at + 1):
            if it > 1:
                scheduler.step()
            out.append(optimizer.param_groups[0]["lr"])
        return out

    for it, (x, y) in enumerate(zip(past_lrs(sched_old, a), past_lrs(sched_new, b)), start=1):
        if not math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0):
            keys = ", ".join(f"train.scheduler.{k}" for k in SCHEDULE_SHAPE_KEYS
                             if sched_old.get(k) != sched_new.get(k))
            raise EDVRError(f"{run_dir} cannot be extended: {keys or 'train.total_iter'} "
                            f"changes the learning rate of iteration {it} ({x:.6g} -> {y:.6g}), before the saved "
                            f"iteration {at}. Fix: keep the schedule up to iteration {at} unchanged (lengthen "
                            "train.total_iter, append periods), or train into a new folder.")
    if b != a:
        log(f"extending the run from total_iter {a} to {b}")
    else:
        log(f"continuing the run with the new train.scheduler (same learning rates up to iteration {at})")
    return True
