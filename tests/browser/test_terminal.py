"""A terminal of the lab runs the docker CLI of the lab's environment, as its kernels do, and
has what the notebooks' terminal cells use ($LABKIT_USER, $REGISTRY, labkit on PATH).

`make test` gives each engine its own docker CLI first on PATH (testbed.dind); what a
learner types in a JupyterLab terminal must reach the same CLI, with the same DOCKER_CONFIG,
not the one a login shell's PATH would find.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from tornado.websocket import websocket_connect

from labkit.course import terminal_environment

if TYPE_CHECKING:  # the fixture's type; conftest modules are not imported by name
    from conftest import LabServer

FORMAT = "CLI={{.Client.Version}}"


async def typed(server: LabServer, name: str, line: str, until: re.Pattern[str]) -> str:
    """What the terminal ``name`` prints after ``line`` is typed, up to ``until``."""
    url = server.url.replace("http://", "ws://") + f"/terminals/websocket/{name}"
    socket = await websocket_connect(f"{url}?token={server.token}")
    seen = ""
    try:
        await socket.write_message(json.dumps(["stdin", line + "\r"]))
        while not until.search(seen):
            message = await asyncio.wait_for(socket.read_message(), timeout=30)
            if message is None:
                break
            kind, *body = json.loads(message)
            if kind == "stdout":
                seen += "".join(body)
    finally:
        socket.close()
    return seen


@pytest.mark.browser
def test_a_terminal_runs_the_environments_docker_cli(lab_server: LabServer) -> None:
    docker = shutil.which("docker")
    assert docker, "no docker CLI on this environment's PATH"
    expected = subprocess.run([docker, "version", "--format", FORMAT], capture_output=True,
                              text=True, check=False).stdout.strip()
    assert expected.startswith("CLI="), expected
    terminal = lab_server.api("/api/terminals", method="POST")
    assert isinstance(terminal, dict)
    try:
        line = (f"echo WHICH=$(command -v docker) CONFIG=${{DOCKER_CONFIG:-none}} "
                f"USER=$LABKIT_USER REGISTRY=${{REGISTRY:-none}} LABKIT=$(command -v labkit); "
                f"docker version --format '{FORMAT}'")
        # a thread of its own: the browser tests' Playwright keeps an event loop running here
        with ThreadPoolExecutor(1) as apart:
            out = apart.submit(asyncio.run, typed(lab_server, terminal["name"], line,
                                                  re.compile(r"CLI=\d[^\s']*"))).result(120)
    finally:
        lab_server.api(f"/api/terminals/{terminal['name']}", method="DELETE")
    assert f"WHICH={docker} " in out, out
    assert f"CONFIG={os.environ.get('DOCKER_CONFIG', 'none')}" in out, out
    assert expected in out, out
    # what the notebooks' terminal cells use: the course user, its registry, labkit
    wanted = lab_server.terminal
    assert wanted["LABKIT_USER"] == terminal_environment()["LABKIT_USER"]
    assert f"USER={wanted['LABKIT_USER']} " in out, out
    assert f"REGISTRY={wanted.get('REGISTRY', 'none')} " in out, out
    assert f"LABKIT={shutil.which('labkit', path=wanted.get('PATH'))}" in out, out
