"""The local registry server: a ``registry:2`` container with htpasswd auth, its address and
credentials, started, found, stopped.

It runs on the engine (maybe remote: DinD in CI), so its config, htpasswd and certificate
are copied in, never bind-mounted. It serves HTTPS only (:mod:`labkit.registry.tls`): the
engine pushes to ``localhost:PORT`` (insecure-allowed: HTTPS unchecked); this process asks
its API at ``https://<engine.publish_host()>:PORT``, checking the certificate against the
registry's own CA. ``LABKIT_REGISTRY`` names another registry (e.g. Docker Hub) instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import requests
from docker.auth import resolve_index_name
from docker.errors import APIError, ImageNotFound, NotFound

from labkit import engine
from labkit.containers import http_session
from labkit.engine import (
    REGISTRY_IMAGE,
    ImageMissing,
    RegistryError,
    boundary,
    settings,
    wait_until,
)
from labkit.registry import password as state
from labkit.registry import tls as registry_tls
from labkit.registry.commands import run_command, run_steps, volume_name
from labkit.registry.model import Registry
from labkit.registry.server_config import (
    CONFIG_DIR,
    DATA_DIR,
    config_tar,
    config_yaml,
    htpasswd_line,
    htpasswd_matches,
    read_config_file,
)

REGISTRY_PORT = "5000/tcp"
START_TIMEOUT = 30.0

START_HINT = "Start it with `labkit registry start` (or `labkit.registry.start_registry()`)."
PASSWORD_HINT = (
    "Use the password labkit keeps for you (`labkit.registry.login()` reads it), or set "
    "LABKIT_REGISTRY_PASSWORD before starting Jupyter."
)


# --------------------------------------------------------------------------- helpers


def server_client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client or engine.client()


def api_session(registry: Registry) -> requests.Session:
    """An HTTP session for the registry API: basic auth, no proxy or CA from the environment."""
    session = http_session()
    session.auth = credentials(registry)
    if registry.ca_file:
        session.verify = _current_ca(registry)
    return session


def _current_ca(registry: Registry) -> str:
    """The registry's CA file; a registry re-created since (a new certificate, same address)
    is asked for its new one."""
    if registry.ca_file and Path(registry.ca_file).is_file():
        return registry.ca_file
    now = find_registry()
    if now is not None and now.api_url == registry.api_url and now.ca_file:
        return now.ca_file
    raise RegistryError(f"The registry at {registry.address} is not the one labkit started "
                        "here any more (its certificate is gone).",
                        "Run `labkit.registry.start_registry()` again and use what it returns.")


def _binding(container: Any) -> dict[str, str]:
    bindings = (container.attrs.get("NetworkSettings", {}).get("Ports") or {}).get(REGISTRY_PORT)
    return bindings[0] if bindings else {}


def _host_port(container: Any) -> str | None:
    return _binding(container).get("HostPort")


def _describe(container: Any) -> Registry:
    port = _host_port(container)
    if port is None:
        raise RegistryError(
            f"The registry container {container.name} publishes no port (status "
            f"{container.status}).", START_HINT,
        )
    bind, ca = engine.bind_ip(), registry_tls.keep_ca(container, read_config_file)
    return Registry(
        name=container.name,
        address=f"localhost:{port}",
        api_url=f"https://{engine.publish_host()}:{port}",
        ca_file=str(ca) if ca else None,
        username=settings().user,
        container_id=container.id,
        command=run_command(bind),
        steps=run_steps(bind),
        local=True,
    )


def _api_status(registry: Registry, timeout: float = 2.0) -> int | None:
    """What ``GET /v2/`` answers without credentials, over verified HTTPS (None: no answer)."""
    if not registry.api_url or not registry.ca_file:
        return None
    try:
        with http_session() as session:
            session.verify = registry.ca_file
            return session.get(f"{registry.api_url}/v2/", timeout=timeout).status_code
    except requests.RequestException:
        return None


def _engine_reaches(cli: docker.DockerClient, registry: Registry) -> bool:
    """True once the engine logs in at ``localhost:PORT`` (when we cannot reach the port)."""
    user, password = credentials(registry)
    try:
        cli.login(username=user, password=password, registry=registry.address, reauth=True)
    except APIError:
        return False
    return True



def _ensure_image(cli: docker.DockerClient) -> None:
    try:
        cli.images.get(REGISTRY_IMAGE)
    except ImageNotFound:
        if settings().offline:
            raise ImageMissing(
                f"The registry image {REGISTRY_IMAGE} is not on the engine and pulling is "
                "disabled.", "Run `labkit prepare` to make every course image present.",
            ) from None
        cli.images.pull(REGISTRY_IMAGE)


def _is_ours(container: Any) -> bool:
    labels = container.labels or {}
    return all(labels.get(k) == v for k, v in settings().labels("registry").items())


# --------------------------------------------------------------------------- local registry


@boundary("start the registry")
def start_registry(client: docker.DockerClient | None = None) -> Registry:
    """Start (or reuse) this namespace's local registry with htpasswd auth; wait for it.

    Idempotent: a running registry with this password, binding (:func:`engine.bind_ip`)
    and a certificate for the host labkit reaches it at and for its container name is
    reused; otherwise it is re-created on the same data volume and, when still free, the
    same host port (a new port would make every ``localhost:PORT/...`` tag stale). Returns
    once ``GET /v2/``
    answers 401 over verified HTTPS (for a remote engine whose ports are out of reach
    from here: once the engine logs in).
    """
    cli = server_client(client)
    s = settings()
    name = s.container_name("registry")
    password = state.registry_password()
    try:
        container = cli.containers.get(name)
    except NotFound:
        container = None
    if container is not None and not _is_ours(container):
        raise RegistryError(
            f"A container named {name} exists but labkit did not create it.",
            f"Remove it (`docker rm -f {name}`) or set LABKIT_USER to another name.",
        )
    port = _remembered_port()
    if container is not None and not (
        container.status == "running"
        and _binding(container).get("HostIp") == engine.bind_ip()
        and htpasswd_matches(read_config_file(container, f"{CONFIG_DIR}/htpasswd"),
                             s.user, password)
        and all(registry_tls.fits(container, read_config_file, host)
                for host in (engine.publish_host(), name))
    ):
        port = port or _host_port(container)  # keep its address (and every tag made for it)
        container.remove(force=True)
        container = None
    if container is None:
        container = _create_and_start(cli, password, port)
    container.reload()
    registry = _describe(container)
    _remember_port(registry.address.rsplit(":", 1)[1])
    if engine.ports_reachable():
        def ready() -> bool:
            return _api_status(registry) == 401
    else:
        def ready() -> bool:
            return _engine_reaches(cli, registry)
    try:
        wait_until(ready, START_TIMEOUT)
    except TimeoutError:
        container.reload()
        logs = container.logs(tail=20).decode(errors="replace")
        raise RegistryError(
            f"The registry {name} did not answer 401 at {registry.api_url}/v2/ (HTTPS, "
            f"verified against its CA {registry.ca_file}) within "
            f"{START_TIMEOUT:.0f} s (status {container.status}).\n{logs}",
            "Check `docker logs " + name + "`; `labkit doctor` shows where ports are reachable.",
        ) from None
    return registry


def _port_key() -> str:
    return f"registry_port@{engine.describe_host()}"


def _remembered_port() -> str | None:
    value = state.load().get(_port_key())
    return str(value) if value else None


def _remember_port(port: str) -> None:
    data = state.load()
    if data.get(_port_key()) != port:
        data[_port_key()] = port
        state.save(data)


def _create_and_start(cli: docker.DockerClient, password: str, port: str | None) -> Any:
    container = _create(cli, password, port)
    try:
        container.start()
    except APIError:
        if port is None:
            raise
        container.remove(force=True)  # the remembered port is taken: let the engine choose
        container = _create(cli, password, None)
        container.start()
    return container


def _create(cli: docker.DockerClient, password: str, port: str | None) -> Any:
    s = settings()
    _ensure_image(cli)
    labels = s.labels("registry")
    cli.volumes.create(name=volume_name(), labels=labels)
    try:
        container = cli.containers.create(
            REGISTRY_IMAGE,
            name=s.container_name("registry"),
            labels=labels,
            ports={REGISTRY_PORT: (engine.bind_ip(), int(port) if port else None)},
            volumes={volume_name(): {"bind": DATA_DIR, "mode": "rw"}},
        )
    except APIError as exc:
        if exc.status_code == 409:  # created meanwhile by another process
            return cli.containers.get(s.container_name("registry"))
        raise
    # The container's name too: what a container on a network shared with it (a second
    # engine, :mod:`labkit.registry.elsewhere`) calls the registry.
    hosts = ["localhost", "127.0.0.1", "::1", engine.publish_host(), engine.engine_hostname(),
             s.container_name("registry")]
    container.put_archive(CONFIG_DIR, config_tar({
        "config.yml": config_yaml(),
        "htpasswd": htpasswd_line(s.user, password),
        **registry_tls.make_certificates(hosts),
    }))
    return container


@boundary("find the registry")
def find_registry(client: docker.DockerClient | None = None) -> Registry | None:
    """This namespace's local registry if it is running, without starting or checking it."""
    cli = server_client(client)
    try:
        container = cli.containers.get(settings().container_name("registry"))
    except NotFound:
        return None
    if container.status != "running" or not _is_ours(container):
        return None
    return _describe(container)


@boundary("stop the registry")
def stop_registry(remove: bool = False, client: docker.DockerClient | None = None) -> bool:
    """Stop the local registry (and remove the container, keeping its data volume, if asked).

    Returns True when there was a registry container. Safe to repeat.
    """
    cli = server_client(client)
    try:
        container = cli.containers.get(settings().container_name("registry"))
    except NotFound:
        return False
    if not _is_ours(container):
        return False
    try:
        if remove:
            container.remove(force=True)
        else:
            container.stop(timeout=2)
    except NotFound:
        pass
    return True


def configured_registry() -> Registry | None:
    """The registry ``LABKIT_REGISTRY`` names (e.g. Docker Hub), or None for the local one."""
    host = settings().registry
    if not host:
        return None
    host = host.removeprefix("https://").removeprefix("http://").rstrip("/")
    return Registry(name=host, address=resolve_index_name(host), api_url=None,
                    username=settings().user, local=False)


def current_registry(client: docker.DockerClient | None = None) -> Registry:
    """The registry in use: the configured one, else the local one (started if needed)."""
    return configured_registry() or find_registry(client) or start_registry(client)


def resolve_registry(registry: Registry | str | None,
                     client: docker.DockerClient | None) -> Registry:
    if isinstance(registry, Registry):
        return registry
    if isinstance(registry, str):
        local = find_registry(client) if not settings().registry else None
        if local and registry == local.address:
            return local
        return Registry(name=registry, address=resolve_index_name(registry), api_url=None,
                        username=settings().user, local=False)
    return current_registry(client)


def credentials(registry: Registry) -> tuple[str, str]:
    """(user, password) for a registry: the stored one for the local registry, else
    ``LABKIT_REGISTRY_PASSWORD`` (an access token for Docker Hub)."""
    import os

    if registry.local:
        return registry.username, state.registry_password()
    token = os.environ.get(state.PASSWORD_ENV)
    if not token:
        raise RegistryError(
            f"No password for {registry.address}.",
            f"Set {state.PASSWORD_ENV} (an access token) before starting Jupyter; labkit "
            "never asks for it in a notebook cell.",
        )
    return registry.username, token


@boundary("ask for the registry's status")
def registry_status(client: docker.DockerClient | None = None) -> dict[str, Any]:
    """What `labkit doctor` shows: is the registry running, where, is auth on."""
    configured = configured_registry()
    if configured:
        return {"registry": configured.address, "local": False, "running": None,
                "address": configured.address, "api_url": None, "auth": None,
                "username": configured.username,
                "password": state.password_source() if state.password_source() ==
                "environment" else "missing"}
    cli = server_client(client)
    name = settings().container_name("registry")
    out: dict[str, Any] = {"registry": name, "local": True, "running": False, "status": "absent",
                           "address": None, "api_url": None, "auth": None,
                           "username": settings().user, "password": state.password_source()}
    try:
        cli.images.get(REGISTRY_IMAGE)
        out["image_present"] = True
    except ImageNotFound:
        out["image_present"] = False
    try:
        container = cli.containers.get(name)
    except NotFound:
        return out
    out["status"] = container.status
    out["running"] = container.status == "running"
    if out["running"] and _host_port(container):
        reg = _describe(container)
        code = _api_status(reg) if engine.ports_reachable() else None
        out.update(address=reg.address, api_url=reg.api_url,
                   auth=code == 401 if code is not None else None)
    return out
