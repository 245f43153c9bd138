"""The docker commands equivalent to labkit's container calls (shown to the learner)."""

from __future__ import annotations

from labkit.engine import DockerCommand
from labkit.engine import docker as docker_cmd


def run_command(name: str, image: str, port: int, bind_ip: str,
                init: bool = False) -> DockerCommand:
    """``docker container run -d [--init] --name NAME -p IP::PORT IMAGE``."""
    return docker_cmd("container", "run", "-d", *(["--init"] if init else []), "--name", name,
                      "-p", f"{bind_ip}::{port}", image)


def logs_command(name: str, tail: int | None = None) -> DockerCommand:
    """``docker container logs [--tail N] NAME``."""
    return docker_cmd("container", "logs", *(["--tail", str(tail)] if tail else []), name)


def stop_command(name: str, timeout: int | None = None) -> DockerCommand:
    """``docker container stop [-t SECONDS] NAME``."""
    return docker_cmd("container", "stop", *([] if timeout is None else ["-t", str(timeout)]), name)


def exec_command(name: str, command: str) -> DockerCommand:
    """``docker container exec NAME sh -c COMMAND``."""
    return docker_cmd("container", "exec", name, "sh", "-c", command)


def remove_command(name: str) -> DockerCommand:
    """``docker container rm -f NAME``."""
    return docker_cmd("container", "rm", "-f", name)


def diff_command(name: str) -> DockerCommand:
    """``docker container diff NAME``."""
    return docker_cmd("container", "diff", name)


def list_command() -> DockerCommand:
    """``docker container ls --all`` (every container; the table keeps this learner's)."""
    return docker_cmd("container", "ls", "--all")
