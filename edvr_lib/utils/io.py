"""Atomic writes (temp file, then rename), file hashing and the smoke-mode switch."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator

#: The checkout this library runs from (configs/, data/, checkpoints/ and docs/ are found from here).
REPO_ROOT = Path(__file__).resolve().parents[2]


def smoke_mode() -> bool:
    """True when ``EDVR_SMOKE=1`` (set by ``make test``): shrink every workload."""
    return os.environ.get("EDVR_SMOKE") == "1"


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dest``; rename it onto ``dest`` on success.

    On any exception the temporary file is removed, so ``dest`` is never half-written.

    Args:
        dest: final file path.
        suffix: suffix of the temporary file (defaults to ``dest``'s, so writers that
            pick a format from the extension, such as ``cv2.imwrite``, still work).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix if suffix is not None else dest.suffix,
                               dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file normal permissions
        os.replace(tmp_path, dest)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(dest: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    atomic_write_bytes(dest, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (checkpoints and data files can be large).

    Args:
        path: file to hash.

    Returns:
        The 64-character hex digest.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
