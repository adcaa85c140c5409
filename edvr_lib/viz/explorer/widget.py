"""The ipywidgets explorer: controls over one recorded window at a time, pictures drawn from the map table."""
from __future__ import annotations

import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.explorer.legends import caption, gray, legend_panel
from edvr_lib.viz.explorer.maps import (CORRUPTIONS, LEVELS, MAP_KINDS, OFFSET_RANGE_PX, colormap, compute_internals,
                                        corrupt, flow_rgb, map_image, window_maps)
from edvr_lib.viz.figures import _upscale_nearest, as_uint8

__all__ = ["AttentionExplorer", "LRUCache"]


_CONTROLS = ("map_type", "frame", "level", "group", "channel", "relative", "opacity", "center", "corruption",
             "corrupt_frame")
#: the controls a map kind may use (:attr:`MapKind.controls`), with the value a picture's key holds when unused
_MAP_CONTROLS = (("frame", 0), ("level", ""), ("group", 0), ("relative", False), ("channel", -1))


class LRUCache(OrderedDict):
    """At most ``size`` entries; :meth:`get_or_make` makes a missing one and forgets the least recently used."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def get_or_make(self, key, make: Callable):
        if key in self:
            self.move_to_end(key)
        else:
            self[key] = make()
            while len(self) > self.size:
                self.popitem(last=False)
        return self[key]


class AttentionExplorer:
    """Sliders over the PCD offsets, DCN masks and TSA attention of a trained EDVR, frame by frame of a clip.

    Give a whole clip (``clip``; a slider moves the window through it) or one window (``lq``, optionally with its
    recorded ``internals``); :meth:`from_embedded` reads a clip of the embedded set and its true flow.

    Args:
        model: an EDVR in eval mode; None: the shipped checkpoint (:func:`edvr_lib.models.tutorial_model`), or
            recorded ``internals`` only.
        lq: one window ``(t, 3, h, w)`` (or ``(1, t, 3, h, w)``) of LR frames in [0, 1].
        internals: a recorded :class:`~edvr_lib.introspect.Internals` of ``lq`` (skips its forward pass).
        clip: ``(n, 3, h, w)`` LR frames of a clip (instead of ``lq``), windows padded ``reflection_circle``.
        center: the clip's frame at the centre of the first window (default: the middle of the clip).
        true_flow: ``f(center_idx, nbr_idx) -> (2, h, w)`` ``(dy, dx)`` LR pixels (as
            :func:`edvr_lib.data.ground_truth_flow`), drawn beside the learned offsets.
        display_height: the shown maps are scaled (nearest) to about this many pixels tall.
        title: shown above the controls (default: the model's label).
        offset_range_px: top of the fixed offset colour scale, LR pixels.
        max_windows: recorded windows kept (each is one forward pass).

    Attributes:
        widgets: ipywidgets by control name (:data:`_CONTROLS`) plus ``'image'``, ``'info'``, ``'title'``.
        ui: the ``VBox`` to display (``display(explorer)`` works too).
        forward_passes, redraws: model runs and redraws so far; ``render_cache`` holds the drawn pictures.
        draw_seconds: ``[(seconds, served_from_cache)]`` of each redraw.
        rec: the recorded internals of the current window.
    """

    def __init__(self, model=None, lq=None, internals=None, clip=None, center: int | None = None,
                 true_flow: Callable | None = None, display_height: int = 256, title: str | None = None,
                 offset_range_px: float = OFFSET_RANGE_PX, max_windows: int = 12, clip_name: str | None = None):
        import ipywidgets as W

        if model is None and internals is None:
            from edvr_lib.models import tutorial_model

            model, label = tutorial_model()
            title = title or f"{label}: attention explorer"
        if (lq is None) == (clip is None):
            raise EDVRError("AttentionExplorer needs the LR frames: one window `lq` ((t, 3, h, w), values in [0, 1]) "
                            "or a whole clip `clip` ((n, 3, h, w)), not both")
        if internals is not None and lq is None:
            raise EDVRError("AttentionExplorer: `internals` were recorded on one window; pass that window as `lq`")
        if display_height < 64:
            raise EDVRError(f"display_height must be at least 64 pixels (the legend needs them), got {display_height}")
        if offset_range_px <= 0:
            raise EDVRError(f"offset_range_px must be > 0 (LR pixels), got {offset_range_px}")
        self.model = model
        if model is not None:
            self.num_frame, self.center_frame_idx = model.num_frame, model.center_frame_idx
        else:  # recorded internals only
            self.num_frame = internals.pcd_offsets["l1"].shape[1]
            self.center_frame_idx = self.num_frame // 2
        self.clip = clip
        if clip is not None and (clip.dim() != 4 or clip.shape[0] < 1):
            raise EDVRError(f"clip must be (n, 3, h, w) LR frames, got {tuple(clip.shape)}")
        if clip is None:
            self.lq = lq[0] if lq.dim() == 5 else lq
            if self.lq.shape[0] != self.num_frame:
                raise EDVRError(f"lq has {self.lq.shape[0]} frames; this model takes num_frame={self.num_frame}")
        self.true_flow, self.clip_name, self.offset_range_px = true_flow, clip_name, float(offset_range_px)
        self.display_height, self.max_windows, self.forward_passes, self.redraws = display_height, max_windows, 0, 0
        self.draw_seconds: list[tuple[float, bool]] = []
        self._windows = LRUCache(max_windows)  # recorded windows: one forward pass each
        self.render_cache = LRUCache(512)  # drawn pictures
        n = 1 if self.clip is None else self.clip.shape[0]
        center = (n // 2 if center is None else center) if self.clip is not None else 0
        if not 0 <= center < n:
            raise EDVRError(f"center={center} outside the clip's frames 0..{n - 1}")
        if internals is not None:
            self._windows.get_or_make((0, "none", 0), lambda: (self.lq, internals,
                                                       window_maps(internals, self.center_frame_idx)))
            self.rec = internals
        maps = self._window(center, "none", 0)[2]
        has_tsa = maps.temporal_attn is not None
        map_types = [k.name for k in MAP_KINDS.values() if has_tsa or not k.needs_tsa]
        num_channels = maps.spatial_attn.shape[0] if has_tsa else 0
        style, t = {"description_width": "130px"}, self.num_frame
        self.widgets: dict[str, Any] = {
            "title": W.HTML(f"<b>{title or 'EDVR attention explorer'}</b>"),
            "map_type": W.Dropdown(options=map_types, value=map_types[0], description="map", style=style),
            "frame": W.IntSlider(value=0, min=0, max=t - 1, description="frame (t)", style=style),
            "level": W.Dropdown(options=LEVELS, value="l1", description="pyramid level", style=style),
            "group": W.Dropdown(options=[("all (mask-weighted)", -1)] + [(str(g), g) for g in range(maps.num_groups)],
                                value=-1, description="deform. group", style=style),
            "channel": W.Dropdown(options=[("mean over channels", -1)] + [(str(c), c) for c in range(num_channels)],
                                  value=-1, description="attention channel", style=style),
            "relative": W.Checkbox(value=True, description="offsets minus the centre frame's", indent=False,
                                   tooltip="subtract the centre frame's self-alignment offsets (they are not 0)"),
            "opacity": W.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="map opacity", style=style),
            "center": W.IntSlider(value=center, min=0, max=n - 1, description="clip centre frame", style=style,
                                  disabled=self.clip is None),
            "corruption": W.Dropdown(options=CORRUPTIONS, value="none", description="corrupt a frame", style=style,
                                     disabled=model is None),
            "corrupt_frame": W.IntSlider(value=0, min=0, max=t - 1, description="corrupted frame (t)", style=style),
            "image": W.Image(format="png"),
            "info": W.HTML(),
        }
        for name in _CONTROLS:
            self.widgets[name].observe(self._on_change, names="value")
        left = W.VBox([self.widgets[k] for k in ("map_type", "frame", "level", "group", "channel")])
        right = W.VBox([self.widgets[k] for k in ("center", "opacity", "corruption", "corrupt_frame", "relative")])
        self.ui = W.VBox([self.widgets["title"], W.HBox([left, right]), self.widgets["image"], self.widgets["info"]])
        self._shown: np.ndarray | None = None
        self._batch = self._dirty = False
        self._draw()

    @classmethod
    def from_embedded(cls, clip_name: str, root=None, model=None, center: int | None = None,
                      crop: tuple[int, int, int, int] | None = None, **kwargs) -> "AttentionExplorer":
        """An explorer over a clip of the embedded set (its LR frames; the true flow for synthetic clips).

        Args:
            clip_name: a clip folder of the set (``bbb_102``, ``syn_mixed_ihc``, ...).
            root: the built set (:func:`edvr_lib.data.prepare_embedded`'s folder; default: build / reuse it).
            model: as in the constructor (default: the shipped checkpoint).
            center: first centre frame.
            crop: ``(y, x, h, w)`` LR crop (h, w multiples of 4) to keep each window's forward pass quick.
            **kwargs: passed to the constructor (``display_height``, ``title``, ``offset_range_px``, ...).
        """
        import torch

        from edvr_lib.data import embedded_paths, ground_truth_flow, prepare_embedded, synthetic_clip_names
        from edvr_lib.data.frame_sources import FolderSource

        paths = embedded_paths(root if root is not None else prepare_embedded(progress=False))
        folder = Path(paths["lq"]) / clip_name
        if not any(folder.glob("*.png")):
            known = ", ".join(sorted(p.name for p in Path(paths["lq"]).iterdir() if p.is_dir()))
            raise EDVRError(f"no LR frames in {folder}: {clip_name!r} is not a clip of this set (clips: {known})")
        clip = torch.from_numpy(FolderSource(folder).frames().transpose(0, 3, 1, 2).copy())
        y, x, h, w = crop or (0, 0, *clip.shape[-2:])
        if crop is not None and (h % 4 or w % 4 or h <= 0 or w <= 0 or y < 0 or x < 0 or y + h > clip.shape[-2]
                                 or x + w > clip.shape[-1]):
            raise EDVRError(f"crop={crop} must be (y, x, h, w) inside the {clip.shape[-2]}x{clip.shape[-1]} LR "
                            "frames with h and w multiples of 4")
        clip = clip[..., y:y + h, x:x + w].contiguous()
        true_flow = None
        if clip_name in synthetic_clip_names(paths["root"]):
            def true_flow(c, j):
                return ground_truth_flow(paths["root"], clip_name, c, j)[:, y:y + h, x:x + w]
        return cls(model=model, clip=clip, center=center, true_flow=true_flow, clip_name=clip_name, **kwargs)

    # state ---------------------------------------------------------------------------------
    @property
    def state(self) -> dict:
        """Current control values, by control name."""
        return {k: self.widgets[k].value for k in _CONTROLS}

    def current_image(self) -> np.ndarray:
        """The RGB ``(H, W, 3)`` uint8 picture shown now (input frame | map over the frame | true flow | legend)."""
        if self._shown is None:  # drawn from the cache: decode its PNG
            from edvr_lib.data.io import decode_image

            png = bytes(self.widgets["image"].value)  # the widget may hold a memoryview
            self._shown = as_uint8(decode_image(png, "explorer picture"))
        return self._shown

    def set(self, **values) -> None:
        """Set controls by name (``explorer.set(frame=2, map_type='DCN mask')``), like moving them."""
        if (bad := next((k for k in values if k not in _CONTROLS), None)) is not None:
            raise EDVRError(f"unknown control {bad!r}; use one of {', '.join(_CONTROLS)}")
        self._batch, self._dirty = True, False
        try:
            for k, v in values.items():
                self.widgets[k].value = v
        finally:
            self._batch = False
        if self._dirty:  # one redraw for the whole call
            self.redraws += 1
            self._draw()

    def clip_indices(self, center: int | None = None) -> list[int]:
        """Clip frame of each window position for a centre frame (``[0..t-1]`` for a single window)."""
        if self.clip is None:
            return list(range(self.num_frame))
        from edvr_lib.data import generate_frame_indices

        center = self.widgets["center"].value if center is None else center
        return generate_frame_indices(center, self.num_frame, self.clip.shape[0], "reflection_circle")

    def temporal_attention_per_frame(self) -> np.ndarray | None:
        """``(t,)`` mean temporal attention of each frame of the current window (None without TSA)."""
        maps = self._window(*self._window_key())[2]
        return None if maps.temporal_attn is None else maps.temporal_attn.mean(axis=(1, 2))

    # windows -------------------------------------------------------------------------------
    def _window_key(self) -> tuple:
        s = self.state
        return s["center"], s["corruption"], s["corrupt_frame"] if s["corruption"] != "none" else 0

    def _window(self, center: int, corruption: str, corrupt_frame: int):
        def record():
            if self.model is None:
                raise EDVRError("AttentionExplorer: a new window needs a model (only recorded internals were given)")
            lq = self.lq if self.clip is None else self.clip[self.clip_indices(center)]
            if corruption != "none":
                lq = lq.clone()
                lq[corrupt_frame] = corrupt(lq[corrupt_frame], corruption, seed=corrupt_frame)
            rec, _ = compute_internals(self.model, lq)
            rec.aligned = None  # not shown; the largest tensor
            self.forward_passes += 1
            return lq, rec, window_maps(rec, self.center_frame_idx)

        window = self._windows.get_or_make((center, corruption, corrupt_frame), record)
        self.rec = window[1]
        return window

    # drawing -------------------------------------------------------------------------------
    def _on_change(self, _change) -> None:
        if self._batch:
            self._dirty = True
            return
        self.redraws += 1
        self._draw()

    def _key(self) -> tuple:
        """The picture's key: the window, the map kind, and only the controls that change that kind."""
        s = self.state
        uses = MAP_KINDS[s["map_type"]].controls
        return (*self._window_key(), s["map_type"], *(s[c] if c in uses else unused for c, unused in _MAP_CONTROLS),
                round(s["opacity"], 3))

    def _panel(self, img: np.ndarray) -> np.ndarray:
        h = self.display_height
        return _upscale_nearest(img, (h, max(1, round(img.shape[1] * h / img.shape[0]))))

    def _render(self, key: tuple) -> tuple[np.ndarray, str]:
        center, corruption, corrupt_frame, map_type, frame, level, group, relative, channel, opacity = key
        lq, _rec, maps = self._window(center, corruption, corrupt_frame)
        kind = MAP_KINDS[map_type]
        idx = self.clip_indices(center)
        lr_pos = frame if "frame" in kind.controls else self.center_frame_idx
        lr = self._panel(as_uint8(lq[lr_pos].permute(1, 2, 0).numpy()))
        img, text = map_image(maps, map_type, frame, level or "l1", group, relative, channel, self.offset_range_px)
        m = self._panel(img)
        over = (opacity * m + (1 - opacity) * gray(_upscale_nearest(lr, m.shape[:2]))).round().astype(np.uint8)
        where = f"frame {lr_pos}" + (f" = clip {idx[lr_pos]}" if self.clip is not None else "")
        panels = [caption(lr, ("corrupted " if corruption != "none" and lr_pos == corrupt_frame else "input ")
                          + where), caption(over, map_type)]
        extra = ""
        if self.true_flow is not None and kind.offsets:
            true = np.asarray(self.true_flow(idx[self.center_frame_idx], idx[frame]), dtype=np.float64)
            tmag = np.sqrt((true ** 2).sum(0))
            timg = flow_rgb(true, self.offset_range_px) if kind.values is None else \
                colormap(tmag, 0, self.offset_range_px)
            panels.append(caption(self._panel(timg), "true flow (LR px)"))
            learned = maps.flow(level, group, relative)[frame]
            if learned.shape == true.shape:
                epe = float(np.sqrt(((learned - true) ** 2).sum(0)).mean())
                extra = (f"; against the true flow: mean end-point error {epe:.2f} LR px, a zero-motion guess "
                         f"{float(tmag.mean()):.2f} px" + ("" if relative else " (compare with relative offsets on)"))
        panels.append(caption(legend_panel(kind, self.display_height, self.offset_range_px), "legend"))
        gap = np.full((panels[0].shape[0], 6, 3), 255, np.uint8)
        shown = np.concatenate([x for p in panels for x in (p, gap)][:-1], axis=1)
        centre = " (centre frame)" if lr_pos == self.center_frame_idx else ""
        info = f"left: LR input frame {lr_pos}{centre}" + (f" (clip frame {idx[lr_pos]})" if self.clip is not None
                                                            else "") + f"; middle: {text}{extra}"
        if maps.temporal_attn is not None:
            means = maps.temporal_attn.mean(axis=(1, 2))
            marks = [f"{i}{'*' if corruption != 'none' and i == corrupt_frame else ''}"
                     f"{' (centre)' if i == self.center_frame_idx else ''}: {v:.3f}" for i, v in enumerate(means)]
            info += "<br>mean temporal attention per frame: " + ", ".join(marks)
            if corruption != "none":
                info += f" (* {corruption})"
        return shown, info

    def _draw(self) -> None:
        from edvr_lib.data.io import encode_png

        start, s = time.perf_counter(), self.state
        uses = MAP_KINDS[s["map_type"]].controls
        for control, _unused in _MAP_CONTROLS:
            self.widgets[control].disabled = control not in uses
        self.widgets["corrupt_frame"].disabled = self.model is None or s["corruption"] == "none"
        key = self._key()
        cached = key in self.render_cache
        self._shown = None

        def render():
            self._shown, text = self._render(key)
            return encode_png(self._shown, compression=1), text

        self.widgets["image"].value, self.widgets["info"].value = self.render_cache.get_or_make(key, render)
        self.draw_seconds.append((time.perf_counter() - start, cached))

    def _ipython_display_(self):
        from IPython.display import display

        display(self.ui)
