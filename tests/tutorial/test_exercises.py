"""The exercises' reference solutions are right, and the checks accept right answers and refuse wrong ones."""
import re

import nbformat
import numpy as np
import pytest
import torch
from torchvision.ops import deform_conv2d

from edvr_lib.tutorial import exercises, solutions
from edvr_lib.utils.notebooks import list_notebooks

pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- the reference solutions

def test_conv_gflop_equals_the_flop_counter():
    from edvr_lib.introspect import count_flops

    conv = torch.nn.Sequential(torch.nn.Conv2d(8, 16, 3, padding=1))
    counted = count_flops(conv, torch.zeros(1, 8, 12, 20))["0"]
    assert solutions.conv_gflop(8, 16, 3, 12, 20) == pytest.approx(counted / 1e9)


@pytest.mark.parametrize("num_frame, num_total", [(5, 30), (7, 7), (3, 4)])
def test_reflection_circle_indices_equal_the_library(num_frame, num_total):
    from edvr_lib.data.transforms import generate_frame_indices

    for center in range(num_total):
        assert solutions.reflection_circle_indices(center, num_frame, num_total) == \
            generate_frame_indices(center, num_frame, num_total, "reflection_circle")


@pytest.mark.parametrize("groups, scale", [(1, 0.5), (2, 3.0)])  # scale 3: many samples fall outside the frame
def test_dcn_grid_sample_equals_torchvision(groups, scale):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 8, 9, 11, generator=g)
    offset = scale * torch.randn(2, 2 * groups * 9, 9, 11, generator=g)
    mask = torch.rand(2, groups * 9, 9, 11, generator=g)
    weight, bias = torch.randn(6, 8, 3, 3, generator=g), torch.randn(6, generator=g)
    expected = deform_conv2d(x, offset, weight, bias, padding=1, mask=mask)
    assert torch.allclose(solutions.dcn_grid_sample(x, offset, mask, weight, bias), expected, atol=1e-4)


@pytest.mark.parametrize("level", ["l2", "l1"])
def test_pcd_level_equals_the_recorded_level(level):
    from edvr_lib.archs import PCDAlignment
    from edvr_lib.tutorial.pcd_demo import record_pcd_level

    torch.manual_seed(0)
    pcd = PCDAlignment(num_feat=8, deformable_groups=2).eval()
    with torch.no_grad():
        for pack in (*pcd.dcn_pack.values(), pcd.cas_dcnpack):  # non-zero offsets: the DCNs really sample
            pack.conv_offset.weight.normal_(0, 0.05)
        nbr = [torch.randn(2, 8, 16 // 2**i, 16 // 2**i) for i in range(3)]
        ref = [torch.randn(2, 8, 16 // 2**i, 16 // 2**i) for i in range(3)]
        rec = record_pcd_level(pcd, nbr, ref, level)
        mine = solutions.pcd_level(pcd, level, rec["nbr"], rec["ref"], rec["up_offset"], rec["up_feat"])
    assert rec["up_offset"].shape == rec["up_feat"].shape == rec["nbr"].shape
    assert torch.allclose(mine, rec["feat"], atol=1e-5)
    if level == "l1":  # the aligned L1 feature is what the cascade refines: the module's output differs
        assert not torch.allclose(pcd(nbr, ref), rec["feat"], atol=1e-3)


def test_temporal_attention_equals_the_recorded_map():
    from edvr_lib.archs import TSAFusion
    from edvr_lib.tutorial.tsa_demo import trace_fusion

    torch.manual_seed(0)
    fusion = TSAFusion(num_feat=16, num_frame=5).eval()
    aligned = torch.randn(2, 5, 16, 12, 16)  # unit scale: a map far from flat
    with torch.no_grad():
        recorded = trace_fusion(fusion, aligned).temporal_attn
        mine = solutions.temporal_attention(aligned, fusion, 2)
    assert recorded.std() > 0.1
    assert torch.allclose(mine, recorded, atol=1e-5)


def test_cosine_restart_lr_equals_the_scheduler():
    from edvr_lib.train.schedulers import CosineAnnealingRestartLR

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=4e-4)
    sched = CosineAnnealingRestartLR(opt, periods=[50, 100, 150], restart_weights=[1, 0.5, 0.5], eta_min=1e-7)
    for epoch in (0, 1, 49, 50, 51, 120, 150, 151, 299, 300, 310):
        assert solutions.cosine_restart_lr(epoch, 4e-4, [50, 100, 150], [1, 0.5, 0.5], 1e-7) == \
            pytest.approx(sched.lr_at(epoch, 4e-4), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("crop", [0, 4])
def test_psnr_uint8_equals_the_library(crop):
    from edvr_lib.metrics import calculate_psnr

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 256, (20, 24, 3)), rng.integers(0, 256, (20, 24, 3))
    assert solutions.psnr_uint8(a, b, crop) == pytest.approx(calculate_psnr(a, b, crop_border=crop), abs=1e-9)
    assert solutions.psnr_uint8(a, a) == float("inf")


def test_reflect_pad_to_multiple_equals_the_library():
    from edvr_lib.inference import pad_to_multiple

    x = torch.rand(1, 5, 3, 30, 42)
    assert torch.equal(solutions.reflect_pad_to_multiple(x, 4), pad_to_multiple(x, 4)[0])
    y = torch.rand(1, 5, 3, 32, 40)
    assert solutions.reflect_pad_to_multiple(y, 4) is y


# ----------------------------------------------------------------------------- the checks

@pytest.fixture(params=["0", "1"], ids=["full", "smoke"])
def mode(request, monkeypatch):
    monkeypatch.setenv("EDVR_SMOKE", request.param)
    return request.param


def test_check_unanswered_uses_the_reference_solution(mode, capsys):
    exercises.check("00.gflop_ratio", ..., 4.0)
    exercises.check("00.gflop_ratio", None, 4.0)
    out = capsys.readouterr().out
    assert out.count("no answer yet") == 2 and "4.0" not in out  # nothing revealed
    with pytest.raises(AssertionError, match="reference solution disagrees"):
        exercises.check("00.gflop_ratio", ..., 3.0)  # a wrong computed value is a bug, and it is caught


def test_check_refuses_a_wrong_answer_in_every_mode_without_revealing_it(mode):
    with pytest.raises(AssertionError) as err:
        exercises.check("02.pyramid_px", [6, 12], [1.5, 3.0], hint="an L3 pixel is 4 L1 pixels wide")
    assert "1.5" not in str(err.value) and "an L3 pixel" in str(err.value)
    with pytest.raises(AssertionError):
        exercises.check("03.worst_fault", "blur", "noise")
    with pytest.raises(AssertionError):
        exercises.check("05.y_higher", False, True)
    with pytest.raises(AssertionError):  # a relative tolerance: 0 is not 1e-7
        exercises.check("04.lr_50001", 0.0, 1e-7, tol=1e-3)


def test_check_accepts_a_right_answer_and_reveals_it(mode, capsys):
    exercises.check("02.pyramid_px", [1.5, 3], [1.5, 3.0000001])
    exercises.check("04.lr_50002", 4e-4, 4.0e-4 * (1 + 1e-9))
    assert capsys.readouterr().out.count(": right, ") == 2


def test_check_function(mode, capsys):
    args = (8, 16, 3, 12, 20)
    expected = 2 * 8 * 16 * 9 * 12 * 20 / 1e9

    def todo(*_):
        raise NotImplementedError

    exercises.check_function("conv_gflop", todo, args, expected)
    assert "not implemented yet" in capsys.readouterr().out
    exercises.check_function("conv_gflop", lambda ci, co, k, h, w: 2 * ci * co * k * k * h * w / 1e9, args, expected)
    assert ": right (max |difference|" in capsys.readouterr().out
    with pytest.raises(AssertionError, match="differs from the expected one"):
        exercises.check_function("conv_gflop", lambda ci, co, k, h, w: ci * co * k * k * h * w / 1e9, args, expected)
    with pytest.raises(AssertionError, match="output shape"):  # a wrong shape is a wrong output
        x = torch.rand(1, 1, 1, 6, 6)
        exercises.check_function("reflect_pad_to_multiple", lambda x, m: x, (x, 4),
                                 solutions.reflect_pad_to_multiple(x, 4))


def test_every_notebook_exercise_has_a_reference_solution():
    names = set()
    for path in list_notebooks():
        text = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        names |= set(re.findall(r"exercises\.check\(\s*\"([^\"]+)\"", text))
        for fn in re.findall(r"exercises\.check_function\(\s*\"([^\"]+)\"", text):
            assert callable(getattr(solutions, fn, None)), fn
    assert names and names <= set(solutions.ANSWERS), names - set(solutions.ANSWERS)
