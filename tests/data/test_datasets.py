"""REDS / Vimeo-90K / video-test datasets on small hand-made folders, the embedded set, bad input, LMDB."""
import random

import cv2
import numpy as np
import pytest
import torch

from edvr_lib.data import REDSDataset, VideoTestDataset, Vimeo90KDataset, generate_frame_indices
from edvr_lib.data.io import write_png
from edvr_lib.utils import EDVRError


def _frame_pair(idx, rng, lq_hw=(12, 16)):
    """LQ with the frame index in the red channel (idx * 10 / 255) and a texture in G/B; GT is its 4x blow-up."""
    lq = np.zeros((*lq_hw, 3), np.uint8)
    lq[:, :, 0] = idx * 10
    lq[:, :, 1:] = rng.integers(0, 256, (*lq_hw, 2))
    return np.kron(lq, np.ones((4, 4, 1), np.uint8)), lq


def make_reds(root, clips=None, lq_level="", lq_hw=(12, 16)):
    """A REDS-like tree: GT/<clip>/<frame:08d>.png and LQ[/X4]/<clip>/... ; returns (gt, lq, meta)."""
    clips = clips or {"000": 8, "001": 9}
    rng = np.random.default_rng(0)
    gt_root, lq_root = root / "train_sharp", root / "train_sharp_bicubic"
    lines = []
    for clip, n in clips.items():
        for i in range(n):
            gt, lq = _frame_pair(i, rng, lq_hw)
            write_png(gt_root / clip / f"{i:08d}.png", gt)
            write_png(lq_root / lq_level / clip / f"{i:08d}.png", lq)
        lines.append(f"{clip} {n} ({lq_hw[0] * 4},{lq_hw[1] * 4},3)\n")
    meta = root / "meta_info.txt"
    meta.write_text("".join(lines))
    return gt_root, lq_root, meta


def _frame_ids(lq):
    """Frame indices encoded in the red channel of a (t, 3, h, w) tensor."""
    return [int(round(float(v) * 255 / 10)) for v in lq[:, 0].mean(dim=(1, 2))]


def _check_pairing(item):
    centre = item["lq"][item["lq"].shape[0] // 2]
    blown = torch.kron(centre, torch.ones(1, 4, 4))
    torch.testing.assert_close(item["gt"], blown, rtol=0, atol=1e-6)


def test_reds_windows_crops_and_augmentation(tmp_path):
    gt, lq, meta = make_reds(tmp_path)
    ds = REDSDataset(gt, lq, meta, val_partition=None, num_frame=5, gt_size=32)
    assert len(ds) == 17 and ds.keys[0] == "000/00000000"
    random.seed(0)
    seen_variants = set()
    for i in range(len(ds)):
        item = ds[i]
        assert item["lq"].shape == (5, 3, 8, 8) and item["gt"].shape == (3, 32, 32)
        assert item["lq"].dtype == torch.float32 and 0 <= float(item["lq"].min()) <= float(item["lq"].max()) <= 1
        ids = _frame_ids(item["lq"])
        n = 8 if item["key"].startswith("000") else 9
        assert ids == list(range(ids[0], ids[0] + 5)) and 2 <= ids[2] <= n - 3  # border centres re-sampled
        assert item["key"] == f"{item['key'][:3]}/{ids[2]:08d}"
        _check_pairing(item)  # same crop window and same flip/rotation for GT and LQ
        seen_variants.add(item["gt"][1].numpy().tobytes())
    assert len(seen_variants) > 8  # crops/augmentations vary


def test_reds_interval_reverse_partition_and_x4_level(tmp_path):
    gt, lq, meta = make_reds(tmp_path, clips={"000": 9, "011": 9, "005": 12}, lq_level="X4")
    ds = REDSDataset(gt, lq, meta, val_partition="REDS4", num_frame=3, gt_size=None, interval_list=[3],
                     random_reverse=True, use_hflip=False, use_rot=False)
    assert {k.split("/")[0] for k in ds.keys} == {"005"}  # 000 and 011 belong to REDS4
    random.seed(1)
    orders = set()
    for i in range(len(ds)):
        ids = _frame_ids(ds[i]["lq"])
        assert sorted(ids) == [ids[1] - 3, ids[1], ids[1] + 3] or sorted(ids) == ids
        assert abs(ids[0] - ids[1]) == 3 and abs(ids[2] - ids[1]) == 3
        orders.add(ids[0] < ids[2])
        assert ds[i]["gt"].shape == (3, 48, 64)  # gt_size=None: whole frame
    assert orders == {True, False}  # both directions occur


def test_video_test_dataset_every_frame_is_a_centre(tmp_path):
    gt, lq, meta = make_reds(tmp_path, clips={"000": 6, "001": 7})
    for padding in ("reflection_circle", "replicate"):
        ds = VideoTestDataset(gt, lq, meta, num_frame=5, padding=padding)
        assert len(ds) == 13 and ds.clip_names == ["000", "001"]
        for i in range(len(ds)):
            item = ds[i]
            n = ds.num_frames(item["clip"])
            assert _frame_ids(item["lq"]) == generate_frame_indices(item["frame_idx"], 5, n, padding)
            assert item["key"] == f"{item['clip']}/{item['frame_idx']:08d}"
            _check_pairing(item)
    only = VideoTestDataset(gt, lq, None, num_frame=3, clips=["001"])
    assert len(only) == 7 and only[0]["clip"] == "001"
    loader = torch.utils.data.DataLoader(only, batch_size=2)
    batch = next(iter(loader))
    assert batch["lq"].shape == (2, 3, 3, 12, 16) and batch["clip"] == ["001", "001"]


def test_vimeo_neighbours(tmp_path):
    rng = np.random.default_rng(0)
    gt_root, lq_root = tmp_path / "vimeo_septuplet" / "sequences", tmp_path / "vimeo_septuplet_matlabLRx4" / "sequences"
    keys = ["00001/0001", "00001/0002"]
    for key in keys:
        for i in range(1, 8):
            gt, lq = _frame_pair(i, rng)
            write_png(gt_root / key / f"im{i}.png", gt)
            write_png(lq_root / key / f"im{i}.png", lq)
    meta = tmp_path / "meta_info_Vimeo90K_train_GT.txt"
    meta.write_text("".join(f"{k} 7 (48,64,3)\n" for k in keys))
    ds7 = Vimeo90KDataset(gt_root, lq_root, meta, num_frame=7, gt_size=None, use_hflip=False, use_rot=False)
    assert len(ds7) == 2 and _frame_ids(ds7[0]["lq"]) == [1, 2, 3, 4, 5, 6, 7] and ds7[0]["key"] == "00001/0001"
    _check_pairing(ds7[1])
    ds5 = Vimeo90KDataset(gt_root, lq_root, None, num_frame=5, gt_size=16)
    random.seed(0)
    item = ds5[0]
    assert _frame_ids(item["lq"]) == [2, 3, 4, 5, 6] and item["gt"].shape == (3, 16, 16)
    _check_pairing(item)
    with pytest.raises(EDVRError, match="num_frame"):
        Vimeo90KDataset(gt_root, lq_root, meta, num_frame=9)


def test_embedded_set_goes_through_the_same_classes(embedded_smoke_root):
    from edvr_lib.data import embedded_paths

    p = embedded_paths(embedded_smoke_root)
    train = REDSDataset(p["gt"], p["lq"], p["meta_train"], val_partition=None, num_frame=5, gt_size=64)
    random.seed(0)
    item = train[3]
    assert item["lq"].shape == (5, 3, 16, 16) and item["gt"].shape == (3, 64, 64)
    test = VideoTestDataset(p["gt"], p["lq"], p["meta_test"], num_frame=5)
    item = test[0]
    assert item["frame_idx"] == 0 and item["lq"].shape[0] == 5
    assert item["gt"].shape[1:] == tuple(4 * s for s in item["lq"].shape[2:])
    train_clips = {k.split("/")[0] for k in train.keys}
    assert not train_clips & set(test.clip_names)


# ----------------------------------------------------------------------------------- bad input
def test_missing_folders(tmp_path):
    gt, lq, meta = make_reds(tmp_path)
    with pytest.raises(EDVRError, match="GT folder not found.*nowhere"):
        REDSDataset(tmp_path / "nowhere", lq, meta)
    with pytest.raises(EDVRError, match="LQ folder not found"):
        VideoTestDataset(gt, tmp_path / "no_lq", meta)
    for f in (lq / "001").iterdir():
        f.unlink()
    (lq / "001").rmdir()
    with pytest.raises(EDVRError, match=r"clip folder not found: .*001"):
        REDSDataset(gt, lq, meta, val_partition=None)
    with pytest.raises(EDVRError, match="meta info file not found"):
        REDSDataset(gt, lq, tmp_path / "nope.txt")


def test_empty_and_short_clips(tmp_path):
    gt, lq, meta = make_reds(tmp_path, clips={"000": 8, "001": 3})
    (gt / "002").mkdir()
    (lq / "002").mkdir()
    with pytest.raises(EDVRError, match="'002' is empty"):
        VideoTestDataset(gt, lq, None, num_frame=3)
    with pytest.raises(EDVRError, match="'001' has 3 frames, fewer than num_frame=5"):
        REDSDataset(gt, lq, meta, val_partition=None, num_frame=5, gt_size=16)
    with pytest.raises(EDVRError, match="too short"):
        REDSDataset(gt, lq, meta, val_partition=None, num_frame=3, gt_size=16, interval_list=[4])
    meta.write_text("000 10 (32,64,3)\n")
    with pytest.raises(EDVRError, match="says 10 frames but 8"):
        VideoTestDataset(gt, lq, meta, num_frame=3)


def test_lr_gt_size_mismatch(tmp_path):
    gt, lq, meta = make_reds(tmp_path, clips={"000": 5})
    write_png(lq / "000" / "00000000.png", np.zeros((13, 16, 3), np.uint8))
    with pytest.raises(EDVRError, match=r"size mismatch for frame 000/00000000.*regenerate"):
        VideoTestDataset(gt, lq, meta, num_frame=3)
    gt, lq, meta = make_reds(tmp_path / "b", clips={"000": 5})
    write_png(lq / "000" / "00000003.png", np.zeros((13, 16, 3), np.uint8))  # only a later frame is wrong
    ds = VideoTestDataset(gt, lq, meta, num_frame=3)
    with pytest.raises(EDVRError, match=r"00000003\.png"):
        ds[3]


def test_corrupt_and_unusual_frames(tmp_path):
    gt, lq, meta = make_reds(tmp_path, clips={"000": 5})
    (lq / "000" / "00000002.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = VideoTestDataset(gt, lq, meta, num_frame=3)
    with pytest.raises(EDVRError, match=r"000/00000002\.png.*Fix"):
        ds[2]
    # a grayscale LQ frame is used as R=G=B; a transparent one is refused
    gt_gray = cv2.imread(str(lq / "000" / "00000001.png"), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(lq / "000" / "00000002.png"), gt_gray)
    item = ds[2]
    assert torch.equal(item["lq"][1, 0], item["lq"][1, 2]) and not torch.equal(item["lq"][0, 0], item["lq"][0, 2])
    bgra = np.dstack([cv2.imread(str(lq / "000" / "00000001.png")), np.zeros((12, 16), np.uint8)])
    cv2.imwrite(str(lq / "000" / "00000002.png"), bgra)
    with pytest.raises(EDVRError, match=r"00000002\.png has transparent"):
        ds[2]


def test_bad_arguments(tmp_path):
    gt, lq, meta = make_reds(tmp_path)
    with pytest.raises(EDVRError, match="odd"):
        REDSDataset(gt, lq, meta, num_frame=4)
    with pytest.raises(EDVRError, match="val_partition"):
        REDSDataset(gt, lq, meta, val_partition="REDS5")
    with pytest.raises(EDVRError, match="smaller than the patch"):
        REDSDataset(gt, lq, meta, val_partition=None, gt_size=256)[2]
    with pytest.raises(EDVRError, match="io_backend"):
        REDSDataset(gt, lq, meta, io_backend="s3")
    with pytest.raises(EDVRError, match="not in"):
        VideoTestDataset(gt, lq, meta, clips=["999"])


def test_lmdb_backend_matches_disk(tmp_path):
    pytest.importorskip("lmdb")
    from edvr_lib.data.lmdb_backend import create_lmdb_from_folder

    gt, lq, meta = make_reds(tmp_path)
    gt_db = create_lmdb_from_folder(gt, tmp_path / "train_sharp.lmdb", progress=False)
    lq_db = create_lmdb_from_folder(lq, tmp_path / "train_sharp_bicubic.lmdb", progress=False)
    lines = (gt_db / "meta_info.txt").read_text().splitlines()
    assert lines[0] == "000/00000000.png (48,64,3) 1" and len(lines) == 17
    kw = dict(val_partition=None, num_frame=5, gt_size=32)
    disk = REDSDataset(gt, lq, meta, **kw)
    db = REDSDataset(gt_db, lq_db, meta, io_backend="lmdb", **kw)
    assert db.keys == disk.keys
    for i in (0, 9):
        random.seed(i)
        a = disk[i]
        random.seed(i)
        b = db[i]
        assert a["key"] == b["key"] and torch.equal(a["lq"], b["lq"]) and torch.equal(a["gt"], b["gt"])
    vt = VideoTestDataset(gt_db, lq_db, None, num_frame=3, io_backend="lmdb")
    assert len(vt) == 17
    with pytest.raises(EDVRError, match="LMDB not found"):
        REDSDataset(tmp_path / "missing.lmdb", lq_db, meta, io_backend="lmdb")


def test_dataloader_with_workers(tmp_path):
    gt, lq, meta = make_reds(tmp_path)
    ds = REDSDataset(gt, lq, meta, val_partition=None, num_frame=3, gt_size=32)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, shuffle=True)
    batches = list(loader)
    assert sum(b["lq"].shape[0] for b in batches) == 17
    assert batches[0]["lq"].shape[1:] == (3, 3, 8, 8)
