"""`edvr infer`: tiling equals untiled, streaming keeps memory bounded, bad input fails cleanly."""
from pathlib import Path

import numpy as np
import pytest
import torch

from edvr_lib.cli import main as cli_main
from edvr_lib.data.io import write_png
from edvr_lib.data.frame_sources import FolderSource, VideoSource, open_source
from edvr_lib.infer import infer
from edvr_lib.inference import super_resolve_stream, tile_boxes, tiled_forward
from edvr_lib.models import bicubic_model
from edvr_lib.utils import EDVRError


pytestmark = pytest.mark.usefixtures("one_thread")


def _frames(folder: Path, n: int = 6, h: int = 12, w: int = 16, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]
    for i, img in enumerate(imgs):
        write_png(folder / f"{i:08d}.png", img)
    return imgs


def test_tile_boxes_cover_and_align():
    boxes = tile_boxes(50, 16, 6, align=4)
    cores = [(cs, ce) for _, _, cs, ce in boxes]
    assert cores == [(0, 16), (16, 32), (32, 48), (48, 50)]
    for ctx_s, ctx_e, cs, ce in boxes:
        assert ctx_s % 4 == 0 and ctx_s <= cs and ce <= ctx_e <= 50
        assert cs - ctx_s >= min(cs, 6) - 3 and ctx_e - ce == min(6, 50 - ce)


def test_tiled_equals_untiled_for_a_local_operator():
    # a 3x3 conv then nearest x4: influence radius 1 < tile_pad, so stitching must be exact
    conv = torch.nn.Conv2d(3, 3, 3, padding=1)
    model = lambda x: torch.nn.functional.interpolate(conv(x[:, 1]), scale_factor=4, mode="nearest")  # noqa: E731
    x = torch.rand(1, 3, 3, 21, 30)
    with torch.no_grad():
        assert torch.allclose(tiled_forward(model, x, tile=8, tile_pad=4), model(x), atol=1e-6)


def test_tiled_edvr_matches_untiled_within_one_level():
    from edvr_lib.inference import forward_padded
    from edvr_lib.models import random_weights_model
    from edvr_lib.metrics import tensor2img

    # random offsets (seed 0) and a loud residual: the network, not the bilinear base, decides
    net = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                               num_reconstruct_block=1)
    assert not net.training
    with torch.no_grad():
        net.conv_last.weight.mul_(10)
        net.conv_last.bias.mul_(10)
    x = torch.rand(1, 3, 3, 22, 30)
    run = lambda z: forward_padded(net, z)  # noqa: E731
    with torch.no_grad():
        full = run(x)
        base = torch.nn.functional.interpolate(x[:, 1], scale_factor=4, mode="bilinear", align_corners=False)
        assert (full.clamp(0, 1) - base).abs().mean() * 255 > 20  # the residual is far from negligible
        no_context = tiled_forward(run, x, tile=12, tile_pad=0)
        tiled = tiled_forward(run, x, tile=12)  # default tile_pad (16)
    assert tiled.shape == full.shape == (1, 3, 88, 120)
    full_u8 = tensor2img(full[0]).astype(int)
    assert np.abs(full_u8 - tensor2img(no_context[0]).astype(int)).max() > 1  # seams without context: the check bites
    assert np.abs(full_u8 - tensor2img(tiled[0]).astype(int)).max() <= 1


def test_streaming_reflection_circle_and_bounded_cache(tmp_path):
    imgs = _frames(tmp_path / "in", n=8)
    net = bicubic_model(num_frame=5)
    source = open_source(tmp_path / "in", num_frame=5)
    outs = list(super_resolve_stream(net, source))
    assert [name for name, _ in outs] == [f"{i:08d}.png" for i in range(8)]
    assert source.max_cached <= 2 * 5 - 1
    # the bicubic baseline restores the window's centre frame, so each output is its own frame upscaled
    from edvr_lib.data.imresize import imresize

    expected = np.clip(imresize(imgs[7].astype(np.float32) / 255, 4), 0, 1)
    assert np.abs(outs[7][1].astype(int) - np.round(expected * 255).astype(int)).max() <= 1


def test_streaming_window_uses_reflection_circle(tmp_path):
    _frames(tmp_path / "in", n=6)
    seen = []

    class Spy(torch.nn.Module):  # an SRModel
        num_frame, center_frame_idx, size_multiple, scale = 3, 1, 1, 4

        def forward(self, x):
            seen.append(x[0, :, 0, 0, 0].clone())
            return torch.zeros(1, 3, x.shape[-2] * 4, x.shape[-1] * 4)

    source = FolderSource(tmp_path / "in", cache_size=5)
    list(super_resolve_stream(Spy(), source, num_frame=3))
    first = [source.get(i)[0, 0, 0] for i in (2, 0, 1)]  # centre 0, T=3 -> [2, 0, 1]
    assert torch.allclose(seen[0], torch.tensor(first))


def test_infer_folder_to_folder_and_video_roundtrip(tmp_path):
    _frames(tmp_path / "in", n=5, h=16, w=20)
    info = infer(tmp_path / "in", tmp_path / "out", bicubic_model(5))
    assert info["frames"] == 5 and sorted(p.name for p in (tmp_path / "out").iterdir()) == \
        [f"{i:08d}.png" for i in range(5)]
    # video in -> video out
    import cv2

    video_in = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video_in), cv2.VideoWriter_fourcc(*"mp4v"), 10, (20, 16))
    for p in sorted((tmp_path / "in").iterdir()):
        writer.write(cv2.imread(str(p)))
    writer.release()
    assert len(VideoSource(video_in)) == 5
    info = infer(video_in, tmp_path / "out.mp4", bicubic_model(5))
    cap = cv2.VideoCapture(str(tmp_path / "out.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 5 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 80
    cap.release()


def test_cli_infer_bicubic_tiled(tmp_path, capsys):
    _frames(tmp_path / "in", n=5, h=13, w=17)  # odd size: padded and cropped back
    rc = cli_main(["infer", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--model", "bicubic",
                   "--tile", "8", "--device", "cpu", "--no-progress"])
    assert rc == 0 and "wrote 5 frames (17x13 -> 68x52)" in capsys.readouterr().out
    from edvr_lib.data.io import read_image

    assert read_image(tmp_path / "out" / "00000004.png").shape == (52, 68, 3)


@pytest.mark.parametrize("case", ["missing", "empty", "garbage", "mixed", "truncated_last", "bad_weights",
                                  "wrong_state_dict", "no_weights"])
def test_bad_input_one_clear_error_and_no_output(tmp_path, capsys, monkeypatch, case):
    src = tmp_path / "in"
    args = ["--model", "bicubic"]
    if case == "missing":
        src = tmp_path / "nope"
    elif case == "empty":
        src.mkdir()
    else:
        _frames(src, n=5)
    if case == "garbage":
        (src / "00000002.png").write_bytes(b"not a png at all")
    elif case == "mixed":
        write_png(src / "00000003.png", np.zeros((10, 16, 3), np.uint8))
    elif case == "truncated_last":  # valid header, truncated data: found only when decoding the last frames
        data = (src / "00000004.png").read_bytes()
        (src / "00000004.png").write_bytes(data[: len(data) // 2])
    elif case == "bad_weights":
        (tmp_path / "w.pth").write_text("this is not a checkpoint")
        args = ["--weights", str(tmp_path / "w.pth")]
    elif case == "wrong_state_dict":  # a valid torch file, but not an EDVR
        torch.save({"params": torch.nn.Linear(2, 2).state_dict()}, tmp_path / "linear.pth")
        args = ["--weights", str(tmp_path / "linear.pth")]
    elif case == "no_weights":
        import edvr_lib.models as infer_mod

        monkeypatch.setattr(infer_mod, "DEFAULT_CHECKPOINT", infer_mod.REPO_ROOT / "checkpoints" / "absent.pth")
        args = []
    rc = cli_main(["infer", "--input", str(src), "--output", str(tmp_path / "out"), "--device", "cpu",
                   "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("edvr infer: error:") and "Traceback" not in err
    expected = {"missing": "nope", "empty": "no image frames", "garbage": "00000002.png", "mixed": "00000003.png",
                "truncated_last": "00000004.png", "bad_weights": "w.pth", "wrong_state_dict": "linear.pth",
                "no_weights": "--weights"}[case]
    assert expected in err
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]  # no temp leftovers


def test_precision_needs_cuda():
    with pytest.raises(EDVRError, match="CUDA"):
        list(super_resolve_stream(bicubic_model(3), _DummySource(), precision="fp16", device="cpu"))


class _DummySource:
    names = ["a", "b", "c"]
    size = (4, 4)

    def __len__(self):
        return 3

    def get(self, i):
        return np.zeros((4, 4, 3), np.float32)


def test_failure_mid_clip_leaves_no_partial_video(tmp_path, capsys):
    _frames(tmp_path / "in", n=6)
    data = (tmp_path / "in" / "00000005.png").read_bytes()
    (tmp_path / "in" / "00000005.png").write_bytes(data[: len(data) // 2])  # fails after frames were encoded
    rc = cli_main(["infer", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out.mp4"), "--model",
                   "bicubic", "--device", "cpu", "--no-progress"])
    assert rc == 2 and "00000005.png" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]  # no out.mp4, no temp file
