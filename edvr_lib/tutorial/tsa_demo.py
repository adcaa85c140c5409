"""TSA fusion opened up, and a small TSA trained to ignore a corrupted neighbour (notebook 03).

* :func:`trace_fusion`: every intermediate of one :class:`~edvr_lib.archs.TSAFusion` forward;
* :class:`TSADemo`: per-frame features, a real ``TSAFusion`` and a residual on the centre frame;
* :class:`AlignedWindows`: windows of the synthetic clips, neighbours aligned by the *true* flow, so that fusion is
  all that is left to learn;
* :func:`train_tsa_demo`: restore the centre frame from windows with a random neighbour corrupted (a fixed fusion
  weight cannot ignore it, a content-dependent one can); :func:`corruption_attention` measures that weight.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from edvr_lib.archs.blocks import ResidualBlockNoBN, lrelu, make_layer
from edvr_lib.archs.tsa_arch import TSAFusion
from edvr_lib.data.corruption import FRAME_FAULTS, corrupt_frame
from edvr_lib.data.transforms import frames_to_tensor
from edvr_lib.introspect import record_internals
from edvr_lib.losses import charbonnier
from edvr_lib.metrics import calculate_psnr
from edvr_lib.tutorial.fit import DemoHistory, fit_demo
from edvr_lib.tutorial.pcd_demo import SyntheticPairs, _panel, warp
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks
from edvr_lib.viz.data_figures import as_image, pyplot

__all__ = ["FusionTrace", "trace_fusion", "TSADemo", "AlignedWindows", "CORRUPTIONS",
           "USEFULNESS_FAULTS", "frame_usefulness", "frame_usefulness_figure", "train_tsa_demo", "corruption_attention",
           "edvr_corruption_attention", "attention_maps_figure", "spatial_attention_figure", "attention_bars_figure"]

CORRUPTIONS = FRAME_FAULTS[:2]  # what the small TSA is trained on: noise, occlusion
USEFULNESS_FAULTS = FRAME_FAULTS[:3]  # what :func:`frame_usefulness` shows: noise, occlusion, blur


@dataclass
class FusionTrace:
    """Everything one :class:`TSAFusion` forward computed (detached CPU tensors).

    Attributes:
        emb_ref: ``(b, c, h, w)`` centre-frame embedding ``temporal_attn1(F_ctr)``.
        emb: ``(b, t, c, h, w)`` every frame's embedding ``temporal_attn2(F_t)``.
        corr: ``(b, t, h, w)`` per-pixel dot product of ``emb[:, t]`` with ``emb_ref`` over channels.
        temporal_attn: ``(b, t, h, w)`` ``sigmoid(corr)``, the weight of frame ``t`` at each pixel.
        fused: ``(b, c, h, w)`` ``lrelu(feat_fusion(weighted frames))``.
        spatial_logits, spatial_attn: ``(b, c, h, w)`` spatial attention (``spatial_attn5``'s output), its sigmoid.
        spatial_add: ``(b, c, h, w)`` additive map (``spatial_attn_add2``).
        output: ``(b, c, h, w)`` the module's output, ``fused * spatial_attn * 2 + spatial_add``.
        shapes: ``[(layer name, output shape), ...]`` in call order.
    """

    emb_ref: torch.Tensor | None = None
    emb: torch.Tensor | None = None
    corr: torch.Tensor | None = None
    temporal_attn: torch.Tensor | None = None
    fused: torch.Tensor | None = None
    spatial_logits: torch.Tensor | None = None
    spatial_attn: torch.Tensor | None = None
    spatial_add: torch.Tensor | None = None
    output: torch.Tensor | None = None
    shapes: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)


@torch.no_grad()
def trace_fusion(fusion: TSAFusion, aligned: torch.Tensor) -> FusionTrace:
    """Run ``fusion(aligned)`` once and return the inputs and outputs of its own layers (forward hooks), nothing
    recomputed.

    Args:
        fusion: a :class:`TSAFusion` (e.g. ``edvr.fusion`` or ``TSADemo.fusion``).
        aligned: ``(b, t, c, h, w)`` aligned features (``record_internals(edvr).aligned`` for an EDVR).

    Returns:
        A :class:`FusionTrace`.
    """
    if not isinstance(fusion, TSAFusion):
        raise EDVRError(f"trace_fusion needs a TSAFusion, got {type(fusion).__name__} (an EDVR built with "
                        "with_tsa=False has no attention to trace)")
    if aligned.dim() != 5 or aligned.shape[1] != fusion.num_frame:
        raise EDVRError(f"aligned features must be (b, t={fusion.num_frame}, c, h, w); got {tuple(aligned.shape)}")
    tr = FusionTrace()
    inputs: dict[str, torch.Tensor] = {}
    outputs: dict[str, torch.Tensor] = {}

    def hook(name):
        def fn(_module, args, out):
            tr.shapes.append((name, tuple(out.shape)))
            inputs[name] = args[0].detach().to("cpu", copy=True)
            outputs[name] = out.detach().to("cpu", copy=True)  # copy: some outputs are modified in place later
        return fn

    with forward_hooks([(module, hook(name)) for name, module in fusion.named_children()]):
        out = fusion(aligned)
    tr.emb_ref, tr.emb = outputs["temporal_attn1"], outputs["temporal_attn2"].view(aligned.shape)
    tr.corr, tr.temporal_attn = inputs["temporal_gate"], outputs["temporal_gate"]
    tr.fused = F.leaky_relu(outputs["feat_fusion"], 0.1)  # the layer's in-place activation
    tr.spatial_logits, tr.spatial_attn = inputs["spatial_gate"], outputs["spatial_gate"]
    tr.spatial_add, tr.output = outputs["spatial_attn_add2"], out.detach().cpu()
    return tr


class TSADemo(nn.Module):
    """Per-frame features + :class:`TSAFusion` + a residual on the centre frame.

    Args:
        num_feat: channels ``c``.
        num_frame: frames ``t`` per window.
        center_frame_idx: reference frame (default ``t // 2``).
        num_extract_block: residual blocks after ``conv_first``.

    Shapes:
        ``forward(x)``: ``(b, t, 3, h, w)`` aligned frames (h, w divisible by 4) -> ``(b, 3, h, w)`` centre frame.
    """

    def __init__(self, num_feat: int = 16, num_frame: int = 5, center_frame_idx: int | None = None,
                 num_extract_block: int = 1):
        super().__init__()
        self.num_frame = num_frame
        self.center_frame_idx = num_frame // 2 if center_frame_idx is None else center_frame_idx
        self.conv_first = nn.Conv2d(3, num_feat, 3, 1, 1)
        self.feature_extraction = make_layer(ResidualBlockNoBN, num_extract_block, num_feat=num_feat)
        self.fusion = TSAFusion(num_feat=num_feat, num_frame=num_frame, center_frame_idx=self.center_frame_idx)
        self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(b, t, 3, h, w)`` -> ``(b, t, c, h, w)`` per-frame features (the input of the fusion)."""
        b, t, _, h, w = x.shape
        feat = self.feature_extraction(lrelu(self.conv_first(x.reshape(b * t, 3, h, w))))
        return feat.view(b, t, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.num_frame:
            raise EDVRError(f"TSADemo expects (b, t={self.num_frame}, 3, h, w); got {tuple(x.shape)}")
        return x[:, self.center_frame_idx] + self.conv_last(self.fusion(self.features(x)))


class AlignedWindows:
    """Windows of the synthetic clips with every neighbour aligned to the centre by the true flow.

    Args:
        root: the folder returned by :func:`edvr_lib.data.prepare_embedded`.
        clips: clip names (default: all of :func:`edvr_lib.data.synthetic_clip_names`).
        num_frame: frames per window (odd); windows lie wholly inside their clip.

    Attributes:
        clean: ``(n, t, 3, h, w)`` float32 in [0, 1]: the centre frames and the neighbours warped onto them.
        keys: ``[(clip, centre index), ...]`` per window.
    """

    def __init__(self, root: str | Path, clips: list[str] | None = None, num_frame: int = 5):
        if num_frame < 3 or num_frame % 2 == 0:
            raise EDVRError(f"num_frame must be odd and >= 3, got {num_frame}")
        half = num_frame // 2
        src = SyntheticPairs(root, clips, max_distance=half)  # LR frames and true flow (errors for bad clips)
        windows, self.keys = [], []
        for clip in src.clips:
            frames = frames_to_tensor(src.frames[clip])  # (n, 3, h, w)
            h, w = frames.shape[-2] // 4 * 4, frames.shape[-1] // 4 * 4
            frames = frames[..., :h, :w]
            for ctr in range(half, len(frames) - half):
                win = [frames[i] if i == ctr else
                       warp(frames[i][None], torch.from_numpy(src.flow(clip, ctr, i))[None, :, :h, :w])[0].clamp(0, 1)
                       for i in range(ctr - half, ctr + half + 1)]
                windows.append(torch.stack(win))
                self.keys.append((clip, ctr))
        if not windows:
            raise EDVRError(f"clips {src.clips} have fewer than num_frame={num_frame} frames")
        self.clean = torch.stack(windows)

    def __len__(self) -> int:
        return len(self.clean)

    def random_patch(self, crop: int, rng: np.random.Generator) -> torch.Tensor:
        """A ``(3, crop, crop)`` crop at a random place of a random window's centre frame (an occluder)."""
        _, t, _, h, w = self.clean.shape
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        return self.clean[int(rng.integers(0, len(self.clean))), t // 2, :, y:y + crop, x:x + crop]

    def batch(self, batch_size: int, crop: int, rng: np.random.Generator, noise_sigma: float = 0.1,
              corrupt_prob: float = 0.8, kinds: tuple[str, ...] = CORRUPTIONS) -> dict:
        """Random crops with light noise and, with probability ``corrupt_prob``, one corrupted neighbour.

        Returns:
            ``dict`` with ``lq`` ``(n, t, 3, s, s)`` (network input), ``gt`` ``(n, 3, s, s)`` (clean centre),
            ``corrupt_idx`` ``(n,)`` (frame index, -1 if none) and ``region`` ``(n, s, s)`` bool (corrupted pixels).
        """
        n_win, t, _, h, w = self.clean.shape
        if crop > min(h, w) or crop % 4:
            raise EDVRError(f"crop={crop} must be a multiple of 4 and at most the frame size {h}x{w}")
        idx = rng.integers(0, n_win, batch_size)
        ys, xs = rng.integers(0, h - crop + 1, batch_size), rng.integers(0, w - crop + 1, batch_size)
        clean = torch.stack([self.clean[i, :, :, y:y + crop, x:x + crop] for i, y, x in zip(idx, ys, xs)])
        lq = (clean + noise_sigma * torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))).clamp(0, 1)
        ctr = t // 2
        neighbours = [i for i in range(t) if i != ctr]
        corrupt_idx = np.full(batch_size, -1)
        region = torch.zeros(batch_size, crop, crop, dtype=torch.bool)
        for j in range(batch_size):
            if rng.random() < corrupt_prob:
                corrupt_idx[j] = neighbours[int(rng.integers(0, len(neighbours)))]
                kind = kinds[int(rng.integers(0, len(kinds)))]
                lq[j, corrupt_idx[j]], region[j] = corrupt_frame(lq[j, corrupt_idx[j]], kind, rng,
                                                                 other=self.random_patch(crop, rng))
        return {"lq": lq, "gt": clean[:, ctr].clone(), "corrupt_idx": torch.from_numpy(corrupt_idx),
                "region": region}


@torch.no_grad()
def frame_usefulness(data: AlignedWindows, frame: int = 0, noise_sigma: float = 0.1, seed: int = 0) -> dict:
    """Why fusion needs weights: every window of ``data``, with light noise, fused by the mean of its frames and
    compared with its clean centre frame, when one neighbour is faulty.

    Args:
        data: the aligned windows.
        frame: the neighbour that gets each fault of :data:`USEFULNESS_FAULTS`.
        noise_sigma: light noise on every frame (what averaging removes).
        seed: seeds the noise and faults.

    Returns:
        ``{"centre only": psnr, "mean of all frames": psnr, "<fault>: mean of all": psnr,
        "<fault>: mean without it": psnr, ...}`` in dB (peak 1) over all windows; and ``"example"``: one window per
        fault ``{fault: (t, 3, h, w)}``.
    """
    rng = np.random.default_rng(seed)
    clean = data.clean
    n, t = clean.shape[:2]
    ctr = t // 2
    if frame == ctr or not 0 <= frame < t:
        raise EDVRError(f"frame={frame} must be a neighbour index in 0..{t - 1}, not the centre {ctr}")
    gt = clean[:, ctr]
    noisy = (clean + noise_sigma * torch.from_numpy(rng.standard_normal(clean.shape).astype(np.float32))).clamp(0, 1)

    def psnr(x):  # over the whole batch, peak 1
        return calculate_psnr(x.numpy() * 255, gt.numpy() * 255)

    res = {"centre only": psnr(noisy[:, ctr]), "mean of all frames": psnr(noisy.mean(1))}
    keep = [i for i in range(t) if i != frame]
    examples = {}
    for kind in USEFULNESS_FAULTS:
        bad = noisy.clone()
        for j in range(n):
            bad[j, frame] = corrupt_frame(noisy[j, frame], kind, rng, other=noisy[(j + n // 2) % n, ctr])[0]
        res[f"{kind}: mean of all"] = psnr(bad.mean(1))
        res[f"{kind}: mean without it"] = psnr(bad[:, keep].mean(1))
        examples[kind] = bad[0]
    res["example"] = examples
    return res


def frame_usefulness_figure(res: dict, frame: int = 0, title: str = "Averaging aligned frames, one of them faulty"):
    """One faulty window per fault (top) and the PSNR of each fusion rule (bottom), from :func:`frame_usefulness`."""
    plt = pyplot()
    faults = list(res["example"])
    t = next(iter(res["example"].values())).shape[0]
    fig = plt.figure(figsize=(2.4 * t, 2.6 * len(faults) + 3.6))
    grid = fig.add_gridspec(len(faults) + 1, t, height_ratios=[1] * len(faults) + [1.6])
    for r, kind in enumerate(faults):
        for i in range(t):
            ax = fig.add_subplot(grid[r, i])
            ax.imshow(as_image(res["example"][kind][i]), interpolation="nearest")
            ax.set_title(f"{kind}: frame {i}" + (" (faulty)" if i == frame else ""), fontsize=8,
                         color="red" if i == frame else "black")
            ax.set_xlabel("x (LR pixels)", fontsize=7)
            ax.set_ylabel("y (LR pixels)", fontsize=7)
            ax.tick_params(labelsize=6)
    ax = fig.add_subplot(grid[-1, :])
    names = [k for k in res if k != "example"]
    values = [res[k] for k in names]
    colours = ["grey", "tab:green"] + ["tab:red" if "of all" in k else "tab:blue" for k in names[2:]]
    ax.barh(names, values, color=colours)
    for y, v in enumerate(values):
        ax.text(v + 0.1, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(min(values) - 2, max(values) + 2)
    ax.invert_yaxis()
    ax.set(xlabel="PSNR against the clean centre frame (dB)", ylabel="fusion rule", title="Fusion by plain averaging")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def train_tsa_demo(model: TSADemo, data: AlignedWindows, steps: int = 600, batch_size: int = 16, crop: int = 32,
                   lr: float = 2e-3, seed: int = 0, noise_sigma: float = 0.1, corrupt_prob: float = 0.8,
                   kinds: tuple[str, ...] = CORRUPTIONS, log_every: int = 10) -> DemoHistory:
    """Train ``model`` (a :class:`TSADemo`, in place) to restore the clean centre frame from ``data``'s batches
    (:meth:`AlignedWindows.batch`) with :func:`~edvr_lib.tutorial.fit.fit_demo` (Charbonnier loss); ``seed`` seeds
    torch and the sampling.

    Returns:
        The loss history.
    """
    device = next(model.parameters()).device

    def step_loss(rng):
        b = data.batch(batch_size, crop, rng, noise_sigma=noise_sigma, corrupt_prob=corrupt_prob, kinds=kinds)
        return charbonnier(model(b["lq"].to(device)), b["gt"].to(device))

    return fit_demo(model, step_loss, steps, lr, seed, log_every)


@torch.no_grad()
def corruption_attention(model: TSADemo, data: AlignedWindows, kind: str, num_windows: int = 16, crop: int = 32,
                         frame: int = 0, seed: int = 123, noise_sigma: float = 0.1) -> dict:
    """Temporal attention of a corrupted neighbour ``frame`` vs the clean ones, on ``num_windows`` fixed random
    ``crop``-sized windows (``seed``: the same windows for every model).

    Returns:
        ``dict`` with ``clean_neighbours``, ``corrupted_region`` and ``corrupted_outside_region`` (mean temporal
        attention), ``per_frame`` ``(n, t)``, ``attn`` ``(n, t, s, s)``, ``lq`` ``(n, t, 3, s, s)``, ``region``
        ``(n, s, s)``, ``corrupt_idx``, ``gt``, ``output`` and the errors ``err_out`` (|output - gt|) and
        ``err_centre`` (|noisy centre - gt|).
    """
    ctr = model.center_frame_idx
    if frame == ctr or not 0 <= frame < model.num_frame:
        raise EDVRError(f"frame={frame} must be a neighbour index in 0..{model.num_frame - 1}, not the centre {ctr}")
    rng = np.random.default_rng(seed)
    b = data.batch(num_windows, crop, rng, noise_sigma=noise_sigma, corrupt_prob=0.0)
    lq = b["lq"]
    region = torch.zeros(num_windows, crop, crop, dtype=torch.bool)
    for j in range(num_windows):
        lq[j, frame], region[j] = corrupt_frame(lq[j, frame], kind, rng, other=data.random_patch(crop, rng))
    model.eval()
    device = next(model.parameters()).device
    x = lq.to(device)
    tr = trace_fusion(model.fusion, model.features(x))
    out = (x[:, ctr] + model.conv_last(tr.output.to(device))).cpu()  # = model(x), without a second fusion pass
    attn, clean = tr.temporal_attn, [i for i in range(model.num_frame) if i not in (ctr, frame)]
    per_frame = attn.mean(dim=(-2, -1))  # (n, t)
    outside = [float(a[frame][~r].mean()) for a, r in zip(attn, region) if (~r).any()]
    return {"per_frame": per_frame, "clean_neighbours": float(np.mean(per_frame[:, clean].flatten().tolist())),
            "corrupted_region": float(np.mean([float(a[frame][r].mean()) for a, r in zip(attn, region)])),
            "corrupted_outside_region": float(np.mean(outside)) if outside else float("nan"),
            "attn": attn, "lq": lq, "region": region, "corrupt_idx": torch.full((num_windows,), frame), "gt": b["gt"],
            "output": out, "err_out": float((out - b["gt"]).abs().mean()),
            "err_centre": float((lq[:, ctr] - b["gt"]).abs().mean())}


@torch.no_grad()
def edvr_corruption_attention(model, lq: torch.Tensor, kind: str, frame: int = 0, seed: int = 0) -> dict:
    """Temporal attention of an :class:`~edvr_lib.archs.EDVR` with TSA for a clean window and for the same window
    with neighbour ``frame`` corrupted (``kind``: ``'noise'`` or ``'occlusion'``, seeded by ``seed``).

    Args:
        model, lq: the EDVR and a ``(t, 3, h, w)`` LR window in [0, 1] (h, w multiples of 4).

    Returns:
        ``dict`` with ``clean`` and ``corrupted`` per-frame mean attention ``(t,)``, ``attn_clean`` /
        ``attn_corrupted`` ``(t, h, w)``, ``lq_corrupted`` and ``region``.
    """
    if not model.with_tsa:
        raise EDVRError("this EDVR has no TSA fusion (with_tsa=False): no temporal attention to compare")
    rng = np.random.default_rng(seed)
    bad = lq.clone()
    bad[frame], region = corrupt_frame(lq[frame], kind, rng, other=lq[frame].flip(-2))
    model.eval()
    device = next(model.parameters()).device
    res = {"lq_corrupted": bad, "region": region}
    for name, x in (("clean", lq), ("corrupted", bad)):
        with record_internals(model) as rec:
            model(x[None].to(device))
        res[f"attn_{name}"] = rec.temporal_attn[0]
        res[name] = rec.temporal_attn[0].mean(dim=(-2, -1))
    return res


# ----------------------------------------------------------------------------------------- figures (notebook 03)
def attention_maps_figure(lq: torch.Tensor, attn: torch.Tensor | None, title: str, corrupted: int | None = None,
                          region: torch.Tensor | None = None, center_frame_idx: int | None = None):
    """Frames ``(t, 3, h, w)`` of one window (top) and their temporal attention ``(t, h, w)`` (bottom, if given); a
    ``corrupted`` frame's title in red, its ``region`` ``(h, w)`` outlined."""
    from matplotlib.patches import Rectangle

    plt = pyplot()
    t = lq.shape[0]
    ctr = t // 2 if center_frame_idx is None else center_frame_idx
    rows = 1 if attn is None else 2
    fig, axes = plt.subplots(rows, t, figsize=(2.9 * t, 3.2 * rows), squeeze=False)
    im = None
    for i in range(t):
        name = "centre" if i == ctr else ("corrupted" if i == corrupted else "neighbour")
        _panel(axes[0, i], as_image(lq[i]), f"frame {i} ({name})")
        axes[0, i].title.set_color("red" if i == corrupted else "black")
        if attn is not None:
            im = _panel(axes[1, i], attn[i].numpy(), f"temporal attention, mean {float(attn[i].mean()):.2f}",
                        cmap="viridis", vmin=0, vmax=1)
        if i == corrupted and region is not None and not bool(region.all()):
            ys, xs = torch.nonzero(region, as_tuple=True)
            for ax_ in axes[:, i]:
                ax_.add_patch(Rectangle((int(xs.min()) - 0.5, int(ys.min()) - 0.5), int(xs.max() - xs.min()) + 1,
                                        int(ys.max() - ys.min()) + 1, fill=False, edgecolor="red", lw=1.5))
    for ax in axes.ravel():
        ax.set_xlabel("x (LR pixels)", fontsize=8)
        ax.set_ylabel("y (LR pixels)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.subplots_adjust(wspace=0.4, hspace=0.35)
    if im is not None:
        fig.colorbar(im, ax=axes[1].tolist(), fraction=0.015, label="sigmoid(correlation), 0..1")
    fig.suptitle(title)
    return fig


def spatial_attention_figure(trace: FusionTrace, index: int = 0, title: str = "TSA spatial attention"):
    """The fused feature, spatial attention, additive map and output of one sample (means over channels)."""
    plt = pyplot()
    panels = [("fused = lrelu(feat_fusion(...))", trace.fused, "magma", None),
              ("spatial attention sigmoid(a)", trace.spatial_attn, "viridis", (0, 1)),
              ("additive map add", trace.spatial_add, "coolwarm", None),
              ("output = fused * sigmoid(a) * 2 + add", trace.output, "magma", None)]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.8))
    for ax, (name, x, cmap, lim) in zip(axes, panels):
        m = x[index].mean(dim=0).numpy()
        vmin, vmax = lim if lim else (float(m.min()), float(m.max()))
        if cmap == "coolwarm":
            vmax = max(abs(vmin), abs(vmax), 1e-6)
            vmin = -vmax
        _panel(ax, m, f"{name}\n(mean over {x.shape[1]} channels)", "value", cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set(xlabel="x (LR pixels)", ylabel="y (LR pixels)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def attention_bars_figure(results: dict, corrupted: int, title: str = "Mean temporal attention per frame"):
    """Grouped bars of ``{label: (t,) per-frame mean attention}``, the ``corrupted`` frame's bars hatched."""
    plt = pyplot()
    labels = list(results)
    t = len(np.asarray(results[labels[0]]))
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(1.6 * t + 3, 3.8))
    for j, name in enumerate(labels):
        vals = np.asarray(results[name], dtype=float)
        bars = ax.bar(np.arange(t) + (j - (len(labels) - 1) / 2) * width, vals, width, label=name)
        bars[corrupted].set_hatch("//")
        bars[corrupted].set_edgecolor("red")
    ax.set_xticks(np.arange(t), [f"frame {i}" + (" (corrupted)" if i == corrupted else "") for i in range(t)],
                  fontsize=8)
    ax.set(ylim=(0, 1), ylabel="mean temporal attention (0..1)", xlabel="frame of the window", title=title)
    ax.legend(fontsize=8, loc="lower right")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig
