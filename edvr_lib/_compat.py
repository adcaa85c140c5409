"""Old import paths of the 0.1 layout, kept for one release with a ``DeprecationWarning``.

``edvr_lib.archs.checkpoint`` became :mod:`edvr_lib.models`, ``edvr_lib.archs.padding`` became
:mod:`edvr_lib.inference`, and so on (table below). A meta-path finder serves the old module names as the new
modules, and :func:`moved_attribute` serves old attribute names such as ``edvr_lib.archs.forward_padded``. Nothing
here is imported by the library itself; remove this module in the next release.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old module -> new module
MOVED_MODULES = {
    "edvr_lib.archs.arch_util": "edvr_lib.archs.blocks",
    "edvr_lib.archs.presets": "edvr_lib.archs.config",
    "edvr_lib.archs.checkpoint": "edvr_lib.models",
    "edvr_lib.archs.padding": "edvr_lib.inference",
    "edvr_lib.archs.introspect": "edvr_lib.introspect",
    "edvr_lib.archs.pcd_demo": "edvr_lib.tutorial.pcd_demo",
    "edvr_lib.archs.tsa_demo": "edvr_lib.tutorial.tsa_demo",
    "edvr_lib.archs.demo_util": "edvr_lib.tutorial.fit",
    "edvr_lib.ops.perf": "edvr_lib.ops.fused",
}

#: (old package, name) -> new module holding ``name``
MOVED_ATTRIBUTES = {
    ("edvr_lib.archs", "forward_padded"): "edvr_lib.inference",
    ("edvr_lib.archs", "pad_to_multiple"): "edvr_lib.inference",
    ("edvr_lib.archs", "record_internals"): "edvr_lib.introspect",
    ("edvr_lib.archs", "Internals"): "edvr_lib.introspect",
    ("edvr_lib.archs", "offsets_to_flow"): "edvr_lib.introspect",
    ("edvr_lib.archs", "load_pretrained"): "edvr_lib.models",
}


def _warn(old: str, new: str) -> None:
    warnings.warn(f"{old} moved to {new}; the old name will be removed in the next release", DeprecationWarning,
                  stacklevel=3)


def moved_attribute(package: str, name: str):
    """The object an old ``package.name`` now lives at (with a warning); ``AttributeError`` if it never existed."""
    new = MOVED_ATTRIBUTES.get((package, name))
    if new is None:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    _warn(f"{package}.{name}", f"{new}.{name}")
    return getattr(importlib.import_module(new), name)


class _Loader(importlib.abc.Loader):
    def __init__(self, new: str):
        self.new = new

    def create_module(self, spec):
        return importlib.import_module(self.new)

    def exec_module(self, module):
        pass


class _MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path=None, target=None):
        new = MOVED_MODULES.get(fullname)
        if new is None:
            return None
        _warn(fullname, new)
        return importlib.util.spec_from_loader(fullname, _Loader(new))


def install() -> None:
    """Serve the old module names (idempotent)."""
    if not any(isinstance(f, _MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedFinder())
