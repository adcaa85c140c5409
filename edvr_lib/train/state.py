"""The one training-state object: everything that changes while training, saved atomically, restored exactly.

:class:`TrainState` holds the network, its EMA copy, the optimizer, the scheduler, the AMP grad scaler, the
iteration, the divergence guard's counters and (when saved) every random generator. The data position needs
no saving of its own: batches are a function of the iteration (:mod:`edvr_lib.train.data`).

A run folder::

    DIR/options.yml                    the resolved options
    DIR/models/net_g_<iter>.pth        {'params', 'params_ema' (with EMA), 'options', 'config'} (BasicSR format)
    DIR/models/net_g_latest.pth        the newest of them (a hard link: a real .pth, no second write)
    DIR/training_states/<iter>.state   the whole TrainState (torch.load(weights_only=True) reads it)
    DIR/training_states/latest.state   the newest of them (a hard link), what ``resume`` reads
                                       (both are copies on a filesystem without hard links)

Every file is written to a temporary name and renamed, the state last, so a kill at any moment leaves
``latest.state`` pointing at a complete checkpoint.
"""
from __future__ import annotations

import copy
import errno
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import NoRoomError, atomic_path, free_bytes, space_text, tensor_bytes, write_failure

__all__ = ["TrainState", "init_state", "build_model", "build_optimizer", "load_pretrained_into", "save_checkpoint",
           "load_latest", "fingerprint", "options_diff", "STATE_FORMAT"]

STATE_FORMAT = "edvr_lib.train_state/1"


# ----------------------------------------------------------------------------------------- building
def build_model(opt) -> torch.nn.Module:
    """The EDVR of ``opt.network_g`` (``type: EDVR`` plus the fields of EDVRConfig)."""
    from edvr_lib.archs import EDVRConfig, build_edvr

    net = opt.network_g.to_dict()
    net.pop("type")
    return build_edvr(EDVRConfig(**net))


def build_optimizer(model: torch.nn.Module, train_opt) -> torch.optim.Optimizer:
    """Adam over every parameter (frozen ones too, as BasicSR), or two groups when ``dcn_lr_mul != 1``: the
    parameters without ``'dcn'`` in their name, then the DCN packs' (``dcn_pack``, ``cas_dcnpack``) at lr x mul."""
    optim = train_opt.optim_g.to_dict()
    optim.pop("type")
    mul = train_opt.dcn_lr_mul
    if mul == 1:
        return torch.optim.Adam(model.parameters(), **optim)
    normal = [p for n, p in model.named_parameters() if "dcn" not in n]
    dcn = [p for n, p in model.named_parameters() if "dcn" in n]
    return torch.optim.Adam([{"params": normal, "lr": optim["lr"]}, {"params": dcn, "lr": optim["lr"] * mul}],
                            **optim)


def read_params(path: str | os.PathLike, param_key: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict under ``param_key`` of a checkpoint, else under ``'params'``, else whatever the file holds
    (bare, MMagic or original naming; keys renamed to ours). Returns ``(state_dict, container used)``."""
    from edvr_lib.models import read_state_dict

    sd, info = read_state_dict(path)  # auto: params_ema > params > state_dict > bare
    for key in (param_key, "params"):
        if info["container"] == key:
            return sd, key
        if key in info["top_level_keys"]:
            return read_state_dict(path, key)[0], key
    return sd, info["container"]


def load_pretrained_into(model: torch.nn.Module, path: str | os.PathLike, strict: bool, param_key: str = "params",
                         what: str = "network_g") -> tuple[list[str], list[str], str]:
    """Load ``path`` into ``model`` (``strict_load_g`` semantics).

    Returns:
        ``(missing keys, unexpected keys, container used)``; both lists are empty when ``strict``.

    Raises:
        EDVRError: shapes that differ (always; BasicSR silently skips them), or any missing / unexpected key when
            ``strict``. The message lists them and names the fix.
    """
    sd, container = read_params(path, param_key)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [f"{k} (file {tuple(sd[k].shape)}, model {tuple(v.shape)})" for k, v in own.items()
             if k in sd and sd[k].shape != v.shape]

    def show(items):
        return f"{len(items)}: {', '.join(items[:6])}{', ...' if len(items) > 6 else ''}"

    if wrong:
        raise EDVRError(f"path.pretrain_network_g {path} does not fit {what}: wrong shapes {show(wrong)}. Fix: use a "
                        "checkpoint of the same width (num_feat) and frames (num_frame), or change network_g to match "
                        "it (`edvr inspect-checkpoint FILE` tells what it holds).")
    if strict and (missing or unexpected):
        raise EDVRError(f"path.pretrain_network_g {path} does not match {what} exactly (missing {show(missing)}; "
                        f"unexpected {show(unexpected)}). Fix: set path.strict_load_g: false to initialise from a "
                        "smaller or woTSA model, or use the matching checkpoint.")
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return missing, unexpected, container


# ----------------------------------------------------------------------------------------- the state
@dataclass
class TrainState:
    """Everything that changes over a training run.

    Attributes:
        model: the network (never the DDP wrapper).
        ema: its exponential moving average (``None`` when ``train.ema_decay`` is 0).
        optimizer: Adam.
        scheduler: the learning-rate scheduler.
        scaler: the AMP grad scaler (``None`` unless fp16 on CUDA).
        iteration: iterations completed (the next one to train is ``iteration + 1``).
        guard: the divergence guard's ``{'retries', 'failed_at', 'lr_scale'}``.
    """

    model: torch.nn.Module
    ema: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None = None
    iteration: int = 0
    guard: dict = field(default_factory=lambda: {"retries": 0, "failed_at": 0, "lr_scale": 1.0})

    def state_dict(self, rng: bool = True) -> dict:
        """The whole state as tensors and plain Python values (``rng``: include every generator's state)."""
        out = {"format": STATE_FORMAT, "iter": self.iteration, "params": self.model.state_dict(),
               "params_ema": self.ema.state_dict() if self.ema is not None else None,
               "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
               "scaler": self.scaler.state_dict() if self.scaler is not None else None,
               "guard": dict(self.guard)}
        if rng:
            out["rng"] = capture_rng()
        return out

    def load_state_dict(self, sd: dict) -> None:
        """Restore what :meth:`state_dict` returned (the generators too, when it holds them)."""
        self.model.load_state_dict(sd["params"])
        if self.ema is not None:
            self.ema.load_state_dict(sd["params_ema"] if sd.get("params_ema") is not None else sd["params"])
        self.optimizer.load_state_dict(sd["optimizer"])
        # the schedule's shape comes from the options (an extended run has new periods); its progress from the file
        shape = {k: getattr(self.scheduler, k) for k in (*SCHEDULE_SHAPE_KEYS, "cumulative_period")
                 if hasattr(self.scheduler, k)}
        self.scheduler.load_state_dict(sd["scheduler"])
        for key, value in shape.items():
            setattr(self.scheduler, key, value)
        if self.scaler is not None and sd.get("scaler"):
            self.scaler.load_state_dict(sd["scaler"])
        self.iteration = int(sd["iter"])
        self.guard = dict(sd.get("guard") or self.guard)
        if sd.get("rng") is not None:
            restore_rng(sd["rng"])

    def snapshot(self) -> dict:
        """An in-memory copy on the CPU (the divergence guard's last good state)."""
        return _to_cpu(self.state_dict())

    def restore(self, snapshot: dict) -> None:
        """Go back to a :meth:`snapshot` (the guard's counters are kept: they describe the failure)."""
        guard = dict(self.guard)
        self.load_state_dict(snapshot)
        self.guard = guard


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


def capture_rng() -> dict:
    """States of torch (CPU and every CUDA device), numpy's and Python's global generators."""
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    return {"torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)),
            "python": random.getstate()}


def restore_rng(state: dict) -> None:
    """Put back what :func:`capture_rng` captured."""
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def init_state(opt, device: torch.device, log=print, load_pretrain: bool = True) -> TrainState:
    """A fresh :class:`TrainState` from the options, as BasicSR's ``EDVRModel`` builds it.

    The generators are seeded with ``manual_seed + rank`` by the caller; the network is built first and its EMA
    copy right after (the same random draws as BasicSR). With ``path.pretrain_network_g`` both are loaded from
    the file (the EMA from its ``params_ema``, else ``params``); parameters the file lacks keep their random init.
    ``load_pretrain=False`` skips that (a resume overwrites every weight anyway).
    """
    train_opt, path_opt = opt.train, opt.path
    model = build_model(opt)
    ema = build_model(opt) if train_opt.ema_decay > 0 else None
    pretrain = path_opt.pretrain_network_g if load_pretrain else None
    if pretrain:
        strict = path_opt.strict_load_g
        missing, unexpected, used = load_pretrained_into(model, pretrain, strict, path_opt.param_key_g)
        log(f"initialised network_g from {pretrain} ['{used}']" + (
            f"; not in the file (kept at random init): {len(missing)} keys {_short(missing)}" if missing else "") + (
            f"; in the file but not in the model (ignored): {len(unexpected)} keys {_short(unexpected)}"
            if unexpected else ""))
        if ema is not None:
            load_pretrained_into(ema, pretrain, strict, "params_ema", what="the EMA network")
    if ema is not None:
        if not pretrain:
            ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False).eval()
    model.to(device)
    ema = ema.to(device) if ema is not None else None
    optimizer = build_optimizer(model, train_opt)
    from edvr_lib.train.schedulers import build_scheduler

    scheduler = build_scheduler(optimizer, train_opt.scheduler.to_dict(), train_opt.total_iter)
    scaler = torch.amp.GradScaler("cuda") if train_opt.amp == "fp16" and device.type == "cuda" else None
    return TrainState(model, ema, optimizer, scheduler, scaler)


def _short(keys: list[str]) -> str:
    return "(" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + ")"


# ----------------------------------------------------------------------------------------- fingerprint
def fingerprint(opt) -> str:
    """The options' fingerprint (:func:`edvr_lib.train.options.options_fingerprint`)."""
    from edvr_lib.train.options import options_fingerprint

    return options_fingerprint(opt)


def options_diff(old: dict, new: dict, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two option dicts (``'train.optim_g.lr: 0.0004 -> 0.0002'``)."""
    out = []
    for key in sorted(set(old) | set(new), key=str):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += options_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


# ----------------------------------------------------------------------------------------- files
def _save(obj, dest: Path, needed: int | None = None) -> None:
    with atomic_path(dest, needed=needed) as tmp:
        torch.save(obj, tmp)


def _link_latest(src: Path, dest: Path) -> None:
    """Point ``dest`` at ``src`` atomically (a hard link; a copy where links are not supported)."""
    with atomic_path(dest) as tmp:
        tmp.unlink()
        try:
            os.link(src, tmp)
        except OSError:
            import shutil

            shutil.copyfile(src, tmp)


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
    payload = state.state_dict()
    payload.update(options=opt.to_dict(), fingerprint=fingerprint(opt))
    target = models / f"net_g_{it}.pth"
    needed = tensor_bytes(net) + tensor_bytes(payload)
    prev = states / "latest.state"
    free = free_bytes(run_dir)
    if free is not None and free < needed:  # say so before a half-written file
        info = write_failure(OSError(errno.ENOSPC, "not enough free space"), target, needed)
        _raise_no_room({**info, "free": free}, target, prev)
    try:
        _save(net, target, needed)
        _link_latest(target, models / "net_g_latest.pth")
        target = states / f"{it}.state"
        _save(payload, target, needed)
        _link_latest(target, states / "latest.state")
    except NoRoomError as err:
        _raise_no_room({**err.info, "needed": needed}, target, prev)
    except OSError as err:
        _raise_no_room({"reason": err.strerror or str(err), "folder": target.parent, "needed": needed,
                        "free": free_bytes(target.parent), "fix": "check the folder's permissions"}, target, prev)
    return states / f"{it}.state"


def _read_state(path: Path) -> dict:
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict) or sd.get("format") != STATE_FORMAT:
        raise ValueError(f"not an edvr_lib training state (format {STATE_FORMAT})")
    return sd


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
    path = folder / "latest.state"
    numbered = _numbered_states(folder)
    if not path.exists() and not numbered:
        return None
    damaged = []
    for candidate in ([path] if path.exists() else []) + numbered:
        try:
            sd = _read_state(candidate)
        except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
            damaged.append(candidate.name)
            log(f"training state {candidate} is damaged ({type(err).__name__}: {str(err)[:120]}); trying an older one")
            continue
        if damaged:
            log(f"using {candidate} (iteration {sd['iter']}) instead of the damaged {', '.join(damaged)}")
        return sd
    raise EDVRError(f"every training state in {folder} is damaged ({', '.join(damaged)}). Fix: train into a new "
                    "folder, or initialise from models/net_g_<iter>.pth with path.pretrain_network_g.")


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (BasicSR ``set_random_seed``; callers add the rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


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
    if saved.get("fingerprint") != fingerprint(opt) and not _allowed_extension(run_dir, saved, opt, log):
        diff = options_diff(saved.get("options") or {}, opt)
        raise EDVRError(f"{run_dir} was trained with other options ({'; '.join(diff[:4]) or 'fingerprint differs'}"
                        f"{'; ...' if len(diff) > 4 else ''}). Fix: resume with {run_dir / 'options.yml'}, or train "
                        "into a new folder.")
    log(f"resuming {run_dir} from iteration {saved['iter']}")
    return saved


# train.scheduler keys an extension may change, as long as the rates up to the saved iteration stay the same
SCHEDULE_SHAPE_KEYS = ("periods", "restart_weights", "milestones", "restarts")


def _allowed_extension(run_dir: Path, saved: dict, opt: dict, log) -> bool:
    """True when ``opt`` only extends the saved run (BasicSR allows it): ``train.total_iter`` raised and/or the
    scheduler's periods / milestones / restarts / restart_weights changed without changing the learning rate of
    any iteration up to the saved one (checked by running both schedules). False for any other difference.

    Raises:
        EDVRError: the extension would end before the saved iteration, or it changes a past learning rate.
    """
    old = saved.get("options")
    if not isinstance(old, dict) or not isinstance(old.get("train"), dict) or not isinstance(opt.get("train"), dict):
        return False
    tr_old, tr_new = old["train"], opt["train"]
    sched_old, sched_new = dict(tr_old.get("scheduler") or {}), dict(tr_new.get("scheduler") or {})
    probe = {**old, "train": {**tr_old, "total_iter": tr_new.get("total_iter"),
                              "scheduler": {**{k: v for k, v in sched_old.items() if k not in SCHEDULE_SHAPE_KEYS},
                                            **{k: v for k, v in sched_new.items() if k in SCHEDULE_SHAPE_KEYS}}}}
    if fingerprint(probe) != fingerprint(opt):
        return False  # something besides total_iter and the schedule's shape changed
    at, a, b = int(saved["iter"]), int(tr_old.get("total_iter", 0)), int(tr_new.get("total_iter", 0))
    if b < at:
        raise EDVRError(f"{run_dir} is at iteration {at}; train.total_iter {b} would end before it. Fix: set "
                        f"train.total_iter >= {at}, or train into a new folder.")
    lr = float(tr_old["optim_g"]["lr"])
    past_old, past_new = _schedule_lrs(sched_old, a, lr, at), _schedule_lrs(sched_new, b, lr, at)
    for it, (x, y) in enumerate(zip(past_old, past_new), start=1):
        if not math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0):
            keys = ", ".join(f"train.scheduler.{k}" for k in SCHEDULE_SHAPE_KEYS if sched_old.get(k) != sched_new.get(k))
            raise EDVRError(f"{run_dir} cannot be extended: {keys or 'train.total_iter'} "
                            f"changes the learning rate of iteration {it} ({x:.6g} -> {y:.6g}), before the saved "
                            f"iteration {at}. Fix: keep the schedule up to iteration {at} unchanged (lengthen "
                            "train.total_iter, append periods), or train into a new folder.")
    if b != a:
        log(f"extending the run from total_iter {a} to {b}")
    else:
        log(f"continuing the run with the new train.scheduler (same learning rates up to iteration {at})")
    return True


def _schedule_lrs(scheduler_opt: dict, total_iter: int, lr: float, upto: int) -> list[float]:
    """The learning rate of iterations ``1..upto`` under ``scheduler_opt`` (the trainer's timing: iteration ``k``
    uses scheduler epoch ``k - 1``), from the project's own scheduler classes."""
    from edvr_lib.train.schedulers import build_scheduler

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = build_scheduler(optimizer, scheduler_opt, total_iter)
    out = []
    for it in range(1, upto + 1):
        if it > 1:
            scheduler.step()
        out.append(optimizer.param_groups[0]["lr"])
    return out


def write_options(opt, run_dir: str | os.PathLike) -> None:
    """``run_dir/options.yml``, atomically (:func:`edvr_lib.train.options.dump_options`)."""
    from edvr_lib.train.options import dump_options

    dump_options(opt, Path(run_dir) / "options.yml")


class DivergenceGuard:
    """Rolls the training back to the last good state when the loss stops being finite or the DCN offsets
    explode (``train.guard``), with the learning rate times ``lr_factor``; gives up after ``max_retries``
    consecutive failures.

    Args:
        guard_opt: the resolved ``train.guard`` (``enabled``, ``max_retries``, ``lr_factor``, ``offset_limit``).
        state: the training state (its first snapshot is taken now).
        log: one-line messages.
    """

    def __init__(self, guard_opt, state: TrainState, log=print):
        self.enabled, self.max_retries = guard_opt.enabled, guard_opt.max_retries
        self.lr_factor, self.offset_limit = guard_opt.lr_factor, guard_opt.offset_limit
        self.log = log
        self.rollbacks = 0  # in this process
        # (snapshot, its lr_scale): ``good`` passed a later check; ``pending`` (taken at the last healthy check)
        # becomes good only when the next check passes too, because the offsets a check sees come from the
        # weights *before* that iteration's step
        self.good = (state.snapshot(), state.guard["lr_scale"]) if self.enabled else None
        self.pending = None

    def problem(self, loss: float, offset_max: float | None = None) -> str | None:
        """Why this iteration counts as diverged (None when it does not)."""
        if not np.isfinite(loss):
            return f"loss is {loss}"
        if offset_max is not None and self.enabled and offset_max > self.offset_limit:
            return f"DCN offsets mean |offset| {offset_max:.1f} px > offset_limit {self.offset_limit:g}"
        return None

    def keep(self, state: TrainState) -> None:
        """A healthy check: the state kept at the previous check is good; keep this one until the next check."""
        if self.enabled:
            if state.iteration > state.guard["failed_at"]:
                state.guard["retries"] = 0
            if self.pending is not None:
                self.good = self.pending
            self.pending = (state.snapshot(), state.guard["lr_scale"])

    def roll_back(self, state: TrainState, iteration: int, reason: str) -> None:
        """Restore the last good state with a lower learning rate, or raise when the retries are used up.

        Raises:
            EDVRError: the guard is off, or ``max_retries`` rollbacks in a row did not help.
        """
        from edvr_lib.train.schedulers import scale_lr

        if not self.enabled:
            raise EDVRError(f"training diverged at iteration {iteration}: {reason}. Fix: lower train.optim_g.lr (or "
                            "dcn_lr_mul), or turn on train.guard to roll back automatically; resume from the last "
                            "checkpoint.")
        retries = state.guard["retries"] + 1
        if retries > self.max_retries:
            raise EDVRError(f"training diverged at iteration {iteration} ({reason}) again after {self.max_retries} "
                            f"rollbacks with lr x{self.lr_factor:g} each. Fix: lower train.optim_g.lr or dcn_lr_mul, "
                            "or initialise from a good checkpoint; the last checkpoint on disk is still valid.")
        snapshot, snapshot_scale = self.good
        state.restore(snapshot)  # its optimizer and schedule run at snapshot_scale
        self.pending = None
        self.rollbacks += 1
        lr_scale = state.guard["lr_scale"] * self.lr_factor  # each rollback in a row lowers the lr further
        state.guard.update(retries=retries, failed_at=max(iteration, state.guard["failed_at"]), lr_scale=lr_scale)
        scale_lr(state.optimizer, state.scheduler, lr_scale / snapshot_scale)
        self.log(f"guard: {reason} at iteration {iteration}; rolled back to iteration {state.iteration} with lr "
                 f"x{lr_scale:g} of the schedule (retry {retries}/{self.max_retries})")


class RunLog:
    """``train_log.jsonl`` (one JSON object per logged iteration, rewritten atomically) and TensorBoard events.

    Args:
        run_dir: the run folder.
        upto: keep the entries of iterations ``<= upto`` from an earlier run (a resume drops the rest).
        tensorboard: also write ``run_dir/tb_logger`` events (skipped, with one message, if not installed).
        log: one-line messages.
    """

    def __init__(self, run_dir: str | os.PathLike, upto: int = 0, tensorboard: bool = False, log=print):
        self.path = Path(run_dir) / "train_log.jsonl"
        self.entries = []
        if upto and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if entry.get("iter", 0) <= upto:
                    self.entries.append(entry)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log("logger.use_tb_logger is on but tensorboard is not installed (pip install tensorboard); "
                    "logging to train_log.jsonl only")
            else:
                self.writer = SummaryWriter(str(Path(run_dir) / "tb_logger"), purge_step=upto + 1)

    def write(self, entry: dict) -> None:
        """Add one entry (and its numbers to TensorBoard)."""
        from edvr_lib.utils.io import atomic_write_text

        self.entries = [e for e in self.entries if e["iter"] != entry["iter"]] + [entry]
        atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in self.entries))
        if self.writer is not None:
            for key, value in entry.items():
                if key == "lr":
                    self.writer.add_scalar("train/lr", value[0], entry["iter"])
                elif key != "iter" and isinstance(value, (int, float)):
                    self.writer.add_scalar(("metrics/" if key.endswith("psnr") or key.endswith("ssim") else "train/")
                                           + key, value, entry["iter"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
