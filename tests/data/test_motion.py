"""MotionWindowDataset: shapes, true flow (checked by warping), no integer shifts, determinism, option route."""
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edvr_lib.data.motion_dataset import MotionWindowDataset, _off_lattice, draw_motion
from edvr_lib.utils import EDVRError

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def paths(embedded_smoke_root):
    from edvr_lib.data import embedded_paths

    return embedded_paths(embedded_smoke_root)


def _sample(ds, seed):
    random.seed(seed)
    np.random.seed(seed)
    return ds[0]


def _backward_warp(img, flow):
    """img (3, h, w) sampled at p + flow (flow (2, h, w) dy, dx), bilinear."""
    _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    gx = (xs + flow[1]) / (w - 1) * 2 - 1
    gy = (ys + flow[0]) / (h - 1) * 2 - 1
    grid = torch.stack([gx, gy], -1)[None]
    return F.grid_sample(img[None], grid, mode="bilinear", align_corners=True)[0]


def test_shapes_and_centre_flow(paths):
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=5, gt_size=64, occlusion_prob=0.5, bbb_mix=0.3)
    for seed in range(6):
        s = _sample(ds, seed)
        assert s["lq"].shape == (5, 3, 16, 16) and s["gt"].shape == (3, 64, 64)
        assert s["flow"].shape == (5, 2, 16, 16) and s["flow_valid"].shape == (5, 1, 16, 16)
        assert s["lq"].dtype == s["flow"].dtype == s["flow_valid"].dtype == torch.float32
        assert isinstance(s["key"], str)
        assert torch.all(s["flow"][2] == 0)
        if s["key"].endswith("/real"):
            assert torch.all(s["flow_valid"] == 0)


def test_translation_flow_aligns_neighbours(paths):
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=5, gt_size=64, static_prob=0.0,
                             affine_prob=0.0, occlusion_prob=0.0, max_shift=2.0)
    for seed in range(3):
        s = _sample(ds, seed)
        assert "translate" in s["key"]
        c = s["lq"][2]
        for i in (0, 1, 3, 4):
            v = s["flow_valid"][i, 0] > 0
            assert v.sum() > 20
            # the centre content at p is at p + flow in frame i: warping frame i by the flow gives the centre
            warped = _backward_warp(s["lq"][i], s["flow"][i])
            err = (warped - c).abs().mean(0)[v].mean()
            plain = (s["lq"][i] - c).abs().mean(0)[v].mean()
            assert err < 0.5 * plain, (seed, i, float(err), float(plain))


def test_shifts_never_integer():
    random.seed(1)
    for _ in range(500):
        m = draw_motion(7, max_shift=4.0, static_prob=0.0)
        for s in range(1, 4):
            assert _off_lattice(s * m["shift_lr"])
            assert np.linalg.norm(m["shift_lr"]) <= 4.0


def test_static_windows_have_zero_flow(paths):
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=5, gt_size=64, static_prob=1.0,
                             occlusion_prob=0.0)
    s = _sample(ds, 3)
    assert "static" in s["key"]
    assert torch.all(s["flow"] == 0) and torch.all(s["flow_valid"] == 1)
    assert torch.allclose(s["lq"][0], s["lq"][2])


def test_same_seed_same_sample(paths):
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=3, gt_size=64, occlusion_prob=0.5)
    a, b, c = _sample(ds, 7), _sample(ds, 7), _sample(ds, 8)
    assert a["key"] == b["key"]
    for k in ("lq", "gt", "flow", "flow_valid"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["lq"], c["lq"])


def test_no_held_out_clips(paths):
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], num_frame=5, gt_size=64, bbb_mix=0.5)
    test_clips = {line.split()[0] for line in paths["meta_test"].read_text().splitlines() if line.strip()}
    assert test_clips and not test_clips & {c for c, _ in ds.clips}


def test_option_file_route(paths, tmp_path):
    import yaml

    from edvr_lib.train.data import build_train_dataset
    from edvr_lib.train.options import OptionsError, load_options

    raw = yaml.safe_load(open("configs/train_EDVR_tiny_embedded.yml"))
    raw["datasets"]["train"] = {"name": "motion", "type": "MotionWindowDataset", "dataroot_gt": str(paths["gt"]),
                                "meta_info_file": str(paths["meta_train"]), "num_frame": 5, "gt_size": 64,
                                "occlusion_prob": 0.5, "bbb_mix": 0.25, "length": 40, "batch_size_per_gpu": 2}
    raw["datasets"]["val"] = None
    f = tmp_path / "motion.yml"
    f.write_text(yaml.safe_dump(raw))
    opt, _ = load_options(f)
    ds = build_train_dataset(opt)
    assert isinstance(ds, MotionWindowDataset) and len(ds) == 40 and ds.bbb_mix == 0.25
    batch = torch.utils.data.default_collate([_sample(ds, 0), _sample(ds, 1)])
    assert batch["flow"].shape == (2, 5, 2, 16, 16) and batch["flow_valid"].shape == (2, 5, 1, 16, 16)
    raw["datasets"]["train"]["dataroot_lq"] = str(paths["lq"])  # an option of the REDS-style sets only
    f.write_text(yaml.safe_dump(raw))
    with pytest.raises(OptionsError, match="dataroot_lq"):
        load_options(f)


def test_spoilt_neighbour_windows(embedded_smoke_root):
    from edvr_lib.data import embedded_paths

    paths = embedded_paths(embedded_smoke_root)
    ds = MotionWindowDataset(paths["gt"], paths["meta_train"], gt_size=32, spoil_prob=1.0, static_prob=1.0,
                             occlusion_prob=0.0)
    for seed in range(4):
        random.seed(seed)
        np.random.seed(seed)
        s = ds[0]
        idx = s["spoilt_idx"]
        assert idx in (0, 1, 3, 4)  # never the centre frame
        others = [i for i in range(5) if i != idx]
        # a static window: every frame but the spoilt one equals the centre frame
        assert all(torch.allclose(s["lq"][i], s["lq"][2], atol=1e-6) for i in others)
        assert (s["lq"][idx] - s["lq"][2]).abs().mean() > 0.02
        assert s["flow_valid"][idx].sum() == 0 and s["flow_valid"][others].min() == 1
    none = MotionWindowDataset(paths["gt"], paths["meta_train"], gt_size=32)[0]
    assert none["spoilt_idx"] == -1
    with pytest.raises(EDVRError, match="spoil_kinds"):
        MotionWindowDataset(paths["gt"], paths["meta_train"], gt_size=32, spoil_kinds=("rain",))
