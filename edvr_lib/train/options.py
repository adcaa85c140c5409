"""Option files of ``edvr train``: BasicSR's names and structure, checked by one typed schema (pydantic).

``edvr train --config FILE --output DIR [--set key.sub=value ...] [--resume]`` reads a YAML file laid out like
BasicSR 1.4.2's ``options/train/EDVR/*.yml`` (the four official EDVR files load unchanged, see
``configs/train_EDVR_*_REDS*.yml``). :func:`load_options` returns the *resolved* options, an :class:`Options`
(``opt.train.total_iter``; every default filled, ranges and cross-field rules checked; ``opt.to_dict()`` is the
plain nested dict written to ``options.yml`` and checkpoints), plus notes about what was ignored, moved or
defaulted. Every problem is one line naming the key, the value and the fix.

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
* Relative paths (every field typed :data:`PathStr`) are relative to the current working directory, as in
  BasicSR (run from the repository root), unless ``load_options(..., base_dir=...)`` is given.
* ``path.resume_state`` must stay ``~``: resume with ``edvr train --output DIR --resume``. Output folders
  (``path.experiments_root`` ...) come from ``--output`` and are ignored.

Project extensions (all off by default): ``train.grad_clip`` (max gradient norm), ``train.amp`` (``bf16`` or
``fp16`` autocast, CUDA only), ``train.guard`` (divergence guard: on a non-finite loss or DCN offsets beyond
``offset_limit`` pixels, reload the last good state and scale the learning rate by ``lr_factor``, at most
``max_retries`` times) and ``train.offset_opt`` (offset fidelity). ``configs/train_EDVR_tiny_embedded.yml``
documents them.
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag,
                      ValidationError, create_model, model_validator)

from edvr_lib.archs.config import EDVRConfig
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import atomic_write_text

__all__ = ["OptionsError", "Options", "Section", "load_options", "read_options", "apply_overrides",
           "validate_options", "dump_options", "options_fingerprint", "IGNORED", "MOVED"]


class OptionsError(EDVRError):
    """A bad option file or ``--set`` override. The one-line message names the key, the value and the fix."""


# ----------------------------------------------------------------------------------------------------------------
# Value types. Each carries the words that error messages use for it (Kind); ranges are Field constraints.


@dataclasses.dataclass(frozen=True)
class Kind:
    """What a value must be, in the words of error messages (``'an integer'``)."""

    words: str


def _integral(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v  # `!!float 5e3`


def _number(v):  # `4e-4` without `!!float`: YAML 1.1 reads it as a string
    if isinstance(v, str) and re.fullmatch(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", v):
        return float(v)
    return v


def _path(v):
    v = os.fspath(v) if isinstance(v, os.PathLike) else v
    return os.path.expanduser(v) if isinstance(v, str) else v


def rule(words: str, ok) -> AfterValidator:
    """A check beyond a range (``odd``), with its words for error messages."""
    def check(v):
        if not ok(v):
            raise ValueError(words)
        return v
    check.words = words
    return AfterValidator(check)


Int = Annotated[int, BeforeValidator(_integral), Kind("an integer")]
Float = Annotated[float, BeforeValidator(_number), Kind("a number")]
Bool = Annotated[bool, Kind("true or false")]
Str = Annotated[str, Field(min_length=1), Kind("a string")]
PathStr = Annotated[str, BeforeValidator(_path), Field(min_length=1), Kind("a path")]
Odd = Annotated[Int, Field(ge=1), rule("odd", lambda v: v % 2 == 1)]
Prob = Annotated[Float, Field(ge=0, le=1)]


def ints(**item) -> Any:
    """A non-empty list of integers, each within ``item``'s range."""
    return Annotated[list[Annotated[Int, Field(**item)]], Field(min_length=1), Kind("a list of integers")]


def floats(**item) -> Any:
    """A non-empty list of numbers, each within ``item``'s range."""
    return Annotated[list[Annotated[Float, Field(**item)]], Field(min_length=1), Kind("a list of numbers")]


def one_of(*values) -> Any:
    return Annotated[Literal[values], Kind("a string" if isinstance(values[0], str) else "an integer")]


class Section(BaseModel):
    """A mapping of options: unknown keys refused, types strict, defaults checked too."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _none_is_empty(cls, value):  # `train: ~` reads as `train: {}`
        return {} if value is None else value

    def to_dict(self) -> dict:
        """The plain nested dict (what ``options.yml`` and checkpoints hold)."""
        return self.model_dump()


def variants(*cases: type[Section], default: str | None = None) -> Any:
    """A section whose keys depend on its ``type`` (``default`` when the file gives none)."""
    def tag(v):
        return v.get("type", default) if isinstance(v, dict) else default if v is None else getattr(v, "type", None)
    return Annotated[Union[tuple(Annotated[c, Tag(_tag(c))] for c in cases)], Discriminator(tag)]


def _tag(case: type[Section]) -> str:
    return typing.get_args(case.model_fields["type"].annotation)[0]


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


_NET_RULES = {"num_frame": Odd, "center_frame_idx": Annotated[Int, Field(ge=0)],
              "num_extract_block": Annotated[Int, Field(ge=0)], "num_reconstruct_block": Annotated[Int, Field(ge=0)]}


def _network_field(f: dataclasses.Field) -> tuple[Any, Any]:
    hint = typing.get_type_hints(EDVRConfig)[f.name]
    if hint is bool:
        return Bool, f.default
    if hint is int:
        return _NET_RULES.get(f.name, Annotated[Int, Field(ge=1)]), f.default
    return Optional[_NET_RULES[f.name]], f.default  # int | None


#: ``network_g``: ``type: EDVR`` plus the fields of :class:`EDVRConfig`, with its defaults
NetworkG = create_model("NetworkG", __base__=Section, type=(one_of("EDVR"), ...),
                        **{f.name: _network_field(f) for f in dataclasses.fields(EDVRConfig)})


class PathOptions(Section):
    pretrain_network_g: Optional[PathStr] = None
    strict_load_g: Bool = True
    param_key_g: Str = "params"
    resume_state: None = Field(None, description="~ (resume with `edvr train --output DIR --resume` instead)")


class Adam(Section):
    type: Literal["Adam"] = "Adam"
    lr: Annotated[Float, Field(gt=0)] = 4e-4
    weight_decay: Annotated[Float, Field(ge=0)] = 0.0
    betas: Annotated[list[Annotated[Float, Field(ge=0, lt=1)]], Field(min_length=2, max_length=2),
                     Kind("a list of numbers")] = [0.9, 0.99]


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
    amp: Optional[one_of("bf16", "fp16")] = None  # CUDA only
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
# What a resume may not change: everything under network_g and train, the training set minus where it lives and
# how it is loaded, the scale and the seed.
_FINGERPRINT_SKIP = {"name", "dataroot_gt", "dataroot_lq", "meta_info_file", "io_backend", "num_worker_per_gpu",
                     "prefetch_mode", "phase"}


# ----------------------------------------------------------------------------------------------------------------
# Reading the schema: dotted keys, what a key expects


def _strip(ann) -> tuple[Any, bool]:
    """``ann`` without ``Optional`` and whether it had one."""
    args = typing.get_args(ann)
    if typing.get_origin(ann) in (Union, types.UnionType) and type(None) in args:
        rest = tuple(a for a in args if a is not type(None))
        return (rest[0] if len(rest) == 1 else Union[rest]), True
    return ann, False


def _unwrap(ann, meta: Sequence = ()) -> tuple[Any, list]:
    """``ann`` without ``Annotated`` and every constraint and marker it carried (Field constraints flattened)."""
    meta = list(meta)
    while typing.get_origin(ann) is Annotated:
        ann, *more = typing.get_args(ann)
        meta = more + meta
    return ann, [c for m in meta for c in (m.metadata if hasattr(m, "metadata") else [m])]


def _cases(ann) -> list[type[Section]]:
    """The sections ``ann`` holds: one, the cases of a :func:`variants` union, or none (a leaf)."""
    ann = _unwrap(_strip(ann)[0])[0]
    if typing.get_origin(ann) is Union:
        return [c for a in typing.get_args(ann) for c in _cases(a)]
    return [ann] if isinstance(ann, type) and issubclass(ann, Section) else []


def _entries(ann) -> Any:
    """The entries' annotation of a mapping of free names (``val.metrics.<name>``), else None."""
    ann = _unwrap(_strip(ann)[0])[0]
    return typing.get_args(ann)[1] if typing.get_origin(ann) is dict else None


def _walk(loc: Sequence, root: type[Section] = Options) -> tuple[str, Any, list]:
    """The dotted key, field and sections at ``loc`` (a key path, or a pydantic error location with the tags of
    variants and list indices). Raises OptionsError naming the nearest valid key for an unknown key."""
    cases, union, field, done, free, tagged = [root], [], None, [], False, False
    for item in loc:
        if isinstance(item, int) or not (cases or free):
            break  # inside a list, or a leaf's union branch: the field is the key
        if free:
            done.append(str(item))
            free = False
            continue
        fields = {k: f for c in cases for k, f in c.model_fields.items()}
        tags = {_tag(c): c for c in cases if "type" in c.model_fields}
        if item not in fields and item in tags and not tagged:
            union, cases, tagged = cases, [tags[item]], True
            continue
        if item not in fields:
            _unknown(".".join(done + [str(item)]), list(fields), cases, union)
        field, tagged = fields[item], False
        done.append(item)
        entry = _entries(field.annotation)
        free = entry is not None
        cases, union = _cases(entry if free else field.annotation), []
    return ".".join(done), field, cases


def _all_paths(cases: Sequence[type[Section]] = (Options,), prefix: str = "") -> list[str]:
    """Every valid dotted key (the keys of all variants; ``<name>`` for free names)."""
    out = []
    for case in cases:
        for name, field in case.model_fields.items():
            entry = _entries(field.annotation)
            out += [prefix + name] + _all_paths(_cases(entry if entry is not None else field.annotation),
                                                f"{prefix}{name}{'.<name>' if entry is not None else ''}.")
    return list(dict.fromkeys(out))


def _kind(field) -> str | None:
    """The words of ``field``'s :class:`Kind` (``'a path'``), if it has one."""
    return next((m.words for m in _unwrap(_strip(field.annotation)[0], field.metadata)[1] if isinstance(m, Kind)), None)


def _expected(field) -> str:
    """What ``field`` accepts, in words (``'an integer >= 1 and odd'``, ``'a number > 0 or ~'``)."""
    if field.description:
        return field.description
    ann, nullable = _strip(field.annotation)
    return _words(ann, field.metadata) + (" or ~" if nullable else "")


def _words(ann, meta: Sequence = (), in_list: bool = False) -> str:
    ann, meta = _unwrap(ann, meta)
    cases = _cases(ann)
    if cases:
        return "a section with a `type`" if len(cases) > 1 else "a mapping of options (key: value lines)"
    bounds = {a: getattr(m, a) for m in meta for a in ("ge", "gt", "le", "lt", "min_length", "max_length")
              if hasattr(m, a)}
    low = [f"{'>=' if a == 'ge' else '>'} {bounds[a]}" for a in ("ge", "gt") if a in bounds]
    high = [f"{'<=' if a == 'le' else '<'} {bounds[a]}" for a in ("le", "lt") if a in bounds]
    if low and high:
        rules = [f"in {'[' if 'ge' in bounds else '('}{low[0].split()[1]}, {high[0].split()[1]}"
                 f"{']' if 'le' in bounds else ')'}"]
    else:
        rules = low + high
    rules += [m.func.words for m in meta if hasattr(getattr(m, "func", None), "words")]
    if typing.get_origin(ann) is Literal:
        rules = ["(one of " + ", ".join(repr(v) for v in typing.get_args(ann)) + ")"]
    elif typing.get_origin(ann) is list:
        count = "two values" if bounds.get("min_length") == bounds.get("max_length") == 2 else "non-empty"
        rules = [f"({count}, each {_words(typing.get_args(ann)[0], in_list=True)})"]
    if in_list:
        return " and ".join(rules)
    kind = next((m.words for m in meta if isinstance(m, Kind)), "a value")
    return " ".join([kind, " and ".join(rules)]) if rules else kind


# ----------------------------------------------------------------------------------------------------------------
# Errors


def _short(value: Any) -> str:
    text = "~" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _fail(key: str, value: Any, expected: str, fix: str | None = None) -> typing.NoReturn:
    fix = fix or f"change it in the file or with --set {key}=VALUE"
    raise OptionsError(f"{key} = {_short(value)} is not valid: expected {expected}. Fix: {fix}")


def _missing(key: str, expected: str) -> typing.NoReturn:
    raise OptionsError(f"missing option {key} ({expected}). Fix: add it to the file or pass --set {key}=VALUE")


def _unknown(key: str, siblings: list[str], cases: Sequence[type[Section]] = (),
             union: Sequence[type[Section]] = ()) -> typing.NoReturn:
    """Raise for an unknown key: the variant it belongs to, else the nearest valid key (a sibling first, else any
    key with a close name)."""
    parent, _, leaf = key.rpartition(".")
    for other in union:
        if other is not cases[0] and leaf in other.model_fields:
            raise OptionsError(f"{key} is an option of {parent}.type {_tag(other)}, not of {_tag(cases[0])}. Fix: "
                               f"set {parent}.type to {_tag(other)} or remove {leaf}")
    siblings = siblings + [p.rpartition(".")[2] for p in IGNORED if p.rpartition(".")[0] == parent]
    near = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
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


def _get(tree: Any, dotted: str) -> tuple[dict | None, str]:
    """The dict holding ``dotted``'s last part (None if a parent is missing) and that part."""
    *parents, leaf = dotted.split(".")
    for part in parents:
        tree = tree.get(part) if isinstance(tree, dict) else None
    return (tree if isinstance(tree, dict) else None), leaf


def validate(raw: Any, root: type[Section]) -> Section:
    """``raw`` checked against ``root``; the first problem raised as a one-line :class:`OptionsError`."""
    try:
        return root.model_validate(raw)
    except ValidationError as err:
        first = err.errors()[0]
    key, field, cases = _walk(first["loc"], root)  # an unknown key raises here
    holder, leaf = _get(raw, key)
    value = holder[leaf] if holder is not None and leaf in holder else first.get("input")
    tags = ", ".join(_tag(c) for c in cases if "type" in c.model_fields)
    if first["type"] == "missing":
        _missing(key, _expected(field))
    if first["type"] == "union_tag_invalid":
        _fail(f"{key}.type", value.get("type"), f"one of {tags}")
    if first["type"] == "union_tag_not_found":
        if value is None:
            _missing(key, _expected(field))
        if isinstance(value, dict):
            _missing(f"{key}.type", f"one of {tags}")
        _fail(key, value, "a mapping of options with a `type`")
    _fail(key, value, _expected(field))


# ----------------------------------------------------------------------------------------------------------------
# Resolution: raw nested dict -> Options (+ notes)


def _move_old_keys(raw: dict, notes: list[str]) -> None:
    """Move keys from their old or mistaken place (``MOVED``) to where they belong, and drop the ``IGNORED``."""
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
        if not isinstance(target, dict):  # a malformed section: left for validation to report
            continue
        value = holder.pop(leaf)
        if new_leaf in target and target[new_leaf] != value:
            notes.append(f"dropped {old} = {_short(value)}: {new} = {_short(target[new_leaf])} is set ({why})")
        else:
            target[new_leaf] = value
            notes.append(f"moved {old} to {new} ({why})")
    for key, why in IGNORED.items():
        holder, leaf = _get(raw, key)
        if holder is not None and leaf in holder:
            del holder[leaf]
            notes.append(f"ignored: {key} ({why})")


def _cross_checks(opt: Options, notes: list[str]) -> None:
    """Rules that involve more than one key (BasicSR finds most of these only when training starts)."""
    net, tr, sets, scale = opt.network_g, opt.train, opt.datasets, opt.scale
    if net.num_feat % net.deformable_groups:
        _fail("network_g.num_feat", net.num_feat, f"a multiple of network_g.deformable_groups ({net.deformable_groups})")
    if net.num_out_ch != net.num_in_ch:
        _fail("network_g.num_out_ch", net.num_out_ch, f"network_g.num_in_ch ({net.num_in_ch}): EDVR adds its output "
                                                      "to the input centre frame")
    if net.center_frame_idx is not None and net.center_frame_idx >= net.num_frame:
        _fail("network_g.center_frame_idx", net.center_frame_idx, f"~ or < network_g.num_frame ({net.num_frame})")
    if net.hr_in:
        _fail("network_g.hr_in", True, "false: hr_in is for deblurring (LQ at GT size); x4 SR data has GT/4 LQ")
    for phase in ("train", "val"):
        if getattr(sets, phase) is not None and getattr(sets, phase).num_frame != net.num_frame:
            _fail(f"datasets.{phase}.num_frame", getattr(sets, phase).num_frame, f"network_g.num_frame ({net.num_frame})")
    if sets.train.gt_size % (4 * scale):
        _fail("datasets.train.gt_size", sets.train.gt_size, f"a multiple of {4 * scale} (scale {scale} times 4, for "
                                                            "PCD's 3-level pyramid on the LQ patch)")
    if sets.train.prefetch_mode is not None:
        notes.append(f"ignored: datasets.train.prefetch_mode = {sets.train.prefetch_mode!r} (the trainer uses a plain "
                     "DataLoader)")
    sched, total = tr.scheduler, tr.total_iter
    if sched.type == "CosineAnnealingRestartLR":
        if sched.restart_weights is None:
            sched.restart_weights = [1.0] * len(sched.periods)
        if len(sched.restart_weights) != len(sched.periods):
            _fail("train.scheduler.restart_weights", sched.restart_weights, f"{len(sched.periods)} values, one per "
                                                                            "period")
        if sum(sched.periods) < total:  # BasicSR's scheduler fails once it runs past the last period
            _fail("train.total_iter", total, f"<= sum(train.scheduler.periods) = {sum(sched.periods)}",
                  "lengthen the periods or shorten total_iter")
    elif len(sched.restart_weights) != len(sched.restarts):
        _fail("train.scheduler.restart_weights", sched.restart_weights, f"{len(sched.restarts)} values, one per entry "
                                                                        "of train.scheduler.restarts")
    if tr.tsa_iter and not net.with_tsa:
        _fail("train.tsa_iter", tr.tsa_iter, "0 when network_g.with_tsa is false (the TSA-only stage trains TSA)")
    if tr.tsa_iter >= total:
        _fail("train.tsa_iter", tr.tsa_iter, f"< train.total_iter ({total})")
    if tr.warmup_iter >= total:
        _fail("train.warmup_iter", tr.warmup_iter, f"-1 or < train.total_iter ({total})")
    off = tr.offset_opt
    if off is not None:
        if sets.train.type != "MotionWindowDataset":
            _fail("train.offset_opt.type", off.type, f"no offset_opt with datasets.train.type {sets.train.type} (it "
                  "returns no flow)", "use datasets.train.type MotionWindowDataset, whose windows carry their true flow")
        if off.zero_at is not None and off.zero_at <= (off.full_until or 0):
            _fail("train.offset_opt.zero_at", off.zero_at, f"> train.offset_opt.full_until ({off.full_until})")
    if sets.val is None and opt.val is not None:
        notes.append("ignored: val (no datasets.val, so no validation)")
        opt.val = None
    elif sets.val is not None and opt.val is None:
        opt.val = ValOptions()


def _resolve_all(raw: Any) -> tuple[Options, list[str]]:
    raw = raw.to_dict() if isinstance(raw, Options) else copy.deepcopy(raw)
    if not isinstance(raw, dict):
        _fail("(top level)", raw, "a mapping of options such as `name:`, `network_g:`, `train:`")
    notes: list[str] = []
    _move_old_keys(raw, notes)
    opt = validate(raw, Options)
    if "manual_seed" not in raw:
        notes.append(f"manual_seed not set: using {opt.manual_seed} (BasicSR would draw a random seed)")
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


def _read_yaml(path: Path, example: str) -> Any:
    if not path.is_file():
        raise OptionsError(f"option file not found: {path}. Fix: pass an existing YAML file, e.g. {example}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise OptionsError(f"cannot read {path}: {problem}{where}. Fix: correct the YAML there") from None
    except (OSError, UnicodeDecodeError) as err:
        raise OptionsError(f"cannot read {path} ({err}). Fix: pass a readable UTF-8 YAML file") from None


def resolve_paths(opt: Section, base_dir: str | os.PathLike) -> None:
    """Make the relative paths of ``opt`` (its :data:`PathStr` fields, nested too) relative to ``base_dir``."""
    for name, field in type(opt).model_fields.items():
        value = getattr(opt, name)
        if isinstance(value, Section):
            resolve_paths(value, base_dir)
        elif isinstance(value, str) and _kind(field) == "a path" and not os.path.isabs(value):
            setattr(opt, name, os.path.join(os.fspath(base_dir), value))


def read_options(path: str | os.PathLike, root: type[Section], *, base_dir: str | os.PathLike | None = None,
                 example: str = "") -> Section:
    """Read a YAML file of ``root``'s schema (e.g. ``edvr test``'s configs).

    Raises:
        OptionsError: missing or unreadable file, bad YAML, unknown key, wrong value; one line starting with
            the path.
    """
    path = Path(path)
    raw = _read_yaml(path, example)
    try:
        opt = validate(raw, root)
    except OptionsError as err:
        raise OptionsError(f"{path}: {err}") from None
    if base_dir is not None:
        resolve_paths(opt, base_dir)
    return opt


def apply_overrides(opt: dict | Options, overrides: Sequence[str]) -> dict:
    """Apply ``--set`` overrides to a copy of ``opt`` (raw or resolved).

    Args:
        opt: nested options.
        overrides: items ``'a.b.c=value'`` (``':'`` also separates keys, as in BasicSR's ``--force_yml``); the
            value is parsed as YAML: ``1e-4``, ``[50000, 100000]``, ``~`` / ``null``, ``true``, ``{type: L1Loss}``.
            Any key of the schema may be set, whether or not ``opt`` has it; old key names are moved to the
            new ones.

    Returns:
        The new nested dict. Values are checked by :func:`load_options` / :func:`validate_options`, not here.

    Raises:
        OptionsError: malformed item, YAML that does not parse, or a key that is not an option (with the
            nearest valid key).
    """
    out = opt.to_dict() if isinstance(opt, Options) else copy.deepcopy(opt) if opt is not None else {}
    for item in overrides:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise OptionsError(f"--set {item!r}: expected KEY=VALUE. Fix: write it like train.optim_g.lr=2e-4")
        key = ".".join(p.strip() for p in re.split(r"[.:]", key.strip()))
        key = MOVED.get(key, (key,))[0]
        parts = key.split(".")
        try:
            value = yaml.load(text, Loader=_Loader)
        except yaml.YAMLError:
            raise OptionsError(f"--set {item}: the value {text!r} is not valid YAML. Fix: quote it or correct "
                               "the brackets") from None
        if not any(".".join(parts[:i]) in IGNORED for i in range(1, len(parts) + 1)):
            try:
                field = _walk(parts)[1]
            except OptionsError as err:
                raise OptionsError(f"--set {item}: {err}") from None
            value = _number(value) if _kind(field) == "a number" else value
        node = out
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[parts[-1]] = value
    return out


def validate_options(opt: dict | Options) -> None:
    """Check options (raw, or resolved and then changed) against the schema and the cross-field rules.

    Raises:
        OptionsError: the first problem, on one line naming the key, the value and the fix.
    """
    _resolve_all(opt)


def load_options(path: str | os.PathLike, overrides: Sequence[str] = (), *,
                 base_dir: str | os.PathLike | None = None) -> tuple[Options, list[str]]:
    """Read an option file, apply ``--set`` overrides, check everything and fill every default.

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
    raw = apply_overrides(_read_yaml(path, "configs/train_EDVR_tiny_embedded.yml"), overrides)
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
