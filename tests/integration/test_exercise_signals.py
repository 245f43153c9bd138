"""Exercise 3b (a container that `docker stop` ends at once), judged from the engine's record:
the exit code after `docker container stop -t 2`, and which process was PID 1."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import cleanup, course
from labkit.containers import apps as containers
from labkit.course import exercises
from labkit.engine import connection as engine
from labkit.engine.config import Settings

SUFFIX = "sig"


@pytest.fixture(scope="module")
def lab(ns: Settings, client: docker.DockerClient,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A notebooks folder where steps 1-2 have run: the app's image exists."""
    folder = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        course.ensure(3, message=course.HELLO)
        yield folder
    cleanup.clean(client=client, show=False)


def exit_code(client: docker.DockerClient, name: str) -> int:
    return int(client.api.inspect_container(name)["State"]["ExitCode"])


def test_not_attempted_is_not_a_failure(lab: Path) -> None:
    assert exercises.ex03_prompt_stop().passed is None


def test_a_pid_1_that_ignores_sigterm_fails(lab: Path, client: docker.DockerClient,
                                            ns: Settings) -> None:
    containers.run(course.image_name(), name="quick-stop")  # python app.py is PID 1
    check = exercises.ex03_prompt_stop()
    assert check.passed is False, str(check)
    assert exit_code(client, ns.container_name("quick-stop")) == 137
    assert "137" in str(check)
    assert "`python app.py`" in str(check)  # docker top named PID 1


def test_init_as_pid_1_passes_and_stays_passed(lab: Path, client: docker.DockerClient,
                                               ns: Settings) -> None:
    app = containers.run(course.image_name(), name="quick-stop", init=True)  # replaces it
    assert "--init" in str(app.command)
    check = exercises.ex03_prompt_stop()
    assert check.passed is True, str(check)
    assert exit_code(client, app.name) == 143  # 128 + SIGTERM, passed on by docker-init
    assert "docker-init" in str(check) or "tini" in str(check)
    assert exercises.ex03_prompt_stop().passed is True  # the stopped container's record
    app.remove()


def test_the_terminal_solution_passes(lab: Path, client: docker.DockerClient,
                                      ns: Settings) -> None:
    assert shutil.which("docker"), "the docker CLI is needed: the course's terminal cells use it"
    name = ns.container_name("quick-stop")
    containers.remove(name)
    subprocess.run(["docker", "container", "run", "-d", "--init", "--name", name,
                    "-p", f"{engine.bind_ip()}::5000", course.image_name()],
                   check=True, capture_output=True)
    try:
        check = exercises.ex03_prompt_stop()
        assert check.passed is True, str(check)
        assert exit_code(client, name) == 143
    finally:
        containers.remove(name)


def test_a_container_that_does_not_run_the_app_is_not_the_answer(
        lab: Path, client: docker.DockerClient, ns: Settings) -> None:
    name = ns.container_name("quick-stop")
    containers.remove(name)
    # the course's image, with a command that is not the app: it ends at once, but proves nothing
    client.containers.create(course.image_name(), ["python", "-c", "pass"], name=name,
                             labels=ns.labels("app")).start()
    try:
        check = exercises.ex03_prompt_stop()
        assert check.passed is False, str(check)
        assert not check.findings[0][0]
    finally:
        containers.remove(name)
