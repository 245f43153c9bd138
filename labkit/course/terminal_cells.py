"""The notebooks' terminal cells: the plain ``docker`` and ``labkit`` commands, run by
``%%bash``, reach the same engine and the same course user as labkit does."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from labkit.engine import LabkitError, settings


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


def terminal_environment() -> dict[str, str]:
    """What a terminal beside the notebooks needs to type the cells' commands (``eval
    "$(labkit env)"``): what :func:`prepare` gives a cell, the course user and this Python's
    ``labkit`` first on PATH, and ``$REGISTRY`` when the learner's registry runs (or one is
    configured)."""
    from labkit.registry import configured_registry, find_registry

    environ = dict(os.environ)
    changed = prepare(environ)
    env = {"LABKIT_USER": environ["LABKIT_USER"]}
    if "PATH" in changed:
        env["PATH"] = changed["PATH"]
    try:
        registry = configured_registry() or find_registry()
    except LabkitError:  # no engine answers: the rest still helps
        registry = None
    if registry is not None:
        env["REGISTRY"] = registry.address
    return env
