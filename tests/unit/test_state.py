"""The per-user state file: 0600, 0700 directory, stable password, environment override."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from labkit.engine import config
from labkit.registry import password as state


@pytest.fixture()
def state_dir(tmp_path: Path):
    before = config.settings()
    config.use(config.Settings(user="h3unit", state_dir=tmp_path / "deep" / "labkit"))
    yield tmp_path / "deep" / "labkit"
    config.use(before)


def test_password_is_generated_once_and_kept(state_dir: Path) -> None:
    first = state.registry_password(environ={})
    second = state.registry_password(environ={})
    assert first == second


def test_generated_password_is_long(state_dir: Path) -> None:
    assert len(state.registry_password(environ={})) >= 24


def test_state_file_is_0600(state_dir: Path) -> None:
    state.registry_password(environ={})
    mode = stat.S_IMODE(config.settings().state_file.stat().st_mode)
    assert mode == 0o600


def test_state_directory_is_0700(state_dir: Path) -> None:
    state.registry_password(environ={})
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700


def test_environment_wins_and_is_not_stored(state_dir: Path) -> None:
    got = state.registry_password(environ={state.PASSWORD_ENV: "from-env"})
    assert (got, state.stored_password()) == ("from-env", None)


def test_password_source_never_reveals_the_value(state_dir: Path) -> None:
    secret = state.registry_password(environ={})
    assert state.password_source(environ={}) == "state file" and secret not in "state file"


def test_password_source_before_any_password(state_dir: Path) -> None:
    assert state.password_source(environ={}) == "not set yet"


def test_corrupt_state_file_is_replaced(state_dir: Path) -> None:
    state_dir.mkdir(parents=True)
    config.settings().state_file.write_text("{not json")
    assert state.registry_password(environ={}) == state.stored_password()


def test_save_keeps_other_keys(state_dir: Path) -> None:
    state.save({"other": 1})
    state.registry_password(environ={})
    assert state.load()["other"] == 1
