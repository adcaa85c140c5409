"""Frames of one clip from a folder of images or a video file, decoded on demand with a bounded cache
(``edvr infer``'s memory does not grow with the clip), or read whole (``FolderSource(folder).frames()``)."""
from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path
from typing import Iterable

import numpy as np

from edvr_lib.utils import EDVRError

__all__ = ["IMAGE_EXTS", "VIDEO_EXTS", "FrameSource", "FolderSource", "VideoSource", "open_source"]

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")


class FrameSource:
    """Random access to the frames of a clip, decoded on demand with a bounded cache.

    Subclasses implement ``_decode(i)``; ``get(i)`` returns RGB float32 ``(h, w, 3)`` in [0, 1].

    Args:
        cache_size: most frames kept decoded at once.
    """

    names: list[str]
    size: tuple[int, int]  # (h, w)
    fps: float = 25.0

    def __init__(self, cache_size: int = 9):
        self.cache_size = max(1, cache_size)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self.max_cached = 0  # peak number of cached frames (tests check memory stays bounded)

    def __len__(self) -> int:
        return len(self.names)

    def _decode(self, i: int) -> np.ndarray:
        raise NotImplementedError

    def get(self, i: int) -> np.ndarray:
        if i in self._cache:
            self._cache.move_to_end(i)
            return self._cache[i]
        img = self._decode(i)
        if img.shape[:2] != self.size:
            raise EDVRError(f"frame {self.names[i]} is {img.shape[1]}x{img.shape[0]} but the clip's frames are "
                            f"{self.size[1]}x{self.size[0]}; all frames of a clip must have the same size")
        self._cache[i] = img
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        self.max_cached = max(self.max_cached, len(self._cache))
        return img

    def frames(self, indices: Iterable[int] | None = None) -> np.ndarray:
        """Frames ``indices`` (default: all, in order) stacked as ``(n, h, w, 3)`` float32 in [0, 1]."""
        return np.stack([self.get(i) for i in (range(len(self)) if indices is None else indices)])

    def close(self) -> None:
        self._cache.clear()


class FolderSource(FrameSource):
    """The image files of a folder, in sorted name order (sizes checked up front from the headers)."""

    def __init__(self, folder: str | os.PathLike, cache_size: int = 9):
        super().__init__(cache_size)
        folder = Path(folder)
        if not folder.exists():
            raise EDVRError(f"input folder not found: {folder}")
        self.paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTS and p.is_file())
        if not self.paths:
            raise EDVRError(f"no image frames ({', '.join(IMAGE_EXTS)}) in {folder}; put the clip's frames there "
                            "(e.g. 00000000.png, 00000001.png, ...)")
        self.names = [p.name for p in self.paths]
        self.size = self._header_size(self.paths[0])
        for p in self.paths[1:]:  # cheap check before any compute: headers only
            if (size := self._header_size(p)) != self.size:
                raise EDVRError(f"mixed frame sizes: {p} is {size[1]}x{size[0]} but {self.paths[0].name} is "
                                f"{self.size[1]}x{self.size[0]}; all frames of a clip must have the same size")

    @staticmethod
    def _header_size(path: Path) -> tuple[int, int]:
        from PIL import Image, UnidentifiedImageError

        try:
            with Image.open(path) as im:
                return im.size[1], im.size[0]
        except (UnidentifiedImageError, OSError, SyntaxError):
            raise EDVRError(f"unreadable frame: {path} (not a valid image); replace or remove it") from None

    def _decode(self, i: int) -> np.ndarray:
        from edvr_lib.data.io import read_image

        return read_image(self.paths[i])


class VideoSource(FrameSource):
    """Frames of a video file, counted once up front (``grab`` only), then decoded in order with
    ``cv2.VideoCapture`` (consecutive windows only move forward: a cache of ``2 * num_frame - 1`` frames suffices).
    """

    def __init__(self, path: str | os.PathLike, cache_size: int = 9):
        import cv2

        super().__init__(cache_size)
        self.path = Path(path)
        if not self.path.is_file():
            raise EDVRError(f"input video not found: {self.path}")
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            raise EDVRError(f"cannot open video {self.path} (unsupported codec or not a video); "
                            "extract its frames to PNG with ffmpeg and pass the folder instead")
        self.fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        self.size = (int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)))
        count = sum(1 for _ in iter(cap.grab, False))
        cap.release()
        if count == 0:
            raise EDVRError(f"video {self.path} has no readable frames")
        self.names = [f"{i:08d}.png" for i in range(count)]
        self._cap = cv2.VideoCapture(str(self.path))
        self._next = 0  # index of the frame the next read returns

    def _decode(self, i: int) -> np.ndarray:
        import cv2

        if i < self._next:  # going back: reopen (not needed by the streaming order)
            self._cap.release()
            self._cap = cv2.VideoCapture(str(self.path))
            self._next = 0
        rgb = None
        while self._next <= i:
            ok, frame = self._cap.read()
            if not ok:
                raise EDVRError(f"cannot decode frame {self._next} of {self.path}")
            rgb = np.ascontiguousarray(frame[..., ::-1], dtype=np.float32) / 255.0
            self._next += 1
            if self._next <= i:  # keep skipped frames: they are the next windows' neighbours
                self._cache[self._next - 1] = rgb
        return rgb

    def close(self) -> None:
        super().close()
        self._cap.release()


def open_source(path: str | os.PathLike, num_frame: int = 5) -> FrameSource:
    """A :class:`FolderSource` or :class:`VideoSource` for ``path`` with a cache for ``num_frame`` windows."""
    path, cache = Path(path), 2 * num_frame - 1
    if path.is_dir():
        return FolderSource(path, cache)
    if path.suffix.lower() in VIDEO_EXTS:
        return VideoSource(path, cache)
    if not path.exists():
        raise EDVRError(f"input not found: {path}; pass a folder of frames or a video file")
    raise EDVRError(f"cannot use {path} as input: pass a folder of frames or a video ({', '.join(VIDEO_EXTS)})")
