"""The Docker Engine: connecting from the environment, and where its published ports live."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from urllib.parse import urlparse

import docker
from docker.utils import kwargs_from_env

from .config import settings
from .errors import EngineUnavailable

API_VERSION = "1.41"

_client: docker.DockerClient | None = None

NO_ENGINE_HINT = (
    "Start Docker (Docker Desktop, or `sudo systemctl start docker`), point DOCKER_HOST at a "
    "remote engine, or open the course in GitHub Codespaces / with `make lab` on Debian or "
    "Ubuntu; Binder has no Docker engine."
)


def connect(environ: dict[str, str] | None = None) -> docker.DockerClient:
    """A new client for the engine that DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH name.

    The session ignores REQUESTS_CA_BUNDLE and proxies (``trust_env = False``): they are
    meant for the internet, and would override the engine's own TLS CA.
    """
    env = dict(os.environ if environ is None else environ)
    try:
        kwargs = kwargs_from_env(environment=env)
        client = docker.DockerClient(version=env.get("DOCKER_API_VERSION", API_VERSION),
                                     timeout=300, **kwargs)
        client.api.trust_env = False
        client.ping()
    except Exception as exc:  # docker-py raises several kinds here
        raise EngineUnavailable(
            f"No Docker Engine answers at {describe_host(env)} ({type(exc).__name__}).",
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
    """The engine address as the user would write it."""
    env = os.environ if environ is None else environ
    return env.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def engine_hostname(environ: dict[str, str] | None = None) -> str:
    """The host name of the engine's machine: localhost unless DOCKER_HOST is tcp://HOST."""
    url = urlparse(describe_host(environ))
    if url.scheme in ("tcp", "http", "https", "ssh") and url.hostname:
        return url.hostname
    return "localhost"


def is_local(environ: dict[str, str] | None = None) -> bool:
    """True when the engine runs on this machine (socket or a loopback address)."""
    host = engine_hostname(environ)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind_ip(environ: dict[str, str] | None = None) -> str:
    """The address published ports bind to on the engine's machine.

    127.0.0.1 for a local engine (nothing is exposed to the network); for a remote engine
    (DinD, a CI service) ports must listen on its network address, so 0.0.0.0 there.
    ``LABKIT_BIND_IP`` overrides both.
    """
    chosen = settings().bind_ip
    if chosen:
        return chosen
    return "127.0.0.1" if is_local(environ) else "0.0.0.0"


def publish_host(environ: dict[str, str] | None = None) -> str:
    """The host name to put in URLs of published ports (``LABKIT_PUBLISH_HOST`` overrides)."""
    chosen = settings().publish_host
    if chosen:
        return chosen
    host = engine_hostname(environ)
    return "localhost" if is_local(environ) else host


@dataclass(frozen=True)
class EngineInfo:
    """What `docker version` and `docker info` say about the engine."""

    host: str
    version: str
    api_version: str
    os: str
    arch: str
    storage_driver: str
    cgroup_version: str
    images: int
    containers: int
    publish_host: str
    bind_ip: str


def info(cli: docker.DockerClient | None = None) -> EngineInfo:
    """Collect the engine's version, API, storage driver and where its ports are reachable."""
    cli = cli or client()
    ver = cli.version()
    data = cli.info()
    return EngineInfo(
        host=describe_host(),
        version=str(ver.get("Version", "?")),
        api_version=str(ver.get("ApiVersion", "?")),
        os=str(ver.get("Os", "?")),
        arch=str(ver.get("Arch", "?")),
        storage_driver=str(data.get("Driver", "?")),
        cgroup_version=str(data.get("CgroupVersion", "?")),
        images=int(data.get("Images", 0)),
        containers=int(data.get("Containers", 0)),
        publish_host=publish_host(),
        bind_ip=bind_ip(),
    )
