"""Build the training-parity fixture ``tests/fixtures/train_parity/`` by running BasicSR 1.4.2's own training.

Developer script, not a runtime or test dependency. Run from the repository root::

    .venv/bin/python -m tools.reference.make_train_fixture

It creates the throwaway reference environment (:mod:`tools.reference.env`), then, in a temporary folder:

1. builds a tiny REDS-layout dataset (clips ``001`` and ``002``: BasicSR's ``REDSDataset`` assumes 100 frames
   per clip and ``val_partition: REDS4`` drops clip ``000``), GT 64x64 PNG, LQ 16x16 (``cv2.INTER_AREA`` x4),
   smooth seeded textures shifted by a known motion per frame, and a meta info file ``001 100 (64,64,3)``;
2. builds the pretrain checkpoint ``{'params': ...}`` with the reference's own ``EDVR`` class (seeded init;
   ``conv_offset`` weights N(0, 1e-3) and biases N(0, 1e-2), so the deformable offsets are small but non-zero);
3. writes a BasicSR v1.4.2 option file per variant (the structure and key names of
   ``options/train/EDVR/train_EDVR_M_x4_SR_REDS.yml``, sized down; ``dcn_lr_mul`` 1 and 0.5);
4. runs ``basicsr.train.train_pipeline`` in a fresh subprocess per variant (``--worker``), CPU, ``num_gpu: 0``.
   Nothing in basicsr is edited: the worker wraps ``SRModel.optimize_parameters`` (records the batch, the lr of
   each parameter group, ``requires_grad``, the exact ``l_pix`` float, which parameters got a gradient / changed
   / got Adam state, float64 checksums of the weights and the EMA) and ``basicsr.train.build_model`` (to read
   the final ``net_g``, ``net_g_ema`` and Adam state). ``train_pipeline`` is given the temporary folder as its
   ``root_path``, so ``experiments/<name>/`` lands there (``python basicsr/train.py`` would put it next to the
   package, i.e. in ``.reference_venv/site/experiments``); the worker checks that nothing was written into the
   reference site-packages and removes what it wrote there if anything;
5. saves the fixture (format: ``tests/fixtures/train_parity/README.md``) and checks it from the project side:
   ``edvr_lib.load_pretrained(pretrain.pth)`` loads strict and the project's EDVR + ``charbonnier(eps=1e-12,
   reduction='sum')`` on batch 1 gives the recorded iteration-1 loss.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT_DIR = REPO / "tests" / "fixtures" / "train_parity"

NET_G = dict(type="EDVR", num_in_ch=3, num_out_ch=3, num_feat=8, num_frame=5, deformable_groups=2,
             num_extract_block=1, num_reconstruct_block=1, center_frame_idx=2, hr_in=False, with_predeblur=False,
             with_tsa=True)
PRETRAIN_SEED = 20240
DATA_SEED = 7
CLIPS = ("001", "002")
NUM_FRAMES = 100  # REDSDataset hard-codes 0..99
GT_SIZE_FULL, SCALE = 64, 4
PATH_PLACEHOLDER = "${DATA_ROOT}"
PRETRAIN_PLACEHOLDER = "${FIXTURE_DIR}/pretrain.pth"

# variant -> dcn_lr_mul. 'main' is the recipe of the brief; 'dcn_lr_mul_0.5' only changes the parameter groups.
VARIANTS = {"main": 1, "dcn_lr_mul_0.5": 0.5}

# The option file, BasicSR v1.4.2 layout (options/train/EDVR/train_EDVR_M_x4_SR_REDS.yml), tiny sizes.
# No datasets.val / val: BasicSR then trains without validation. No 'debug' in the name (it would force
# save_checkpoint_freq 8).
OPTIONS_TEMPLATE = """\
# general settings
name: {name}
model_type: EDVRModel
scale: 4
num_gpu: 0  # cpu mode
manual_seed: 10

# dataset and data loader settings
datasets:
  train:
    name: REDS
    type: REDSDataset
    dataroot_gt: {data_root}/train_sharp
    dataroot_lq: {data_root}/train_sharp_bicubic
    dataroot_flow: ~
    meta_info_file: {data_root}/meta_info_REDS_GT.txt
    val_partition: REDS4  # set to 'official' when use the official validation partition
    io_backend:
      type: disk

    num_frame: 5
    gt_size: 32
    interval_list: [1]
    random_reverse: false
    use_hflip: true
    use_rot: true

    # data loader
    num_worker_per_gpu: 0
    batch_size_per_gpu: 2
    dataset_enlarge_ratio: 1
    prefetch_mode: ~

# network structures
network_g:
  type: EDVR
  num_in_ch: 3
  num_out_ch: 3
  num_feat: 8
  num_frame: 5
  deformable_groups: 2
  num_extract_block: 1
  num_reconstruct_block: 1
  center_frame_idx: 2
  hr_in: false
  with_predeblur: false
  with_tsa: true

# path
path:
  pretrain_network_g: {pretrain}
  strict_load_g: false
  resume_state: ~

# training settings
train:
  ema_decay: 0.9
  optim_g:
    type: Adam
    lr: !!float 4e-4
    weight_decay: 0
    betas: [0.9, 0.99]

  scheduler:
    type: CosineAnnealingRestartLR
    periods: [3, 4, 5]
    restart_weights: [1, 0.5, 0.5]
    eta_min: !!float 1e-7

  total_iter: 12
  warmup_iter: -1  # no warm up
  tsa_iter: 3
  dcn_lr_mul: {dcn_lr_mul}

  # losses
  pixel_opt:
    type: CharbonnierLoss
    loss_weight: 1.0
    reduction: sum

# logging settings
logger:
  print_freq: 1
  save_checkpoint_freq: !!float 5e3
  use_tb_logger: false
  wandb:
    project: ~
    resume_id: ~

# dist training settings
dist_params:
  backend: nccl
  port: 29500

find_unused_parameters: true
"""


def options_text(variant: str, data_root: str, pretrain: str) -> str:
    name = "train_parity_EDVR_tiny" + ("" if variant == "main" else "_" + variant.replace(".", "p"))
    return OPTIONS_TEMPLATE.format(name=name, data_root=data_root, pretrain=pretrain, dcn_lr_mul=VARIANTS[variant])


# ----------------------------------------------------------------------------------------------------------------
# Steps 1-2, inside the reference environment
# ----------------------------------------------------------------------------------------------------------------

def make_dataset(root: Path) -> None:
    """2 clips x 100 frames: a seeded smooth texture translated by (1.0, 0.5) GT pixels per frame, plus noise."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(DATA_SEED)
    big = 256
    (root / "train_sharp").mkdir(parents=True, exist_ok=True)
    (root / "train_sharp_bicubic").mkdir(parents=True, exist_ok=True)
    lines = []
    for c, clip in enumerate(CLIPS):
        coarse = rng.random((big // 16, big // 16, 3)).astype(np.float32)
        fine = rng.random((big // 4, big // 4, 3)).astype(np.float32)
        tex = (0.7 * cv2.resize(coarse, (big, big), interpolation=cv2.INTER_CUBIC)
               + 0.3 * cv2.resize(fine, (big, big), interpolation=cv2.INTER_CUBIC))
        tex = np.clip(tex, 0, 1)
        gt_dir, lq_dir = root / "train_sharp" / clip, root / "train_sharp_bicubic" / clip
        gt_dir.mkdir(exist_ok=True)
        lq_dir.mkdir(exist_ok=True)
        for t in range(NUM_FRAMES):
            # sub-pixel motion via an affine warp of the texture (wrapping), deterministic
            dx, dy = 1.0 * t * (1 + c), 0.5 * t
            m = np.float32([[1, 0, -dx], [0, 1, -dy]])
            frame = cv2.warpAffine(tex, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
            gt = frame[32:32 + GT_SIZE_FULL, 48:48 + GT_SIZE_FULL]
            gt8 = np.clip(np.round(gt * 255 + rng.normal(0, 2, gt.shape)), 0, 255).astype(np.uint8)
            lq8 = cv2.resize(gt8, (GT_SIZE_FULL // SCALE, GT_SIZE_FULL // SCALE), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(gt_dir / f"{t:08d}.png"), gt8)
            cv2.imwrite(str(lq_dir / f"{t:08d}.png"), lq8)
        lines.append(f"{clip} {NUM_FRAMES} ({GT_SIZE_FULL},{GT_SIZE_FULL},3)\n")
    (root / "meta_info_REDS_GT.txt").write_text("".join(lines))


def make_pretrain(path: Path) -> dict:
    """The tiny TSA EDVR built by BasicSR's own class, seeded; conv_offset made small but non-zero."""
    import torch
    from basicsr.archs.edvr_arch import EDVR as RefEDVR

    kwargs = {k: v for k, v in NET_G.items() if k != "type"}
    torch.manual_seed(PRETRAIN_SEED)
    model = RefEDVR(**kwargs)
    gen = torch.Generator().manual_seed(PRETRAIN_SEED + 1)
    state = {}
    for name, value in model.state_dict().items():
        value = value.detach().clone().float().contiguous()
        if ".conv_offset." in name:
            std = 1e-3 if name.endswith("weight") else 1e-2
            value = torch.randn(value.shape, generator=gen) * std
        state[name] = value
    torch.save({"params": state}, path)
    return state


# ----------------------------------------------------------------------------------------------------------------
# Step 4: one training run, inside the reference environment (a fresh process per variant)
# ----------------------------------------------------------------------------------------------------------------

def run_reference_training(opt_path: Path, root_path: Path, result_path: Path) -> None:
    import basicsr
    import basicsr.train as btrain
    import torch
    import torchvision
    from basicsr.models.sr_model import SRModel

    site = Path(basicsr.__file__).resolve().parents[1]
    site_before = set(os.listdir(site))
    captured: dict = {}
    rec: dict[str, list] = {k: [] for k in (
        "lq", "gt", "l_pix", "lr", "scheduler_last_epoch", "requires_grad_count", "grad_count", "changed_count",
        "adam_state_count", "frozen_ema_changed_count", "param_checksum", "ema_checksum")}

    orig_build_model = btrain.build_model

    def build_model(opt):
        model = orig_build_model(opt)
        captured["model"] = model
        captured["initial_params"] = {k: v.detach().clone() for k, v in model.net_g.state_dict().items()}
        captured["initial_ema"] = {k: v.detach().clone() for k, v in model.net_g_ema.state_dict().items()}
        captured["param_groups"] = [[_name_of(model.net_g, p) for p in g["params"]]
                                    for g in model.optimizer_g.param_groups]
        return model

    orig_optimize = SRModel.optimize_parameters

    def optimize_parameters(self, current_iter):
        # Runs after update_learning_rate, feed_data and EDVRModel's freeze / unfreeze for this iteration.
        assert current_iter == len(rec["l_pix"]) + 1
        named = dict(self.net_g.named_parameters())
        rec["lq"].append(self.lq.detach().clone())
        rec["gt"].append(self.gt.detach().clone())
        rec["lr"].append([float(g["lr"]) for g in self.optimizer_g.param_groups])
        rec["scheduler_last_epoch"].append(int(self.schedulers[0].last_epoch))
        frozen = [k for k, p in named.items() if not p.requires_grad]
        rec["requires_grad_count"].append(len(named) - len(frozen))
        before = {k: p.detach().clone() for k, p in named.items()}
        ema_before = {k: p.detach().clone() for k, p in self.net_g_ema.named_parameters()}
        orig_optimize(self, current_iter)
        rec["l_pix"].append(float(self.log_dict["l_pix"]))  # .item() of the float32 loss tensor: exact
        rec["grad_count"].append(sum(p.grad is not None for p in named.values()))
        rec["changed_count"].append(sum(not torch.equal(before[k], p) for k, p in named.items()))
        rec["adam_state_count"].append(sum(len(self.optimizer_g.state.get(p, {})) > 0 for p in named.values()))
        ema_now = dict(self.net_g_ema.named_parameters())
        rec["frozen_ema_changed_count"].append(sum(not torch.equal(ema_before[k], ema_now[k]) for k in frozen))
        rec["param_checksum"].append(sum(float(p.detach().double().sum()) for p in named.values()))
        rec["ema_checksum"].append(sum(float(p.detach().double().sum()) for p in ema_now.values()))

    btrain.build_model = build_model
    SRModel.optimize_parameters = optimize_parameters
    sys.argv = [str(site / "basicsr" / "train.py"), "-opt", str(opt_path)]
    btrain.train_pipeline(str(root_path))

    model = captured["model"]
    params = {k: v.detach().clone().contiguous() for k, v in model.net_g.state_dict().items()}
    params_ema = {k: v.detach().clone().contiguous() for k, v in model.net_g_ema.state_dict().items()}
    # What basicsr itself saved at the end must be what we read from memory.
    latest = next((root_path / "experiments").glob("*/models/net_g_latest.pth"))
    saved = torch.load(latest, map_location="cpu", weights_only=True)
    assert all(torch.equal(saved["params"][k], params[k]) for k in params), "saved params differ"
    assert all(torch.equal(saved["params_ema"][k], params_ema[k]) for k in params_ema), "saved params_ema differ"
    named = dict(model.net_g.named_parameters())
    adam_step = {}
    for k, p in named.items():
        st = model.optimizer_g.state.get(p, {})
        adam_step[k] = int(st["step"]) if "step" in st else 0
    result = {
        **rec,
        "params": params, "params_ema": params_ema, "adam_step": adam_step,
        "param_groups": captured["param_groups"],
        "initial_ema_equals_pretrain": all(torch.equal(captured["initial_ema"][k], captured["initial_params"][k])
                                           for k in params),
        "versions": {"basicsr": str(basicsr.__version__), "torch": str(torch.__version__),
                     "torchvision": str(torchvision.__version__), "python": sys.version.split()[0]},
    }
    torch.save(result, result_path)
    # python basicsr/train.py would have written experiments/ (and tb_logger/) next to the package: make sure
    # this run did not, and remove anything it added there.
    added = set(os.listdir(site)) - site_before
    for name in added:
        if name in ("experiments", "tb_logger", "results"):
            shutil.rmtree(site / name, ignore_errors=True)
    print(json.dumps({"site_packages_added": sorted(added)}))


def _name_of(net, param) -> str:
    return next(k for k, p in net.named_parameters() if p is param)


# ----------------------------------------------------------------------------------------------------------------
# Step 5: assemble the fixture (reference side) and step 6: check it (project side)
# ----------------------------------------------------------------------------------------------------------------

def build_fixture(out_dir: Path, python: str, env: dict, keep_tmp: bool = False) -> None:
    """Runs in the reference environment: data, pretrain, one subprocess per variant, then the fixture files."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="edvr_train_fixture_"))
    try:
        data_root = tmp / "REDS"
        make_dataset(data_root)
        pretrain_path = out_dir / "pretrain.pth"
        pretrain = make_pretrain(pretrain_path)
        runs = {}
        for variant in VARIANTS:
            root = tmp / f"run_{variant}"
            root.mkdir()
            opt_path = tmp / f"{variant}.yml"
            opt_path.write_text(options_text(variant, str(data_root), str(pretrain_path)))
            result_path = tmp / f"{variant}.pt"
            subprocess.run([python, "-m", "tools.reference.make_train_fixture", "--worker-train", str(opt_path),
                            str(root), str(result_path)], env=env, cwd=REPO, check=True)
            runs[variant] = torch.load(result_path, weights_only=False)
        main = runs["main"]
        # Identical data streams in both runs (the optimizer groups do not touch the data RNG).
        for variant, run in runs.items():
            assert all(torch.equal(a, b) for a, b in zip(run["lq"], main["lq"])), variant
            assert all(torch.equal(a, b) for a, b in zip(run["gt"], main["gt"])), variant
        (out_dir / "options.yml").write_text(options_text("main", PATH_PLACEHOLDER, PRETRAIN_PLACEHOLDER))
        (out_dir / "options_dcn_lr_mul_0.5.yml").write_text(
            options_text("dcn_lr_mul_0.5", PATH_PLACEHOLDER, PRETRAIN_PLACEHOLDER))
        torch.save([{"lq": lq.contiguous(), "gt": gt.contiguous()} for lq, gt in zip(main["lq"], main["gt"])],
                   out_dir / "batches.pt")
        for variant, run in runs.items():
            ref = {k: v for k, v in run.items() if k not in ("lq", "gt")}
            ref["basicsr_version"] = run["versions"]["basicsr"]
            ref["dcn_lr_mul"] = float(VARIANTS[variant])
            ref["pretrain_checksum"] = sum(float(v.double().sum()) for v in pretrain.values())
            name = "reference.pt" if variant == "main" else f"reference_{variant}.pt"
            if variant != "main":  # keep the fixture small: full tensors of the 'dcn' group only, checksums of all
                params = ref.pop("params")
                del ref["params_ema"]
                ref["params_dcn"] = {k: v for k, v in params.items() if "dcn" in k}
                ref["params_checksums"] = {k: [float(v.double().sum()), float(v.double().pow(2).sum())]
                                           for k, v in params.items()}
            torch.save(ref, out_dir / name)
        summary = {v: {"l_pix": r["l_pix"], "lr": r["lr"], "requires_grad_count": r["requires_grad_count"],
                       "grad_count": r["grad_count"], "changed_count": r["changed_count"],
                       "adam_state_count": r["adam_state_count"], "scheduler_last_epoch": r["scheduler_last_epoch"],
                       "frozen_ema_changed_count": r["frozen_ema_changed_count"],
                       "adam_step_values": sorted(set(r["adam_step"].values())),
                       "param_groups_sizes": [len(g) for g in r["param_groups"]],
                       "initial_ema_equals_pretrain": r["initial_ema_equals_pretrain"]} for v, r in runs.items()}
        print(json.dumps(summary, indent=1))
    finally:
        if keep_tmp:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def check_fixture(out_dir: Path) -> None:
    """Project side (.venv, no basicsr): pretrain loads strict; our EDVR + charbonnier reproduce l_pix[0]; the
    scheduler / freeze / EMA facts written in the README hold for the recorded values; a replay with edvr_lib's
    EDVR and plain torch, following those facts, reproduces the losses and weights."""
    os.environ.setdefault("EDVR_DCN_BACKEND", "torchvision")  # the reference's DCN kernel (read on first use)
    import torch

    from edvr_lib import load_pretrained
    from edvr_lib.losses import charbonnier

    import yaml

    for name in ("options.yml", "options_dcn_lr_mul_0.5.yml"):
        opt = yaml.safe_load((out_dir / name).read_text())
        assert opt["train"]["tsa_iter"] == 3 and opt["train"]["optim_g"]["lr"] == 4e-4, name
        assert opt["datasets"]["train"]["dataroot_gt"] == PATH_PLACEHOLDER + "/train_sharp", name
        assert opt["path"]["pretrain_network_g"] == PRETRAIN_PLACEHOLDER, name
    batches = torch.load(out_dir / "batches.pt", weights_only=True)
    assert len(batches) == 12 and all(b["lq"].shape == (2, 5, 3, 8, 8) and b["gt"].shape == (2, 3, 32, 32)
                                      and b["lq"].dtype == b["gt"].dtype == torch.float32 for b in batches)
    ref = torch.load(out_dir / "reference.pt", weights_only=True)
    pre = torch.load(out_dir / "pretrain.pth", weights_only=True)["params"]
    model = load_pretrained(out_dir / "pretrain.pth").train()
    with torch.no_grad():
        loss = float(charbonnier(model(batches[0]["lq"]), batches[0]["gt"], eps=1e-12, reduction="sum"))
    rel = abs(loss - ref["l_pix"][0]) / abs(ref["l_pix"][0])
    print(f"iteration-1 loss: reference {ref['l_pix'][0]!r}, edvr_lib {loss!r}, relative difference {rel:.2e}")
    assert rel < 1e-5, rel

    # The lr of iteration k is the scheduler formula at epoch k-1 (recomputed here independently).
    periods, weights, eta_min, base = [3, 4, 5], [1, 0.5, 0.5], 1e-7, 4e-4
    cum = [sum(periods[:i + 1]) for i in range(len(periods))]

    def cosine(e, base_lr):
        idx = next(i for i, c in enumerate(cum) if e <= c)
        start = 0 if idx == 0 else cum[idx - 1]
        return eta_min + weights[idx] * 0.5 * (base_lr - eta_min) * (1 + math.cos(math.pi * (e - start) / periods[idx]))

    for name, mul in (("reference.pt", 1.0), ("reference_dcn_lr_mul_0.5.pt", 0.5)):
        r = torch.load(out_dir / name, weights_only=True)
        bases = [base] if mul == 1 else [base, base * mul]
        for k, lrs in enumerate(r["lr"], start=1):
            want = [cosine(k - 1, b) for b in bases]
            assert len(lrs) == len(want) and all(
                math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-18) for a, b in zip(lrs, want)), (name, k, lrs, want)
        assert r["scheduler_last_epoch"] == list(range(12)), r["scheduler_last_epoch"]
    n_all = len(pre)
    n_fusion = sum("fusion" in k for k in pre)
    assert ref["requires_grad_count"] == [n_fusion, n_fusion] + [n_all] * 10, ref["requires_grad_count"]
    assert ref["adam_state_count"][:2] == [n_fusion, n_fusion] and ref["adam_state_count"][2:] == [n_all] * 10
    assert all((v == 12) == ("fusion" in k) and v in (10, 12) for k, v in ref["adam_step"].items())
    assert ref["changed_count"] == ref["grad_count"] == ref["requires_grad_count"]
    assert not any(torch.equal(ref["params"][k], pre[k]) for k in pre)  # every parameter moved by the end
    # EMA, checked on the recorded float64 sums: ema_k = 0.9 ema_{k-1} + 0.1 param_k (after the step of
    # iteration k), ema_0 = the pretrain; frozen parameters are included (their EMA moves by rounding only).
    ema_prev = ref["pretrain_checksum"]
    for k, (p_sum, e_sum) in enumerate(zip(ref["param_checksum"], ref["ema_checksum"]), start=1):
        want = 0.9 * ema_prev + 0.1 * p_sum
        assert math.isclose(e_sum, want, rel_tol=1e-6, abs_tol=1e-4), (k, e_sum, want)
        ema_prev = e_sum
    assert math.isclose(sum(float(v.double().sum()) for v in ref["params_ema"].values()), ref["ema_checksum"][-1],
                        rel_tol=1e-9)
    assert ref["frozen_ema_changed_count"][0] > 0 and ref["frozen_ema_changed_count"][2:] == [0] * 10
    # dcn_lr_mul 0.5: groups [non-dcn, 'dcn' in name]; same data, same loss until the first full step lands.
    r2 = torch.load(out_dir / "reference_dcn_lr_mul_0.5.pt", weights_only=True)
    assert r2["param_groups"][1] == [k for k in pre if "dcn" in k] and len(r2["param_groups"][0]) == n_all - len(
        r2["param_groups"][1])
    assert r2["l_pix"][:3] == ref["l_pix"][:3] and r2["l_pix"][3] != ref["l_pix"][3]
    print(f"checks passed ({n_all} parameters, {n_fusion} in fusion, {len(r2['param_groups'][1])} in the dcn group)")
    for mul, r in ((1.0, ref), (0.5, r2)):
        replay(out_dir, batches, r, mul, cosine)


def replay(out_dir: Path, batches: list, ref: dict, dcn_lr_mul: float, lr_at) -> None:
    """Re-train with edvr_lib's EDVR and plain torch following the README's rules; report the differences."""
    import torch

    from edvr_lib import load_pretrained
    from edvr_lib.losses import charbonnier

    net = load_pretrained(out_dir / "pretrain.pth").train()
    ema = {k: v.detach().clone() for k, v in net.named_parameters()}  # params_ema falls back to params
    named = dict(net.named_parameters())
    if dcn_lr_mul == 1:
        groups = [{"params": list(named.values()), "lr": 4e-4}]
    else:
        groups = [{"params": [p for k, p in named.items() if "dcn" not in k], "lr": 4e-4},
                  {"params": [p for k, p in named.items() if "dcn" in k], "lr": 4e-4 * dcn_lr_mul}]
    opt = torch.optim.Adam(groups, lr=4e-4, betas=(0.9, 0.99), weight_decay=0)
    base_lrs = [g["lr"] for g in opt.param_groups]
    losses = []
    for k, batch in enumerate(batches, start=1):
        for g, b in zip(opt.param_groups, base_lrs):
            g["lr"] = lr_at(k - 1, b)
        if k == 1:
            for name, p in named.items():
                p.requires_grad_("fusion" in name)
        elif k == 3:  # tsa_iter
            for p in named.values():
                p.requires_grad_(True)
        opt.zero_grad()
        loss = charbonnier(net(batch["lq"]), batch["gt"], eps=1e-12, reduction="sum")
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        with torch.no_grad():
            for name, p in named.items():
                ema[name].mul_(0.9).add_(p, alpha=0.1)
    rel = max(abs(a - b) / abs(b) for a, b in zip(losses, ref["l_pix"]))
    if "params" in ref:
        final = {k: p.detach() for k, p in named.items()}
        dp = max(float((final[k] - ref["params"][k]).abs().max()) for k in final)
        de = max(float((ema[k] - ref["params_ema"][k]).abs().max()) for k in ema)
        extra = f"max |params - ref| {dp:.2e}, max |params_ema - ref| {de:.2e}"
    else:
        dp = max(float((named[k].detach() - v).abs().max()) for k, v in ref["params_dcn"].items())
        extra = f"max |dcn params - ref| {dp:.2e}"
    steps = {k: int(opt.state[p]["step"]) for k, p in named.items()}
    assert steps == ref["adam_step"]
    print(f"replay with edvr_lib, dcn_lr_mul {dcn_lr_mul}: max relative loss difference {rel:.2e}, {extra}; "
          f"Adam steps match")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-train", nargs=3, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default tests/fixtures/train_parity)")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary data / experiments folder")
    parser.add_argument("--check-only", action="store_true", help="only run the project-side check of --out")
    args = parser.parse_args(argv)
    if args.worker_train:
        run_reference_training(*args.worker_train)
        return 0
    if args.worker:
        build_fixture(args.worker, sys.executable, dict(os.environ), keep_tmp=args.keep_tmp)
        return 0
    if not args.check_only:
        from tools.reference.env import ensure_reference

        python, env = ensure_reference(quiet=False)
        env["PYTHONPATH"] = env["PYTHONPATH"] + os.pathsep + str(REPO)
        cmd = [python, "-m", "tools.reference.make_train_fixture", "--worker", str(args.out)]
        subprocess.run(cmd + (["--keep-tmp"] if args.keep_tmp else []), env=env, cwd=REPO, check=True)
        total = sum(p.stat().st_size for p in args.out.iterdir() if p.is_file())
        print(f"wrote {args.out} ({total / 1e6:.2f} MB)")
    check_fixture(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
