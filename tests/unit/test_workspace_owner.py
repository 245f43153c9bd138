"""workspace/ belongs to one learner; another one in the same folder works in its own."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from labkit import course
from labkit.course import workspace_owner as workspace
from labkit.engine import config


@pytest.fixture
def as_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    before = config.settings()

    def switch(user: str) -> None:
        config.use(config.Settings(user=user, state_dir=tmp_path / "state"))

    yield switch
    config.use(before)


def test_one_learner_works_in_workspace_here(tmp_path: Path, as_user) -> None:
    as_user("student")
    for _ in range(2):  # every notebook's first cell, again and again
        assert workspace.enter() is None
        assert Path.cwd() == tmp_path
    course.write_app("hi")
    assert (tmp_path / "workspace" / "app.py").exists()
    assert workspace.owner(tmp_path / "workspace") == "student"


def test_a_second_learner_gets_a_workspace_of_its_own(tmp_path: Path, as_user) -> None:
    as_user("alice")
    workspace.enter()
    course.write_app("alice's")
    as_user("bob")
    own = workspace.enter()
    assert own == tmp_path / "learners" / "bob" and Path.cwd() == own
    course.write_app("bob's")
    assert workspace.enter() is None  # the notebook's next setup(): already there
    assert "alice's" in (tmp_path / "workspace" / "app.py").read_text()
    assert "bob's" in (own / "workspace" / "app.py").read_text()


def test_learners_starting_at_once_get_one_owner(tmp_path: Path) -> None:
    folder = tmp_path / "workspace"
    owners: list[str] = []
    threads = [threading.Thread(target=lambda u=u: owners.append(workspace.claim(folder, u)))
               for u in (f"l{i}" for i in range(8))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(owners)) == 1 and owners[0] == workspace.owner(folder)
    assert os.listdir(folder) == [workspace.OWNER_FILE]
