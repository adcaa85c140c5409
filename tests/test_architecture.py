"""The tree is the architecture: each floor of ``edvr_lib`` imports only from its own floor and the floors below.

The table is the one drawn in ``docs/architecture.md``; every ``import`` statement counts, also those inside
functions (a lazy import is still a dependency).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "edvr_lib"

#: floor of each top-level unit of edvr_lib (a package or a module), ground floor first
FLOORS = {
    "utils": 0,
    "ops": 1,
    "archs": 2,
    "data": 3, "losses": 3, "metrics": 3,
    "models": 4, "inference": 4, "introspect": 4,
    "evaluate": 5, "infer": 5, "export": 5, "train": 5, "env": 5, "ablations": 5,
    "viz": 6, "tutorial": 6,
    "commands": 7, "cli": 7, "__main__": 7,
}
#: the network floors may use only these outside the standard library
NETWORK_THIRD_PARTY = {"torch", "torchvision"}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "edvr_lib"


def _module_name(path: Path) -> str:
    rel = path.relative_to(LIB.parent).with_suffix("")
    name = ".".join(rel.parts)
    return name[: -len(".__init__")] if name.endswith(".__init__") else name


def _imports(path: Path) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "edvr_lib":  # from edvr_lib import archs: the submodules count
                out += [(node.lineno, f"edvr_lib.{a.name}") for a in node.names]
            else:
                out.append((node.lineno, node.module))
    return out


SOURCES = sorted(LIB.rglob("*.py"))


def test_every_unit_has_a_floor():
    units = {_unit(_module_name(p)) for p in SOURCES} - {"edvr_lib"}
    assert units <= set(FLOORS), f"add {sorted(units - set(FLOORS))} to FLOORS and to docs/architecture.md"


def _violations(path: Path, unit: str) -> list[str]:
    bad = []
    for line, name in _imports(path):
        if name.startswith("edvr_lib"):
            target = _unit(name)
            if target == "edvr_lib":
                bad.append(f"line {line}: {name} (the package root; import the module that holds the name)")
            elif FLOORS[target] > FLOORS[unit]:
                bad.append(f"line {line}: {name} (floor {FLOORS[target]} above {unit}'s floor {FLOORS[unit]})")
        elif FLOORS[unit] <= FLOORS["archs"]:
            top = name.split(".")[0]
            if top in ("matplotlib", "ipywidgets", "cv2", "PIL", "numpy", "yaml", "tqdm"):
                bad.append(f"line {line}: {name} (the network imports only torch, torchvision and the stdlib)")
    return bad


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(LIB)))
def test_imports_go_down_or_sideways(path):
    unit = _unit(_module_name(path))
    if unit == "edvr_lib":
        return
    bad = _violations(path, unit)
    assert not bad, f"{path.relative_to(LIB.parent)} imports upward:\n" + "\n".join(bad)


def test_the_rule_catches_upward_imports(tmp_path):
    """The check itself can fail: a lazy import of viz, the package root and matplotlib in archs are reported."""
    probe = tmp_path / "probe.py"
    probe.write_text("import matplotlib.pyplot as plt\nimport edvr_lib\n\n"
                     "def f():\n    from edvr_lib.viz import figures\n")
    bad = _violations(probe, "archs")
    assert len(bad) == 3, bad
    assert any("floor 6 above archs" in b for b in bad) and any("package root" in b for b in bad)
    assert not any("floor" in b or "network" in b for b in _violations(probe, "commands"))  # the top floor: any floor


def test_architecture_doc_lists_every_floor():
    """docs/architecture.md's tree has one line per unit, on the floor this table gives it."""
    doc = (LIB.parent / "docs" / "architecture.md").read_text()
    drawn = {m[1]: int(m[2]) for m in re.finditer(r"^  (\w+)(?:/|\.py)\s+floor (\d)\b", doc, re.MULTILINE)}
    wrong = {u: (f, drawn.get(u)) for u, f in FLOORS.items() if u != "__main__" and drawn.get(u) != f}
    assert not wrong, f"docs/architecture.md draws these units on another floor or not at all (table, doc): {wrong}"


def test_the_old_layout_is_gone():
    """The 0.1 module paths were never released: importing one fails, and no finder serves them."""
    import importlib
    import sys

    import edvr_lib.archs

    sys.modules.pop("edvr_lib.archs.checkpoint", None)
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("edvr_lib.archs.checkpoint")
    with pytest.raises(AttributeError):
        edvr_lib.archs.forward_padded  # noqa: B018
    assert not any("edvr_lib" in type(f).__module__ for f in sys.meta_path)
