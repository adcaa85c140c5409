"""torchrun / DistributedDataParallel helpers (one process per device, rank 0 logs and saves).

Launch::

    torchrun --nproc_per_node=N -m edvr_lib train --config FILE --output DIR

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` reads them and joins the group
(NCCL on CUDA, gloo on CPU). Without them everything here is a no-op for a single process.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistInfo", "setup", "cleanup", "wrap_model", "sync_from_rank0", "all_mean", "all_max", "broadcast_object",
           "barrier"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, on ``device``."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
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
    return DistInfo(rank, world_size, local_rank, device)


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


def all_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean of ``values`` over processes (returned as is on one process)."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values)
        values /= info.world_size
    return values


def all_max(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise max of ``values`` over processes."""
    if info.enabled:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.MAX)
    return values


def broadcast_object(obj, info: DistInfo):
    """Rank 0's ``obj`` on every process (e.g. an error message, so all ranks stop together)."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


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
        self.requested = False
        self.log = log
        self._old = {}

    def _handle(self, signum, frame):
        import signal

        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.log(f"{signal.Signals(signum).name}: stopping after this iteration and saving a resumable state "
                 "(Ctrl-C again to abort at once)")

    def __enter__(self) -> "StopRequest":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
