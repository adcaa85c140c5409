"""Every way to get a model: checkpoints (read, convert, save), presets, the bicubic baseline, random weights.

* :func:`load_pretrained` / :func:`save_pretrained` / :func:`inspect_checkpoint`: EDVR checkpoints from BasicSR,
  the original xinntao/EDVR code, MMagic and this project's trainer, strict and safe (details below);
* :func:`load_model` (what ``edvr infer`` / ``edvr test`` run), :func:`bicubic_model` (the baseline),
  :func:`random_weights_model` / :func:`tutorial_model` (demos), :func:`labelled_model` (with a result label);
* :class:`SRModel`: what every one of them offers the code that runs it (EDVR, the baseline, an ONNX runner).

Official weights cannot be downloaded by this project; put them anywhere and pass the path:

* **BasicSR** (recommended; key names equal ours): ``scripts/download_pretrained_models.py EDVR`` in a BasicSR
  checkout, or the Google Drive folder of its ``docs/ModelZoo.md``: ``EDVR_M_x4_SR_REDS_official-32075921.pth``
  (preset ``M``), ``EDVR_M_woTSA_x4_SR_REDS_official-1edf645c.pth`` (``M-woTSA``),
  ``EDVR_L_x4_SR_REDS_official-9f5f5039.pth`` (``L``), ``EDVR_L_x4_SR_Vimeo90K_official-162b54e4.pth`` (``L-Vimeo``,
  7 frames, also Vid4), ``EDVR_L_x4_SRblur_REDS_official-983d7b8e.pth`` (``L-SRblur``),
  ``EDVR_L_deblur{,comp}_REDS_official-*.pth`` (``L-deblur``); the hex digits start the file's SHA-256.
* **Original xinntao/EDVR** (``old_version`` branch): ``EDVR_REDS_SR_M.pth``, ``EDVR_Vimeo90K_SR_L.pth``, ...: bare
  state dicts with the old key names (mapped here, including the swapped ``tAtt_1``/``tAtt_2``).
* **MMagic** (``configs/edvr/README.md``): e.g. ``edvrm_x4_8x4_600k_reds_20210625-e29b71b5.pth``, ``generator.``
  keys and mmcv ``ConvModule`` names (mapped here).

:func:`load_pretrained` accepts ``{'params' | 'params_ema': sd}`` (BasicSR and our trainer, optionally with a
``'config'`` of :class:`~edvr_lib.archs.EDVRConfig` fields), ``{'state_dict': sd}`` (MMagic / Lightning) or a bare
state dict, with or without ``module.`` prefixes, read with ``torch.load(..., weights_only=True)`` (a file that
needs arbitrary Python objects to unpickle is refused).
"""
from __future__ import annotations

import os
import pickle
import re
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import torch

from edvr_lib.archs.config import PRESETS, EDVRConfig
from edvr_lib.utils.errors import EDVRError
from edvr_lib.utils.io import REPO_ROOT, atomic_path

__all__ = ["SRModel", "load_pretrained", "inspect_checkpoint", "read_state_dict", "read_state_dicts", "key_mismatch",
           "infer_config", "convert_state_dict", "save_pretrained", "ORIGINAL_TO_BASICSR", "MMAGIC_TO_BASICSR"]


@runtime_checkable
class SRModel(Protocol):
    """A video super-resolution model as inference, evaluation and export use it.

    ``model(x)`` maps ``(b, num_frame, c, h, w)`` frames, ``h`` and ``w`` multiples of ``size_multiple``, to the
    centre frame ``(b, c, scale * h, scale * w)``.
    """

    num_frame: int  #: frames per window
    center_frame_idx: int  #: the window's frame that is super-resolved
    size_multiple: int  #: h and w must be multiples of this (pad with edvr_lib.inference.forward_padded)
    scale: int  #: output size / input size (4; 1 for EDVR's deblurring models)

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...


# Original xinntao/EDVR (old_version) names -> ours/BasicSR's. Order matters (first match wins).
ORIGINAL_TO_BASICSR: list[tuple[str, str]] = [
    (r"^fea_L([23])_conv([12])\.", r"conv_l\1_\2."),
    (r"^pcd_align\.L([123])_offset_conv([123])\.", r"pcd_align.offset_conv\2.l\1."),
    (r"^pcd_align\.L([123])_dcnpack\.conv_offset_mask\.", r"pcd_align.dcn_pack.l\1.conv_offset."),
    (r"^pcd_align\.L([123])_dcnpack\.", r"pcd_align.dcn_pack.l\1."),
    (r"^pcd_align\.L([123])_fea_conv\.", r"pcd_align.feat_conv.l\1."),
    (r"^pcd_align\.cas_dcnpack\.conv_offset_mask\.", r"pcd_align.cas_dcnpack.conv_offset."),
    # Swapped numbering: the original tAtt_2 embeds the reference frame, tAtt_1 all frames.
    (r"^tsa_fusion\.tAtt_2\.", r"fusion.temporal_attn1."),
    (r"^tsa_fusion\.tAtt_1\.", r"fusion.temporal_attn2."),
    (r"^tsa_fusion\.fea_fusion\.", r"fusion.feat_fusion."),
    (r"^tsa_fusion\.sAtt_([1-5])\.", r"fusion.spatial_attn\1."),
    (r"^tsa_fusion\.sAtt_L([123])\.", r"fusion.spatial_attn_l\1."),
    (r"^tsa_fusion\.sAtt_add_([12])\.", r"fusion.spatial_attn_add\1."),
    (r"^tsa_fusion\.(weight|bias)$", r"fusion.\1"),
    (r"^recon_trunk\.", r"reconstruction."),
    (r"^HRconv\.", r"conv_hr."),
    # Pre-deblur: conv_first_1 (hr_in) and conv_first (SRblur) both map to conv_first.
    (r"^pre_deblur\.conv_first(_1)?\.", r"predeblur.conv_first."),
    (r"^pre_deblur\.conv_first_2\.", r"predeblur.stride_conv_hr1."),
    (r"^pre_deblur\.conv_first_3\.", r"predeblur.stride_conv_hr2."),
    (r"^pre_deblur\.deblur_L([23])_conv\.", r"predeblur.stride_conv_l\1."),
    (r"^pre_deblur\.RB_L3_1\.", r"predeblur.resblock_l3."),
    (r"^pre_deblur\.RB_L2_([12])\.", r"predeblur.resblock_l2_\1."),
    (r"^pre_deblur\.RB_L1_([1-5])\.", lambda m: f"predeblur.resblock_l1.{int(m.group(1)) - 1}."),
    # HR input without pre-deblur (original only): conv_first_1/2/3 -> conv_first, stride_conv_hr1/2.
    (r"^conv_first_1\.", r"conv_first."),
    (r"^conv_first_2\.", r"stride_conv_hr1."),
    (r"^conv_first_3\.", r"stride_conv_hr2."),
]

# MMagic EDVRNet names (after removing 'generator.') -> ours/BasicSR's.
MMAGIC_TO_BASICSR: list[tuple[str, str]] = [
    (r"^feat_l([23])_conv([12])\.conv\.", r"conv_l\1_\2."),
    (r"^pcd_alignment\.", r"pcd_align."),
    (r"^upsample([12])\.upsample_conv\.", r"upconv\1."),
]

_ORIGINAL_MARKERS = ("tsa_fusion.", "recon_trunk.", "HRconv.", "fea_L2_conv1.", "pre_deblur.", "pcd_align.L1_")
_MMAGIC_MARKERS = ("pcd_alignment.", "feat_l2_conv1.", "upsample1.upsample_conv.")
_HINT = ("Expected an EDVR checkpoint: {'params': state_dict} / {'params_ema': ...} (BasicSR), {'state_dict': ...} "
         "(MMagic), or a bare state dict; see `edvr inspect-checkpoint FILE`.")


def _torch_load(path: Path):
    if not path.is_file():
        raise EDVRError(f"checkpoint {path} does not exist (official weights must be downloaded by hand; "
                        f"see the edvr_lib.models docstring for names and sources)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
        objects = [ln for ln in lines if "GLOBAL" in ln]
        if objects:
            raise EDVRError(
                f"refused to load {path}: it contains pickled Python objects besides tensors, and unpickling those "
                f"could run arbitrary code (torch.load(weights_only=True): {objects[0][:200]}). If you trust the "
                f"file, re-save only its weights: python -c \"import torch; sd = torch.load('{path}', "
                f"weights_only=False); torch.save({{'params': sd.get('params', sd.get('state_dict', sd))}}, "
                f"'clean.pth')\"") from None
        detail = next((ln for ln in lines if "Unsupported" in ln or "invalid" in ln.lower()), lines[0] if lines else "")
        raise EDVRError(f"{path} is not a readable PyTorch checkpoint ({detail[:200]}). {_HINT}") from None
    except Exception as err:  # noqa: BLE001 - zip errors, truncated files, text files...: one message
        raise EDVRError(f"{path} is not a readable PyTorch checkpoint ({type(err).__name__}: "
                        f"{str(err).splitlines()[0][:200] if str(err) else ''}). {_HINT}") from None


def _is_state_dict(obj) -> bool:
    return isinstance(obj, dict) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def _describe(obj) -> str:
    kinds = {k: type(obj[k]).__name__ for k in list(obj)[:8]} if isinstance(obj, dict) else None
    return f"a dict with {len(obj)} entries, e.g. {kinds}" if kinds is not None else f"a {type(obj).__name__}"


def _unwrap(obj, path: Path, param_key: str | None) -> tuple[dict[str, torch.Tensor], str, dict | None]:
    """Find the state dict inside a loaded checkpoint; returns (state_dict, container name, saved config)."""
    if not isinstance(obj, dict):
        raise EDVRError(f"{path} holds {_describe(obj)}, not a state dict. {_HINT}")
    config = obj.get("config") if isinstance(obj.get("config"), dict) else None
    keys = [param_key] if param_key else ["params_ema", "params", "state_dict", "model", "net", "generator"]
    for key in keys:
        if _is_state_dict(obj.get(key)):
            return dict(obj[key]), key, config
    if param_key:
        raise EDVRError(f"{path} has no state dict under {param_key!r}; top-level keys: {list(obj)[:20]}")
    if _is_state_dict(obj):
        return dict(obj), "bare", config
    raise EDVRError(f"{path} holds {_describe(obj)}; found no state dict of tensors in it. {_HINT}")


def _apply_rules(key: str, rules) -> str:
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def convert_state_dict(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], str]:
    """Rename keys to ours (= BasicSR's): strip ``module.``, map original / MMagic names.

    Returns:
        The renamed dict (same tensors, same order) and the detected naming scheme:
        ``'basicsr'``, ``'original'`` (xinntao/EDVR) or ``'mmagic'``.
    """
    sd = {}
    for key, value in state_dict.items():
        while key.startswith("module."):
            key = key[len("module."):]
        sd[key] = value
    if any(k.startswith("generator.") for k in sd):
        prefix = "generator_ema." if any(k.startswith("generator_ema.") for k in sd) else "generator."
        sd = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if any(k.startswith(_ORIGINAL_MARKERS) for k in sd):
        return {_apply_rules(k, ORIGINAL_TO_BASICSR): v for k, v in sd.items()}, "original"
    if any(k.startswith(_MMAGIC_MARKERS) for k in sd):  # also unwrap mmcv's ConvModule (.conv.)
        return {re.sub(r"\.conv\.(weight|bias)$", r".\1", _apply_rules(k, MMAGIC_TO_BASICSR)): v
                for k, v in sd.items()}, "mmagic"
    return sd, "basicsr"


def infer_config(state_dict: dict[str, torch.Tensor]) -> EDVRConfig:
    """Read the architecture (width, frames, blocks, TSA, pre-deblur, hr_in) off BasicSR-named keys and shapes
    (``center_frame_idx`` defaults to ``num_frame // 2``); a missing key raises EDVRError."""
    def need(key: str) -> torch.Tensor:
        if key not in state_dict:
            raise EDVRError(f"not an EDVR state dict: key {key!r} is missing (first keys: {list(state_dict)[:6]}). "
                            f"{_HINT}")
        return state_dict[key]

    with_predeblur = any(k.startswith("predeblur.") for k in state_dict)
    first = need("predeblur.conv_first.weight" if with_predeblur else "conv_first.weight")
    num_feat = need("conv_l2_1.weight").shape[0]
    with_tsa = "fusion.feat_fusion.weight" in state_dict
    fusion_in = need("fusion.feat_fusion.weight" if with_tsa else "fusion.weight").shape[1]

    def count(prefix: str) -> int:
        return len({k[len(prefix):].split(".")[0] for k in state_dict if k.startswith(prefix)})

    return EDVRConfig(
        num_in_ch=first.shape[1], num_out_ch=need("conv_last.weight").shape[0], num_feat=num_feat,
        num_frame=fusion_in // num_feat,
        deformable_groups=need("pcd_align.dcn_pack.l1.conv_offset.weight").shape[0] // (3 * 9),
        num_extract_block=count("feature_extraction."), num_reconstruct_block=count("reconstruction."),
        hr_in=("predeblur.stride_conv_hr1.weight" in state_dict) or ("stride_conv_hr1.weight" in state_dict),
        with_predeblur=with_predeblur, with_tsa=with_tsa)


def _match_preset(config: EDVRConfig) -> str | None:
    plain = config.replace(center_frame_idx=None if config.center == config.num_frame // 2 else config.center_frame_idx)
    return next((name for name, preset in PRESETS.items() if preset == plain), None)


def read_state_dict(path: str | os.PathLike, param_key: str | None = None) -> tuple[dict[str, torch.Tensor], dict]:
    """Load a checkpoint safely and return ``(state_dict with our key names, info)``.

    ``info`` has ``container`` (``'params'``, ``'params_ema'``, ``'state_dict'``, ``'bare'``, ...), ``naming``
    (``'basicsr'``, ``'original'``, ``'mmagic'``), ``top_level_keys`` and ``saved_config`` (or None).
    """
    path = Path(path)
    obj = _torch_load(path)
    raw, container, saved_config = _unwrap(obj, path, param_key)
    sd, naming = convert_state_dict(raw)
    return sd, {"container": container, "naming": naming, "saved_config": saved_config,
                "top_level_keys": list(obj)[:20] if isinstance(obj, dict) else []}


def key_mismatch(model: torch.nn.Module, sd: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[tuple]]:
    """How ``sd`` differs from ``model.state_dict()``.

    Returns:
        ``(missing keys, unexpected keys, [(key, file shape, model shape), ...] of the keys whose shapes differ)``.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [(k, tuple(sd[k].shape), tuple(v.shape)) for k, v in own.items()
             if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    return missing, unexpected, wrong


def read_state_dicts(path: str | os.PathLike, param_keys: Sequence[str]) -> list[tuple[dict[str, torch.Tensor], str]]:
    """One read of a checkpoint, one state dict per wanted key (as BasicSR's ``param_key_g``): the one under it,
    else under ``'params'``, else the one :func:`read_state_dict` picks; keys renamed to ours.

    Returns:
        ``[(state_dict, container used), ...]`` in the order of ``param_keys``.
    """
    path = Path(path)
    obj = _torch_load(path)
    auto, auto_key, _ = _unwrap(obj, path, None)
    out = []
    for want in param_keys:
        key = next((k for k in (want, "params") if k == auto_key or k in obj), auto_key)
        raw = auto if key == auto_key else _unwrap(obj, path, key)[0]
        out.append((convert_state_dict(raw)[0], key))
    return out


def _show(items: list[str]) -> str:
    return f"{len(items)} ({', '.join(items[:8])}{', ...' if len(items) > 8 else ''})"


def load_pretrained(path: str | os.PathLike, param_key: str | None = None, map_location: str | torch.device = "cpu",
                    **overrides):
    """Build the matching :class:`~edvr_lib.archs.EDVR` and load a checkpoint into it, strict.

    Args:
        path: ``.pth`` file in any supported format (module docstring).
        param_key: the container's entry; default ``'params_ema'``, else ``'params'``, ``'state_dict'``, the dict.
        map_location: device for the returned model.
        **overrides: :class:`~edvr_lib.archs.EDVRConfig` fields that win over what is inferred from the file
            (e.g. ``center_frame_idx=0``).

    Returns:
        The model in ``eval()`` mode.

    Raises:
        EDVRError: unreadable or unsafe file, not EDVR, or keys / shapes that do not match (listed).
    """
    from edvr_lib.archs.edvr_arch import EDVR

    path = Path(path)
    sd, info = read_state_dict(path, param_key)
    config = infer_config(sd)
    if info["saved_config"]:
        fields = set(EDVRConfig.__dataclass_fields__)  # older files also saved a dcn_backend: ignored
        config = config.replace(**{k: v for k, v in info["saved_config"].items() if k in fields})
    config = config.replace(**overrides) if overrides else config
    model = EDVR(config)
    missing, unexpected, wrong = key_mismatch(model, sd)
    if missing or unexpected or wrong:
        raise EDVRError(
            f"{path} does not match EDVR({', '.join(f'{k}={v}' for k, v in config.to_dict().items())}): "
            f"missing keys {_show(missing)}; unexpected keys {_show(unexpected)}; wrong shapes "
            f"{_show([f'{k}: file {a} vs model {b}' for k, a, b in wrong])}. "
            "Check the overrides you passed, or run `edvr inspect-checkpoint FILE` to see what the file holds.")
    model.load_state_dict(sd, strict=True)
    return model.to(map_location).eval()


def save_pretrained(model, path: str | os.PathLike, ema: bool = False, dtype: torch.dtype | None = None,
                    **extra) -> Path:
    """Save ``{'params' (or 'params_ema'): state_dict, 'config': model.config fields}`` atomically (BasicSR format).

    Args:
        model, path: an :class:`~edvr_lib.archs.EDVR`; the destination ``.pth``.
        ema: store under ``'params_ema'`` (BasicSR's key for averaged weights) instead of ``'params'``.
        dtype: store floating tensors in this dtype (``torch.float16`` halves the file; loaded back as float32).
        **extra: more entries for the file (e.g. ``options`` of the training run).
    """
    path = Path(path)
    params = {k: v.detach().cpu().to(dtype) if dtype is not None and v.is_floating_point() else v.detach().cpu()
              for k, v in model.state_dict().items()}
    payload = {"params_ema" if ema else "params": params, "config": model.config.to_dict(), **extra}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def inspect_checkpoint(path: str | os.PathLike) -> dict:
    """Describe a checkpoint without building a model first.

    Returns:
        ``{'path', 'size_bytes', 'container', 'naming', 'top_level_keys', 'num_tensors', 'num_params',
        'config' (inferred EDVRConfig fields or None), 'preset' (matching preset name or None), 'loadable',
        'problem' (None or the error message)}``.
    """
    path = Path(path)
    report = {"path": str(path), "size_bytes": path.stat().st_size if path.is_file() else None}
    sd, info = read_state_dict(path)
    report.update(container=info["container"], naming=info["naming"], top_level_keys=info["top_level_keys"],
                  num_tensors=len(sd), num_params=int(sum(v.numel() for v in sd.values())),
                  config=None, preset=None, loadable=False, problem=None)
    try:
        config = infer_config(sd)
        report["config"] = config.to_dict()
        report["preset"] = _match_preset(config)
        load_pretrained(path)
        report["loadable"] = True
    except EDVRError as err:
        report["problem"] = str(err)
    return report


#: The checkpoint the tutorial, `edvr infer` and `edvr docs` use by default (model card: checkpoints/README.md).
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "edvr_aligning_embedded.pth"


class BicubicUpsampler(torch.nn.Module):
    """Baseline 'model': MATLAB bicubic x4 (:func:`edvr_lib.data.imresize.imresize`) of the centre frame,
    ``(b, t, c, h, w) -> (b, c, 4h, 4w)``."""

    def __init__(self, num_frame: int = 5, scale: int = 4):
        super().__init__()
        self.num_frame, self.scale, self.center_frame_idx = num_frame, scale, num_frame // 2
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from edvr_lib.data.imresize import imresize

        return imresize(x[:, self.center_frame_idx].float(), self.scale).clamp(0, 1)


def bicubic_model(num_frame: int = 5) -> BicubicUpsampler:
    """The bicubic baseline with the model interface (used by ``--model bicubic``)."""
    return BicubicUpsampler(num_frame)


def load_model(weights: str | os.PathLike | None = None, model: str = "edvr", num_frame: int = 5,
               device: str = "cpu") -> SRModel:
    """The network ``edvr infer`` / ``edvr test`` runs, in eval mode on ``device``.

    Args:
        weights: checkpoint path (any format :func:`load_pretrained` accepts); None: :data:`DEFAULT_CHECKPOINT`.
        model: ``'edvr'`` or ``'bicubic'`` (the baseline; needs no weights).
        num_frame, device: frames per window for the bicubic baseline; torch device string.
    """
    if model == "bicubic":
        return bicubic_model(num_frame).to(device).eval()
    if model != "edvr":
        raise EDVRError(f"unknown `model` {model!r}; use 'edvr' or 'bicubic'")
    if weights is None:
        if not DEFAULT_CHECKPOINT.exists():
            raise EDVRError(
                f"no `weights` given and the project's shipped checkpoint {DEFAULT_CHECKPOINT.relative_to(REPO_ROOT)} "
                "does not exist yet. Pass `weights` FILE (e.g. an official BasicSR EDVR_*.pth or a checkpoint "
                "from `edvr train`), or use `model` bicubic for the baseline.")
        weights = DEFAULT_CHECKPOINT
    weights = Path(weights)
    if not weights.is_file():
        raise EDVRError(f"checkpoint not found: {weights}; check the `weights` path")
    try:
        net = load_pretrained(str(weights))
    except EDVRError as err:
        if str(weights) in str(err):
            raise
        raise EDVRError(f"cannot load checkpoint {weights}: {err}") from None
    except Exception as err:  # noqa: BLE001 - torch.load / state-dict errors of any kind: name the file
        raise EDVRError(f"cannot load checkpoint {weights}: {type(err).__name__}: {err}. "
                        "Pass an EDVR checkpoint (.pth) that load_pretrained accepts.") from None
    return net.to(device).eval()


def random_weights_model(num_frame: int = 5, seed: int = 0, **overrides):
    """A small EDVR with random weights (for demos without a checkpoint; label its results so). Its ``conv_offset``
    layers get PyTorch's random init too (not zeros), so the explorer has something (meaningless) to show."""
    from edvr_lib.archs import build_edvr

    torch.manual_seed(seed)
    model = build_edvr("M", **{**dict(num_feat=16, num_frame=num_frame, deformable_groups=4, num_extract_block=2,
                                      num_reconstruct_block=2), **overrides}).eval()
    for name, module in model.named_modules():
        if name.endswith("conv_offset"):
            module.reset_parameters()
    return model


def labelled_model(weights: str | os.PathLike | None = None, model: str = "edvr", num_frame: int = 5,
                   device: str = "cpu", random_weights: bool = False) -> tuple[SRModel, str]:
    """A model (:func:`load_model`, or :func:`random_weights_model` with ``random_weights``) and the label its results
    carry in tables and figures: ``'EDVR (FILE NAME)'``, ``'Bicubic'`` or ``'EDVR (random weights, untrained)'``.
    """
    if random_weights:
        return random_weights_model(num_frame=num_frame).to(device), "EDVR (random weights, untrained)"
    net = load_model(weights, model, num_frame=num_frame, device=device)
    return net, "Bicubic" if model == "bicubic" else f"EDVR ({Path(weights or DEFAULT_CHECKPOINT).name})"


def tutorial_model(weights: str | os.PathLike | None = None, num_frame: int = 5, device: str = "cpu"):
    """The EDVR the tutorial evaluates: ``weights``, else the shipped checkpoint, else random weights.

    Returns:
        ``(model, label)``; the label says "random weights" when no trained checkpoint exists.
    """
    untrained = weights is None and not DEFAULT_CHECKPOINT.exists()
    return labelled_model(weights, num_frame=num_frame, device=device, random_weights=untrained)
