"""The Docker Engine: connecting from the environment, and where its published ports live."""

from __future__ import annotations

import ipaddress
import os
from typing import Any
from urllib.parse import urlparse

import docker
from docker.constants import DEFAULT_DOCKER_API_VERSION, MINIMUM_DOCKER_API_VERSION
from docker.utils import kwargs_from_env

from labkit.engine import contexts
from labkit.engine.config import settings
from labkit.engine.errors import (
    EngineIncompatible,
    EngineInsecure,
    EngineUnavailable,
    PortsUnreachable,
)

#: The newest API version this docker-py speaks, and the oldest the course needs
#: (Docker 20.10 speaks 1.41; the course uses nothing newer than that).
CLIENT_MAX_API = DEFAULT_DOCKER_API_VERSION
COURSE_MIN_API = "1.41"
#: `docker info` DriverStatus entry naming the containerd image store.
CONTAINERD_SNAPSHOTTER = "io.containerd.snapshotter.v1"

#: Where the engine is when neither DOCKER_HOST nor a Docker context says otherwise.
DEFAULT_HOST = "unix:///var/run/docker.sock"

_client: docker.DockerClient | None = None

NO_ENGINE_HINT = (
    "Start Docker (Docker Desktop, or `sudo systemctl start docker`), point DOCKER_HOST at a "
    "remote engine, or open the course in GitHub Codespaces / with `make lab` on Debian or "
    "Ubuntu; Binder has no Docker engine."
)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def negotiate(server_api: str, server_min_api: str | None,
              client_max: str = CLIENT_MAX_API, course_min: str = COURSE_MIN_API) -> str:
    """The API version to speak: the newest both sides know, as the docker CLI chooses it.

    Raises :class:`EngineIncompatible` when the engine is too old for the course, or
    refuses every version this docker-py speaks (Engine 29 refuses anything below 1.44).
    """
    chosen = min(server_api, client_max, key=_version_key)
    if _version_key(server_api) < _version_key(course_min):
        raise EngineIncompatible(
            f"This Docker Engine is too old for the course: it speaks API {server_api}, "
            f"the course needs {course_min} (Docker 20.10) or newer.",
            "Upgrade Docker (Docker Desktop, or Docker Engine 20.10 or newer).")
    if server_min_api and _version_key(chosen) < _version_key(server_min_api):
        raise EngineIncompatible(
            f"This Docker Engine refuses the course's client: it needs API {server_min_api} "
            f"or newer, and the installed docker-py speaks up to {client_max}.",
            "Upgrade the Python package: `pip install -U docker` (or `make venv`).")
    return chosen


def client_kwargs(env: dict[str, str]) -> dict[str, Any]:
    """DockerClient arguments from DOCKER_HOST / DOCKER_TLS_*, or from the active context.

    Raises :class:`EngineUnavailable` when the current Docker context cannot be read.
    """
    endpoint = contexts.active(env)
    return endpoint.client_kwargs() if endpoint else kwargs_from_env(environment=env)


#: URL schemes of an engine reached over TCP (``https`` is docker-py's for TCP with TLS).
_TCP_SCHEMES = ("tcp", "http", "https")
INSECURE_HINT = (
    "Use the engine's TLS port with its client certificates: DOCKER_HOST=tcp://HOST:2376, "
    "DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=<folder with ca.pem cert.pem key.pem> (a "
    "docker:dind service writes them when DOCKER_TLS_CERTDIR=/certs), or an ssh:// host."
)


def _is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(params: dict[str, Any], where: str) -> None:
    """Refuse an engine reached over a network without verified TLS.

    Everything labkit sends the engine crosses that connection, registry passwords
    (``docker login``) included: over plain TCP, or TLS without checking the engine's
    certificate (an empty DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, a context's
    SkipTLSVerify), anyone on the path reads or changes it. Loopback addresses, sockets
    and ssh:// are fine.
    """
    url = urlparse(str(params.get("base_url") or ""))
    if url.scheme not in _TCP_SCHEMES or _is_loopback(url.hostname):
        return
    tls = params.get("tls")
    if not tls:
        raise EngineInsecure(
            f"The Docker Engine at {where} is reached over the network without TLS: "
            "everything sent to it, registry passwords included, would cross in clear.",
            INSECURE_HINT)
    if not getattr(tls, "verify", False):
        raise EngineInsecure(
            f"The Docker Engine at {where} is reached over TLS without checking its "
            "certificate (DOCKER_TLS_VERIFY is empty or unset, or the Docker context skips "
            "verification): anyone on the path could stand in for it.",
            "Set DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH naming the engine's ca.pem, "
            "cert.pem and key.pem (or drop SkipTLSVerify from the Docker context).")


def _open(params: dict[str, Any], version: str) -> docker.DockerClient:
    client = docker.DockerClient(version=version, timeout=300, **params)
    client.api.trust_env = False
    return client


def connect(environ: dict[str, str] | None = None) -> docker.DockerClient:
    """A new client for the engine that DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH name.

    Without DOCKER_HOST, the docker CLI's current context decides (Docker Desktop, colima,
    OrbStack), as for the ``docker`` command itself; see :mod:`labkit.engine.contexts`.

    The API version is negotiated (unless DOCKER_API_VERSION pins one): the engine's
    unversioned ``/version`` says what it speaks and its minimum; we speak the newest both
    know. An engine reached over a network must use verified TLS (:func:`check_transport`).
    The session ignores REQUESTS_CA_BUNDLE and proxies (``trust_env = False``): they
    are meant for the internet, and would override the engine's own TLS CA.
    """
    env = dict(os.environ if environ is None else environ)
    params = client_kwargs(env)
    check_transport(params, describe_engine(env))
    try:
        probe = _open(params, MINIMUM_DOCKER_API_VERSION)
        try:
            ver = probe.api.version(api_version=False)
        finally:
            probe.close()
    except Exception as exc:  # docker-py raises several kinds here
        raise EngineUnavailable(
            f"No Docker Engine answers at {describe_engine(env)} ({type(exc).__name__}).",
            NO_ENGINE_HINT,
        ) from exc
    pinned = env.get("DOCKER_API_VERSION")
    version = pinned or negotiate(str(ver.get("ApiVersion", COURSE_MIN_API)),
                                  ver.get("MinAPIVersion"))
    try:
        client = _open(params, version)
        client.api.version()  # a versioned call: refused here if the engine refuses us
    except docker.errors.APIError as exc:
        raise EngineIncompatible(
            f"The Docker Engine at {describe_engine(env)} refuses API {version}: "
            f"{exc.explanation or exc}",
            "Unset DOCKER_API_VERSION to let labkit choose." if pinned
            else "Upgrade the Python package: `pip install -U docker`.",
        ) from exc
    except Exception as exc:  # docker-py raises several kinds here
        raise EngineUnavailable(
            f"No Docker Engine answers at {describe_engine(env)} ({type(exc).__name__}).",
            NO_ENGINE_HINT,
        ) from exc
    return client


def client() -> docker.DockerClient:
    """The process-wide client, connected on first use."""
    global _client
    if _client is None:
        _client = connect()
    return _client


def reset() -> None:
    """Forget the cached client (after DOCKER_HOST changed)."""
    global _client
    _client = None


def describe_host(environ: dict[str, str] | None = None) -> str:
    """The engine address as the user would write it.

    Without DOCKER_HOST it is the current Docker context's address (``docker context use``),
    and the local socket for the ``default`` context.
    """
    env = os.environ if environ is None else environ
    endpoint = contexts.active_or_none(env)
    return env.get("DOCKER_HOST") or (endpoint.host if endpoint else DEFAULT_HOST)


def describe_engine(environ: dict[str, str] | None = None) -> str:
    """:func:`describe_host`, naming the Docker context the address came from."""
    endpoint = contexts.active_or_none(environ)
    return endpoint.describe() if endpoint else describe_host(environ)


def engine_hostname(environ: dict[str, str] | None = None) -> str:
    """The host name of the engine's machine: localhost unless DOCKER_HOST is tcp://HOST."""
    url = urlparse(describe_host(environ))
    if url.scheme in ("tcp", "http", "https", "ssh") and url.hostname:
        return url.hostname
    return "localhost"


def is_local(environ: dict[str, str] | None = None) -> bool:
    """True when the engine runs on this machine (socket or a loopback address)."""
    return _is_loopback(engine_hostname(environ))


#: The opt-in that publishes ports on every address of a remote engine's machine.
BIND_OPT_IN = "LABKIT_BIND_IP=0.0.0.0"


def bind_ip(environ: dict[str, str] | None = None) -> str:
    """The address published ports bind to on the engine's machine: 127.0.0.1 (nothing is
    exposed to a network) unless ``LABKIT_BIND_IP`` names another, e.g. 0.0.0.0 for a
    remote engine whose ports this machine must reach (see :func:`require_reachable`)."""
    return settings().bind_ip or "127.0.0.1"


def publish_host(environ: dict[str, str] | None = None) -> str:
    """The host name to put in URLs of published ports (``LABKIT_PUBLISH_HOST`` overrides)."""
    chosen = settings().publish_host
    if chosen:
        return chosen
    host = engine_hostname(environ)
    return "localhost" if is_local(environ) else host


def ports_reachable(environ: dict[str, str] | None = None) -> bool:
    """True when this process can reach the ports the engine publishes: a local engine, or
    a remote one with ``LABKIT_BIND_IP`` (ports on its network) or ``LABKIT_PUBLISH_HOST``
    (the learner forwards them, e.g. ``ssh -L``) set."""
    s = settings()
    return is_local(environ) or bool(s.bind_ip) or bool(s.publish_host)


def require_reachable(what: str, environ: dict[str, str] | None = None) -> None:
    """Raise :class:`PortsUnreachable` when ``what`` (a published port) cannot be reached
    from here: the engine is remote and publishes on its 127.0.0.1 only."""
    if ports_reachable(environ):
        return
    raise PortsUnreachable(
        f"The Docker Engine at {describe_engine(environ)} is on another machine, and labkit "
        f"publishes ports on its 127.0.0.1 only, so {what} cannot be reached from here.",
        f"To publish on the engine's network instead (anyone there can then connect), set "
        f"{BIND_OPT_IN} before starting Jupyter; or forward the port yourself and set "
        "LABKIT_PUBLISH_HOST to the host that reaches it.")
