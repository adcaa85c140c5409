"""Same training as the reference: BasicSR 1.4.2's EDVRModel on the fixture's batches (tests/fixtures/train_parity).

The fixture holds a tiny EDVR option file, its pretrained weights, the 12 batches the reference trained on and what
the reference recorded per iteration (loss, learning rates, gradient and Adam-state counts) plus its final weights.
"""
from pathlib import Path

import pytest
import torch

from edvr_lib.train.options import load_options
from edvr_lib.train.trainer import train

FIXTURE = Path(__file__).parents[1] / "fixtures" / "train_parity"

pytestmark = pytest.mark.usefixtures("one_thread", "reference_dcn")


@pytest.fixture
def reference_dcn(monkeypatch):
    """The reference's DCN kernel (torchvision), so rounding follows the fixture's."""
    try:
        from edvr_lib.ops import speed_policy
    except ImportError:  # a layout that reads the variable at each call
        yield
        return
    with speed_policy(dcn_backend="torchvision"):
        yield


def _options(name: str, tmp_path: Path) -> dict:
    text = (FIXTURE / name).read_text().replace("${FIXTURE_DIR}", str(FIXTURE)).replace("${DATA_ROOT}", str(tmp_path))
    (tmp_path / name).write_text(text)
    opt, _ = load_options(tmp_path / name)
    return opt


def _run(name: str, tmp_path: Path):
    opt = _options(name, tmp_path)
    batches = torch.load(FIXTURE / "batches.pt", weights_only=True)
    messages = []
    summary = train(opt, tmp_path / "run", device="cpu", batches=batches, log=messages.append)
    saved = torch.load(tmp_path / "run" / "models" / "net_g_latest.pth", weights_only=True)
    state = torch.load(tmp_path / "run" / "training_states" / "latest.state", weights_only=True)
    return summary, saved, state, messages


@pytest.mark.parametrize("name, reference", [("options.yml", "reference.pt"),
                                             ("options_dcn_lr_mul_0.5.yml", "reference_dcn_lr_mul_0.5.pt")])
def test_training_matches_basicsr(name, reference, tmp_path):
    ref = torch.load(FIXTURE / reference, weights_only=False)
    summary, saved, state, _ = _run(name, tmp_path)
    n = len(ref["l_pix"])
    assert summary["iter"] == n
    ours = [summary["losses"][k] for k in range(1, n + 1)]
    torch.testing.assert_close(torch.tensor(ours, dtype=torch.float64),
                               torch.tensor(ref["l_pix"], dtype=torch.float64), rtol=1e-5, atol=0)
    # learning rate of every group at every iteration (scheduler epoch k - 1 at iteration k)
    for k in range(1, n + 1):
        assert summary["lrs"][k] == pytest.approx(ref["lr"][k - 1], rel=1e-12)
    # the same parameter groups (dcn_lr_mul splits by 'dcn' in the name); optimizer ids run over the groups in order
    names = list(saved["params"])
    split = [names] if len(ref["param_groups"]) == 1 else [[n for n in names if "dcn" not in n],
                                                             [n for n in names if "dcn" in n]]
    assert split == ref["param_groups"]
    assert [len(g["params"]) for g in state["optimizer"]["param_groups"]] == [len(g) for g in split]
    order = [n for group in split for n in group]
    # Adam created state only for the parameters that had gradients: fusion only during the TSA-only stage
    assert len(state["optimizer"]["state"]) == ref["adam_state_count"][-1]
    for key, value in ref["adam_step"].items():
        assert float(state["optimizer"]["state"][order.index(key)]["step"]) == float(value), key
    if "params" in ref:  # final weights (the fixture's own replay agrees to 3e-8)
        for key, value in ref["params"].items():
            torch.testing.assert_close(saved["params"][key], value, rtol=0, atol=1e-6, msg=key)
        for key, value in ref["params_ema"].items():
            torch.testing.assert_close(saved["params_ema"][key], value, rtol=0, atol=1e-6, msg=key)
    else:  # this variant stores the DCN group's final tensors and [sum, sum of squares] of every parameter
        for key, value in ref["params_dcn"].items():
            torch.testing.assert_close(saved["params"][key], value, rtol=0, atol=1e-6, msg=key)
        for key, (total, squares) in ref["params_checksums"].items():
            p = saved["params"][key].double()  # every element within 1e-6 bounds both sums
            assert abs(p.sum().item() - total) <= 1e-6 * p.numel(), key
            assert abs((p * p).sum().item() - squares) <= 2e-6 * p.abs().sum().item() + 1e-9, key


def test_tsa_stage_counts_match_basicsr(tmp_path):
    """Per-iteration counts of trainable parameters and Adam states, from the loop's own files after each step."""
    ref = torch.load(FIXTURE / "reference.pt", weights_only=False)
    opt = _options("options.yml", tmp_path)
    opt.logger.save_checkpoint_freq = 1
    batches = torch.load(FIXTURE / "batches.pt", weights_only=True)
    opt.train.total_iter = 4
    train(opt, tmp_path / "run", device="cpu", batches=batches, log=lambda m: None)
    pretrain = torch.load(FIXTURE / "pretrain.pth", weights_only=True)["params"]
    for k in range(1, 5):
        state = torch.load(tmp_path / "run" / "training_states" / f"{k}.state", weights_only=True)
        assert len(state["optimizer"]["state"]) == ref["adam_state_count"][k - 1]
        assert state["scheduler"]["last_epoch"] == ref["scheduler_last_epoch"][k - 1]
        changed = sum(not torch.equal(state["params"][n], pretrain[n]) for n in pretrain)
        assert changed == ref["changed_count"][k - 1]
