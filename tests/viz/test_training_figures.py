"""Notebook 04's library side: training figures (edvr_lib.viz.training_figures) and the training demo
(edvr_lib.tutorial.training_demo).

Tiny runs of the real trainer (num_feat 8, 3 frames, a few iterations) on explicit random batches or the smoke
embedded set.
"""
import json
import signal
from pathlib import Path
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from edvr_lib.data import embedded_paths
from edvr_lib.train import train
from edvr_lib.train.options import load_options
from edvr_lib.tutorial import training_demo as td
from edvr_lib.utils import EDVRError
from edvr_lib.viz import training_figures as tf

CONFIGS = Path(__file__).parents[2] / "configs"
TINY = CONFIGS / "train_EDVR_tiny_embedded.yml"
M_STAGE2 = CONFIGS / "train_EDVR_M_x4_SR_REDS.yml"

pytestmark = pytest.mark.usefixtures("one_thread")


def quiet(_msg):
    pass


def tiny_opt(root, iters=6, *sets, val=False):
    items = td.notebook_overrides(TINY, embedded_paths(root), iters, iters, smoke=True, print_freq=1)
    if not val:
        items += ["val=~", "datasets.val=~"]
    return load_options(TINY, items + list(sets))[0]


def random_batches(n, seed=0, b=2, t=3, size=8):
    g = torch.Generator().manual_seed(seed)
    return [{"lq": torch.rand(b, t, 3, size, size, generator=g),
             "gt": torch.rand(b, 3, 4 * size, 4 * size, generator=g)} for _ in range(n)]


def labelled(fig):
    """Every axes of ``fig`` has a title and both axis labels, and the figure a suptitle or one titled axes."""
    for ax in fig.axes:
        assert ax.get_title() and ax.get_xlabel() and ax.get_ylabel(), ax
    return True


# ------------------------------------------------------------------------------------------- reading the log
def test_read_train_log_folder_file_and_errors(tmp_path):
    entries = [{"iter": 1, "loss": 3.0}, {"iter": 2, "loss": 2.0, "val_psnr": 25.0, "bicubic_psnr": 24.0}]
    (tmp_path / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in entries) + "\n")
    assert tf.read_train_log(tmp_path) == entries == tf.read_train_log(tmp_path / "train_log.jsonl")
    with pytest.raises(EDVRError, match="no training log at"):
        tf.read_train_log(tmp_path / "nowhere")
    (tmp_path / "train_log.jsonl").write_text('{"iter": 1}\n{oops\n')
    with pytest.raises(EDVRError, match="line 2 is not JSON"):
        tf.read_train_log(tmp_path)


def test_pixels_in_loss():
    assert tf.pixels_in_loss(load_options(TINY)[0]) == 8 * 3 * 64 * 64
    assert tf.pixels_in_loss(load_options(M_STAGE2)[0]) == 4 * 3 * 256 * 256
    assert tf.pixels_in_loss(load_options(TINY, ["train.pixel_opt.reduction=mean"])[0]) == 1


# ------------------------------------------------------------------------------------------- schedules
def test_lr_schedule_is_what_the_trainer_applies(embedded_smoke_root, tmp_path):
    """Iteration k trains with scheduler epoch k - 1, warm-up overriding it below warmup_iter."""
    multistep = "train.scheduler={type: MultiStepRestartLR, milestones: [2, 4], gamma: 0.5}"
    for name, sets in {"cosine": [], "warmup": ["train.warmup_iter=3"], "multistep": [multistep]}.items():
        opt = tiny_opt(embedded_smoke_root, 6, *sets)
        summary = train(opt, tmp_path / name, device="cpu", batches=random_batches(6), log=quiet)
        its, lrs = tf.lr_schedule(opt, iterations=range(1, 7))
        assert its.tolist() == list(range(1, 7))
        np.testing.assert_allclose(lrs, [summary["lrs"][k][0] for k in range(1, 7)], rtol=1e-12, err_msg=name)
        sampled_its, sampled = tf.lr_schedule(opt)  # default sampling covers every iteration of a short run
        assert sampled_its.tolist() == list(range(1, 7)) and np.allclose(sampled, lrs)


def test_lr_schedule_of_the_edvr_m_recipe():
    opt = load_options(M_STAGE2)[0]
    its, lrs = tf.lr_schedule(opt, iterations=[1, 2, 25001, 50001, 50002, 150001, 150002, 600000])
    assert lrs[0] == pytest.approx(4e-4) and lrs[1] < 4e-4
    assert lrs[2] == pytest.approx(0.5 * (4e-4 + 1e-7), rel=1e-9)  # half-way down the first cycle
    assert lrs[3] == pytest.approx(1e-7) and lrs[4] == pytest.approx(4e-4, rel=1e-6)  # restart after 50k
    assert lrs[5] == pytest.approx(1e-7) and lrs[6] == pytest.approx(4e-4, rel=1e-6)  # and after 150k
    assert lrs[7] < 1e-6
    its, lrs = tf.lr_schedule(opt, points=500)
    assert its[0] == 1 and its[-1] == 600000 and {50001, 50002, 150002} <= set(its.tolist())
    assert np.all(np.diff(its) > 0) and lrs.max() == pytest.approx(4e-4) and lrs.min() >= 1e-7 - 1e-15
    with pytest.raises(EDVRError, match="start at 1"):
        tf.lr_schedule(opt, iterations=[0])


# ------------------------------------------------------------------------------------------- figures
def fake_log(rollback_at=None):
    log = []
    for k in range(10, 110, 10):
        e = {"iter": k, "loss": 1e4 / k, "lr": [4e-4 / k], "offset_mean": 0.01 * k, "offset_max": 0.02 * k,
             "it_per_s": 1.0, "lr_scale": 0.5 if rollback_at and k >= rollback_at else 1.0}
        if k % 50 == 0:
            e.update(val_psnr=25.0 + k / 50, val_ssim=0.7, bicubic_psnr=26.0)
        log.append(e)
    return log


def test_figures_are_titled_and_labelled(tmp_path):
    log = fake_log(rollback_at=60)
    fig = tf.loss_figure(log, pixels=98304)
    assert len(fig.axes) == 2 and labelled(fig)
    assert "per pixel" in fig.axes[1].get_ylabel() and fig.axes[0].get_yscale() == "log"
    per_pixel = fig.axes[1].lines[0].get_ydata()
    assert per_pixel[0] == pytest.approx(1e3 / 98304)
    assert any(line.get_linestyle() == ":" for line in fig.axes[0].lines)  # the rollback marker
    plt.close(fig)
    fig = tf.loss_figure(log)
    assert len(fig.axes) == 1 and labelled(fig)
    plt.close(fig)

    fig = tf.val_psnr_figure(log)
    ax = fig.axes[0]
    assert labelled(fig) and "dB" in ax.get_ylabel() and "bicubic" in ax.get_legend().get_texts()[1].get_text()
    assert list(ax.lines[0].get_ydata()) == [26.0, 27.0] and "+1.00 dB vs bicubic" in ax.texts[0].get_text()
    plt.close(fig)

    curve = [{"iter": k, "params_psnr": v} for k, v in ((50, 26.5), (100, 27.5))]  # raw weights beside the EMA
    fig = tf.val_psnr_figure(log, raw_curve=curve)
    ax = fig.axes[0]
    assert list(ax.lines[1].get_ydata()) == [26.5, 27.5] and "raw weights" in ax.get_legend().get_texts()[1].get_text()
    assert "+1.50 dB vs bicubic" in ax.texts[0].get_text()  # the gain of the last (raw) point
    plt.close(fig)

    fig = tf.offsets_figure(log, limit=50)
    assert labelled(fig) and "pixels" in fig.axes[0].get_ylabel()
    plt.close(fig)

    (tmp_path / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    fig = tf.val_psnr_figure(tmp_path)  # a run folder works too
    plt.close(fig)
    with pytest.raises(EDVRError, match="no validation entries"):
        tf.val_psnr_figure([e for e in log if "val_psnr" not in e])
    with pytest.raises(EDVRError, match="no loss entries"):
        tf.loss_figure([])
    with pytest.raises(EDVRError, match="no offset statistics"):
        tf.offsets_figure([{"iter": 1, "loss": 1.0}])


def test_lr_schedule_figure_shades_the_tsa_stage_and_overlays_the_log():
    m = load_options(M_STAGE2)[0]
    tiny = load_options(TINY, ["train.total_iter=100", "train.scheduler.periods=[40,60]"])[0]
    log = [{"iter": k, "lr": [float(tf.lr_schedule(tiny, iterations=[k])[1][0])]} for k in (10, 50, 100)]
    fig = tf.lr_schedule_figure({"EDVR-M": m, "tiny": tiny}, logged={"tiny": log}, title="schedules")
    assert len(fig.axes) == 2 and labelled(fig) and fig._suptitle.get_text() == "schedules"
    texts = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any("TSA-only stage (1 .. 49999)" in t for t in texts)
    assert fig.axes[0].get_xlim() == (0, 600000)
    assert any("logged" in t.get_text() for t in fig.axes[1].get_legend().get_texts())
    assert list(fig.axes[1].lines[1].get_ydata()) == [e["lr"][0] for e in log]
    plt.close(fig)


# ------------------------------------------------------------------------------------------- notebook helpers
def test_notebook_overrides_list_only_changes_and_load(embedded_smoke_root):
    data = embedded_paths(embedded_smoke_root)
    items = td.notebook_overrides(TINY, data, 1200, 300)
    keys = [i.split("=")[0] for i in items]
    assert "train.ema_decay" not in keys and "train.tsa_iter" not in keys  # already so in the tiny config
    assert {"train.total_iter", "train.scheduler.periods", "val.val_freq", "num_gpu"} <= set(keys)
    assert "train.scheduler.periods=[400, 800]" in items
    opt = load_options(TINY, items)[0]
    assert opt.datasets.val.meta_info_file == str(data["meta_test"]) and opt.num_gpu == 0
    assert opt.train.total_iter == 1200 and opt.val.val_freq == 300

    items = td.notebook_overrides(M_STAGE2, data, 2000, 250, device="cuda")
    opt = load_options(M_STAGE2, items)[0]
    assert opt.path.pretrain_network_g is None and opt.train.tsa_iter == 0
    assert opt.train.amp == "bf16" and opt.train.ema_decay == 0.99
    assert opt.datasets.train.val_partition is None and opt.network_g.num_feat == 64

    opt = load_options(TINY, td.notebook_overrides(TINY, data, 4, 4, smoke=True))[0]
    assert opt.network_g.num_feat == 8 and opt.datasets.train.gt_size == 32
    assert opt.datasets.val.num_frame == 3 and opt.train.scheduler.periods == [1, 3]
    with pytest.raises(EDVRError, match="cannot read the option file"):
        td.notebook_overrides(CONFIGS / "missing.yml", data, 4, 4)


def test_fresh_run_dir_deletes_runs_only(tmp_path):
    run = tmp_path / "run"
    assert td.fresh_run_dir(run).is_dir()
    (run / "models").mkdir()
    (run / "train_log.jsonl").write_text("{}\n")
    assert list(td.fresh_run_dir(run).iterdir()) == []
    (run / "notes.txt").write_text("mine")
    with pytest.raises(EDVRError, match="not a training run's"):
        td.fresh_run_dir(run)
    assert (run / "notes.txt").exists()
    with pytest.raises(EDVRError, match="is a file"):
        td.fresh_run_dir(run / "notes.txt")


def test_ctrl_c_then_resume_equals_the_uninterrupted_run(embedded_smoke_root, tmp_path):
    opt = tiny_opt(embedded_smoke_root, 6)
    batches = td.draw_batches(opt, 6)
    full = train(opt, tmp_path / "full", device="cpu", log=quiet)  # the options' own data stream
    before = signal.getsignal(signal.SIGINT)
    cut = train(opt, tmp_path / "cut", device="cpu", batches=td.CtrlCAt(batches, 3), log=quiet)
    assert signal.getsignal(signal.SIGINT) is before
    assert cut["interrupted"] and cut["iter"] == 3
    resumed = train(opt, tmp_path / "cut", device="cpu", batches=batches, resume=True, log=quiet)
    assert resumed["iter"] == 6 and not resumed["interrupted"] and full["iter"] == 6
    same = td.compare_runs(tmp_path / "full", tmp_path / "cut")
    assert same == {"iters": [1, 2, 3, 4, 5, 6], "same_log": True, "same_weights": True, "max_weight_diff": 0.0}
    with pytest.raises(EDVRError, match="outside"):
        td.CtrlCAt(batches, 7)


def test_poisoned_batches_and_the_guard(embedded_smoke_root, tmp_path):
    opt = tiny_opt(embedded_smoke_root, 6, "train.guard.enabled=true", "train.guard.max_retries=2",
                   "logger.print_freq=2")
    batches = random_batches(6)
    messages = []
    summary = train(opt, tmp_path / "once", device="cpu", batches=td.PoisonedBatches(batches, 4, times=1),
                    log=messages.append)
    assert summary["rollbacks"] == 1 and summary["iter"] == 6
    assert any(m.startswith("guard: loss is nan at iteration 4") for m in messages)
    log = tf.read_train_log(tmp_path / "once")
    # back to the last state a later check confirmed (the start: the state kept at iteration 2 was checked by
    # nothing after it), so iterations 2, 4, 6 are all logged again at half the rate
    assert [e["lr_scale"] for e in log] == [0.5, 0.5, 0.5]
    assert torch.isfinite(batches[3]["lq"]).all()  # the original batches are left alone
    with pytest.raises(EDVRError, match=r"diverged at iteration 4 .*after 2 rollbacks"):
        train(opt, tmp_path / "always", device="cpu", batches=td.PoisonedBatches(batches, 4, times=None), log=quiet)


def test_trainer_loop_source():
    src = td.trainer_loop_source()
    assert src.lstrip().startswith("with distributed.StopRequest")
    for step in ("next(stream)", "state.scheduler.step()", "loss.backward()", "state.optimizer.step()",
                 "guard.roll_back", "runlog.write", "save_checkpoint"):
        assert step in src, step
    assert "bar.close()" not in src


def test_recorded_motion_curve_and_its_figure(tmp_path):
    """The shipped recipe's recorded learned-motion curve reads, and draws one line per run with labelled axes."""
    from edvr_lib.models import DEFAULT_CHECKPOINT

    rows = td.motion_curve(DEFAULT_CHECKPOINT.with_name(f"{DEFAULT_CHECKPOINT.stem}.motion_curve.json"))
    runs = {r["run"] for r in rows}
    shipped = [r for r in rows if r.get("stage")]
    assert len(runs) >= 2 and [r["step"] for r in shipped] == sorted(r["step"] for r in shipped)
    assert shipped[-1]["epe_ratio"] <= 0.5 < shipped[0]["epe_ratio"]  # the recipe learned motion
    lesson = {"steps": [0, 2], "epe_ratio": [1.0, 0.9], "offset_loss": [None, 1.2], "seconds": 1.0}
    fig = tf.motion_curve_figure(rows, lesson, title="t")
    ax = fig.axes[0]
    assert len(ax.get_lines()) == len(runs) + 1 + 2  # runs, the lesson, the two reference lines
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title() == "t"
    plt.close(fig)
    with pytest.raises(EDVRError, match="motion curve"):
        td.motion_curve(tmp_path / "missing.json")
