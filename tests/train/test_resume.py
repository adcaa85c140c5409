"""Exact resume after SIGKILL at a random moment and after Ctrl-C, with DataLoader workers, in real processes.

Each run is ``run_train`` in a subprocess on one CPU thread; the resumed run's logged losses must equal the
uninterrupted run's exactly, and its final weights (network, EMA) and Adam state must be bit-identical.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from edvr_lib.train.options import dump_options
from tests.train.tiny_run import options

SCRIPT = """
import sys
import torch
torch.set_num_threads(1)
from edvr_lib.train.trainer import run_train
sys.exit(run_train(sys.argv[1], sys.argv[2], resume=sys.argv[3] == "1", device="cpu"))
"""
TOTAL = 16

pytestmark = pytest.mark.slow


def _start(tmp_path, run, resume=False):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(tmp_path / "script.py"), str(tmp_path / "opt.yml"), str(run),
                             "1" if resume else "0"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _finish(proc, expected_rc=0):
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == expected_rc, out[-3000:]
    return out


def _wait_for(path, proc, timeout=120):
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert time.monotonic() < end, f"{path} did not appear"
        time.sleep(0.02)


def _losses(run):
    return [(e["iter"], e["loss"]) for e in map(json.loads, (Path(run) / "train_log.jsonl").read_text().splitlines())]


def _assert_same_run(a, b):
    assert _losses(b) == _losses(a) and len(_losses(a)) == TOTAL
    sa = torch.load(Path(a) / "training_states" / "latest.state", weights_only=True)
    sb = torch.load(Path(b) / "training_states" / "latest.state", weights_only=True)
    assert sa["iter"] == sb["iter"] == TOTAL
    for key in ("params", "params_ema"):
        assert all(torch.equal(sa[key][n], sb[key][n]) for n in sa[key]), key
    for i, state in sa["optimizer"]["state"].items():
        assert all(torch.equal(state[k], sb["optimizer"]["state"][i][k]) for k in ("exp_avg", "exp_avg_sq")), i


@pytest.fixture(scope="module")
def reference_run(embedded_smoke_root, tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("resume")
    opt = options(embedded_smoke_root, f"train.total_iter={TOTAL}", "train.scheduler.periods=[8,8]",
                  "logger.save_checkpoint_freq=4", "datasets.train.num_worker_per_gpu=2", "train.tsa_iter=6")
    dump_options(opt, tmp_path / "opt.yml")
    (tmp_path / "script.py").write_text(SCRIPT)
    _finish(_start(tmp_path, tmp_path / "full"))
    return tmp_path


def test_sigkill_at_a_random_moment_then_resume(reference_run):
    tmp_path, run = reference_run, reference_run / "killed"
    proc = _start(tmp_path, run)
    _wait_for(run / "training_states" / "4.state", proc)
    time.sleep(random.uniform(0.0, 1.0))
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    killed_at = torch.load(run / "training_states" / "latest.state", weights_only=True)["iter"]
    assert killed_at >= 4
    out = _finish(_start(tmp_path, run, resume=True))
    assert "done: iteration 16" in out
    _assert_same_run(tmp_path / "full", run)


def test_ctrl_c_saves_a_resumable_state(reference_run):
    tmp_path, run = reference_run, reference_run / "interrupted"
    proc = _start(tmp_path, run)
    _wait_for(run / "training_states" / "4.state", proc)
    proc.send_signal(signal.SIGINT)
    out = _finish(proc, expected_rc=130)
    assert "SIGINT: stopping after this iteration" in out and "resume with the same command and --resume" in out
    stopped_at = torch.load(run / "training_states" / "latest.state", weights_only=True)["iter"]
    assert 4 <= stopped_at < TOTAL
    _finish(_start(tmp_path, run, resume=True))
    _assert_same_run(tmp_path / "full", run)


# --- Extend a finished run: a larger total_iter / appended periods continue; a changed past is refused ----------

def _extend(root, tmp_path, first, second, n=4):
    """Train ``first`` to ``n`` iterations in one folder, resume it with ``second``; also ``second`` uninterrupted."""
    from tests.train.tiny_run import quiet, random_batches

    from edvr_lib.train.trainer import train

    batches = random_batches(2 * n)
    train(options(root, f"train.total_iter={n}", *first), tmp_path / "run", device="cpu", batches=batches,
          log=quiet())
    messages = []
    opt = options(root, f"train.total_iter={2 * n}", *second)
    resumed = train(opt, tmp_path / "run", resume=True, device="cpu", batches=batches, log=messages.append)
    full = train(opt, tmp_path / "full", device="cpu", batches=batches, log=quiet())
    return resumed, full, messages


@pytest.mark.parametrize("first, second", [
    (["train.scheduler.periods=[3,5]"], ["train.scheduler.periods=[3,5]"]),  # schedule already long enough
    (["train.scheduler.periods=[3,2]", "train.scheduler.restart_weights=[1,0.5]"],  # a period appended
     ["train.scheduler.periods=[3,2,3]", "train.scheduler.restart_weights=[1,0.5,0.25]"]),
])
def test_extend_a_finished_run(embedded_smoke_root, tmp_path, first, second):
    from edvr_lib.train.options import load_options

    resumed, full, messages = _extend(embedded_smoke_root, tmp_path, first, second)
    assert resumed["iter"] == 8 and sorted(resumed["lrs"]) == [5, 6, 7, 8]
    assert resumed["lrs"] == {it: full["lrs"][it] for it in range(5, 9)}
    assert "extending the run from total_iter 4 to 8" in messages
    assert load_options(tmp_path / "run" / "options.yml")[0].train.total_iter == 8


@pytest.mark.parametrize("second, key", [
    (["train.scheduler.periods=[3,5]", "train.optim_g.lr=0.001"], "train.optim_g.lr"),
    (["train.scheduler.periods=[2,6]"], "train.scheduler.periods"),  # the first cycle (the past) changes
])
def test_extension_that_changes_the_past_is_refused(embedded_smoke_root, tmp_path, second, key):
    from edvr_lib.utils import EDVRError

    with pytest.raises(EDVRError, match=key) as err:
        _extend(embedded_smoke_root, tmp_path, ["train.scheduler.periods=[3,5]"], second)
    assert "\n" not in str(err.value) and "Fix:" in str(err.value)
