"""edvr_lib: EDVR (Wang et al., CVPR-W 2019) video super-resolution, hands-on.

Layout follows BasicSR (``archs/``, ``data/``, ``losses/``, ``metrics/``, ``train/``,
``viz/``) with explicit imports. Heavy submodules are imported on first use.
"""
from __future__ import annotations

__version__ = "0.1.0"


def __getattr__(name: str):
    # Lazy so that `import edvr_lib` (and `edvr --help`) does not import torch.
    if name == "load_pretrained":
        from edvr_lib.archs.checkpoint import load_pretrained

        return load_pretrained
    raise AttributeError(f"module 'edvr_lib' has no attribute {name!r}")
