"""Tutorial navigation and exercises: relative links resolve; every notebook ends with checked exercises (one of
them implement-it), troubleshooting and links."""
from __future__ import annotations

import re

import nbformat
import pytest

from edvr_lib.utils.notebooks import list_notebooks

LINK = re.compile(r"\]\(([^)#\s]+\.ipynb)\)")
WITH_EXERCISES = ["00_environment_check", "01_dataset_preparation", "02_pcd_alignment", "03_tsa_fusion", "04_training",
                  "05_evaluation_visualization", "06_deployment"]


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_relative_notebook_links_resolve(path):
    text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown")
    for target in LINK.findall(text):
        assert (path.parent / target).is_file(), f"{path.name} links to {target}, which does not exist"


@pytest.mark.parametrize("stem", WITH_EXERCISES)
def test_notebook_ends_with_exercises_troubleshooting_and_links(stem):
    path = next(p for p in list_notebooks() if p.stem == stem)
    cells = nbformat.read(path, as_version=4).cells
    i = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and c.source.startswith("## Exercises")),
             None)
    assert i is not None, f"{path.name} has no '## Exercises' section"
    tail = cells[i:]
    checks = [c for c in tail if c.cell_type == "code" and "exercises.check(" in c.source]
    assert checks, f"{path.name}: the exercises need a cell that checks answers (edvr_lib.tutorial.exercises)"
    # at least one implement-it exercise: a function left as a TODO, checked against a reference computation
    assert any("raise NotImplementedError" in c.source and "exercises.check_function(" in c.source for c in checks), \
        f"{path.name}: the exercises need an implement-it exercise"
    # predictions are written in the cell, not printed in the text above it
    assert all(re.search(r"^my_\w+ = \.\.\.  # TODO", c.source, re.M) for c in checks)
    assert len(re.findall(r"^\d\. \*\*", tail[0].source, re.M)) in (2, 3), "two or three exercises"
    assert "Prediction" in tail[0].source
    assert any("Troubleshooting" in c.source for c in tail if c.cell_type == "markdown")
    number = int(stem[:2])
    last = tail[-1].source
    nxt = [p.name for p in list_notebooks() if int(p.name[:2]) == number + 1]
    prev = [p.name for p in list_notebooks() if int(p.name[:2]) == number - 1]
    for name in nxt + prev:
        assert f"]({name})" in last, f"{path.name}'s last cell should link to {name}"
