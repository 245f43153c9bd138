"""Containers: run an app with a published port and wait for it, logs, stop, remove, diff.

Every container carries this namespace's labels; labkit removes or stops only containers
that carry them, never one the user made by hand.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
import requests
from docker.models.containers import Container

from labkit import engine
from labkit.containers import failures
from labkit.containers.commands import (
    diff_command,
    list_command,
    logs_command,
    run_command,
    stop_command,
)
from labkit.engine import (
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_ROLE,
    CommandOutput,
    ContainerFailed,
    DockerCommand,
    ImageMissing,
    LabkitError,
    boundary,
    html_of,
    invalid_name,
    is_invalid_name,
    settings,
    strip_ansi,
    translate,
    wait_until,
)
from labkit.images import owned

if TYPE_CHECKING:
    import pandas as pd

POLL_INTERVAL = 0.05
#: ``docker container diff`` kinds, as the engine's API numbers them.
DIFF_KINDS = {0: "changed", 1: "added", 2: "deleted"}
DIFF_LETTERS = {"changed": "C", "added": "A", "deleted": "D"}


def http_session() -> requests.Session:
    """A session for talking to the apps: no proxy or CA bundle from the environment."""
    session = requests.Session()
    session.trust_env = False
    return session


#: A container's log text that also carries the ``docker container logs`` line.
ContainerLogs = CommandOutput


# --------------------------------------------------------------------------- lookup


def _is_ours(container: Container) -> bool:
    """labkit's label for this learner, or no such label and an image of this learner's
    (a container run in the terminal: :mod:`labkit.images.owned`)."""
    labels = container.labels or {}
    if LABEL_NAMESPACE in labels:
        return (labels.get(LABEL_MANAGED) == "true"
                and labels.get(LABEL_NAMESPACE) == settings().namespace)
    return owned.is_own_container(container.attrs, owned.recorded_ids())


def _find(ref: Any, cli: docker.DockerClient) -> Container | None:
    """The container a name (``hello`` or ``student-hello``), id, Container or app names."""
    if isinstance(ref, RunningApp | Container):
        candidates = [ref.id]
    else:
        name = str(ref)
        candidates = [name]
        if not name.startswith(f"{settings().namespace}-"):
            candidates.insert(0, settings().container_name(name))
    for candidate in candidates:
        try:
            return cli.containers.get(candidate)
        except docker.errors.NotFound:
            continue
    return None


def _require_ours(container: Container, action: str) -> None:
    if not _is_ours(container):
        raise LabkitError(
            f"The container {container.name} was not created by labkit in namespace "
            f"'{settings().namespace}'; labkit will not {action} it.",
            f"Use `docker container {action} {container.name}` yourself if you mean it.",
        )


# --------------------------------------------------------------------------- run


@dataclass
class RunningApp:
    """A container labkit started, with the URL where its published port answers."""

    name: str
    id: str
    image: str
    url: str
    host_port: int
    command: DockerCommand
    client: docker.DockerClient | None = field(default=None, repr=False, compare=False)

    @property
    def container(self) -> Container:
        """The docker-py Container (reloaded)."""
        return (self.client or engine.client()).containers.get(self.id)

    def get(self, path: str = "/") -> str:
        """HTTP GET a path of the app; returns the body text. An error status (e.g. 500)
        raises :class:`~labkit.engine.errors.AppError` with the tail of the container's logs."""
        base = self.url.split("/", 3)
        url = f"{base[0]}//{base[2]}/{path.lstrip('/')}"
        try:
            with http_session() as session:
                response = session.get(url, timeout=10)
        except requests.RequestException as exc:
            raise failures.unreachable(self.name, url, exc) from None
        if response.status_code >= 400:
            cli = self.client or engine.client()
            container = _find(self.id, cli)
            raise failures.http_failed(self.name, "/" + path.lstrip("/"), response, container)
        return response.text

    def logs(self, tail: int | None = None) -> ContainerLogs:
        """The container's logs (stdout and stderr), with the equivalent command."""
        return logs(self.id, tail=tail, client=self.client)

    def stop(self, timeout: int = 10) -> DockerCommand:
        """Stop the container (SIGTERM, then SIGKILL after ``timeout`` s)."""
        return stop(self.id, timeout=timeout, client=self.client)

    def remove(self) -> None:
        """Remove the container (forced); safe to repeat."""
        remove(self.id, client=self.client)

    def diff(self) -> pd.DataFrame:
        """What changed in the container's writable layer (see :func:`diff`)."""
        return diff(self.id, client=self.client)

    def _repr_html_(self) -> str:
        return html_of(self)

    def __enter__(self) -> RunningApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def _host_port(container: Container, port: int) -> int | None:
    bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in bindings.get(f"{port}/tcp") or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


@boundary("run the container")
def run(
    image: Any,
    name: str = "hello",
    *,
    port: int = 5000,
    path: str = "/",
    timeout: float = 30,
    role: str = "app",
    init: bool = False,
    client: docker.DockerClient | None = None,
) -> RunningApp:
    """Run ``image`` detached with ``port`` published on a free host port; wait until it answers.

    ``image`` is a name or a :class:`labkit.images.builder.BuildResult`. A labkit container of the
    same name is replaced (re-running a notebook works); anyone else's is left alone. One
    that the engine cannot start is removed; one that exits or never answers is stopped and
    kept for ``docker container logs`` (:mod:`labkit.containers.failures`). Ports a remote
    engine publishes must be reachable (:func:`labkit.engine.connection.require_reachable`), else
    nothing runs. ``init``: a small init process (``docker run --init``) is the container's
    first process; it passes signals on to the app and reaps its children.
    """
    cli = client or engine.client()
    engine.require_reachable(f"the app's port {port}")
    image_ref = str(image) if isinstance(image, str) else str(getattr(image, "tag", image))
    cname = settings().container_name(name)
    bind = engine.bind_ip()
    command = run_command(cname, image_ref, port, bind, init)

    try:
        existing = cli.containers.get(cname)
    except docker.errors.NotFound:
        existing = None
    if existing is not None:
        if not _is_ours(existing):
            raise LabkitError(
                f"A container named {cname} exists that labkit did not create in namespace "
                f"'{settings().namespace}'; labkit leaves it alone.",
                f"Remove it yourself (`docker container rm -f {cname}`) or choose another name.",
            )
        _remove_quietly(existing)

    try:  # create + start, never containers.run: that would pull a missing image
        container = cli.containers.create(
            image_ref, name=cname, detach=True, labels=settings().labels(role),
            ports={f"{port}/tcp": (bind, None)}, init=init or None,
        )
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"The image {image_ref} is not on the engine.",
                           "Build it first (see the build step); labkit never pulls.") from exc
    except docker.errors.APIError as exc:
        if is_invalid_name(exc):
            kind = "container" if "container name" in str(exc.explanation).lower() else "image"
            raise invalid_name(kind, cname if kind == "container" else image_ref, exc,
                               command) from exc
        raise translate(exc, f"create the container {cname}", command) from exc
    try:
        container.start()
    except docker.errors.APIError as exc:
        raise failures.start_failed(container, cname, exc, command) from exc
    container.reload()
    host_port = _host_port(container, port)
    url = f"http://{engine.publish_host()}:{host_port}{path}"
    app = RunningApp(cname, container.id, image_ref, url, host_port or 0, command, cli)

    session = http_session()

    def answers() -> bool:
        nonlocal url, host_port
        if host_port is not None:
            try:
                session.get(url, timeout=(1, 5))
                return True
            except requests.RequestException:
                pass
        container.reload()
        if container.status in ("exited", "dead"):
            raise failures.exited(container, cname, port)
        if host_port is None:
            host_port = _host_port(container, port)
            url = f"http://{engine.publish_host()}:{host_port}{path}"
        return False

    try:
        wait_until(answers, timeout, POLL_INTERVAL, f"{cname} to answer HTTP at {url}")
    except TimeoutError as exc:
        raise failures.no_answer(container, cname, url, port, timeout) from exc
    finally:
        session.close()
    app.url, app.host_port = url, int(host_port or 0)
    return app


# --------------------------------------------------------------------------- operations


def _remove_quietly(container: Container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:  # "removal ... is already in progress"
        if exc.status_code != 409:
            raise


def _get(ref: Any, cli: docker.DockerClient) -> Container:
    container = _find(ref, cli)
    if container is None:
        raise ContainerFailed(f"No container {ref} on the engine.",
                              hint="Run it first (see the run step).")
    return container


@boundary("read the container's logs")
def logs(ref: Any, tail: int | None = None,
         client: docker.DockerClient | None = None) -> ContainerLogs:
    """A container's logs as plain text (``tail``: only the last lines); colour codes
    (Flask's warning is red) are removed, so a stored notebook reads the same anywhere.
    Shown in a notebook, they come with their ``docker container logs`` line."""
    cli = client or engine.client()
    container = _get(ref, cli)
    data = container.logs(tail=tail if tail else "all")
    return ContainerLogs(strip_ansi(data.decode("utf-8", "replace")),
                         logs_command(container.name, tail))


@boundary("stop the container")
def stop(ref: Any, timeout: int = 10, client: docker.DockerClient | None = None
         ) -> DockerCommand:
    """Stop a labkit container; a missing one counts as stopped. Returns the equivalent
    ``docker container stop -t TIMEOUT NAME`` line."""
    cli = client or engine.client()
    container = _find(ref, cli)
    if container is None:
        return stop_command(str(ref), timeout)
    _require_ours(container, "stop")
    with contextlib.suppress(docker.errors.NotFound):
        container.stop(timeout=timeout)
    return stop_command(container.name, timeout)


@boundary("remove the container")
def remove(ref: Any, client: docker.DockerClient | None = None) -> None:
    """Remove a labkit container (forced); safe to repeat, a missing one counts as done."""
    cli = client or engine.client()
    container = _find(ref, cli)
    if container is None:
        return
    _require_ours(container, "rm")
    _remove_quietly(container)


def diff_frame(changes: Iterable[Mapping[str, Any]] | None) -> pd.DataFrame:
    """Shape the engine's change list: columns path, kind (added/changed/deleted), letter."""
    import pandas as pd
    rows = []
    for change in changes or []:
        kind = DIFF_KINDS.get(int(change.get("Kind", -1)), "unknown")
        rows.append({"path": change.get("Path", ""), "kind": kind,
                     "letter": DIFF_LETTERS.get(kind, "?")})
    return pd.DataFrame(rows, columns=["path", "kind", "letter"])


@boundary("list the container's changes")
def diff(ref: Any, client: docker.DockerClient | None = None) -> pd.DataFrame:
    """``docker container diff`` as a DataFrame: path, kind (added/changed/deleted), letter."""
    cli = client or engine.client()
    container = _get(ref, cli)
    frame = diff_frame(container.diff())
    frame.attrs["command"] = diff_command(container.name)
    return frame


def _ports_text(ports: Iterable[Mapping[str, Any]] | None) -> str:
    parts = []
    for p in ports or []:
        inner = f"{p.get('PrivatePort')}/{p.get('Type', 'tcp')}"
        if p.get("PublicPort"):
            parts.append(f"{p.get('IP', '')}:{p['PublicPort']}->{inner}")
        else:
            parts.append(inner)
    return ", ".join(sorted(set(parts)))


def containers_frame(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Shape the engine's container list: name, image, status, state, ports, id, role."""
    import pandas as pd
    rows = [
        {
            "name": (e.get("Names") or ["?"])[0].lstrip("/"),
            "image": e.get("Image", ""),
            "status": e.get("Status", ""),
            "state": e.get("State", ""),
            "ports": _ports_text(e.get("Ports")),
            "id": str(e.get("Id", ""))[:12],
            "role": (e.get("Labels") or {}).get(LABEL_ROLE, ""),
        }
        for e in entries
    ]
    return pd.DataFrame(rows, columns=["name", "image", "status", "state", "ports", "id", "role"])


@boundary("list the containers")
def list_containers(client: docker.DockerClient | None = None) -> pd.DataFrame:
    """This learner's containers, running or not (see :func:`containers_frame`): labkit's,
    and those run from this learner's images (:mod:`labkit.images.owned`)."""
    cli = client or engine.client()
    entries = owned.own_containers(cli, all=True)
    frame = containers_frame(entries)
    frame.attrs["command"] = list_command()
    return frame
