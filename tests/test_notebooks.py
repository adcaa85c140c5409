"""Committed notebooks follow the conventions of CONTRIBUTING.md (run under nbval by `make test`)."""
from __future__ import annotations

import shutil

import nbformat
import pytest

from edvr_lib.utils import notebooks

ALL = notebooks.list_notebooks()


def test_notebooks_exist_and_are_numbered_in_order():
    names = [p.name for p in ALL]
    assert names and names[0] == "00_environment_check.ipynb"
    numbers = [int(n[:2]) for n in names]
    assert numbers == sorted(set(numbers)), f"duplicate or unordered numbers: {names}"


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_notebook_follows_conventions(path):
    assert notebooks.convention_problems(path) == []


def test_convention_checker_catches_problems(tmp_path):
    bad = tmp_path / "7_bad.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("def helper():\n    return 1", execution_count=3)]
    nb.metadata["widgets"] = {"state": {}}
    nbformat.write(nb, bad)
    problems = " | ".join(notebooks.convention_problems(bad))
    for expected in ("NN_lower_snake", "first cell must be Markdown", "parameters", "outputs or an execution count",
                     "logic belongs in edvr_lib", "metadata.widgets"):
        assert expected in problems


def test_an_exercise_cell_may_hold_the_learners_todo_function(tmp_path):
    path = tmp_path / "07_exercise.ipynb"
    nb = nbformat.v4.new_notebook()
    todo = nbformat.v4.new_code_cell("def my_answer(x):\n    raise NotImplementedError  # TODO: your code")
    nb.cells = [nbformat.v4.new_markdown_cell("What you will learn, Prerequisites, Runtime"),
                nbformat.v4.new_code_cell("SMOKE = False", metadata={"tags": ["parameters"]}), todo]
    nbformat.write(nb, path)
    assert any("logic belongs in edvr_lib" in p for p in notebooks.convention_problems(path))  # untagged: refused
    todo.metadata["tags"] = ["exercise"]
    nbformat.write(nb, path)
    assert notebooks.convention_problems(path) == []
    todo.source = "def my_answer(x):\n    return x + 1"  # a tagged cell with real logic is refused
    nbformat.write(nb, path)
    assert any("logic belongs in edvr_lib" in p for p in notebooks.convention_problems(path))


def test_strip_is_idempotent_and_removes_outputs(tmp_path):
    path = tmp_path / ALL[0].name
    shutil.copy(ALL[0], path)
    nb = nbformat.read(path, as_version=4)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 1
    code.outputs = [nbformat.v4.new_output("stream", text="hi")]
    nbformat.write(nb, path)
    assert notebooks.strip(path) is True
    assert notebooks.strip(path) is False
    assert notebooks.convention_problems(path) == []
