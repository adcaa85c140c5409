"""Notebook conventions, stripping, and execution for ``make tutorial``.

Conventions (see CONTRIBUTING.md): notebooks are ``notebooks/NN_name.ipynb``; the first cell is Markdown with
*What you will learn*, *Prerequisites* and *Runtime*; one code cell is tagged ``parameters``; functions are defined
in ``edvr_lib/``, except the learner's own function of an implement-it exercise (a cell tagged ``exercise`` whose
function body is the TODO ``raise NotImplementedError``); committed notebooks carry no outputs (``make tutorial``
writes executed copies under ``outputs/``).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from edvr_lib.utils.io import REPO_ROOT, atomic_write_text

NOTEBOOK_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.ipynb$")
REQUIRED_HEADINGS = ("What you will learn", "Prerequisites", "Runtime")
#: environment variable naming the JSON file that :func:`edvr_lib.tutorial.results.record` writes to
RESULTS_ENV = "EDVR_TUTORIAL_RESULTS"


def list_notebooks(folder: str | os.PathLike = REPO_ROOT / "notebooks") -> list[Path]:
    """Every numbered notebook in ``folder``, in order."""
    return sorted(p for p in Path(folder).glob("*.ipynb") if NOTEBOOK_NAME.match(p.name))


def convention_problems(path: str | os.PathLike) -> list[str]:
    """What is wrong with a committed notebook (empty list when it follows the conventions)."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    problems = []
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as err:
        problems.append(f"invalid notebook JSON: {err.message}")
    if not NOTEBOOK_NAME.match(path.name):
        problems.append("name must look like NN_lower_snake.ipynb")
    cells = nb.cells
    if not cells or cells[0].cell_type != "markdown":
        problems.append("first cell must be Markdown")
    else:
        for heading in REQUIRED_HEADINGS:
            if heading.lower() not in cells[0].source.lower():
                problems.append(f"first cell lacks '{heading}'")
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(tagged) != 1 or tagged[0].cell_type != "code":
        problems.append(f"need exactly one code cell tagged 'parameters' (found {len(tagged)})")
    for i, c in enumerate(cells):
        if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None):
            problems.append(f"cell {i} has outputs or an execution count (strip with `make strip`)")
        # an exercise cell may hold the learner's function, left as a TODO (``raise NotImplementedError``)
        exercise = "exercise" in c.get("metadata", {}).get("tags", []) and "raise NotImplementedError" in c.source
        if (c.cell_type == "code" and "import edvr_lib" not in c.source and not exercise
                and re.search(r"^\s*(class|def) ", c.source, re.M)):
            problems.append(f"cell {i} defines a function/class: logic belongs in edvr_lib/")
    if "widgets" in nb.metadata:
        problems.append("metadata.widgets present (strip it)")
    return problems


def strip(path: str | os.PathLike) -> bool:
    """Remove outputs, execution counts and widget state in place. Returns True if changed."""
    import nbformat

    path = Path(path)
    before = path.read_text()
    nb = nbformat.reads(before, as_version=4)
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs = []
            c.execution_count = None
        c.metadata.pop("execution", None)
    nb.metadata.pop("widgets", None)
    after = nbformat.writes(nb) + "\n"
    if after != before:
        atomic_write_text(path, after)
        return True
    return False


def results_file(out_dir: str | os.PathLike, smoke: bool) -> Path:
    """The JSON file the notebooks executed into ``out_dir`` record their checked figures to."""
    return Path(out_dir) / f"tutorial_results_{'smoke' if smoke else 'full'}.json"


def execute(path: Path, out_dir: Path, smoke: bool, timeout: int = 3600) -> dict:
    """Execute one notebook from a fresh kernel; write ``out_dir/<name>.ipynb`` and ``.html``.

    The kernel gets ``EDVR_SMOKE`` and :data:`RESULTS_ENV` = :func:`results_file` (``out_dir``), so the figures
    its "Reading the results" cells record land next to the executed copies.

    Returns a summary dict with the wall time in seconds.
    """
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.read(path, as_version=4)
    env = {"EDVR_SMOKE": "1" if smoke else "0", RESULTS_ENV: str(results_file(Path(out_dir).resolve(), smoke))}
    env_before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        for k, v in env_before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.perf_counter() - start
    nb.metadata.pop("widgets", None)  # widget state is per-session; GitHub rejects stale state
    atomic_write_text(out_dir / path.name, nbformat.writes(nb))
    atomic_write_text(out_dir / (path.stem + ".html"), HTMLExporter().from_notebook_node(nb)[0])
    return {"notebook": path.name, "seconds": round(seconds, 1)}
