"""The toy ablation: its variants, a seeded training, the motion read-out and the tables."""
from __future__ import annotations

import json

import pytest
import torch

from edvr_lib.archs import PCDAlignment, build_edvr
from edvr_lib.tutorial import toy_ablation as ta

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ta.ToyAblationConfig(num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
                            steps=2, batch_size=2)


def _bank(n: int = 4, h: int = 8) -> dict:
    gen = torch.Generator().manual_seed(0)
    lq = torch.rand(n, 5, 3, h, h, generator=gen)
    return {"lq": lq, "lq_spoilt": lq.flip(-1), "gt": torch.rand(n, 3, 4 * h, 4 * h, generator=gen)}


@pytest.mark.parametrize("name", list(ta.VARIANTS))
def test_every_variant_builds_and_keeps_the_shapes(name):
    torch.manual_seed(0)
    model = ta.build_variant(name, TINY).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 5, 3, 8, 12))
    assert out.shape == (2, 3, 32, 48) and torch.isfinite(out).all()
    v = ta.VARIANTS[name]
    assert model.with_tsa == (v.fusion == "tsa")
    kind = {"dcn": ta.SingleDCNAlignment, "pyramid": ta.PyramidAlignment, "pcd": PCDAlignment}[v.alignment]
    assert type(model.pcd_align) is kind


def test_variants_differ_only_in_alignment_and_the_default_edvr_is_untouched():
    keys = {name: set(ta.build_variant(name, TINY).state_dict()) for name in ta.VARIANTS}
    edvr = set(build_edvr("M", num_feat=8, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1,
                          with_tsa=False).state_dict())
    assert keys["PCD (pyramid + cascade)"] == edvr  # full PCD is the library's module, unchanged
    outside = {k for k in edvr if not k.startswith("pcd_align.")}
    for name in ("one DCN", "pyramid (no cascade)"):
        assert {k for k in keys[name] if not k.startswith("pcd_align.")} == outside
    pyramid = {k for k in keys["pyramid (no cascade)"] if k.startswith("pcd_align.")}
    assert pyramid == {k for k in edvr if k.startswith("pcd_align.") and ".cas_" not in k}  # no cascade
    assert not any(".l2" in k or ".l3" in k for k in keys["one DCN"])  # no pyramid levels


def test_the_pyramid_variant_is_pcd_stopped_before_the_cascade():
    torch.manual_seed(0)
    pcd, pyramid = PCDAlignment(8, 2), ta.PyramidAlignment(8, 2)
    pyramid.load_state_dict({k: v for k, v in pcd.state_dict().items() if not k.startswith("cas_")})
    nbr = [torch.rand(2, 8, 16 // 2 ** i, 16 // 2 ** i) for i in range(3)]
    ref = [torch.rand(2, 8, 16 // 2 ** i, 16 // 2 ** i) for i in range(3)]
    kept = {}
    pcd.cas_offset_conv1.register_forward_pre_hook(lambda _m, args: kept.update(l1=args[0][0].clone()))
    with torch.no_grad():
        pcd(nbr, ref)
        out = pyramid(nbr, ref)
    assert torch.equal(out, torch.nn.functional.leaky_relu(kept["l1"], 0.1))  # one activation, as PCD's output


def test_two_training_steps_repeat_exactly_with_a_seed():
    bank = _bank()

    def train(seed):
        torch.manual_seed(seed)
        model = ta.build_variant("TSA", TINY)
        hist = ta.train_variant(model, bank, TINY.replace(seed=seed), spoilt=True, log_every=1)
        return model, hist

    (m1, h1), (m2, h2) = train(0), train(0)
    assert len(h1.loss) == 2 and all(torch.isfinite(torch.tensor(h1.loss)))
    assert h1.loss == h2.loss
    for (n, p1), p2 in zip(m1.named_parameters(), m2.parameters()):
        assert torch.equal(p1, p2), n
    fresh = ta.build_variant("TSA", TINY)
    assert any(not torch.equal(p, q) for p, q in zip(m1.parameters(), fresh.parameters()))  # it did train


def test_an_untrained_variant_learns_no_motion():
    # conv_offset starts at zero: every frame sampled on the regular grid, so the learned motion is 0 everywhere
    torch.manual_seed(0)
    model = ta.build_variant("one DCN", TINY)
    data = _bank(n=3)
    flow = torch.zeros(3, 5, 2, 8, 8)
    flow[:, :, 1] = torch.arange(-2, 3, dtype=torch.float32).view(1, 5, 1, 1)  # dx = frame distance, px
    res = ta.evaluate_variant(model, data["lq"], data["gt"], flow, torch.ones(3, 5, 1, 8, 8), chunk=2)
    assert res["epe_ratio"] == pytest.approx(1.0, abs=1e-6) and res["epe_zero"] == pytest.approx(1.5)
    assert len(res["psnr_per_window"]) == 3 and res["psnr"] == pytest.approx(sum(res["psnr_per_window"]) / 3)


def test_spoiling_is_seeded_and_never_the_centre_frame():
    lq = _bank(n=6)["lq"]
    out, idx = ta._spoil(lq, 1.0, 0.3, seed=3)
    again, idx2 = ta._spoil(lq, 1.0, 0.3, seed=3)
    assert torch.equal(out, again) and torch.equal(idx, idx2)
    assert (idx >= 0).all() and (idx != 2).all()
    for i, j in enumerate(idx.tolist()):
        changed = [f for f in range(5) if not torch.equal(out[i, f], lq[i, f])]
        assert changed == [j]
    _, none = ta._spoil(lq, 0.0, 0.3, seed=3)
    assert (none == -1).all()


def _results(per_window: dict[str, list[float]]) -> dict:
    variants = {name: {**ta.VARIANTS[name].__dict__, "parameters": 1, "train_seconds": 1.0,
                       "psnr": sum(v) / len(v), "psnr_per_window": v} for name, v in per_window.items()}
    return {"config": ta.ToyAblationConfig().__dict__, "variants": variants,
            "held_out": {"windows": 3, "bicubic_psnr": 20.0, "bicubic_psnr_spoilt": 19.0}}


def test_the_table_puts_each_effect_beside_the_paper_with_a_verdict():
    res = _results({"one DCN": [20.0, 21.0, 22.0], "pyramid (no cascade)": [21.0, 22.1, 22.9],
                    "PCD (pyramid + cascade)": [20.5, 22.6, 22.4], "concat + 1x1 conv": [19.0, 19.0, 19.0],
                    "TSA": [18.0, 18.1, 17.9]})
    rows = ta.comparison_rows(json.loads(json.dumps(res)))  # the saved JSON reads the same
    assert [r["effect"] for r in rows] == [c[0] for c in ta.COMPARISONS]
    by = {r["effect"]: r for r in rows}
    assert by["pyramid over one DCN"]["verdict"] == "same direction"
    assert by["pyramid over one DCN"]["measured_db"] == pytest.approx(1.0)
    assert by["cascade on top of the pyramid"]["verdict"] == "no clear effect"  # +0.5, -0.5, ... noisy
    assert by["TSA over concat + 1x1 conv"]["verdict"] == "reversed"
    for r in rows:
        assert r["measured_db"] == pytest.approx(res["variants"][r["variant"]]["psnr"]
                                                 - res["variants"][r["baseline"]]["psnr"])
    table = ta.markdown_table(rows)
    assert table.count("\n") == len(rows) + 1 and "same direction" in table
    assert [r["variant"] for r in ta.variant_rows(res)] == list(ta.VARIANTS)
    partial = {**res, "variants": {k: res["variants"][k] for k in ("one DCN", "TSA")}}
    assert ta.comparison_rows(partial) == []  # only comparisons whose two variants ran


def test_the_figure_has_a_bar_per_variant():
    res = _results({name: [20.0 + i, 20.5 + i] for i, name in enumerate(ta.VARIANTS)})
    fig = ta.toy_ablation_figure(res)
    bars = sum(len(ax.patches) for ax in fig.axes)
    assert bars == len(ta.VARIANTS) and all(ax.get_ylabel().startswith("PSNR (dB") for ax in fig.axes)
    import matplotlib.pyplot as plt
    plt.close(fig)
