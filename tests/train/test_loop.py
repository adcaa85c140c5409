"""The training loop: run folder, recipe timing (scheduler, TSA-only stage, EMA), pretrained init, guard, bad input.

Tiny settings throughout (num_feat 8, 3 frames, 8x8 LQ patches, a few iterations) on the smoke embedded set or on
explicit random batches.
"""
import errno
import json
import math
from pathlib import Path

import pytest
import torch

import edvr_lib.losses
from edvr_lib.train import state as state_mod
from edvr_lib.train.options import load_options
from edvr_lib.train.trainer import run_train, train
from edvr_lib.utils import EDVRError
from tests.train.tiny_run import CONFIG, leftovers, options, quiet, random_batches, states, tiny_options

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_folder(embedded_smoke_root, tmp_path):
    opt = options(embedded_smoke_root, "logger.use_tb_logger=true", val=True)
    messages = []
    summary = train(opt, tmp_path / "run", device="cpu", log=messages.append)
    run = tmp_path / "run"
    assert summary["iter"] == 6 and not summary["interrupted"] and set(summary["losses"]) == set(range(1, 7))
    for name in ("net_g_3.pth", "net_g_6.pth", "net_g_latest.pth"):
        net = torch.load(run / "models" / name, weights_only=True)
        assert {"params", "params_ema", "options", "config"} <= set(net)
    latest, last = (torch.load(run / "models" / f, weights_only=True)["params_ema"]["conv_last.bias"]
                    for f in ("net_g_latest.pth", "net_g_6.pth"))
    assert torch.equal(latest, last)
    from edvr_lib import load_pretrained

    model = load_pretrained(run / "models" / "net_g_latest.pth")  # EMA weights, config from the file
    assert model.conv_first.out_channels == 8
    assert sorted(states(run)) == [3, 6] and (run / "training_states" / "latest.state").exists()
    assert load_options(run / "options.yml")[0] == opt
    log = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    assert [e["iter"] for e in log] == list(range(1, 7))
    assert all({"loss", "lr", "offset_mean", "offset_max", "it_per_s"} <= set(e) for e in log)
    assert [e["loss"] for e in log] == [summary["losses"][k] for k in range(1, 7)]
    val = [e for e in log if "val_psnr" in e]
    assert [e["iter"] for e in val] == [3, 6] and all({"val_ssim", "bicubic_psnr"} <= set(e) for e in val)
    assert any("val PSNR" in m and "bicubic" in m for m in messages)
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert any("tensorboard is not installed" in m for m in messages)
    else:
        assert list((run / "tb_logger").glob("events.out.tfevents.*"))
    assert not leftovers(run)


def test_schedule_timing_tsa_stage_and_ema(embedded_smoke_root, tmp_path, monkeypatch):
    """Iteration k trains with scheduler epoch k - 1; only 'fusion' trains before tsa_iter (grads None, no Adam
    state for the rest); EMA = d * EMA + (1 - d) * param over every parameter after every step."""
    opt = options(embedded_smoke_root, "train.tsa_iter=3", "train.total_iter=4", "logger.save_checkpoint_freq=1")
    grads_none = []

    class SpyAdam(torch.optim.Adam):
        def step(self, closure=None):
            grads_none.append({n: p.grad is None for n, p in names.items()})
            return super().step(closure)

    build = state_mod.build_optimizer

    def spy_build(model, train_opt):
        names.update(dict(model.named_parameters()))
        return SpyAdam(model.parameters(), **{k: v for k, v in train_opt.optim_g.to_dict().items() if k != "type"})

    names = {}
    monkeypatch.setattr(state_mod, "build_optimizer", spy_build)
    summary = train(opt, tmp_path / "run", device="cpu", batches=random_batches(4), log=quiet())
    monkeypatch.setattr(state_mod, "build_optimizer", build)
    base, eta = 4e-4, 1e-7
    for k in range(1, 5):
        epoch = k - 1  # cycle 0: epochs 0..3 (period 3), cycle 1 from epoch 4
        expected = eta + 0.5 * (base - eta) * (1 + math.cos(math.pi * epoch / 3))
        assert summary["lrs"][k] == pytest.approx([expected], rel=1e-12)
    fusion = {n for n in names if "fusion" in n}
    assert [sorted(n for n, none in g.items() if not none) for g in grads_none] == \
        [sorted(fusion)] * 2 + [sorted(names)] * 2
    st = states(tmp_path / "run")
    order = list(names)
    for k, expected in ((1, fusion), (2, fusion), (3, set(names)), (4, set(names))):
        assert {order[i] for i in st[k]["optimizer"]["state"]} == expected
    state_mod.seed_everything(opt.manual_seed)  # as the trainer: the weights before iteration 1
    init = state_mod.init_state(opt, torch.device("cpu"), quiet())
    for n, p in init.model.named_parameters():
        assert torch.equal(st[2]["params"][n], p.detach()) == (n not in fusion), n
    d = opt.train.ema_decay
    for k in range(2, 5):
        for n in names:
            expected = st[k - 1]["params_ema"][n].mul(d).add(st[k]["params"][n], alpha=1 - d)
            assert torch.equal(st[k]["params_ema"][n], expected), (k, n)


class StopAt:
    """Stands in for distributed.StopRequest: requests a stop once ``n`` iterations have asked."""

    def __init__(self, n):
        self.n, self.asked = n, 0

    def __call__(self, log):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def requested(self):
        self.asked += 1
        return self.asked >= self.n


def test_stop_and_resume_inside_tsa_stage_is_exact(embedded_smoke_root, tmp_path, monkeypatch):
    """Stopped at iteration 2 of a TSA-only stage lasting to 4: the resumed run keeps the freeze (BasicSR does
    not) and ends bit-identical to the uninterrupted run, data stream included."""
    opt = options(embedded_smoke_root, "train.tsa_iter=4", "train.total_iter=5", "logger.save_checkpoint_freq=5")
    full = train(opt, tmp_path / "full", device="cpu", log=quiet())
    from edvr_lib.train import distributed

    monkeypatch.setattr(distributed, "StopRequest", StopAt(2))
    messages = []
    part = train(opt, tmp_path / "part", device="cpu", log=messages.append)
    assert part["interrupted"] and part["iter"] == 2 and any("stopped at iteration 2" in m for m in messages)
    monkeypatch.undo()
    with pytest.raises(EDVRError, match="already holds a training run"):
        train(opt, tmp_path / "part", device="cpu", log=quiet())
    rest = train(opt, tmp_path / "part", device="cpu", resume=True, log=quiet())
    assert {**part["losses"], **rest["losses"]} == full["losses"]
    a, b = states(tmp_path / "full")[5], torch.load(tmp_path / "part" / "training_states" / "latest.state",
                                                      weights_only=True)
    for key in ("params", "params_ema"):
        assert all(torch.equal(a[key][n], b[key][n]) for n in a[key])
    resumed_3 = states(tmp_path / "part")
    assert sorted(resumed_3) == [2, 5]
    logged = [json.loads(line)["iter"] for line in (tmp_path / "part" / "train_log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]


def _save_params(path, model, key="params"):
    torch.save({key: model.state_dict()}, path)


def test_pretrained_init(embedded_smoke_root, tmp_path):
    from edvr_lib.archs import EDVRConfig, build_edvr

    small = dict(num_feat=8, num_frame=3, deformable_groups=2, num_extract_block=1, num_reconstruct_block=1)
    wotsa = build_edvr(EDVRConfig(**small, with_tsa=False))
    _save_params(tmp_path / "wotsa.pth", wotsa)
    opt = options(embedded_smoke_root, f"path.pretrain_network_g={tmp_path / 'wotsa.pth'}", "path.strict_load_g=false")
    messages = []
    st = state_mod.init_state(opt, torch.device("cpu"), messages.append)
    assert any("not in the file (kept at random init): 26 keys (fusion." in m and
               "not in the model (ignored): 2 keys (fusion.weight, fusion.bias)" in m for m in messages), messages
    for n, p in wotsa.state_dict().items():
        if n != "fusion.weight" and n != "fusion.bias":
            assert torch.equal(st.model.state_dict()[n], p) and torch.equal(st.ema.state_dict()[n], p), n
    # params_ema of the file initialises the EMA
    full = build_edvr(EDVRConfig(**small))
    other = build_edvr(EDVRConfig(**small))
    torch.save({"params": full.state_dict(), "params_ema": other.state_dict()}, tmp_path / "both.pth")
    opt = options(embedded_smoke_root, f"path.pretrain_network_g={tmp_path / 'both.pth'}")
    st = state_mod.init_state(opt, torch.device("cpu"), quiet())
    assert torch.equal(st.model.conv_last.weight, full.conv_last.weight)
    assert torch.equal(st.ema.conv_last.weight, other.conv_last.weight)
    # strict loading of a woTSA file, and a file of another width
    opt = options(embedded_smoke_root, f"path.pretrain_network_g={tmp_path / 'wotsa.pth'}", "path.strict_load_g=true")
    with pytest.raises(EDVRError, match="strict_load_g: false"):
        train(opt, tmp_path / "a", device="cpu", batches=random_batches(6), log=quiet())
    _save_params(tmp_path / "wide.pth", build_edvr(EDVRConfig(**{**small, "num_feat": 16})))
    opt = options(embedded_smoke_root, f"path.pretrain_network_g={tmp_path / 'wide.pth'}", "path.strict_load_g=false")
    with pytest.raises(EDVRError, match="wrong shapes"):
        train(opt, tmp_path / "b", device="cpu", batches=random_batches(6), log=quiet())


def test_dcn_lr_mul_grad_clip_and_amp_on_cpu(embedded_smoke_root, tmp_path, monkeypatch):
    opt = options(embedded_smoke_root, "train.dcn_lr_mul=0.5", "train.grad_clip=0.5", "train.amp=fp16",
                  "train.total_iter=2")
    norms = []
    clip = torch.nn.utils.clip_grad_norm_

    def spy(params, max_norm, *a, **k):
        params = list(params)
        norms.append((max_norm, all(p.grad is not None for p in params)))
        return clip(params, max_norm, *a, **k)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", spy)
    messages = []
    summary = train(opt, tmp_path / "run", device="cpu", batches=random_batches(2), log=messages.append)
    assert norms == [(0.5, True)] * 2
    assert summary["lrs"][1] == pytest.approx([4e-4, 2e-4])
    assert any("train.amp='fp16' needs CUDA" in m and "float32" in m for m in messages)
    groups = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)["optimizer"]
    names = list(summary["model"].state_dict())
    assert len(groups["param_groups"][1]["params"]) == sum("dcn" in n for n in names)


@pytest.mark.parametrize("native", [False, True])
def test_bf16_amp_on_cpu_keeps_weights_dcn_and_checkpoints_float32(embedded_smoke_root, tmp_path, monkeypatch, native):
    """``train.amp: bf16`` on a CPU: autocast runs, the DCNs and the loss stay float32, so do weights and files."""
    from edvr_lib.archs.blocks import DCNv2Pack
    from edvr_lib.ops import policy

    monkeypatch.setattr(policy, "cpu_bf16_support", lambda: (native, "test CPU"))
    dtypes = {"dcn": set(), "conv": set(), "loss": set()}
    charbonnier = edvr_lib.losses.charbonnier

    def spy_loss(pred, *a, **k):
        dtypes["loss"].add(pred.dtype)
        return charbonnier(pred, *a, **k)

    monkeypatch.setattr(edvr_lib.losses, "charbonnier", spy_loss)
    kinds = {DCNv2Pack: "dcn", torch.nn.Conv2d: "conv"}

    def record(module, _args, out):  # the output dtype of every DCN pack and plain conv while training
        if type(module) in kinds and module.training:
            dtypes[kinds[type(module)]].add(out.dtype)

    handles = [torch.nn.modules.module.register_module_forward_hook(record)]
    opt = options(embedded_smoke_root, "train.amp=bf16", "train.total_iter=2")
    messages = []
    try:
        summary = train(opt, tmp_path / "run", device="cpu", batches=random_batches(2), log=messages.append)
    finally:
        for h in handles:
            h.remove()
    assert all(math.isfinite(v) for v in summary["losses"].values())
    assert dtypes == {"dcn": {torch.float32}, "conv": {torch.bfloat16}, "loss": {torch.float32}}
    emulated = [m for m in messages if "emulated" in m]
    assert len(emulated) == (0 if native else 1) and all("fp32" in m for m in emulated)
    assert {p.dtype for p in summary["model"].parameters()} == {torch.float32}
    latest = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)
    assert latest["scaler"] is None
    saved = [v for v in latest["optimizer"]["state"].values()]
    assert saved and {t.dtype for s in saved for k, t in s.items() if k != "step"} == {torch.float32}
    net = torch.load(tmp_path / "run" / "models" / "net_g_latest.pth", weights_only=True)
    assert {v.dtype for v in net["params"].values()} == {torch.float32}


def nan_loss_on_calls(monkeypatch, bad_calls: set[int]) -> None:
    """From now on the Charbonnier loss is NaN on its ``bad_calls``-th calls (1-based)."""
    calls = {"n": 0}
    real = edvr_lib.losses.charbonnier

    def flaky(pred, target, eps, reduction):
        calls["n"] += 1
        loss = real(pred, target, eps, reduction)
        return loss * float("nan") if calls["n"] in bad_calls else loss

    monkeypatch.setattr(edvr_lib.losses, "charbonnier", flaky)


def test_guard_rolls_back_and_lowers_lr(embedded_smoke_root, tmp_path, monkeypatch):
    # checks every iteration: the state after step 2 is confirmed good by the healthy check of iteration 3
    opt = options(embedded_smoke_root, "train.guard.enabled=true", "logger.print_freq=1")
    ref = train(opt, tmp_path / "ref", device="cpu", batches=random_batches(6), log=quiet())
    nan_loss_on_calls(monkeypatch, {4})
    messages = []
    summary = train(opt, tmp_path / "run", device="cpu", batches=random_batches(6), log=messages.append)
    assert summary["rollbacks"] == 1 and summary["iter"] == 6
    assert any(m.startswith("guard: loss is nan at iteration 4; rolled back to iteration 2") for m in messages)
    # iterations 1-2 as before; from 3 on (replayed from the state of 2) the whole schedule at half the rate
    assert [summary["losses"][k] for k in (1, 2)] == [ref["losses"][k] for k in (1, 2)]
    for k in (3, 4, 5, 6):
        assert summary["lrs"][k][0] == pytest.approx(0.5 * ref["lrs"][k][0], rel=1e-12)
    latest = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)
    assert latest["guard"]["lr_scale"] == 0.5


def test_guard_rollbacks_in_a_row_lower_the_lr_further(embedded_smoke_root, tmp_path, monkeypatch):
    """Two failures in a row: the second retry runs at lr x0.25 (not x0.5 again), as the log and the state say."""
    opt = options(embedded_smoke_root, "train.guard.enabled=true", "logger.print_freq=1")
    ref = train(opt, tmp_path / "ref", device="cpu", batches=random_batches(6), log=quiet())
    nan_loss_on_calls(monkeypatch, {4, 5})  # iteration 4, then its first retry (iteration 3)
    messages = []
    summary = train(opt, tmp_path / "run", device="cpu", batches=random_batches(6), log=messages.append)
    assert summary["rollbacks"] == 2 and summary["iter"] == 6
    assert sum("rolled back to iteration 2" in m for m in messages) == 2
    for k in (3, 4, 5, 6):
        assert summary["lrs"][k][0] == pytest.approx(0.25 * ref["lrs"][k][0], rel=1e-12)
    latest = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)
    assert latest["guard"]["lr_scale"] == 0.25


def test_guard_offsets_and_giving_up(embedded_smoke_root, tmp_path, monkeypatch):
    import edvr_lib.introspect

    opt = options(embedded_smoke_root, "train.guard.enabled=true", "train.guard.max_retries=2", "logger.print_freq=2")
    calls = {"n": 0}

    def exploding(means):
        calls["n"] += 1
        return {"pcd_align.dcn_pack.l1": 1e3 if calls["n"] == 2 else 0.5}

    monkeypatch.setattr(edvr_lib.introspect, "offset_stats", exploding)
    messages = []
    summary = train(opt, tmp_path / "offsets", device="cpu", batches=random_batches(6), log=messages.append)
    assert summary["rollbacks"] == 1 and any("DCN offsets" in m and "offset_limit 50" in m for m in messages)
    # the state kept at iteration 2 was never confirmed by a later check (the offsets a check sees come from the
    # weights before its step), so the guard goes back to the last confirmed one: the start
    assert any("rolled back to iteration 0" in m for m in messages)
    monkeypatch.undo()
    # a batch that is NaN at iteration 3 every time: two rollbacks, then one clear error
    batches = random_batches(6)
    batches[2]["lq"][0, 0, 0, 0, 0] = float("nan")
    with pytest.raises(EDVRError, match=r"diverged at iteration 3 .*after 2 rollbacks.*Fix: lower"):
        train(opt, tmp_path / "nan", device="cpu", batches=batches, log=quiet())
    opt.train.guard.enabled = False
    with pytest.raises(EDVRError, match=r"diverged at iteration 3: loss is nan.*turn on train.guard"):
        train(opt, tmp_path / "off", device="cpu", batches=batches, log=quiet())
    assert states(tmp_path / "off") == {}  # nothing half-written


def test_full_disk_keeps_the_previous_checkpoint(embedded_smoke_root, tmp_path, monkeypatch):
    opt = options(embedded_smoke_root, "train.total_iter=4", "logger.save_checkpoint_freq=2")
    real = torch.save

    def full_disk(obj, f, *a, **k):
        if "4" in Path(f).name.split(".")[1]:  # temp names: .net_g_4.pth.XXXX.pth
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(EDVRError, match=r"could not write .*net_g_4\.pth \(No space left on device\); the previous "
                                        r"checkpoint .*latest\.state is still valid\. Fix: free disk space"):
        train(opt, tmp_path / "run", device="cpu", batches=random_batches(4), log=quiet())
    monkeypatch.undo()
    run = tmp_path / "run"
    assert torch.load(run / "training_states" / "latest.state", weights_only=True)["iter"] == 2
    assert sorted(p.name for p in (run / "models").iterdir()) == ["net_g_2.pth", "net_g_latest.pth"]
    assert not leftovers(run)
    summary = train(opt, run, device="cpu", batches=random_batches(4), resume=True, log=quiet())
    assert summary["iter"] == 4 and sorted(summary["losses"]) == [3, 4]


def test_bad_input_is_one_clear_error(embedded_smoke_root, tmp_path):
    cases = [(["datasets.train.batch_size_per_gpu=64"], r"batch_size_per_gpu=64 .* larger than the dataset \(40 "),
             (["datasets.train.gt_size=160"], r"gt_size=160 needs LQ frames of at least 40x40 but clip "
                                              r"'syn_translate_astronaut' has 32x32. Fix: use a smaller gt_size"),
             ([f"datasets.train.dataroot_gt={tmp_path / 'nowhere'}"], r"dataroot_gt does not exist: .*nowhere")]
    for sets, pattern in cases:
        with pytest.raises(EDVRError, match=pattern):
            train(options(embedded_smoke_root, *sets), tmp_path / "bad", device="cpu", log=quiet())
    assert not (tmp_path / "bad" / "training_states").exists()
    train(options(embedded_smoke_root, "train.total_iter=1"), tmp_path / "run", device="cpu",
          batches=random_batches(1), log=quiet())
    other = options(embedded_smoke_root, "train.total_iter=1", "train.optim_g.lr=2e-4")
    with pytest.raises(EDVRError, match=r"other options \(train.optim_g.lr: 0.0004 -> 0.0002\).*options\.yml"):
        train(other, tmp_path / "run", device="cpu", resume=True, batches=random_batches(1), log=quiet())
    with pytest.raises(EDVRError, match="batches holds 1 batches but training runs to iteration 2"):
        train(options(embedded_smoke_root, "train.total_iter=2"), tmp_path / "few", device="cpu",
              batches=random_batches(1), log=quiet())


def test_run_train_from_the_config(embedded_smoke_root, tmp_path, capsys):
    rc = run_train(CONFIG, tmp_path / "run", overrides=tiny_options(embedded_smoke_root, "train.total_iter=2"),
                   device="cpu")
    assert rc == 0 and "done: iteration 2" in capsys.readouterr().out
    assert (tmp_path / "run" / "models" / "net_g_2.pth").exists()


def test_without_tensorboard_one_message(embedded_smoke_root, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if not installed
    messages = []
    opt = options(embedded_smoke_root, "train.total_iter=2", "logger.use_tb_logger=true")
    train(opt, tmp_path / "run", device="cpu", batches=random_batches(2), log=messages.append)
    assert sum("tensorboard is not installed" in m for m in messages) == 1
    assert not (tmp_path / "run" / "tb_logger").exists() and (tmp_path / "run" / "train_log.jsonl").exists()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_amp_on_cuda(embedded_smoke_root, tmp_path, amp):
    opt = options(embedded_smoke_root, "train.total_iter=3", f"train.amp={amp}", "train.grad_clip=10")
    summary = train(opt, tmp_path / "run", device="cuda", batches=random_batches(3), log=quiet())
    assert all(math.isfinite(v) for v in summary["losses"].values())
    latest = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)
    assert (latest["scaler"] is not None) == (amp == "fp16")
    assert next(summary["model"].parameters()).dtype == torch.float32
