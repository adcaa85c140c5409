"""Block diagrams of EDVR drawn by code: the whole pipeline, PCD alignment and TSA fusion.

Our own drawings (matplotlib only). Beside every block stand the tensor shapes it produces, **computed** by
:func:`block_shapes` (checked against :func:`traced_shapes`, a real forward's), by default for EDVR-M on a REDS-sized
window (180 x 320 LR) and the shipped model on a window of the embedded Big Buck Bunny clips (88 x 160 LR)::

    from edvr_lib.viz import diagrams

    fig = diagrams.pipeline_diagram()          # the whole EDVR
    fig = diagrams.pcd_diagram()               # PCD: three pyramid levels and the cascade
    fig = diagrams.tsa_diagram()               # TSA: temporal attention and the spatial attention pyramid
    diagrams.write_diagrams("docs")            # the three PNGs the README shows (also written by `make docs`)

Shapes are written ``(b, t, c, h, w)`` for per-frame tensors and ``(b·t, ...)`` where EDVR runs every frame of every
window in one batch (the PCD offsets).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from edvr_lib.archs.config import PRESETS, EDVRConfig, get_config
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.hooks import forward_hooks
from edvr_lib.utils.io import REPO_ROOT

__all__ = ["SHIPPED_OPTIONS", "DIAGRAM_FILES", "shipped_config", "default_networks", "block_shapes",
           "traced_shapes", "format_shape", "pipeline_diagram", "pcd_diagram", "tsa_diagram", "write_diagrams"]

#: the resolved training options of the shipped checkpoint (its ``network_g`` block is the architecture)
SHIPPED_OPTIONS = REPO_ROOT / "checkpoints" / "edvr_aligning_embedded.options.yml"
#: file names :func:`write_diagrams` writes (the README links them)
DIAGRAM_FILES = ("diagram_edvr_pipeline.png", "diagram_pcd.png", "diagram_tsa.png")
#: LR size (h, w) of a REDS frame (EDVR-M's training data) and of the embedded Big Buck Bunny clips
REDS_LR, EMBEDDED_LR = (180, 320), (88, 160)
#: channels after the second pixel shuffle: hard-coded in EDVR (``upconv2`` outputs 64 * 4)
HR_CHANNELS = 64


def shipped_config(options: str | os.PathLike = SHIPPED_OPTIONS) -> EDVRConfig:
    """The :class:`EDVRConfig` of the shipped checkpoint, from its options file's ``network_g`` block."""
    import yaml

    path = Path(options)
    if not path.is_file():
        raise EDVRError(f"options file not found: {path}")
    return get_config({k: v for k, v in yaml.safe_load(path.read_text())["network_g"].items() if k != "type"})


def default_networks() -> list[tuple[str, EDVRConfig, int, int]]:
    """``[(label, config, h, w), ...]`` drawn by default: EDVR-M at REDS size, the shipped model at its clips' size."""
    return [("EDVR-M", PRESETS["M"], *REDS_LR), ("shipped (c=48)", shipped_config(), *EMBEDDED_LR)]


def block_shapes(config: EDVRConfig | str, h: int, w: int, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor the diagrams label, for input frames of ``h x w`` pixels.

    With ``b = batch``, ``t = num_frame``, ``c = num_feat``, ``g = deformable_groups`` and the feature size
    ``(h1, w1)`` (``(h / 4, w / 4)`` with ``hr_in``): L1 features ``(b, t, c, h1, w1)``, L2 / L3 at half and a quarter;
    PCD offsets ``(b·t, 2·9·g, ...)`` and masks ``(b·t, 9·g, ...)`` per level (the cascade at L1); TSA attention
    ``(b, t, h1, w1)``, weighted frames ``(b, t·c, h1, w1)``, the spatial pyramid at h1/2 and h1/4; reconstruction
    ``(b, c, h1, w1)``, pixel shuffles to ``(b, c, 2 h1, 2 w1)`` and ``(b, 64, 4 h1, 4 w1)``, output
    ``(b, 3, 4 h1, 4 w1)``.

    Args:
        config: an :class:`EDVRConfig` or a preset name (``'M'``).
        h, w, batch: input frame size, multiples of 4 (16 with ``hr_in``); ``b``.

    Returns:
        ``{name: shape}``; names are those of :func:`traced_shapes`.

    Raises:
        EDVRError: the size is not one the network accepts.
    """
    cfg = get_config(config)
    multiple = 16 if cfg.hr_in else 4
    if h % multiple or w % multiple or h <= 0 or w <= 0:
        raise EDVRError(f"EDVR needs h and w divisible by {multiple}; got {h}x{w}")
    b, t, c, g = batch, cfg.num_frame, cfg.num_feat, cfg.deformable_groups
    h1, w1 = (h // 4, w // 4) if cfg.hr_in else (h, w)
    size = {"l1": (h1, w1), "l2": (h1 // 2, w1 // 2), "l3": (h1 // 4, w1 // 4), "cascade": (h1, w1)}
    s = {"input": (b, t, cfg.num_in_ch, h, w)}
    if cfg.with_predeblur:
        s["predeblur"] = (b * t, c, h1, w1)
    for level in ("l1", "l2", "l3"):
        s[f"feat_{level}"] = (b, t, c, *size[level])
    for key in ("l3", "l2", "l1", "cascade"):
        s[f"offsets_{key}"] = (b * t, 2 * 9 * g, *size[key])
        s[f"masks_{key}"] = (b * t, 9 * g, *size[key])
    s["aligned"] = (b, t, c, h1, w1)
    if cfg.with_tsa:
        s["temporal_attn"] = (b, t, h1, w1)
        s["weighted"] = (b, t * c, h1, w1)
        s["spatial_l2"] = (b, c, h1 // 2, w1 // 2)
        s["spatial_l3"] = (b, c, h1 // 4, w1 // 4)
        s["spatial_attn"] = (b, c, h1, w1)
    s["fused"] = s["reconstruction"] = (b, c, h1, w1)
    s["shuffle1"] = (b, c, 2 * h1, 2 * w1)
    s["shuffle2"] = (b, HR_CHANNELS, 4 * h1, 4 * w1)
    for key in ("residual", "base", "output"):
        s[key] = (b, cfg.num_out_ch, 4 * h1, 4 * w1)
    return s


@torch.no_grad()
def traced_shapes(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """The same names as :func:`block_shapes`, read from one real forward of ``model`` on ``x`` (forward hooks).

    Args:
        model: an :class:`~edvr_lib.archs.EDVR`.
        x: ``(b, t, 3, h, w)`` window.

    Returns:
        ``{name: shape}`` of the tensors the network actually produced.
    """
    cfg, (b, t) = model.config, x.shape[:2]
    seen: dict[str, tuple[int, ...]] = {"input": tuple(x.shape)}
    shuffles: list[tuple[int, ...]] = []

    def per_frame(shape):  # (b*t, c, h, w) -> (b, t, c, h, w)
        return (b, t, *shape[1:])

    def keep(name, transform=tuple):
        def hook(_module, _args, out):
            seen[name] = transform(tuple(out.shape))
        return hook

    def keep_offsets(key):
        def hook(_module, _args, out):  # conv_offset gives offsets (2/3 of the channels) then mask logits (1/3)
            n, ch, hh, ww = out.shape
            seen[f"offsets_{key}"] = (n, 2 * ch // 3, hh, ww)
            seen[f"masks_{key}"] = (n, ch // 3, hh, ww)
        return hook

    hooks = {"feature_extraction": keep("feat_l1", per_frame), "conv_l2_2": keep("feat_l2", per_frame),
             "conv_l3_2": keep("feat_l3", per_frame), "pcd_align": keep("aligned", per_frame),
             "reconstruction": keep("reconstruction"), "conv_last": keep("residual"),
             "pixel_shuffle": lambda _m, _a, out: shuffles.append(tuple(out.shape))}
    if cfg.with_predeblur:
        hooks["predeblur"] = keep("predeblur")
    modules = dict(model.named_modules())
    for level in ("l3", "l2", "l1"):
        hooks[f"pcd_align.dcn_pack.{level}.conv_offset"] = keep_offsets(level)
    hooks["pcd_align.cas_dcnpack.conv_offset"] = keep_offsets("cascade")
    if cfg.with_tsa:
        hooks.update({"fusion.temporal_gate": keep("temporal_attn"), "fusion.feat_fusion": keep("fused"),
                      "fusion.spatial_attn2": keep("spatial_l2"), "fusion.spatial_attn_l2": keep("spatial_l3"),
                      "fusion.spatial_gate": keep("spatial_attn"),
                      "fusion.spatial_attn1": lambda m, args, _o: seen.__setitem__("weighted", tuple(args[0].shape))})
    else:
        hooks["fusion"] = keep("fused")
    with forward_hooks([(modules[name], fn) for name, fn in hooks.items()]):
        out = model.eval()(x)
    seen["shuffle1"], seen["shuffle2"] = shuffles
    seen["output"] = seen["base"] = tuple(out.shape)  # the forward adds the residual to a base of this shape
    return seen


def format_shape(shape: tuple[int, ...]) -> str:
    """``(1, 5, 64, 180, 320)`` -> ``'1×5×64×180×320'``."""
    return "×".join(str(int(v)) for v in shape)


# ---------------------------------------------------------------------------------------------------------------
# drawing primitives

_COLOURS = {"input": "#e8e8e8", "extract": "#cfe2f3", "pcd": "#d9ead3", "tsa": "#fce5cd", "recon": "#ead1dc",
            "up": "#fff2cc", "variant": "#ffffff", "offset": "#b6d7a8", "feat": "#9fc5e8", "attn": "#f9cb9c"}


def _box(ax, x, y, w, h, text, colour, dashed=False, fontsize=8.5):
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=_COLOURS.get(colour, colour), edgecolor="#444444",
                                linestyle="--" if dashed else "-", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, colour="#333333", text=None, style="-|>", rad=0.0, fontsize=7.5, dashed=False):
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle=style, color=colour, lw=1.2, shrinkA=2, shrinkB=2,
                                connectionstyle=f"arc3,rad={rad}", linestyle="--" if dashed else "-"))
    if text:
        ax.text((start[0] + end[0]) / 2 + 0.08, (start[1] + end[1]) / 2, text, fontsize=fontsize, color=colour,
                ha="left", va="center")


def _shape_text(nets, key, prefix=""):
    """Lines ``label: a×b×c`` for each network that has ``key`` (the shapes beside a block)."""
    return "\n".join(f"{prefix}{label}: {format_shape(shapes[key])}" for label, shapes in nets if key in shapes)


def _networks(networks):
    nets = default_networks() if networks is None else networks
    return [(label, block_shapes(cfg, h, w)) for label, cfg, h, w in nets], nets


def _subtitle(nets) -> str:
    cfgs = [(label, get_config(cfg), h, w) for label, cfg, h, w in nets]
    return "shapes (b, t, c, h, w) computed for " + "; ".join(
        f"{label}: c={c.num_feat}, t={c.num_frame}, g={c.deformable_groups}, "
        f"{c.num_extract_block}/{c.num_reconstruct_block} blocks, input {h}x{w}" for label, c, h, w in cfgs)


def _canvas(width, height, title, nets):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")  # a block diagram: no data axes to label
    ax.set_title(title + "\n" + _subtitle(nets), fontsize=10, pad=16)
    return fig, ax


# ---------------------------------------------------------------------------------------------------------------
# the three diagrams

def pipeline_diagram(networks: list[tuple[str, EDVRConfig, int, int]] | None = None,
                     title: str = "EDVR, the whole pipeline (one window of t frames -> the restored centre frame)"):
    """The whole EDVR: feature extraction, pyramid, PCD, TSA, reconstruction, upsampling and the bilinear base.

    The pre-deblur module and ``hr_in`` (the deblurring track) are drawn as dashed variants.

    Args:
        networks: ``[(label, config, h, w), ...]`` whose shapes stand beside the blocks (default
            :func:`default_networks`).
        title: the figure's title.

    Returns:
        The matplotlib figure (as every diagram here).
    """
    shapes, nets = _networks(networks)
    cfgs = [get_config(cfg) for _, cfg, _, _ in nets]
    n_extract = " / ".join(str(c.num_extract_block) for c in cfgs)
    n_recon = " / ".join(str(c.num_reconstruct_block) for c in cfgs)
    fig, ax = _canvas(12.5, 12.6, title, nets)
    x, bw, bh, sx = 3.7, 4.6, 0.78, 6.2
    rows = [
        ("input", "input window: t LR frames", "input"),
        ("feat_l1", f"feature extraction (L1): conv_first 3x3 + lrelu,\n"
                    f"{n_extract} residual blocks (per frame)", "extract"),
        ("feat_l2", "pyramid L2: stride-2 conv + conv 3x3", "extract"),
        ("feat_l3", "pyramid L3: stride-2 conv + conv 3x3", "extract"),
        ("aligned", "PCD alignment: every frame to the centre frame\n(L3 -> L2 -> L1, then the cascade)", "pcd"),
        ("fused", "TSA fusion: temporal attention, 1x1 fusion conv,\nspatial attention pyramid", "tsa"),
        ("reconstruction", f"reconstruction: {n_recon} residual blocks (LR size)", "recon"),
        ("shuffle1", "upconv1 (c -> 4c) + PixelShuffle(2) + lrelu", "up"),
        ("shuffle2", "upconv2 (c -> 64·4) + PixelShuffle(2) + lrelu", "up"),
        ("residual", "conv_hr + lrelu, conv_last (64 -> 3): residual", "up"),
        ("output", "output = residual + base", "input"),
    ]
    top = 11.9
    ys = {key: top - i * 1.05 for i, (key, *_) in enumerate(rows)}
    for i, (key, text, colour) in enumerate(rows):
        _box(ax, x, ys[key], bw, bh, text, colour)
        ax.text(sx, ys[key], _shape_text(shapes, key), ha="left", va="center", fontsize=8, family="monospace")
        if i:
            _arrow(ax, (x, ys[rows[i - 1][0]] - bh / 2), (x, ys[key] + bh / 2))
    ax.text(sx, top + 0.62, "shapes (b, t, c, h, w) / (b, c, h, w)", fontsize=8.5, weight="bold")
    # the base: bilinear x4 of the centre frame, added at the end
    bx = 0.4
    _box(ax, bx + 0.15, (ys["input"] + ys["output"]) / 2, 0.85, 2.6, "base:\nbilinear\nx4 of the\ncentre\nframe",
         "input", fontsize=7.5)
    _arrow(ax, (x - bw / 2, ys["input"]), (bx + 0.15, (ys["input"] + ys["output"]) / 2 + 1.3), rad=0.25)
    _arrow(ax, (bx + 0.15, (ys["input"] + ys["output"]) / 2 - 1.3), (x - bw / 2, ys["output"]), rad=0.25)
    ax.text(bx - 0.25, ys["output"] - 0.7, "base: " + _shape_text(shapes, "base").replace("\n", "; "),
            fontsize=7.5, family="monospace")
    # variants (dashed): pre-deblur and hr_in; without TSA a 1x1 conv
    vx = 10.6
    _box(ax, vx, ys["feat_l1"], 3.6, 1.2, "variant with_predeblur=True:\npre-deblur module (its own\npyramid of "
         "residual blocks)\nreplaces conv_first, then 1x1 conv", "variant", dashed=True, fontsize=7.5)
    _box(ax, vx, ys["feat_l3"] - 0.3, 3.6, 1.35, "variant hr_in=True (deblurring):\nframes at full size; two "
         "stride-2\nconvs take features to h/4;\nbase = the centre frame itself\n(no upsampling)", "variant",
         dashed=True, fontsize=7.5)
    _box(ax, vx, ys["fused"], 3.6, 0.9, "variant with_tsa=False (woTSA):\none 1x1 conv over the t·c\nstacked "
         "channels", "variant", dashed=True, fontsize=7.5)
    return fig


def pcd_diagram(networks: list[tuple[str, EDVRConfig, int, int]] | None = None,
                title: str = "PCD alignment of one neighbour to the centre frame: three pyramid levels and the "
                             "cascade"):
    """PCD: at L3, L2, L1 the offset path (offset feature -> DCN offsets and masks) and the feature path (aligned
    features merged coarse to fine), then the cascading DCN on L1.

    Args:
        networks, title: as in :func:`pipeline_diagram`.
    """
    shapes, nets = _networks(networks)
    fig, ax = _canvas(14, 10.5, title, nets)
    levels = [("l3", 8.3, "L3 (h/4)"), ("l2", 5.3, "L2 (h/2)"), ("l1", 2.3, "L1 (h)")]
    xin, xoff, xdcn, xmerge = 1.4, 4.4, 7.4, 10.2
    for key, y, name in levels:
        ax.text(0.15, y + 1.05, name, fontsize=10, weight="bold")
        _box(ax, xin, y, 2.2, 0.9, f"[F_nbr, F_ref]\nat {name}", "feat")
        ax.text(xin - 1.1, y - 0.75, _shape_text(shapes, f"feat_{key}", "F "), fontsize=6.5, family="monospace")
        off_text = ("offset feature ΔP\nconv(cat) + conv" if key == "l3" else
                    "offset feature ΔP\nconv(cat), conv(cat with\nΔP coarser ↑2 ·2), conv")
        _box(ax, xoff, y, 2.5, 1.05, off_text, "offset", fontsize=7.5)
        _box(ax, xdcn, y, 2.4, 1.05, "DCNv2Pack:\nconv_offset -> offsets, masks;\nsample F_nbr", "pcd", fontsize=7.5)
        ax.text(xdcn - 1.2, y - 0.8, _shape_text(shapes, f"offsets_{key}", "offsets ") + "\n" +
                _shape_text(shapes, f"masks_{key}", "masks   "), fontsize=6.5, family="monospace", va="top")
        _arrow(ax, (xin + 1.1, y), (xoff - 1.25, y))
        _arrow(ax, (xoff + 1.25, y), (xdcn - 1.2, y))
        if key == "l3":
            ax.text(xmerge - 0.9, y, "aligned L3 (+ lrelu)", fontsize=7.5, va="center")
            _arrow(ax, (xdcn + 1.2, y), (xmerge - 0.95, y), colour="#1f4e79")
        else:
            _box(ax, xmerge, y, 2.0, 0.9, "feat_conv:\nmerge with\naligned coarser ↑2", "feat", fontsize=7.5)
            _arrow(ax, (xdcn + 1.2, y), (xmerge - 1.0, y), colour="#1f4e79")
    # offset path between levels: the coarser offset feature, bilinear x2 and multiplied by 2
    for (k1, y1, _), (_, y2, _) in zip(levels, levels[1:]):
        _arrow(ax, (xoff, y1 - 0.53), (xoff, y2 + 0.53), colour="#38761d", text="offset path: ↑2 (bilinear) ·2")
        _arrow(ax, (xmerge if k1 != "l3" else xmerge - 0.4, y1 - 0.45), (xmerge, y2 + 0.45), colour="#1f4e79",
               text="feature path: ↑2")
    # the cascade on L1
    yc = 0.75
    _box(ax, 12.6, 2.3, 2.2, 1.15, "cascade:\noffsets from\n[aligned L1, F_ref L1]\n-> one more DCN", "pcd",
         fontsize=7.5)
    _arrow(ax, (xmerge + 1.0, 2.3), (12.6 - 1.1, 2.3), colour="#1f4e79")
    ax.text(11.1, 1.55, _shape_text(shapes, "offsets_cascade", "offsets ") + "\n" +
            _shape_text(shapes, "masks_cascade", "masks   "), fontsize=6.5, family="monospace", va="top")
    _arrow(ax, (12.6, 2.3 + 0.58), (12.6, 4.3), colour="#1f4e79")
    ax.text(11.3, 4.55, "aligned L1 feature:\n" + _shape_text(shapes, "aligned"), fontsize=7, family="monospace")
    ax.text(0.15, yc - 0.35, "Green: offset path (what motion to undo). Blue: feature path (the aligned features). "
            "Offsets hold dy, dx per 3x3 tap and deformable group (2·9·g channels); masks one weight per tap and "
            "group (9·g).\nEvery frame of the window, the centre frame too, is aligned to the centre frame in one "
            "batch of b·t pairs (the first dimension of the offsets).", fontsize=7.5)
    return fig


def tsa_diagram(networks: list[tuple[str, EDVRConfig, int, int]] | None = None,
                title: str = "TSA fusion: temporal attention per frame and pixel, spatial attention pyramid"):
    """TSA: embeddings and their dot product with the centre frame's (temporal attention), the 1x1 fusion conv,
    and the spatial attention pyramid (max + average pooling, h -> h/2 -> h/4 and back) that modulates the fused
    feature as ``fused · sigmoid(a) · 2 + add``.

    Args:
        networks, title: as in :func:`pipeline_diagram`; configs without TSA are refused.
    """
    shapes, nets = _networks(networks)
    if any("temporal_attn" not in s for _, s in shapes):
        raise EDVRError("tsa_diagram needs networks with TSA (with_tsa=True)")
    fig, ax = _canvas(14, 10, title, nets)
    mono = dict(fontsize=6.8, family="monospace")
    # temporal attention (top row)
    yt = 7.9
    _box(ax, 1.4, yt, 2.3, 1.0, "aligned frames\nF_1 ... F_t\n(from PCD)", "pcd", fontsize=8)
    ax.text(0.25, yt - 0.75, _shape_text(shapes, "aligned"), va="top", **mono)
    _box(ax, 4.4, yt + 0.75, 2.4, 0.8, "θ = temporal_attn2\n(3x3, every frame)", "attn", fontsize=7.5)
    _box(ax, 4.4, yt - 0.75, 2.4, 0.8, "φ = temporal_attn1\n(3x3, centre frame)", "attn", fontsize=7.5)
    _box(ax, 7.6, yt, 2.6, 1.0, "dot product over c,\nper frame and pixel,\nthen sigmoid", "attn", fontsize=7.5)
    ax.text(6.3, yt - 0.75, "temporal attention\n" + _shape_text(shapes, "temporal_attn"), va="top", **mono)
    _box(ax, 11.0, yt, 2.6, 1.0, "weight each frame:\nF_i · attention_i,\nstack frame-major", "tsa", fontsize=7.5)
    ax.text(9.7, yt - 0.75, "weighted frames\n" + _shape_text(shapes, "weighted"), va="top", **mono)
    _arrow(ax, (2.55, yt + 0.2), (3.2, yt + 0.75))
    _arrow(ax, (2.55, yt - 0.2), (3.2, yt - 0.75))
    _arrow(ax, (5.6, yt + 0.75), (6.3, yt + 0.2))
    _arrow(ax, (5.6, yt - 0.75), (6.3, yt - 0.2))
    _arrow(ax, (8.9, yt), (9.7, yt))
    _arrow(ax, (1.4, yt + 0.5), (11.0, yt + 0.5), rad=-0.18, colour="#888888")
    # fusion and the spatial pyramid (below)
    yf, ys = 5.0, 2.6
    _box(ax, 11.0, yf, 2.6, 0.85, "feat_fusion:\n1x1 conv t·c -> c, lrelu", "tsa", fontsize=7.5)
    ax.text(12.35, yf - 0.65, "fused\n" + _shape_text(shapes, "fused"), va="top", **mono)
    _arrow(ax, (11.0, yt - 0.5), (11.0, yf + 0.43))
    pyramid = [(8.2, "spatial_attn1 (1x1),\nmax+avg pool /2,\nspatial_attn2", "spatial_l2", "h/2"),
               (5.1, "spatial_attn_l1,\nmax+avg pool /2,\nspatial_attn_l2 (3x3)", "spatial_l3", "h/4"),
               (2.0, "spatial_attn_l3, ↑2,\n+ spatial_attn3 (h/2);\nspatial_attn4, ↑2,\nspatial_attn5: a",
                "spatial_attn", "h")]
    _arrow(ax, (10.1, yt - 0.5), (9.45, ys + 0.55), colour="#b45f06", rad=0.1)
    for i, (px, text, key, lvl) in enumerate(pyramid):
        _box(ax, px, ys, 2.5, 1.1, text, "attn", fontsize=7.2)
        ax.text(px - 1.25, ys - 0.7, f"at {lvl}: " + ("sigmoid(a) " if key == "spatial_attn" else "") + "\n" +
                _shape_text(shapes, key), va="top", **mono)
        if i:
            _arrow(ax, (pyramid[i - 1][0] - 1.25, ys), (px + 1.25, ys), colour="#b45f06")
    _box(ax, 5.1, yf, 3.4, 0.85, "out = fused · sigmoid(a) · 2 + add\n(add = two 1x1 convs on a)", "tsa", fontsize=7.8)
    _arrow(ax, (2.0, ys + 0.55), (3.6, yf - 0.2), colour="#b45f06")
    _arrow(ax, (9.7, yf), (6.8, yf))
    ax.text(3.4, yf + 0.6, "fused output: " + _shape_text(shapes, "fused").replace("\n", "; "), **mono)
    ax.text(0.2, 0.35, "Temporal attention: an independent sigmoid per frame and pixel (weights need not sum to 1). "
            "Spatial attention is computed from the weighted frames (released code), in parallel with the fusion "
            "conv;\nthe factor 2 makes the modulation start near the identity (sigmoid ≈ 0.5 at initialisation).",
            fontsize=7.5)
    return fig


def write_diagrams(out_dir: str | os.PathLike = "docs", networks=None, dpi: int = 80) -> dict[str, Path]:
    """Write the three diagrams as PNGs (:data:`DIAGRAM_FILES`) into ``out_dir``; the same inputs give the same bytes.

    Returns:
        ``{file name: path}``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from edvr_lib.utils import atomic_path

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, draw in zip(DIAGRAM_FILES, (pipeline_diagram, pcd_diagram, tsa_diagram)):
        fig = draw(networks)
        with atomic_path(out_dir / name) as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight", metadata={"Software": None}, pil_kwargs={"optimize": True})
        plt.close(fig)
    return {name: out_dir / name for name in DIAGRAM_FILES}
