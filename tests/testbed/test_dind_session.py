"""A DinD engine session for real, on this machine's engine (not the DinD one the integration
tests use): started through testbed.dind, from Python and from its command line, it runs the
engine its spec asks for with the course images, drives it with the engine image's own docker
CLI, and when stopped leaves no container, no volume and no copy of that CLI behind. About
30 s; run it with `pytest -q tests/testbed`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from testbed import dind, engines

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


def host(*args: str) -> list[str]:
    """The lines the docker CLI prints for ``args`` on this machine's engine (it must answer)."""
    run = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    assert run.returncode == 0, f"docker {' '.join(args)}: {run.stderr}"
    return run.stdout.split()


class Seen:
    """What a test saw of its session's engine container: its volumes."""

    def __init__(self) -> None:
        self.volumes: set[str] = set()


@pytest.fixture
def seen() -> Seen:
    """The volumes a test's engine container had (recorded by check_engine)."""
    return Seen()


@pytest.fixture
def state(tmp_path: Path, seen: Seen) -> Iterator[Path]:
    """A state directory of the test's own; afterwards, nothing of it is on the engine (other
    runs may start and stop engines of their own meanwhile: only this one's are checked)."""
    yield tmp_path
    assert host("ps", "-aq", "--filter", f"label={dind.STATE_LABEL}={tmp_path}") == []
    left = seen.volumes & set(host("volume", "ls", "-q"))
    assert not left, f"the DinD engine's volumes were left: {left}"
    assert not (tmp_path / "env").exists()
    assert not list(tmp_path.glob("labkit-dind-*")), "its certificates were left"
    assert not (tmp_path / "client").exists(), "the engine's docker CLI was left"


def check_engine(session: dind.Dind, spec: engines.EngineSpec, seen: Seen) -> None:
    """The engine that answers runs ``spec`` and has the course images; its volumes are
    recorded in ``seen``."""
    version = session.docker("version", "--format", "{{.Server.Version}}").stdout
    assert version.startswith(spec.version + "."), version
    store = session.docker("info", "--format", "{{range .DriverStatus}}{{index . 1}} {{end}}")
    assert (engines.CONTAINERD_SNAPSHOTTER in store.stdout) is spec.containerd, store.stdout
    for image in dind.COURSE_IMAGES:
        assert session.docker("image", "inspect", image).returncode == 0, image
    check_client(session, spec)
    (container,) = host("ps", "-q", "--filter", f"label={dind.STATE_LABEL}={session.state}")
    seen.volumes |= set(host("inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", container))
    assert seen.volumes, "the engine's /var/lib/docker is a volume (the image's VOLUME)"


def check_client(session: dind.Dind, spec: engines.EngineSpec) -> None:
    """The engine's environment runs the engine image's own docker CLI, with a config of its
    own: the same version as the engine, buildx exactly where the image's Debian has it."""
    env = session.environ()
    client = session.state / "client"
    assert env["PATH"].split(os.pathsep)[0] == str(client / "bin")
    assert env["DOCKER_CONFIG"] == str(client / "config")
    versions = session.docker("version", "--format", "{{.Client.Version}} {{.Server.Version}}")
    assert versions.returncode == 0, versions.stderr
    cli, server = versions.stdout.split()
    assert cli.startswith(spec.version + ".") and server.startswith(spec.version + "."), cli
    buildx = session.docker("buildx", "version")
    if spec.suite in engines.BUILDX_SUITES:
        assert buildx.returncode == 0 and "buildx" in buildx.stdout, buildx.stderr
        assert (client / "config" / "cli-plugins" / "docker-buildx").is_file()
    else:
        assert buildx.returncode != 0, buildx.stdout
        assert "'buildx' is not a docker command" in buildx.stderr, buildx.stderr


def test_a_session_from_python_starts_the_engine_asked_for_and_removes_it(
        state: Path, seen: Seen) -> None:
    spec = engines.parse("28.5+containerd+api1.44")
    with dind.own_engine(spec, state) as session:
        check_engine(session, spec, seen)
        min_api = session.docker("version", "--format", "{{.Server.MinAPIVersion}}").stdout
        assert min_api.strip() == "1.44"


def test_the_command_line_starts_20_10_and_stops_it(state: Path, seen: Seen) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LABKIT_DIND_HOST"} | {
        "LABKIT_DIND_STATE": str(state), "LABKIT_ENGINE": "20.10"}
    command = [sys.executable, "-m", "testbed.dind"]
    started = subprocess.run([*command, "start"], cwd=ROOT, env=env, capture_output=True,
                             text=True, check=False)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert "dind: engine 20.10: Docker 20.10." in started.stdout
        check_engine(dind.Dind.from_environ(env), engines.parse("20.10"), seen)
    finally:
        stopped = subprocess.run([*command, "stop"], cwd=ROOT, env=env, capture_output=True,
                                 text=True, check=False)
    assert stopped.returncode == 0 and "dind: removed labkit-dind-" in stopped.stdout


def test_stop_reaps_a_container_an_interrupted_start_left(state: Path) -> None:
    # started with the session's label, its name never written down (as when a start is
    # interrupted between `docker run` and the name file)
    host("run", "-d", "--label", f"org.labkit.role={dind.ROLE}", "--label",
         f"{dind.STATE_LABEL}={state}", "--entrypoint", "sleep", "python:3.11-slim-bookworm",
         "600")
    dind.Dind(state=state).stop()
