"""Check (and optionally fix up) a user's REDS download: ``edvr prepare-reds --root PATH``.

Expected under ``root`` (the official archives unpacked)::

    train_sharp/<000..239>/<00000000..00000099>.png           GT, 1280x720
    train_sharp_bicubic[/X4]/<000..239>/...png                LR x4, 320x180
    val_sharp/<000..029>/...  val_sharp_bicubic[/X4]/...       (optional)

It checks folders, frame counts and names (no gaps), sizes (LR exactly GT/4) and that every frame decodes
(``--quick``: headers only); ``--regroup-val`` copies val clip ``k`` to ``train_sharp/<k+240>`` (REDSofficial
validation); ``--regenerate-lr`` rewrites every LR frame as MATLAB bicubic x1/4 of its GT; then it writes the BasicSR
meta info files (``meta_info_REDS_GT.txt`` and the REDS4 / REDSofficial partitions); ``--check-only`` writes nothing.
"""
from __future__ import annotations

import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from edvr_lib.data.frame_store import resolve_lq_root
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import meta_info_lines, png_header, read_image, read_image_uint8, write_png
from edvr_lib.data.reds_dataset import REDS4_CLIPS, REDS_OFFICIAL_VAL_CLIPS
from edvr_lib.utils import EDVRError, atomic_write_text

__all__ = ["REDSReport", "prepare_reds"]

REDS_FRAMES = 100
OFFICIAL4 = ("240", "241", "246", "257")


@dataclass
class REDSReport:
    """What :func:`prepare_reds` found and did."""

    root: Path
    clips: dict[str, int] = field(default_factory=dict)  # clip -> frames (GT)
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)  # clip -> GT (h, w)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    lq_root: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    def format(self, max_lines: int = 25) -> str:
        lines = [f"REDS at {self.root}",
                 f"  GT clips: {len(self.clips)}, frames: {sum(self.clips.values())}",
                 f"  LR folder: {self.lq_root if self.lq_root else 'missing'}"]
        sizes = sorted(set(self.sizes.values()))
        if sizes:
            lines.append("  GT sizes (h, w): " + ", ".join(f"{h}x{w}" for h, w in sizes[:5]))
        for title, items in (("actions", self.actions), ("warnings", self.warnings), ("PROBLEMS", self.problems)):
            if items:
                lines.append(f"  {title} ({len(items)}):")
                lines += [f"    - {m}" for m in items[:max_lines]]
                if len(items) > max_lines:
                    lines.append(f"    ... and {len(items) - max_lines} more")
        if self.ok:
            lines.append("  OK. Use it with: REDSDataset(dataroot_gt='%s', dataroot_lq='%s', meta_info_file='%s', "
                         "val_partition='REDS4')" % (self.root / "train_sharp", self.lq_root,
                                                     self.root / "meta_info_REDS_GT.txt"))
        else:
            lines.append("  Fix the problems above (re-extract the archives; `--regenerate-lr` rebuilds LR frames).")
        return "\n".join(lines)


def _lr_one(task: tuple[str, str]) -> str | None:
    gt_path, lq_path = task
    try:
        gt = read_image_uint8(gt_path)
    except EDVRError as err:
        return str(err)
    if gt.shape[0] % 4 or gt.shape[1] % 4:
        return f"{gt_path}: GT {gt.shape[1]}x{gt.shape[0]} is not a multiple of 4; crop it first"
    write_png(lq_path, imresize(gt, 0.25))
    return None


def _checked_header(path: Path, quick: bool) -> dict:
    """The PNG header of ``path``; the whole frame is decoded too unless ``quick``."""
    head = png_header(path)
    if not quick:
        read_image(path)
    return head


def _progress(it, total, desc, progress):
    from tqdm.auto import tqdm

    return tqdm(it, total=total, desc=desc, unit="frame", disable=not progress)


def _copytree_atomic(src: Path, dest: Path) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        shutil.copytree(src, tmp)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare_reds(root: str | os.PathLike, regroup_val: bool = False, regenerate_lr: bool = False,
                 check_only: bool = False, quick: bool = False, jobs: int | None = None,
                 progress: bool = True) -> REDSReport:
    """Check a REDS download and optionally regroup, regenerate LR and write meta info.

    Args:
        root: folder holding ``train_sharp`` and ``train_sharp_bicubic``.
        regroup_val: copy ``val_sharp/<k>`` to ``train_sharp/<k+240>`` (and the LR likewise).
        regenerate_lr: write every LR frame as MATLAB bicubic x1/4 of its GT frame.
        check_only: change nothing (overrides the two options above).
        quick: check PNG headers only instead of decoding every frame.
        jobs: processes for ``regenerate_lr`` (default: all cores).
        progress: show tqdm bars.

    Returns:
        A :class:`REDSReport`; ``report.ok`` is False when problems remain.
    """
    root = Path(root)
    if not root.is_dir():
        raise EDVRError(f"REDS root not found: {root}. Fix: pass the folder that holds train_sharp/ and "
                        "train_sharp_bicubic/.")
    gt_root = root / "train_sharp"
    if not gt_root.is_dir():
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:8]) or "nothing"
        raise EDVRError(f"{gt_root} not found (found: {found}). Fix: unpack train_sharp.zip into {root}.")
    report = REDSReport(root)
    lq_base = root / "train_sharp_bicubic"

    if regroup_val and not check_only:
        val_gt, val_lq = root / "val_sharp", root / "val_sharp_bicubic"
        if not val_gt.is_dir():
            report.problems.append(f"--regroup-val: {val_gt} not found (unpack val_sharp.zip there)")
        else:
            val_lq_res = resolve_lq_root(val_lq) if val_lq.is_dir() else None
            if lq_base.is_dir():
                train_lq_res = resolve_lq_root(lq_base)
            else:  # mirror the val layout (with or without X4)
                train_lq_res = lq_base / "X4" if val_lq_res is not None and val_lq_res.name == "X4" else lq_base
            for clip in sorted(p for p in val_gt.iterdir() if p.is_dir()):
                new = f"{int(clip.name) + 240:03d}"
                if (gt_root / new).exists():
                    report.warnings.append(f"train_sharp/{new} already exists: val clip {clip.name} not copied")
                    continue
                _copytree_atomic(clip, gt_root / new)
                if val_lq_res is not None and (val_lq_res / clip.name).is_dir():
                    train_lq_res.mkdir(parents=True, exist_ok=True)
                    _copytree_atomic(val_lq_res / clip.name, train_lq_res / new)
                report.actions.append(f"copied val clip {clip.name} -> {new}")

    lq_root = resolve_lq_root(lq_base) if lq_base.is_dir() else (lq_base if regenerate_lr and not check_only else None)
    if lq_root is None:
        report.problems.append(f"{lq_base} not found: unpack train_sharp_bicubic.zip, or pass --regenerate-lr")
    report.lq_root = lq_root

    clips = sorted(p.name for p in gt_root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not clips:
        report.problems.append(f"no clip folders in {gt_root}")
    all_frames: list[tuple[str, str]] = []
    for clip in clips:
        frames = sorted(p.name for p in (gt_root / clip).glob("*.png"))
        report.clips[clip] = len(frames)
        if not frames:
            report.problems.append(f"clip {clip}: no frames in {gt_root / clip}")
            continue
        expected = [f"{i:08d}.png" for i in range(len(frames))]
        if frames != expected:
            gaps = sorted(set(expected) - set(frames))[:3]
            report.problems.append(f"clip {clip}: frame names are not 00000000.png upwards without gaps "
                                   f"(missing e.g. {gaps})")
        if len(frames) != REDS_FRAMES:
            report.warnings.append(f"clip {clip}: {len(frames)} frames (REDS clips have {REDS_FRAMES})")
        all_frames += [(clip, f) for f in frames]

    # sizes and readability
    need_lr = []
    for clip, name in _progress(all_frames, len(all_frames), "checking frames", progress):
        gt_path = gt_root / clip / name
        try:
            head = _checked_header(gt_path, quick)
        except EDVRError as err:
            report.problems.append(str(err).split(". Fix")[0])
            continue
        gh, gw = head["height"], head["width"]
        prev = report.sizes.setdefault(clip, (gh, gw))
        if prev != (gh, gw):
            report.problems.append(f"{gt_path}: {gw}x{gh}, but the clip's first frame is {prev[1]}x{prev[0]}")
        if lq_root is None:
            continue
        lq_path = lq_root / clip / name
        if regenerate_lr and not check_only:
            need_lr.append((str(gt_path), str(lq_path)))
            continue
        try:
            lh = _checked_header(lq_path, quick)
        except EDVRError as err:
            report.problems.append(str(err).split(". Fix")[0].replace("frame not found", "LR frame missing"))
            continue
        if (lh["height"] * 4, lh["width"] * 4) != (gh, gw):
            report.problems.append(f"{lq_path}: LR {lh['width']}x{lh['height']} is not GT {gw}x{gh} / 4")

    if need_lr:
        jobs = jobs or os.cpu_count() or 1
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = pool.map(_lr_one, need_lr, chunksize=8)
            for err in _progress(results, len(need_lr), "regenerating LR (MATLAB bicubic x1/4)", progress):
                if err:
                    report.problems.append(err)
        report.actions.append(f"regenerated {len(need_lr)} LR frames with MATLAB bicubic into {lq_root}")

    if not check_only and report.clips:
        targets = {"meta_info_REDS_GT.txt": sorted(report.sizes),
                   "meta_info_REDS4_test_GT.txt": [c for c in REDS4_CLIPS if c in report.sizes],
                   "meta_info_REDSval_official_test_GT.txt": [c for c in REDS_OFFICIAL_VAL_CLIPS if c in report.sizes],
                   "meta_info_REDSofficial4_test_GT.txt": [c for c in OFFICIAL4 if c in report.sizes]}
        for fname, names in targets.items():
            if names:
                atomic_write_text(root / fname,
                                  meta_info_lines((c, report.clips[c], report.sizes[c]) for c in names))
                report.actions.append(f"wrote {root / fname} ({len(names)} clips)")
    return report
