"""torchrun / DistributedDataParallel helpers (one process per device, rank 0 logs and saves).

Launch::

    torchrun --nproc_per_node=N -m edvr_lib train --config FILE --output DIR

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` reads them and joins the group
(NCCL on CUDA, gloo on CPU). Without them everything here is a no-op for a single process.
"""
from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "cleanup", "wrap_model", "sync_from_rank0", "all_reduce", "on_main", "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the process that logs and writes files (rank 0)."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def setup(device: str | torch.device = "auto", num_gpu: int | str = "auto") -> DistInfo:
    """Pick the device and, under torchrun, join the process group.

    Args:
        device: ``'auto'`` (CUDA when available and ``num_gpu != 0``), ``'cpu'``, ``'cuda'`` or ``'cuda:N'``.
        num_gpu: the options' ``num_gpu`` (0 forces CPU with ``device='auto'``).

    Returns:
        The :class:`DistInfo` of this process (under torchrun on CUDA, the device is ``cuda:LOCAL_RANK``).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() and num_gpu != 0 else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank if world_size > 1 else torch.cuda.current_device())
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, device)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (if this process joined one)."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: torch.nn.Module, info: DistInfo) -> torch.nn.Module:
    """``model`` itself on one process, else a DDP wrapper over the parameters that currently require grad.

    DDP ignores parameters with ``requires_grad=False``, so wrapping again when the TSA-only stage starts or ends
    handles the frozen parameters without ``find_unused_parameters`` (BasicSR's way) and its extra graph walk.
    """
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.device.index] if info.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids)


def sync_from_rank0(modules, info: DistInfo) -> None:
    """Copy rank 0's weights into every process's ``modules`` (the network and its EMA start equal everywhere,
    whatever each rank's random init was)."""
    if info.enabled:
        with torch.no_grad():
            for module in modules:
                for tensor in module.state_dict().values():
                    dist.broadcast(tensor, src=0)


def all_reduce(values: torch.Tensor, info: DistInfo, op: str = "mean") -> torch.Tensor:
    """Element-wise ``'mean'`` or ``'max'`` of ``values`` over processes (``values`` itself on one process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX if op == "max" else dist.ReduceOp.SUM)
        if op == "mean":
            values /= info.world_size
    return values


def on_main(fn, info: DistInfo) -> None:
    """Run ``fn()`` on rank 0 (e.g. a save); an error it raises is raised on every process, so all stop together."""
    error = None
    if info.is_main:
        try:
            fn()
        except Exception as err:  # noqa: BLE001 - every rank must hear about it
            error = err
    if info.enabled:
        box = [error]
        dist.broadcast_object_list(box, src=0)
        error = box[0]
    if error is not None:
        raise error


def barrier(info: DistInfo) -> None:
    """Wait for every process (no-op on one)."""
    if info.enabled:
        dist.barrier()


class StopRequest:
    """Ctrl-C (SIGINT) and SIGTERM as a request: the loop finishes its iteration, saves and returns.

    A second Ctrl-C interrupts at once. Used as a context manager; outside the main thread (where Python cannot
    install handlers) it only ever says "no".
    """

    def __init__(self, log=print):
        self.requested, self.log, self._old = False, log, {}

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.log(f"{signal.Signals(signum).name}: stopping after this iteration and saving a resumable state "
                 "(Ctrl-C again to abort at once)")

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
