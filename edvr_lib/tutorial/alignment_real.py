"""PCD alignment on real frames (notebook 02): the learned EDVR's offsets on Big Buck Bunny vs classical optical flow.

Real footage has no true flow, so alignment is judged by the **warp error**: mean |warp(neighbour, estimate) -
centre| (LR pixels, 0..1 intensity), for "no motion", for the learned PCD motion (the L1 DCN's offsets, recorded by
:func:`edvr_lib.introspect.record_internals`, mask-weighted means by :func:`edvr_lib.introspect.offsets_to_flow`,
minus the centre frame's self-alignment) and for OpenCV's Farneback flow. The warp is only a probe: EDVR's DCNs
sample *features* with 9 taps per group and a mask, which a mean offset summarises but is not all of.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from edvr_lib.data import ground_truth_flow
from edvr_lib.data.frame_sources import FolderSource
from edvr_lib.introspect import offsets_to_flow, record_internals
from edvr_lib.tutorial.pcd_demo import ERROR_LABEL, _panel, _quiver, warp
from edvr_lib.utils.errors import EDVRError
from edvr_lib.viz.data_figures import pyplot

__all__ = ["read_clip", "farneback_flow", "learned_motion", "compare_alignment", "true_flow_epe", "most_moving_center",
           "real_alignment_figure", "motion_report", "level_motion", "level_motion_set", "level_motion_figure"]


def read_clip(lq_dir, clip: str) -> np.ndarray:
    """Every LR frame of ``lq_dir/clip`` as ``(n, h, w, 3)`` in [0, 1], cropped to h, w divisible by 4."""
    frames = FolderSource(Path(lq_dir) / clip).frames()
    return frames[:, : frames.shape[1] // 4 * 4, : frames.shape[2] // 4 * 4]


def farneback_flow(centre: np.ndarray, nbr: np.ndarray) -> np.ndarray:
    """Dense Farneback optical flow from ``centre`` to ``nbr`` (``(h, w, 3)`` RGB in [0, 1]) as ``(2, h, w)``
    ``[dy, dx]`` in pixels; as :func:`edvr_lib.data.ground_truth_flow`, ``warp(nbr, flow)`` approximates ``centre``."""
    import cv2

    def grey(img):
        return cv2.cvtColor((np.clip(img, 0, 1) * 255).round().astype(np.uint8), cv2.COLOR_RGB2GRAY)

    # pyramid scale 0.5, 3 levels, window 9, 3 iterations, polynomial n=5, sigma 1.1 (small LR frames)
    flow = cv2.calcOpticalFlowFarneback(grey(centre), grey(nbr), None, 0.5, 3, 9, 3, 5, 1.1, 0)
    return np.ascontiguousarray(flow[..., ::-1].transpose(2, 0, 1)).astype(np.float32)


@torch.no_grad()
def learned_motion(model, window: torch.Tensor) -> dict:
    """One forward of an EDVR (without ``hr_in``) on a ``(1, t, 3, h, w)`` window and its PCD motion estimate.

    Returns:
        ``dict`` with ``raw`` ``(t, 2, h, w)`` (L1 DCN motion of every frame), ``self_flow`` ``(2, h, w)`` (the
        centre's), ``flow`` (``raw - self_flow``), ``masks`` ``(t, h, w)`` (L1 DCN mask, mean over groups and taps)
        and ``output`` ``(1, 3, 4h, 4w)``.
    """
    if model.config.hr_in:
        raise EDVRError("learned_motion needs an EDVR with LR input (hr_in=False): with hr_in its offsets are in "
                        "pixels of a 4x smaller feature")
    device = next(model.parameters()).device
    model.eval()
    with record_internals(model) as rec:
        out = model(window.to(device)).cpu()
    raw = offsets_to_flow(rec.pcd_offsets["l1"][0], rec.pcd_masks["l1"][0])
    ctr = model.config.center
    return {"raw": raw, "self_flow": raw[ctr], "flow": raw - raw[ctr], "output": out,
            "masks": rec.pcd_masks["l1"][0].mean(dim=(1, 2))}


def compare_alignment(model, frames: np.ndarray, border: int = 4) -> dict:
    """Warp error of every neighbour: no motion, the learned PCD motion, and Farneback flow.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.
        frames: ``(t, h, w, 3)`` consecutive LR frames in [0, 1], ``t = num_frame``, ``h, w`` divisible by 4.
        border: pixels excluded on each side.

    Returns:
        ``dict`` with ``neighbours`` (window indices, centre excluded), per neighbour arrays ``err_none``,
        ``err_learned``, ``err_farneback`` (mean |warp(nbr, estimate) - centre|), ``mag_learned``, ``mag_farneback``
        and ``epe_learned_vs_farneback`` (mean lengths, px), their means as ``mean_err_none`` etc., the maps
        ``learned`` / ``farneback`` ``(t, 2, h, w)``, ``warped_learned`` / ``warped_farneback`` ``(t, h, w, 3)``,
        ``frames``, ``masks``, ``self_flow``, ``center``.

    Raises:
        EDVRError: wrong number of frames or a size not divisible by 4.
    """
    t, h, w, _ = frames.shape
    if t != model.config.num_frame or h % 4 or w % 4:
        raise EDVRError(f"compare_alignment needs {model.config.num_frame} frames with h, w divisible by 4; got "
                        f"frames shaped {frames.shape}; crop them, e.g. frames[:, :h - h % 4, :w - w % 4]")
    ctr = model.config.center
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2)  # (t, 3, h, w)
    est = learned_motion(model, x[None])
    fb = torch.stack([torch.from_numpy(farneback_flow(frames[ctr], frames[i])) if i != ctr else torch.zeros(2, h, w)
                      for i in range(t)])
    learned = est["flow"]
    warped_l, warped_f = warp(x, learned), warp(x, fb)
    b = (slice(border, -border or None), slice(border, -border or None))
    nbrs = [i for i in range(t) if i != ctr]

    def err(img):
        return np.array([float((img[i] - x[ctr]).abs().mean(0)[b].mean()) for i in nbrs])

    def mag(flow):
        return np.array([float(torch.linalg.vector_norm(flow[i], dim=0)[b].mean()) for i in nbrs])

    per = {"err_none": err(x), "err_learned": err(warped_l), "err_farneback": err(warped_f),
           "mag_learned": mag(learned), "mag_farneback": mag(fb), "epe_learned_vs_farneback": mag(learned - fb)}
    return {"neighbours": nbrs, **per, **{"mean_" + k: float(v.mean()) for k, v in per.items()},
            "learned": learned, "farneback": fb, "frames": frames, "masks": est["masks"], "self_flow": est["self_flow"],
            "warped_learned": warped_l.permute(0, 2, 3, 1).numpy(),
            "warped_farneback": warped_f.permute(0, 2, 3, 1).numpy(), "center": ctr}


def real_alignment_figure(res: dict, nbr: int, label: str = "", arrow_scale: float = 3.0):
    """One neighbour ``nbr`` of :func:`compare_alignment`: frames and motion estimates (top), the error left after
    each warp and the L1 DCN mask (bottom)."""
    plt = pyplot()
    ctr, frames = res["center"], res["frames"]
    h, w = frames.shape[1:3]
    step = max(3, min(h, w) // 10)
    fig, axes = plt.subplots(2, 4, figsize=(16, 6.4))
    _panel(axes[0, 0], np.clip(frames[ctr], 0, 1), f"centre frame (window index {ctr})")
    _panel(axes[0, 1], np.clip(frames[nbr], 0, 1), f"neighbour (window index {nbr})")
    k = res["neighbours"].index(nbr)
    for ax, key, colour, name in ((axes[0, 2], "learned", "cyan", "learned PCD motion"),
                                  (axes[0, 3], "farneback", "yellow", "Farneback flow")):
        _quiver(ax, np.clip(frames[ctr], 0, 1), res[key][nbr].numpy(), step, arrow_scale, colour,
                f"{name} (arrows x{arrow_scale:g}), mean |flow| {res['mag_' + key][k]:.2f} px")
    errs = [(f"|neighbour - centre|: {res['err_none'][k]:.4f}", frames[nbr]),
            (f"after learned warp: {res['err_learned'][k]:.4f}", res["warped_learned"][nbr]),
            (f"after Farneback warp: {res['err_farneback'][k]:.4f}", res["warped_farneback"][nbr])]
    vmax = float(np.abs(frames[nbr] - frames[ctr]).mean(-1).max())
    for ax, (name, img) in zip(axes[1, :3], errs):
        _panel(ax, np.abs(img - frames[ctr]).mean(-1), name, ERROR_LABEL, cmap="inferno", vmin=0, vmax=vmax)
    _panel(axes[1, 3], res["masks"][nbr].numpy(), "L1 DCN mask (mean of groups and taps)", "mask (0..1)",
           cmap="viridis", vmin=0, vmax=1)
    for ax in axes.ravel():
        ax.set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    fig.suptitle(label or "Alignment on real frames: learned PCD motion vs Farneback optical flow")
    fig.tight_layout()
    return fig


LEVEL_NAMES = {"l3": "L3 (1/4 size)", "l2": "L2 (1/2 size)", "l1": "L1 (full LR size)",
               "cascade": "L1 + cascade"}


@torch.no_grad()
def level_motion(model, window: torch.Tensor, true_flow: torch.Tensor | None = None,
                 valid: torch.Tensor | None = None, border: int = 4) -> dict:
    """Coarse to fine: the motion each PCD stage estimates, in LR pixels at LR size, and its end-point error.

    Each level's motion as in :func:`learned_motion`, times its downscale (x4 for L3, x2 for L2), upsampled
    bilinearly; ``'cascade'`` is L1 plus the cascading DCN's residual offsets.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` with LR input.
        window: ``(1, t, 3, h, w)`` LR frames, ``h, w`` divisible by 4.
        true_flow, valid: optional ``(t, 2, h, w)`` true motion (centre -> frame, LR px) for the end-point errors,
            and ``(t, 1, h, w)``, 0 where it is unknown.
        border: pixels excluded on each side from the errors.

    Returns:
        ``{'flow': {level: (t, 2, h, w)}, 'epe': {level: px} or None, 'epe_zero': px or None}`` with levels
        ``l3, l2, l1, cascade``; the errors are means over the neighbours' valid pixels.
    """
    import torch.nn.functional as F

    model.eval()
    device = next(model.parameters()).device
    with record_internals(model) as rec:
        model(window.to(device))
    h, w = window.shape[-2:]
    ctr = model.config.center
    flows = {}
    for level, factor in (("l3", 4), ("l2", 2), ("l1", 1)):
        raw = offsets_to_flow(rec.pcd_offsets[level][0], rec.pcd_masks[level][0]) * factor
        raw = F.interpolate(raw, size=(h, w), mode="bilinear", align_corners=False) if factor > 1 else raw
        flows[level] = raw - raw[ctr]
    casc = offsets_to_flow(rec.pcd_offsets["cascade"][0], rec.pcd_masks["cascade"][0])
    flows["cascade"] = flows["l1"] + casc - casc[ctr]
    if true_flow is None:
        return {"flow": flows, "epe": None, "epe_zero": None}
    nbrs = [i for i in range(window.shape[1]) if i != ctr]
    keep = torch.zeros(len(nbrs), h, w)
    keep[:, border:h - border, border:w - border] = 1
    if valid is not None:
        keep = keep * valid[nbrs, 0]

    def epe(flow):
        return float((torch.linalg.vector_norm(flow[nbrs] - true_flow[nbrs], dim=1) * keep).sum() / keep.sum())

    return {"flow": flows, "epe": {k: epe(v) for k, v in flows.items()},
            "epe_zero": epe(torch.zeros_like(true_flow))}


def level_motion_set(model, windows: dict) -> dict:
    """:func:`level_motion` on every window of ``windows`` (``{'lq': (n, t, 3, h, w), 'flow': (n, t, 2, h, w),
    'flow_valid': (n, t, 1, h, w)}``, e.g. :func:`~edvr_lib.tutorial.checkpoint_report.large_motion_set`).

    Returns:
        ``{'windows': [level_motion result per window], 'epe': {level: px}, 'epe_zero': px}`` (means over windows).
    """
    results = [level_motion(model, windows["lq"][i:i + 1], windows["flow"][i], windows["flow_valid"][i])
               for i in range(len(windows["lq"]))]
    return {"windows": results, "epe": {k: float(np.mean([r["epe"][k] for r in results])) for k in LEVEL_NAMES},
            "epe_zero": float(np.mean([r["epe_zero"] for r in results]))}


def level_motion_figure(res: dict, frame: int, true_flow: torch.Tensor | None = None, max_mag: float | None = None,
                        label: str = ""):
    """Neighbour ``frame``'s motion at every PCD stage of :func:`level_motion`'s ``res`` (after the optional true
    motion ``(t, 2, h, w)``), in flow colours with the wheel's rim at ``max_mag`` LR px (default: the largest)."""
    from edvr_lib.viz.explorer import colour_wheel, flow_rgb

    plt = pyplot()
    panels = [("true motion", true_flow[frame], None)] if true_flow is not None else []
    panels += [(LEVEL_NAMES[k], res["flow"][k][frame], res["epe"][k] if res["epe"] else None) for k in LEVEL_NAMES]
    if max_mag is None:
        ref = true_flow[frame] if true_flow is not None else res["flow"]["l1"][frame]
        max_mag = max(float(torch.linalg.vector_norm(ref, dim=0).max()), 0.5)
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(3.2 * (len(panels) + 1), 3.4),
                             gridspec_kw={"width_ratios": [1] * len(panels) + [0.6]})
    for ax, (name, flow, epe) in zip(axes, panels):
        h, w = flow.shape[-2:]
        ax.imshow(flow_rgb(flow.numpy(), max_mag), extent=(0, w, h, 0), interpolation="nearest")
        mean = float(torch.linalg.vector_norm(flow, dim=0).mean())
        extra = f"\nEPE {epe:.2f} px (all neighbours)" if epe is not None else ""
        ax.set_title(f"{name}\nmean |motion| {mean:.2f} LR px{extra}", fontsize=9)
        ax.set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    axes[-1].imshow(colour_wheel(101, max_mag), extent=(-max_mag, max_mag, max_mag, -max_mag))
    axes[-1].set(title=f"direction; rim {max_mag:.1f} LR px", xlabel="dx (LR px)", ylabel="dy (LR px)")
    fig.suptitle(label or f"PCD coarse to fine: the motion of window frame {frame} at every level")
    fig.tight_layout()
    return fig


def true_flow_epe(res: dict, root, clip: str, center: int, border: int = 4, origin: tuple[int, int] = (0, 0)) -> dict:
    """End-point errors of :func:`compare_alignment`'s ``res`` (the window of the known-motion ``clip`` centred on
    ``center``, its top-left corner at ``origin`` ``(y, x)``) against the true motion, ``border`` px excluded.

    Returns:
        ``{"learned": px, "farneback": px, "zero": px}``: mean |estimate - true flow| over the neighbours.
    """
    h, w = res["frames"].shape[1:3]
    nbrs = res["neighbours"]
    y, x = origin
    true = torch.stack([torch.from_numpy(ground_truth_flow(root, clip, center, center + i - res["center"], scale="lr"))
                        [:, y:y + h, x:x + w] for i in nbrs])
    b = (..., slice(border, -border or None), slice(border, -border or None))

    def epe(flow):
        return float(torch.linalg.vector_norm(flow, dim=1)[b].mean())

    return {"learned": epe(res["learned"][nbrs] - true), "farneback": epe(res["farneback"][nbrs] - true),
            "zero": epe(true)}


def most_moving_center(frames: np.ndarray, num_frame: int = 5) -> int:
    """The centre index whose window of the clip ``frames`` ``(n, h, w, 3)`` has the largest mean |neighbour -
    centre| (real clips move unevenly)."""
    n, r = len(frames), num_frame // 2
    if n < num_frame:
        raise EDVRError(f"a clip of {n} frames is shorter than the window ({num_frame} frames)")
    score = [np.mean([np.abs(frames[c + d] - frames[c]).mean() for d in range(-r, r + 1) if d])
             for c in range(r, n - r)]
    return r + int(np.argmax(score))


def motion_report(model, root=None, windows_per_clip: int = 3, max_side: int = 96) -> dict:
    """How well a model's PCD motion follows the motion of the held-out embedded clips (its alignment score).

    Known-motion clips give the learned end-point error over "no motion"'s (1: no motion learned, 0: exact), the
    others (Big Buck Bunny) the warp error over "no motion"'s, learned and Farneback's.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` without ``hr_in``.
        root: the embedded set (default: build / reuse it).
        windows_per_clip, max_side: windows per clip, spread over it, cropped to at most ``max_side`` LR pixels.

    Returns:
        ``{"epe_ratio": mean over known-motion clips, "warp_ratio": ..., "warp_ratio_farneback": ...,
        "clips": {clip: {...}}}`` (a ratio is None when no clip of that kind is held out).
    """
    from edvr_lib.data import embedded_paths, prepare_embedded, read_meta_info, synthetic_clip_names

    root = prepare_embedded(progress=False) if root is None else root
    paths = embedded_paths(root)
    known = set(synthetic_clip_names(root))
    r = model.config.num_frame // 2
    clips, epe, warp_l, warp_f = {}, [], [], []
    for clip, n, _shape in read_meta_info(paths["meta_test"]):
        frames = read_clip(paths["lq"], clip)
        h, w = frames.shape[1:3]
        ch, cw = min(h, max_side) // 4 * 4, min(w, max_side) // 4 * 4
        y, x = (h - ch) // 2 // 4 * 4, (w - cw) // 2 // 4 * 4
        centres = np.linspace(r, n - 1 - r, windows_per_clip).round().astype(int)
        rows = []
        for c in centres:
            res = compare_alignment(model, frames[c - r:c + r + 1, y:y + ch, x:x + cw])
            row = {"center": int(c), "warp_ratio": res["mean_err_learned"] / res["mean_err_none"],
                   "warp_ratio_farneback": res["mean_err_farneback"] / res["mean_err_none"]}
            if clip in known:
                ep = true_flow_epe(res, root, clip, int(c), origin=(y, x))
                row["epe_ratio"] = ep["learned"] / max(ep["zero"], 1e-8)
            rows.append(row)
        summary = {k: float(np.mean([row[k] for row in rows])) for k in rows[0] if k != "center"}
        clips[clip] = {**summary, "windows": rows}
        if clip in known:
            epe.append(summary["epe_ratio"])
        else:
            warp_l.append(summary["warp_ratio"])
            warp_f.append(summary["warp_ratio_farneback"])
    means = {k: float(np.mean(v)) if v else None
             for k, v in (("epe_ratio", epe), ("warp_ratio", warp_l), ("warp_ratio_farneback", warp_f))}
    return {**means, "clips": clips}

