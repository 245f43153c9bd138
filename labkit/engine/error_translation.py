"""The error boundary: what docker-py, the engine or the connection to it raised, turned into
a :class:`~labkit.engine.errors.LabkitError` with a one-line fix (and, where it helps, the docker
command that fails the same way in a terminal).

:func:`translate` is the one mapping; :func:`boundary` applies it to a labkit function, and
the notebook (``course.setup``) and the ``labkit`` command apply it to whatever still
escapes. An engine that stops answering is reported as :class:`EngineGone` and forgotten,
so the next call connects anew (a restarted engine is found again, nothing is retried).
"""

from __future__ import annotations

import functools
import http.client
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import docker.errors
import requests
import urllib3.exceptions

from labkit.engine.errors import EngineGone, EngineRefused, ImageMissing, InvalidName, LabkitError

P = ParamSpec("P")
R = TypeVar("R")

#: What docker-py raises when the connection to the engine fails or drops mid-stream.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    requests.ConnectionError, requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError, http.client.HTTPException, ConnectionError,
)
#: Everything :func:`translate` turns into a labkit error.
RAW_ERRORS: tuple[type[BaseException], ...] = (
    docker.errors.DockerException, requests.RequestException, urllib3.exceptions.HTTPError,
    http.client.HTTPException, ConnectionError,
)

GONE_HINT = ("Start the engine again (`labkit doctor` checks it), then re-run the cell: "
             "labkit connects anew.")
_NAME_WORDS = ("invalid reference format", "invalid tag", "repository name must be",
               "invalid container name", "invalid repository name")


def explanation(exc: BaseException) -> str:
    """The engine's own words for an error (docker-py's ``explanation``), else its text."""
    text = getattr(exc, "explanation", None) or str(exc) or type(exc).__name__
    return str(text).strip()


def is_invalid_name(exc: BaseException) -> bool:
    """True when the engine (or docker-py) refused a name: an image reference or a container
    name with characters it does not allow ("Bad Name!")."""
    text = explanation(exc).lower()
    return isinstance(exc, docker.errors.DockerException) and any(w in text for w in _NAME_WORDS)


def invalid_name(kind: str, name: str, exc: BaseException, command: object = None
                 ) -> InvalidName:
    """The :class:`InvalidName` error for ``name`` (``kind``: "image", "container"...)."""
    rule = ("lowercase letters, digits and '.', '_', '-', with '/' between parts and "
            "':TAG' at the end (e.g. python-hello-world)" if kind != "container"
            else "letters, digits and '_', '.', '-' (e.g. hello)")
    same = f" `{command}` is refused the same way." if command else ""
    return InvalidName(f"{name!r} is not a valid {kind} name: Docker says "
                       f"\"{explanation(exc)}\".", f"Use {rule}.{same}")


def translate(exc: BaseException, doing: str, command: object = None) -> LabkitError:
    """``exc`` as a labkit error; ``doing`` completes "while trying to …", ``command`` is
    the equivalent docker command. A lost engine connection also forgets the cached client."""
    if isinstance(exc, LabkitError):
        return exc
    same = f"`{command}` in a terminal does the same; " if command else ""
    if isinstance(exc, docker.errors.ImageNotFound):
        return ImageMissing(f"The engine has no such image: {explanation(exc)}.",
                            "Build it first, or run `labkit prepare`; labkit never pulls.")
    if is_invalid_name(exc):
        return InvalidName(f"The engine refused a name while trying to {doing}: "
                           f"{explanation(exc)}.",
                           "Use lowercase letters, digits and '.', '_', '-' in image names "
                           "(e.g. python-hello-world).")
    if isinstance(exc, docker.errors.APIError):
        return EngineRefused(f"The Docker Engine refused to {doing}: {explanation(exc)}",
                             f"{same}`labkit doctor` checks the engine and the course images.",
                             exc.status_code)
    if isinstance(exc, requests.Timeout):
        from labkit.engine import connection as engine

        engine.reset()
        return EngineGone(f"The Docker Engine at {engine.describe_engine()} did not answer in "
                          f"time while labkit was trying to {doing} ({type(exc).__name__}).",
                          GONE_HINT)
    if isinstance(exc, CONNECTION_ERRORS):
        from labkit.engine import connection as engine

        engine.reset()
        return EngineGone(f"The Docker Engine at {engine.describe_engine()} went away while "
                          f"labkit was trying to {doing} ({type(exc).__name__}).", GONE_HINT)
    return EngineRefused(f"Docker refused to {doing}: {explanation(exc)} "
                         f"({type(exc).__name__}).",
                         f"{same}`labkit doctor` checks the engine and the course images.")


def boundary(doing: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate a labkit function so that raw docker-py / connection errors leave it as
    labkit errors (see :func:`translate`); labkit's own errors pass unchanged."""
    def wrap(func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return func(*args, **kwargs)
            except RAW_ERRORS as exc:
                raise translate(exc, doing) from exc
        return call
    return wrap


def show_in_notebook(shell: Any, etype: type[BaseException], value: BaseException,
                     tb: Any, tb_offset: int | None = None) -> list[str]:
    """IPython's custom exception handler: a labkit error as its message and fix, and a raw
    docker-py / connection error translated first; no traceback either way."""
    error = translate(value, "run this cell")
    stb = [f"{type(error).__name__}: {error}"]
    shell._showtraceback(type(error), error, stb)
    return stb
