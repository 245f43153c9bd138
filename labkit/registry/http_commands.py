"""The ``curl`` lines equivalent to labkit's requests to the registry's HTTP API, shown to the
learner. The password goes through a pipe (``labkit registry password --curl`` writes curl's
``user`` option for ``curl -K-``), never onto a command line or a screen; the registry's CA
comes from ``labkit registry ca``.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from dataclasses import dataclass

from labkit.engine import RegistryError
from labkit.registry.model import Registry

#: What every line starts with: the credentials on standard input, the CA from labkit.
CURL_PREFIX = ('labkit registry password --curl | curl -fsS -K- '
               '--cacert "$(labkit registry ca)"')


@dataclass(frozen=True)
class HttpCommand:
    """One request to the registry's HTTP API, as a ``curl`` line."""

    url: str
    method: str = "GET"
    accept: str | None = None
    output: str | None = None

    def __str__(self) -> str:
        parts = [CURL_PREFIX]
        if self.method != "GET":
            parts.append(f"-X {self.method}")
        if self.accept:
            parts.append("-H " + shlex.quote(f"Accept: {self.accept}"))
        if self.output:
            parts.append("-o " + shlex.quote(self.output))
        parts.append(shlex.quote(self.url))
        return " ".join(parts)


class CommandLines(tuple[object, ...]):
    """Command lines shown together (``docker`` or ``curl`` ones, or any other), one per
    line after ``$``, as a shell would take them."""

    def __new__(cls, lines: Iterable[object] = ()) -> CommandLines:
        return super().__new__(cls, tuple(lines))

    def __add__(self, other: tuple[object, ...]) -> CommandLines:
        return CommandLines((*self, *other))

    def __repr__(self) -> str:
        return "\n".join(f"$ {line}" for line in self)

    def _repr_markdown_(self) -> str:
        return f"```bash\n{self!r}\n```" if self else "*(no command)*"


def curl(registry: Registry, *paths: str, method: str = "GET", accept: str | None = None,
         output: str | None = None) -> CommandLines:
    """The ``curl`` lines for ``paths`` (``/v2/_catalog``, ``/v2/NAME/tags/list``…) on the
    local registry's HTTP API, the address labkit itself asks."""
    if not registry.api_url:
        raise RegistryError(f"labkit does not query the HTTP API of {registry.address}.",
                            "Use the local registry (`labkit registry start`).")
    base = registry.api_url.rstrip("/")
    return CommandLines(HttpCommand(f"{base}{path}", method, accept, output) for path in paths)


def curl_user_option(user: str, password: str) -> str:
    """curl's ``user`` option for a config read with ``-K-``: ``user = "USER:PASSWORD"``,
    quoted as curl's config syntax wants."""
    value = f"{user}:{password}".replace("\\", "\\\\").replace('"', '\\"')
    return f'user = "{value}"\n'
