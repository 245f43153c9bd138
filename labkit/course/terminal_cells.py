"""The notebooks' terminal cells: the plain ``docker`` and ``labkit`` commands, run by
``%%bash``, reach the same engine and the same course user as labkit does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labkit.engine import settings


def prepare(environ: dict[str, str] | None = None) -> dict[str, str]:
    """Make ``$LABKIT_USER`` name the course user, and put this Python's ``labkit`` command
    first on PATH (a kernel started from a virtualenv without activating it lacks it).
    DOCKER_HOST, a Docker context and TLS settings are the kernel's own, so the docker CLI
    talks to the engine labkit uses. Returns the variables it set."""
    env = os.environ if environ is None else environ
    changed = {}
    if not env.get("LABKIT_USER"):
        env["LABKIT_USER"] = changed["LABKIT_USER"] = settings().user
    bindir = str(Path(sys.executable).parent)
    path = env.get("PATH", "")
    if bindir not in path.split(os.pathsep):
        env["PATH"] = changed["PATH"] = os.pathsep.join(p for p in (bindir, path) if p)
    return changed

