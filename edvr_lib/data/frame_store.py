"""Where frames come from (a folder of PNGs or an LMDB file) and how clips are found and checked.

A *key* names one frame without extension, as in BasicSR: ``"000/00000042"`` for REDS,
``"00001/0001/im4"`` for Vimeo-90K. :class:`DiskStore` reads ``<root>/<key>.png``;
:class:`~edvr_lib.data.lmdb_backend.LmdbStore` reads the PNG bytes stored under that key.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edvr_lib.data.io import png_header, read_image
from edvr_lib.utils import EDVRError

__all__ = ["DiskStore", "make_store", "open_clip_stores", "ClipInfo", "resolve_lq_root", "scan_clips",
           "check_pair_sizes", "check_loaded_pair", "read_pair"]


class DiskStore:
    """Frames as ``<root>/<key>.png``."""

    backend = "disk"

    def __init__(self, root: str | os.PathLike, role: str = "GT"):
        self.root = Path(root)
        self.role = role
        if not self.root.is_dir():
            raise EDVRError(f"{role} folder not found: {self.root}. Fix: check "
                            f"dataroot_{'gt' if role == 'GT' else 'lq'} (for the embedded set use "
                            "edvr_lib.data.embedded_paths(prepare_embedded())).")

    def path(self, key: str) -> Path:
        return self.root / f"{key}.png"

    def read(self, key: str) -> np.ndarray:
        """RGB float32 ``(h, w, 3)`` in [0, 1]."""
        return read_image(self.path(key))

    def list_clips(self) -> list[str]:
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def list_frames(self, clip: str) -> list[str]:
        folder = self.root / clip
        if not folder.is_dir():
            raise EDVRError(f"clip folder not found: {folder}. Fix: restore the clip or remove it from the meta "
                            "info file.")
        return sorted(p.stem for p in folder.glob("*.png"))

    def frame_hw(self, key: str) -> tuple[int, int]:
        head = png_header(self.path(key))
        return head["height"], head["width"]


def make_store(root: str | os.PathLike, backend: str, role: str):
    """A :class:`DiskStore` or an LMDB store for ``root``."""
    if backend == "disk":
        return DiskStore(root, role)
    if backend == "lmdb":
        from edvr_lib.data.lmdb_backend import LmdbStore

        return LmdbStore(root, role)
    raise EDVRError(f"io_backend must be 'disk' or 'lmdb', got {backend!r}")


def open_clip_stores(dataroot_gt, dataroot_lq, io_backend: str, scale: int, meta_info_file=None):
    """Open the GT and LQ stores and list clip names (from the meta info file, or the GT folder).

    Returns:
        ``(gt_store, lq_store, names, expected)`` where ``expected`` maps clip -> frame count from the
        meta file, or is ``None`` when the GT folder was scanned.
    """
    from edvr_lib.data.io import read_meta_info

    lq_root = resolve_lq_root(dataroot_lq, scale) if io_backend == "disk" else Path(dataroot_lq)
    gt_store, lq_store = make_store(dataroot_gt, io_backend, "GT"), make_store(lq_root, io_backend, "LQ")
    if meta_info_file is None:
        return gt_store, lq_store, gt_store.list_clips(), None
    meta = read_meta_info(meta_info_file)
    return gt_store, lq_store, [m[0] for m in meta], {m[0]: m[1] for m in meta}


def resolve_lq_root(dataroot_lq: str | os.PathLike, scale: int = 4) -> Path:
    """REDS' ``train_sharp_bicubic`` with or without its ``X4`` level (the official archive has it, BasicSR's
    configs do not): an ``X4`` folder that is the only folder in ``dataroot_lq`` is used."""
    root, level = Path(dataroot_lq), Path(dataroot_lq) / f"X{scale}"
    alone = level.is_dir() and not any(p.is_dir() and p.name != level.name and not p.name.startswith(".")
                                       for p in root.iterdir())
    return level if alone else root


@dataclass
class ClipInfo:
    """One clip: its name and the frame names (keys are ``f"{name}/{frame}"``)."""

    name: str
    frames: list[str]

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def key(self, idx: int) -> str:
        return f"{self.name}/{self.frames[idx]}"


def scan_clips(gt_store, lq_store, clip_names: list[str], expected: dict[str, int] | None = None,
               min_frames: int = 1) -> list[ClipInfo]:
    """Find every clip's frames and check GT and LQ agree.

    Args:
        gt_store, lq_store: GT and LQ frames.
        clip_names: clips to use.
        expected: frame counts from a meta info file (checked when given).
        min_frames: the fewest frames a clip may have (``num_frame`` for the datasets).

    Raises:
        EDVRError: a missing or empty clip, GT and LQ frames that differ, a count other than the meta info file's,
            or a clip shorter than ``min_frames``.
    """
    clips = []
    for name in clip_names:
        frames = gt_store.list_frames(name)
        where = getattr(gt_store, "root", "")
        if not frames:
            raise EDVRError(f"clip {name!r} is empty: no PNG frames in {Path(where) / name}. Fix: restore its frames "
                            "or remove the clip from the meta info file.")
        lq_frames = lq_store.list_frames(name)
        if lq_frames != frames:
            missing = sorted(set(frames) - set(lq_frames))[:5]
            extra = sorted(set(lq_frames) - set(frames))[:5]
            raise EDVRError(f"clip {name!r}: LQ frames in {Path(getattr(lq_store, 'root', '')) / name} do not match GT "
                            f"({len(lq_frames)} vs {len(frames)}; missing in LQ: {missing}, only in LQ: {extra}). "
                            "Fix: regenerate LR (`edvr prepare-reds --root PATH --regenerate-lr`) or restore frames.")
        if expected is not None and name in expected and expected[name] != len(frames):
            raise EDVRError(f"clip {name!r}: the meta info file says {expected[name]} frames but {len(frames)} were "
                            f"found in {Path(where) / name}. Fix: restore the missing frames or rewrite the meta info "
                            "(`edvr prepare-reds --root PATH` writes it).")
        if len(frames) < min_frames:
            raise EDVRError(f"clip {name!r} has {len(frames)} frames, fewer than num_frame={min_frames} "
                            f"({Path(where) / name}). Fix: use a smaller num_frame or leave the clip out.")
        clips.append(ClipInfo(name, frames))
    return clips


def check_pair_sizes(gt_store, lq_store, key: str, scale: int) -> tuple[int, int]:
    """Check that the LQ frame ``key`` is exactly GT/scale (header only); return the LQ ``(h, w)``."""
    lh, lw = lq_store.frame_hw(key)
    _check_scale(gt_store.frame_hw(key), (lh, lw), scale, f"size mismatch for frame {key}", _where(gt_store, key),
                 _where(lq_store, key))
    return lh, lw


def _check_scale(gt_hw, lq_hw, scale: int, what: str, gt_where: str, lq_where: str) -> None:
    (gh, gw), (lh, lw) = gt_hw, lq_hw
    if (gh, gw) != (lh * scale, lw * scale):
        raise EDVRError(f"{what}: GT {gw}x{gh} ({gt_where}) is not {scale}x LQ {lw}x{lh} ({lq_where}). Fix: "
                        f"regenerate LR frames with `edvr prepare-reds --root PATH --regenerate-lr`, or crop GT to "
                        f"a multiple of {scale} first.")


def _where(store, key: str) -> str:
    return str(store.path(key)) if hasattr(store, "path") else f"{getattr(store, 'root', '')}:{key}"


def read_pair(gt_store, lq_store, gt_key: str, lq_keys: list[str], scale: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The GT frame ``gt_key`` and the LQ frames ``lq_keys``, checked with :func:`check_loaded_pair`."""
    img_gt, img_lqs = gt_store.read(gt_key), [lq_store.read(k) for k in lq_keys]
    check_loaded_pair(img_gt, img_lqs, lq_keys, gt_key, scale, gt_store, lq_store)
    return img_gt, img_lqs


def check_loaded_pair(img_gt: np.ndarray, img_lqs: list[np.ndarray], lq_keys: list[str], gt_key: str, scale: int,
                      gt_store, lq_store) -> None:
    """Check decoded frames: every LQ frame the same size, and GT exactly ``scale`` times it."""
    lh, lw = img_lqs[0].shape[:2]
    for img, key in zip(img_lqs, lq_keys):
        if img.shape[:2] != (lh, lw):
            raise EDVRError(f"LQ frames of one clip differ in size: {_where(lq_store, lq_keys[0])} is {lw}x{lh} but "
                            f"{_where(lq_store, key)} is {img.shape[1]}x{img.shape[0]}. Fix: regenerate the clip's LR "
                            "frames (`edvr prepare-reds --root PATH --regenerate-lr`).")
    _check_scale(img_gt.shape[:2], (lh, lw), scale, "size mismatch", _where(gt_store, gt_key),
                 _where(lq_store, lq_keys[0]))
