"""Integration fixtures: a real engine (its absence FAILS the run), a namespace of its own
per test session (modules take sub-namespaces ``SESSION-suffix``), and at the end the
removal of everything labelled with or named after those namespaces, whatever the code
under test removed itself; the session fails if anything of it is still on the engine."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import docker
import pytest

from labkit import course
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import EngineUnavailable

APP_PY = course.app_source(course.HELLO)
DOCKERFILE = course.DOCKERFILE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration needs the engine: mark it so."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


def in_session(value: str | None, namespace: str) -> bool:
    """True for the session's namespace and its module namespaces (``NAMESPACE-suffix``)."""
    return bool(value) and (value == namespace or value.startswith(namespace + "-"))


def _named(name: str, namespace: str) -> bool:
    """A container, volume or network name, or an image reference, of the session: the
    name itself, or one path component of the repository (``[HOST/]NS[-x]/NAME:TAG``)."""
    head, _, tail = name.rpartition(":")
    repository = head if head and "/" not in tail else name  # without its tag
    return any(in_session(part, namespace) for part in repository.split("/"))


def session_leftovers(client: docker.DockerClient, namespace: str) -> dict[str, list[str]]:
    """Everything on the engine that this session made: what carries its namespace label
    (or a module namespace's), and what is named after them, labelled or not."""
    key = config.LABEL_NAMESPACE

    def ours(labels: dict | None, *names: str) -> bool:
        return in_session((labels or {}).get(key), namespace) or any(
            _named(n, namespace) for n in names)

    found: dict[str, list[str]] = {
        "containers": [c["Id"] for c in client.api.containers(all=True)
                       if ours(c.get("Labels"), *[n.lstrip("/") for n in c.get("Names") or []])],
        "images": [i["Id"] for i in client.api.images()
                   if ours(i.get("Labels"), *(i.get("RepoTags") or []))],
        "volumes": [v["Name"] for v in client.api.volumes().get("Volumes") or []
                    if ours(v.get("Labels"), v["Name"])],
        "networks": [n["Id"] for n in client.api.networks()
                     if ours(n.get("Labels"), n["Name"])],
    }
    return found


def reap_session(client: docker.DockerClient, namespace: str) -> dict[str, int]:
    """Remove what :func:`session_leftovers` finds, whatever the code under test did.

    Containers go with their anonymous volumes. An image of the session that also carries
    a tag of someone else's only loses the session's tags. Passes repeat while they make
    progress (an image goes only after the images built FROM it).
    """
    removed = {"containers": 0, "images": 0, "volumes": 0, "networks": 0}
    for _ in range(4):
        found = session_leftovers(client, namespace)
        if not any(found.values()):
            break
        for ident in found["containers"]:
            removed["containers"] += _quietly(client.api.remove_container, ident, force=True,
                                              v=True)
        for ident in found["images"]:
            removed["images"] += _remove_image(client, ident, namespace)
        for name in found["volumes"]:
            removed["volumes"] += _quietly(client.api.remove_volume, name, force=True)
        for ident in found["networks"]:
            removed["networks"] += _quietly(client.api.remove_network, ident)
    return removed


def _remove_image(client: docker.DockerClient, ident: str, namespace: str) -> bool:
    try:
        tags = [t for t in client.api.inspect_image(ident).get("RepoTags") or []
                if t != "<none>:<none>"]
    except docker.errors.NotFound:
        return False
    mine = [t for t in tags if _named(t, namespace)]
    if len(mine) < len(tags):  # someone else's tag too: take ours off, leave the image
        return all([_quietly(client.api.remove_image, tag) for tag in mine])
    return _quietly(client.api.remove_image, ident, force=True)


#: Untagged parents of the session's images (the classic builder's steps): no label or
#: name says whose they are, and removing an image does not always take them along (a
#: ``noprune`` removal, or the containerd image store), so they are noted while known.
_LINEAGE: set[str] = set()
_NOTED: set[str] = set()  # session images whose parents are in _LINEAGE
_SESSION: dict[str, str] = {}  # the session's namespace, once the session has started


def _tags(attrs: dict) -> list[str]:
    return [t for t in attrs.get("RepoTags") or [] if t != "<none>:<none>"]


def _untagged_parents(api: docker.APIClient, image_id: str) -> list[str]:
    """The untagged images below ``image_id``, nearest first, up to the first tagged one
    (a base image, or someone else's)."""
    out: list[str] = []
    parent = api.inspect_image(image_id).get("Parent")
    while parent and parent not in out:
        try:
            attrs = api.inspect_image(parent)
        except docker.errors.NotFound:
            break
        if _tags(attrs):
            break
        out.append(parent)
        parent = attrs.get("Parent")
    return out


def _note(api: docker.APIClient, ident: str) -> None:
    if ident not in _NOTED:
        with contextlib.suppress(docker.errors.APIError):
            _LINEAGE.update(_untagged_parents(api, ident))
            _NOTED.add(ident)


def note_session_images(api: docker.APIClient, namespace: str) -> None:
    """Note the parents of every image of the session now on the engine."""
    key = config.LABEL_NAMESPACE
    for image in api.images():
        if in_session((image.get("Labels") or {}).get(key), namespace) or any(
                _named(t, namespace) for t in _tags(image)):
            _note(api, image["Id"])


def _noting(namespace: str, method):  # noqa: ANN001, ANN202 - an APIClient method wrapper
    """``remove_image`` / ``prune_images`` that first note the parents of what they remove."""
    def wrapper(self, *args, **kwargs):  # noqa: ANN001, ANN202
        with contextlib.suppress(docker.errors.APIError):
            note_session_images(self, namespace)
            if method.__name__ == "remove_image" and args:
                image = self.inspect_image(args[0])["Id"]
                if image in _LINEAGE:
                    _note(self, image)
        return method(self, *args, **kwargs)
    return wrapper


def _lineage_left(client: docker.DockerClient) -> list[str]:
    """Noted parents still on the engine, untagged, and parents of nothing."""
    images = client.api.images(all=True)
    children = {i.get("ParentId") for i in images}
    return [i["Id"] for i in images if i["Id"] in _LINEAGE and i["Id"] not in children
            and not _tags(i)]


def _reap_lineage(client: docker.DockerClient) -> None:
    for _ in range(4):  # a removal prunes the untagged parents it leaves childless
        left = _lineage_left(client)
        if not left:
            return
        for ident in left:
            _quietly(client.api.remove_image, ident)


def _quietly(action, *args, **kwargs) -> bool:
    """True when ``action`` succeeded; already gone, or in use by something outside the
    session, is left for the next pass (and reported if it stays)."""
    try:
        action(*args, **kwargs)
    except docker.errors.APIError:
        return False
    return True


@pytest.fixture(scope="session", autouse=True)
def engine_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.DockerClient]:
    """The engine of DOCKER_HOST, and a namespace (LABKIT_USER) unique to this session."""
    try:
        cli = engine.connect()
    except EngineUnavailable as exc:
        pytest.fail(f"Integration tests need a Docker Engine: {exc}", pytrace=False)
    namespace = _SESSION["namespace"] = "it" + secrets.token_hex(4)
    saved = {k: os.environ.get(k) for k in ("LABKIT_USER", "LABKIT_STATE_DIR")}
    os.environ["LABKIT_USER"] = namespace  # for subprocesses (the labkit command)
    os.environ["LABKIT_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    previous = config.settings()
    config.use(config.from_env())
    engine.reset()
    patch = pytest.MonkeyPatch()
    for name in ("remove_image", "prune_images"):
        patch.setattr(docker.APIClient, name, _noting(namespace, getattr(docker.APIClient, name)))
    try:
        yield cli
    finally:
        patch.undo()
        note_session_images(cli.api, namespace)
        reap_session(cli, namespace)
        _reap_lineage(cli)
        left = session_leftovers(cli, namespace)
        left["build cache images"] = _lineage_left(cli)
        config.use(previous)
        engine.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        cli.close()
    if any(left.values()):  # checked at every session's end: the reaping must be complete
        pytest.fail(f"The session left these behind on the engine: {left}", pytrace=False)


@pytest.fixture(autouse=True)
def _note_parents(engine_session: docker.DockerClient) -> Iterator[None]:
    """After each test, note the parents of the session's images (for the final reaping):
    an image removed by a subprocess (the labkit or docker command) is not seen otherwise."""
    yield
    note_session_images(engine_session.api, _SESSION["namespace"])


@pytest.fixture(scope="session")
def reaper() -> SimpleNamespace:
    """The session's clean-up functions (``leftovers``, ``reap``), for testing them."""
    return SimpleNamespace(leftovers=session_leftovers, reap=reap_session)


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
