"""`edvr test` on a tiny REDS-/Vid4-shaped folder: CSV, averaging, published rows, configs, errors."""
import csv

import numpy as np
import pytest
import torch

from edvr_lib.cli import main as cli_main
from edvr_lib.data.imresize import imresize
from edvr_lib.data.io import write_png
from edvr_lib.evaluate import PUBLISHED, build_dataset, evaluate, load_test_config
from edvr_lib.inference import self_ensemble_forward
from edvr_lib.models import bicubic_model
from edvr_lib.utils import EDVRError


pytestmark = pytest.mark.usefixtures("one_thread")


def _make_set(root, gt_dir, lq_dir, clips, n=5, size=(32, 48), seed=0):
    rng = np.random.default_rng(seed)
    for clip in clips:
        base = rng.integers(0, 256, (size[0] // 4, size[1] // 4, 3)).astype(np.uint8)
        for i in range(n):
            gt = imresize(np.roll(base, i, axis=1).astype(np.float32) / 255, 4)
            gt = np.clip(np.round(gt * 255), 0, 255).astype(np.uint8)
            write_png(root / gt_dir / clip / f"{i:08d}.png", gt)
            write_png(root / lq_dir / clip / f"{i:08d}.png", imresize(gt, 0.25))
    return root


@pytest.fixture(scope="module")
def reds(tmp_path_factory):
    return _make_set(tmp_path_factory.mktemp("REDS"), "train_sharp", "train_sharp_bicubic/X4",
                     ["000", "011", "015", "020", "001"])


def test_cli_bicubic_reds4_csv_and_table(reds, tmp_path, capsys):
    rc = cli_main(["test", "--dataset", "REDS4", "--root", str(reds), "--model", "bicubic", "--output", str(tmp_path),
                   "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert len(rows) == 20 and {r["clip"] for r in rows} == {"000", "011", "015", "020"}  # clip 001 is not REDS4
    per_clip = {c: np.mean([float(r["psnr"]) for r in rows if r["clip"] == c]) for c in ("000", "011", "015", "020")}
    assert f"| Bicubic | ours (20 frames, 4 clips) | {np.mean(list(per_clip.values())):.2f} |" in out
    assert "| EDVR-M | published (BasicSR Model Zoo (EDVR_REDS_SR_M), BasicVSR paper table) | 30.53 | 0.8699 |" in out
    assert "PSNR (dB, RGB)" in out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # atomic write left no temp file


def test_vid4_defaults_to_y_channel(tmp_path, capsys):
    root = _make_set(tmp_path / "Vid4", "GT", "BIx4", ["calendar"], n=7)
    rc = cli_main(["test", "--dataset", "Vid4", "--root", str(root), "--model", "bicubic",
                   "--output", str(tmp_path / "o"), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "PSNR (dB, Y)" in out and "27.35" in out and "published" in out


def test_checkpoint_and_config(reds, tmp_path, capsys):
    from edvr_lib.archs import build_edvr

    torch.manual_seed(0)
    net = build_edvr("M", num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    torch.save({"params": net.state_dict()}, tmp_path / "tiny.pth")
    cfg = tmp_path / "test_tiny.yaml"
    cfg.write_text(f"""name: tiny
model: edvr
path: {{pretrain_network_g: {tmp_path / 'tiny.pth'}}}
datasets:
  test: {{name: REDS4, dataroot_gt: {reds / 'train_sharp'}, dataroot_lq: {reds / 'train_sharp_bicubic'},
         clips: ['011']}}
val: {{metrics: {{psnr: {{crop_border: 0, test_y_channel: false}}}}}}
""")
    assert load_test_config(cfg)["dataset"] == "REDS4"
    rc = cli_main(["test", "--config", str(cfg), "--output", str(tmp_path / "o"), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "EDVR (tiny.pth)" in out and "5 frames in 1 clips" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nnetwork_g: {}\n")
    assert cli_main(["test", "--config", str(bad)]) == 2
    assert "unknown option network_g" in capsys.readouterr().err


def test_errors_are_clean(tmp_path, capsys):
    assert cli_main(["test", "--dataset", "REDS4", "--model", "bicubic"]) == 2
    assert "--root" in capsys.readouterr().err
    assert cli_main(["test", "--dataset", "Vid4", "--root", str(tmp_path), "--model", "bicubic"]) == 2
    assert "GT folder not found" in capsys.readouterr().err
    (tmp_path / "w.pth").write_bytes(b"\x00garbage")
    assert cli_main(["test", "--dataset", "embedded", "--weights", str(tmp_path / "w.pth")]) == 2
    assert "w.pth" in capsys.readouterr().err


def test_self_ensemble_inverts_every_variant():
    # a flip/transpose-equivariant model on a non-square input: every variant must come back aligned
    x = torch.rand(1, 3, 3, 6, 8)
    model = lambda z: torch.nn.functional.interpolate(z[:, 1], scale_factor=4, mode="nearest")  # noqa: E731
    assert torch.allclose(self_ensemble_forward(model, x), model(x))
    with pytest.raises(EDVRError):
        build_dataset("REDS5")


def test_evaluate_keeps_outputs_and_published_table_has_no_embedded_numbers(reds):
    ds = build_dataset("REDS4", reds, num_frame=5, clips=["015"])
    res = evaluate(bicubic_model(5), ds, keep_clips=["015"])
    assert len(res["outputs"]["015"]) == 5 and res["outputs"]["015"][0].shape == (32, 48, 3)
    assert res["overall"]["psnr"] == pytest.approx(res["per_clip"]["015"]["psnr"])
    assert PUBLISHED["embedded"] == []


def test_vimeo90k_t_layout_on_y_channel(tmp_path, capsys):
    from edvr_lib.metrics import calculate_psnr

    rng = np.random.default_rng(1)
    root = tmp_path / "vimeo90k"
    seqs = ["00001/0001", "00002/0007"]
    for seq in seqs:
        for i in range(1, 8):
            gt = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
            write_png(root / "vimeo_septuplet/sequences" / seq / f"im{i}.png", gt)
            write_png(root / "vimeo_septuplet_matlabLRx4/sequences" / seq / f"im{i}.png", imresize(gt, 0.25))
    (root / "vimeo_septuplet/sep_testlist.txt").write_text("\n".join(seqs) + "\n")
    rc = cli_main(["test", "--dataset", "Vimeo90K-T", "--root", str(root), "--model", "bicubic", "--output",
                   str(tmp_path / "o"), "--device", "cpu", "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "2 frames in 2 clips, Y" in out and "| EDVR-L | published" in out
    rows = list(csv.DictReader(open(tmp_path / "o" / "metrics.csv")))
    assert [r["clip"] for r in rows] == seqs
    # bicubic of im4 (the centre of 7) against GT im4, on Y, computed here from the files
    from edvr_lib.data.io import read_image

    seq = root / "vimeo_septuplet_matlabLRx4/sequences" / seqs[0]
    sr = np.round(np.clip(imresize(read_image(seq / "im4.png"), 4), 0, 1) * 255)
    gt = np.round(read_image(root / "vimeo_septuplet/sequences" / seqs[0] / "im4.png") * 255)
    assert float(rows[0]["psnr"]) == pytest.approx(calculate_psnr(sr, gt, test_y_channel=True), abs=1e-5)


def test_centre_frame_only_feeds_the_centre_frame_to_every_slot():
    from edvr_lib.archs import build_edvr
    from edvr_lib.ablations import CentreFrameOnly

    torch.manual_seed(0)
    model = build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1).eval()
    x = torch.rand(2, 5, 3, 8, 8)
    with torch.no_grad():
        out = CentreFrameOnly(model)(x)
        assert torch.equal(out, model(x[:, 2:3].repeat(1, 5, 1, 1, 1)))
        assert not torch.allclose(out, model(x))  # the neighbours do matter to the full model
