"""The ``edvr`` commands: help for each, and every numeric and path option checked before any work starts.

A refused option must give one line ``edvr <cmd>: error: ...`` naming the option and the value, exit code 2,
no traceback, and leave nothing behind (no output folder, no temp file).
"""
import argparse
import os
import sys
import types

import pytest
import torch

from edvr_lib import cli
from edvr_lib.commands import _options

T = "{tmp}"  # replaced by the test's tmp_path
NO_CUDA = not torch.cuda.is_available()

# (command line, fragments the error must contain: the option, the value, the reason / fix)
CASES = {
    # ---- infer
    "infer --input missing": (["infer", "--input", f"{T}/nope", "--output", f"{T}/out"],
                              ["argument --input:", f"{T}/nope does not exist"]),
    "infer --output is a file": (["infer", "--input", f"{T}/frames", "--output", f"{T}/file.txt"],
                                 ["argument --output:", f"{T}/file.txt is a file", ".mp4"]),
    "infer --output under a file": (["infer", "--input", f"{T}/frames", "--output", f"{T}/file.txt/out"],
                                    ["argument --output:", f"{T}/file.txt/out cannot be created"]),
    "infer --output video is a folder": (["infer", "--input", f"{T}/frames", "--output", f"{T}/dir.mp4"],
                                         ["argument --output:", f"{T}/dir.mp4 is a folder"]),
    "infer --output = --input": (["infer", "--input", f"{T}/frames", "--output", f"{T}/frames"],
                                 ["--output", f"{T}/frames is the --input folder", "another --output"]),
    "infer --weights missing": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--weights", f"{T}/w.pth"],
                                ["argument --weights:", f"{T}/w.pth does not exist"]),
    "infer --weights folder": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--weights", f"{T}/frames"],
                               ["argument --weights:", f"{T}/frames is a folder"]),
    "infer --weights + bicubic": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--model", "bicubic",
                                   "--weights", f"{T}/file.txt"], ["--weights", "--model bicubic", "drop"]),
    "infer --tile 2": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--tile", "2"],
                       ["argument --tile:", "2 is too small", ">= 4"]),
    "infer --tile 0": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--tile", "0"],
                       ["argument --tile:", "0 is too small"]),
    "infer --tile x": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--tile", "12.5"],
                       ["argument --tile:", "'12.5' is not a whole number"]),
    "infer --tile-pad -1": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--tile-pad", "-1"],
                            ["argument --tile-pad:", "-1 is too small", ">= 0"]),
    "infer --model": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--model", "edvr-xl"],
                      ["argument --model:", "'edvr-xl'", "choose from"]),
    "infer --precision": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--precision", "fp64"],
                          ["argument --precision:", "'fp64'", "choose from"]),
    "infer --precision fp16 on cpu": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--device", "cpu",
                                       "--precision", "fp16"], ["--precision fp16", "--device cpu", "fp32"]),
    "infer --device": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--device", "gpu"],
                       ["argument --device:", "'gpu'", "auto, cpu, cuda or cuda:N"]),
    "infer --device cuda:99": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--device", "cuda:99"],
                               ["argument --device:", "'cuda:99'"]),
    "infer required": (["infer", "--output", f"{T}/out"], ["required", "--input"]),
    "infer --backend": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--backend", "tensorrt"],
                        ["argument --backend:", "'tensorrt'", "choose from"]),
    "infer onnxruntime without --weights": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out",
                                             "--backend", "onnxruntime"],
                                            ["--backend onnxruntime needs --weights FILE.onnx", "edvr export"]),
    "infer onnxruntime + .pth": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--backend", "onnxruntime",
                                  "--weights", f"{T}/foreign.pth"],
                                 ["needs --weights FILE.onnx", f"got {T}/foreign.pth", "edvr export --weights"]),
    "infer torch + .onnx": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--weights", f"{T}/junk.onnx"],
                            [f"--weights {T}/junk.onnx is an ONNX file", "--backend onnxruntime"]),
    "infer onnxruntime + bicubic": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--backend",
                                     "onnxruntime", "--model", "bicubic"],
                                    ["--model bicubic with --backend onnxruntime", "--backend torch"]),
    "infer onnxruntime --precision fp16": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--backend",
                                            "onnxruntime", "--weights", f"{T}/junk.onnx", "--precision", "fp16"],
                                           ["--precision fp16 with --backend onnxruntime", "float32", "fp32"]),
    "infer onnxruntime + junk .onnx": (["infer", "--input", f"{T}/frames", "--output", f"{T}/out", "--backend",
                                        "onnxruntime", "--weights", f"{T}/junk.onnx"],
                                       [f"{T}/junk.onnx is not an ONNX model onnxruntime", "edvr export"]),
    # ---- export
    "export --weights missing": (["export", "--weights", f"{T}/w.pth", "--output", f"{T}/m.onnx"],
                                 ["argument --weights:", f"{T}/w.pth does not exist"]),
    "export --weights folder": (["export", "--weights", f"{T}/frames", "--output", f"{T}/m.onnx"],
                                ["argument --weights:", f"{T}/frames is a folder"]),
    "export --weights not a checkpoint": (["export", "--weights", f"{T}/file.txt", "--output", f"{T}/m.onnx"],
                                          [f"{T}/file.txt is not a readable PyTorch", "edvr inspect-checkpoint"]),
    "export --weights foreign checkpoint": (["export", "--weights", f"{T}/foreign.pth", "--output", f"{T}/m.onnx"],
                                            [f"{T}/foreign.pth", "EDVR"]),
    "export --output not .onnx": (["export", "--weights", f"{T}/foreign.pth", "--output", f"{T}/m.pth"],
                                  ["argument --output:", f"{T}/m.pth does not end in .onnx"]),
    "export --output under a file": (["export", "--weights", f"{T}/foreign.pth", "--output", f"{T}/file.txt/m.onnx"],
                                     ["argument --output:", f"{T}/file.txt/m.onnx cannot be created"]),
    "export --output is a folder": (["export", "--weights", f"{T}/foreign.pth", "--output", f"{T}/dir.onnx"],
                                    ["argument --output:", f"{T}/dir.onnx is a folder"]),
    "export --opset 11": (["export", "--output", f"{T}/m.onnx", "--opset", "11"],
                          ["argument --opset:", "opset 11 is too old", "DeformConv", "from opset 19", "--opset 19"]),
    "export --opset 99": (["export", "--output", f"{T}/m.onnx", "--opset", "99"],
                          ["argument --opset:", "opset 99 is newer than the opsets checked here", "--opset 19"]),
    "export --opset x": (["export", "--output", f"{T}/m.onnx", "--opset", "latest"],
                         ["argument --opset:", "'latest' is not a whole number"]),
    "export --height 30": (["export", "--output", f"{T}/m.onnx", "--height", "30"],
                           ["argument --height:", "30 is not a multiple of 4", "use 28 or 32"]),
    "export --width 4": (["export", "--output", f"{T}/m.onnx", "--width", "4"],
                         ["argument --width:", "4 is too small", ">= 8"]),
    "export --frames 0": (["export", "--output", f"{T}/m.onnx", "--frames", "0"],
                          ["argument --frames:", "0 is too small"]),
    "export --repeats 0": (["export", "--output", f"{T}/m.onnx", "--repeats", "0"],
                           ["argument --repeats:", "0 is too small"]),
    "export required": (["export", "--weights", f"{T}/foreign.pth"], ["required", "--output"]),
    # ---- test
    "test --config missing": (["test", "--config", f"{T}/nope.yaml"],
                              ["argument --config:", f"{T}/nope.yaml does not exist"]),
    "test --root missing": (["test", "--root", f"{T}/nope"], ["argument --root:", f"{T}/nope does not exist"]),
    "test --root file": (["test", "--root", f"{T}/file.txt"], ["argument --root:", f"{T}/file.txt is a file"]),
    "test --meta missing": (["test", "--meta", f"{T}/meta.txt"], ["argument --meta:", f"{T}/meta.txt does not exist"]),
    "test --weights missing": (["test", "--weights", f"{T}/w.pth"],
                               ["argument --weights:", f"{T}/w.pth does not exist"]),
    "test --num-frame even": (["test", "--num-frame", "4"], ["argument --num-frame:", "4 is not an odd number"]),
    "test --num-frame 0": (["test", "--num-frame", "0"], ["argument --num-frame:", "0 is not an odd number >= 1"]),
    "test --num-frame -3": (["test", "--num-frame", "-3"], ["argument --num-frame:", "-3 is not an odd number"]),
    "test --max-frames 0": (["test", "--max-frames", "0"], ["argument --max-frames:", "0 is too small", ">= 1"]),
    "test --max-frames x": (["test", "--max-frames", "ten"], ["argument --max-frames:", "'ten' is not a whole number"]),
    "test --output file": (["test", "--output", f"{T}/file.txt"], ["argument --output:", f"{T}/file.txt is a file"]),
    "test --out (old name) file": (["test", "--out", f"{T}/file.txt"], ["argument --out:", f"{T}/file.txt is a file"]),
    "test --dataset": (["test", "--dataset", "REDS5"], ["argument --dataset:", "'REDS5'", "choose from"]),
    "test --y-channel": (["test", "--y-channel", "maybe"], ["argument --y-channel:", "'maybe'", "choose from"]),
    "test --device": (["test", "--device", "cpu:0"], ["argument --device:", "'cpu:0'"]),
    "test --random-weights + --weights": (["test", "--random-weights", "--weights", f"{T}/file.txt"],
                                          ["--random-weights with --weights", "drop"]),
    "test --random-weights + bicubic": (["test", "--random-weights", "--model", "bicubic"],
                                        ["--random-weights with --model bicubic"]),
    "test device in config": (["test", "--config", f"{T}/test_gpu.yaml"],
                              ["test_gpu.yaml: device:", "unknown device 'gpu'"]),
    "test num_frame in config": (["test", "--config", f"{T}/test_even.yaml"],
                                 ["test_even.yaml: num_frame:", "4 is not an odd number"]),
    # ---- docs
    "docs --output file": (["docs", "--output", f"{T}/file.txt"], ["argument --output:", f"{T}/file.txt is a file"]),
    "docs --out (old name) under a file": (["docs", "--out", f"{T}/file.txt/docs"],
                                           ["argument --out:", f"{T}/file.txt/docs cannot be created"]),
    "docs --weights missing": (["docs", "--output", f"{T}/docs", "--weights", f"{T}/w.pth"],
                               ["argument --weights:", f"{T}/w.pth does not exist"]),
    "docs --data-root under a file": (["docs", "--output", f"{T}/docs", "--data-root", f"{T}/file.txt/data"],
                                      ["argument --data-root:", "cannot be created"]),
    "docs --readme missing": (["docs", "--output", f"{T}/docs", "--readme", f"{T}/README.md"],
                              ["argument --readme:", f"{T}/README.md does not exist"]),
    "docs --device": (["docs", "--output", f"{T}/docs", "--device", "tpu"], ["argument --device:", "'tpu'"]),
    # ---- notebooks
    "notebooks path missing": (["notebooks", "check", f"{T}/nope.ipynb"],
                               ["argument notebooks:", f"{T}/nope.ipynb does not exist"]),
    "notebooks path not a notebook": (["notebooks", "strip", f"{T}/file.txt"],
                                      ["argument notebooks:", f"{T}/file.txt is not a notebook", ".ipynb"]),
    "notebooks --output file": (["notebooks", "run", "--output", f"{T}/file.txt"],
                                ["argument --output:", f"{T}/file.txt is a file"]),
    "notebooks action": (["notebooks", "execute"], ["argument action:", "'execute'", "choose from"]),
    # ---- prepare-embedded / prepare-reds / inspect-checkpoint / env
    "prepare-embedded --root file": (["prepare-embedded", "--root", f"{T}/file.txt"],
                                     ["argument --root:", f"{T}/file.txt is a file"]),
    "prepare-embedded --root under a file": (["prepare-embedded", "--root", f"{T}/file.txt/emb"],
                                             ["argument --root:", "cannot be created"]),
    "prepare-reds --root missing": (["prepare-reds", "--root", f"{T}/nope"],
                                    ["argument --root:", f"{T}/nope does not exist"]),
    "prepare-reds --root file": (["prepare-reds", "--root", f"{T}/file.txt"], ["argument --root:", "is a file"]),
    "prepare-reds --jobs 0": (["prepare-reds", "--root", f"{T}/frames", "--jobs", "0"],
                              ["argument --jobs:", "0 is too small", ">= 1"]),
    "prepare-reds --jobs x": (["prepare-reds", "--root", f"{T}/frames", "--jobs", "all"],
                              ["argument --jobs:", "'all' is not a whole number"]),
    "prepare-reds required": (["prepare-reds"], ["required", "--root"]),
    "inspect-checkpoint missing": (["inspect-checkpoint", f"{T}/w.pth"],
                                   ["argument file:", f"{T}/w.pth does not exist"]),
    "inspect-checkpoint folder": (["inspect-checkpoint", f"{T}/frames"], ["argument file:", "is a folder"]),
    "env unknown option": (["env", "--device", "cpu"], ["unrecognized arguments: --device cpu"]),
    # ---- train
    "train --config missing": (["train", "--config", f"{T}/nope.yml", "--output", f"{T}/run"],
                               ["argument --config:", f"{T}/nope.yml does not exist"]),
    "train --output file": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/file.txt"],
                            ["argument --output:", f"{T}/file.txt is a file"]),
    "train --set without =": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run", "--set", "train.lr"],
                              ["argument --set:", "'train.lr' is not KEY=VALUE", "train.optim_g.lr=2e-4"]),
    "train --set bad key": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run", "--set", "a..b=1"],
                            ["argument --set:", "'a..b=1' is not KEY=VALUE"]),
    "train --set unknown key": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run", "--set", "train.lr=1"],
                                ["error: --set train.lr=1: unknown option train.lr", "nearest valid key"]),
    "train missing option": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run"],
                             ["train.yml: missing option datasets.train", "or set it with --set datasets.train=VALUE"]),
    "train --device": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run", "--device", "cuda:x"],
                       ["argument --device:", "'cuda:x'"]),
    "train --resume without a run": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/run", "--resume"],
                                     ["--resume but --output", f"{T}/run holds no previous run", "drop --resume"]),
    "train over a previous run": (["train", "--config", f"{T}/train.yml", "--output", f"{T}/old_run"],
                                  ["--output", f"{T}/old_run already holds a run",
                                   "pass --resume or another --output"]),
    "train required": (["train", "--config", f"{T}/train.yml"], ["required", "--output"]),
}


@pytest.fixture
def workspace(tmp_path):
    """What the table refers to: a folder of frames, a plain file, a previous run, two configs, a checkpoint that is
    not EDVR and a file that is not ONNX."""
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "00000000.png").write_bytes(b"x")
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "dir.onnx").mkdir()
    (tmp_path / "junk.onnx").write_bytes(b"not an onnx graph")
    torch.save({"params": {"conv.weight": torch.zeros(4, 3, 3, 3)}}, tmp_path / "foreign.pth")  # not EDVR
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "old_run").mkdir()
    (tmp_path / "old_run" / "options.yml").write_text("name: old\n")
    (tmp_path / "train.yml").write_text("name: t\n")
    (tmp_path / "test_gpu.yaml").write_text("name: t\nmodel: bicubic\ndevice: gpu\n")
    (tmp_path / "test_even.yaml").write_text("name: t\nmodel: bicubic\nnum_frame: 4\n")
    return tmp_path


def _tree(root):
    return sorted((str(p.relative_to(root)), p.is_dir()) for p in root.rglob("*"))


@pytest.mark.parametrize("name", list(CASES))
def test_bad_option_is_one_line_exit_2_nothing_written(name, workspace, capsys, monkeypatch):
    argv, fragments = CASES[name]
    monkeypatch.setenv("EDVR_DATA_DIR", str(workspace / "data"))  # nothing may build the embedded set either
    before = _tree(workspace)
    rc = cli.main([a.replace(T, str(workspace)) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = [line for line in err.splitlines() if "warning: --out is deprecated" not in line]
    assert len(lines) == 1 and lines[0].startswith(f"edvr {argv[0]}: error: "), err
    assert "Traceback" not in err and "usage:" not in err
    for fragment in fragments:
        assert fragment.replace(T, str(workspace)) in err
    assert _tree(workspace) == before


@pytest.mark.skipif(NO_CUDA, reason="the no-CUDA message is in the table")
def test_cuda_is_refused_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(argparse.ArgumentTypeError, match="'cuda' but CUDA is not available.*--device cpu"):
        _options.check_device("cuda")


@pytest.mark.skipif(not NO_CUDA, reason="needs a machine without CUDA")
def test_cuda_is_refused_here(capsys, tmp_path):
    assert cli.main(["docs", "--output", str(tmp_path / "d"), "--device", "cuda"]) == 2
    assert "argument --device: 'cuda' but CUDA is not available" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_one_device_rule(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert _options.resolve_device("auto") == "cpu" and _options.resolve_device("CPU") == "cpu"
    assert _options.check_device("auto") == "auto"  # edvr train leaves auto to the trainer (num_gpu: 0 -> cpu)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert _options.resolve_device("auto") == "cuda"
    assert _options.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(argparse.ArgumentTypeError, match=r"'cuda:2' but this machine has 2 CUDA device\(s\)"):
        _options.resolve_device("cuda:2")
    for bad in ("gpu", "cuda:", "cpu:1", "cuda:-1", "mps", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="use auto, cpu, cuda or cuda:N"):
            _options.check_device(bad)


def test_unwritable_output_parent(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root can write anywhere")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    assert cli.main(["test", "--output", str(locked / "o")]) == 2
    assert f"argument --output: {locked / 'o'} cannot be written: {locked} is not writable" in capsys.readouterr().err


def test_old_out_name_still_works_and_says_so(capsys, tmp_path):
    from edvr_lib.commands import test as test_cmd

    parser = cli.Parser(prog="edvr test")
    test_cmd.add_arguments(parser)
    assert parser.parse_args(["--out", str(tmp_path / "o")]).output == tmp_path / "o"
    assert "edvr test: warning: --out is deprecated; use --output" in capsys.readouterr().err
    assert parser.parse_args([]).output is None
    assert "--out " not in parser.format_help()  # hidden


def test_help_lists_every_command(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert f"    {name}" in out
    assert cli.main([]) == 0
    assert cli.main(["no-such-command"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'no-such-command'" in err


@pytest.mark.parametrize("name", list(cli.COMMANDS))
def test_each_command_has_help(name, capsys):
    assert cli.main([name, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: edvr {name}") and "".join(cli.COMMANDS[name][1].split()) in "".join(out.split())
    if name in ("test", "infer", "docs", "train"):
        assert "--device" in out and "auto" in out
    if name in ("test", "infer", "docs", "train", "notebooks"):
        assert "--output" in out


def test_train_hands_checked_options_to_the_trainer(workspace, monkeypatch, capsys):
    calls = []
    fake = types.ModuleType("edvr_lib.train.trainer")
    fake.run_train = lambda *a, **kw: calls.append((a, kw)) or 0
    monkeypatch.setitem(sys.modules, "edvr_lib.train.trainer", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg, out = workspace / "train.yml", workspace / "run"
    assert cli.main(["train", "--config", str(cfg), "--output", str(out), "--set", "train.total_iter=10",
                     "--set", "train:optim_g:lr=1e-4"]) == 0
    assert calls[-1] == ((cfg, out), {"overrides": ["train.total_iter=10", "train:optim_g:lr=1e-4"],
                                      "resume": False, "device": "auto"})
    old = workspace / "old_run"
    assert cli.main(["train", "--config", str(cfg), "--output", str(old), "--resume", "--device", "cpu"]) == 0
    assert calls[-1] == ((cfg, old), {"overrides": [], "resume": True, "device": "cpu"})
    fake.run_train = lambda *a, **kw: 130  # stopped by Ctrl-C after saving: the trainer's exit code goes through
    assert cli.main(["train", "--config", str(cfg), "--output", str(out)]) == 130


def test_edvr_errors_from_a_command_are_one_line(tmp_path, monkeypatch, capsys):
    from edvr_lib.utils import EDVRError

    fake = types.ModuleType("edvr_lib.train.trainer")

    def run_train(*a, **kw):
        raise EDVRError("train.total_iter=-1: must be >= 1. Fix: --set train.total_iter=1000")

    fake.run_train = run_train
    monkeypatch.setitem(sys.modules, "edvr_lib.train.trainer", fake)
    (tmp_path / "c.yml").write_text("name: c\n")
    assert cli.main(["train", "--config", str(tmp_path / "c.yml"), "--output", str(tmp_path / "r"),
                     "--device", "cpu"]) == 2
    assert capsys.readouterr().err == ("edvr train: error: train.total_iter=-1: must be >= 1. "
                                       "Fix: --set train.total_iter=1000\n")
