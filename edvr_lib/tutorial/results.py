"""Numbers a learner can check: what the notebooks' "Reading the results" cells measured, and the expected range.

A notebook states each headline figure with the range it expects, and records it::

    results.record("02_pcd_alignment", "fusion_gain_db", gain, expected=6.0, tolerance=4.0, unit="dB",
                   what="PSNR of the aligned average minus PSNR of the raw average")

:func:`record` asserts the range (``check=False``: kept, marked unchecked; ``low`` / ``high``: one-sided claims),
prints one line and stores one entry per ``(notebook, key)`` in a JSON file (:func:`results_path`). ``make
tutorial`` points :data:`RESULTS_ENV` at its own file, :func:`forget` s a notebook's old entries before running it,
and writes ``docs/tutorial_results.md`` with :func:`write_markdown`; smoke runs never touch ``docs/``.
"""
from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path

from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import REPO_ROOT, atomic_write_text, smoke_mode
from edvr_lib.utils.notebooks import RESULTS_ENV

__all__ = ["RESULTS_ENV", "record", "load", "forget", "results_path", "format_markdown", "write_markdown"]


def results_path(mode: str | None = None) -> Path:
    """Where :func:`record` writes: ``$EDVR_TUTORIAL_RESULTS``, else ``outputs/tutorial_results_<mode>.json``
    (``mode``: ``'smoke'`` or ``'full'``, default from ``EDVR_SMOKE``)."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env)
    mode = mode or ("smoke" if smoke_mode() else "full")
    return REPO_ROOT / "outputs" / f"tutorial_results_{mode}.json"


def load(path: str | os.PathLike | None = None) -> list[dict]:
    """Every recorded entry (empty when nothing was recorded yet).

    Raises:
        EDVRError: the file exists but is not a results file.
    """
    path = Path(path) if path is not None else results_path()
    if not path.exists():
        return []
    try:
        entries = json.loads(path.read_text())
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "key" in e for e in entries):
            raise ValueError("not a list of entries")
    except ValueError as err:
        raise EDVRError(f"{path} is not a tutorial results file ({err}); delete it and run the notebooks "
                        "again") from None
    return entries


def _save(entries: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(entries, indent=1) + "\n")


def forget(notebook: str, path: str | os.PathLike | None = None) -> int:
    """Drop ``notebook``'s entries (before it runs again). Returns how many were dropped."""
    path = Path(path) if path is not None else results_path()
    entries = load(path)
    kept = [e for e in entries if e["notebook"] != notebook]
    if len(kept) != len(entries):
        _save(kept, path)
    return len(entries) - len(kept)


def _bounds(expected, tolerance, low, high) -> tuple[float, float]:
    lo, hi = -math.inf, math.inf
    if expected is not None:
        if tolerance is None or tolerance < 0:
            raise EDVRError(f"record(): expected={expected} needs a tolerance >= 0, got {tolerance!r}")
        lo, hi = expected - tolerance, expected + tolerance
    elif tolerance is not None:
        raise EDVRError("record(): a tolerance needs an expected value")
    lo = lo if low is None else max(lo, float(low))
    hi = hi if high is None else min(hi, float(high))
    if lo > hi:
        raise EDVRError(f"record(): empty range [{lo}, {hi}]; check expected / tolerance / low / high")
    return lo, hi


def record(notebook: str, key: str, value: float, *, expected: float | None = None, tolerance: float | None = None,
           low: float | None = None, high: float | None = None, unit: str = "", what: str = "",
           check: bool = True, path: str | os.PathLike | None = None) -> float:
    """Check one headline figure against its stated range and store it.

    Args:
        notebook: the notebook's stem, e.g. ``"02_pcd_alignment"``.
        key: short identifier, unique within the notebook (``"epe_learned_px"``).
        value: the measured number (a Python or NumPy / torch scalar).
        expected, tolerance: the claim ``|value - expected| <= tolerance``.
        low, high: one-sided bounds (with ``expected``: the intersection).
        unit: shown after the number (``"dB"``, ``"px"``).
        what: one line saying what the number is.
        check: False records without asserting.
        path: results file (default :func:`results_path`).

    Returns:
        ``value`` as a float.

    Raises:
        AssertionError: ``check`` and the value is outside the range (or not finite).
        EDVRError: the range itself is malformed.
    """
    value = float(value)
    lo, hi = _bounds(expected, tolerance, low, high)
    ok = math.isfinite(value) and lo <= value <= hi
    rng = _range_text(expected, tolerance, lo, hi, unit)
    print(f"[{notebook}] {key} = {value:.4g} {unit}".rstrip() + f"   expected {rng}" +
          ("" if ok else "   OUT OF RANGE") + ("" if check else " (not checked in this mode)"))
    entry = {"notebook": notebook, "key": key, "value": value, "expected": expected, "tolerance": tolerance,
             "low": None if math.isinf(lo) else lo, "high": None if math.isinf(hi) else hi, "unit": unit,
             "what": what, "checked": bool(check), "ok": bool(ok), "mode": "smoke" if smoke_mode() else "full",
             "time": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    path = Path(path) if path is not None else results_path()
    entries = [e for e in load(path) if (e["notebook"], e["key"]) != (notebook, key)]
    _save(entries + [entry], path)
    if check:
        assert ok, f"{notebook}: {key} = {value:.4g} {unit} is outside the expected range {rng}"
    return value


def _range_text(expected, tolerance, lo, hi, unit) -> str:
    if expected is not None and (lo, hi) == (expected - tolerance, expected + tolerance):
        return f"{expected:.4g} ± {tolerance:.3g} {unit}".rstrip()
    if math.isinf(lo) and math.isinf(hi):
        return "any value"
    if math.isinf(lo):
        return f"<= {hi:.4g} {unit}".rstrip()
    if math.isinf(hi):
        return f">= {lo:.4g} {unit}".rstrip()
    return f"{lo:.4g} .. {hi:.4g} {unit}".rstrip()


def format_markdown(entries: list[dict], command: str = "make tutorial") -> str:
    """The Markdown page: one table per notebook, in notebook order, with value, range and verdict."""
    lines = ["# Tutorial results", "",
             f"Generated by `{command}` (every notebook in full mode) from what the notebooks' \"Reading the results\" "
             "cells measured on this machine: each row is a number computed by a notebook cell and the range the "
             "notebook states for it (`edvr_lib.tutorial.results.record`). Do not edit by hand; run the command "
             "again.", ""]
    full = [e for e in entries if e.get("mode") == "full"]
    if not full:
        lines.append("No full-mode results were recorded.")
    for nb in sorted({e["notebook"] for e in full}):
        rows = [e for e in full if e["notebook"] == nb]
        when = max(e["time"] for e in rows)
        lines += [f"## {nb}", "", f"Run finished {when}; notebook `notebooks/{nb}.ipynb`.", "",
                  "| figure | what | measured | expected | verdict |", "|---|---|---|---|---|"]
        for e in rows:
            lo = -math.inf if e["low"] is None else e["low"]
            hi = math.inf if e["high"] is None else e["high"]
            rng = _range_text(e["expected"], e["tolerance"], lo, hi, e["unit"])
            verdict = ("ok" if e["ok"] else "OUT OF RANGE") if e["checked"] else \
                ("within range (not checked)" if e["ok"] else "outside range (not checked)")
            value = f"{e['value']:.4g} {e['unit']}".rstrip()
            what = e["what"].replace("|", "\\|")  # a literal | would end the table cell
            lines.append(f"| `{e['key']}` | {what} | {value} | {rng} | {verdict} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def write_markdown(results_file: str | os.PathLike,
                   dest: str | os.PathLike = REPO_ROOT / "docs" / "tutorial_results.md",
                   command: str = "make tutorial") -> Path:
    """Write :func:`format_markdown` of ``results_file``'s full-mode entries to ``dest`` (atomically).

    Raises:
        EDVRError: no full-mode entries in ``results_file`` (nothing is written).
    """
    entries = load(results_file)
    if not any(e.get("mode") == "full" for e in entries):
        raise EDVRError(f"no full-mode tutorial results in {results_file}; run `make tutorial` (full mode) first")
    dest = Path(dest)
    atomic_write_text(dest, format_markdown(entries, command))
    return dest
