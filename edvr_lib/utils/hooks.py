"""Forward hooks that exist only inside a ``with`` block.

Example::

    with forward_hooks([(model.pcd_align, lambda _m, _args, out: kept.append(out))]):
        model(x)   # outside the block the model runs without any hook
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Iterator

from torch import nn

__all__ = ["forward_hooks"]


@contextlib.contextmanager
def forward_hooks(hooks: Iterable[tuple[nn.Module, Callable]] = (),
                  pre_hooks: Iterable[tuple[nn.Module, Callable]] = ()) -> Iterator[None]:
    """Register forward hooks for the block and remove every one of them on exit (also after an error).

    Args:
        hooks: ``(module, fn)`` pairs, ``fn(module, args, output)``; a value it returns replaces the output.
        pre_hooks: ``(module, fn)`` pairs, ``fn(module, args)``, run before the module's forward.
    """
    handles = []
    try:
        for module, fn in pre_hooks:
            handles.append(module.register_forward_pre_hook(fn))
        for module, fn in hooks:
            handles.append(module.register_forward_hook(fn))
        yield
    finally:
        for handle in handles:
            handle.remove()
