"""Course settings: one namespace, the labels and names derived from it, and where state lives.

Everything is read from the environment so that two learners (or two test runs) on one
engine never collide: set ``LABKIT_USER`` to a different value for each.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labkit.engine.errors import ConfigError
from labkit.learners import is_learner_name

LABEL_MANAGED = "org.labkit.managed"
LABEL_NAMESPACE = "org.labkit.namespace"
LABEL_ROLE = "org.labkit.role"
LABEL_STANDIN = "org.labkit.standin"

#: The images the course needs before any notebook runs.
BASE_IMAGE = "python:3.11-slim-bookworm"
REGISTRY_IMAGE = "registry:2"
DIND_IMAGE = "docker:dind"

def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """What one learner's course run is called and how it behaves."""

    user: str = "student"
    offline: bool = False
    trust_host_ca: bool = False
    host_ca_bundle: Path = Path("/etc/ssl/certs/ca-certificates.crt")
    bind_ip: str | None = None
    publish_host: str | None = None
    registry: str | None = None
    state_dir: Path = field(default_factory=lambda: Path.home() / ".local/state/labkit")
    show_commands: bool = True

    def __post_init__(self) -> None:
        if not is_learner_name(self.user):
            raise ConfigError(
                f"LABKIT_USER={self.user!r} is not a valid name: it names your containers, "
                "images and registry user.",
                "Use 1-30 lowercase letters, digits, '-' or '_', starting with a letter or "
                "digit, e.g. `export LABKIT_USER=alice` before starting Jupyter.",
            )

    @property
    def namespace(self) -> str:
        """The namespace of every name and label; the registry user name too."""
        return self.user

    def labels(self, role: str) -> dict[str, str]:
        """Labels put on the containers, volumes and networks the course creates."""
        return {LABEL_MANAGED: "true", LABEL_NAMESPACE: self.namespace, LABEL_ROLE: role}

    def label_filters(self, role: str | None = None) -> list[str]:
        """Engine label filters selecting the containers, volumes and networks labkit created
        for this namespace. Images carry no label of ours: whose an image is, and whose a
        container a learner ran in the terminal is, :mod:`labkit.images.owned` decides."""
        out = [f"{LABEL_NAMESPACE}={self.namespace}"]
        if role:
            out.append(f"{LABEL_ROLE}={role}")
        return out

    def container_name(self, name: str) -> str:
        """A container name unique to this namespace, e.g. ``student-hello``."""
        return f"{self.namespace}-{name}"

    def image_name(self, name: str) -> str:
        """A local image name following the ``<username>/<name>`` convention."""
        return f"{self.namespace}/{name}"

    @property
    def state_file(self) -> Path:
        """Per-user state (registry password); written with 0600 permissions."""
        return self.state_dir / f"{self.namespace}.json"


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Read the settings from ``LABKIT_*`` environment variables."""
    env = os.environ if environ is None else environ
    state = env.get("LABKIT_STATE_DIR")
    xdg = env.get("XDG_STATE_HOME")
    state_dir = Path(state) if state else (Path(xdg) / "labkit" if xdg else None)
    kwargs: dict[str, Any] = {}
    if state_dir is not None:
        kwargs["state_dir"] = state_dir
    return Settings(
        user=env.get("LABKIT_USER", "student"),
        offline=_truthy(env.get("LABKIT_OFFLINE")),
        trust_host_ca=_truthy(env.get("LABKIT_TRUST_HOST_CA")),
        host_ca_bundle=Path(env.get("LABKIT_HOST_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")),
        bind_ip=env.get("LABKIT_BIND_IP") or None,
        publish_host=env.get("LABKIT_PUBLISH_HOST") or None,
        registry=env.get("LABKIT_REGISTRY") or None,
        show_commands=not _truthy(env.get("LABKIT_HIDE_COMMANDS")),
        **kwargs,
    )


_current: Settings | None = None


def settings() -> Settings:
    """The process-wide settings (read once from the environment)."""
    global _current
    if _current is None:
        _current = from_env()
    return _current


def use(new: Settings) -> Settings:
    """Replace the process-wide settings (tests, or a notebook switching user)."""
    global _current
    _current = new
    return new
