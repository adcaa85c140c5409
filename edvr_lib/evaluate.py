"""``edvr test``: PSNR / SSIM on REDS4, Vid4, Vimeo-90K-T or the embedded test clips.

Protocol (as the EDVR test configs): every frame is restored as the centre of a ``num_frame`` window
(``reflection_circle`` at the ends), rounded to uint8, and measured with ``crop_border 0`` on RGB (REDS4, embedded)
or the BT.601 Y channel (Vid4, Vimeo-90K-T); means over each clip's frames, then over clips, printed beside the
published numbers. :func:`run_test` is the whole command, :func:`evaluate` the measurement.

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
from typing import Annotated, Optional

import torch
from pydantic import Field

from edvr_lib.models import SRModel
from edvr_lib.utils import REPO_ROOT, EDVRError, atomic_write_text
from edvr_lib.train.schema import Bool, Int, PathStr, Section, Str, one_of, read_options

__all__ = ["BENCHMARKS", "PUBLISHED", "build_dataset", "evaluate", "run_test", "format_table", "write_csv",
           "load_test_config"]

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

#: Published PSNR / SSIM (BI x4) with their sources (the EDVR paper reports EDVR-L; the EDVR-M rows come from the
#: BasicSR Model Zoo and the BasicVSR paper's table). Never ours.
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


def _spec(name: str) -> dict:
    if name not in BENCHMARKS:
        raise EDVRError(f"unknown dataset {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return BENCHMARKS[name]


def build_dataset(name: str, root: str | os.PathLike | None = None, num_frame: int | None = None,
                  dataroot_gt=None, dataroot_lq=None, meta_info_file=None, clips: list[str] | None = None,
                  padding: str = "reflection_circle"):
    """The test dataset of benchmark ``name`` (items ``{'lq', 'gt', 'clip', 'frame_idx', 'key'}``).

    Args:
        name: one of :data:`BENCHMARKS`.
        root: the benchmark's folder (``datasets/REDS``, ...); for ``embedded`` the built set (default: built).
        num_frame: window length (default: the benchmark's).
        dataroot_gt, dataroot_lq, meta_info_file: explicit folders (override ``root``).
        clips, padding: subset of clips; window padding at clip ends.
    """
    from edvr_lib.data.video_test_dataset import VideoTestDataset

    spec = _spec(name)
    num_frame = num_frame or spec["num_frame"]
    if name == "embedded":
        from edvr_lib.data import embedded_paths, prepare_embedded

        paths = embedded_paths(root if root is not None else prepare_embedded(progress=False))
        return VideoTestDataset(dataroot_gt or paths["gt"], dataroot_lq or paths["lq"],
                                meta_info_file=meta_info_file or paths["meta_test"], num_frame=num_frame,
                                padding=padding, clips=clips)
    if root is None and (dataroot_gt is None or dataroot_lq is None):
        raise EDVRError(f"`dataset` {name} needs `root` (the folder holding {spec['gt']} and {spec['lq']}), "
                        "or dataroot_gt / dataroot_lq in the config. These sets are not downloaded by this project; "
                        "see the README's 'Datasets' section.")
    gt = Path(dataroot_gt) if dataroot_gt else Path(root) / spec["gt"]
    lq = Path(dataroot_lq) if dataroot_lq else Path(root) / spec["lq"]
    for what, p in (("GT", gt), ("LQ", lq)):
        if not p.is_dir():
            raise EDVRError(f"{name} {what} folder not found: {p}. Fix: pass `root` pointing at the folder that "
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
    return VideoTestDataset(gt, lq, meta_info_file=meta_info_file, num_frame=num_frame, padding=padding,
                            clips=clips if clips is not None else spec.get("clips"))


# ----------------------------------------------------------------------------------------- evaluation
def evaluate(model: SRModel, dataset, test_y_channel: bool = False, crop_border: int = 0,
             self_ensemble: bool = False, device: str = "cpu", keep_clips: list[str] | None = None,
             max_frames: int | None = None, progress: bool = False, ssim: bool = True) -> dict:
    """Per-frame PSNR / SSIM of ``model`` on ``dataset``, then per-clip and overall means.

    Args:
        model: EDVR (any size via padding) or :func:`edvr_lib.models.bicubic_model`.
        dataset: items with ``lq (t, 3, h, w)``, ``gt (3, 4h, 4w)``, ``clip``, ``frame_idx``.
        test_y_channel, crop_border: measure on the BT.601 Y channel; pixels ignored at each border (0 for EDVR).
        self_ensemble: average the 8 flip / transpose variants (x8 slower).
        device: torch device of ``model``.
        keep_clips: clips whose restored frames are returned (for figures).
        max_frames: only the first ``max_frames`` items (quick looks; not a benchmark number).
        progress, ssim: a tqdm progress bar; also compute SSIM.

    Returns:
        ``{'rows': [{'clip', 'frame_idx', 'key', 'psnr', 'ssim'}], 'per_clip', 'overall',
        'outputs': {clip: [uint8 (4h, 4w, 3), ...]}, 'seconds'}``.
    """
    from edvr_lib.inference import padded_runner, self_ensemble_forward
    from edvr_lib.metrics import calculate_psnr, calculate_ssim, summarize, tensor2img

    from tqdm.auto import tqdm

    run_model, rows, outputs = padded_runner(model), [], {}
    items = tqdm(range(len(dataset) if max_frames is None else min(max_frames, len(dataset))), desc="edvr test",
                 unit="frame", disable=not progress)
    start = time.perf_counter()
    with torch.inference_mode():
        for i in items:
            item = dataset[i]
            x = item["lq"].unsqueeze(0).to(device)
            out = self_ensemble_forward(run_model, x) if self_ensemble else run_model(x)
            sr, gt = tensor2img(out[0].float()), tensor2img(item["gt"])
            row = {"clip": item["clip"], "frame_idx": int(item["frame_idx"]), "key": item["key"],
                   "psnr": calculate_psnr(sr, gt, crop_border, test_y_channel=test_y_channel)}
            if ssim:
                row["ssim"] = calculate_ssim(sr, gt, crop_border, test_y_channel=test_y_channel)
            rows.append(row)
            if keep_clips and item["clip"] in keep_clips:
                outputs.setdefault(item["clip"], []).append(sr)
    per_clip, overall = summarize(rows, ("psnr", "ssim") if ssim else ("psnr",))
    return {"rows": rows, "per_clip": per_clip, "overall": overall, "outputs": outputs,
            "seconds": time.perf_counter() - start}


def run_test(dataset: str = "embedded", *, weights=None, model: str = "edvr", random_weights: bool = False,
             num_frame: int | None = None, self_ensemble: bool = False, test_y_channel: bool | None = None,
             crop_border: int = 0, root=None, dataroot_gt=None, dataroot_lq=None, meta_info_file=None,
             clips: list[str] | None = None, padding: str = "reflection_circle", name: str | None = None,
             output: str | os.PathLike | None = None, device: str = "cpu", max_frames: int | None = None,
             progress: bool = False) -> dict:
    """``edvr test``: pick the model, build the benchmark, evaluate, write the per-frame CSV, format the report.

    Args:
        dataset: one of :data:`BENCHMARKS`.
        weights, model, random_weights: the network (:func:`edvr_lib.models.labelled_model`).
        num_frame: window length (default: the checkpoint's, else the benchmark's).
        test_y_channel: measure on Y (default: the benchmark's convention).
        name: the run's name (default ``<dataset>_<model>``); output: the CSV's folder (default
            ``outputs/test/<name>``).
        crop_border, self_ensemble, device, max_frames, progress: as :func:`evaluate`.
        root, dataroot_gt, dataroot_lq, meta_info_file, clips, padding: as :func:`build_dataset`.

    Returns:
        :func:`evaluate`'s result plus ``'label'``, ``'csv'`` (the file written) and ``'report'`` (what
        ``edvr test`` prints).
    """
    from edvr_lib.models import labelled_model

    spec = _spec(dataset)
    y = spec["test_y_channel"] if test_y_channel is None else test_y_channel
    net, label = labelled_model(weights, model, num_frame or spec["num_frame"], device, random_weights)
    if num_frame and num_frame != net.num_frame:  # a checkpoint's window is fixed
        raise EDVRError(f"`num_frame` {num_frame} does not match the checkpoint's num_frame {net.num_frame}; "
                        "leave `num_frame` out")
    label += " + self-ensemble x8" if self_ensemble else ""
    data = build_dataset(dataset, root, net.num_frame, dataroot_gt, dataroot_lq, meta_info_file, clips, padding)
    res = evaluate(net, data, test_y_channel=y, crop_border=crop_border, self_ensemble=self_ensemble, device=device,
                   max_frames=max_frames, progress=progress)
    name = name or f"{dataset}_{label.split(' ')[0].lower()}"
    res["csv"] = write_csv(res["rows"], Path(output or REPO_ROOT / "outputs" / "test" / name) / "metrics.csv")
    lines = [f"{dataset}: {len(res['rows'])} frames in {len(res['per_clip'])} clips, {'Y' if y else 'RGB'}, "
             f"crop_border {crop_border}, {res['seconds']:.1f} s"]
    lines += [f"  {clip:<28} {m['num_frames']:>4} frames  PSNR {m['psnr']:.2f} dB  SSIM {m['ssim']:.4f}"
              for clip, m in res["per_clip"].items()]
    if max_frames:
        lines.append(f"  (only the first {max_frames} frames: not comparable with published numbers)")
    lines += ["", format_table(dataset, {label: res}, y)]
    if not PUBLISHED.get(dataset):
        lines.append(f"({dataset}: {spec['note']})")
    lines.append(f"\nper-frame metrics: {res['csv']}")
    return {**res, "label": label, "report": "\n".join(lines)}


def write_csv(rows: list[dict], dest: str | os.PathLike) -> Path:
    """Write per-frame rows to ``dest`` atomically (columns clip, frame_idx, key, psnr, ssim)."""
    buf, fields = io.StringIO(), [k for k in ("clip", "frame_idx", "key", "psnr", "ssim") if not rows or k in rows[0]]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{r[k]:.6f}" if isinstance(r[k], float) else r[k]) for k in fields})
    atomic_write_text(dest, buf.getvalue())
    return Path(dest)


def format_table(dataset_name: str, results: dict[str, dict], test_y_channel: bool) -> str:
    """A Markdown table: our rows (``results``: label -> evaluate() result) then the published ones."""
    lines = [f"| method | source | {dataset_name} PSNR (dB, {'Y' if test_y_channel else 'RGB'}) | SSIM |",
             "|---|---|---|---|"]
    for label, res in results.items():
        o = res["overall"]
        ssim = f"{o['ssim']:.4f}" if "ssim" in o else "–"
        lines.append(f"| {label} | ours ({len(res['rows'])} frames, {len(res['per_clip'])} clips) | {o['psnr']:.2f} "
                     f"| {ssim} |")
    for method, psnr, ssim, source in PUBLISHED.get(dataset_name, []):
        lines.append(f"| {method} | published ({source}) | {psnr:.2f} | {ssim:.4f} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------- config
class _TestSet(Section):
    name: Str = "embedded"  # the benchmark: embedded, REDS4, Vid4, Vimeo90K-T
    root: Optional[PathStr] = None
    dataroot_gt: Optional[PathStr] = None
    dataroot_lq: Optional[PathStr] = None
    meta_info_file: Optional[PathStr] = None
    padding: Str = "reflection_circle"
    clips: Optional[list[Str]] = None


class _PSNR(Section):
    crop_border: Annotated[Int, Field(ge=0)] = 0
    test_y_channel: Optional[Bool] = None  # ~: the benchmark's convention


class _Metrics(Section):
    psnr: _PSNR = _PSNR()


class _Val(Section):
    metrics: _Metrics = _Metrics()


class _Datasets(Section):
    test: _TestSet = _TestSet()


class _Path(Section):
    pretrain_network_g: Optional[PathStr] = None


class TestConfig(Section):
    """A BasicSR-like test config (``configs/test_*.yaml``)."""

    name: Optional[Str] = None  # ~: the file's name
    model: one_of("edvr", "bicubic") = "edvr"
    num_frame: Optional[Int] = None
    self_ensemble: Bool = False
    path: _Path = _Path()
    datasets: _Datasets = _Datasets()
    val: _Val = _Val()
    device: Optional[Str] = None
    random_weights: Bool = False


def load_test_config(path: str | os.PathLike) -> dict:
    """Read a test config (:class:`TestConfig`) into :func:`run_test`'s options (``weights``, ``dataset``, ...),
    relative paths under the repository root; a bad file, key or value raises a one-line EDVRError."""
    cfg = read_options(path, TestConfig, base_dir=REPO_ROOT, example="configs/test_edvr_embedded.yaml")
    test, psnr = cfg.datasets.test, cfg.val.metrics.psnr
    return {"name": cfg.name or Path(path).stem, "model": cfg.model, "num_frame": cfg.num_frame,
            "self_ensemble": cfg.self_ensemble, "weights": cfg.path.pretrain_network_g, "dataset": test.name,
            "root": test.root, "dataroot_gt": test.dataroot_gt, "dataroot_lq": test.dataroot_lq,
            "meta_info_file": test.meta_info_file, "padding": test.padding, "clips": test.clips,
            "crop_border": psnr.crop_border, "test_y_channel": psnr.test_y_channel,
            "random_weights": cfg.random_weights, "device": cfg.device}
