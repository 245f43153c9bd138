"""The docker commands the course prints, run in bash exactly as printed, against the engine
under test: run, logs, tag, login, push and pull (build: test_images; the clean-up's:
test_cleanup; curl: test_claims). Each result is checked on the engine and the registry
(what runs and answers, on which address, what the registry holds, what arrived), not only
the exit code."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import cleanup, course, registry
from labkit.containers import apps as containers
from labkit.course import terminal_cells as shell
from labkit.engine import config
from labkit.engine import docker as docker_cmd
from labkit.images import builder as images
from labkit.registry import pull

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")]
SUFFIX = "typed"
GREETING = "hello from a typed command!"
#: Asks the app for its page from inside its container, retrying while Flask starts.
ASK = ("import time, urllib.request\n"
       "for _ in range(100):\n"
       "    try:\n"
       "        print(urllib.request.urlopen('http://127.0.0.1:5000').read().decode()); break\n"
       "    except OSError:\n"
       "        time.sleep(0.1)\n")


@pytest.fixture(scope="module")
def image(ns: config.Settings, client: docker.DockerClient, tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("typed")
    course.write_app(GREETING, folder)
    course.write_dockerfile(folder)
    return images.build(folder, "typed-app", show=False, client=client).tag


@pytest.fixture(scope="module")
def reg(ns: config.Settings, client: docker.DockerClient) -> Iterator[registry.Registry]:
    yield registry.start_registry(client=client)
    cleanup.clean(client=client, show=False)


@pytest.fixture(scope="module")
def env(ns: config.Settings, tmp_path_factory) -> dict[str, str]:
    """A terminal's environment, as the notebooks' terminal cells have it, with a docker
    configuration of its own (the engine's CLI plugins kept) for the login."""
    environ = {**os.environ, "LABKIT_USER": ns.user, "LABKIT_STATE_DIR": str(ns.state_dir)}
    own = tmp_path_factory.mktemp("docker-config")
    plugins = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "cli-plugins"
    if plugins.is_dir():
        shutil.copytree(plugins, own / "cli-plugins")
    environ["DOCKER_CONFIG"] = str(own)
    shell.prepare(environ)  # labkit on PATH
    return environ


def typed(line: object, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``line`` run in bash as printed; it must succeed."""
    done = subprocess.run(["bash", "-o", "pipefail", "-c", str(line)], env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, (str(line), done.stdout, done.stderr)
    return done


def test_run_and_logs_as_printed(image: str, env: dict[str, str],
                                 client: docker.DockerClient) -> None:
    app = containers.run(image, name="typed", port=5000, client=client)
    run_line, logs_line = str(app.command), str(containers.logs(app.id, client=client).command)
    app.remove()
    typed(run_line, env)
    container = client.containers.get(app.name)
    # the address the printed -p names is the one the engine bound
    printed_ip = run_line.split(" -p ", 1)[1].split(":", 1)[0]
    bindings = container.attrs["HostConfig"]["PortBindings"]["5000/tcp"]
    assert [b["HostIp"] for b in bindings] == [printed_ip]
    assert container.image.id == client.images.get(image).id
    answer = typed(f"docker container exec {app.name} python -c \"{ASK}\"", env).stdout
    assert answer.strip() == GREETING
    logs = typed(logs_line, env)
    assert '"GET / HTTP/1.1" 200' in logs.stdout + logs.stderr


def test_tag_login_push_and_pull_as_printed(image: str, reg: registry.Registry,
                                            env: dict[str, str],
                                            client: docker.DockerClient) -> None:
    built = client.images.get(image)
    ref = registry.tag_for_registry(image, "typed-app", tag="typed", registry=reg,
                                    client=client)
    client.images.remove(str(ref))  # untag: the printed tag line makes it again
    typed(ref.command, env)
    assert client.images.get(str(ref)).id == built.id

    login = typed(registry.login_command(reg), env)
    assert "Login Succeeded" in login.stdout
    assert registry.credentials(reg)[1] not in login.stdout + login.stderr

    typed(docker_cmd("push", str(ref)), env)
    held = registry.manifest(ref.repository, "typed", reg, client=client)
    assert len(held["layers"]) == len(built.attrs["RootFS"]["Layers"])

    pull.forget_local(str(ref), client=client)
    assert not images.image_exists(str(ref), client=client)
    typed(docker_cmd("pull", str(ref)), env)
    arrived = client.images.get(str(ref))
    assert arrived.attrs["RootFS"]["Layers"] == built.attrs["RootFS"]["Layers"]
    typed(docker_cmd("logout", reg.address), env)
