"""Checks for the notebooks' exercises: *predict, then reveal* (:func:`check`: ``my_answer = ...`` against the
value the cell computed, shown only after a right answer) and *implement it* (:func:`check_function`: a function
whose body starts as ``raise NotImplementedError`` against the library's output).

An unanswered exercise is checked with the reference solution of :mod:`edvr_lib.tutorial.solutions` instead, so a
notebook runs from top to bottom; in smoke mode (``EDVR_SMOKE=1``) the reference is always checked too. A wrong
answer fails in every mode.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from numbers import Number

import numpy as np
import torch

from edvr_lib.tutorial import solutions
from edvr_lib.utils.io import smoke_mode

__all__ = ["is_todo", "check", "check_function"]


def is_todo(answer) -> bool:
    """True for an answer not written yet: ``...`` (Ellipsis) or ``None``."""
    return answer is Ellipsis or answer is None


def _close(a, b, tol: float) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        return a.shape == b.shape and bool(torch.allclose(a, b, rtol=tol, atol=tol))
    if isinstance(a, (Number, np.number)) and isinstance(b, (Number, np.number)) and not isinstance(a, bool):
        a, b = float(a), float(b)
        return a == b or abs(a - b) <= tol * max(abs(a), abs(b))
    if isinstance(a, Sequence) and isinstance(b, Sequence) and not isinstance(a, str):
        return len(a) == len(b) and all(_close(x, y, tol) for x, y in zip(a, b))
    return a == b


def check(name: str, answer, truth, tol: float = 1e-6, hint: str = "") -> None:
    """Predict-then-reveal: is ``answer`` the value ``truth`` the cell computed?

    Args:
        name: the exercise, ``'<notebook>.<name>'`` (a key of :data:`edvr_lib.tutorial.solutions.ANSWERS`).
        answer: the learner's prediction; ``...`` or ``None`` when not answered yet.
        truth: the value the cell computed.
        tol: relative tolerance for numbers.
        hint: shown with a wrong answer (never the answer itself).

    Raises:
        AssertionError: a wrong answer (the true value is not shown), or a reference solution that disagrees with
            the computed value (a bug in the notebook or the library).
    """
    reference = solutions.ANSWERS[name]
    if smoke_mode() or is_todo(answer):
        assert _close(reference, truth, tol), f"{name}: the reference solution disagrees with the computed value"
    if is_todo(answer):
        print(f"{name}: no answer yet (the check ran on the reference solution); write yours and run the cell again")
        return
    if not _close(answer, truth, tol):
        raise AssertionError(f"{name}: {answer!r} is not it. {hint}".rstrip())
    print(f"{name}: right, {truth!r}")


def _max_diff(out, expected) -> float:
    out, expected = torch.as_tensor(out, dtype=torch.float64), torch.as_tensor(expected, dtype=torch.float64)
    if out.shape != expected.shape:
        return float("inf")
    return float((out - expected).abs().max()) if out.numel() else 0.0


def check_function(name: str, function: Callable, args: Sequence, expected, atol: float = 1e-5,
                   hint: str = "") -> None:
    """Implement-it: does ``function(*args)`` give ``expected``?

    Args:
        name: the name of its reference solution in :mod:`edvr_lib.tutorial.solutions`.
        function: the learner's function (still raising ``NotImplementedError``: the reference is checked instead).
        args: the inputs the cell gives it.
        expected: what the library (torchvision, ...) gives for them: a tensor, array, number or list.
        atol: largest absolute difference accepted.
        hint: shown with a wrong output.

    Raises:
        AssertionError: a wrong output (its largest difference is shown), or a reference solution that disagrees
            with ``expected``.
    """
    reference = getattr(solutions, name)
    try:
        out = function(*args)
    except NotImplementedError:
        out = None
    if smoke_mode() or out is None:
        diff = _max_diff(reference(*args), expected)
        assert diff <= atol, f"{name}: the reference solution differs from the expected output by {diff:.2e}"
    if out is None:
        print(f"{name}: not implemented yet (the check ran on the reference solution); write yours and run the cell "
              "again")
        return
    diff = _max_diff(out, expected)
    if not diff <= atol:
        shape = tuple(torch.as_tensor(out).shape)
        raise AssertionError(f"{name}: your output differs from the expected one by up to {diff:.3g} (output shape "
                             f"{shape}; tolerance {atol:g}). {hint}".rstrip())
    print(f"{name}: right (max |difference| {diff:.1e})")
