"""torchrun: 2 CPU processes with gloo train the same weights on both ranks, shard the data like one process with
twice the batch, write one set of files (rank 0), and resume exactly."""
import os
import shutil
import subprocess
import sys

import pytest
import torch

from edvr_lib.train.options import dump_options
from edvr_lib.train.trainer import train
from tests.train.tiny_run import options

SCRIPT = """
import os, sys
import torch
torch.set_num_threads(1)
from edvr_lib.train.options import load_options
from edvr_lib.train.trainer import train
opt, _ = load_options(sys.argv[1])
s = train(opt, sys.argv[2], resume=sys.argv[3] == "1", device="cpu")
torch.save({"params": s["model"].state_dict(), "ema": s["ema"].state_dict(), "losses": s["losses"]},
           os.path.join(sys.argv[4], f"rank{os.environ['RANK']}.pt"))
"""

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_thread")]


def _torchrun(tmp_path, run, out, resume=False):
    out.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(tmp_path / "script.py"), str(tmp_path / "opt.yml"), str(run), "1" if resume else "0", str(out)]
    proc = subprocess.run(cmd, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return [torch.load(out / f"rank{r}.pt", weights_only=True) for r in (0, 1)]


def test_two_processes_gloo(embedded_smoke_root, tmp_path):
    opt = options(embedded_smoke_root, "train.total_iter=5", "train.tsa_iter=3", "logger.save_checkpoint_freq=2",
                  "datasets.train.num_worker_per_gpu=1")
    dump_options(opt, tmp_path / "opt.yml")
    (tmp_path / "script.py").write_text(SCRIPT)
    r0, r1 = _torchrun(tmp_path, tmp_path / "ddp", tmp_path / "out")
    for key in ("params", "ema"):
        assert all(torch.equal(r0[key][n], r1[key][n]) for n in r0[key]), key
    assert r0["losses"] == r1["losses"]  # the all-reduced mean
    assert sorted(p.name for p in (tmp_path / "ddp" / "training_states").iterdir()) == \
        ["2.state", "4.state", "5.state", "latest.state"]

    # the same samples as one process with twice the batch: 2 x (loss summed over 2) = loss summed over 4
    opt4 = options(embedded_smoke_root, "train.total_iter=5", "train.tsa_iter=3", "logger.save_checkpoint_freq=5",
                   "datasets.train.batch_size_per_gpu=4")
    single = train(opt4, tmp_path / "single", device="cpu", log=lambda m: None)
    assert [2 * r0["losses"][k] for k in range(1, 6)] == pytest.approx([single["losses"][k] for k in range(1, 6)],
                                                                        rel=1e-5)
    for n, p in single["model"].state_dict().items():  # Adam steps are ~lr; sum order and eps move a few a little
        torch.testing.assert_close(r0["params"][n], p, rtol=0, atol=5e-4, msg=n)

    # resume after "a kill" at iteration 2 (inside the TSA-only stage): bit-identical to the uninterrupted run
    killed = tmp_path / "killed"
    shutil.copytree(tmp_path / "ddp", killed)
    states = killed / "training_states"
    for name in ("4.state", "5.state", "latest.state"):
        (states / name).unlink()
    shutil.copyfile(states / "2.state", states / "latest.state")
    k0, k1 = _torchrun(tmp_path, killed, tmp_path / "out_resumed", resume=True)
    for key in ("params", "ema"):
        assert all(torch.equal(r0[key][n], k0[key][n]) and torch.equal(r0[key][n], k1[key][n]) for n in r0[key]), key
    assert {n: v for n, v in r0["losses"].items() if n > 2} == k0["losses"]
