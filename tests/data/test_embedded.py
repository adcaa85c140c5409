"""The embedded dataset: layout, exact LR, caching, variants, ground-truth motion."""
import json
import os

import cv2
import numpy as np
import pytest

from edvr_lib.data import embedded as emb
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import read_image, read_image_uint8
from edvr_lib.utils import EDVRError

# a tiny recipe (3 Big Buck Bunny frames decoded, 2 synthetic clips of 3 frames): builds in about a second
TINY = emb.EmbeddedSpec(
    variant="smoke", bbb_down=8, bbb_size=(80, 160),
    bbb_clips=(("bbb_000", 0, 2, "train"), ("bbb_002", 2, 1, "test")),
    syn_size=(64, 64), syn_frames=3,
    syn_clips=(("syn_translate_astronaut", "astronaut", "translate", "train"),
               ("syn_mixed_ihc", "immunohistochemistry", "mixed", "test")))


@pytest.fixture
def tiny(monkeypatch, tmp_path):
    monkeypatch.setattr(emb, "SMOKE_SPEC", TINY)
    monkeypatch.setattr(emb, "FULL_SPEC", emb.dataclasses.replace(TINY, variant="full"))
    root = tmp_path / "embedded"
    return root, emb.prepare_embedded(root, smoke=True, progress=False)


def test_layout_meta_and_exact_lr(tiny):
    root, path = tiny
    assert path == root / "smoke"
    p = emb.embedded_paths(path)
    assert p["meta_train"].read_text() == ("bbb_000 2 (80,160,3)\nsyn_translate_astronaut 3 (64,64,3)\n")
    assert p["meta_test"].read_text() == "bbb_002 1 (80,160,3)\nsyn_mixed_ihc 3 (64,64,3)\n"
    assert sorted(f.name for f in (p["gt"] / "bbb_000").iterdir()) == ["00000000.png", "00000001.png"]
    for clip in ("bbb_000", "syn_mixed_ihc"):
        gt = read_image_uint8(p["gt"] / clip / "00000000.png")
        lq = read_image_uint8(p["lq"] / clip / "00000000.png")
        assert gt.shape[0] % 16 == 0 and gt.shape[1] % 16 == 0
        np.testing.assert_array_equal(lq, imresize(gt, 0.25))  # LR is MATLAB bicubic of the stored GT
    man = emb.manifest(path)
    assert man["num_files"] == len(man["files"]) and man["train_clips"] == ["bbb_000", "syn_translate_astronaut"]
    on_disk = {str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()} - {"manifest.json"}
    assert on_disk == set(man["files"])


def test_big_buck_bunny_frames_are_real_video(tiny):
    _, path = tiny
    frame = read_image(path / "GT" / "bbb_000" / "00000001.png")
    assert frame.std() > 0.05  # not blank
    cap = cv2.VideoCapture(str(emb.bigbuckbunny_path()))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == emb.BBB_FRAMES
    cap.release()


def test_reused_when_valid_rebuilt_when_stale(tiny):
    root, path = tiny
    f = path / "GT" / "bbb_000" / "00000000.png"
    stamp = f.stat().st_mtime_ns
    assert emb.prepare_embedded(root, smoke=True, progress=False) == path
    assert f.stat().st_mtime_ns == stamp  # reused, not rebuilt
    good = f.read_bytes()
    f.write_bytes(b"corrupted")
    emb.prepare_embedded(root, smoke=True, progress=False)
    assert f.read_bytes() == good  # checksum mismatch -> rebuilt, deterministically
    assert not [d for d in root.iterdir() if d.name.startswith(".smoke.building")]


def test_smoke_and_full_do_not_clobber_each_other(tiny):
    root, smoke = tiny
    full = emb.prepare_embedded(root, smoke=False, progress=False)
    assert full == root / "full" and smoke.is_dir() and full.is_dir()
    assert emb._stale_reason(smoke, emb.SMOKE_SPEC) is None and emb._stale_reason(full, emb.FULL_SPEC) is None


def test_env_var_sets_the_parent_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("EDVR_DATA_DIR", str(tmp_path))
    assert emb.default_embedded_root() == tmp_path / "embedded"
    monkeypatch.delenv("EDVR_DATA_DIR")
    assert emb.default_embedded_root().parts[-2:] == ("data", "embedded")


@pytest.mark.parametrize("spec", [emb.FULL_SPEC, emb.SMOKE_SPEC], ids=["full", "smoke"])
def test_train_and_test_share_no_frames(spec):
    used = {"train": set(), "test": set()}
    for _, start, n, split in spec.bbb_clips:
        frames = set(range(start, start + n))
        assert not frames & (used["train"] | used["test"])
        used[split] |= frames
    assert used["test"] and used["train"] and max(used["train"] | used["test"]) < emb.BBB_FRAMES
    assert {c[3] for c in spec.syn_clips} == {"train", "test"}
    assert spec.bbb_size[0] % 16 == 0 and spec.bbb_size[1] % 16 == 0 and spec.syn_size[0] % 16 == 0


def _warp_error(path, clip, c, n, scale, sign=1.0):
    folder = "GT" if scale == "gt" else "LR_bicubic_x4"
    center = read_image(path / folder / clip / f"{c:08d}.png")
    nbr = read_image(path / folder / clip / f"{n:08d}.png")
    flow = sign * emb.ground_truth_flow(path, clip, c, n, scale)
    h, w = flow.shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    warped = cv2.remap(nbr, xx + flow[1], yy + flow[0], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    b = h // 6
    return float(np.abs(warped - center)[b:-b, b:-b].mean()), float(np.abs(nbr - center)[b:-b, b:-b].mean())


@pytest.mark.parametrize("scale", ["gt", "lr"])
def test_ground_truth_flow_aligns_neighbours(tiny, scale):
    _, path = tiny
    assert emb.synthetic_clip_names(path) == ["syn_mixed_ihc", "syn_translate_astronaut"]
    for clip in emb.synthetic_clip_names(path):
        err, unaligned = _warp_error(path, clip, 1, 2, scale)
        wrong_sign, _ = _warp_error(path, clip, 1, 2, scale, sign=-1.0)
        assert err < 0.35 * unaligned, (clip, err, unaligned)
        assert wrong_sign > 1.5 * err


def test_ground_truth_flow_values(tiny):
    _, path = tiny
    flow = emb.ground_truth_flow(path, "syn_translate_astronaut", 1, 2, "gt")
    assert flow.shape == (2, 64, 64) and flow.dtype == np.float32
    rec = emb.load_motion(path, "syn_translate_astronaut")
    s1, s2 = np.array(rec["frames"][1]["shift_yx"]), np.array(rec["frames"][2]["shift_yx"])
    # pure translation: flow is constant and equals minus the camera shift (content moves the other way)
    np.testing.assert_allclose(flow[:, 10, 20], -(s2 - s1), atol=1e-6)
    assert float(flow.astype(np.float64).std(axis=(1, 2)).max()) < 1e-6
    lr = emb.ground_truth_flow(path, "syn_translate_astronaut", 1, 2, "lr")
    assert lr.shape == (2, 16, 16)
    np.testing.assert_allclose(lr[:, 3, 3], flow[:, 10, 20] / 4, atol=1e-6)
    assert np.abs(emb.ground_truth_flow(path, "syn_mixed_ihc", 2, 2)).max() < 1e-9
    with pytest.raises(EDVRError, match="only synthetic clips"):
        emb.ground_truth_flow(path, "bbb_000", 0, 1)
    with pytest.raises(EDVRError, match="nbr_idx"):
        emb.ground_truth_flow(path, "syn_mixed_ihc", 0, 7)


def test_motion_record_is_documented(tiny):
    _, path = tiny
    rec = json.loads((path / "motion" / "syn_mixed_ihc.json").read_text())
    assert rec["motion"] == "mixed" and len(rec["frames"]) == 3 and "convention" in rec
    assert 1.0 <= rec["photo_pixels_per_gt_pixel"] <= 2.0


def test_missing_dataset_is_explained(tmp_path):
    with pytest.raises(EDVRError, match="prepare_embedded"):
        emb.embedded_paths(tmp_path / "nothing")


def test_unwritable_root_is_explained(tmp_path, monkeypatch):
    monkeypatch.setattr(emb, "SMOKE_SPEC", TINY)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(EDVRError, match="writable"):
        emb.prepare_embedded(blocker / "sub", smoke=True, progress=False)
    assert os.listdir(tmp_path) == ["file"]


def test_routine_check_reads_no_file_and_catches_deleted_or_resized_files(tiny, monkeypatch):
    root, path = tiny
    man = emb.manifest(path)
    assert set(man["stats"]) == set(man["files"]) and man["inputs"] == emb.build_inputs()

    def no_hashing(p):
        raise AssertionError(f"the routine check hashed {p}")

    with monkeypatch.context() as m:
        m.setattr(emb, "sha256_file", no_hashing)
        assert emb.prepare_embedded(root, smoke=True, progress=False) == path  # reused: stat only
    lq = path / "LR_bicubic_x4" / "syn_mixed_ihc" / "00000001.png"
    good = lq.read_bytes()
    lq.unlink()
    emb.prepare_embedded(root, smoke=True, progress=False)
    assert lq.read_bytes() == good  # a deleted file -> rebuilt
    with open(lq, "ab") as fh:
        fh.write(b"\0")  # resized
    assert "changed (size or modification time)" in emb._stale_reason(path, emb.SMOKE_SPEC)
    emb.prepare_embedded(root, smoke=True, progress=False)
    assert lq.read_bytes() == good


def test_verify_catches_an_edit_that_keeps_size_and_mtime(tiny, capsys):
    from edvr_lib.cli import main

    root, path = tiny
    f = path / "GT" / "bbb_000" / "00000001.png"
    good, st = f.read_bytes(), f.stat()
    f.write_bytes(good[:-8] + bytes(8))  # same size, other content ...
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))  # ... and the old mtime: only the hashes can tell
    assert emb.prepare_embedded(root, smoke=True, progress=False) == path
    assert f.read_bytes() != good  # the routine check does not read files
    assert emb._stale_reason(path, emb.SMOKE_SPEC, verify=True) == "GT/bbb_000/00000001.png does not match its SHA-256"
    assert main(["prepare-embedded", "--root", str(root), "--smoke", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "rebuilding" in out and "00000001.png does not match its SHA-256" in out and "every SHA-256 checked" in out
    assert f.read_bytes() == good
    assert main(["prepare-embedded", "--root", str(root), "--smoke", "--verify"]) == 0
    assert "rebuilding" not in capsys.readouterr().out  # verified and reused


def test_manifest_without_sizes_is_verified_by_hash_once(tiny):
    root, path = tiny
    man = emb.manifest(path)
    del man["stats"], man["inputs"]
    (path / "manifest.json").write_text(json.dumps(man))  # as written before sizes were recorded
    f = path / "GT" / "bbb_000" / "00000000.png"
    stamp = f.stat().st_mtime_ns
    assert emb.prepare_embedded(root, smoke=True, progress=False) == path
    assert f.stat().st_mtime_ns == stamp  # not rebuilt ...
    assert emb.manifest(path)["stats"]["GT/bbb_000/00000000.png"] == [f.stat().st_size, stamp]  # ... now stamped


def test_changed_build_inputs_rebuild(tiny, monkeypatch):
    root, path = tiny
    monkeypatch.setattr(emb, "build_inputs", lambda: {"scikit-video": "9.9", "scikit-image": "0.1"})
    assert "the build inputs changed" in emb._stale_reason(path, emb.SMOKE_SPEC)
    emb.prepare_embedded(root, smoke=True, progress=False)
    assert emb.manifest(path)["inputs"] == {"scikit-video": "9.9", "scikit-image": "0.1"}
