"""Typed YAML option files: pydantic sections whose problems read as one line naming the key, the value and the fix.

A schema is a tree of :class:`Section` models (unknown keys refused, strict types, ranges as ``Field``
constraints); :func:`variants` makes a section whose keys depend on its ``type:``. :func:`validate` turns pydantic's
first error into ``train.optim_g.lr = 'fast' is not valid: expected a number > 0. Fix: ...`` (the words come from
the field's type and constraints) and an unknown key into the nearest valid one. :func:`read_options` reads a file
of any schema; fields typed :data:`PathStr` are the paths :func:`resolve_paths` makes relative to a folder.
Messages name an override as ``override 'KEY=VALUE'``; a command line says how it is given there.
"""
from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Sequence, Union

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag, ValidationError
from pydantic import model_validator

from edvr_lib.utils.errors import EDVRError

__all__ = ["OptionsError", "Section", "Int", "Float", "Bool", "Str", "PathStr", "ints", "floats", "one_of", "rule",
           "variants", "tag_of", "unwrap", "walk", "number", "validate", "fail", "short", "get", "UniqueKeyLoader",
           "read_yaml", "read_options", "resolve_paths"]


class OptionsError(EDVRError):
    """A bad option file or override. The one-line message names the key, the value and the fix."""


# ----------------------------------------------------------------------------------------------------------------
# Value types; error messages describe them from their Python type and constraints.

_PATH = "a path"  # marks PathStr
_KINDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _integral(v):
    return int(v) if isinstance(v, float) and v.is_integer() else v  # `!!float 5e3`


def number(v):  # `4e-4` without `!!float`: YAML 1.1 reads it as a string
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


Int = Annotated[int, BeforeValidator(_integral)]
Float = Annotated[float, BeforeValidator(number)]
Bool = bool
Str = Annotated[str, Field(min_length=1)]
PathStr = Annotated[str, BeforeValidator(_path), Field(min_length=1), _PATH]


def ints(**item) -> Any:
    """A non-empty list of integers, each within ``item``'s range."""
    return Annotated[list[Annotated[Int, Field(**item)]], Field(min_length=1)]


def floats(**item) -> Any:
    """A non-empty list of numbers, each within ``item``'s range."""
    return Annotated[list[Annotated[Float, Field(**item)]], Field(min_length=1)]


def one_of(*values) -> Any:
    """One of ``values`` (strings or integers)."""
    return Literal[values]


class Section(BaseModel):
    """A mapping of options: unknown keys refused, types strict, defaults checked too."""

    #: dotted keys a root section accepts outside its fields (ignored or moved ones), offered as hints
    known_elsewhere: ClassVar[tuple[str, ...]] = ()
    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _none_is_empty(cls, value):  # `train: ~` reads as `train: {}`
        return {} if value is None else value

    def to_dict(self) -> dict:
        """The plain nested dict (e.g. what a run's ``options.yml`` and checkpoints hold)."""
        return self.model_dump()


def variants(*cases: type[Section], default: str | None = None) -> Any:
    """A section whose keys depend on its ``type`` (``default`` when the file gives none)."""
    def tag(v):
        return v.get("type", default) if isinstance(v, dict) else default if v is None else \
            v.type if isinstance(v, Section) else None
    return Annotated[Union[tuple(Annotated[c, Tag(tag_of(c))] for c in cases)], Discriminator(tag)]


def tag_of(case: type[Section]) -> str:
    """The ``type`` a case of :func:`variants` answers to."""
    return typing.get_args(case.model_fields["type"].annotation)[0]


# ----------------------------------------------------------------------------------------------------------------
# Reading the schema: dotted keys, what a key expects


def unwrap(ann, meta: Sequence = ()) -> tuple[Any, list, bool]:
    """``ann`` without ``Annotated`` and ``Optional``: the type, every constraint and marker it carried (``Field``
    constraints flattened) and whether ``~`` is allowed."""
    meta, nullable = list(meta), False
    while True:
        args = typing.get_args(ann)
        if typing.get_origin(ann) is Annotated:
            ann, meta = args[0], list(args[1:]) + meta
        elif typing.get_origin(ann) in (Union, types.UnionType) and type(None) in args:
            rest = tuple(a for a in args if a is not type(None))
            ann, nullable = (rest[0] if len(rest) == 1 else Union[rest]), True
        else:
            return ann, [c for m in meta for c in getattr(m, "metadata", [m])], nullable


def _cases(ann) -> list[type[Section]]:
    """The sections ``ann`` holds: one, the cases of a :func:`variants` union, or none (a leaf)."""
    ann = unwrap(ann)[0]
    if typing.get_origin(ann) is Union:
        return [c for a in typing.get_args(ann) for c in _cases(a)]
    return [ann] if isinstance(ann, type) and issubclass(ann, Section) else []


def _entries(ann) -> Any:
    """The entries' annotation of a mapping of free names (``val.metrics.<name>``), else None."""
    ann = unwrap(ann)[0]
    return typing.get_args(ann)[1] if typing.get_origin(ann) is dict else None


def walk(loc: Sequence, root: type[Section]) -> tuple[str, Any, list]:
    """The dotted key, field and sections at ``loc`` (a key path, or a pydantic error location with the tags of
    variants and list indices). Raises OptionsError naming the nearest valid key for an unknown key."""
    cases, union, field, done, free = [root], [], None, [], False
    for item in loc:
        if isinstance(item, int) or not (cases or free):
            break  # inside a list, or a leaf's union branch: the field is the key
        if free:
            done.append(str(item))
            free = False
            continue
        fields = {k: f for c in cases for k, f in c.model_fields.items()}
        tags = {tag_of(c): c for c in cases if "type" in c.model_fields}
        if item not in fields and item in tags:
            union, cases = cases, [tags[item]]
            continue
        if item not in fields:
            _unknown(".".join(done + [str(item)]), list(fields), root, cases, union)
        field = fields[item]
        done.append(item)
        entry = _entries(field.annotation)
        free = entry is not None
        cases, union = _cases(entry if free else field.annotation), []
    return ".".join(done), field, cases


def _all_paths(cases: Sequence[type[Section]], prefix: str = "") -> list[str]:
    """Every valid dotted key (the keys of all variants; ``<name>`` for free names)."""
    out = []
    for case in cases:
        for name, field in case.model_fields.items():
            entry = _entries(field.annotation)
            out += [prefix + name] + _all_paths(_cases(entry if entry is not None else field.annotation),
                                                f"{prefix}{name}{'.<name>' if entry is not None else ''}.")
    return list(dict.fromkeys(out))


def _words(ann, meta: Sequence = (), item: bool = False) -> str:
    """What ``ann`` accepts: ``'an integer >= 1 and odd'``, ``'a list of numbers (two values, each in [0, 1))'``;
    the constraints alone for a list's ``item``."""
    ann, meta, _ = unwrap(ann, meta)
    cases = _cases(ann)
    if cases:
        return "a section with a `type`" if len(cases) > 1 else "a mapping of options (key: value lines)"
    b = {a: getattr(m, a) for m in meta for a in ("ge", "gt", "le", "lt", "min_length", "max_length") if hasattr(m, a)}
    rules = [f"{op} {b[a]}" for a, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")) if a in b]
    if len(rules) == 2:
        rules = [f"in {'[' if 'ge' in b else '('}{b.get('ge', b.get('gt'))}, {b.get('le', b.get('lt'))}"
                 f"{']' if 'le' in b else ')'}"]
    rules += [m.func.words for m in meta if hasattr(getattr(m, "func", None), "words")]
    kind = "a path" if _PATH in meta else _KINDS.get(ann, "a value")
    args = typing.get_args(ann)
    if typing.get_origin(ann) is Literal:
        kind, rules = _KINDS[type(args[0])], ["(one of " + ", ".join(repr(v) for v in args) + ")"]
    elif typing.get_origin(ann) is list:
        kind = "a list of " + {int: "integers", float: "numbers"}.get(unwrap(args[0])[0], "strings")
        each = _words(args[0], item=True)
        count = {(2, 2): "two values", (1, None): "non-empty"}.get((b.get("min_length"), b.get("max_length")))
        rules = [f"({', '.join(w for w in (count, each and 'each ' + each) if w)})"] if count or each else []
    return " and ".join(rules) if item else " ".join([kind, " and ".join(rules)]) if rules else kind


def _expected(field) -> str:
    """What ``field`` accepts, in words (its description, else from its type: ``'a number > 0 or ~'``)."""
    return field.description or _words(field.annotation, field.metadata) + (
        " or ~" if unwrap(field.annotation)[2] else "")


# ----------------------------------------------------------------------------------------------------------------
# Errors


def short(value: Any) -> str:
    text = "~" if value is None else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(key: str, value: Any, expected: str, fix: str | None = None) -> typing.NoReturn:
    fix = fix or f"change it in the file or with override '{key}=VALUE'"
    raise OptionsError(f"{key} = {short(value)} is not valid: expected {expected}. Fix: {fix}")


def _missing(key: str, expected: str) -> typing.NoReturn:
    raise OptionsError(f"missing option {key} ({expected}). Fix: add it to the file or set it with "
                       f"override '{key}=VALUE'")


def _unknown(key: str, siblings: list[str], root: type[Section], cases: Sequence[type[Section]],
             union: Sequence[type[Section]]) -> typing.NoReturn:
    """Raise for an unknown key: the variant it belongs to, else the nearest valid key (a sibling first, else any
    key with a close name)."""
    parent, _, leaf = key.rpartition(".")
    for other in union:
        if other is not cases[0] and leaf in other.model_fields:
            raise OptionsError(f"{key} is an option of {parent}.type {tag_of(other)}, not of {tag_of(cases[0])}. Fix: "
                               f"set {parent}.type to {tag_of(other)} or remove {leaf}")
    siblings = siblings + [p.rpartition(".")[2] for p in root.known_elsewhere if p.rpartition(".")[0] == parent]
    near = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
    if near:
        suggestion = f"{parent}.{near[0]}" if parent else near[0]
    else:
        paths = [p for p in _all_paths([root]) + list(root.known_elsewhere) if "<name>" not in p]
        leaves = {p.rpartition(".")[2]: p for p in reversed(paths)}
        near = difflib.get_close_matches(leaf, list(leaves), n=1, cutoff=0.75)
        suggestion = leaves[near[0]] if near else (difflib.get_close_matches(key, paths, n=1, cutoff=0.6) or [None])[0]
    if suggestion and suggestion != key:
        raise OptionsError(f"unknown option {key}; nearest valid key: {suggestion}. Fix: rename it to {suggestion} "
                           "or remove it")
    raise OptionsError(f"unknown option {key}. Fix: remove it (valid keys here: {', '.join(siblings)})")


def get(tree: Any, dotted: str) -> tuple[dict | None, str]:
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
    key, field, cases = walk(first["loc"], root)  # an unknown key raises here
    if field is None:  # not a mapping at all
        fail("(top level)", raw, "a mapping of options (key: value lines)", "write the file as key: value lines")
    holder, leaf = get(raw, key)
    value = holder[leaf] if holder is not None and leaf in holder else first.get("input")
    tags = ", ".join(tag_of(c) for c in cases if "type" in c.model_fields)
    if first["type"] == "missing" or first["type"] == "union_tag_not_found" and value is None:
        _missing(key, _expected(field))
    if first["type"] == "union_tag_invalid":
        fail(f"{key}.type", value.get("type"), f"one of {tags}")
    if first["type"] == "union_tag_not_found":
        if isinstance(value, dict):
            _missing(f"{key}.type", f"one of {tags}")
        fail(key, value, "a mapping of options with a `type`")
    fail(key, value, _expected(field))


# ----------------------------------------------------------------------------------------------------------------
# Files


class UniqueKeyLoader(yaml.SafeLoader):
    """Safe YAML loader that refuses duplicate keys (PyYAML, and so BasicSR, keeps the last one silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(path: Path, example: str) -> Any:
    if not path.is_file():
        raise OptionsError(f"option file not found: {path}. Fix: pass an existing YAML file, e.g. {example}")
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader) or {}
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
        elif isinstance(value, str) and _PATH in unwrap(field.annotation, field.metadata)[1] \
                and not os.path.isabs(value):
            setattr(opt, name, os.path.join(os.fspath(base_dir), value))


def read_options(path: str | os.PathLike, root: type[Section], *, base_dir: str | os.PathLike | None = None,
                 example: str = "") -> Section:
    """Read a YAML file of ``root``'s schema (e.g. ``edvr test``'s configs).

    Raises:
        OptionsError: missing or unreadable file, bad YAML, unknown key, wrong value; one line starting with
            the path.
    """
    path = Path(path)
    raw = read_yaml(path, example)
    try:
        opt = validate(raw, root)
    except OptionsError as err:
        raise OptionsError(f"{path}: {err}") from None
    if base_dir is not None:
        resolve_paths(opt, base_dir)
    return opt
