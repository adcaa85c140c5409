"""Faults a user meets: a full disk while saving checkpoints and files -> one line naming the folder and its
free space, no temp file left, the previous checkpoint intact."""
import errno
import os
from pathlib import Path

import pytest
import torch

from edvr_lib.train.checkpoint import load_latest, save_checkpoint
from edvr_lib.train.state import init_state
from edvr_lib.train.trainer import train
from edvr_lib.utils import EDVRError
from edvr_lib.utils import io as io_mod
from tests.train.tiny_run import leftovers, options, quiet, random_batches

pytestmark = pytest.mark.usefixtures("one_thread")


def _full_at(it, exc):
    real = torch.save

    def save(obj, f, *a, **k):
        if str(it) in Path(f).name.split(".")[1]:  # temp names: .net_g_4.pth.XXXX.pth
            raise exc
        return real(obj, f, *a, **k)
    return save


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"),
                                 RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")])
def test_checkpoint_on_a_full_disk(embedded_smoke_root, tmp_path, monkeypatch, exc):
    opt = options(embedded_smoke_root, "train.total_iter=4", "logger.save_checkpoint_freq=2")
    monkeypatch.setattr(torch, "save", _full_at(4, exc))
    if isinstance(exc, RuntimeError):  # the zip writer's error counts as a full disk when little is free
        monkeypatch.setattr("edvr_lib.utils.io.free_bytes", lambda folder: 1000)
    with pytest.raises(EDVRError) as info:
        train(opt, tmp_path / "run", device="cpu", batches=random_batches(4), log=quiet())
    msg = str(info.value)
    run = tmp_path / "run"
    assert "\n" not in msg and str(run / "models") in msg and "bytes free" in msg and "needs about" in msg
    assert "latest.state is still valid" in msg and "iteration 2" in msg
    monkeypatch.undo()
    assert not leftovers(run)
    assert torch.load(run / "training_states" / "latest.state", weights_only=True)["iter"] == 2
    summary = train(opt, run, device="cpu", batches=random_batches(4), resume=True, log=quiet())
    assert summary["iter"] == 4


def test_checkpoint_says_early_when_the_disk_is_too_small(embedded_smoke_root, tmp_path, monkeypatch):
    opt = options(embedded_smoke_root, "train.total_iter=2", "logger.save_checkpoint_freq=2")
    monkeypatch.setattr("edvr_lib.train.checkpoint.free_bytes", lambda folder: 10)
    writes = []
    monkeypatch.setattr(torch, "save", lambda *a, **k: writes.append(a))
    with pytest.raises(EDVRError, match=r"there is no earlier checkpoint.*needs about .* bytes, 10 bytes free"):
        train(opt, tmp_path / "run", device="cpu", batches=random_batches(2), log=quiet())
    assert not writes and not leftovers(tmp_path / "run")


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES])
def test_atomic_writers_on_a_full_or_read_only_folder(tmp_path, monkeypatch, code):
    dest = tmp_path / "out" / "log.txt"
    io_mod.atomic_write_text(dest, "old")

    def fail(self, data):
        raise OSError(code, "nope")

    monkeypatch.setattr(Path, "write_bytes", fail)
    for write in (lambda: io_mod.atomic_write_text(dest, "new text"), lambda: io_mod.atomic_write_bytes(dest, b"xy")):
        with pytest.raises(EDVRError) as info:
            write()
        msg = str(info.value)
        assert str(dest.parent) in msg and "free" in msg and "\n" not in msg
    monkeypatch.undo()
    assert dest.read_text() == "old" and sorted(p.name for p in dest.parent.iterdir()) == ["log.txt"]


def test_damaged_states_fall_back_to_the_newest_complete_one(embedded_smoke_root, tmp_path):
    opt = options(embedded_smoke_root, "train.total_iter=4", "logger.save_checkpoint_freq=2")
    run = tmp_path / "run"
    train(opt, run, device="cpu", batches=random_batches(4), log=quiet())
    states = run / "training_states"
    for name in ("latest.state", "4.state"):  # a hard link: truncating one truncates both; do both to be sure
        (states / name).unlink()
        (states / name).write_bytes(b"PK\x03\x04 truncated")
    messages = []
    summary = train(opt, run, device="cpu", batches=random_batches(4), resume=True,
                    log=messages.append)
    assert any("damaged" in m for m in messages) and any("iteration 2" in m for m in messages)
    assert summary["iter"] == 4 and sorted(summary["losses"]) == [3, 4]
    for p in states.glob("*.state"):
        p.unlink()
        p.write_bytes(b"junk")
    with pytest.raises(EDVRError, match="every training state .* is damaged"):
        train(opt, run, device="cpu", batches=random_batches(4), resume=True, log=quiet())


def test_a_save_writes_the_model_and_the_state_once(embedded_smoke_root, tmp_path, monkeypatch):
    opt = options(embedded_smoke_root, "train.total_iter=4")
    state = init_state(opt, torch.device("cpu"), log=quiet())
    run, real, written = tmp_path / "run", torch.save, []

    def save(obj, f, *args, **kwargs):
        written.append(Path(f).name)
        return real(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    state.iteration = 2
    save_checkpoint(state, run, opt)
    assert len(written) == 2  # net_g_2.pth and 2.state; the latest names are hard links to them
    pairs = [(run / "models" / "net_g_{}.pth", run / "models" / "net_g_latest.pth"),
             (run / "training_states" / "{}.state", run / "training_states" / "latest.state")]
    for numbered, latest in pairs:
        assert os.path.samefile(str(numbered).format(2), latest)

    def no_links(src, dst):  # a filesystem without hard links (FAT, some network mounts): latest is a copy
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    state.iteration = 4
    save_checkpoint(state, run, opt)
    for numbered, latest in pairs:
        numbered = Path(str(numbered).format(4))
        assert not os.path.samefile(numbered, latest) and numbered.read_bytes() == latest.read_bytes()
    assert load_latest(run, log=quiet())["iter"] == 4 and not leftovers(run)
