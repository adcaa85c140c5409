"""``edvr test``: PSNR / SSIM on REDS4, Vid4, Vimeo-90K-T or the embedded test clips.

Protocol (as the EDVR test configs): every frame of every clip is restored as the centre
of a ``num_frame`` window (``reflection_circle`` at the ends), the output is rounded to uint8,
PSNR / SSIM are computed with ``crop_border 0`` on RGB (REDS4, embedded) or on the BT.601 Y
channel (Vid4, Vimeo-90K-T, as those tables are reported), averaged over the frames of each
clip, then over clips. The table prints the published numbers beside ours, labelled.

Examples::

    edvr test --config configs/test_EDVR_M_x4_SR_REDS4.yaml
    edvr test --dataset REDS4 --root datasets/REDS --weights EDVR_M_x4_SR_REDS_official-32075921.pth
    edvr test --dataset embedded --model bicubic
"""
from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path

import torch

from edvr_lib.utils import REPO_ROOT, EDVRError, atomic_write_text

__all__ = ["BENCHMARKS", "PUBLISHED", "build_dataset", "evaluate", "format_table", "write_csv",
           "load_test_config", "CentreFrameOnly"]

REDS4_CLIPS = ["000", "011", "015", "020"]

#: Where each benchmark's folders sit under ``--root`` and how it is conventionally reported.
BENCHMARKS: dict[str, dict] = {
    "embedded": dict(gt=None, lq=None, num_frame=5, test_y_channel=False,
                     note="the project's own offline clips (test split); no published numbers exist"),
    "REDS4": dict(gt="train_sharp", lq="train_sharp_bicubic", clips=REDS4_CLIPS, num_frame=5, test_y_channel=False,
                  note="REDS clips 000, 011, 015, 020 (100 frames each), RGB"),
    "Vid4": dict(gt="GT", lq="BIx4", num_frame=7, test_y_channel=True, note="calendar, city, foliage, walk; Y channel"),
    "Vimeo90K-T": dict(gt="vimeo_septuplet/sequences", lq="vimeo_septuplet_matlabLRx4/sequences", num_frame=7,
                       test_y_channel=True, note="7,824 septuplets, centre frame im4; Y channel"),
}

#: Published PSNR / SSIM (BI x4), each with its source in the last column. Never ours.
#: Sources: the EDVR paper reports EDVR(-L); the EDVR-M rows come
#: from the BasicSR Model Zoo (the converted official ``EDVR_REDS_SR_M``) and the BasicVSR paper's comparison table.
PUBLISHED: dict[str, list[tuple[str, float, float, str]]] = {
    "REDS4": [("Bicubic", 26.14, 0.7292, "EDVR paper / BasicVSR table"),
              ("EDVR-M", 30.53, 0.8699, "BasicSR Model Zoo (EDVR_REDS_SR_M), BasicVSR paper table"),
              ("EDVR-L", 31.09, 0.8800, "BasicSR Model Zoo, EDVR paper")],
    "Vid4": [("Bicubic", 23.78, 0.6347, "EDVR paper / BasicVSR table"),
             ("EDVR-M", 27.10, 0.8186, "BasicVSR paper table"),
             ("EDVR-L (Vimeo-90K model)", 27.35, 0.8264, "BasicSR Model Zoo")],
    "Vimeo90K-T": [("Bicubic", 31.32, 0.8684, "EDVR paper / BasicVSR table"),
                   ("EDVR-M", 37.09, 0.9446, "BasicVSR paper table"),
                   ("EDVR-L", 37.61, 0.9489, "EDVR paper / BasicVSR table")],
    "embedded": [],
}


# ----------------------------------------------------------------------------------------- datasets
class _VimeoAsClips(torch.utils.data.Dataset):
    """Vimeo-90K-T items with ``clip`` / ``frame_idx`` keys (one 'clip' per septuplet)."""

    def __init__(self, ds):
        self.ds = ds
        self.clip_names = list(ds.keys)

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        item = self.ds[i]
        return {**item, "clip": item["key"], "frame_idx": 3}


def build_dataset(name: str, root: str | os.PathLike | None = None, num_frame: int | None = None,
                  dataroot_gt=None, dataroot_lq=None, meta_info_file=None, clips: list[str] | None = None,
                  padding: str = "reflection_circle"):
    """The test dataset of benchmark ``name`` (items ``{'lq', 'gt', 'clip', 'frame_idx', 'key'}``).

    Args:
        name: one of :data:`BENCHMARKS`.
        root: the benchmark's folder (``datasets/REDS``, ``datasets/Vid4``, ``datasets/vimeo90k``);
            for ``embedded`` the built set (default: :func:`edvr_lib.data.prepare_embedded`).
        num_frame: window length (default: the benchmark's).
        dataroot_gt, dataroot_lq, meta_info_file: explicit folders (override ``root``).
        clips: subset of clips.
        padding: window padding at clip ends.
    """
    if name not in BENCHMARKS:
        raise EDVRError(f"unknown dataset {name!r}; choose one of {', '.join(BENCHMARKS)}")
    spec = BENCHMARKS[name]
    num_frame = num_frame or spec["num_frame"]
    if name == "embedded":
        from edvr_lib.data import embedded_paths, prepare_embedded
        from edvr_lib.data.video_test_dataset import VideoTestDataset

        paths = embedded_paths(root if root is not None else prepare_embedded(progress=False))
        return VideoTestDataset(dataroot_gt or paths["gt"], dataroot_lq or paths["lq"],
                                meta_info_file=meta_info_file or paths["meta_test"], num_frame=num_frame,
                                padding=padding, clips=clips)
    if root is None and (dataroot_gt is None or dataroot_lq is None):
        raise EDVRError(f"--dataset {name} needs --root (the folder holding {spec['gt']} and {spec['lq']}), "
                        "or dataroot_gt / dataroot_lq in the config. These sets are not downloaded by this project; "
                        "see the README's 'Datasets' section.")
    gt = Path(dataroot_gt) if dataroot_gt else Path(root) / spec["gt"]
    lq = Path(dataroot_lq) if dataroot_lq else Path(root) / spec["lq"]
    for what, p in (("GT", gt), ("LQ", lq)):
        if not p.is_dir():
            raise EDVRError(f"{name} {what} folder not found: {p}. Fix: pass --root pointing at the folder that "
                            f"contains {spec['gt'] if what == 'GT' else spec['lq']}.")
    if name == "Vimeo90K-T":
        from edvr_lib.data.vimeo_dataset import Vimeo90KDataset

        testlist = Path(root) / "vimeo_septuplet" / "sep_testlist.txt" if root else None
        ds = Vimeo90KDataset(gt, lq, meta_info_file=meta_info_file, num_frame=num_frame, gt_size=None,
                             use_hflip=False, use_rot=False)
        if meta_info_file is None:
            if testlist is None or not testlist.is_file():
                raise EDVRError(f"Vimeo-90K-T needs its test list: {testlist} (from the dataset) or a BasicSR meta "
                                "file meta_info_Vimeo90K_test_GT.txt via meta_info_file / --meta")
            ds.keys = [ln.strip() for ln in testlist.read_text().splitlines() if ln.strip()]
        return _VimeoAsClips(ds)
    from edvr_lib.data.video_test_dataset import VideoTestDataset

    return VideoTestDataset(gt, lq, meta_info_file=meta_info_file, num_frame=num_frame, padding=padding,
                            clips=clips if clips is not None else spec.get("clips"))


# ----------------------------------------------------------------------------------------- evaluation
def evaluate(model: torch.nn.Module, dataset, test_y_channel: bool = False, crop_border: int = 0,
             self_ensemble: bool = False, device: str = "cpu", keep_clips: list[str] | None = None,
             max_frames: int | None = None, progress: bool = False, ssim: bool = True) -> dict:
    """Per-frame PSNR / SSIM of ``model`` on ``dataset``, then per-clip and overall means.

    Args:
        model: EDVR (any size via padding) or :func:`edvr_lib.infer.bicubic_model`.
        dataset: items with ``lq (t, 3, h, w)``, ``gt (3, 4h, 4w)``, ``clip``, ``frame_idx``.
        test_y_channel: measure on the BT.601 Y channel.
        crop_border: pixels ignored at each border (0 for EDVR).
        self_ensemble: average the 8 flip / transpose variants (x8 slower).
        device: torch device of ``model``.
        keep_clips: clips whose restored frames are returned (for figures).
        max_frames: evaluate only the first ``max_frames`` items (quick looks; not a benchmark number).
        progress: tqdm progress bar.
        ssim: also compute SSIM.

    Returns:
        ``{'rows': [{'clip', 'frame_idx', 'key', 'psnr', 'ssim'}], 'per_clip', 'overall',
        'outputs': {clip: [uint8 (4h, 4w, 3), ...]}, 'seconds'}``.
    """
    from edvr_lib.inference import padded_runner, self_ensemble_forward
    from edvr_lib.metrics import calculate_psnr, calculate_ssim, summarize, tensor2img

    run_model = padded_runner(model)
    rows, outputs = [], {}
    n = len(dataset) if max_frames is None else min(max_frames, len(dataset))
    items = range(n)
    if progress:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="edvr test", unit="frame")
    start = time.perf_counter()
    with torch.inference_mode():
        for i in items:
            item = dataset[i]
            x = item["lq"].unsqueeze(0).to(device)
            out = self_ensemble_forward(run_model, x) if self_ensemble else run_model(x)
            sr = tensor2img(out[0].float())
            gt = tensor2img(item["gt"])
            row = {"clip": item["clip"], "frame_idx": int(item["frame_idx"]), "key": item["key"],
                   "psnr": calculate_psnr(sr, gt, crop_border, test_y_channel=test_y_channel)}
            if ssim:
                row["ssim"] = calculate_ssim(sr, gt, crop_border, test_y_channel=test_y_channel)
            rows.append(row)
            if keep_clips and item["clip"] in keep_clips:
                outputs.setdefault(item["clip"], []).append(sr)
    metrics = ("psnr", "ssim") if ssim else ("psnr",)
    per_clip, overall = summarize(rows, metrics)
    return {"rows": rows, "per_clip": per_clip, "overall": overall, "outputs": outputs,
            "seconds": time.perf_counter() - start}


class CentreFrameOnly(torch.nn.Module):
    """An ablation: ``model`` fed its centre frame ``t`` times, so alignment and fusion have nothing to add.

    What a video model gains over this is what it takes from the neighbouring frames.
    ``(b, t, c, h, w) -> model(centre frame repeated t times)``.
    """

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        self.num_frame, self.center_frame_idx = model.num_frame, model.center_frame_idx
        self.size_multiple, self.hr_in = getattr(model, "size_multiple", 4), getattr(model, "hr_in", False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centre = x[:, self.center_frame_idx : self.center_frame_idx + 1]
        return self.model(centre.expand_as(x).contiguous())


def write_csv(rows: list[dict], dest: str | os.PathLike) -> Path:
    """Write per-frame rows to ``dest`` atomically (columns clip, frame_idx, key, psnr, ssim)."""
    buf = io.StringIO()
    fields = [k for k in ("clip", "frame_idx", "key", "psnr", "ssim") if not rows or k in rows[0]]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in fields})
    atomic_write_text(dest, buf.getvalue())
    return Path(dest)


def format_table(dataset_name: str, results: dict[str, dict], test_y_channel: bool) -> str:
    """A Markdown table: our rows (``results``: label -> evaluate() result) then the published ones."""
    channel = "Y" if test_y_channel else "RGB"
    lines = [f"| method | source | {dataset_name} PSNR (dB, {channel}) | SSIM |", "|---|---|---|---|"]
    for label, res in results.items():
        o = res["overall"]
        ssim = f"{o['ssim']:.4f}" if "ssim" in o else "–"
        frames = len(res["rows"])
        lines.append(f"| {label} | ours ({frames} frames, {len(res['per_clip'])} clips) | {o['psnr']:.2f} | {ssim} |")
    for method, psnr, ssim, source in PUBLISHED.get(dataset_name, []):
        lines.append(f"| {method} | published ({source}) | {psnr:.2f} | {ssim:.4f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- config
_CONFIG_KEYS = {"name", "model", "num_frame", "self_ensemble", "path", "datasets", "val", "device", "random_weights"}


def load_test_config(path: str | os.PathLike) -> dict:
    """Read a BasicSR-like test YAML (``configs/test_*.yaml``) into flat options.

    Keys: ``name``, ``model`` (edvr / bicubic), ``num_frame``, ``self_ensemble``,
    ``path.pretrain_network_g``, ``datasets.test.{name, dataroot_gt, dataroot_lq, meta_info_file, padding, clips}``
    (``name`` is the benchmark: embedded, REDS4, Vid4, Vimeo90K-T; ``root`` is also accepted),
    ``val.metrics.psnr.{crop_border, test_y_channel}``. Relative paths are relative to the repository root.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise EDVRError(f"config not found: {path} (see configs/test_*.yaml)")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise EDVRError(f"cannot parse {path}: {err}") from None
    unknown = sorted(set(cfg) - _CONFIG_KEYS)
    if unknown:
        raise EDVRError(f"{path}: unknown key(s) {unknown}; valid keys: {sorted(_CONFIG_KEYS)}")
    test = (cfg.get("datasets") or {}).get("test") or {}
    psnr_opt = ((cfg.get("val") or {}).get("metrics") or {}).get("psnr") or {}

    def rel(p):
        return None if p is None else str(p if Path(p).is_absolute() else REPO_ROOT / p)

    return {"name": cfg.get("name", path.stem), "model": cfg.get("model", "edvr"), "num_frame": cfg.get("num_frame"),
            "self_ensemble": bool(cfg.get("self_ensemble", False)),
            "weights": rel((cfg.get("path") or {}).get("pretrain_network_g")),
            "dataset": test.get("name", "embedded"), "root": rel(test.get("root")),
            "dataroot_gt": rel(test.get("dataroot_gt")), "dataroot_lq": rel(test.get("dataroot_lq")),
            "meta_info_file": rel(test.get("meta_info_file")), "padding": test.get("padding", "reflection_circle"),
            "clips": test.get("clips"), "crop_border": int(psnr_opt.get("crop_border", 0)),
            "test_y_channel": psnr_opt.get("test_y_channel"), "random_weights": bool(cfg.get("random_weights", False)),
            "device": cfg.get("device")}


