"""What a trained checkpoint has learned, measured on held-out material only (the model card's figures).

Does it super-resolve (held-out clips, against bicubic and its centre frame x5)? Do the neighbours pay under large
motion (:func:`large_motion_set`: against the centre frame x5 and "PCD motion off")? Does PCD follow the motion
(:func:`~edvr_lib.tutorial.alignment_real.motion_report`)? Does TSA distrust a noise-corrupted frame?

Example::

    rep = checkpoint_report(load_model("checkpoints/edvr_aligning_embedded.pth"))
    for row in gate_rows(rep): print(row)
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from edvr_lib.utils.errors import EDVRError

__all__ = ["HELD_OUT_PHOTOS", "GATES", "large_motion_set", "checkpoint_report", "gate_rows"]

#: scikit-image photos that no embedded clip uses (the held-out clips' own photos are added by large_motion_set)
HELD_OUT_PHOTOS = ("motorcycle_left.png",)

#: (figure, comparison, target, what it means): the acceptance gates of an aligning checkpoint
GATES = (
    ("gain_over_bicubic_db", ">=", 1.0, "held-out clips: EDVR minus MATLAB bicubic (dB)"),
    ("window_over_centre_db", ">=", 0.3, "held-out clips: the true window minus the centre frame x5 (dB)"),
    ("large_window_over_centre_db", ">=", 0.5, "large-motion set: the true window minus the centre frame x5 (dB)"),
    ("epe_ratio", "<=", 0.5, "held-out synthetic clips: learned-motion end-point error / no motion's"),
    ("warp_gap_to_farneback", "<=", 0.1, "Big Buck Bunny: learned warp error ratio minus Farneback's"),
    ("large_pcd_motion_off_cost_db", ">=", 0.3, "large-motion set: what 'PCD motion off' costs (dB)"),
    ("noise_attention_drop", ">=", 0.2, "mean temporal attention of a neighbour: clean minus noise-corrupted"),
)


def _held_out_sources(root) -> list[tuple[str, np.ndarray]]:
    """``[(name, (H, W, 3) float32 RGB in [0, 1])]``: frame 0 of every held-out clip, then the held-out photos."""
    import skimage.data

    from edvr_lib.data import embedded_paths, read_meta_info
    from edvr_lib.data.io import read_image_uint8

    paths = embedded_paths(root)
    sources = [(clip, Path(paths["gt"]) / clip / "00000000.png") for clip, _, _ in read_meta_info(paths["meta_test"])]
    sources += [(Path(name).stem, Path(skimage.data.__file__).parent / name) for name in HELD_OUT_PHOTOS]
    return [(name, read_image_uint8(path).astype(np.float32) / 255.0) for name, path in sources]


def large_motion_set(root=None, windows_per_source: int = 6, gt_size: int = 192, num_frame: int = 5,
                     min_shift: float = 1.0, max_shift: float = 4.0, seed: int = 0) -> dict:
    """Held-out windows under large known motion, rendered as the training windows are (Python's global
    ``random`` state, the renderer's, is restored afterwards).

    Args:
        root: the embedded set (default: build / reuse it).
        windows_per_source: windows per held-out source (frame 0 of each held-out clip, :data:`HELD_OUT_PHOTOS`).
        gt_size, num_frame: GT side of a window (LR side ``gt_size // 4``; smaller sources are skipped), its length.
        min_shift, max_shift: translation per frame, LR px.
        seed: seed of the renderer.

    Returns:
        ``{'lq': (n, t, 3, h, w), 'gt': (n, 3, H, W), 'flow': (n, t, 2, h, w), 'flow_valid': (n, t, 1, h, w),
        'keys': [str]}``.
    """
    from edvr_lib.data import prepare_embedded
    from edvr_lib.data.motion_dataset import render_motion_window

    root = prepare_embedded(progress=False) if root is None else root
    state = random.getstate()
    samples, keys = [], []
    try:
        for s, (name, src) in enumerate(_held_out_sources(root)):
            if min(src.shape[:2]) < gt_size:
                continue
            for i in range(windows_per_source):
                random.seed(seed * 1_000_003 + s * 1000 + i)
                samples.append(render_motion_window(src, num_frame, gt_size, 4, max_shift, static_prob=0.0,
                                                    affine_prob=0.3, occlusion_prob=0.0, min_shift=min_shift))
                keys.append(f"{name}/{i}/{samples[-1]['key']}")
    finally:
        random.setstate(state)
    if not samples:
        raise EDVRError(f"no held-out source is at least gt_size={gt_size} px; use a smaller gt_size")
    return {**{k: torch.stack([w[k] for w in samples]) for k in ("lq", "gt", "flow", "flow_valid")}, "keys": keys}


@torch.no_grad()
def checkpoint_report(model, root=None, windows_per_source: int = 6, gt_size: int = 192,
                      motion_windows_per_clip: int = 3, held: dict | None = None) -> dict:
    """Every figure of :data:`GATES` for one model, on held-out material only.

    Args:
        model: an :class:`~edvr_lib.archs.EDVR` with TSA and LR input.
        root: the embedded set (default: build / reuse it).
        windows_per_source, gt_size: size of the large-motion set (:func:`large_motion_set`).
        motion_windows_per_clip: windows per clip of :func:`~edvr_lib.tutorial.alignment_real.motion_report`.
        held: :func:`edvr_lib.evaluate.evaluate` results of the held-out clips already computed (``'bicubic'``,
            ``'centre_x5'``, ``'model'``).

    Returns:
        ``dict`` with every key of :data:`GATES`, plus ``held_out`` (PSNR / SSIM, overall and per clip),
        ``large_motion`` (the ablation PSNRs, per-window attention drops) and ``motion`` (the motion report).
    """
    from edvr_lib.ablations import CentreFrameOnly, run_ablations
    from edvr_lib.data import prepare_embedded
    from edvr_lib.evaluate import build_dataset, evaluate
    from edvr_lib.models import bicubic_model
    from edvr_lib.tutorial.alignment_real import motion_report
    from edvr_lib.tutorial.tsa_demo import edvr_corruption_attention

    root = prepare_embedded(progress=False) if root is None else root
    model.eval()
    if held is None:
        dataset = build_dataset("embedded", root=root)
        held = {"bicubic": evaluate(bicubic_model(model.num_frame), dataset),
                "centre_x5": evaluate(CentreFrameOnly(model), dataset),
                "model": evaluate(model, dataset)}
    psnr = {k: v["overall"]["psnr"] for k, v in held.items()}

    data = large_motion_set(root, windows_per_source, gt_size, model.num_frame)
    off, centre = "PCD motion off (centre's offsets)", "centre frame only"
    abl = run_ablations(model, data["lq"], data["gt"], variants=[off, centre])
    # per window: mean temporal attention of frame 0 clean minus the same frame noise-corrupted
    att = [edvr_corruption_attention(model, window, "noise", frame=0, seed=i) for i, window in enumerate(data["lq"])]
    drops = [float(r["clean"][0] - r["corrupted"][0]) for r in att]
    motion = motion_report(model, root, windows_per_clip=motion_windows_per_clip)
    return {
        "gain_over_bicubic_db": psnr["model"] - psnr["bicubic"],
        "window_over_centre_db": psnr["model"] - psnr["centre_x5"],
        "large_window_over_centre_db": abl.gain(centre),
        "epe_ratio": motion["epe_ratio"],
        "warp_gap_to_farneback": motion["warp_ratio"] - motion["warp_ratio_farneback"],
        "large_pcd_motion_off_cost_db": abl.gain(off),
        "noise_attention_drop": float(np.mean(drops)),
        "held_out": {k: {"psnr": v["overall"]["psnr"], "ssim": v["overall"]["ssim"],
                         "per_clip": {c: r["psnr"] for c, r in v["per_clip"].items()}} for k, v in held.items()},
        "large_motion": {"psnr": dict(abl.psnr), "windows": len(data["keys"]), "gt_size": gt_size,
                         "attention_drops": drops},
        "motion": {k: v for k, v in motion.items() if k != "clips"},
    }


def gate_rows(report: dict) -> list[dict]:
    """The report against :data:`GATES`: ``[{'figure', 'value', 'target', 'passed', 'what'}]``."""
    def passed(value, op, target):
        return value is not None and (value >= target if op == ">=" else value <= target)

    return [{"figure": key, "value": report[key], "target": f"{op} {target:g}",
             "passed": bool(passed(report[key], op, target)), "what": what} for key, op, target, what in GATES]
