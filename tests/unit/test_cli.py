"""The labkit command without an engine: parsing, doctor's checks and exit codes, delegation."""

from __future__ import annotations

import sys

import pandas as pd
import pytest

from labkit import cli, engine
from labkit import offline as prepare
from labkit.engine.engine_info import EngineInfo
from labkit.engine.errors import EngineUnavailable, PrepareError

INFO = EngineInfo(host="tcp://10.0.0.5:2376", version="20.10.24", api_version="1.41",
                         min_api_version="1.12", client_api_version="1.41",
                         os="linux", arch="amd64", storage_driver="overlay2",
                         image_store="graphdriver", cgroup_version="1",
                         images=3, containers=0, publish_host="10.0.0.5", bind_ip="0.0.0.0",
                         transport=engine.Transport("tls", "TLS, the engine's certificate "
                                                    "verified"))


def status(present: tuple[bool, bool, bool]) -> pd.DataFrame:
    return pd.DataFrame([
        {"image": s.name, "role": s.role, "present": p, "standin": p, "id": None,
         "size": 10**8 if p else 0}
        for s, p in zip(prepare.COURSE_IMAGES, present, strict=True)
    ])


@pytest.fixture
def engine_ok(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(engine, "connect", lambda environ=None: object())
    monkeypatch.setattr(engine, "info", lambda cli=None: INFO)


def fake_registry(monkeypatch: pytest.MonkeyPatch, running: bool) -> None:
    class Registry:
        @staticmethod
        def registry_status(client=None):
            return {"registry": "student-registry", "local": True, "running": running,
                    "status": "running" if running else "absent",
                    "address": "10.0.0.5:32768" if running else None, "auth": running}

    monkeypatch.setitem(sys.modules, "labkit.registry", Registry)


def test_parser_reads_prepare_flags() -> None:
    args = cli.parser().parse_args(["prepare", "--offline", "--trust-host-ca"])
    assert (args.command, args.offline, args.trust_host_ca) == ("prepare", True, True)


def test_no_engine_prints_one_sentence_and_exits_1(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(environ=None):
        raise EngineUnavailable("No Docker Engine answers at unix:///x.sock.", "Start Docker.")

    monkeypatch.setattr(engine, "connect", refuse)
    assert cli.main(["doctor"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "No Docker Engine answers at unix:///x.sock. Start Docker."
    assert "Traceback" not in err


def test_doctor_green_exits_0(engine_ok, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prepare, "image_status", lambda client=None: status((True,) * 3))
    fake_registry(monkeypatch, running=True)
    assert cli.main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "http://10.0.0.5:PORT" in out
    assert "NO " not in out


def test_doctor_missing_image_exits_1_with_the_fix(engine_ok, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(prepare, "image_status", lambda client=None: status((True, False, True)))
    fake_registry(monkeypatch, running=True)
    checks = cli.doctor_checks()
    failing = [c for c in checks if not c.ok]
    assert [c.name for c in failing] == ["image registry:2"]
    assert "labkit prepare" in failing[0].fix
    assert cli.main(["doctor"]) == 1


def test_doctor_registry_not_running_is_a_problem(engine_ok,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "image_status", lambda client=None: status((True,) * 3))
    fake_registry(monkeypatch, running=False)
    failing = [c for c in cli.doctor_checks() if not c.ok]
    assert [c.name for c in failing] == ["registry"]
    assert "labkit registry start" in failing[0].fix


def test_a_missing_dependency_is_not_hidden(engine_ok, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prepare, "image_status", lambda client=None: status((True,) * 3))
    monkeypatch.setitem(sys.modules, "labkit.registry", None)  # import fails
    with pytest.raises(ImportError):
        cli.main(["doctor"])


def test_render_puts_the_fix_under_a_failing_check() -> None:
    text = cli.render_checks([cli.Check("engine", True, "fine"),
                              cli.Check("image x", False, "missing", "Run it.")])
    lines = text.splitlines()
    assert lines[0].startswith("ok ")
    assert lines[1].startswith("NO ")
    assert lines[2].strip() == "→ Run it."


def test_prepare_passes_flags_and_prints_the_table(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    seen = {}

    def fake_prepare(**kwargs):
        seen.update(kwargs)
        return pd.DataFrame([{"image": "registry:2", "status": "built stand-in",
                              "standin": True, "id": "c61717402ec9", "size": 1, "seconds": 1.0,
                              "command": "docker build ..."}])

    monkeypatch.setattr(prepare, "prepare", fake_prepare)
    assert cli.main(["prepare", "--offline", "--trust-host-ca"]) == 0
    assert seen == {"offline": True, "trust_host_ca": True, "images": None}
    assert "built stand-in" in capsys.readouterr().out


def test_prepare_without_flags_leaves_the_settings_to_decide(
        monkeypatch: pytest.MonkeyPatch) -> None:
    seen = {}
    monkeypatch.setattr(prepare, "prepare",
                        lambda **kw: seen.update(kw) or pd.DataFrame(columns=["command"]))
    assert cli.main(["prepare"]) == 0
    assert seen["offline"] is None
    assert seen["trust_host_ca"] is None


def test_prepare_error_exits_1_with_the_hint(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def fail(**kwargs):
        raise PrepareError("debootstrap is not installed.", "Install it.")

    monkeypatch.setattr(prepare, "prepare", fail)
    assert cli.main(["prepare", "--offline"]) == 1
    assert "→ Install it." in capsys.readouterr().err


def test_clean_preview_delegates(monkeypatch: pytest.MonkeyPatch,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    class Cleanup:
        @staticmethod
        def clean(include_base=False, client=None, show=True):
            raise AssertionError("a preview must not clean")

        @staticmethod
        def preview_system_prune(client=None):
            return pd.DataFrame([{"kind": "image", "name": "someone/else"}])

    monkeypatch.setitem(sys.modules, "labkit.cleanup", Cleanup)
    assert cli.main(["clean", "--preview"]) == 0
    assert "someone/else" in capsys.readouterr().out


def test_an_engine_refusal_is_one_message_not_a_traceback(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import docker.errors

    def refuse(args):
        raise docker.errors.APIError("500 Server Error", explanation="failed to extract layer")

    monkeypatch.setitem(cli.COMMANDS, "clean", refuse)
    assert cli.main(["clean"]) == 1
    err = capsys.readouterr().err
    assert "failed to extract layer" in err
    assert "labkit doctor" in err
    assert "Traceback" not in err


def test_a_lost_engine_connection_is_one_message(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import requests

    def lost(args):
        raise requests.ConnectionError("Connection aborted.")

    monkeypatch.setitem(cli.COMMANDS, "clean", lost)
    assert cli.main(["clean"]) == 1
    err = capsys.readouterr().err
    assert "went away while labkit was trying to run `labkit clean`" in err
    assert "Traceback" not in err


def test_an_invalid_labkit_user_is_one_message(monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from labkit.engine import config

    monkeypatch.setenv("LABKIT_USER", "Bad User!")
    monkeypatch.setattr(config, "_current", None)
    assert cli.main(["registry", "status"]) == 1
    err = capsys.readouterr().err
    assert "LABKIT_USER='Bad User!' is not a valid name" in err
    assert "export LABKIT_USER=alice" in err
    assert "Traceback" not in err


def test_clean_prunes_the_build_cache_only_when_asked(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[object] = []

    class Report:
        items = pd.DataFrame([{"kind": "build cache", "name": "3 records"}])
        reclaimed_bytes = 0
        commands: list[str] = []
        build_cache = "Build cache kept: other learners use this engine (ann-b)."

    class Cleanup:
        @staticmethod
        def clean(include_base=False, client=None, show=True, build_cache_prune=None):
            asked.append(build_cache_prune)
            return Report()

        @staticmethod
        def preview_system_prune(client=None):
            raise AssertionError("no preview asked for")

    monkeypatch.setitem(sys.modules, "labkit.cleanup", Cleanup)
    assert cli.main(["clean"]) == 0
    assert "other learners use this engine" in capsys.readouterr().out
    assert cli.main(["clean", "--build-cache"]) == 0
    assert asked == [None, True]


def test_labkit_env_gives_a_terminal_the_course_user_and_labkit(tmp_path) -> None:
    """`eval "$(labkit env)"` in bash, with no engine to ask about a registry."""
    import os
    import subprocess
    from pathlib import Path

    labkit = Path(sys.executable).parent / "labkit"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "LABKIT_USER": "ann o'neil",
           "LABKIT_STATE_DIR": str(tmp_path / "state"), "DOCKER_HOST": "tcp://127.0.0.1:9",
           "DOCKER_CONFIG": str(tmp_path / "docker")}
    script = f'eval "$({labkit} env)"; printf "%s|%s|%s" "$LABKIT_USER" ' \
             '"${REGISTRY-unset}" "$(command -v labkit)"'
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True,
                         timeout=60, check=True, cwd=os.getcwd()).stdout
    assert out == f"ann o'neil|unset|{labkit}"
