"""The tutorial's checked figures: record() ranges and storage, the Markdown page, `edvr notebooks run`'s docs step."""
from __future__ import annotations

import argparse
import json

import pytest

from edvr_lib.commands import notebooks as nb_cmd
from edvr_lib.tutorial import results
from edvr_lib.utils import EDVRError
from edvr_lib.utils.notebooks import RESULTS_ENV, results_file


@pytest.fixture
def store(tmp_path, monkeypatch):
    path = tmp_path / "res.json"
    monkeypatch.setenv(RESULTS_ENV, str(path))
    monkeypatch.setenv("EDVR_SMOKE", "0")
    return path


def test_record_checks_the_range_and_stores_one_entry_per_key(store):
    assert results.record("02_x", "gain", 7.0, expected=6.0, tolerance=1.5, unit="dB", what="a gain") == 7.0
    with pytest.raises(AssertionError, match=r"gain = 9 dB is outside the expected range 6 ± 1.5 dB"):
        results.record("02_x", "gain", 9.0, expected=6.0, tolerance=1.5, unit="dB")
    entries = json.loads(store.read_text())
    assert len(entries) == 1  # recording the key again replaced it (the failing value is kept, marked not ok)
    e = entries[0]
    assert (e["notebook"], e["key"], e["value"], e["low"], e["high"], e["ok"], e["mode"]) == \
        ("02_x", "gain", 9.0, 4.5, 7.5, False, "full")


def test_one_sided_unchecked_and_non_finite(store):
    results.record("02_x", "ratio", 0.5, high=0.8)
    results.record("02_x", "floor", 3.0, low=2.0, expected=2.5, tolerance=1.0)  # range is the intersection [2, 3.5]
    with pytest.raises(AssertionError, match="floor = 1.9"):
        results.record("02_x", "floor", 1.9, low=2.0, expected=2.5, tolerance=1.0)
    results.record("02_x", "late", 5.0, high=1.0, check=False)  # out of range but not checked: no error
    with pytest.raises(AssertionError):
        results.record("02_x", "nan", float("nan"))
    by_key = {e["key"]: e for e in results.load(store)}
    assert by_key["ratio"]["low"] is None and by_key["ratio"]["high"] == 0.8 and by_key["ratio"]["ok"]
    assert (by_key["floor"]["low"], by_key["floor"]["high"]) == (2.0, 3.5)
    assert by_key["late"]["checked"] is False and by_key["late"]["ok"] is False
    assert by_key["nan"]["ok"] is False


def test_malformed_ranges_and_files_raise(store, tmp_path):
    with pytest.raises(EDVRError, match="tolerance"):
        results.record("02_x", "k", 1.0, expected=1.0)
    with pytest.raises(EDVRError, match="empty range"):
        results.record("02_x", "k", 1.0, low=2.0, high=1.0)
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a list"}')
    with pytest.raises(EDVRError, match="bad.json"):
        results.load(bad)


def test_forget_and_default_path(store, monkeypatch):
    results.record("01_a", "k", 1.0)
    results.record("02_b", "k", 2.0)
    assert results.forget("01_a") == 1 and results.forget("01_a") == 0
    assert [e["notebook"] for e in results.load()] == ["02_b"]
    monkeypatch.delenv(RESULTS_ENV)
    monkeypatch.setenv("EDVR_SMOKE", "1")
    assert results.results_path().name == "tutorial_results_smoke.json"


def test_markdown_lists_full_mode_entries_only(store, monkeypatch, tmp_path):
    results.record("02_b", "gain", 7.0, expected=6.0, tolerance=1.5, unit="dB", what="a gain")
    results.record("02_b", "late", 5.0, high=1.0, check=False, what="later")
    results.record("02_b", "ratio", 0.5, high=1.0, what="|a - b| / |c|")
    monkeypatch.setenv("EDVR_SMOKE", "1")
    results.record("03_c", "smoke_only", 1.0)
    text = results.format_markdown(results.load())
    assert "## 02_b" in text and "03_c" not in text
    assert "| `gain` | a gain | 7 dB | 6 ± 1.5 dB | ok |" in text
    assert "| `late` | later | 5 | <= 1 | outside range (not checked) |" in text
    assert "| `ratio` | \\|a - b\\| / \\|c\\| | 0.5 | <= 1 | ok |" in text  # pipes escaped: the table stays whole
    dest = results.write_markdown(store, tmp_path / "docs" / "tutorial_results.md")
    assert dest.read_text() == text
    only_smoke = tmp_path / "smoke.json"
    results.record("03_c", "k", 1.0, path=only_smoke)
    with pytest.raises(EDVRError, match="no full-mode"):
        results.write_markdown(only_smoke, tmp_path / "never.md")
    assert not (tmp_path / "never.md").exists()


@pytest.mark.parametrize("smoke, default_output, writes_doc", [(False, True, True), (True, True, False),
                                                                (False, False, False)])
def test_notebooks_run_writes_the_doc_in_full_mode_only(tmp_path, monkeypatch, smoke, default_output, writes_doc):
    """`edvr notebooks run`: each notebook's old figures are forgotten, then the doc is written (full, default dir)."""
    out = tmp_path / "outputs" / "notebooks"
    doc = tmp_path / "docs" / "tutorial_results.md"
    monkeypatch.setattr(nb_cmd, "DEFAULT_OUTPUT", out)
    monkeypatch.setattr(nb_cmd, "RESULTS_DOC", doc)
    nb = tmp_path / "02_fake.ipynb"
    nb.write_text("{}")
    recorded = results_file(out, smoke)
    results.record("02_fake", "stale", 1.0, path=recorded)  # from an earlier run: must be forgotten

    def fake_execute(path, out_dir, smoke):  # what a notebook's cells do, without a kernel
        monkeypatch.setenv("EDVR_SMOKE", "1" if smoke else "0")
        results.record(path.stem, "gain", 7.0, expected=6.0, tolerance=1.5, path=results_file(out_dir, smoke))
        return {"seconds": 0.1}

    monkeypatch.setattr(nb_cmd, "execute", fake_execute)
    args = argparse.Namespace(action="run", output=None if default_output else tmp_path / "elsewhere", smoke=smoke,
                              notebooks=[nb])
    assert nb_cmd.run(args) == 0
    assert doc.exists() == writes_doc
    if default_output:
        assert [e["key"] for e in results.load(recorded)] == ["gain"]
    if writes_doc:
        assert "| `gain` |" in doc.read_text() and "stale" not in doc.read_text()
