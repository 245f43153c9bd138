"""labkit.learner_progress: exercise results recorded only in a classroom; the instructor's rows."""

from __future__ import annotations

import json

from labkit import exercises
from labkit import learner_progress as progress
from labkit.exercises import Check


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
