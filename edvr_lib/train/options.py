"""Option files of ``edvr train``: BasicSR's names and structure, checked by one typed schema (pydantic).

:func:`load_options` reads a YAML file laid out like BasicSR 1.4.2's ``options/train/EDVR/*.yml`` (the four official
EDVR files load unchanged, see ``configs/train_EDVR_*_REDS*.yml``), applies ``key.sub=value`` overrides and returns
the resolved :class:`Options` (``opt.train.total_iter``; every default filled, ranges and cross-field rules checked;
``opt.to_dict()`` is what ``options.yml`` and checkpoints hold) and notes about what was ignored, moved or defaulted.
Every problem is one line naming the key, the value and the fix. Differences from BasicSR's ``parse_options``:

* Unknown keys are errors naming the nearest valid key (BasicSR ignores them, so a typo such as ``use_hflp`` for
  ``use_hflip`` quietly changes the recipe). Keys BasicSR reads but this project does not (:data:`IGNORED`) are
  dropped with a note; keys in an old or mistaken place (:data:`MOVED`: ``network_g.ema_decay`` of BasicSR's
  EDVR-L files, which ``EDVR()`` would refuse, and older names) are moved with a note.
* ``manual_seed`` defaults to 10 (BasicSR draws a random seed when it is missing).
* An override ``a.b.c=value`` (BasicSR's ``a:b:c=value`` too) reads the value as YAML and may set any key of the
  schema. ``lr: 4e-4`` (a string to YAML 1.1) is a number where one is expected; integer keys accept ``5e3``.
* Relative paths (fields typed :data:`PathStr`) stay relative to the working folder, as in BasicSR, unless
  ``load_options(..., base_dir=...)`` is given.
* ``path.resume_state`` must stay ``~`` (``edvr train`` resumes its output folder); output folders are ignored.

Project extensions, all off by default: ``train.grad_clip`` (max gradient norm), ``train.amp`` (``bf16`` autocast on
CUDA or CPU, ``fp16`` on CUDA), ``train.guard`` (divergence guard, :mod:`edvr_lib.train.guard`) and
``train.offset_opt`` (offset fidelity); ``configs/train_EDVR_tiny_embedded.yml`` documents them.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import re
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional, Sequence, Union

import yaml
from pydantic import Field, create_model

from edvr_lib.archs.config import EDVRConfig
from edvr_lib.utils.io import atomic_write_text
from edvr_lib.train.schema import (Bool, Float, Int, OptionsError, PathStr, Section, Str, UniqueKeyLoader, fail,
                                   floats, get, ints, number, one_of, read_yaml, resolve_paths, rule, short, unwrap,
                                   validate, variants, walk)

__all__ = ["OptionsError", "Options", "load_options", "apply_overrides", "validate_options", "dump_options",
           "options_fingerprint", "options_diff", "IGNORED", "MOVED"]

Odd = Annotated[Int, Field(ge=1), rule("odd", lambda v: v % 2 == 1)]
Prob = Annotated[Float, Field(ge=0, le=1)]

_OUTPUTS = "outputs go under `edvr train --output DIR`"
_RUNTIME = "set by BasicSR's parser at run time"
IGNORED = {  # accepted, dropped from the resolved options, noted
    "logger.wandb": "Weights & Biases is not used here; use_tb_logger writes TensorBoard logs",
    "dist_params": "one process, no distributed launcher",
    "find_unused_parameters": "one process, no DistributedDataParallel",
    "datasets.train.dataroot_flow": "EDVR reads no optical flow",
    **{f"path.{k}": _OUTPUTS for k in ("experiments_root", "models", "training_states", "log", "visualization",
                                       "results_root")},
    **{k: _RUNTIME for k in ("is_train", "dist", "rank", "world_size", "auto_resume")},
}
MOVED = {  # old location -> (new location, why)
    "network_g.ema_decay": ("train.ema_decay", "reference bug: BasicSR's EDVR-L files put ema_decay under network_g, "
                                               "whose keys all go to EDVR(); it belongs to train"),
    "datasets.train.use_flip": ("datasets.train.use_hflip", "older BasicSR name"),
    "path.pretrain_model_g": ("path.pretrain_network_g", "older BasicSR name"),
    "path.strict_load": ("path.strict_load_g", "older BasicSR name"),
}


# ----------------------------------------------------------------------------------------------------------------
# The schema. Only what the trainer implements is accepted (one more optimizer or loss is one more class here).

class IOBackend(Section):
    type: one_of("disk", "lmdb") = "disk"


class _TrainSet(Section):
    name: Str = "train"
    dataroot_gt: PathStr
    meta_info_file: Optional[PathStr] = None
    io_backend: IOBackend = IOBackend()
    num_frame: Odd = 5
    gt_size: Annotated[Int, Field(gt=0)] = 256
    # data loader
    use_shuffle: Bool = True
    num_worker_per_gpu: Annotated[Int, Field(ge=0)] = 3
    batch_size_per_gpu: Annotated[Int, Field(ge=1)] = 4
    dataset_enlarge_ratio: Annotated[Int, Field(ge=1)] = 1
    prefetch_mode: Optional[one_of("cpu", "cuda")] = None
    # filled in by BasicSR's parser; accepted so that its dumped options load
    phase: one_of("train") = "train"
    scale: one_of(4) = 4


class _PairedSet(_TrainSet):  # LQ frames on disk, flips and rotations
    dataroot_lq: PathStr
    random_reverse: Bool = False
    use_hflip: Bool = True
    use_rot: Bool = True


class REDSDataset(_PairedSet):
    type: Literal["REDSDataset"]
    val_partition: Optional[one_of("REDS4", "official")] = "REDS4"
    interval_list: ints(ge=1) = [1]


class Vimeo90KDataset(_PairedSet):
    type: Literal["Vimeo90KDataset"]
    num_frame: Odd = 7


class MotionWindowDataset(_TrainSet):
    """LR rendered from GT frames: no dataroot_lq, no flips (random motion)."""

    type: Literal["MotionWindowDataset"]
    meta_info_file: PathStr  # the training clips (a folder scan finds held-out ones)
    gt_size: Annotated[Int, Field(gt=0)] = 128
    max_shift: Annotated[Float, Field(gt=0.1)] = 4.0
    static_prob: Prob = 0.1
    affine_prob: Prob = 0.3
    occlusion_prob: Prob = 0.2
    bbb_mix: Prob = 0.0
    interval_list: ints(ge=1) = [1]
    length: Annotated[Int, Field(ge=1)] = 1000
    spoil_prob: Prob = 0.0  # one neighbour spoilt (noise / occlusion / unrelated frame)


class VideoTestDataset(Section):
    name: Str = "val"
    type: one_of("VideoTestDataset") = "VideoTestDataset"
    dataroot_gt: PathStr
    dataroot_lq: PathStr
    meta_info_file: Optional[PathStr] = None
    io_backend: IOBackend = IOBackend()
    cache_data: Bool = False
    num_frame: Odd = 5
    padding: one_of("reflection_circle", "replicate", "reflection", "circle") = "reflection_circle"
    phase: one_of("val") = "val"
    scale: one_of(4) = 4


class Datasets(Section):
    train: variants(REDSDataset, Vimeo90KDataset, MotionWindowDataset)
    val: Optional[VideoTestDataset] = None  # absent or ~: no validation


_NET_RULES = {"num_frame": Odd, "center_frame_idx": Optional[Annotated[Int, Field(ge=0)]],
              "num_extract_block": Annotated[Int, Field(ge=0)], "num_reconstruct_block": Annotated[Int, Field(ge=0)]}
_NET_HINTS = typing.get_type_hints(EDVRConfig)
#: ``network_g``: ``type: EDVR`` plus the fields of :class:`EDVRConfig`, with its defaults
NetworkG = create_model("NetworkG", __base__=Section, type=(one_of("EDVR"), ...), **{
    f.name: (Bool if _NET_HINTS[f.name] is bool else _NET_RULES.get(f.name, Annotated[Int, Field(ge=1)]), f.default)
    for f in dataclasses.fields(EDVRConfig)})


class PathOptions(Section):
    pretrain_network_g: Optional[PathStr] = None
    strict_load_g: Bool = True
    param_key_g: Str = "params"
    resume_state: None = Field(None, description="~ (resume with `edvr train --output DIR --resume` instead)")


class Adam(Section):
    type: Literal["Adam"] = "Adam"
    lr: Annotated[Float, Field(gt=0)] = 4e-4
    weight_decay: Annotated[Float, Field(ge=0)] = 0.0
    betas: Annotated[list[Annotated[Float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2)] = [0.9, 0.99]


class CosineAnnealingRestartLR(Section):
    type: Literal["CosineAnnealingRestartLR"]
    periods: ints(gt=0)
    restart_weights: Optional[floats(ge=0)] = None  # ~: all 1
    eta_min: Annotated[Float, Field(ge=0)] = 0.0


class MultiStepRestartLR(Section):
    type: Literal["MultiStepRestartLR"]
    milestones: ints(gt=0)
    gamma: Annotated[Float, Field(gt=0)] = 0.1
    restarts: ints(ge=0) = [0]
    restart_weights: floats(ge=0) = [1.0]


class CharbonnierLoss(Section):
    type: Literal["CharbonnierLoss"] = "CharbonnierLoss"
    loss_weight: Annotated[Float, Field(gt=0)] = 1.0
    reduction: one_of("mean", "sum") = "mean"
    eps: Annotated[Float, Field(gt=0)] = 1e-12


class OffsetFidelityLoss(Section):
    """Offset fidelity (Chan et al. 2021): PCD offsets pulled towards the data's true flow."""

    type: one_of("OffsetFidelityLoss") = "OffsetFidelityLoss"
    loss_weight: Annotated[Float, Field(gt=0)] = 1.0
    threshold: Annotated[Float, Field(ge=0)] = 0.5  # px of each pyramid level
    eps: Annotated[Float, Field(gt=0)] = 1e-6
    full_until: Optional[Annotated[Int, Field(ge=0)]] = None  # full weight until here,
    zero_at: Optional[Annotated[Int, Field(ge=1)]] = None  # then linear to 0 (~: never)


class Guard(Section):
    enabled: Bool = False
    max_retries: Annotated[Int, Field(ge=0)] = 3
    lr_factor: Annotated[Float, Field(gt=0, lt=1)] = 0.5
    offset_limit: Annotated[Float, Field(gt=0)] = 50.0


class TrainOptions(Section):
    ema_decay: Annotated[Float, Field(ge=0, lt=1)] = 0.0  # 0: no EMA
    optim_g: variants(Adam, default="Adam") = {}
    scheduler: variants(CosineAnnealingRestartLR, MultiStepRestartLR)
    total_iter: Annotated[Int, Field(ge=1)]
    warmup_iter: Annotated[Int, Field(ge=-1)] = -1  # -1: no warm-up
    tsa_iter: Annotated[Int, Field(ge=0)] = 0  # 0: no TSA-only stage
    dcn_lr_mul: Annotated[Float, Field(gt=0)] = 1.0
    pixel_opt: variants(CharbonnierLoss, default="CharbonnierLoss") = {}
    offset_opt: Optional[OffsetFidelityLoss] = None  # ~: off
    # project extensions, off by default
    grad_clip: Optional[Annotated[Float, Field(gt=0)]] = None  # max gradient norm
    amp: Optional[one_of("bf16", "fp16")] = None  # bf16: CUDA or CPU (emulated without native bf16); fp16: CUDA
    guard: Guard = Guard()


class _Metric(Section):
    crop_border: Annotated[Int, Field(ge=0)] = 0
    test_y_channel: Bool = False


class PSNRMetric(_Metric):
    type: Literal["calculate_psnr"]


class SSIMMetric(_Metric):
    type: Literal["calculate_ssim"]


class ValOptions(Section):  # used only with datasets.val
    val_freq: Annotated[Int, Field(ge=1)] = 5000
    save_img: Bool = False
    metrics: Annotated[dict[str, variants(PSNRMetric, SSIMMetric)], Field(
        min_length=1, description="a mapping of names to entries with a `type` (at least one)")] = {
        "psnr": {"type": "calculate_psnr"}}


class LoggerOptions(Section):
    print_freq: Annotated[Int, Field(ge=1)] = 100
    save_checkpoint_freq: Annotated[Int, Field(ge=1)] = 5000
    use_tb_logger: Bool = False


class Options(Section):
    """The resolved options of a training run (BasicSR's structure)."""

    known_elsewhere: ClassVar[tuple[str, ...]] = (*IGNORED, *MOVED)
    name: Str
    model_type: one_of("EDVRModel") = "EDVRModel"
    scale: one_of(4) = 4
    num_gpu: Union[Literal["auto"], Annotated[Int, Field(ge=0)]] = Field(
        "auto", description="'auto' or an integer >= 0")  # 'auto' is resolved by the trainer
    manual_seed: Annotated[Int, Field(ge=0)] = 10
    datasets: Datasets = {}
    network_g: NetworkG = {}
    path: PathOptions = PathOptions()
    train: TrainOptions = {}
    val: Optional[ValOptions] = None
    logger: LoggerOptions = LoggerOptions()


# ----------------------------------------------------------------------------------------------------------------
# Resolution: raw nested dict -> Options (+ notes)


def _section(tree: dict, parts: Sequence[str], replace: bool) -> dict | None:
    """The dict at ``parts`` in ``tree``, made where missing (or ``~``, or with ``replace`` anything but a dict);
    None where something else is in the way."""
    for part in parts:
        if tree.get(part) is None or replace and not isinstance(tree[part], dict):
            tree[part] = {}
        tree = tree[part]
        if not isinstance(tree, dict):
            return None
    return tree


def _relocate(raw: dict, notes: list[str]) -> None:
    """Move the :data:`MOVED` keys to their new place and drop the :data:`IGNORED` ones, with notes."""
    for old, (new, why) in {**MOVED, **{k: (None, why) for k, why in IGNORED.items()}}.items():
        holder, leaf = get(raw, old)
        if holder is None or leaf not in holder:
            continue
        if new is None:
            del holder[leaf]
            notes.append(f"ignored: {old} ({why})")
            continue
        target, new_leaf = _section(raw, new.split(".")[:-1], replace=False), new.rpartition(".")[2]
        if target is None:  # a malformed section: left for validation to report
            continue
        value = holder.pop(leaf)
        if new_leaf in target and target[new_leaf] != value:
            notes.append(f"dropped {old} = {short(value)}: {new} = {short(target[new_leaf])} is set ({why})")
        else:
            target[new_leaf] = value
            notes.append(f"moved {old} to {new} ({why})")


def _cross_checks(opt: Options, notes: list[str]) -> None:
    """Rules that involve more than one key (BasicSR finds most of these only when training starts)."""
    net, tr, sets, scale = opt.network_g, opt.train, opt.datasets, opt.scale
    if net.num_feat % net.deformable_groups:
        fail("network_g.num_feat", net.num_feat, f"a multiple of network_g.deformable_groups ({net.deformable_groups})")
    if net.num_out_ch != net.num_in_ch:
        fail("network_g.num_out_ch", net.num_out_ch, f"network_g.num_in_ch ({net.num_in_ch}): EDVR adds its output "
                                                     "to the input centre frame")
    if net.center_frame_idx is not None and net.center_frame_idx >= net.num_frame:
        fail("network_g.center_frame_idx", net.center_frame_idx, f"~ or < network_g.num_frame ({net.num_frame})")
    if net.hr_in:
        fail("network_g.hr_in", True, "false: hr_in is for deblurring (LQ at GT size); x4 SR data has GT/4 LQ")
    for phase, dataset in (("train", sets.train), ("val", sets.val)):
        if dataset is not None and dataset.num_frame != net.num_frame:
            fail(f"datasets.{phase}.num_frame", dataset.num_frame, f"network_g.num_frame ({net.num_frame})")
    if sets.train.gt_size % (4 * scale):
        fail("datasets.train.gt_size", sets.train.gt_size, f"a multiple of {4 * scale} (scale {scale} times 4, for "
                                                           "PCD's 3-level pyramid on the LQ patch)")
    if sets.train.prefetch_mode is not None:
        notes.append(f"ignored: datasets.train.prefetch_mode = {sets.train.prefetch_mode!r} (the trainer uses a plain "
                     "DataLoader)")
    sched, total = tr.scheduler, tr.total_iter
    if sched.type == "CosineAnnealingRestartLR":
        if sched.restart_weights is None:
            sched.restart_weights = [1.0] * len(sched.periods)
        if len(sched.restart_weights) != len(sched.periods):
            fail("train.scheduler.restart_weights", sched.restart_weights, f"{len(sched.periods)} values, one per "
                                                                           "period")
        if sum(sched.periods) < total:  # BasicSR's scheduler fails once it runs past the last period
            fail("train.total_iter", total, f"<= sum(train.scheduler.periods) = {sum(sched.periods)}",
                 "lengthen the periods or shorten total_iter")
    elif len(sched.restart_weights) != len(sched.restarts):
        fail("train.scheduler.restart_weights", sched.restart_weights, f"{len(sched.restarts)} values, one per entry "
                                                                       "of train.scheduler.restarts")
    if tr.tsa_iter and not net.with_tsa:
        fail("train.tsa_iter", tr.tsa_iter, "0 when network_g.with_tsa is false (the TSA-only stage trains TSA)")
    if tr.tsa_iter >= total:
        fail("train.tsa_iter", tr.tsa_iter, f"< train.total_iter ({total})")
    if tr.warmup_iter >= total:
        fail("train.warmup_iter", tr.warmup_iter, f"-1 or < train.total_iter ({total})")
    off = tr.offset_opt
    if off is not None:
        if sets.train.type != "MotionWindowDataset":
            fail("train.offset_opt.type", off.type, f"no offset_opt with datasets.train.type {sets.train.type} (it "
                 "returns no flow)", "use datasets.train.type MotionWindowDataset, whose windows carry their true "
                 "flow")
        if off.zero_at is not None and off.zero_at <= (off.full_until or 0):
            fail("train.offset_opt.zero_at", off.zero_at, f"> train.offset_opt.full_until ({off.full_until})")
    if sets.val is None and opt.val is not None:
        notes.append("ignored: val (no datasets.val, so no validation)")
        opt.val = None
    elif sets.val is not None and opt.val is None:
        opt.val = ValOptions()


def _resolve_all(raw: Any) -> tuple[Options, list[str]]:
    raw = raw.to_dict() if isinstance(raw, Options) else copy.deepcopy(raw)
    if not isinstance(raw, dict):
        fail("(top level)", raw, "a mapping of options such as `name:`, `network_g:`, `train:`")
    notes: list[str] = []
    _relocate(raw, notes)
    opt = validate(raw, Options)
    if "manual_seed" not in raw:
        notes.append(f"manual_seed not set: using {opt.manual_seed} (BasicSR would draw a random seed)")
    _cross_checks(opt, notes)
    return opt, notes


# ----------------------------------------------------------------------------------------------------------------
# Public API

def apply_overrides(opt: dict | Options, overrides: Sequence[str]) -> dict:
    """Apply overrides to a copy of ``opt`` (raw or resolved) and return the nested dict.

    Args:
        opt: nested options.
        overrides: items ``'a.b.c=value'`` (``':'`` also separates keys, as in BasicSR's ``--force_yml``); the
            value is read as YAML: ``1e-4``, ``[50000, 100000]``, ``~``, ``true``, ``{type: L1Loss}``. Any key of
            the schema may be set, whether or not ``opt`` has it; old names (:data:`MOVED`) go to their new place.
            Values are checked by :func:`load_options` / :func:`validate_options`, not here.

    Raises:
        OptionsError: malformed item, a value that is not YAML, or a key that is not an option (with the nearest
            valid key); the message starts with ``override 'ITEM'``.
    """
    out = opt.to_dict() if isinstance(opt, Options) else copy.deepcopy(opt) if opt is not None else {}
    for item in overrides:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise OptionsError(f"override '{item}': expected KEY=VALUE. Fix: write it like train.optim_g.lr=2e-4")
        key = ".".join(p.strip() for p in re.split(r"[.:]", key.strip()))
        parts = MOVED.get(key, (key,))[0].split(".")
        try:
            value = yaml.load(text, Loader=UniqueKeyLoader)
        except yaml.YAMLError:
            raise OptionsError(f"override '{item}': the value {text!r} is not valid YAML. Fix: quote it or correct "
                               "the brackets") from None
        if not any(".".join(parts[:i]) in IGNORED for i in range(1, len(parts) + 1)):
            try:
                field = walk(parts, Options)[1]
            except OptionsError as err:
                raise OptionsError(f"override '{item}': {err}") from None
            value = number(value) if unwrap(field.annotation)[0] is float else value
        _section(out, parts[:-1], replace=True)[parts[-1]] = value
    return out


def validate_options(opt: dict | Options) -> None:
    """Check options (raw, or resolved and then changed) against the schema and the cross-field rules.

    Raises:
        OptionsError: the first problem, on one line naming the key, the value and the fix.
    """
    _resolve_all(opt)


def load_options(path: str | os.PathLike, overrides: Sequence[str] = (), *,
                 base_dir: str | os.PathLike | None = None) -> tuple[Options, list[str]]:
    """Read an option file, apply overrides, check everything and fill every default.

    Args:
        path: YAML option file with BasicSR's names (``configs/train_EDVR_*.yml``).
        overrides: ``'a.b.c=value'`` items, see :func:`apply_overrides`.
        base_dir: folder that relative paths are relative to; ``None`` (default) leaves them relative to the
            current working directory, as BasicSR does (run from the repository root).

    Returns:
        ``(opt, notes)``: the resolved :class:`Options` (``datasets.val`` and ``val`` are ``None`` when there
        is no validation) and human-readable notes (ignored, moved or defaulted keys).

    Raises:
        OptionsError: missing or unreadable file, bad YAML, unknown key, wrong type or value, inconsistent keys.
    """
    path = Path(path)
    raw = apply_overrides(read_yaml(path, "configs/train_EDVR_tiny_embedded.yml"), overrides)
    try:
        opt, notes = _resolve_all(raw)
    except OptionsError as err:
        raise OptionsError(f"{path}: {err}") from None
    if base_dir is not None:
        resolve_paths(opt, base_dir)
    return opt, notes


def dump_options(opt: dict | Options, path: str | os.PathLike) -> Path:
    """Write options as YAML, atomically; :func:`load_options` reads the file back to equal options."""
    resolved, _ = _resolve_all(opt)
    text = ("# Resolved options (every default filled), written by edvr_lib.train.options.dump_options.\n"
            "# Load with edvr_lib.train.options.load_options; relative paths are relative to the working folder.\n"
            + yaml.safe_dump(resolved.to_dict(), sort_keys=False, default_flow_style=None, allow_unicode=True,
                             width=120))
    path = Path(path)
    atomic_write_text(path, text)
    return path


_FINGERPRINT_SKIP = {"name", "dataroot_gt", "dataroot_lq", "meta_info_file", "io_backend", "num_worker_per_gpu",
                     "prefetch_mode", "phase"}  # of datasets.train


def options_fingerprint(opt: dict | Options) -> str:
    """SHA-256 (hex) of the options that define a training run, to refuse resuming from another config.

    Covers ``network_g``, ``train``, ``datasets.train`` without where the data lives or how it is loaded
    (data roots, meta file, io backend, workers, prefetch, name), ``scale`` and ``manual_seed``. Raw and
    resolved options of the same file give the same fingerprint (defaults are filled first).
    """
    resolved = _resolve_all(opt)[0].to_dict()
    payload = {"scale": resolved["scale"], "manual_seed": resolved["manual_seed"],
               "network_g": resolved["network_g"], "train": resolved["train"],
               "datasets.train": {k: v for k, v in resolved["datasets"]["train"].items()
                                  if k not in _FINGERPRINT_SKIP}}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
