"""A run's log: ``train_log.jsonl`` (one JSON object per logged iteration, appended) and TensorBoard events."""
from __future__ import annotations

import json
import os
from pathlib import Path

from edvr_lib.utils.io import atomic_write_text, no_room_as_error

__all__ = ["RunLog"]


class RunLog:
    """``run_dir/train_log.jsonl``, one line appended per entry, and ``run_dir/tb_logger`` events.

    Args:
        run_dir: the run folder.
        upto: keep the entries of iterations ``<= upto`` from an earlier run (a resume drops the rest).
        tensorboard: also write ``run_dir/tb_logger`` events (skipped, with one message, if not installed).
        log: one-line messages.
    """

    def __init__(self, run_dir: str | os.PathLike, upto: int = 0, tensorboard: bool = False, log=print):
        self.path = Path(run_dir) / "train_log.jsonl"
        self.drop_after(upto)
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log("logger.use_tb_logger is on but tensorboard is not installed (pip install tensorboard); "
                    "logging to train_log.jsonl only")
            else:
                self.writer = SummaryWriter(str(Path(run_dir) / "tb_logger"), purge_step=upto + 1)

    def drop_after(self, upto: int) -> None:
        """Forget the entries of iterations ``> upto`` (a resume, a rollback): the next write rewrites the file
        with the others, once, then appends again."""
        self.keep_upto = upto

    def write(self, entry: dict) -> None:
        """Append one entry (and its numbers to TensorBoard)."""
        kept = ""
        if self.keep_upto is not None and self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    if json.loads(line).get("iter", 0) <= self.keep_upto:
                        kept += line + "\n"
                except json.JSONDecodeError:  # a line cut short by a kill
                    continue
            atomic_write_text(self.path, kept)
        self.keep_upto = None
        with no_room_as_error(self.path), open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if self.writer is not None:
            for key, value in entry.items():
                if key == "lr":
                    self.writer.add_scalar("train/lr", value[0], entry["iter"])
                elif key != "iter" and isinstance(value, (int, float)):
                    self.writer.add_scalar(("metrics/" if key.endswith("psnr") or key.endswith("ssim") else "train/")
                                           + key, value, entry["iter"])
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
