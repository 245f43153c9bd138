"""The Docker Engine: connecting from the environment, and where its published ports live."""

from __future__ import annotations

import importlib.util
import ipaddress
import os
import warnings
from dataclasses import dataclass
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

#: The opt-in for plain TCP to an engine on a private network: the value states the reason.
PLAIN_TCP_VARIABLE = "LABKIT_ALLOW_PLAIN_TCP"
PLAIN_TCP_REASON = "private-network"
PLAIN_TCP_OPT_IN = f"{PLAIN_TCP_VARIABLE}={PLAIN_TCP_REASON}"

INSECURE_HINT = (
    "Use the engine's TLS port with its client certificates: DOCKER_HOST=tcp://HOST:2376, "
    "DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH=<folder with ca.pem cert.pem key.pem> (a "
    "docker:dind service writes them when DOCKER_TLS_CERTDIR=/certs), or an ssh:// host. "
    "Only if the engine is on a private network that nothing else reaches (a CI job's own "
    f"service network), set {PLAIN_TCP_OPT_IN} to connect unencrypted."
)
SSH_HINT = (
    "Check that `ssh USER@HOST docker version` works from here without a question: the host "
    "key in ~/.ssh/known_hosts, your key accepted, and the remote user allowed to use docker."
)


def _is_loopback(host: str | None) -> bool:
    if not host or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Transport:
    """How labkit's bytes reach the engine, as a learner reads it."""

    kind: str  # socket | ssh | tls | tls-unverified | loopback | plain (TCP over a network)
    summary: str

    @property
    def unencrypted(self) -> bool:
        """True when traffic, registry logins included, crosses a network in clear."""
        return self.kind == "plain"


def unencrypted_warning(where: str) -> str:
    """What labkit says, once, about an engine reached over plain TCP with the opt-in."""
    return (f"The Docker Engine at {where} is reached over plain TCP ({PLAIN_TCP_OPT_IN}): "
            "everything labkit sends it, registry logins included, crosses the network "
            "UNENCRYPTED. That is acceptable only on a private network no one else reaches "
            "(a CI job's own service network); anywhere else use the engine's TLS port.")


def transport_of(params: dict[str, Any]) -> Transport:
    """The transport that DockerClient arguments (``base_url``, ``tls``) give."""
    url = urlparse(str(params.get("base_url") or DEFAULT_HOST))
    if url.scheme == "ssh":
        return Transport("ssh", "ssh (encrypted by ssh, the engine's socket on the host)")
    if url.scheme not in _TCP_SCHEMES:
        return Transport("socket", "local socket")
    tls = params.get("tls")
    if tls and getattr(tls, "verify", False):
        return Transport("tls", "TLS, the engine's certificate verified")
    if tls:
        return Transport("tls-unverified", "TLS without checking the engine's certificate")
    if _is_loopback(url.hostname):
        return Transport("loopback", "plain TCP on this machine's loopback (no network)")
    return Transport("plain", f"plain TCP over the network, UNENCRYPTED ({PLAIN_TCP_OPT_IN}): "
                     "registry logins cross in clear; acceptable only on a private network")


def plain_tcp_allowed(env: dict[str, str], where: str) -> bool:
    """True when the learner opted in to plain TCP; refuses an opt-in that states no reason."""
    value = env.get(PLAIN_TCP_VARIABLE, "").strip()
    if not value:
        return False
    if value != PLAIN_TCP_REASON:
        raise EngineInsecure(
            f"{PLAIN_TCP_VARIABLE}={value!r} does not say why the Docker Engine at {where} "
            f"may be reached over plain TCP: its one value is {PLAIN_TCP_REASON!r}, stating "
            "that the engine is on a private network that nothing else reaches.",
            INSECURE_HINT)
    return True


def check_transport(params: dict[str, Any], where: str,
                    env: dict[str, str] | None = None) -> Transport:
    """Refuse an engine reached over a network without verified TLS; return the transport.

    Everything labkit sends the engine crosses that connection, registry passwords
    (``docker login``) included: over plain TCP, or TLS without checking the engine's
    certificate (an empty DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, a context's
    SkipTLSVerify), anyone on the path reads or changes it. Loopback addresses, sockets
    and ssh:// are fine; plain TCP over a network only with :data:`PLAIN_TCP_OPT_IN`.
    """
    transport = transport_of(params)
    if transport.kind == "plain" and not plain_tcp_allowed(env or {}, where):
        raise EngineInsecure(
            f"The Docker Engine at {where} is reached over the network without TLS: "
            "everything sent to it, registry passwords included, would cross in clear.",
            INSECURE_HINT)
    if transport.kind == "tls-unverified":
        raise EngineInsecure(
            f"The Docker Engine at {where} is reached over TLS without checking its "
            "certificate (DOCKER_TLS_VERIFY is empty or unset, or the Docker context skips "
            "verification): anyone on the path could stand in for it.",
            "Set DOCKER_TLS_VERIFY=1 with DOCKER_CERT_PATH naming the engine's ca.pem, "
            "cert.pem and key.pem (or drop SkipTLSVerify from the Docker context).")
    return transport


class UnencryptedEngineWarning(UserWarning):
    """The engine is reached over plain TCP on a network (the learner opted in)."""


#: The engines already warned about (the warning is said once per process and address).
_warned: set[str] = set()


def _warn_unencrypted(where: str) -> None:
    if where not in _warned:
        _warned.add(where)
        warnings.warn(unencrypted_warning(where), UnencryptedEngineWarning, stacklevel=3)


def transport(environ: dict[str, str] | None = None) -> Transport:
    """How the engine that the environment names is reached (see :func:`transport_of`)."""
    env = dict(os.environ if environ is None else environ)
    return transport_of(client_kwargs(env))


def _require_ssh_support(params: dict[str, Any], where: str) -> None:
    if (str(params.get("base_url") or "").startswith("ssh://")
            and importlib.util.find_spec("paramiko") is None):
        raise EngineUnavailable(
            f"The Docker Engine at {where} is reached over ssh, and docker-py needs the "
            "paramiko package for that.",
            "Install it: `pip install 'docker[ssh]'` (or `make venv`).")


def _open(params: dict[str, Any], version: str) -> docker.DockerClient:
    client = docker.DockerClient(version=version, timeout=300, **params)
    client.api.trust_env = False
    return client


def _unavailable(exc: Exception, where: str, params: dict[str, Any]) -> EngineUnavailable:
    """No engine answered: over ssh, what ssh said (host key, login) and how to check it."""
    if str(params.get("base_url") or "").startswith("ssh://"):
        return EngineUnavailable(
            f"No Docker Engine answers at {where} over ssh ({type(exc).__name__}: "
            f"{str(exc)[:200]}).", SSH_HINT)
    return EngineUnavailable(
        f"No Docker Engine answers at {where} ({type(exc).__name__}).", NO_ENGINE_HINT)


def connect(environ: dict[str, str] | None = None) -> docker.DockerClient:
    """A new client for the engine that DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH name.

    Without DOCKER_HOST, the docker CLI's current context decides (Docker Desktop, colima,
    OrbStack), as for the ``docker`` command itself; see :mod:`labkit.engine.contexts`.

    The API version is negotiated (unless DOCKER_API_VERSION pins one): the engine's
    unversioned ``/version`` says what it speaks and its minimum; we speak the newest both
    know. An engine reached over a network must use verified TLS (:func:`check_transport`),
    or plain TCP with :data:`PLAIN_TCP_OPT_IN`, said once with an
    :class:`UnencryptedEngineWarning`. ``ssh://`` engines go through docker-py's paramiko
    transport (the host key must be known). The session ignores REQUESTS_CA_BUNDLE and
    proxies (``trust_env = False``): they are meant for the internet, and would override
    the engine's own TLS CA.
    """
    env = dict(os.environ if environ is None else environ)
    params = client_kwargs(env)
    where = describe_engine(env)
    if check_transport(params, where, env).unencrypted:
        _warn_unencrypted(where)
    _require_ssh_support(params, where)
    try:
        probe = _open(params, MINIMUM_DOCKER_API_VERSION)
        try:
            ver = probe.api.version(api_version=False)
        finally:
            probe.close()
    except Exception as exc:  # docker-py raises several kinds here
        raise _unavailable(exc, where, params) from exc
    pinned = env.get("DOCKER_API_VERSION")
    version = pinned or negotiate(str(ver.get("ApiVersion", COURSE_MIN_API)),
                                  ver.get("MinAPIVersion"))
    try:
        client = _open(params, version)
        client.api.version()  # a versioned call: refused here if the engine refuses us
    except docker.errors.APIError as exc:
        raise EngineIncompatible(
            f"The Docker Engine at {where} refuses API {version}: "
            f"{exc.explanation or exc}",
            "Unset DOCKER_API_VERSION to let labkit choose." if pinned
            else "Upgrade the Python package: `pip install -U docker`.",
        ) from exc
    except Exception as exc:  # docker-py raises several kinds here
        raise _unavailable(exc, where, params) from exc
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
