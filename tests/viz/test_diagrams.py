"""The block diagrams: the shapes they print are those of a real forward, they build, and docs/ holds them fresh."""
from pathlib import Path
import matplotlib.pyplot as plt
import pytest
import torch

from edvr_lib.archs import build_edvr
from edvr_lib.utils import EDVRError
from edvr_lib.viz import diagrams

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("one_thread")

TOY = dict(num_feat=16, num_extract_block=1, num_reconstruct_block=1)


@pytest.mark.parametrize("preset, overrides, size", [
    ("M", TOY, (16, 24)),                     # EDVR-M's structure at a toy width, non-square input
    ("M-woTSA", TOY, (16, 16)),               # fusion by one 1x1 conv: no attention shapes
    ("L-deblur", TOY, (64, 32)),              # pre-deblur module + hr_in: features at h/4, output at input size
    ("L-Vimeo", dict(TOY, num_feat=24), (12, 16)),  # 7 frames
])
def test_block_shapes_equal_a_real_forward(preset, overrides, size):
    torch.manual_seed(0)
    model = build_edvr(preset, **overrides)
    x = torch.rand(2, model.config.num_frame, 3, *size)
    assert diagrams.block_shapes(model.config, *size, batch=2) == diagrams.traced_shapes(model, x)


def test_block_shapes_of_the_shipped_model_equal_its_forward():
    cfg = diagrams.shipped_config()
    assert (cfg.num_feat, cfg.num_extract_block, cfg.num_reconstruct_block, cfg.with_tsa) == (48, 3, 6, True)
    torch.manual_seed(0)
    model = build_edvr(cfg)
    assert diagrams.block_shapes(cfg, 16, 20) == diagrams.traced_shapes(model, torch.rand(1, 5, 3, 16, 20))


def test_block_shapes_refuses_sizes_the_network_refuses():
    with pytest.raises(EDVRError, match="divisible by 4"):
        diagrams.block_shapes("M", 18, 32)
    with pytest.raises(EDVRError, match="divisible by 16"):
        diagrams.block_shapes("L-deblur", 40, 32)
    assert diagrams.format_shape((1, 5, 64, 180, 320)) == "1×5×64×180×320"


def _texts(fig) -> str:
    return "\n".join(t.get_text() for ax in fig.axes for t in ax.texts) + "\n" + fig.axes[0].get_title()


@pytest.mark.parametrize("draw, labels, keys", [
    (diagrams.pipeline_diagram, ["feature extraction", "PCD alignment", "TSA fusion", "reconstruction",
                                 "PixelShuffle(2)", "bilinear", "with_predeblur", "hr_in", "with_tsa=False"],
     ["input", "feat_l1", "feat_l2", "feat_l3", "aligned", "fused", "reconstruction", "shuffle1", "shuffle2",
      "residual", "output", "base"]),
    (diagrams.pcd_diagram, ["L3 (h/4)", "L2 (h/2)", "L1 (h)", "offset path", "feature path", "cascade",
                            "DCNv2Pack"],
     ["feat_l1", "feat_l2", "feat_l3", "offsets_l3", "offsets_l2", "offsets_l1", "offsets_cascade", "masks_l3",
      "masks_cascade", "aligned"]),
    (diagrams.tsa_diagram, ["temporal_attn1", "temporal_attn2", "sigmoid", "feat_fusion", "max+avg pool",
                            "fused · sigmoid(a) · 2 + add"],
     ["aligned", "temporal_attn", "weighted", "fused", "spatial_l2", "spatial_l3", "spatial_attn"]),
])
def test_diagrams_build_with_title_labels_and_the_computed_shapes(draw, labels, keys):
    fig = draw()
    try:
        text = _texts(fig)
        assert fig.axes[0].get_title().strip(), "every figure has a title"
        for label in labels:
            assert label in text, label
        for label, cfg, h, w in diagrams.default_networks():
            shapes = diagrams.block_shapes(cfg, h, w)
            for key in keys:  # every labelled block shows both networks' computed shapes
                assert f"{label}: {diagrams.format_shape(shapes[key])}" in text, (label, key)
        fig.canvas.draw()
    finally:
        plt.close(fig)


def test_default_networks_are_edvr_m_and_the_shipped_model():
    (m_label, m_cfg, *m_size), (s_label, s_cfg, *s_size) = diagrams.default_networks()
    assert (m_label, m_cfg.num_feat, m_cfg.num_reconstruct_block, tuple(m_size)) == ("EDVR-M", 64, 10, (180, 320))
    assert s_cfg == diagrams.shipped_config() and tuple(s_size) == (88, 160)


def test_tsa_diagram_refuses_a_network_without_tsa():
    from edvr_lib.archs import PRESETS

    with pytest.raises(EDVRError, match="with_tsa"):
        diagrams.tsa_diagram([("woTSA", PRESETS["M-woTSA"], 16, 16)])


def test_committed_diagrams_are_up_to_date(tmp_path):
    """docs/diagram_*.png are what `make docs` (write_diagrams) draws now: regenerate and commit when they change."""
    written = diagrams.write_diagrams(tmp_path)
    for name in diagrams.DIAGRAM_FILES:
        committed = REPO / "docs" / name
        assert committed.is_file(), f"docs/{name} is missing: run `make docs`"
        assert written[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert committed.read_bytes() == written[name].read_bytes(), f"docs/{name} is stale: run `make docs`"
