"""Training EDVR: option files (``options``) and the training loop, driven by ``edvr train``.

Import submodules explicitly (``from edvr_lib.train.options import load_options``); nothing heavy is imported here.
"""

__all__ = ["train", "run_train"]


def __getattr__(name: str):
    # lazy, so that importing the package (``edvr --help``, the options layer) does not import torch
    if name in __all__:
        from edvr_lib.train import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module 'edvr_lib.train' has no attribute {name!r}")
