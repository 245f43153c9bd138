"""classroom/reaper.py: what `scripts/classroom.sh stop` ends by the hub's tag (no engine)."""

from __future__ import annotations

import importlib.util
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load():
    path = ROOT / "classroom" / "reaper.py"
    spec = importlib.util.spec_from_file_location("classroom_reaper", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


reaper = _load()
#: A child that ignores SIGTERM (as a stuck service may): only SIGKILL ends it.
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(600)")


@pytest.fixture
def tag(tmp_path: Path) -> Iterator[str]:
    """A tag of the test's own; whatever still carries it afterwards is killed."""
    value = str(tmp_path / f"classroom-{secrets.token_hex(4)}")
    yield value
    for pid in reaper.tagged(value):
        os.kill(pid, 9)


def _start(tag: str, code: str = "import time; time.sleep(600)") -> subprocess.Popen[bytes]:
    env = os.environ | {reaper.VARIABLE: tag}
    process = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE)
    if "ready" in code:  # its signal handler is set
        assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    return process


def test_only_processes_with_exactly_that_tag_are_found(tag: str) -> None:
    mine, other = _start(tag), _start(tag + "-other")
    try:
        assert reaper.tagged(tag) == [mine.pid]
    finally:
        for process in (mine, other):
            process.kill()
            process.wait()


def test_reap_ends_the_tagged_processes_with_sigterm(tag: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    process = _start(tag)
    assert reaper.reap(tag, grace=5) == []
    assert process.wait(timeout=5) == -15
    assert f"pids {process.pid}" in capsys.readouterr().out


def test_reap_kills_what_ignores_sigterm(tag: str, capsys: pytest.CaptureFixture[str]) -> None:
    process = _start(tag, STUBBORN)
    assert reaper.reap(tag, grace=1) == []
    assert process.wait(timeout=5) == -9
    assert "still running after SIGTERM" in capsys.readouterr().out


def test_nothing_tagged_is_nothing_to_do(tag: str) -> None:
    assert reaper.main([tag]) == 0
    assert reaper.main([]) == 2
