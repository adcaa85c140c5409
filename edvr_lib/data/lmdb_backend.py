"""Optional LMDB storage in BasicSR's layout (needs ``pip install lmdb``).

An ``<name>.lmdb`` folder holds ``data.mdb``, ``lock.mdb`` and ``meta_info.txt``: keys are frame paths without
extension (``000/00000000``; Vimeo-90K ``00001/0001/im4``), values the PNG-encoded frames, and each
``meta_info.txt`` line is ``"<key>.png (h,w,c) <png_compress_level>"``. It pays off on network or spinning disks;
on a local SSD the disk backend is usually as fast.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from edvr_lib.data.io import decode_image, encode_png, read_image_uint8
from edvr_lib.utils import EDVRError

__all__ = ["LmdbStore", "create_lmdb_from_folder", "read_lmdb_meta"]


def _import_lmdb():
    try:
        import lmdb
    except ImportError:
        raise EDVRError("io_backend='lmdb' needs the lmdb package. Fix: `pip install lmdb` "
                        "(or `pip install edvr_lib[lmdb]`), or use io_backend='disk'.") from None
    return lmdb


def read_lmdb_meta(lmdb_path: str | os.PathLike) -> dict[str, tuple[int, int, int]]:
    """Keys and shapes from ``<lmdb>/meta_info.txt`` (``{key: (h, w, c)}``, in file order)."""
    meta = Path(lmdb_path) / "meta_info.txt"
    if not meta.is_file():
        raise EDVRError(f"{meta} not found: {lmdb_path} is not an LMDB made by create_lmdb_from_folder / BasicSR.")
    out = {}
    for line in meta.read_text().splitlines():
        if not line.strip():
            continue
        name, rest = line.split(" ", 1)
        shape = rest.split(")")[0].strip("( ")
        out[name[:-4] if name.endswith(".png") else name] = tuple(int(v) for v in shape.split(","))
    return out


class LmdbStore:
    """Frames stored in an LMDB (same interface as :class:`~edvr_lib.data.frame_store.DiskStore`).

    The environment is opened lazily, so the store can be pickled into DataLoader workers.
    """

    backend = "lmdb"

    def __init__(self, root: str | os.PathLike, role: str = "GT"):
        _import_lmdb()
        self.root = Path(root)
        self.role = role
        if not (self.root / "data.mdb").is_file():
            raise EDVRError(f"{role} LMDB not found: {self.root} (no data.mdb). Fix: build it with edvr_lib.data."
                            "lmdb_backend.create_lmdb_from_folder(folder, path), or use io_backend='disk'.")
        self.meta = read_lmdb_meta(self.root)
        self._clips: dict[str, list[str]] = {}
        for k in self.meta:
            clip, _, frame = k.rpartition("/")
            self._clips.setdefault(clip, []).append(frame)
        self._env = None

    def __getstate__(self):
        return {**self.__dict__, "_env": None}

    def _txn(self):
        if self._env is None:
            lmdb = _import_lmdb()
            self._env = lmdb.open(str(self.root), readonly=True, lock=False, readahead=False, meminit=False)
        return self._env.begin(write=False)

    def read(self, key: str) -> np.ndarray:
        with self._txn() as txn:
            data = txn.get(key.encode("ascii"))
        if data is None:
            raise EDVRError(f"key {key!r} not in {self.root}. Fix: rebuild the LMDB from the complete folder.")
        return decode_image(bytes(data), f"{self.root}:{key}")

    def list_clips(self) -> list[str]:
        return sorted(self._clips)

    def list_frames(self, clip: str) -> list[str]:
        frames = sorted(self._clips.get(clip, []))
        if not frames:
            raise EDVRError(f"clip {clip!r} not in {self.root}. Fix: rebuild the LMDB or drop the clip from the meta "
                            "file.")
        return frames

    def frame_hw(self, key: str) -> tuple[int, int]:
        if key not in self.meta:
            raise EDVRError(f"key {key!r} not in {self.root}/meta_info.txt")
        return self.meta[key][:2]


def create_lmdb_from_folder(folder: str | os.PathLike, lmdb_path: str | os.PathLike, compress_level: int = 1,
                            progress: bool = True) -> Path:
    """Pack every PNG under ``folder`` into ``lmdb_path`` (BasicSR layout; written atomically).

    Args:
        folder: e.g. ``REDS/train_sharp`` (keys ``000/00000000``) or the embedded ``GT`` folder.
        lmdb_path: destination folder, conventionally ending in ``.lmdb`` (returned).
        compress_level: PNG compression level of the stored values.
        progress: show a tqdm bar.
    """
    lmdb = _import_lmdb()
    folder, lmdb_path = Path(folder), Path(lmdb_path)
    files = sorted(folder.rglob("*.png"))
    if not files:
        raise EDVRError(f"no PNG files under {folder}: nothing to put in an LMDB.")
    map_size = int(sum(f.stat().st_size for f in files) * 3 + (64 << 20))
    tmp = lmdb_path.with_name(f".{lmdb_path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        env = lmdb.open(str(tmp), map_size=map_size)
        lines, txn = [], env.begin(write=True)
        for i, f in enumerate(tqdm(files, desc=f"lmdb {lmdb_path.name}", unit="frame", disable=not progress)):
            key = f.relative_to(folder).with_suffix("").as_posix()
            img = read_image_uint8(f)
            txn.put(key.encode("ascii"), encode_png(img, compress_level))
            lines.append(f"{key}.png ({','.join(map(str, img.shape))}) {compress_level}\n")
            if i % 1000 == 999:
                txn.commit()
                txn = env.begin(write=True)
        txn.commit()
        env.close()
        (tmp / "meta_info.txt").write_text("".join(lines))
        if lmdb_path.exists():
            shutil.rmtree(lmdb_path)
        os.replace(tmp, lmdb_path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return lmdb_path
