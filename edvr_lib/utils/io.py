"""Atomic writes (temp file, then rename), file hashing and the smoke-mode switch."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from edvr_lib.utils.errors import EDVRError

#: The checkout this library runs from (configs/, data/, checkpoints/ and docs/ are found from here).
REPO_ROOT = Path(__file__).resolve().parents[2]


def smoke_mode() -> bool:
    """True when ``EDVR_SMOKE=1`` (set by ``make test``): shrink every workload."""
    return os.environ.get("EDVR_SMOKE") == "1"


# torch.save's zip writer reports a failed write as a RuntimeError ("unexpected pos", "file write failed")
_TORCH_WRITE_FAILED = ("unexpected pos", "file write failed", "PytorchStreamWriter failed")


def free_bytes(folder: str | os.PathLike) -> int | None:
    """Bytes free in ``folder`` (its nearest existing parent); None when unknown."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def write_failure(err: BaseException, dest: str | os.PathLike, needed: int | None = None) -> dict | None:
    """What a failed write of ``dest`` means, or None when ``err`` is not a disk / permission failure.

    Returns ``{'reason', 'folder', 'needed', 'free', 'fix'}``; a torch zip-writer RuntimeError counts as a full
    disk when the folder has less than ``needed`` (or under 1 MiB) free.
    """
    folder = Path(dest).parent
    free = free_bytes(folder)
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        reason = err.strerror or str(err)
        room = err.errno in (errno.ENOSPC, errno.EDQUOT)
    elif isinstance(err, RuntimeError) and any(m in str(err) for m in _TORCH_WRITE_FAILED):
        if free is not None and free >= max(needed or 0, 1 << 20):
            return None
        reason, room = "No space left on device", True
    else:
        return None
    fix = f"free disk space in {folder}" if room else f"make {folder} writable (or choose another folder)"
    return {"reason": reason, "folder": folder, "needed": needed, "free": free, "fix": fix}


def space_text(info: dict) -> str:
    """``'needs about N bytes, M bytes free'`` (the folder is in ``info['fix']``) for :func:`write_failure`'s answer."""
    need = f"needs about {info['needed']:,} bytes" if info["needed"] else "needs more room"
    free = f"{info['free']:,} bytes free" if info["free"] is not None else "free space unknown"
    return f"{need}, {free}"


def tensor_bytes(obj) -> int:
    """The bytes of the tensors in a nested dict / list / tuple (what ``torch.save`` writes, give or take the
    pickle): the room a checkpoint or an exported graph needs."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(tensor_bytes(v) for v in obj)
    return 0


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically.

    Raises:
        NoRoomError: the folder is full or not writable (one line: the folder, the bytes needed and free).
    """
    with atomic_path(dest, needed=len(data)) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"))


class NoRoomError(EDVRError):
    """A folder that cannot take a file (full, over quota, read-only, no permission).

    Attributes:
        info: :func:`write_failure`'s answer (``reason``, ``folder``, ``needed``, ``free``, ``fix``).
        cause: the error the write met.
    """

    def __init__(self, message: str, info: dict, cause: BaseException | None = None):
        super().__init__(message)
        self.info, self.cause = info, cause

    def __reduce__(self):  # picklable: under torchrun rank 0 sends the error to every rank
        return type(self), (str(self), self.info, self.cause)

    def retold(self, dest: str | os.PathLike, needed: int | None = None) -> NoRoomError:
        """The same failure told of ``dest`` (e.g. a finished folder instead of a temporary one inside it)."""
        return _no_room(self.cause, Path(dest), needed) or self


def _no_room(err: BaseException | None, dest: Path, needed: int | None) -> NoRoomError | None:
    info = write_failure(err, dest, needed) if err is not None else None
    if info is None:
        return None
    return NoRoomError(f"could not write {dest} ({info['reason']}): {space_text(info)}. Fix: {info['fix']}, "
                       "then rerun.", info, err)


def _concerns(err: BaseException, dest: Path) -> bool:
    """False when ``err`` names a file that is neither ``dest``, its temporary nor one of its folders (a failed
    read of an input file inside a writer is not the output folder's fault)."""
    name = getattr(err, "filename", None)
    if not name:
        return True
    path = Path(os.fsdecode(name))
    return path.parent == dest.parent or path == dest or path in dest.parents


@contextlib.contextmanager
def no_room_as_error(dest: str | os.PathLike, needed: int | None = None) -> Iterator[None]:
    """Turn a full disk, a quota or a read-only / forbidden folder met while writing ``dest`` into one line.

    Every writer goes through here (:func:`atomic_path` does), so the message is the same everywhere:
    ``could not write DEST (REASON): needs about N bytes, M bytes free. Fix: free disk space in FOLDER, then
    rerun.`` Other errors pass through unchanged.

    Args:
        dest: the file being written (its folder is the one named).
        needed: bytes the write needs, when known.

    Raises:
        NoRoomError: the write failed for lack of room or permission.
    """
    dest = Path(dest)
    try:
        yield
    except (OSError, RuntimeError) as err:
        failure = _no_room(err, dest, needed) if _concerns(err, dest) else None
        if failure is None:
            raise
        raise failure from None


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None, needed: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` on success.

    On any exception the temporary file is removed, so ``dest`` is never half-written; a full or read-only
    folder becomes a one-line :class:`NoRoomError` (:func:`no_room_as_error`).

    Args:
        dest: final file path.
        suffix: suffix of the temporary file (default ``dest``'s, so writers that pick a format from the extension,
            such as ``cv2.imwrite``, still work).
        needed: bytes the file will take, when known (named in the message of a full disk).
    """
    dest = Path(dest)
    tmp_path = None
    with no_room_as_error(dest, needed):
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent,
                                       suffix=suffix if suffix is not None else dest.suffix)
            os.close(fd)
            tmp_path = Path(tmp)
            yield tmp_path
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
            os.replace(tmp_path, dest)
        except BaseException:
            if tmp_path is not None:
                tmp_path.unlink(missing_ok=True)
            raise


def sha256_file(path: str | os.PathLike) -> str:
    """The 64-character hex SHA-256 of a file, read in 1 MiB chunks (checkpoints and data files can be large)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
