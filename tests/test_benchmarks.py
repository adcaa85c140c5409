"""benchmarks/train_speed.py: the pure helpers (stamps, overrides, tables); no training runs here."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from benchmarks import train_speed as ts

REPO = Path(__file__).resolve().parents[1]


def _stamps(times, losses=None):
    losses = losses or [100.0 + i for i in range(len(times))]
    return [(i + 1, t, loss) for i, (t, loss) in enumerate(zip(times, losses))]


def test_stamp_lines_round_trip_and_other_lines_are_ignored():
    lines = [ts.stamp_line(2, 1268.659423828125), "note: something", ts.stamp_line(1, 1703.4),
             f"{ts.STAMP} iter=x t=1 loss=2", "edvr train: 33%|###  | 1/3", ts.stamp_line(2, 9.0)]
    found = ts.parse_stamps("\n".join(lines))
    assert [s[0] for s in found] == [1, 2]  # sorted by iteration; a repeated iteration keeps the last line
    assert found[0][2] == 1703.4 and found[1][2] == 9.0
    assert all(isinstance(s[1], float) and s[1] > 1e9 for s in found)  # unix time


def test_speed_excludes_the_warmup_iterations():
    launch = 1000.0
    stamps = _stamps([1012.0, 1018.0, 1023.0, 1028.0, 1033.0], [5.0, 4.0, 3.0, 2.0, 1.5])
    r = ts.speed_from_stamps(stamps, launch, warmup=2)
    assert r["timed_iters"] == 3 and r["s_per_it"] == pytest.approx(5.0) and r["it_per_s"] == pytest.approx(0.2)
    assert r["first_iter_s"] == pytest.approx(12.0)
    assert r["final_iter"] == 5 and r["final_loss"] == 1.5
    assert r["iter_s"] == [12.0, 6.0, 5.0, 5.0, 5.0]
    assert ts.speed_from_stamps(stamps, launch, warmup=1)["it_per_s"] == pytest.approx(4 / 21)


@pytest.mark.parametrize("stamps, warmup, match", [
    (_stamps([1.0, 2.0]), 0, "warmup must be >= 1"),
    (_stamps([1.0, 2.0]), 2, "need more than the 2 warm-up"),
    ([], 1, "iterations 1..N"),
    ([(1, 1.0, 1.0), (3, 2.0, 1.0)], 1, "iterations 1..N"),
])
def test_speed_refuses_what_cannot_be_timed(stamps, warmup, match):
    with pytest.raises(ValueError, match=match):
        ts.speed_from_stamps(stamps, 0.0, warmup)


def test_one_override_list_for_both_trainers(tmp_path):
    """The --set items mean to `edvr train` what the edited YAML means to BasicSR: same values, val removed."""
    from edvr_lib.train.options import load_options

    items = ts.override_items(tmp_path / "my data", 8, "cpu", gt_size=64, workers=0)
    args = ts.set_args(items)
    assert args[::2] == ["--set"] * len(items)
    opt, _ = load_options(ts.CONFIG, args[1::2])
    raw = yaml.safe_load(ts.CONFIG.read_text())
    before = copy.deepcopy(raw)
    ref = ts.apply_reference_overrides(raw, items)
    assert raw == before  # the loaded file is not modified
    assert "val" not in ref and "val" not in ref["datasets"] and opt.val is None and opt.datasets.val is None
    for key in ("dataroot_gt", "dataroot_lq", "meta_info_file", "gt_size", "num_worker_per_gpu",
                "batch_size_per_gpu", "val_partition"):
        assert getattr(opt.datasets.train, key) == ref["datasets"]["train"][key], key
    assert opt.datasets.train.dataroot_gt == str(tmp_path / "my data" / "train_sharp")
    assert opt.datasets.train.batch_size_per_gpu == 4 and opt.datasets.train.val_partition == "REDS4"
    assert opt.num_gpu == ref["num_gpu"] == 0
    assert opt.train.total_iter == ref["train"]["total_iter"] == 8
    for key in ("print_freq", "save_checkpoint_freq", "use_tb_logger"):
        assert getattr(opt.logger, key) == ref["logger"][key], key
    assert ref["network_g"] == before["network_g"] and ref["train"]["optim_g"] == before["train"]["optim_g"]
    # without --quick / --workers the file's batch, crop and workers stay
    plain = dict(ts.override_items(tmp_path, 8, "cuda"))
    assert plain["num_gpu"] == 1 and not any(k.endswith(("gt_size", "num_worker_per_gpu")) for k in plain)


def _record(ratio_runs):
    groups = []
    for workers, ours, ref in ratio_runs:
        runs = {"ours": ours} if ref is None else {"ours": ours, "reference": ref}
        groups.append({"workers": workers, "runs": runs, "ratio": ts.ratio_of(ours, ref)})
    return {"date": "2026-11-28 14:00", "command": "python -m benchmarks.train_speed",
            "machine": {"cpu": "Test CPU", "cpu_count": 2, "torch": "2.x", "threads": 2, "python": "3.11",
                        "device": "cpu"},
            "load_start": (0.1, 0.2, 0.3), "load_end": (0.4, 0.5, 0.6),
            "settings": {"config": "configs/x.yml", "device": "cpu", "iters": 8, "warmup": 2, "batch_size": 4,
                         "gt_size": 256, "data": "clip 001"}, "groups": groups}


def _run(it_per_s, loss=12345.678):
    return {"it_per_s": it_per_s, "s_per_it": 1 / it_per_s, "first_iter_s": 10.0, "final_loss": loss}


def test_tables_show_three_decimals_only_where_two_would_cross_the_target():
    record = _record([(3, _run(0.2996), _run(0.1)), (0, _run(0.31), _run(0.1)),
                      (1, {"error": "exit code 1", "returncode": 1}, _run(0.1))])
    assert record["groups"][0]["ratio"] == pytest.approx(2.996) and record["groups"][2]["ratio"] is None
    text = ts.text_table(record)
    assert "2.996x" in text and "NOT met" in text and "3.10x" in text and "FAILED: exit code 1" in text
    md = ts.markdown_block(record)
    assert "**2.996x** (not met)" in md and "**3.10x** (met)" in md and "failed: exit code 1" in md
    assert "| 3 | ours (`edvr train`) | 0.2996 | 3.34 | 10.0 | 12346 |" in md
    assert "Test CPU, 2 CPUs" in md and "0.10 / 0.20 / 0.30" in md and "differ because" in md


def test_tables_without_the_reference():
    record = _record([(3, _run(0.2), None)])
    assert record["groups"][0]["ratio"] is None
    rows = [line.split() for line in ts.text_table(record).splitlines()[1:]]
    assert rows[0][:2] == ["3", "ours"] and not any(r[1:2] == ["reference"] for r in rows)
    md = ts.markdown_block(record)
    assert "reference (BasicSR" not in md and "**" not in md


def test_write_results_replaces_only_the_marked_block(tmp_path):
    docs, js = tmp_path / "performance.md", tmp_path / "performance_train.json"
    docs.write_text(f"# P\n\nbefore\n\n{ts.MARK_BEGIN}\nold\n{ts.MARK_END}\n\nafter\n")
    record = _record([(3, _run(0.33), _run(0.1))])
    ts.write_results(record, docs, js)
    text = docs.read_text()
    assert text.startswith("# P\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "old" not in text
    assert text.count(ts.MARK_BEGIN) == 1 and "**3.30x** (met)" in text
    assert js.read_text().startswith("{")


def test_the_docs_have_the_markers_once():
    text = (REPO / "docs" / "performance.md").read_text()
    assert text.count(ts.MARK_BEGIN) == 1 and text.count(ts.MARK_END) == 1
    assert text.index(ts.MARK_BEGIN) < text.index(ts.MARK_END)
