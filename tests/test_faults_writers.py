"""Faults a user meets outside training: a full or read-only disk while `edvr infer`, `edvr export`, `edvr docs`
and `edvr prepare-embedded` write, and a kill while `edvr infer` writes. Each gives one line (the folder, the
bytes needed and free), exit code 2, no temporary file and no half-written output; a rerun of an interrupted
`edvr infer` reuses its finished frames."""
import errno
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from edvr_lib.cli import main as cli_main
from edvr_lib.data.io import write_png
from edvr_lib.infer import STAGING, STAMP, _complete_png
from edvr_lib.utils.io import NoRoomError
from tests.test_infer import _frames

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.usefixtures("one_thread")


def _infer(src: Path, out: Path, *extra: str) -> int:
    return cli_main(["infer", "--input", str(src), "--output", str(out), "--model", "bicubic", "--device", "cpu",
                     "--no-progress", *extra])


def _fail_png_writes_after(monkeypatch, n: int, code: int = errno.ENOSPC) -> None:
    """Every PNG write after the first ``n`` fails with ``code`` (the disk fills up mid-clip)."""
    real, count = Path.write_bytes, [0]

    def write_bytes(self, data):
        if self.suffix == ".png":
            count[0] += 1
            if count[0] > n:
                raise OSError(code, os.strerror(code))
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", write_bytes)


def _one_line(err: str, folder: Path) -> str:
    """The one error line of stderr (a progress bar may share it); it names ``folder`` and the free bytes."""
    lines = [line for line in err.splitlines() if ": error: " in line]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert str(folder) in lines[0] and "bytes free" in lines[0], err
    return lines[0]


def _temporaries(folder: Path) -> list[Path]:
    """atomic_path's temporaries (``.NAME.XXXX.SUFFIX`` files), wherever they are below ``folder``."""
    return [p for p in folder.rglob(".*") if p.is_file()]


def _video_frames(path: Path) -> list[np.ndarray]:
    import cv2

    cap, out = cv2.VideoCapture(str(path)), []
    ok, img = cap.read()
    while ok:
        out.append(img)
        ok, img = cap.read()
    cap.release()
    return out


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EROFS])
@pytest.mark.parametrize("kind", ["frames", "video"])
def test_infer_on_a_full_disk_then_rerun(tmp_path, capsys, monkeypatch, code, kind):
    _frames(tmp_path / "in", 6, 16, 20)
    name = "out" if kind == "frames" else "out.mp4"
    out, staging = tmp_path / name, tmp_path / STAGING.format(name)
    _fail_png_writes_after(monkeypatch, 2, code)
    assert _infer(tmp_path / "in", out) == 2
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()  # the stream was closed
    line = _one_line(capsys.readouterr().err, tmp_path)
    assert f"could not write {out} " in line and "needs about" in line and f"2 finished frames in {staging}" in line
    monkeypatch.undo()
    assert not out.exists() and not _temporaries(staging)
    kept = sorted(p.name for p in staging.glob("*.png"))
    assert kept == ["00000000.png", "00000001.png"] and all(_complete_png(staging / n) for n in kept)

    assert _infer(tmp_path / "in", out) == 0
    assert "reusing 2 finished frames of 6" in capsys.readouterr().out
    assert not staging.exists() and not _temporaries(tmp_path)
    assert _infer(tmp_path / "in", tmp_path / f"ref_{name}") == 0  # uninterrupted
    if kind == "frames":
        assert sorted(p.name for p in out.iterdir()) == [f"{i:08d}.png" for i in range(6)]
        assert all((out / p.name).read_bytes() == p.read_bytes() for p in (tmp_path / "ref_out").iterdir())
    else:
        got, ref = _video_frames(out), _video_frames(tmp_path / "ref_out.mp4")
        assert len(got) == len(ref) == 6 and all(np.array_equal(a, b) for a, b in zip(got, ref))


def test_infer_staging_of_other_arguments_is_removed_or_named(tmp_path, capsys, monkeypatch):
    _frames(tmp_path / "in", 6, 16, 20)
    for name in ("out", "other"):  # two interrupted runs
        _fail_png_writes_after(monkeypatch, 2)
        assert _infer(tmp_path / "in", tmp_path / name) == 2
        monkeypatch.undo()
    capsys.readouterr()
    assert _infer(tmp_path / "in", tmp_path / "out", "--tile", "8") == 0  # other settings: nothing reused
    printed = capsys.readouterr().out
    assert f"removed {tmp_path / '.out.partial'}" in printed and "settings" in printed and "reusing" not in printed
    assert f"note: {tmp_path / '.other.partial'}" in printed and str(tmp_path / "other") in printed
    assert (tmp_path / ".other.partial" / STAMP).is_file() and not (tmp_path / ".out.partial").exists()


def test_infer_into_a_read_only_folder(tmp_path, capsys, monkeypatch):
    _frames(tmp_path / "in", 6, 16, 20)
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name.endswith(".partial"):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert _infer(tmp_path / "in", tmp_path / "out") == 2
    line = _one_line(capsys.readouterr().err, tmp_path)
    assert f"could not write {tmp_path / 'out'} (Read-only file system)" in line and f"make {tmp_path} writable" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


def test_infer_bad_input_after_some_frames_leaves_nothing(tmp_path, capsys):
    _frames(tmp_path / "in", 6, 16, 20)
    data = (tmp_path / "in" / "00000005.png").read_bytes()
    (tmp_path / "in" / "00000005.png").write_bytes(data[: len(data) // 2])
    assert _infer(tmp_path / "in", tmp_path / "out") == 2
    assert "00000005.png" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


_SLOW_INFER = """
import sys, time
import edvr_lib.data.io as io
real = io.write_png
def slow(*args, **kwargs):  # a slow network: one frame every 0.2 s
    out = real(*args, **kwargs)
    time.sleep(0.2)
    return out
io.write_png = slow
from edvr_lib.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow  # the killed `edvr infer` is a new Python process: importing torch takes seconds
def test_a_killed_infer_is_finished_by_a_rerun(tmp_path, capsys):
    _frames(tmp_path / "in", 12, 16, 20)
    out, staging = tmp_path / "out", tmp_path / ".out.partial"
    args = ["infer", "--input", str(tmp_path / "in"), "--output", str(out), "--model", "bicubic", "--device", "cpu",
            "--no-progress"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", _SLOW_INFER, *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while len(list(staging.glob("*.png"))) < 3:
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "no frames were staged"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    assert not out.exists()
    done = {p.name: p.stat().st_mtime_ns for p in staging.glob("*.png")}
    assert 3 <= len(done) < 12 and not _temporaries(staging)

    assert _infer(tmp_path / "in", out) == 0
    assert f"reusing {len(done)} finished frames of 12" in capsys.readouterr().out
    assert {n: (out / n).stat().st_mtime_ns for n in done} == done  # the very files of the killed run
    assert _infer(tmp_path / "in", tmp_path / "ref") == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())
    assert all((out / p.name).read_bytes() == p.read_bytes() for p in (tmp_path / "ref").iterdir())
    assert not staging.exists()


def test_export_on_a_full_disk(tmp_path, capsys, monkeypatch):
    from edvr_lib.models import random_weights_model, save_pretrained

    net = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                               num_reconstruct_block=1)
    ckpt = save_pretrained(net, tmp_path / "w" / "tiny.pth")

    class FullDisk:  # the exported program; its save meets a full disk
        def save(self, path, **kwargs):
            Path(path).write_bytes(b"\x08\x01" * 100)  # a part of the graph, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("edvr_lib.export._to_onnx", lambda model, example, opset: (FullDisk(), ("h", "w")))
    out = tmp_path / "out" / "tiny.onnx"
    out.parent.mkdir()
    assert cli_main(["export", "--weights", str(ckpt), "--output", str(out), "--repeats", "1"]) == 2
    err = capsys.readouterr().err
    _one_line(err, out.parent)
    needed = sum(v.numel() * v.element_size() for v in net.state_dict().values())
    assert f"needs about {needed:,} bytes" in err
    assert list(out.parent.iterdir()) == []


def test_docs_figure_on_a_full_disk(tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    from edvr_lib.viz.make_docs import _save

    def savefig(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", savefig)
    (tmp_path / "docs").mkdir()
    with pytest.raises(NoRoomError) as info:
        _save(plt.figure(), tmp_path / "docs" / "figure.png")
    assert "\n" not in str(info.value) and f"free disk space in {tmp_path / 'docs'}" in str(info.value)
    assert list((tmp_path / "docs").iterdir()) == []
    # under torchrun, rank 0 pickles the error to the other ranks (distributed.on_main): it must survive that
    copy = pickle.loads(pickle.dumps(info.value))
    assert type(copy) is NoRoomError and str(copy) == str(info.value) and copy.info == info.value.info


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_prepare_embedded_on_a_full_or_read_only_disk(tmp_path, capsys, monkeypatch, code):
    root = tmp_path / "data"
    _fail_png_writes_after(monkeypatch, 3, code)
    assert cli_main(["prepare-embedded", "--root", str(root), "--smoke"]) == 2
    line = _one_line(capsys.readouterr().err, root)
    assert line.startswith("edvr prepare-embedded: error: could not write")
    assert [p.name for p in root.iterdir()] == [".smoke.lock"]  # no half-built variant, no building folder

    real_open = open

    def read_only(path, *args, **kwargs):
        if str(path).endswith(".lock"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", read_only)
    assert cli_main(["prepare-embedded", "--root", str(root), "--smoke"]) == 2
    err = capsys.readouterr().err
    _one_line(err, root)
    assert f"make {root} writable" in err


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A real 1 MB tmpfs (needs root and `mount`), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_infer_fills_a_real_small_disk(tmp_path, capsys, tiny_tmpfs):
    rng = np.random.default_rng(1)
    for i in range(8):  # noise: each x4 frame is ~200 kB as PNG, so 1 MB fills up after a few
        write_png(tmp_path / "in" / f"{i:08d}.png", rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    out = tiny_tmpfs / "out"
    assert _infer(tmp_path / "in", out) == 2
    err = capsys.readouterr().err
    line = _one_line(err, tiny_tmpfs)
    assert "No space left on device" in line and f"finished frames in {tiny_tmpfs / '.out.partial'}" in line
    staged = list((tiny_tmpfs / ".out.partial").glob("*.png"))
    assert 0 < len(staged) < 8 and all(_complete_png(p) for p in staged)
    assert not out.exists() and not _temporaries(tiny_tmpfs)
