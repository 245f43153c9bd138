"""When an app's container fails: the error that says why, and what labkit did with it.

One rule for every failure of :func:`labkit.containers.apps.run`:

- a container that never started (the engine refused to start it) is removed: there is
  nothing in it to read;
- a container that started and then exited, or never answered, is stopped and **kept**, so
  that ``docker container logs NAME`` shows what the app said; the next ``run`` of the same
  name replaces it. The error says so in its hint.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import docker.errors
from docker.models.containers import Container

from labkit.engine import AppError, ContainerFailed, explanation, strip_ansi

LOG_TAIL = 20


def tail(container: Container, lines: int = LOG_TAIL) -> str:
    """The last lines of a container's logs ('' when the engine cannot give them)."""
    try:
        return strip_ansi(container.logs(tail=lines).decode("utf-8", "replace")).rstrip()
    except docker.errors.APIError:
        return ""


def tail_once_logged(container: Container, marker: str, wait: float = 3.0) -> str:
    """The logs' tail, once ``marker`` shows in it or ``wait`` seconds have passed.

    An engine ships a container's output to its log driver a moment after the app wrote it,
    so an app's traceback can reach ``docker container logs`` after its 500 reached us. Web
    servers log the request line after the error, so the marker is that request's path."""
    deadline = time.monotonic() + wait
    text = tail(container)
    while marker not in text and time.monotonic() < deadline:
        time.sleep(0.1)
        text = tail(container)
    return text


def kept(name: str) -> str:
    """The sentence every error about a kept container ends with."""
    return (f"The container is kept, stopped: `docker container logs {name}` shows what the "
            "app said; the next run replaces it.")


def start_failed(container: Container, name: str, exc: docker.errors.APIError,
                 command: object) -> ContainerFailed:
    """The engine refused to start a created container: remove it, say why."""
    try:
        container.remove(force=True)
        removed = "labkit removed the container it had created"
    except docker.errors.APIError:
        removed = f"remove it with `docker container rm -f {name}`"
    text = explanation(exc)
    if "port is already allocated" in text or "address already in use" in text:
        fix = "Another program holds that host port: stop it, or run again (a new port is chosen)"
    else:
        fix = "Check the image's CMD (`docker image inspect`) and rebuild"
    return ContainerFailed(f"The container {name} could not start: {text}",
                           hint=f"{fix}; {removed}. `{command}` fails the same way.")


def stop_quietly(container: Container) -> None:
    """Stop a container that never answered (SIGKILL after 1 s): nothing is left running."""
    with contextlib.suppress(docker.errors.APIError):
        container.stop(timeout=1)


def exited(container: Container, name: str, port: int) -> ContainerFailed:
    """The app exited before answering."""
    code = (container.attrs.get("State") or {}).get("ExitCode")
    return ContainerFailed(
        f"The container {name} exited (code {code}) before answering on port {port}.",
        logs=tail(container),
        hint=f"The app must start and listen on 0.0.0.0:{port} inside. {kept(name)}",
    )


def no_answer(container: Container, name: str, url: str, port: int,
              timeout: float) -> ContainerFailed:
    """The app ran but never answered in time: stop it (kept), say where to look."""
    stop_quietly(container)
    logs = tail(container)
    where = ("It listens on 127.0.0.1 inside the container, which nothing outside reaches: "
             "use host=\"0.0.0.0\"" if "127.0.0.1" in logs or "localhost" in logs
             else f"Check that the app listens on 0.0.0.0:{port} inside the container")
    return ContainerFailed(f"The container {name} did not answer at {url} within "
                           f"{timeout:g} s.", logs=logs, hint=f"{where}. {kept(name)}")


def http_failed(name: str, path: str, response: Any, container: Container | None
                ) -> AppError:
    """The app answered an HTTP error status (e.g. 500): its logs' tail says why."""
    status = int(response.status_code)
    reason = getattr(response, "reason", "") or ""
    fix = ("The app raised an error: its traceback is in the logs above; fix app.py, rebuild "
           "and run again" if status >= 500
           else "The app has no such page, or refused the request: check the path")
    return AppError(f"The app in {name} answered {status} {reason} to GET {path}.".replace(
        "  ", " "), status_code=status,
        logs=(tail_once_logged(container, f"GET {path}") if status >= 500 else tail(container))
        if container else "",
        hint=f"{fix} (`docker container logs {name}`).")


def unreachable(name: str, url: str, exc: BaseException) -> ContainerFailed:
    """The app does not answer at all (stopped, crashed, or never started)."""
    return ContainerFailed(f"The app in {name} does not answer at {url} "
                           f"({type(exc).__name__}).",
                           hint=f"Is it still running? `docker container ls -a` and "
                                f"`docker container logs {name}` show what happened.")
