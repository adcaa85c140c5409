"""Option files of ``edvr train``: BasicSR's names and structure, checked against one declarative schema.

``edvr train --config FILE --output DIR [--set key.sub=value ...] [--resume]`` reads a YAML file laid out like
BasicSR 1.4.2's ``options/train/EDVR/*.yml`` (the four official EDVR files load unchanged, see
``configs/train_EDVR_*_REDS*.yml``). :func:`load_options` returns the *resolved* options: the same nested dict
with every key the trainer reads present (defaults filled, types normalised, ranges and cross-field rules
checked), plus human-readable notes about what was ignored, renamed or defaulted.

Differences from BasicSR's ``parse_options`` (``basicsr/utils/options.py``), on purpose:

* Unknown keys are errors naming the nearest valid key (BasicSR ignores them silently, so a typo such as
  ``use_flip`` for ``use_hflip`` quietly changes the recipe). Keys BasicSR reads but this project does not
  (``logger.wandb``, ``dist_params``, ...) are accepted, dropped and noted.
* ``network_g.ema_decay`` (where BasicSR's EDVR-L files put it by mistake; ``build_network`` would pass it to
  ``EDVR()`` and fail) is moved to ``train.ema_decay`` with a note.
* ``manual_seed`` defaults to 10 (BasicSR draws a random seed when it is missing).
* ``--set a.b.c=value`` (BasicSR: ``--force_yml a:b:c=value``, also accepted) parses the value as YAML and may
  set any key of the schema, present in the file or not; an unknown key is an error.
* Numbers written without a dot (``lr: 4e-4``, which YAML 1.1 reads as a string; BasicSR writes
  ``!!float 4e-4``) are accepted where a number is expected; integer keys accept integral floats (``5e3``).
* Relative paths (data roots, meta files, ``path.pretrain_network_g``) are relative to the current working
  directory, as in BasicSR (run from the repository root), unless ``load_options(..., base_dir=...)`` is given.
* ``path.resume_state`` must stay ``~``: resume with ``edvr train --output DIR --resume``. Output folders
  (``path.experiments_root`` ...) come from ``--output`` and are ignored.

Project extensions (all off by default): ``train.grad_clip`` (max gradient norm), ``train.amp`` (``bf16`` or
``fp16`` autocast, CUDA only) and ``train.guard`` (divergence guard: on a non-finite loss or DCN offsets beyond
``offset_limit`` pixels, reload the last good state and scale the learning rate by ``lr_factor``, at most
``max_retries`` times). ``configs/train_EDVR_tiny_embedded.yml`` documents them.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import atomic_write_text

__all__ = ["OptionsError", "load_options", "apply_overrides", "validate_options", "dump_options",
           "options_fingerprint", "SCHEMA", "IGNORED", "MOVED"]


class OptionsError(EDVRError):
    """A bad option file or ``--set`` override. The one-line message names the key, the value and the fix."""


# ----------------------------------------------------------------------------------------------------------------
# Schema vocabulary: a leaf is (kind, default, check); a dict is a section; Variants, MapOf and OptionalSection
# wrap sections. Only what the trainer implements is accepted (one more optimizer or loss is one more case here).

REQUIRED = object()  # default of a key the file must give

KINDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string", "path": "a path",
         "ints": "a list of integers", "floats": "a list of numbers", "gpus": "'auto' or an integer >= 0",
         "none": "~ (resume with `edvr train --output DIR --resume` instead)"}


class Check:
    """A rule on a (non-null) value, with the words used in error messages."""

    def __init__(self, desc: str, ok: Callable[[Any], bool]):
        self.desc, self.ok = desc, ok


def at_least(lo) -> Check:
    return Check(f">= {lo}", lambda v: v >= lo)


def above(lo) -> Check:
    return Check(f"> {lo}", lambda v: v > lo)


def one_of(*values) -> Check:
    return Check("(one of " + ", ".join(repr(v) for v in values) + ")", lambda v: v in values)


def each(check: Check) -> Check:
    return Check(f"(non-empty, each {check.desc})", lambda v: len(v) > 0 and all(check.ok(x) for x in v))


ODD = Check(">= 1 and odd", lambda v: v >= 1 and v % 2 == 1)
UNIT = Check("in [0, 1)", lambda v: 0 <= v < 1)
OPEN_UNIT = Check("in (0, 1)", lambda v: 0 < v < 1)
BETAS = Check("(two values, each in [0, 1))", lambda v: len(v) == 2 and all(0 <= b < 1 for b in v))


class Variants:
    """A section whose keys depend on its ``type`` (optimizer, scheduler, loss, dataset, metric)."""

    def __init__(self, cases: dict[str, dict], default: str | None = None):
        self.cases, self.default = cases, default


class MapOf:
    """A mapping from free names to sections of one schema (``val.metrics.<name>``)."""

    def __init__(self, inner: Variants, default: dict):
        self.inner, self.default = inner, default


class OptionalSection:
    """A section that may be absent or ``~`` (resolved to ``None``)."""

    def __init__(self, inner: dict):
        self.inner = inner


R = REQUIRED
_IO_BACKEND = {"type": ("str", "disk", one_of("disk", "lmdb"))}
_TRAIN_SET = {
    "name": ("str", "train", None),
    "dataroot_gt": ("path", R, None),
    "dataroot_lq": ("path", R, None),
    "meta_info_file": ("path?", None, None),
    "io_backend": _IO_BACKEND,
    "num_frame": ("int", 5, ODD),
    "gt_size": ("int", 256, above(0)),
    "random_reverse": ("bool", False, None),
    "use_hflip": ("bool", True, None),
    "use_rot": ("bool", True, None),
    # data loader
    "use_shuffle": ("bool", True, None),
    "num_worker_per_gpu": ("int", 3, at_least(0)),
    "batch_size_per_gpu": ("int", 4, at_least(1)),
    "dataset_enlarge_ratio": ("int", 1, at_least(1)),
    "prefetch_mode": ("str?", None, one_of("cpu", "cuda")),
    # filled in by BasicSR's parser; accepted so that its dumped options load
    "phase": ("str", "train", one_of("train")),
    "scale": ("int", 4, one_of(4)),
}
_VAL_SET = {
    "name": ("str", "val", None),
    "type": ("str", "VideoTestDataset", one_of("VideoTestDataset")),
    "dataroot_gt": ("path", R, None),
    "dataroot_lq": ("path", R, None),
    "meta_info_file": ("path?", None, None),
    "io_backend": _IO_BACKEND,
    "cache_data": ("bool", False, None),
    "num_frame": ("int", 5, ODD),
    "padding": ("str", "reflection_circle", one_of("reflection_circle", "replicate", "reflection", "circle")),
    "phase": ("str", "val", one_of("val")),
    "scale": ("int", 4, one_of(4)),
}
_OPTIM = {"lr": ("float", 4e-4, above(0)), "weight_decay": ("float", 0.0, at_least(0)),
          "betas": ("floats", [0.9, 0.99], BETAS)}
_METRIC = {"crop_border": ("int", 0, at_least(0)), "test_y_channel": ("bool", False, None)}
_PROB = Check("in [0, 1]", lambda v: 0 <= v <= 1)

SCHEMA: dict = {
    "name": ("str", R, None),
    "model_type": ("str", "EDVRModel", one_of("EDVRModel")),
    "scale": ("int", 4, one_of(4)),
    "num_gpu": ("gpus", "auto", None),  # 'auto' is resolved by the trainer
    "manual_seed": ("int", 10, at_least(0)),
    "datasets": {
        "train": Variants({
            "REDSDataset": {**_TRAIN_SET, "val_partition": ("str?", "REDS4", one_of("REDS4", "official")),
                            "interval_list": ("ints", [1], each(at_least(1)))},
            "Vimeo90KDataset": {**_TRAIN_SET, "num_frame": ("int", 7, ODD)},
            "MotionWindowDataset": {  # LR rendered from GT frames: no dataroot_lq, no flips (random motion)
                **{k: v for k, v in _TRAIN_SET.items() if k not in ("dataroot_lq", "random_reverse", "use_hflip",
                                                                    "use_rot")},
                "meta_info_file": ("path", R, None),  # the training clips (a folder scan finds held-out ones)
                "gt_size": ("int", 128, above(0)),
                "max_shift": ("float", 4.0, above(0.1)),
                "static_prob": ("float", 0.1, _PROB),
                "affine_prob": ("float", 0.3, _PROB),
                "occlusion_prob": ("float", 0.2, _PROB),
                "bbb_mix": ("float", 0.0, _PROB),
                "interval_list": ("ints", [1], each(at_least(1))),
                "length": ("int", 1000, at_least(1)),
                "spoil_prob": ("float", 0.0, _PROB),  # one neighbour spoilt (noise / occlusion / unrelated frame)
            },
        }),
        "val": OptionalSection(_VAL_SET),  # absent or ~: no validation
    },
    "network_g": {  # keyword arguments of edvr_lib.archs.EDVR (plus `type`)
        "type": ("str", R, one_of("EDVR")),
        "num_in_ch": ("int", 3, at_least(1)),
        "num_out_ch": ("int", 3, at_least(1)),
        "num_feat": ("int", 64, at_least(1)),
        "num_frame": ("int", 5, ODD),
        "deformable_groups": ("int", 8, at_least(1)),
        "num_extract_block": ("int", 5, at_least(0)),
        "num_reconstruct_block": ("int", 10, at_least(0)),
        "center_frame_idx": ("int?", None, at_least(0)),
        "hr_in": ("bool", False, None),
        "with_predeblur": ("bool", False, None),
        "with_tsa": ("bool", True, None),
    },
    "path": {
        "pretrain_network_g": ("path?", None, None),
        "strict_load_g": ("bool", True, None),
        "param_key_g": ("str", "params", None),
        "resume_state": ("none", None, None),
    },
    "train": {
        "ema_decay": ("float", 0.0, UNIT),  # 0: no EMA
        "optim_g": Variants({"Adam": _OPTIM}, default="Adam"),
        "scheduler": Variants({
            "CosineAnnealingRestartLR": {"periods": ("ints", R, each(above(0))),
                                         "restart_weights": ("floats?", None, each(at_least(0))),  # ~: all 1
                                         "eta_min": ("float", 0.0, at_least(0))},
            "MultiStepRestartLR": {"milestones": ("ints", R, each(above(0))), "gamma": ("float", 0.1, above(0)),
                                   "restarts": ("ints", [0], each(at_least(0))),
                                   "restart_weights": ("floats", [1.0], each(at_least(0)))},
        }),
        "total_iter": ("int", R, at_least(1)),
        "warmup_iter": ("int", -1, at_least(-1)),  # -1: no warm-up
        "tsa_iter": ("int", 0, at_least(0)),  # 0: no TSA-only stage
        "dcn_lr_mul": ("float", 1.0, above(0)),
        "pixel_opt": Variants({"CharbonnierLoss": {"loss_weight": ("float", 1.0, above(0)),
                                                   "reduction": ("str", "mean", one_of("mean", "sum")),
                                                   "eps": ("float", 1e-12, above(0))}}, default="CharbonnierLoss"),
        # offset fidelity (Chan et al. 2021): PCD offsets pulled towards the data's true flow; ~ = off
        "offset_opt": OptionalSection({"type": ("str", "OffsetFidelityLoss", one_of("OffsetFidelityLoss")),
                                       "loss_weight": ("float", 1.0, above(0)),
                                       "threshold": ("float", 0.5, at_least(0)),  # px of each pyramid level
                                       "eps": ("float", 1e-6, above(0)),
                                       "full_until": ("int?", None, at_least(0)),  # full weight until here,
                                       "zero_at": ("int?", None, at_least(1))}),  # then linear to 0 (~: never)
        # project extensions, off by default
        "grad_clip": ("float?", None, above(0)),  # max gradient norm
        "amp": ("str?", None, one_of("bf16", "fp16")),  # CUDA only
        "guard": {"enabled": ("bool", False, None), "max_retries": ("int", 3, at_least(0)),
                  "lr_factor": ("float", 0.5, OPEN_UNIT), "offset_limit": ("float", 50.0, above(0))},
    },
    "val": OptionalSection({  # used only with datasets.val
        "val_freq": ("int", 5000, at_least(1)),
        "save_img": ("bool", False, None),
        "metrics": MapOf(Variants({"calculate_psnr": _METRIC, "calculate_ssim": _METRIC}),
                         default={"psnr": {"type": "calculate_psnr"}}),
    }),
    "logger": {
        "print_freq": ("int", 100, at_least(1)),
        "save_checkpoint_freq": ("int", 5000, at_least(1)),
        "use_tb_logger": ("bool", False, None),
    },
}

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
DEFAULT_NOTES = {"manual_seed": "manual_seed not set: using 10 (BasicSR would draw a random seed)"}
_PATH_KEYS = ("datasets.train.dataroot_gt", "datasets.train.dataroot_lq", "datasets.train.meta_info_file",
              "datasets.val.dataroot_gt", "datasets.val.dataroot_lq", "datasets.val.meta_info_file",
              "path.pretrain_network_g")
# What a resume may not change: everything under network_g and train, the training set minus where it lives and
# how it is loaded, the scale and the seed.
_FINGERPRINT_SKIP = {"name", "dataroot_gt", "dataroot_lq", "meta_info_file", "io_backend", "num_worker_per_gpu",
                     "prefetch_mode", "phase"}


# ----------------------------------------------------------------------------------------------------------------
# Errors


def _short(value: Any) -> str:
    text = "~" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(key: str, value: Any, expected: str, fix: str | None = None) -> None:
    fix = fix or f"change it in the file or with --set {key}=VALUE"
    raise OptionsError(f"{key} = {_short(value)} is not valid: expected {expected}. Fix: {fix}")


def _missing(key: str, expected: str) -> None:
    raise OptionsError(f"missing option {key} ({expected}). Fix: add it to the file or pass --set {key}=VALUE")


def _all_paths(node: Any = SCHEMA, prefix: str = "") -> list[str]:
    """Every valid dotted key of the schema (variant keys merged, ``<name>`` for free names)."""
    if isinstance(node, OptionalSection):
        return _all_paths(node.inner, prefix)
    if isinstance(node, MapOf):
        return [prefix] + _all_paths(node.inner, f"{prefix}.<name>")
    if isinstance(node, Variants):
        node = _merged(node)
    if not isinstance(node, dict):
        return [prefix]
    out = [prefix] if prefix else []
    for key, sub in node.items():
        out += _all_paths(sub, f"{prefix}.{key}" if prefix else key)
    return out


def _merged(variants: Variants) -> dict:
    """The keys of every case of ``variants`` in one section (to look keys up)."""
    merged = {"type": ("str", R, one_of(*variants.cases))}
    for case in variants.cases.values():
        merged.update(case)
    return merged


def _unknown(key: str, siblings: Sequence[str]) -> None:
    """Raise for an unknown key, naming the nearest valid one (a sibling first, else any key with a close name)."""
    parent, _, leaf = key.rpartition(".")
    near = difflib.get_close_matches(leaf, list(siblings), n=1, cutoff=0.6)
    if near:
        suggestion = f"{parent}.{near[0]}" if parent else near[0]
    else:
        paths = [p for p in _all_paths() + list(IGNORED) + list(MOVED) if "<name>" not in p]
        leaves = {p.rpartition(".")[2]: p for p in reversed(paths)}
        near = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
        suggestion = leaves[near[0]] if near else (difflib.get_close_matches(key, paths, n=1, cutoff=0.6) or [None])[0]
    if suggestion and suggestion != key:
        raise OptionsError(f"unknown option {key}; nearest valid key: {suggestion}. Fix: rename it to {suggestion} "
                           "or remove it")
    raise OptionsError(f"unknown option {key}. Fix: remove it (valid keys here: {', '.join(siblings)})")


# ----------------------------------------------------------------------------------------------------------------
# Resolution: raw nested dict -> resolved nested dict (+ notes)


def _coerce(kind: str, value: Any, key: str, check: Check | None) -> Any:
    base, nullable = kind.rstrip("?"), kind.endswith("?")
    expected = KINDS[base] + (f" {check.desc}" if check else "") + (" or ~" if nullable else "")
    if value is None:
        if not (nullable or base == "none"):
            _fail(key, value, expected)
        return None
    number = (int, float)

    def as_float(v):
        if isinstance(v, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", v):
            v = float(v)  # `4e-4` without `!!float`: YAML 1.1 reads it as a string
        if isinstance(v, bool) or not isinstance(v, number) or not math.isfinite(v):
            raise TypeError
        return float(v)

    def as_int(v):
        if isinstance(v, float) and v.is_integer():
            v = int(v)  # `!!float 5e3`
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError
        return v

    given = value
    try:
        if base == "int":
            value = as_int(value)
        elif base == "float":
            value = as_float(value)
        elif base == "bool" and not isinstance(value, bool):
            raise TypeError
        elif base in ("str", "path"):
            if base == "path" and isinstance(value, os.PathLike):
                value = os.fspath(value)
            if not isinstance(value, str) or not value:
                raise TypeError
            value = os.path.expanduser(value) if base == "path" else value
        elif base in ("ints", "floats"):
            if not isinstance(value, (list, tuple)):
                raise TypeError
            value = [as_int(v) if base == "ints" else as_float(v) for v in value]
        elif base == "none":
            raise TypeError
        elif base == "gpus" and value != "auto":
            value = as_int(value)
            if value < 0:
                raise TypeError
    except (TypeError, ValueError):
        _fail(key, given, expected)
    if check is not None and not check.ok(value):
        _fail(key, given, expected)
    return value


def _section(raw: Any, schema: dict, path: str, notes: list[str]) -> dict:
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        _fail(path, raw, "a mapping of options (key: value lines)")
    out = {}
    for key in raw:
        full = f"{path}.{key}" if path else str(key)
        if full in IGNORED:
            notes.append(f"ignored: {full} ({IGNORED[full]})")
        elif key not in schema:
            _unknown(full, list(schema) + [p.rpartition(".")[2] for p in IGNORED if p.rpartition(".")[0] == path])
    for key, spec in schema.items():
        full = f"{path}.{key}" if path else key
        out[key] = _resolve(raw.get(key), key in raw, spec, full, notes)
    return out


def _resolve(value: Any, given: bool, spec: Any, key: str, notes: list[str]) -> Any:
    if isinstance(spec, dict):
        return _section(value, spec, key, notes)
    if isinstance(spec, OptionalSection):
        return None if value is None else _section(value, spec.inner, key, notes)
    if isinstance(spec, MapOf):
        value = copy.deepcopy(spec.default) if value is None else value
        if not isinstance(value, dict) or not value:
            _fail(key, value, "a mapping of names to entries with a `type` (at least one)")
        return {str(name): _resolve(entry, True, spec.inner, f"{key}.{name}", notes) for name, entry in value.items()}
    if isinstance(spec, Variants):
        if value is None and spec.default is None:
            _missing(key, "a section with a `type`")
        value = {} if value is None else value
        if not isinstance(value, dict):
            _fail(key, value, "a mapping of options with a `type`")
        kind = value.get("type", spec.default)
        if kind is None:
            _missing(f"{key}.type", f"one of {', '.join(spec.cases)}")
        if kind not in spec.cases:
            _fail(f"{key}.type", kind, f"one of {', '.join(spec.cases)}")
        rest = {k: v for k, v in value.items() if k != "type"}
        for name, case in spec.cases.items():
            stray = [k for k in rest if k not in spec.cases[kind] and k in case]
            if stray:
                raise OptionsError(f"{key}.{stray[0]} is an option of {key}.type {name}, not of {kind}. Fix: set "
                                   f"{key}.type to {name} or remove {stray[0]}")
        return {"type": kind, **_section(rest, spec.cases[kind], key, notes)}
    kind, default, check = spec
    if given:
        return _coerce(kind, value, key, check)
    if default is REQUIRED:
        _missing(key, KINDS[kind.rstrip("?")] + (f" {check.desc}" if check else ""))
    if key in DEFAULT_NOTES:
        notes.append(DEFAULT_NOTES[key])
    return copy.deepcopy(default)


def _get(tree: dict, dotted: str) -> tuple[dict | None, str]:
    """The dict holding ``dotted``'s last part (None if a parent is missing) and that part."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
    return (tree if isinstance(tree, dict) else None), leaf


def _move_old_keys(raw: dict, notes: list[str]) -> None:
    """Move keys from their old or mistaken place (``MOVED``) to where they belong, in place."""
    for old, (new, why) in MOVED.items():
        holder, leaf = _get(raw, old)
        if holder is None or leaf not in holder:
            continue
        *parents, new_leaf = new.split(".")
        target = raw
        for part in parents:  # create the parent section if it is missing (e.g. no `train:` yet)
            if target.get(part) is None:
                target[part] = {}
            target = target[part]
            if not isinstance(target, dict):
                break
        if not isinstance(target, dict):  # a malformed section: left for the resolver to report
            continue
        value = holder.pop(leaf)
        if new_leaf in target and target[new_leaf] != value:
            notes.append(f"dropped {old} = {_short(value)}: {new} = {_short(target[new_leaf])} is set ({why})")
        else:
            target[new_leaf] = value
            notes.append(f"moved {old} to {new} ({why})")


def _cross_checks(opt: dict, notes: list[str]) -> None:
    """Rules that involve more than one key (BasicSR finds most of these only when training starts)."""
    net, tr, sets, scale = opt["network_g"], opt["train"], opt["datasets"], opt["scale"]
    if net["num_feat"] % net["deformable_groups"]:
        _fail("network_g.num_feat", net["num_feat"], f"a multiple of network_g.deformable_groups "
                                                     f"({net['deformable_groups']})")
    if net["num_out_ch"] != net["num_in_ch"]:
        _fail("network_g.num_out_ch", net["num_out_ch"], f"network_g.num_in_ch ({net['num_in_ch']}): EDVR adds "
                                                         "its output to the input centre frame")
    if net["center_frame_idx"] is not None and net["center_frame_idx"] >= net["num_frame"]:
        _fail("network_g.center_frame_idx", net["center_frame_idx"], f"~ or < network_g.num_frame ({net['num_frame']})")
    if net["hr_in"]:
        _fail("network_g.hr_in", True, "false: hr_in is for deblurring (LQ at GT size); x4 SR data has GT/4 LQ")
    for phase in ("train", "val"):
        if sets[phase] is not None and sets[phase]["num_frame"] != net["num_frame"]:
            _fail(f"datasets.{phase}.num_frame", sets[phase]["num_frame"],
                  f"network_g.num_frame ({net['num_frame']})")
    if sets["train"]["gt_size"] % (4 * scale):
        _fail("datasets.train.gt_size", sets["train"]["gt_size"], f"a multiple of {4 * scale} (scale {scale} times 4, "
                                                                  "for PCD's 3-level pyramid on the LQ patch)")
    if sets["train"]["prefetch_mode"] is not None:
        notes.append(f"ignored: datasets.train.prefetch_mode = {sets['train']['prefetch_mode']!r} (the trainer uses a "
                     "plain DataLoader)")
    sched, total = tr["scheduler"], tr["total_iter"]
    if sched["type"] == "CosineAnnealingRestartLR":
        if sched["restart_weights"] is None:
            sched["restart_weights"] = [1.0] * len(sched["periods"])
        if len(sched["restart_weights"]) != len(sched["periods"]):
            _fail("train.scheduler.restart_weights", sched["restart_weights"],
                  f"{len(sched['periods'])} values, one per period")
        if sum(sched["periods"]) < total:  # BasicSR's scheduler fails once it runs past the last period
            _fail("train.total_iter", total, f"<= sum(train.scheduler.periods) = {sum(sched['periods'])}",
                  "lengthen the periods or shorten total_iter")
    elif len(sched["restart_weights"]) != len(sched["restarts"]):
        _fail("train.scheduler.restart_weights", sched["restart_weights"], f"{len(sched['restarts'])} values, one "
                                                                           "per entry of train.scheduler.restarts")
    if tr["tsa_iter"] and not net["with_tsa"]:
        _fail("train.tsa_iter", tr["tsa_iter"], "0 when network_g.with_tsa is false (the TSA-only stage trains TSA)")
    if tr["tsa_iter"] >= total:
        _fail("train.tsa_iter", tr["tsa_iter"], f"< train.total_iter ({total})")
    if tr["warmup_iter"] >= total:
        _fail("train.warmup_iter", tr["warmup_iter"], f"-1 or < train.total_iter ({total})")
    off = tr["offset_opt"]
    if off is not None:
        if sets["train"].get("type") != "MotionWindowDataset":
            _fail("train.offset_opt.type", off["type"], f"no offset_opt with datasets.train.type "
                  f"{sets['train'].get('type')} (it returns no flow)",
                  "use datasets.train.type MotionWindowDataset, whose windows carry their true flow")
        if off["zero_at"] is not None and off["zero_at"] <= (off["full_until"] or 0):
            _fail("train.offset_opt.zero_at", off["zero_at"], f"> train.offset_opt.full_until ({off['full_until']})")
    if sets["val"] is None and opt["val"] is not None:
        notes.append("ignored: val (no datasets.val, so no validation)")
        opt["val"] = None
    elif sets["val"] is not None and opt["val"] is None:
        opt["val"] = _section({}, SCHEMA["val"].inner, "val", notes)


def _resolve_all(raw: Any) -> tuple[dict, list[str]]:
    if not isinstance(raw, dict):
        _fail("(top level)", raw, "a mapping of options such as `name:`, `network_g:`, `train:`")
    notes: list[str] = []
    raw = copy.deepcopy(raw)
    _move_old_keys(raw, notes)
    opt = _section(raw, SCHEMA, "", notes)
    _cross_checks(opt, notes)
    return opt, notes


# ----------------------------------------------------------------------------------------------------------------
# Public API


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (PyYAML, and so BasicSR, keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise OptionsError(f"cannot read {path}: {problem}{where}. Fix: correct the YAML there") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptionsError(f"cannot read {path} ({err}). Fix: pass a readable UTF-8 YAML file") from None


def _schema_node(parts: list[str], item: str) -> Any:
    """The schema entry at ``parts`` (``None`` for an ignored key); raises OptionsError for an unknown key."""
    node: Any = SCHEMA
    for i, part in enumerate(parts):
        done = ".".join(parts[:i + 1])
        if done in IGNORED:
            return None
        while isinstance(node, OptionalSection):
            node = node.inner
        if isinstance(node, MapOf):
            node = node.inner
            continue
        if isinstance(node, Variants):
            node = _merged(node)
        if not isinstance(node, dict) or part not in node:
            try:
                _unknown(done, list(node) if isinstance(node, dict) else [])
            except OptionsError as err:
                raise OptionsError(f"--set {item}: {err}") from None
        node = node[part]
    return node


def apply_overrides(opt: dict, overrides: Sequence[str]) -> dict:
    """Apply ``--set`` overrides to a copy of ``opt`` (raw or resolved).

    Args:
        opt: nested options.
        overrides: items ``'a.b.c=value'`` (``':'`` also separates keys, as in BasicSR's ``--force_yml``); the
            value is parsed as YAML: ``1e-4``, ``[50000, 100000]``, ``~`` / ``null``, ``true``, ``{type: L1Loss}``.
            Any key of the schema may be set, whether or not ``opt`` has it; old key names are moved to the
            new ones.

    Returns:
        The new nested dict (``opt`` is not modified). Values are checked by :func:`load_options` /
        :func:`validate_options`, not here (a string that reads as a number becomes a number where one is
        expected).

    Raises:
        OptionsError: malformed item, YAML that does not parse, or a key that is not an option (with the
            nearest valid key).
    """
    out = copy.deepcopy(opt) if opt is not None else {}
    for item in overrides:
        key, sep, text = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise OptionsError(f"--set {item!r}: expected KEY=VALUE. Fix: write it like train.optim_g.lr=2e-4")
        key = ".".join(p.strip() for p in re.split(r"[.:]", key))
        key = MOVED.get(key, (key,))[0]
        parts = key.split(".")
        try:
            value = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            raise OptionsError(f"--set {item}: the value {text!r} is not valid YAML. Fix: quote it or correct "
                               "the brackets") from None
        spec = _schema_node(parts, item)
        if isinstance(spec, tuple) and spec[0].rstrip("?") == "float" and isinstance(value, str):
            try:
                value = float(value)  # `1e-4` reads as a string in YAML 1.1
            except ValueError:
                pass
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def validate_options(opt: dict) -> None:
    """Check nested options (raw, or resolved and then changed) against the schema and the cross-field rules.

    Raises:
        OptionsError: the first problem, on one line naming the key, the value and the fix.
    """
    _resolve_all(opt)


def load_options(path: str | os.PathLike, overrides: Sequence[str] = (), *,
                 base_dir: str | os.PathLike | None = None) -> tuple[dict, list[str]]:
    """Read an option file, apply ``--set`` overrides, check everything and fill every default.

    Args:
        path: YAML option file with BasicSR's names (``configs/train_EDVR_*.yml``).
        overrides: ``'a.b.c=value'`` items, see :func:`apply_overrides`.
        base_dir: folder that relative paths (data roots, meta files, ``path.pretrain_network_g``) are
            relative to; ``None`` (default) leaves them relative to the current working directory, as BasicSR
            does (run from the repository root).

    Returns:
        ``(opt, notes)``: the resolved nested dict (every key of :data:`SCHEMA` present; ``datasets.val`` and
        ``val`` are ``None`` when there is no validation) and human-readable notes (ignored, moved or defaulted
        keys).

    Raises:
        OptionsError: missing or unreadable file, bad YAML, unknown key, wrong type or value, inconsistent keys.
    """
    path = Path(path)
    if not path.is_file():
        raise OptionsError(f"option file not found: {path}. Fix: pass an existing YAML file, e.g. "
                           "configs/train_EDVR_tiny_embedded.yml")
    raw = apply_overrides(_read_yaml(path) or {}, overrides)
    try:
        opt, notes = _resolve_all(raw)
    except OptionsError as err:
        raise OptionsError(f"{path}: {err}") from None
    if base_dir is not None:
        for dotted in _PATH_KEYS:
            holder, leaf = _get(opt, dotted)
            if holder is not None and holder.get(leaf) is not None and not os.path.isabs(holder[leaf]):
                holder[leaf] = os.path.join(os.fspath(base_dir), holder[leaf])
    return opt, notes


def dump_options(opt: dict, path: str | os.PathLike) -> Path:
    """Write options as YAML, atomically; :func:`load_options` reads the file back to the same dict.

    Args:
        opt: resolved options (from :func:`load_options`).
        path: destination file.

    Returns:
        The path written.
    """
    resolved, _ = _resolve_all(opt)
    text = ("# Resolved options (every default filled), written by edvr_lib.train.options.dump_options.\n"
            "# Load with edvr_lib.train.options.load_options; relative paths are relative to the working folder.\n"
            + yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None, allow_unicode=True, width=120))
    path = Path(path)
    atomic_write_text(path, text)
    return path


def options_fingerprint(opt: dict) -> str:
    """SHA-256 (hex) of the options that define a training run, to refuse resuming from another config.

    Covers ``network_g``, ``train``, ``datasets.train`` without where the data lives or how it is loaded
    (data roots, meta file, io backend, workers, prefetch, name), ``scale`` and ``manual_seed``. Raw and
    resolved options of the same file give the same fingerprint (defaults are filled first).
    """
    resolved, _ = _resolve_all(opt)
    payload = {"scale": resolved["scale"], "manual_seed": resolved["manual_seed"],
               "network_g": resolved["network_g"], "train": resolved["train"],
               "datasets.train": {k: v for k, v in resolved["datasets"]["train"].items()
                                  if k not in _FINGERPRINT_SKIP}}
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()
