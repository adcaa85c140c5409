"""The one training-state object (:class:`TrainState`): everything that changes while training, restored exactly,
and :func:`init_state`, which builds a fresh one from the options. The data position needs no saving of its own:
batches are a function of the iteration (:mod:`edvr_lib.train.data`).
"""
from __future__ import annotations

import copy
import random
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from edvr_lib.models import key_mismatch, read_state_dicts
from edvr_lib.train.guard import GuardCounters
from edvr_lib.train.schedulers import build_scheduler
from edvr_lib.utils.errors import EDVRError

__all__ = ["TrainState", "init_state", "build_model", "build_optimizer", "seed_everything", "STATE_FORMAT"]

STATE_FORMAT = "edvr_lib.train_state/1"
# train.scheduler keys an extension may change, as long as the rates up to the saved iteration stay the same
SCHEDULE_SHAPE_KEYS = ("periods", "restart_weights", "milestones", "restarts")


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


def _load_into(model: torch.nn.Module, sd: dict[str, torch.Tensor], path, strict: bool,
               what: str) -> tuple[list[str], list[str]]:
    """Load ``sd`` (read from ``path``) into ``model`` as ``strict_load_g`` says; returns ``(missing, unexpected)``
    keys. Shapes that differ always raise (BasicSR skips them silently), missing / unexpected keys when ``strict``."""
    missing, unexpected, wrong = key_mismatch(model, sd)

    def show(items):
        return f"{len(items)}: {', '.join(items[:6])}{', ...' if len(items) > 6 else ''}"

    if wrong:
        raise EDVRError(f"path.pretrain_network_g {path} does not fit {what}: wrong shapes "
                        f"{show([f'{k} (file {a}, model {b})' for k, a, b in wrong])}. Fix: use a "
                        "checkpoint of the same width (num_feat) and frames (num_frame), or change network_g to match "
                        "it (`edvr inspect-checkpoint FILE` tells what it holds).")
    if strict and (missing or unexpected):
        raise EDVRError(f"path.pretrain_network_g {path} does not match {what} exactly (missing {show(missing)}; "
                        f"unexpected {show(unexpected)}). Fix: set path.strict_load_g: false to initialise from a "
                        "smaller or woTSA model, or use the matching checkpoint.")
    own = model.state_dict()
    model.load_state_dict({k: v for k, v in sd.items() if k in own}, strict=False)
    return missing, unexpected


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
        guard: the divergence guard's counters.
    """

    model: torch.nn.Module
    ema: torch.nn.Module | None
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler | None = None
    iteration: int = 0
    guard: GuardCounters = field(default_factory=GuardCounters)

    def state_dict(self) -> dict:
        """The whole state as tensors and plain Python values, with the states of torch's (CPU and every CUDA
        device), numpy's and Python's global generators."""
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        return {"format": STATE_FORMAT, "iter": self.iteration, "params": self.model.state_dict(),
                "params_ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                "guard": asdict(self.guard),
                "rng": {"torch": torch.get_rng_state(),
                        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                                  float(gauss)),
                        "python": random.getstate()}}

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
        if sd.get("guard"):
            self.guard = GuardCounters(**sd["guard"])
        if (rng := sd.get("rng")) is not None:
            torch.set_rng_state(rng["torch"])
            if rng.get("cuda") and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(rng["cuda"])
            name, keys, pos, has_gauss, gauss = rng["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            version, internal, gauss_next = rng["python"]
            random.setstate((version, tuple(internal), gauss_next))

    def snapshot(self) -> dict:
        """An in-memory copy on the CPU (the divergence guard's last good state)."""
        return _to_cpu(self.state_dict())

    def restore(self, snapshot: dict) -> None:
        """Go back to a :meth:`snapshot` (the guard's counters are kept: they describe the failure)."""
        guard = self.guard
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
        (sd, used), *ema_sd = read_state_dicts(pretrain, [path_opt.param_key_g] + ["params_ema"] * (ema is not None))
        missing, unexpected = _load_into(model, sd, pretrain, strict, "network_g")
        log(f"initialised network_g from {pretrain} ['{used}']" + (
            f"; not in the file (kept at random init): {len(missing)} keys {_short(missing)}" if missing else "") + (
            f"; in the file but not in the model (ignored): {len(unexpected)} keys {_short(unexpected)}"
            if unexpected else ""))
        if ema is not None:
            _load_into(ema, ema_sd[0][0], pretrain, strict, "the EMA network")
    if ema is not None:
        if not pretrain:
            ema.load_state_dict(model.state_dict())
        ema.requires_grad_(False).eval().to(device)
    model.to(device)
    optimizer = build_optimizer(model, train_opt)
    scheduler = build_scheduler(optimizer, train_opt.scheduler.to_dict(), train_opt.total_iter)
    scaler = torch.amp.GradScaler("cuda") if train_opt.amp == "fp16" and device.type == "cuda" else None
    return TrainState(model, ema, optimizer, scheduler, scaler)


def _short(keys: list[str]) -> str:
    return "(" + ", ".join(keys[:4]) + (", ..." if len(keys) > 4 else "") + ")"


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's generators (BasicSR ``set_random_seed``; callers add the rank)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
