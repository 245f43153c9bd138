"""One exception hierarchy: every error a learner sees says what failed and what to do."""

from __future__ import annotations


class LabkitError(Exception):
    """Base of every labkit error; ``hint`` is the one-sentence fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n→ {self.hint}" if self.hint else self.message

    def _repr_markdown_(self) -> str:  # shown when a cell returns the error
        return f"**{type(self).__name__}**: {self.message}" + (
            f"  \n→ {self.hint}" if self.hint else ""
        )


class EngineUnavailable(LabkitError):
    """No Docker Engine answers where the environment points."""


class EngineGone(EngineUnavailable):
    """The engine answered earlier in the session and stopped answering (stopped, restarted
    elsewhere, or its connection dropped); labkit connects anew on the next call."""


class EngineRefused(LabkitError):
    """The engine (or docker-py, before asking it) refused a request; the message is its own."""

    def __init__(self, message: str, hint: str | None = None,
                 status_code: int | None = None) -> None:
        super().__init__(message, hint)
        self.status_code = status_code


class InvalidName(LabkitError, ValueError):
    """A name the engine cannot take: an image reference, a tag or a container name."""


class ConfigError(LabkitError, ValueError):
    """A ``LABKIT_*`` setting has a value labkit cannot use."""


class StateError(LabkitError):
    """labkit's own state file cannot be read or written."""


class EngineIncompatible(LabkitError):
    """An engine answers, but it and this client share no API version the course can use."""


class ImageMissing(LabkitError):
    """A course image is not on the engine and pulling is disabled."""


class BuildFailed(LabkitError):
    """A build step failed; carries the step and the tail of its output."""

    def __init__(self, message: str, step: str | None = None, log_tail: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.step = step
        self.log_tail = log_tail

    def __str__(self) -> str:
        text = self.message
        if self.step:
            text += f"\nFailing step: {self.step}"
        if self.log_tail:
            text += "\n--- last lines of its output ---\n" + self.log_tail
        if self.hint:
            text += f"\n→ {self.hint}"
        return text


class ContainerFailed(LabkitError):
    """A container exited or never answered; carries its logs' tail."""

    def __init__(self, message: str, logs: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.logs = logs

    def __str__(self) -> str:
        text = self.message
        if self.logs:
            text += "\n--- last lines of its logs ---\n" + self.logs
        if self.hint:
            text += f"\n→ {self.hint}"
        return text


class AppError(ContainerFailed):
    """The app in a container answered an HTTP error (e.g. 500); carries its logs' tail."""

    def __init__(self, message: str, status_code: int | None = None, logs: str = "",
                 hint: str | None = None) -> None:
        super().__init__(message, logs=logs, hint=hint)
        self.status_code = status_code


class RegistryError(LabkitError):
    """The registry refused a login, a push or a query."""


class NestedEngineRefused(LabkitError):
    """The engine cannot run a second Docker engine in a container (it refuses privileged
    containers, or the engine inside stops at once); ``plan`` is what would have run."""

    def __init__(self, message: str, hint: str | None = None, plan: str = "") -> None:
        super().__init__(message + (f"\nWhat it would have done:\n{plan}" if plan else ""),
                         hint)
        self.plan = plan


class PrepareError(LabkitError):
    """An offline stand-in image could not be built."""


class EngineInsecure(LabkitError):
    """The engine is reached over a network without verified TLS."""


class PortsUnreachable(LabkitError):
    """A remote engine's published ports listen on its loopback only: not reachable here."""
