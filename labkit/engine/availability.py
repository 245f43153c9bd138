"""Running where no Docker Engine is (Binder): what to tell the learner, as data.

:func:`check_engine` tries the engine once and returns an :class:`EngineCheck`; on Binder
its message says that the session has no engine and that the stored outputs show what
each cell does, and its hint names the places where the course runs for real.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from labkit.engine import connection as engine
from labkit.engine.errors import EngineUnavailable

#: Variables that BinderHub sets in every session it launches.
BINDER_VARIABLES = ("BINDER_LAUNCH_HOST", "BINDER_REQUEST", "BINDER_REPO_URL")

BINDER_MESSAGE = (
    "This Binder session has no Docker Engine, so the cells cannot run here; "
    "the stored outputs show what each one does."
)


def on_binder(environ: Mapping[str, str] | None = None) -> bool:
    """True inside a session that BinderHub (e.g. mybinder.org) launched."""
    env = os.environ if environ is None else environ
    return any(env.get(name) for name in BINDER_VARIABLES)


@dataclass(frozen=True)
class EngineCheck:
    """Whether an engine answers where the environment points, and what to say if not."""

    available: bool
    host: str
    binder: bool
    message: str = ""
    hint: str = ""

    @property
    def error(self) -> EngineUnavailable | None:
        """The error to raise when no engine answers (None when one does)."""
        if self.available:
            return None
        return EngineUnavailable(self.message, self.hint)

    def _repr_markdown_(self) -> str:
        if self.available:
            return f"Docker Engine at `{self.host}` answers."
        return f"**No Docker Engine**: {self.message}  \n→ {self.hint}"


def check_engine(environ: Mapping[str, str] | None = None,
                 connect: Callable[..., Any] | None = None) -> EngineCheck:
    """Try the engine once (``connect`` defaults to :func:`labkit.engine.connection.connect`)."""
    env = dict(os.environ if environ is None else environ)
    binder = on_binder(env)
    try:
        (connect or engine.connect)(env)
    except EngineUnavailable as exc:
        message = BINDER_MESSAGE if binder else exc.message
        return EngineCheck(False, engine.describe_host(env), binder, message,
                           exc.hint or engine.NO_ENGINE_HINT)
    return EngineCheck(True, engine.describe_host(env), binder)
