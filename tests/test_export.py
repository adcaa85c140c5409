"""`edvr export` and `edvr infer --backend onnxruntime`: one small EDVR exported once, then run by onnxruntime at
sizes other than the export's, through the same padding, tiling and streaming as torch; bad input fails cleanly."""
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from edvr_lib import cli
from edvr_lib.commands import export as export_cmd
from edvr_lib.export import MAX_OPSET, MIN_OPSET, OnnxModel, export_onnx, load_onnx, relative_difference
from edvr_lib.inference import forward_padded
from edvr_lib.models import load_pretrained, random_weights_model, save_pretrained
from edvr_lib.tutorial.deployment import data_dependent_branch_attempt, opset_attempt
from edvr_lib.utils import EDVRError
from tests.test_infer import _frames

pytestmark = pytest.mark.usefixtures("one_thread")

EXAMPLE = (16, 24)  # the export's example size; every check below uses other sizes


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A 3-frame EDVR (num_feat 8, random offsets) saved as a checkpoint and exported once with `edvr export`."""
    root = tmp_path_factory.mktemp("export")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    net = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                               num_reconstruct_block=1)
    ckpt = save_pretrained(net, root / "tiny.pth")
    onnx_path = root / "tiny.onnx"
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        rc = cli.main(["export", "--weights", str(ckpt), "--output", str(onnx_path), "--height", str(EXAMPLE[0]),
                       "--width", str(EXAMPLE[1]), "--repeats", "1"])
    torch.set_num_threads(before)
    assert rc == 0, out.getvalue()
    return {"root": root, "ckpt": ckpt, "onnx": onnx_path, "log": out.getvalue(), "net": load_pretrained(ckpt)}


def test_export_prints_checks_and_speeds(exported):
    log = exported["log"]
    assert f"to {exported['onnx']}" in log and "opset 19" in log and "4*height_div4" in log
    checks = [line for line in log.splitlines() if "onnxruntime vs torch" in line]
    # the example size, another size, and real frames (Big Buck Bunny)
    assert len(checks) == 3 and any("Big Buck Bunny" in c for c in checks) and any("24x28" in c for c in checks)
    for line in checks:
        rel = float(line.rsplit("relative ", 1)[1])
        assert rel <= 1e-4, line
    assert "torch" in log.splitlines()[-1] and "onnxruntime" in log.splitlines()[-1] and " ms" in log


def test_graph_has_deformconv_dynamic_size_and_the_config(exported):
    proto = onnx.load(str(exported["onnx"]))
    onnx.checker.check_model(proto, full_check=True)
    assert {o.domain: o.version for o in proto.opset_import}[""] == 19
    ops = {n.op_type for n in proto.graph.node}
    assert "DeformConv" in ops and "GridSample" not in ops  # the export-safe DCN, one standard node per DCN
    assert sum(n.op_type == "DeformConv" for n in proto.graph.node) == 4  # L3, L2, L1 and the cascade's pack
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [1, 3, 3, "4*height_div4", "4*width_div4"]
    runner = load_onnx(exported["onnx"])
    assert runner.config == exported["net"].config and runner.num_frame == 3 and runner.size_multiple == 4
    assert runner.metadata["source"] == "tiny.pth" and runner.metadata["example_size"] == "16x24"


@pytest.mark.parametrize("size", [(20, 28), (36, 12)])
def test_onnxruntime_matches_torch_at_other_sizes(exported, size):
    runner, net = load_onnx(exported["onnx"]), exported["net"]
    x = torch.rand(1, 3, 3, *size, generator=torch.Generator().manual_seed(size[0]))
    with torch.no_grad():
        ref = net(x)
    out = runner(x)
    assert out.shape == ref.shape == (1, 3, 4 * size[0], 4 * size[1])
    diff, rel = relative_difference(out, ref)
    assert rel <= 1e-4 and diff <= 1e-4


def test_any_size_through_forward_padded_and_a_batch(exported):
    runner, net = load_onnx(exported["onnx"]), exported["net"]
    x = torch.rand(2, 3, 3, 13, 18, generator=torch.Generator().manual_seed(1))  # not multiples of 4
    with torch.no_grad():
        ref = forward_padded(net, x)
    out = forward_padded(runner, x)
    assert out.shape == (2, 3, 52, 72) and relative_difference(out, ref)[1] <= 1e-4
    with pytest.raises(EDVRError, match=r"needs height and width divisible by 4; got 13x18.*forward_padded"):
        runner(x)
    with pytest.raises(EDVRError, match=r"exported for \(b, 3, 3, h, w\) frames; got \(1, 5, 3, 16, 16\)"):
        runner(torch.rand(1, 5, 3, 16, 16))


def _read(folder: Path) -> dict[str, np.ndarray]:
    from edvr_lib.data.io import read_image

    return {p.name: read_image(p) for p in sorted(folder.glob("*.png"))}


def test_infer_onnxruntime_equals_torch_within_one_level(exported, tmp_path, capsys):
    _frames(tmp_path / "in", 5, 13, 18)
    base = ["infer", "--input", str(tmp_path / "in"), "--no-progress", "--device", "cpu"]
    assert cli.main(base + ["--output", str(tmp_path / "torch"), "--weights", str(exported["ckpt"])]) == 0
    assert cli.main(base + ["--output", str(tmp_path / "ort"), "--weights", str(exported["onnx"]),
                            "--backend", "onnxruntime", "--tile", "8", "--tile-pad", "8"]) == 0
    assert "wrote 5 frames (18x13 -> 72x52)" in capsys.readouterr().out
    ours, ref = _read(tmp_path / "ort"), _read(tmp_path / "torch")
    assert list(ours) == list(ref) and len(ours) == 5
    for name in ref:
        assert ours[name].shape == ref[name].shape == (52, 72, 3)
        assert np.abs(ours[name].astype(int) - ref[name].astype(int)).max() <= 1, name


def test_infer_api_takes_the_onnx_runner(exported, tmp_path):
    from edvr_lib.infer import infer, load_backend

    _frames(tmp_path / "in", n=3, h=8, w=12)
    runner = load_backend(exported["onnx"], "onnxruntime")
    assert isinstance(runner, OnnxModel)
    info = infer(tmp_path / "in", tmp_path / "out", runner)
    assert info["frames"] == 3 and len(list((tmp_path / "out").glob("*.png"))) == 3
    with pytest.raises(EDVRError, match=r"is an ONNX file; run it with `backend` onnxruntime"):
        load_backend(exported["onnx"], "torch")
    with pytest.raises(EDVRError, match=r"needs `weights` FILE.onnx \(got .*tiny.pth\); make one with `edvr export"):
        load_backend(exported["ckpt"], "onnxruntime")


def test_stream_parity_leaves_inference_mode_off(tmp_path, monkeypatch):
    # stream_parity stops each stream early; a stream still referenced elsewhere (here: kept by the wrapper)
    # stays suspended inside torch.inference_mode() unless stream_parity closes it
    import edvr_lib.inference
    from edvr_lib.models import bicubic_model
    from edvr_lib.tutorial.deployment import stream_parity

    streams, stream = [], edvr_lib.inference.super_resolve_stream
    monkeypatch.setattr(edvr_lib.inference, "super_resolve_stream",
                        lambda *a, **k: streams.append(stream(*a, **k)) or streams[-1])
    _frames(tmp_path / "in", n=4, h=8, w=12)
    try:
        res = stream_parity(bicubic_model(3), bicubic_model(3), tmp_path / "in", max_frames=2)
        assert len(streams) == 2 and res["max_level_diff"] == [0, 0]
        assert not torch.is_inference_mode_enabled()
    finally:
        for s in reversed(streams):
            s.close()


def test_opset_bounds_come_from_onnx():
    first = min(s.since_version for s in onnx.defs.get_all_schemas_with_history() if s.name == "DeformConv")
    assert MIN_OPSET == first == 19
    assert MIN_OPSET < MAX_OPSET <= onnx.defs.onnx_opset_version()
    assert export_cmd.opset("19") == 19
    with pytest.raises(Exception, match="opset 18 is too old.*DeformConv.*use --opset 19"):
        export_cmd.opset("18")


def test_a_failed_check_leaves_no_file(exported, tmp_path, monkeypatch):
    """The graph is written, checked and compared in a temporary file: a failed comparison leaves nothing."""
    import edvr_lib.export as ex

    class Saved:  # the fixture's graph stands in for a fresh export (fast)
        def save(self, path, external_data=False):
            Path(path).write_bytes(exported["onnx"].read_bytes())

    monkeypatch.setattr(ex, "_to_onnx", lambda *a: (Saved(), ("height_div4", "width_div4")))
    monkeypatch.setattr(ex, "relative_difference", lambda a, b: (0.5, 0.5))
    dest = tmp_path / "bad.onnx"
    with pytest.raises(EDVRError, match=r"onnxruntime differs from torch on random 16x24 frames.*5.00e-01 > 1e-04.*"
                                        r"bad.onnx was not written"):
        export_onnx(exported["net"], dest, *EXAMPLE)
    assert list(tmp_path.iterdir()) == []

    class Junk:
        def save(self, path, external_data=False):
            Path(path).write_bytes(b"not a protobuf")

    monkeypatch.setattr(ex, "_to_onnx", lambda *a: (Junk(), ("height_div4", "width_div4")))
    with pytest.raises(EDVRError, match="could not be saved and read back"):
        export_onnx(exported["net"], dest, *EXAMPLE)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_sizes_and_models_before_exporting(exported, tmp_path):
    net = exported["net"]
    with pytest.raises(EDVRError, match=r"`height` 18 is not a multiple of 4 that is at least 8.*`height` 16"):
        export_onnx(net, tmp_path / "a.onnx", 18, 24)
    with pytest.raises(EDVRError, match=r"`width` 4 is not a multiple of 4 that is at least 8"):
        export_onnx(net, tmp_path / "a.onnx", 16, 4)
    deblur = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                                  num_reconstruct_block=1, hr_in=True, with_predeblur=True)
    with pytest.raises(EDVRError, match=r"`height` 24 is not a multiple of 16 .*hr_in=True"):
        export_onnx(deblur, tmp_path / "a.onnx", 24, 32)
    with pytest.raises(EDVRError, match="export needs an EDVR network"):
        export_onnx(torch.nn.Conv2d(3, 3, 3), tmp_path / "a.onnx")
    with pytest.raises(EDVRError, match="opset 11 is too old"):
        export_onnx(net, tmp_path / "a.onnx", opset=11)
    assert list(tmp_path.iterdir()) == []


def test_runner_refuses_files_it_cannot_use(tmp_path):
    from onnx import TensorProto, helper

    with pytest.raises(EDVRError, match=r"ONNX file not found: .*nope.onnx; make one with `edvr export"):
        load_onnx(tmp_path / "nope.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"not onnx")
    with pytest.raises(EDVRError, match=r"junk.onnx is not an ONNX model onnxruntime .* can load"):
        load_onnx(tmp_path / "junk.onnx")
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)]), tmp_path / "other.onnx")
    with pytest.raises(EDVRError, match=r"other.onnx is an ONNX model but not one `edvr export` wrote"):
        load_onnx(tmp_path / "other.onnx")


def test_the_two_classic_blockers():
    """Opset 18 has no DeformConv (onnxruntime refuses the graph); a Python `if` on a tensor's value stops export."""
    from edvr_lib.archs.blocks import DCNv2Pack

    torch.manual_seed(0)
    pack = DCNv2Pack(8, 8, deformable_groups=2).eval()
    example = (torch.rand(1, 8, 8, 8), torch.rand(1, 8, 8, 8))
    ok = opset_attempt(pack, example, 19)
    assert ok["stage"] == "ok" and "DeformConv" in ok["ops"] and ok["error"] is None
    old = opset_attempt(pack, example, 18)
    assert old["stage"] == "onnxruntime" and "DeformConv" in old["error"] and "18" in old["error"]
    branch = data_dependent_branch_attempt(pack, example)
    assert branch["stage"] == "export" and "TorchExportError" in branch["error"]
    assert "GuardOnDataDependentSymNode" in branch["error"]  # the cause the exporter wraps


def _refused(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edvr {argv[0]}: error: ") and "Traceback" not in err
    return err


def test_cli_refuses_what_only_the_checkpoint_tells(exported, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    err = _refused(["export", "--weights", str(exported["ckpt"]), "--output", str(out), "--frames", "5"], capsys)
    assert "--frames 5 but" in err and "num_frame=3" in err and "pass --frames 3" in err
    deblur = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                                  num_reconstruct_block=1, hr_in=True, with_predeblur=True)
    ckpt = save_pretrained(deblur, tmp_path / "deblur.pth")
    err = _refused(["export", "--weights", str(ckpt), "--output", str(out), "--height", "24"], capsys)
    assert "--height 24 is not a multiple of 16" in err and "--height 32" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deblur.pth"]


def test_cli_refuses_an_unwritable_folder(exported, tmp_path, capsys):
    import os

    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    err = _refused(["export", "--weights", str(exported["ckpt"]), "--output", str(locked / "m.onnx")], capsys)
    assert f"{locked / 'm.onnx'} cannot be written: {locked} is not writable" in err
    assert list(locked.iterdir()) == []


def test_infer_reports_the_size_a_deblurring_model_writes(tmp_path, capsys):
    deblur = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                                  num_reconstruct_block=1, hr_in=True, with_predeblur=True)
    ckpt = save_pretrained(deblur, tmp_path / "deblur.pth")
    _frames(tmp_path / "in", n=3, h=20, w=36)
    assert cli.main(["infer", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--weights",
                     str(ckpt), "--no-progress", "--device", "cpu"]) == 0
    assert "wrote 3 frames (36x20 -> 36x20)" in capsys.readouterr().out
    assert all(img.shape == (20, 36, 3) for img in _read(tmp_path / "out").values())
