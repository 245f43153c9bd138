"""Docker CLI contexts: the engine that `docker context use` chose, when DOCKER_HOST is unset.

Docker Desktop, colima, OrbStack and Rancher Desktop point the docker CLI at their engine
with a context kept in ``~/.docker``, not with DOCKER_HOST. docker-py 7.2 reads contexts
itself (``docker.context``: DOCKER_CONTEXT, then ``currentContext`` in ``config.json`` of
DOCKER_CONFIG or ``~/.docker``), and labkit reads them through it. labkit adds what
docker-py does not do as the docker CLI does:

- a context that does not exist, cannot be read or has no docker endpoint is an error
  naming it (docker-py falls back to the local socket without a word);
- the context's TLS material as the CLI uses it: a CA alone verifies the engine, and
  SkipTLSVerify keeps TLS without verification (docker-py takes TLS only from all three
  of ca, cert and key);
- the context's name in every message about the engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from docker.context import ContextAPI
from docker.context.config import get_current_context_name, get_meta_file, get_tls_dir
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


def current_name(environ: Mapping[str, str] | None = None) -> str:
    """The context the docker CLI would use: DOCKER_CONTEXT, ``currentContext``, ``default``."""
    env = os.environ if environ is None else environ
    return env.get("DOCKER_CONTEXT") or get_current_context_name() or DEFAULT


def load(name: str) -> ContextEndpoint:
    """The docker endpoint of the context ``name``, read by docker-py.

    Raises :class:`EngineUnavailable` when the context does not exist, is unreadable or has
    no docker endpoint: the docker CLI refuses such a context too.
    """
    meta_file = get_meta_file(name)
    try:
        context = ContextAPI.get_context(name)
    except Exception as exc:  # docker-py raises a bare Exception for a corrupt meta.json
        raise EngineUnavailable(f"The Docker context '{name}' has no readable docker "
                                f"endpoint in {meta_file}.", CONTEXT_HINT) from exc
    if context is None:
        raise EngineUnavailable(f"The Docker context '{name}' does not exist "
                                f"(no {meta_file}).", CONTEXT_HINT)
    endpoint = context.endpoints.get("docker") or {}
    host = endpoint.get("Host")
    if not isinstance(host, str) or not host:
        raise EngineUnavailable(f"The Docker context '{name}' names no docker engine "
                                f"address in {meta_file}.", CONTEXT_HINT)
    tls_dir = Path(get_tls_dir(name, "docker"))
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

    ``environ`` gives DOCKER_HOST and DOCKER_CONTEXT; the configuration directory is the
    process's (DOCKER_CONFIG, else ``~/.docker``), as docker-py reads it.
    Raises :class:`EngineUnavailable` when the current context cannot be read.
    """
    env = os.environ if environ is None else environ
    if env.get("DOCKER_HOST"):
        return None
    name = current_name(env)
    return None if name == DEFAULT else load(name)


def active_or_none(environ: Mapping[str, str] | None = None) -> ContextEndpoint | None:
    """:func:`active`, but None instead of an error (for describing, not connecting)."""
    try:
        return active(environ)
    except EngineUnavailable:
        return None
