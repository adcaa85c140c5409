"""Build the parity fixtures in ``tests/fixtures/parity/`` by running the reference EDVR (BasicSR 1.4.2).

Developer script, not a runtime or test dependency. Run from the repository root::

    .venv/bin/python -m tools.reference.make_fixtures

It creates the throwaway reference environment (:mod:`tools.reference.env`), then re-runs itself inside it
(``--worker``). The worker builds BasicSR's ``EDVR`` for each variant below, fills it with
:func:`tools.reference.seeded_weights.seeded_state_dict` (non-zero ``conv_offset``, so offsets are a few
pixels), runs one forward on CPU on a seeded input and saves a plain-tensor fixture::

    {'variant', 'config' (BasicSR EDVR kwargs), 'seed', 'input' (b,t,3,h,w), 'output',
     'state_dict' (tiny_tsa only; others are rebuilt from the seed), 'checksums' {name: (sum, sum_sq)},
     'offset_absmean' {dcn: float},
     'versions' {...}}

``tests/archs/test_parity.py`` loads these with our EDVR and compares within 1e-5; no BasicSR needed there.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "tests" / "fixtures" / "parity"

_TINY = dict(num_feat=16, num_extract_block=2, num_reconstruct_block=2, deformable_groups=8)

# name -> (BasicSR EDVR kwargs, input shape (b, t, c, h, w), seed, store the weights in the file)
VARIANTS: dict[str, tuple[dict, tuple[int, ...], int, bool]] = {
    "tiny_tsa": (dict(_TINY, num_frame=5), (1, 5, 3, 16, 20), 101, True),
    "tiny_tsa_t3_ctr0": (dict(_TINY, num_frame=3, center_frame_idx=0), (2, 3, 3, 12, 16), 102, False),
    "tiny_wotsa": (dict(_TINY, num_frame=5, with_tsa=False), (1, 5, 3, 16, 16), 103, False),
    "tiny_predeblur": (dict(_TINY, num_frame=5, with_predeblur=True), (1, 5, 3, 16, 16), 104, False),
    "tiny_predeblur_hr_in": (dict(_TINY, num_frame=5, with_predeblur=True, hr_in=True), (1, 5, 3, 32, 48), 105, False),
    # Full EDVR-M (3.3 M parameters): weights regenerated from the seed; the file keeps only checksums.
    "edvr_m_full": (dict(num_feat=64, num_frame=5, num_extract_block=5, num_reconstruct_block=10),
                    (1, 5, 3, 16, 16), 106, False),
}


def _worker(out_dir: Path) -> None:
    """Runs inside the reference environment: only torch, basicsr and seeded_weights are used."""
    import basicsr
    import torch
    import torchvision
    from basicsr.archs.edvr_arch import EDVR as RefEDVR

    from tools.reference.seeded_weights import checksums, seeded_state_dict

    torch.set_grad_enabled(False)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, (kwargs, in_shape, seed, store) in VARIANTS.items():
        torch.manual_seed(seed)
        model = RefEDVR(**kwargs).eval()
        names_shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
        state = seeded_state_dict(names_shapes, seed)
        model.load_state_dict(state, strict=True)
        x = torch.rand(in_shape, generator=torch.Generator().manual_seed(seed + 1000))

        stats, hooks = {}, []
        for mod_name, module in model.named_modules():
            if mod_name.endswith("temporal_attn1") or mod_name.endswith("temporal_attn2"):
                def thook(_m, _a, out, mod_name=mod_name, stats=stats):
                    stats.setdefault(mod_name, []).append(out.detach().clone())
                hooks.append(module.register_forward_hook(thook))
            if mod_name.endswith("conv_offset"):
                def hook(_m, _a, out, mod_name=mod_name, stats=stats):
                    o1, o2, _ = torch.chunk(out, 3, dim=1)
                    stats.setdefault(mod_name, []).append(float(torch.cat([o1, o2], 1).abs().mean()))
                hooks.append(module.register_forward_hook(hook))
        out = model(x)
        for h in hooks:
            h.remove()
        # Spread of the temporal attention (sigmoid of the correlation), to show it is not stuck at 0.5.
        attn_spread = None
        if "fusion.temporal_attn1" in stats:
            ref_emb, emb = stats.pop("fusion.temporal_attn1")[0], stats.pop("fusion.temporal_attn2")[0]
            emb = emb.view(in_shape[0], in_shape[1], *emb.shape[1:])
            prob = torch.sigmoid((emb * ref_emb.unsqueeze(1)).sum(2))
            attn_spread = [float(prob.min()), float(prob.mean()), float(prob.max())]
        ctr = kwargs.get("center_frame_idx") or kwargs["num_frame"] // 2
        base = x[:, ctr] if kwargs.get("hr_in") else torch.nn.functional.interpolate(
            x[:, ctr], scale_factor=4, mode="bilinear", align_corners=False)
        fixture = {
            "variant": name, "config": dict(kwargs), "seed": seed, "input": x, "output": out.contiguous(),
            "checksums": checksums(state), "offset_absmean": {k: sum(v) / len(v) for k, v in stats.items()},
            "temporal_attn_min_mean_max": attn_spread,
            "versions": {"basicsr": str(basicsr.__version__), "torch": str(torch.__version__),
                         "torchvision": str(torchvision.__version__)},
        }
        if store:
            fixture["state_dict"] = state
        torch.save(fixture, out_dir / f"{name}.pt")
        print(json.dumps({"variant": name, "out_shape": list(out.shape), "out_absmean": float(out.abs().mean()),
                          "residual_absmean": float((out - base).abs().mean()),
                          "temporal_attn_min_mean_max": attn_spread,
                          "offset_absmean": {k.split(".", 1)[1]: round(sum(v) / len(v), 3) for k, v in stats.items()}}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default tests/fixtures/parity)")
    args = parser.parse_args(argv)
    if args.worker:
        _worker(args.worker)
        return 0
    from tools.reference.env import ensure_reference

    python, env = ensure_reference(quiet=False)
    env["PYTHONPATH"] = env["PYTHONPATH"] + ":" + str(REPO)
    subprocess.run([python, "-m", "tools.reference.make_fixtures", "--worker", str(args.out)], env=env, cwd=REPO,
                   check=True)
    total = sum(p.stat().st_size for p in args.out.glob("*.pt"))
    print(f"wrote {len(list(args.out.glob('*.pt')))} fixtures to {args.out} ({total / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
