"""The run log: one line appended per entry, older entries dropped once on a resume or a rollback."""
import json

from edvr_lib.train.runlog import RunLog


def _iters(path):
    return [json.loads(line)["iter"] for line in path.read_text().splitlines()]


def test_entries_are_appended_and_a_rollback_drops_the_later_ones(tmp_path, monkeypatch):
    log = RunLog(tmp_path)
    for it in (1, 2, 3):
        log.write({"iter": it, "loss": 0.1 * it})
    assert _iters(log.path) == [1, 2, 3]
    rewrites = []
    monkeypatch.setattr("edvr_lib.train.runlog.atomic_write_text", lambda *a: rewrites.append(a))
    log.write({"iter": 4, "loss": 0.4})
    assert rewrites == [] and _iters(log.path) == [1, 2, 3, 4]  # appended, not rewritten
    monkeypatch.undo()
    log.drop_after(2)  # a rollback to iteration 2: 3 and 4 are trained again
    log.write({"iter": 3, "loss": 0.3})
    assert _iters(log.path) == [1, 2, 3]
    log.close()


def test_a_resume_keeps_the_entries_up_to_its_iteration(tmp_path):
    (tmp_path / "train_log.jsonl").write_text("".join(json.dumps({"iter": i}) + "\n" for i in (1, 2, 3)) + '{"iter": 4')
    log = RunLog(tmp_path, upto=2)
    log.write({"iter": 3})
    assert _iters(log.path) == [1, 2, 3]  # the later entries and the line cut short by a kill are gone
    fresh = RunLog(tmp_path)  # a new run in the folder starts a new log
    fresh.write({"iter": 1})
    assert _iters(fresh.path) == [1]
