"""Per-user secret state: the local registry password, kept in a 0600 JSON file.

The password is read here and handed only to the engine (login, push) and to the
registry's HTTP API; it is never printed, put in a repr, a DataFrame or a command line.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from labkit.engine import StateError, settings

PASSWORD_ENV = "LABKIT_REGISTRY_PASSWORD"
_PASSWORD_KEY = "registry_password"


def state_file() -> Path:
    """Where this namespace's state lives (``Settings.state_file``)."""
    return settings().state_file


def load(path: Path | None = None) -> dict[str, Any]:
    """The stored state, or an empty dict when there is none yet (or it is corrupt: it is
    then replaced on the next save). One that cannot be read raises :class:`StateError`."""
    path = path or state_file()
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    except OSError as exc:
        raise _state_error("read", path, exc) from None
    return data if isinstance(data, dict) else {}


def save(data: dict[str, Any], path: Path | None = None) -> Path:
    """Write the state atomically: directory 0700, file 0600 from its first byte."""
    path = path or state_file()
    directory = path.parent
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if not directory.exists():
            directory.mkdir(parents=True, mode=0o700)
            directory.chmod(0o700)  # mkdir's mode is filtered by the umask
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise _state_error("write", path, exc) from None
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _state_error(action: str, path: Path, exc: OSError) -> StateError:
    return StateError(f"labkit cannot {action} its state file {path} ({exc.strerror or exc}).",
                      "Make its folder writable by you, or set LABKIT_STATE_DIR to one that "
                      "is (then restart the kernel).")


def stored_password(path: Path | None = None) -> str | None:
    """The password kept in the state file, if one was generated already."""
    value = load(path).get(_PASSWORD_KEY)
    return value if isinstance(value, str) and value else None


def registry_password(environ: dict[str, str] | None = None, path: Path | None = None) -> str:
    """The registry password: ``LABKIT_REGISTRY_PASSWORD`` if set, else the stored one.

    The first call without either generates a random one (``secrets.token_urlsafe``) and
    stores it in the 0600 state file, so every later kernel finds the same password.
    """
    env = os.environ if environ is None else environ
    given = env.get(PASSWORD_ENV)
    if given:
        return given
    stored = stored_password(path)
    if stored:
        return stored
    data = load(path)
    password = secrets.token_urlsafe(24)
    data[_PASSWORD_KEY] = password
    save(data, path)
    return password


def password_source(environ: dict[str, str] | None = None, path: Path | None = None) -> str:
    """Where the password comes from, for `labkit doctor`: ``environment``, ``state file``
    or ``not set yet``; never the value."""
    env = os.environ if environ is None else environ
    if env.get(PASSWORD_ENV):
        return "environment"
    return "state file" if stored_password(path) else "not set yet"
