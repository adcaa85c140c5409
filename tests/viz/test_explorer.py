"""Figures and the attention explorer, driven headlessly (set `.value`, check state and image)."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from edvr_lib.utils import EDVRError


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def explorer_setup():
    from edvr_lib.models import random_weights_model

    model = random_weights_model(num_frame=3, num_feat=8, deformable_groups=2, num_extract_block=1,
                                 num_reconstruct_block=1)
    with torch.no_grad():  # the training init maps attention to ~0.5 everywhere: give the maps content
        for conv in (m for m in model.modules() if isinstance(m, torch.nn.Conv2d)):
            torch.nn.init.kaiming_normal_(conv.weight, a=0.1)
            conv.weight.mul_(0.3 if conv.out_channels == 54 else 1.0)  # 54 = 2 groups x 27: the offset convs
    lq = torch.rand(3, 3, 16, 20)
    return model, lq


def test_explorer_runs_model_once_and_redraws_on_slider(explorer_setup):
    from edvr_lib.viz.explorer import MAP_TYPES, AttentionExplorer

    model, lq = explorer_setup
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    try:
        ex = AttentionExplorer(model, lq, display_height=64)
        assert set(ex.widgets) >= {"frame", "level", "group", "map_type", "image", "opacity", "center", "corruption",
                                   "corrupt_frame", "channel", "relative"}
        first = ex.current_image().copy()
        assert first.dtype == np.uint8 and first.shape[0] == 64 + 14 and first.shape[2] == 3  # + the caption strip
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
            assert ex.current_image().shape[0] == 64 + 14
        assert ex.widgets["level"].disabled and ex.widgets["frame"].disabled  # spatial attention
        assert not ex.widgets["channel"].disabled and ex.widgets["center"].disabled  # one window: no clip slider
        redraws = ex.redraws
        ex.set(map_type="offset magnitude", frame=0, level="l1", group=-1)
        assert ex.redraws == redraws + 1  # one redraw per set() call
        assert np.array_equal(ex.current_image(), first)  # back to the start: served from the cache
        assert ex.draw_seconds[-1][1] is True
        assert len(calls) == 1 and ex.forward_passes == 1
        assert "frame 0 (centre frame)" not in ex.widgets["info"].value  # centre of 3 frames is 1
        ex.set(frame=1)
        assert "(centre frame)" in ex.widgets["info"].value
        with pytest.raises(EDVRError, match="unknown control 'colour'"):
            ex.set(colour="red")
    finally:
        handle.remove()


def _panels(ex, img):
    """The input panel and the map panel of an explorer picture (below the 14-pixel captions)."""
    h = ex.display_height
    lr_w = round(ex.clip.shape[-1] * h / ex.clip.shape[-2])
    return img[14:, :lr_w], img[14:, lr_w + 6:2 * lr_w + 6]


def test_explorer_over_a_clip_new_controls(explorer_setup):
    from edvr_lib.viz.explorer import AttentionExplorer, _gray, _upscale_nearest, map_image

    model, _ = explorer_setup
    torch.manual_seed(1)
    clip = torch.rand(6, 3, 16, 20)
    flow = np.zeros((2, 16, 20), np.float32)
    flow[1] = 0.5  # half a pixel to the right per frame of distance

    def true_flow(c, j):
        return flow * (j - c)

    ex = AttentionExplorer(model, clip=clip, center=2, true_flow=true_flow, display_height=64, title="tiny")
    assert ex.clip_indices() == [1, 2, 3] and ex.forward_passes == 1
    # the centre-frame slider: a new window, one forward pass, cached when it comes back
    base = ex.current_image().copy()
    ex.set(center=4)
    assert ex.clip_indices() == [3, 4, 5] and ex.forward_passes == 2
    assert not np.array_equal(ex.current_image(), base)
    ex.set(center=2)
    assert ex.forward_passes == 2 and np.array_equal(ex.current_image(), base)
    # the true flow is drawn beside the learned offsets, with the end-point error
    assert "end-point error" in ex.widgets["info"].value
    ex.set(map_type="DCN mask")
    assert ex.current_image().shape[1] < base.shape[1]  # no true-flow panel beside a mask
    # offsets relative to the centre frame's self-alignment: zero for the centre frame, not zero raw
    ex.set(map_type="offset magnitude", frame=1, opacity=1.0)
    _, centre_map = _panels(ex, ex.current_image())
    zero, _ = map_image(ex._window(2, "none", 0)[2], "offset magnitude", 1, "l1", -1, True)
    assert (zero == zero[0, 0]).all()  # a flat map: relative offsets are 0 everywhere
    assert np.array_equal(centre_map, _upscale_nearest(zero, centre_map.shape[:2]))
    ex.set(relative=False)
    _, raw_map = _panels(ex, ex.current_image())
    assert not np.array_equal(raw_map, centre_map)
    # opacity: 1 = the map alone, 0 = the grey frame alone
    ex.set(opacity=0.0)
    lr_panel, over = _panels(ex, ex.current_image())
    assert np.array_equal(over, _gray(lr_panel).round().astype(np.uint8))
    # the spatial attention channel selector
    ex.set(map_type="spatial attention", opacity=1.0, channel=-1)
    mean_img = ex.current_image().copy()
    ex.set(channel=3)
    assert not np.array_equal(ex.current_image(), mean_img) and "channel 3" in ex.widgets["info"].value
    # corrupting one frame: a new forward pass, and that frame's temporal attention reacts
    ex.set(map_type="temporal attention", frame=0)
    clean = ex.temporal_attention_per_frame().copy()
    passes = ex.forward_passes
    ex.set(corruption="unrelated frame", corrupt_frame=0)
    assert ex.forward_passes == passes + 1
    corrupted = ex.temporal_attention_per_frame()
    assert abs(corrupted[0] - clean[0]) > 1e-4
    assert np.allclose(ex._window(2, "unrelated frame", 0)[0][1:], clip[1:4][1:])  # only frame 0 changed
    assert "0*" in ex.widgets["info"].value and "(* unrelated frame)" in ex.widgets["info"].value
    for kind in ("noise", "occlusion", "blur"):
        ex.set(corruption=kind)
        assert ex._window(2, kind, 0)[0][0].sub(clip[1]).abs().max() > 0.1
    # every redraw was timed; a cached one is only a PNG swap
    cached = [sec for sec, hit in ex.draw_seconds if hit]
    assert cached and max(cached) < 0.5


def test_explorer_defaults_to_the_learned_checkpoint_and_reads_embedded_clips(explorer_setup, embedded_smoke_root):
    from edvr_lib.data import synthetic_clip_names
    from edvr_lib.models import tutorial_model
    from edvr_lib.viz.explorer import AttentionExplorer

    _, label = tutorial_model()
    window = torch.rand(5, 3, 8, 8)
    ex = AttentionExplorer(lq=window, display_height=64)
    assert label in ex.widgets["title"].value and ex.forward_passes == 1
    model, _ = explorer_setup
    name = synthetic_clip_names(embedded_smoke_root)[0]
    ex = AttentionExplorer.from_embedded(name, root=embedded_smoke_root, model=model, center=3, crop=(4, 8, 16, 20),
                                         display_height=64)
    assert ex.clip.shape[-2:] == (16, 20) and ex.true_flow(3, 4).shape == (2, 16, 20)
    assert "end-point error" in ex.widgets["info"].value
    assert AttentionExplorer.from_embedded("bbb_102", root=embedded_smoke_root, model=model,
                                           crop=(0, 0, 16, 16), display_height=64).true_flow is None  # real video
    with pytest.raises(EDVRError, match="not a clip of this set"):
        AttentionExplorer.from_embedded("no_such_clip", root=embedded_smoke_root, model=model)
    with pytest.raises(EDVRError, match="multiples of 4"):
        AttentionExplorer.from_embedded(name, root=embedded_smoke_root, model=model, crop=(0, 0, 10, 16))
    with pytest.raises(EDVRError, match="not both"):
        AttentionExplorer(model, lq=window[:3], clip=window)
    with pytest.raises(EDVRError, match="display_height must be at least 64"):
        AttentionExplorer(model, lq=window[:3], display_height=32)


def test_recorded_internals_only_still_work(explorer_setup):
    """Notebook 05's older call: a recorded window without a model (no new windows, no corruption)."""
    from edvr_lib.viz.explorer import AttentionExplorer, compute_internals

    model, lq = explorer_setup
    rec, _ = compute_internals(model, lq)
    ex = AttentionExplorer(internals=rec, lq=lq, display_height=64, title="recorded")
    assert ex.forward_passes == 0 and ex.widgets["corruption"].disabled
    ex.set(frame=2, map_type="temporal attention")
    assert ex.current_image().shape[0] == 64 + 14


def test_offset_maps_by_hand():
    from edvr_lib.viz.explorer import colour_wheel, flow_rgb, offset_direction_rgb, offset_magnitude

    offs = np.zeros((9, 2, 2, 2))
    offs[:, 0] = 3.0  # dy
    offs[:, 1] = 4.0  # dx
    assert np.allclose(offset_magnitude(offs), 5.0)
    rgb = offset_direction_rgb(offs)
    assert rgb.shape == (2, 2, 3) and rgb.max() == 255  # full brightness at the largest offset
    opposite = offset_direction_rgb(-offs)
    assert not np.array_equal(rgb[0, 0], opposite[0, 0])  # direction changes the hue
    # the colour wheel is the legend: a displacement has the colour drawn at that place on the wheel
    wheel = colour_wheel(41, max_mag=2.0)
    right, down = np.array([[[0.0]], [[2.0]]]), np.array([[[2.0]], [[0.0]]])  # (dy, dx) = (0, 2) and (2, 0)
    assert np.abs(flow_rgb(right, 2.0)[0, 0].astype(int) - wheel[20, 40]).max() <= 2
    assert np.abs(flow_rgb(down, 2.0)[0, 0].astype(int) - wheel[40, 20]).max() <= 2
    assert (wheel[0, 0] == 255).all()  # outside the disc
    # a fixed range: half the range is half the brightness, more than the range saturates
    assert flow_rgb(right / 2, 2.0)[0, 0].max() == 128 and flow_rgb(right * 3, 2.0)[0, 0].max() == 255


def test_map_colours_use_fixed_physical_ranges():
    """A mask of 0.4964..0.4968 is drawn in the colour of ~0.5 everywhere, not stretched over the whole map."""
    from matplotlib import colormaps

    from edvr_lib.viz.explorer import WindowMaps, map_image

    t, g, h, w = 3, 2, 4, 4
    masks = np.full((t, g, h, w), 0.4964)
    masks[..., 0, 0] = 0.4968
    zeros = {k: np.zeros((t, g, 2, h, w)) for k in ("l3", "l2", "l1", "cascade")}
    flows_all = {k: np.zeros((t, 2, h, w)) for k in zeros}
    flows_all["l1"][0, 1] = 1.0  # dx = 1 LR px for frame 0
    maps = WindowMaps(zeros, flows_all, {k: masks for k in zeros}, np.full((t, h, w), 0.9), np.full((4, h, w), 0.5),
                      center_frame_idx=1)
    img, text = map_image(maps, "DCN mask", 0, "l1", -1)
    want = (np.array(colormaps["viridis"](0.4966)[:3]) * 255).round()
    assert np.abs(img.reshape(-1, 3) - want).max() <= 1 and "scale 0..1" in text
    img, text = map_image(maps, "offset magnitude", 0, "l1", -1, relative=False, offset_range_px=2.0)
    want = (np.array(colormaps["viridis"](0.5)[:3]) * 255).round()
    assert np.abs(img.reshape(-1, 3) - want).max() <= 1 and "0 .. 2 LR px" in text
    # relative to the centre frame (whose raw offset is 0 here) the same frame reads the same
    assert np.array_equal(map_image(maps, "offset magnitude", 0, "l1", -1, True, offset_range_px=2.0)[0], img)
    with pytest.raises(EDVRError, match="unknown pyramid level"):
        map_image(maps, "offset magnitude", 0, "l7")


def test_attention_grid_and_comparison_figures(explorer_setup):
    from edvr_lib.viz import comparison_figure, error_map_figure, psnr_per_frame_figure, temporal_profile_figure
    from edvr_lib.viz.explorer import attention_grid_figure, compute_internals

    model, lq = explorer_setup
    rec, out = compute_internals(model, lq)
    assert out.shape == (1, 3, 64, 80)
    fig = attention_grid_figure(rec, lq)
    assert fig._suptitle.get_text().startswith("EDVR alignment")
    assert len(fig.axes) == 4 * 5 + 4  # (3 frames + spatial row) x (LR + 4 map columns), + 4 colour bars
    # fixed colour scales, whatever the values: masks and attention 0..1, offsets 0..2 LR px (stated)
    for f in range(3):
        assert fig.axes[5 * f + 1].images[0].get_clim() == (0.0, 2.0)  # offset magnitude
        assert fig.axes[5 * f + 3].images[0].get_clim() == (0.0, 1.0)  # DCN mask
        assert fig.axes[5 * f + 4].images[0].get_clim() == (0.0, 1.0)  # temporal attention
    assert fig.axes[15].images[0].get_clim() == (0.0, 1.0)  # spatial attention
    assert fig.axes[17].get_xlabel() == "dx (LR px)" and fig.axes[17].images[0].get_extent() == [-2, 2, 2, -2]
    labels = [ax.get_xlabel() for ax in fig.axes[20:]]
    assert "|offset| (LR px, relative to self-alignment), fixed 0..2" in labels
    assert "mask (0..1), fixed scale" in labels
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


def test_ablation_figure(explorer_setup):
    from edvr_lib.ablations import run_ablations
    from edvr_lib.viz import ablation_figure

    model, lq = explorer_setup
    gt = torch.rand(3, 64, 80)
    res = run_ablations(model, lq, gt)
    fig = ablation_figure(res, box=(8, 8, 32, 32), title="tiny")
    names = list(res.psnr)
    crops, bars = fig.axes[:-1], fig.axes[-1]
    assert [ax.get_title() for ax in crops] == [f"{n}\n{res.psnr[n]:.2f} dB" for n in names] + ["GT"]
    assert all(ax.get_xlabel() == "x (HR pixels)" and ax.get_ylabel() == "y (HR pixels)" for ax in crops)
    assert [p.get_width() for p in bars.patches] == pytest.approx([res.psnr[n] for n in names])
    assert bars.get_xlabel().startswith("PSNR (dB)") and fig._suptitle.get_text() == "tiny"
    plt.close(fig)


def test_temporal_profile_stacks_rows():
    from edvr_lib.viz import temporal_profile

    frames = [np.full((4, 5, 3), v, np.uint8) for v in (0, 100, 200)]
    frames[1][2, 3] = 7
    prof = temporal_profile(frames, row=2)
    assert prof.shape == (3, 5, 3) and prof[1, 3, 0] == 7 and prof[2, 0, 0] == 200
