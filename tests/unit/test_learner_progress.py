"""labkit.learners.records: exercise results recorded only in a classroom; the instructor's rows."""

from __future__ import annotations

import json

from labkit.course import exercises
from labkit.course.exercises import Check
from labkit.learners import records as progress


def verdict(exercise: str, passed: bool | None, wrong: str = "") -> Check:
    check = Check(exercise, None)
    if passed is not None:
        check.add(passed, wrong or "fine")
    return check.close()


def test_nothing_is_written_without_the_variable(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert progress.record(verdict("2", True), environ={}) is None
    assert list(tmp_path.iterdir()) == []


def test_each_check_appends_one_line(tmp_path) -> None:
    target = tmp_path / "progress.jsonl"
    env = {progress.ENV: str(target), "LABKIT_USER": "ann"}
    progress.record(verdict("5", False, "your prediction 1 is not what the engine did"), env)
    progress.record(verdict("5", True), env)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(x["user"], x["exercise"], x["passed"]) for x in lines] == [
        ("ann", "5", False), ("ann", "5", True)]
    assert lines[0]["failed"] == ["your prediction 1 is not what the engine did"]


def test_an_unwritable_file_costs_the_learner_nothing(tmp_path) -> None:
    env = {progress.ENV: str(tmp_path / "missing" / "progress.jsonl")}
    assert progress.record(verdict("2", True), env) is None


def test_summary_says_who_passed_what_and_who_is_stuck(tmp_path) -> None:
    for user, items in {
        "ann": [("2", True), ("3", False), ("3", True)],
        "cat": [("2", True), ("5", None), ("5", False), ("5", False)],
    }.items():
        folder = tmp_path / user
        folder.mkdir()
        env = {progress.ENV: str(folder / progress.FILE_NAME), "LABKIT_USER": "someone"}
        for exercise, passed in items:
            progress.record(verdict(exercise, passed, "wrong"), env)
    rows = {who.user: who for who in progress.summary(progress.read(tmp_path))}
    assert set(rows) == {"ann", "cat"}  # the folder decides who it is, not the line
    assert list(rows["ann"].passed) == ["2", "3"] and rows["ann"].stuck_on is None
    assert rows["ann"].at == "3"
    assert rows["cat"].stuck_on == "5" and rows["cat"].attempts["5"] == 2
    assert rows["cat"].last_failed == ["wrong"] and rows["cat"].stuck_since


def test_an_exercise_check_records_its_verdict(tmp_path, monkeypatch) -> None:
    """An unanswered exercise needs no engine: its check returns at once, and is recorded."""
    target = tmp_path / "progress.jsonl"
    monkeypatch.setenv(progress.ENV, str(target))
    monkeypatch.setenv("LABKIT_USER", "ben")
    check = exercises.ex06_heaviest_layer(None)
    assert check.passed is None
    line = json.loads(target.read_text())
    assert (line["user"], line["exercise"], line["passed"]) == ("ben", "6", None)


def test_the_known_exercises_are_the_courses() -> None:
    """learner_progress's list (it cannot import the checks: standard library only) names
    exactly the exercises the course's checks report, in the course's order."""
    import re
    from pathlib import Path

    labkit = Path(progress.__file__).parents[1]
    found = set()
    for module in ("course/exercises.py", "experiments/cache_order.py"):
        found |= set(re.findall(r"(?:Check|_not_attempted)\(\"(\w+)\"",
                                (labkit / module).read_text()))
    assert set(progress.EXERCISES) == found
    assert list(progress.EXERCISES) == sorted(progress.EXERCISES, key=progress.order)


def test_what_record_writes_is_what_read_accepts(tmp_path) -> None:
    folder = tmp_path / "ann"
    folder.mkdir()
    env = {progress.ENV: str(folder / progress.FILE_NAME), "LABKIT_USER": "ann"}
    written = [progress.record(verdict(ex, ok, "wrong"), env)
               for ex in progress.EXERCISES for ok in (None, False, True)]
    assert all(progress.valid_line(line) for line in written)
    (file,) = progress.read_all(tmp_path)
    assert (file.skipped, file.truncated, file.problem) == (0, False, None)
    assert len(file.lines) == len(written) == len(progress.read(tmp_path))


def test_only_well_formed_records_count() -> None:
    good = {"time": "2030-01-02T03:04:05Z", "exercise": "5", "passed": False,
            "failed": ["x" * 1000] * 50}
    clean = progress.valid_line(good)
    assert clean and len(clean["failed"]) == progress.MAX_FAILED
    assert all(len(text) == progress.MAX_TEXT for text in clean["failed"])
    for bad in ({**good, "exercise": "<b>"}, {**good, "exercise": 5},
                {**good, "passed": "no"}, {**good, "passed": 0},
                {**good, "time": "2030-02-30T00:00:00Z"}, {**good, "time": "2030-1-2T3:4:5Z"},
                {**good, "time": None}, {**good, "failed": "wrong"}, {**good, "failed": [1]},
                [good], "text"):
        assert progress.valid_line(bad) is None, bad
    parsed = progress.parse(b"\n".join([json.dumps(good).encode(), b"{", b"\xff",
                                        b"[" * 100000, b""]), "ann")
    assert (len(parsed.lines), parsed.skipped) == (1, 3)
    assert parsed.lines[0]["user"] == "ann"


def test_summary_counts_what_it_cannot_use() -> None:
    rows = progress.summary([{"user": "ann", "exercise": "2", "passed": True, "time": "?"}])
    assert rows[0].skipped == 1 and rows[0].passed == {}
