"""The registry, as a learner uses it: log in, tag, push (the server is in
:mod:`labkit.registry.server`, the HTTP queries in :mod:`labkit.registry.api`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import docker
from docker.errors import APIError
from docker.utils import parse_repository_tag

from labkit.engine import DockerCommand, PushObserver, RegistryError, boundary, push_observers
from labkit.engine import docker as docker_cmd
from labkit.images import get_image
from labkit.registry.model import LoginResult, Registry, TaggedName
from labkit.registry.password import PASSWORD_ENV
from labkit.registry.push_stream import LayerProgress, PushResult, PushStream
from labkit.registry.server import (
    PASSWORD_HINT,
    START_HINT,
    credentials,
    find_registry,
    resolve_registry,
    server_client,
)
from labkit.registry.server_config import (
    CONFIG_DIR,
    htpasswd_matches,
    read_config_file,
)

# --------------------------------------------------------------------------- login, tag, push


def login_command(reg: Registry) -> DockerCommand:
    """The runnable ``docker login`` line: the password is piped in, never typed or shown
    (``labkit registry password`` writes the stored one to a pipe, refusing a terminal)."""
    source = "labkit registry password" if reg.local else f"printenv {PASSWORD_ENV}"
    return docker_cmd("login", reg.address, "-u", reg.username, "--password-stdin",
                      stdin=source)


@boundary("log in to the registry")
def login(registry: Registry | str | None = None,
          client: docker.DockerClient | None = None) -> LoginResult:
    """Log the engine in to the registry (always asking the engine: ``reauth=True``)."""
    cli = server_client(client)
    reg = resolve_registry(registry, client)
    user, password = credentials(reg)
    command = login_command(reg)
    try:
        answer = cli.login(username=user, password=password, registry=reg.login_address,
                           reauth=True)
    except APIError as exc:
        text = str(exc.explanation or exc)
        if "401" in text or "unauthorized" in text.lower() or _refuses(cli, reg, user, password):
            raise RegistryError(
                f"Login to {reg.address} refused: wrong user name or password.", PASSWORD_HINT,
            ) from None
        raise RegistryError(f"Login to {reg.address} failed: {text}",
                            SERVER_ERROR_HINT if server_failed(text) else START_HINT) from None
    return LoginResult(registry=reg.address, username=user,
                       status=str(answer.get("Status", "Login Succeeded")), command=command)


def _refuses(cli: docker.DockerClient, reg: Registry, user: str, password: str) -> bool:
    """True when the local registry's htpasswd refuses this password. The engine's answer
    does not always say so: Docker 28 goes on to plain HTTP after the HTTPS 401 and reports
    that attempt's 400 instead."""
    if not reg.local or not reg.container_id:
        return False
    try:
        container = cli.containers.get(reg.container_id)
    except docker.errors.NotFound:  # re-created since (same address): ask the one running now
        now = find_registry(cli)
        if now is None or now.address != reg.address or not now.container_id:
            return False
        container = cli.containers.get(now.container_id)
    stored = read_config_file(container, f"{CONFIG_DIR}/htpasswd")
    return not htpasswd_matches(stored, user, password)


def repository_for(name: str = "python-hello-world", registry: Registry | str | None = None,
                   client: docker.DockerClient | None = None) -> str:
    """The repository name ``<registry>/<username>/<name>`` for this registry."""
    return resolve_registry(registry, client).repository(name)


@boundary("tag the image for the registry")
def tag_for_registry(image: Any, name: str = "python-hello-world", tag: str = "latest",
                     registry: Registry | str | None = None,
                     client: docker.DockerClient | None = None) -> TaggedName:
    """Tag ``image`` (a name, id or docker-py Image) as ``<registry>/<username>/<name>:tag``."""
    cli = server_client(client)
    repository = repository_for(name, registry, client)
    source = image if isinstance(image, str) else image.id
    obj = get_image(source, client=cli)
    obj.tag(repository, tag)
    shown = image if isinstance(image, str) else (obj.tags[0] if obj.tags else obj.short_id)
    return TaggedName(repository, tag, docker_cmd("tag", shown, f"{repository}:{tag}"))


@boundary("push the image")
def push(repository: str, tag: str = "latest", registry: Registry | str | None = None,
         client: docker.DockerClient | None = None, show: bool = True,
         on_progress: Callable[[PushStream, LayerProgress | None], None] | None = None,
         observer: PushObserver | None = None,
         ) -> PushResult:
    """Push ``repository:tag``; read the whole stream and raise RegistryError on a failure.

    ``show`` draws live progress in a notebook through the registered renderer (the
    returned result renders as the layer table); ``observer`` is told after every chunk and
    at the end; ``on_progress`` is called after every chunk with the parser state.
    """
    cli = server_client(client)
    repo, embedded_tag = parse_repository_tag(str(repository))
    tag = embedded_tag or tag
    reg = resolve_registry(registry, client)
    user, password = credentials(reg)
    command = docker_cmd("push", f"{repo}:{tag}")
    observers = push_observers(f"{repo}:{tag}", show, observer)
    parser = PushStream()
    started = time.perf_counter()
    try:
        for chunk in cli.api.push(repo, tag=tag, stream=True, decode=True,
                                  auth_config={"username": user, "password": password}):
            layer = parser.feed(chunk)
            for seen in observers:
                seen.update(parser, layer)
            if on_progress is not None:
                on_progress(parser, layer)
    except APIError as exc:
        parser.error = str(exc.explanation or exc)
    seconds = time.perf_counter() - started
    for seen in observers:
        seen.close()
    if parser.error:
        raise RegistryError(f"Push of {repo}:{tag} failed: {parser.error}", _push_hint(parser))
    layers = parser.layers_frame()
    layers.attrs["command"] = command
    return PushResult(repository=repo, tag=tag, digest=parser.digest, size=parser.size,
                      layers=layers, seconds=seconds, command=command)


SERVER_ERROR_HINT = ("The registry failed on its side: its logs say why (`docker container "
                     "logs NAME`); `labkit registry start` re-creates the local one, keeping "
                     "its data.")


def server_failed(text: str) -> bool:
    """True when the engine's words say the registry answered a server error (5xx). On the
    containerd image store a push reports its HTTPS try instead ("does not look like a TLS
    handshake") when the plain-HTTP registry at localhost failed."""
    text = text.lower()
    return any(w in text for w in ("status: 5", "internal server error", "unavailable",
                                   "does not look like a tls handshake"))


def _push_hint(parser: PushStream) -> str:
    text = (parser.error or "").lower()
    if "no basic auth" in text or "unauthorized" in text or "authentication required" in text:
        return "Log in first (`labkit.registry.login()`); " + PASSWORD_HINT
    if "does not exist" in text or "no such image" in text:
        return "Tag the image for the registry first (`labkit.registry.tag_for_registry(...)`)."
    if "connection refused" in text or "dial tcp" in text:
        return "The registry is not running: " + START_HINT
    if server_failed(text):
        return SERVER_ERROR_HINT
    return "Read the message above; `labkit doctor` checks the engine and the registry."
