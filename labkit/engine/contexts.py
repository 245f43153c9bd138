"""Docker CLI contexts: the engine that `docker context use` chose, when DOCKER_HOST is unset.

Docker Desktop, colima, OrbStack and Rancher Desktop point the docker CLI at their engine
with a context kept in ``~/.docker``, not with DOCKER_HOST. docker-py's ``kwargs_from_env``
(and docker-py before 7.2 altogether) knows only DOCKER_HOST and ``/var/run/docker.sock``,
so labkit resolves the context itself, in the docker CLI's order: DOCKER_HOST wins, then
DOCKER_CONTEXT, then ``currentContext`` in ``config.json`` (in DOCKER_CONFIG, else
``~/.docker``), then the built-in ``default`` context (DOCKER_HOST or the local socket).

On disk a context named NAME is ``contexts/meta/<sha256(NAME)>/meta.json`` (its endpoint:
``Endpoints.docker.Host`` and ``SkipTLSVerify``) and, when it has TLS material,
``contexts/tls/<sha256(NAME)>/docker/{ca,cert,key}.pem``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.tls import TLSConfig

from labkit.engine.errors import EngineUnavailable

DEFAULT = "default"
CONTEXT_HINT = ("`docker context ls` lists the contexts: `docker context use NAME` picks one, "
                "`docker context use default` the local engine; or set DOCKER_HOST.")


@dataclass(frozen=True)
class ContextEndpoint:
    """The docker endpoint of a named context, with its TLS material when it has any."""

    name: str
    host: str
    ca_cert: str | None = None
    client_cert: tuple[str, str] | None = None
    skip_tls_verify: bool = False

    @property
    def uses_tls(self) -> bool:
        """True when the docker CLI would speak TLS to this endpoint."""
        return bool(self.ca_cert or self.client_cert or self.skip_tls_verify)

    def tls_config(self) -> TLSConfig | None:
        """docker-py's TLS settings for this endpoint (None: plain socket or HTTP)."""
        if not self.uses_tls:
            return None
        return TLSConfig(client_cert=self.client_cert, ca_cert=self.ca_cert,
                         verify=not self.skip_tls_verify)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``docker.DockerClient``: ``base_url`` and ``tls``."""
        params: dict[str, Any] = {"base_url": self.host}
        tls = self.tls_config()
        if tls is not None:
            params["tls"] = tls
        return params

    def describe(self) -> str:
        """The address as a learner reads it, naming the context it came from."""
        return f"{self.host} from the Docker context '{self.name}'"


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The docker CLI's configuration directory: DOCKER_CONFIG, else ``$HOME/.docker``."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONFIG"):
        return Path(env["DOCKER_CONFIG"]).expanduser()
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".docker"


def context_id(name: str) -> str:
    """The directory name the docker CLI stores a context under."""
    return hashlib.sha256(name.encode("utf-8")).hexdigest()


def current_name(environ: Mapping[str, str] | None = None) -> str:
    """The context the docker CLI would use: DOCKER_CONTEXT, ``currentContext``, ``default``."""
    env = os.environ if environ is None else environ
    if env.get("DOCKER_CONTEXT"):
        return env["DOCKER_CONTEXT"]
    try:
        config = json.loads((config_dir(env) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return DEFAULT
    name = config.get("currentContext") if isinstance(config, dict) else None
    return name if isinstance(name, str) and name else DEFAULT


def load(name: str, environ: Mapping[str, str] | None = None) -> ContextEndpoint:
    """Read the docker endpoint of the context ``name``.

    Raises :class:`EngineUnavailable` when the context does not exist, is unreadable or has
    no docker endpoint: the docker CLI refuses such a context too.
    """
    root = config_dir(environ) / "contexts"
    meta_file = root / "meta" / context_id(name) / "meta.json"
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        endpoint = meta["Endpoints"]["docker"]
        host = endpoint["Host"]
    except FileNotFoundError as exc:
        raise EngineUnavailable(f"The Docker context '{name}' does not exist "
                                f"(no {meta_file}).", CONTEXT_HINT) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineUnavailable(f"The Docker context '{name}' has no readable docker "
                                f"endpoint in {meta_file}.", CONTEXT_HINT) from exc
    if not isinstance(host, str) or not host:
        raise EngineUnavailable(f"The Docker context '{name}' names no engine address "
                                f"in {meta_file}.", CONTEXT_HINT)
    tls_dir = root / "tls" / context_id(name) / "docker"
    ca, cert, key = (tls_dir / "ca.pem", tls_dir / "cert.pem", tls_dir / "key.pem")
    return ContextEndpoint(
        name=name,
        host=host,
        ca_cert=str(ca) if ca.is_file() else None,
        client_cert=(str(cert), str(key)) if cert.is_file() and key.is_file() else None,
        skip_tls_verify=bool(endpoint.get("SkipTLSVerify", False)),
    )


def active(environ: Mapping[str, str] | None = None) -> ContextEndpoint | None:
    """The current context's endpoint, or None when DOCKER_HOST or ``default`` decides.

    Raises :class:`EngineUnavailable` when the current context cannot be read.
    """
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return None
    name = current_name(env)
    return None if name == DEFAULT else load(name, env)


def active_or_none(environ: Mapping[str, str] | None = None) -> ContextEndpoint | None:
    """:func:`active`, but None instead of an error (for describing, not connecting)."""
    try:
        return active(environ)
    except EngineUnavailable:
        return None
