"""The explorer's legends and picture parts: colour wheel, colour bars, captions, a gray backdrop."""
from __future__ import annotations

import numpy as np

from edvr_lib.viz.explorer.maps import MapKind, colormap, flow_rgb

__all__ = ["colour_wheel", "colour_bar", "legend_panel", "caption", "gray"]


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.35, colour=(0, 0, 0)) -> None:
    import cv2

    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)


def colour_wheel(size: int, max_mag: float) -> np.ndarray:
    """The legend of :func:`~edvr_lib.viz.explorer.flow_rgb`: ``(size, size, 3)`` uint8, the colour of a
    displacement ``(dx, dy)`` drawn at that position from the centre (x right, y down), the rim at ``max_mag``
    pixels."""
    r = (size - 1) / 2
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    img = flow_rgb(np.stack([(ys - r) / r * max_mag, (xs - r) / r * max_mag]), max_mag)
    img[np.hypot(xs - r, ys - r) > r] = 255
    return img


def colour_bar(height: int, vmin: float, vmax: float, cmap: str = "viridis", width: int = 14) -> np.ndarray:
    """A vertical colour bar ``(height, width, 3)`` uint8, ``vmax`` at the top."""
    values = np.linspace(vmax, vmin, height)[:, None].repeat(width, axis=1)
    return colormap(values, vmin, vmax, cmap)


def legend_panel(kind: MapKind, height: int, offset_range_px: float) -> np.ndarray:
    """The legend panel of the explorer: a colour wheel (direction) or a colour bar with its fixed range."""
    width, panel = 96, np.full((height, 96, 3), 255, np.uint8)
    if kind.values is None:
        size = min(width - 16, height - 40)
        top = (height - size) // 2
        panel[top:top + size, 8:8 + size] = colour_wheel(size, offset_range_px)
        _text(panel, "+x", (8 + size - 14, top + size // 2 + 4))
        _text(panel, "+y", (8 + size // 2 - 6, top + size - 2))
        _text(panel, "direction", (4, top - 16))
        _text(panel, f"rim {offset_range_px:g} LR px", (2, top + size + 14))
        return panel
    vmax, bar_h = offset_range_px if kind.offsets else 1.0, height - 36
    panel[18:18 + bar_h, 6:20] = colour_bar(bar_h, 0.0, vmax)
    for frac in (0.0, 0.5, 1.0):
        y = 18 + round((1 - frac) * (bar_h - 1))
        _text(panel, f"{frac * vmax:.2f}".rstrip("0").rstrip(".") if frac else "0", (24, y + 4))
    _text(panel, kind.legend, (4, 12))
    _text(panel, "fixed scale", (4, height - 6))
    return panel


def caption(img: np.ndarray, text: str) -> np.ndarray:
    """``img`` with a 14-pixel caption strip on top (the text cut to the width)."""
    import cv2

    while len(text) > 1 and cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.33, 1)[0][0] > img.shape[1] - 4:
        text = text[:-1]
    strip = np.full((14, img.shape[1], 3), 255, np.uint8)
    _text(strip, text, (2, 10), scale=0.33)
    return np.concatenate([strip, img], axis=0)


def gray(img: np.ndarray) -> np.ndarray:
    """``(h, w, 3)`` -> its luminance repeated in 3 channels (float64), the backdrop under a map."""
    return np.repeat((img.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None], 3, axis=2)
