"""`edvr prepare-reds`: checks, val regrouping, LR regeneration, meta info, the CLI."""
import numpy as np
import pytest

from edvr_lib.cli import main
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import read_image_uint8, write_png
from edvr_lib.data.prepare_reds import prepare_reds
from edvr_lib.utils import EDVRError


def _make(root, split="train", clips=("000", "011"), n=3, x4=True):
    rng = np.random.default_rng(0)
    for clip in clips:
        for i in range(n):
            gt = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
            write_png(root / f"{split}_sharp" / clip / f"{i:08d}.png", gt)
            lq_folder = root / f"{split}_sharp_bicubic" / ("X4" if x4 else "")
            write_png(lq_folder / clip / f"{i:08d}.png", imresize(gt, 0.25))


def test_clean_download_passes_and_meta_is_written(tmp_path):
    _make(tmp_path)
    report = prepare_reds(tmp_path, progress=False, jobs=1)
    assert report.ok, report.format()
    assert report.lq_root == tmp_path / "train_sharp_bicubic" / "X4"
    assert (tmp_path / "meta_info_REDS_GT.txt").read_text() == "000 3 (32,48,3)\n011 3 (32,48,3)\n"
    assert (tmp_path / "meta_info_REDS4_test_GT.txt").read_text() == "000 3 (32,48,3)\n011 3 (32,48,3)\n"
    assert "clips have 100" in " ".join(report.warnings)


def test_problems_are_reported_and_check_only_writes_nothing(tmp_path):
    _make(tmp_path)
    lq = tmp_path / "train_sharp_bicubic" / "X4"
    (lq / "000" / "00000001.png").unlink()
    write_png(lq / "011" / "00000002.png", np.zeros((9, 12, 3), np.uint8))
    (tmp_path / "train_sharp" / "011" / "00000000.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    report = prepare_reds(tmp_path, check_only=True, progress=False)
    text = "\n".join(report.problems)
    assert not report.ok and len(report.problems) == 3, text
    assert "LR frame missing" in text and "000/00000001.png" in text
    assert "12x9 is not GT 48x32 / 4" in text
    assert "011/00000000.png" in text
    assert not list(tmp_path.glob("meta_info_*"))
    assert "PROBLEMS (3)" in report.format()


def test_regroup_val_and_regenerate_lr(tmp_path):
    _make(tmp_path, clips=("000",), x4=False)
    _make(tmp_path, split="val", clips=("000", "001"), x4=False)
    lq = tmp_path / "train_sharp_bicubic"
    write_png(lq / "000" / "00000000.png", np.zeros((8, 12, 3), np.uint8))  # a wrong LR frame
    report = prepare_reds(tmp_path, regroup_val=True, regenerate_lr=True, progress=False, jobs=1)
    assert report.ok, report.format()
    assert sorted(report.clips) == ["000", "240", "241"]
    gt = read_image_uint8(tmp_path / "train_sharp" / "000" / "00000000.png")
    np.testing.assert_array_equal(read_image_uint8(lq / "000" / "00000000.png"), imresize(gt, 0.25))
    assert (lq / "241" / "00000002.png").is_file()
    assert (tmp_path / "meta_info_REDSval_official_test_GT.txt").read_text() == "240 3 (32,48,3)\n241 3 (32,48,3)\n"
    again = prepare_reds(tmp_path, regroup_val=True, progress=False)  # second regroup copies nothing
    assert any("already exists" in w for w in again.warnings) and again.ok


def test_cli_exit_codes(tmp_path, capsys):
    _make(tmp_path)
    assert main(["prepare-reds", "--root", str(tmp_path), "--check-only", "--quick"]) == 0
    assert "GT clips: 2, frames: 6" in capsys.readouterr().out
    (tmp_path / "train_sharp" / "000" / "00000001.png").unlink()
    assert main(["prepare-reds", "--root", str(tmp_path), "--check-only"]) == 1
    assert "without gaps" in capsys.readouterr().out
    assert main(["prepare-reds", "--root", str(tmp_path / "nope")]) == 2
    assert "argument --root: " + str(tmp_path / "nope") + " does not exist" in capsys.readouterr().err
    with pytest.raises(EDVRError, match="train_sharp.*not found"):
        prepare_reds(tmp_path / "train_sharp_bicubic")
