"""The registry as data: where it is and who logs in, a login's answer, a tagged name."""

from __future__ import annotations

from dataclasses import dataclass

from docker.auth import INDEX_NAME, INDEX_URL, resolve_index_name

from labkit.engine import DockerCommand, html_of

# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Registry:
    """Where images are pushed. ``address`` is how the engine names it (``localhost:PORT``);
    ``api_url`` is where this process queries its HTTP API (None: not queryable);
    ``ca_file`` is the CA its HTTPS certificate is verified against (the local registry's)."""

    name: str
    address: str
    api_url: str | None
    username: str
    container_id: str | None = None
    command: DockerCommand | None = None
    steps: tuple[DockerCommand, ...] = ()
    local: bool = True
    ca_file: str | None = None

    @property
    def is_docker_hub(self) -> bool:
        """True for Docker Hub, whose repositories are named ``<username>/<name>``."""
        return resolve_index_name(self.address) in (INDEX_NAME, f"registry-1.{INDEX_NAME}")

    @property
    def login_address(self) -> str:
        """The server address given to the engine's login endpoint."""
        return INDEX_URL if self.is_docker_hub else self.address

    def repository(self, name: str) -> str:
        """``<registry>/<username>/<name>`` (``<username>/<name>`` on Docker Hub)."""
        prefix = "" if self.is_docker_hub else f"{self.address}/"
        return f"{prefix}{self.username}/{name}"

    def _repr_html_(self) -> str:
        return html_of(self)


@dataclass(frozen=True)
class LoginResult:
    """What the engine said to a login. ``command`` pipes the password on stdin."""

    registry: str
    username: str
    status: str
    command: DockerCommand

    def _repr_html_(self) -> str:
        return html_of(self)


class TaggedName(str):
    """A ``repository:tag`` string that also carries the ``docker tag`` command that made it."""

    repository: str
    tag: str
    command: DockerCommand

    def __new__(cls, repository: str, tag: str, command: DockerCommand) -> TaggedName:
        obj = super().__new__(cls, f"{repository}:{tag}")
        obj.repository, obj.tag, obj.command = repository, tag, command
        return obj

    def _repr_html_(self) -> str:
        return html_of(self)
