"""What the unit tests share: the course settings a test runs under, and one fake docker client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from labkit.engine import config

UseSettings = Callable[..., config.Settings]


@pytest.fixture()
def course_settings() -> Iterator[UseSettings]:
    """``course_settings(user="h2", ...)`` makes those the settings of this test (the fields of
    :class:`labkit.engine.config.Settings`) and returns them; the earlier ones come back after."""
    before = config.settings()

    def use(**fields: Any) -> config.Settings:
        config.use(config.Settings(**fields))
        return config.settings()

    yield use
    config.use(before)


class FakeClient:
    """One stand-in for ``docker.DockerClient``: the parts a test gives it (``api``,
    ``images``, ``containers``, a ``df`` answer), and ``login`` recorded. A part it was not
    given is ``None``, so code that reaches for it fails at once."""

    def __init__(self, api: Any = None, *, images: Any = None, containers: Any = None,
                 df: Callable[[], dict[str, Any]] | None = None,
                 login_error: Exception | None = None) -> None:
        self.api = api
        self.images = images
        self.containers = containers
        self._df = df
        self.login_error = login_error
        self.logins: list[dict[str, Any]] = []

    def df(self) -> dict[str, Any]:
        """``docker system df``, as the test said it is."""
        assert self._df is not None, "this test's client was given no df answer"
        return self._df()

    def login(self, **kwargs: Any) -> dict[str, Any]:
        """Record the login; refuse it with ``login_error`` if the test gave one."""
        self.logins.append(kwargs)
        if self.login_error:
            raise self.login_error
        return {"IdentityToken": "", "Status": "Login Succeeded"}


@pytest.fixture()
def fake_client() -> type[FakeClient]:
    """The fake docker client class (``fake_client(api, images=..., containers=...)``)."""
    return FakeClient
