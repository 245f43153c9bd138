"""``course.ensure`` against the real engine and registry: after step 5's change it keeps the
learner's app.py and image (steps 6 and 8 start from them), and makes, and says, only what
is missing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import containers, course, registry
from labkit.engine.config import Settings
from labkit.images import builder as images

SUFFIX = "ens"


@pytest.fixture(scope="module")
def changed(ns: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A workspace where step 5 ran: the original pushed, then the change built, pushed and
    run."""
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path_factory.mktemp("course"))
        course.ensure(5, message=course.HELLO, show=False)
        course.write_app(course.BEAUTIFUL)
        images.build(course.WORKSPACE, course.APP_NAME, show=False)
        reg = registry.start_registry()
        ref = registry.tag_for_registry(course.image_name(), course.APP_NAME, registry=reg)
        registry.push(ref, registry=reg, show=False)
        containers.run(course.image_name(), name="hello")
        yield course.WORKSPACE / "app.py"


def image_id(client: docker.DockerClient) -> str:
    return str(client.images.get(course.image_name()).id)


@pytest.mark.parametrize("step", [3, 5])
def test_ensure_keeps_the_changed_app_and_its_image(changed: Path, client: docker.DockerClient,
                                                    step: int) -> None:
    app, image = changed.read_text(), image_id(client)
    done = course.ensure(step, show=False)
    assert changed.read_text() == app == course.app_source(course.BEAUTIFUL)
    assert image_id(client) == image == done.image_id
    assert done.actions == [] and done.build is None
    assert course.BEAUTIFUL in course.read_image_file(course.image_name(), "/app.py")


def test_an_edit_not_built_yet_is_kept_and_noted(changed: Path, client: docker.DockerClient
                                                 ) -> None:
    image = image_id(client)
    course.write_app("an edit not built yet")
    try:
        done = course.ensure(3, show=False)
        assert course.app_source("an edit not built yet") == changed.read_text()
        assert image_id(client) == image and done.actions == []
        assert any("docker build" in n for n in done.notes)
    finally:
        course.write_app(course.BEAUTIFUL)


def test_a_missing_image_is_built_from_the_learners_app_and_said(
        changed: Path, client: docker.DockerClient) -> None:
    client.images.remove(course.image_name(), noprune=True)
    done = course.ensure(3, show=False)
    assert changed.read_text() == course.app_source(course.BEAUTIFUL)
    assert done.build is not None and done.image_id == image_id(client)
    assert [a.command for a in done.actions] == [f"$ {done.build.command}"]
    assert course.BEAUTIFUL in course.read_image_file(course.image_name(), "/app.py")


def test_an_explicit_message_rewrites_the_app_and_says_so(changed: Path,
                                                         client: docker.DockerClient) -> None:
    done = course.ensure(3, message=course.HELLO, show=False)
    try:
        assert changed.read_text() == course.app_source(course.HELLO)
        assert done.build is not None and done.image_id == image_id(client)
        assert "rewrote" in done.actions[0].what and "docker build" in done.actions[-1].command
        assert course.HELLO in course.read_image_file(course.image_name(), "/app.py")
    finally:
        course.ensure(3, message=course.BEAUTIFUL, show=False)
