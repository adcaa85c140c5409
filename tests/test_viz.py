"""Figures and the attention explorer, driven headlessly (set `.value`, check state and image)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from edvr_lib.utils import EDVRError  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def explorer_setup():
    from edvr_lib.archs import build_edvr

    torch.manual_seed(0)
    model = build_edvr("M", num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1,
                       num_reconstruct_block=1).eval()
    for name, module in model.named_modules():  # zero-initialised for training: give the maps some content
        if name.endswith("conv_offset"):
            module.reset_parameters()
    lq = torch.rand(3, 3, 16, 20)
    return model, lq


def test_explorer_runs_model_once_and_redraws_on_slider(explorer_setup):
    from edvr_lib.viz.explorer import MAP_TYPES, AttentionExplorer

    model, lq = explorer_setup
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        ex = AttentionExplorer(model, lq, display_height=64)
        assert set(ex.widgets) >= {"frame", "level", "group", "map_type", "image"}
        first = ex.current_image().copy()
        assert first.dtype == np.uint8 and first.shape[0] == 64 and first.shape[2] == 3
        png0 = ex.widgets["image"].value
        assert png0[:8] == b"\x89PNG\r\n\x1a\n"
        ex.widgets["frame"].value = 2
        assert ex.state["frame"] == 2 and ex.redraws == 1
        assert not np.array_equal(ex.current_image(), first)
        assert ex.widgets["image"].value != png0
        ex.widgets["level"].value = "l3"
        ex.widgets["group"].value = 1
        for map_type in MAP_TYPES:
            ex.widgets["map_type"].value = map_type
            assert ex.current_image().shape[0] == 64
        assert ex.widgets["level"].disabled and ex.widgets["frame"].disabled  # spatial attention
        ex.set(map_type="offset magnitude", frame=0, level="l1", group=0)
        assert np.array_equal(ex.current_image(), first)  # back to the start: served from the cache
        assert len(calls) == 1 and ex.forward_passes == 1
        assert "frame 0 (centre frame)" not in ex.widgets["info"].value  # centre of 3 frames is 1
        ex.set(frame=1)
        assert "(centre frame)" in ex.widgets["info"].value
        with pytest.raises(EDVRError):
            ex.set(colour="red")
    finally:
        handle.remove()


def test_offset_maps_by_hand():
    from edvr_lib.viz.explorer import offset_direction_rgb, offset_magnitude

    offs = np.zeros((9, 2, 2, 2))
    offs[:, 0] = 3.0  # dy
    offs[:, 1] = 4.0  # dx
    assert np.allclose(offset_magnitude(offs), 5.0)
    rgb = offset_direction_rgb(offs)
    assert rgb.shape == (2, 2, 3) and rgb.max() == 255  # full brightness at the largest offset
    opposite = offset_direction_rgb(-offs)
    assert not np.array_equal(rgb[0, 0], opposite[0, 0])  # direction changes the hue


def test_attention_grid_and_comparison_figures(explorer_setup):
    from edvr_lib.viz import comparison_figure, error_map_figure, psnr_per_frame_figure, temporal_profile_figure
    from edvr_lib.viz.explorer import attention_grid_figure, compute_internals

    model, lq = explorer_setup
    rec, out = compute_internals(model, lq)
    assert out.shape == (1, 3, 64, 80)
    fig = attention_grid_figure(rec, lq)
    assert fig._suptitle.get_text().startswith("EDVR alignment")
    assert len(fig.axes) == 4 * 5 + 4  # (3 frames + spatial row) x (LR + 4 map columns), + 4 colour bars
    # the DCN-mask column shares one colour scale: the range of the masks over all frames
    masks = rec.pcd_masks["l1"][0, :, 0].numpy().mean(axis=1)  # (t, h, w), mean of the 9 taps
    assert masks.max() - masks.min() > 1e-3  # random offset convs: masks are not all 0.5
    for f in range(3):
        assert np.allclose(fig.axes[5 * f + 3].images[0].get_clim(), (masks.min(), masks.max()), atol=1e-6)
    assert "mask (0..1)" in [ax.get_xlabel() for ax in fig.axes[20:]]
    plt.close(fig)

    rng = np.random.default_rng(0)
    gt = rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    sr = np.clip(gt.astype(int) + 3, 0, 255).astype(np.uint8)
    lr = gt[::4, ::4]
    fig = comparison_figure({"LR": lr, "Bicubic": sr, "EDVR": sr, "GT": gt}, box=(8, 8, 16, 16),
                            scores={"EDVR": "38.1 dB"})
    assert [ax.get_title() for ax in fig.axes[1:]] == ["LR", "Bicubic", "EDVR\n38.1 dB", "GT"]
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)
    plt.close(fig)
    fig = error_map_figure({"EDVR": sr}, gt)
    assert "mean |error|" in fig.axes[0].get_title()
    plt.close(fig)
    fig = temporal_profile_figure({"GT": [gt, gt, sr]}, row=10)
    assert fig.axes[0].get_ylabel() == "frame t"
    plt.close(fig)
    fig = psnr_per_frame_figure({"EDVR": [30, 31]}, published={"EDVR-M (published)": 30.53})
    assert fig.axes[0].get_ylabel() == "PSNR (dB)" and len(fig.axes[0].lines) == 2
    plt.close(fig)


def test_temporal_profile_stacks_rows():
    from edvr_lib.viz import temporal_profile

    frames = [np.full((4, 5, 3), v, np.uint8) for v in (0, 100, 200)]
    frames[1][2, 3] = 7
    prof = temporal_profile(frames, row=2)
    assert prof.shape == (3, 5, 3) and prof[1, 3, 0] == 7 and prof[2, 0, 0] == 200
