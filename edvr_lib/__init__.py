"""edvr_lib: EDVR (Wang et al., CVPR-W 2019) video super-resolution, hands-on.

The tree is the architecture (``docs/architecture.md``): ``ops/`` and ``archs/`` are the network; ``data/``,
``losses/``, ``metrics/``, ``models``, ``inference``, ``introspect``, ``evaluate``, ``infer``, ``train/`` stand on
it; ``viz/`` and ``tutorial/`` draw; ``commands/`` is the ``edvr`` command line. Heavy submodules are imported
on first use.
"""
from __future__ import annotations

__version__ = "0.2.0"


def __getattr__(name: str):
    # Lazy so that `import edvr_lib` (and `edvr --help`) does not import torch.
    if name == "load_pretrained":
        from edvr_lib.models import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'edvr_lib' has no attribute {name!r}")
