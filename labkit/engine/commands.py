"""The `docker` CLI command equivalent to each labkit operation, so learners learn Docker."""

from __future__ import annotations

import shlex
from dataclasses import dataclass


@dataclass(frozen=True)
class DockerCommand:
    """An equivalent command line, e.g. ``docker image build -t NAME .``."""

    args: tuple[str, ...]
    stdin: str | None = None  # what is piped in, described (never a secret's value)
    env: tuple[tuple[str, str], ...] = ()  # variables set for this command only

    def __str__(self) -> str:
        line = shlex.join(("docker", *self.args))
        if self.env:
            line = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env) + " " + line
        return f"{self.stdin} | {line}" if self.stdin else line

    def _repr_markdown_(self) -> str:
        return f"```bash\n$ {self}\n```"


def docker(*args: str, stdin: str | None = None,
           env: dict[str, str] | None = None) -> DockerCommand:
    """Build a :class:`DockerCommand` from its arguments (``docker`` is implied)."""
    return DockerCommand(tuple(str(a) for a in args), stdin, tuple((env or {}).items()))


class CommandOutput(str):
    """What a command printed, carrying the ``docker`` line that prints the same; shown in a
    notebook as the line, then the text."""

    command: DockerCommand

    def __new__(cls, text: str, command: DockerCommand) -> CommandOutput:
        obj = super().__new__(cls, text)
        obj.command = command
        return obj

    def __repr__(self) -> str:  # the plain-text view: the line, then what it printed
        return f"$ {self.command}\n{self}"

    def _repr_markdown_(self) -> str:
        fence = "~~~~" if "```" in self else "```"
        body = f"\n{fence}text\n{self.rstrip()}\n{fence}" if self.strip() else ""
        return f"```bash\n$ {self.command}\n```{body}"
