"""Reading and writing frames safely.

Every frame goes through :func:`read_image`: RGB float32 ``(h, w, 3)`` in [0, 1] (8-bit ``/ 255``, 16-bit
``/ 65535``, grayscale copied into R, G and B, alpha dropped **only if fully opaque**); a missing, empty, corrupt
or transparent file is refused with an :class:`~edvr_lib.utils.EDVRError` naming the file and the fix.
:func:`write_png` writes through a temporary file and a rename (a crash leaves no half-written PNG).
"""
from __future__ import annotations

import os
import struct
from pathlib import Path

import cv2
import numpy as np

from edvr_lib.utils import EDVRError, atomic_path

__all__ = ["decode_image", "png_header", "read_image", "read_image_uint8", "write_png", "encode_png", "read_meta_info",
           "meta_info_lines"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_FIX_CORRUPT = ("re-extract or re-download this frame (or regenerate it); "
                "`edvr prepare-reds --root PATH --check-only` lists every unreadable frame")


def _not_found(path: Path) -> EDVRError:
    return EDVRError(f"frame not found: {path}. Check the dataset folder (every clip needs all its frames).")


def png_header(path: str | os.PathLike) -> dict:
    """Width, height, bit depth and channel count of a PNG, from its header only (no decoding).

    Raises:
        EDVRError: the file is missing or does not start with a valid PNG header.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except FileNotFoundError:
        raise _not_found(path) from None
    if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise EDVRError(f"not a valid PNG (bad header): {path}. Fix: {_FIX_CORRUPT}.")
    width, height, depth, color_type = struct.unpack(">IIBB", head[16:26])
    channels = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}.get(color_type, 0)
    return {"width": width, "height": height, "bit_depth": depth, "channels": channels}


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode encoded image bytes (PNG, ...) to RGB float32 ``(h, w, 3)`` in [0, 1].

    Args:
        data: the file's bytes.
        name: shown in error messages (a path or an LMDB key).
    """
    if not data:
        raise EDVRError(f"empty image file: {name}. Fix: {_FIX_CORRUPT}.")
    buf = np.frombuffer(data, dtype=np.uint8)
    img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if img is None or img.size == 0:
        raise EDVRError(f"cannot decode image (corrupt or truncated): {name}. Fix: {_FIX_CORRUPT}.")
    if data[:8] == PNG_SIGNATURE and not _png_complete(data):
        # libpng may return a partially decoded image for a truncated file: refuse it
        raise EDVRError(f"truncated PNG (no IEND chunk): {name}. Fix: {_FIX_CORRUPT}.")
    return _to_rgb_float(img, name)


def _png_complete(data: bytes) -> bool:
    return b"IEND" in data[-32:]


def _to_rgb_float(img: np.ndarray, name: str) -> np.ndarray:
    if img.dtype == np.uint8:
        peak = 255.0
    elif img.dtype == np.uint16:
        peak = 65535.0
    else:
        raise EDVRError(f"unsupported pixel type {img.dtype} in {name}: save frames as 8-bit or 16-bit PNG.")
    if img.ndim == 2:
        img = img[:, :, None]
    c = img.shape[2]
    if c in (2, 4):
        alpha = img[:, :, -1]
        if alpha.min() < (255 if peak == 255.0 else 65535):
            raise EDVRError(
                f"{name} has transparent pixels (alpha channel): video super-resolution needs opaque frames. "
                "Fix: flatten the frames onto a background and save them as RGB PNGs "
                "(e.g. `convert in.png -background black -flatten -alpha off out.png`).")
        img = img[:, :, :-1]
        c -= 1
    if c == 1:
        img = np.repeat(img, 3, axis=2)
    elif c == 3:
        img = img[:, :, ::-1]  # OpenCV decodes BGR
    else:
        raise EDVRError(f"{name} has {c} channels; expected 1 (gray), 3 (RGB) or 4 (RGBA).")
    return np.ascontiguousarray(img, dtype=np.float32) / np.float32(peak)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read a frame as RGB float32 ``(h, w, 3)`` in [0, 1] (rules in the module docstring).

    Raises:
        EDVRError: missing, empty, corrupt, transparent or otherwise unusable file; the
            message names the file and the fix.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise _not_found(path) from None
    except IsADirectoryError:
        raise EDVRError(f"expected an image file but found a folder: {path}.") from None
    return decode_image(data, str(path))


def read_image_uint8(path: str | os.PathLike) -> np.ndarray:
    """Like :func:`read_image` but returns RGB uint8 ``(h, w, 3)`` (16-bit input is rounded)."""
    return np.floor(read_image(path) * 255.0 + 0.5).astype(np.uint8)


def encode_png(img_rgb: np.ndarray, compression: int = 3) -> bytes:
    """Encode an RGB ``(h, w, 3)`` uint8 image (or float in [0, 1]) as PNG bytes."""
    img = to_uint8(img_rgb)
    ok, buf = cv2.imencode(".png", img[:, :, ::-1] if img.ndim == 3 else img,
                           [cv2.IMWRITE_PNG_COMPRESSION, int(compression)])
    if not ok:  # pragma: no cover - cv2 only fails on invalid arrays, caught above
        raise EDVRError("PNG encoding failed")
    return buf.tobytes()


def write_png(path: str | os.PathLike, img_rgb: np.ndarray, compression: int = 3) -> Path:
    """Write an RGB image atomically (temporary file, then rename).

    Args:
        path: destination ``.png``; parent folders are created.
        img_rgb: ``(h, w, 3)`` uint8, or float in [0, 1] (rounded to uint8).
        compression: zlib level 0-9 (3 is a good size/speed balance for video frames).
    """
    path = Path(path)
    data = encode_png(img_rgb, compression)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def to_uint8(img: np.ndarray) -> np.ndarray:
    """uint8 as is; float in [0, 1] rounded half up and clipped to ``[0, 255]`` uint8 (same shape)."""
    if img.dtype == np.uint8:
        return img
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(np.floor(img * 255.0 + 0.5), 0, 255).astype(np.uint8)
    raise EDVRError(f"cannot write an image of dtype {img.dtype}; use uint8 or float in [0, 1]")


def meta_info_lines(clips) -> str:
    """The BasicSR meta info text of ``[(clip, num_frames, (h, w)), ...]`` (RGB, one line per clip)."""
    return "".join(f"{name} {n} ({h},{w},3)\n" for name, n, (h, w) in clips)


def read_meta_info(path: str | os.PathLike) -> list[tuple[str, int, tuple[int, int, int]]]:
    """Parse a BasicSR meta info file: lines ``"<clip> <num_frames> (<h>,<w>,<c>)"``.

    Returns:
        ``[(clip, num_frames, (h, w, c)), ...]`` in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise EDVRError(f"meta info file not found: {path}. Fix: pass the right path, or meta_info_file=None to "
                        "scan the GT folder.")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=2)
        try:
            shape = tuple(int(v) for v in parts[2].strip().strip("()").split(",")) if len(parts) > 2 else (0, 0, 3)
            out.append((parts[0], int(parts[1]), shape))
        except (ValueError, IndexError):
            raise EDVRError(f"{path}:{n}: cannot parse {line!r}; expected '<clip> <num_frames> (<h>,<w>,<c>)', "
                            "e.g. '000 100 (720,1280,3)'.") from None
    if not out:
        raise EDVRError(f"meta info file is empty: {path}.")
    return out
