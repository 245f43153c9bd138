"""Integration fixtures: a real engine (its absence FAILS the run), a namespace of its own
per test session, and removal of everything carrying that namespace at the end."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import docker
import pytest

from labkit import config, course, engine
from labkit.errors import EngineUnavailable

APP_PY = course.app_source(course.HELLO)
DOCKERFILE = course.DOCKERFILE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the engine: mark it so."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def remove_namespace(client: docker.DockerClient, namespace: str) -> dict[str, int]:
    """Remove every container, image, volume and network labelled with ``namespace``."""
    flt = {"label": [f"{config.LABEL_NAMESPACE}={namespace}"]}
    removed = {"containers": 0, "images": 0, "volumes": 0, "networks": 0}
    for container in client.containers.list(all=True, filters=flt):
        _quietly(container.remove, force=True, v=True)
        removed["containers"] += 1
    for image in client.images.list(all=True, filters=flt):
        _quietly(client.images.remove, image.id, force=True)
        removed["images"] += 1
    for volume in client.volumes.list(filters=flt):
        _quietly(volume.remove, force=True)
        removed["volumes"] += 1
    for network in client.networks.list(filters=flt):
        _quietly(network.remove)
        removed["networks"] += 1
    return removed


def _quietly(action, *args, **kwargs) -> None:
    # Already gone (or in use by something outside the namespace): safe to repeat.
    with contextlib.suppress(docker.errors.APIError):
        action(*args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def engine_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.DockerClient]:
    """The engine of DOCKER_HOST, and a namespace (LABKIT_USER) unique to this session."""
    try:
        cli = engine.connect()
    except EngineUnavailable as exc:
        pytest.fail(f"Integration tests need a Docker Engine: {exc}", pytrace=False)
    namespace = "it" + secrets.token_hex(4)
    saved = {k: os.environ.get(k) for k in ("LABKIT_USER", "LABKIT_STATE_DIR")}
    os.environ["LABKIT_USER"] = namespace  # for subprocesses (the labkit command)
    os.environ["LABKIT_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    previous = config.settings()
    config.use(config.from_env())
    engine.reset()
    try:
        yield cli
    finally:
        remove_namespace(cli, namespace)
        config.use(previous)
        engine.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cli.close()


@pytest.fixture(scope="session")
def client(engine_session: docker.DockerClient) -> docker.DockerClient:
    """A docker-py client of the engine under test."""
    return engine_session


@pytest.fixture(scope="session")
def settings(engine_session: docker.DockerClient) -> config.Settings:
    """This session's labkit settings (its own LABKIT_USER namespace)."""
    return config.settings()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory holding the lab's app.py and Dockerfile."""
    (tmp_path / "app.py").write_text(APP_PY)
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    return tmp_path


@pytest.fixture
def labels(settings: config.Settings) -> dict[str, str]:
    """Labels that put a test's own objects into this session's namespace."""
    return settings.labels("test")




SCOPED_DOCKERFILE = DOCKERFILE.replace("\nRUN ", "\nARG CACHE_SCOPE\nRUN ", 1)


def build_app(client: docker.DockerClient, workdir: Path, tag: str,
              labels: dict[str, str] | None, greeting: str, scope: str):
    """Build the lab's image with app.py answering ``greeting`` (only app.py changes).

    ``CACHE_SCOPE`` makes the RUN step's cache key unique to the calling module, so a cache
    hit on another test's intermediate image (removed meanwhile by its clean-up) cannot
    turn an "only app.py changed" rebuild into a full one.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "Dockerfile").write_text(SCOPED_DOCKERFILE)
    (workdir / "app.py").write_text(course.app_source(greeting))
    image, _ = client.images.build(path=str(workdir), tag=tag, labels=labels, pull=False,
                                   rm=True, forcerm=True, buildargs={"CACHE_SCOPE": scope})
    return image


@pytest.fixture(scope="session")
def app_builder():  # noqa: ANN201 - the build_app function
    """:func:`build_app`, for modules that build the lab's image with docker-py directly."""
    return build_app


@pytest.fixture(scope="module")
def ns(request: pytest.FixtureRequest, settings: config.Settings,
       tmp_path_factory: pytest.TempPathFactory) -> Iterator[config.Settings]:
    """A namespace of the module's own (``SUFFIX`` in the module), so its clean() cannot
    touch other modules' objects."""
    before = config.settings()
    suffix = getattr(request.module, "SUFFIX", request.module.__name__.rsplit(".", 1)[-1])
    chosen = config.use(replace(
        settings, user=f"{settings.namespace}-{suffix}"[:30], offline=True,
        state_dir=tmp_path_factory.mktemp("state")))
    yield chosen
    config.use(before)
