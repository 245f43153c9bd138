"""Each exercise check passes a right answer and fails a wrong one, judged from the engine."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import cleanup, course, images, registry
from labkit.containers import apps as containers
from labkit.course import exercises
from labkit.engine import connection as engine
from labkit.engine.config import BASE_IMAGE, Settings, settings

SUFFIX = "ex"


@pytest.fixture(scope="module")
def lab(ns: Settings, client: docker.DockerClient,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A notebooks folder where steps 1-4 have run (app, Dockerfile, image, registry)."""
    folder = tmp_path_factory.mktemp("notebooks")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        course.ensure(5, message=course.HELLO)
        yield folder
    cleanup.clean(client=client, show=False)


def write_ex02(folder: Path, workdir: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(course.app_source())
    lines = [f"FROM {BASE_IMAGE}", "RUN pip install flask"]
    lines += ["WORKDIR /srv", "COPY app.py ."] if workdir else ["COPY app.py /app.py"]
    lines.append('CMD ["python", "app.py"]')
    (folder / "Dockerfile").write_text("\n".join(lines) + "\n")


def test_ex02_not_attempted_is_not_a_failure(lab: Path) -> None:
    verdict = exercises.ex02_workdir(lab / "nothing-here")
    assert verdict.passed is None


def test_ex02_right_and_wrong(lab: Path) -> None:
    write_ex02(lab / "right02", workdir=True)
    write_ex02(lab / "wrong02", workdir=False)
    assert exercises.ex02_workdir(lab / "right02").passed is True
    wrong = exercises.ex02_workdir(lab / "wrong02")
    assert wrong.passed is False
    assert not wrong.findings[0][0]  # the working directory is the finding that fails


def test_ex03_right_and_wrong(lab: Path, client: docker.DockerClient, ns: Settings) -> None:
    assert exercises.ex03_second_container().passed is None
    app = containers.run(course.image_name(), name="hello-2")
    assert exercises.ex03_second_container().passed is True
    app.stop(timeout=1)
    assert exercises.ex03_second_container().passed is False  # not running any more
    app.remove()


def test_ex04_right_and_wrong(lab: Path, ns: Settings) -> None:
    reg = registry.start_registry()
    ref = registry.tag_for_registry(course.image_name(), course.APP_NAME, tag="1.0",
                                    registry=reg)
    registry.push(ref, registry=reg, show=False)
    assert exercises.ex04_version_tag().passed is True
    other = course.ensure(3, message="another version")  # latest now names another image
    latest = registry.tag_for_registry(other.tag, course.APP_NAME, registry=reg)
    registry.push(latest, registry=reg, show=False)
    assert exercises.ex04_version_tag().passed is False


@pytest.mark.parametrize("right", [True, False])
def test_ex05_prediction(lab: Path, right: bool) -> None:
    # COPY, RUN and CMD with the classic builder; BuildKit makes no step of CMD
    steps = 2 if images.which_builder().buildkit else 3
    prediction, passed = (steps, True) if right else (1, False)
    folder = lab / "workspace" / "ex05"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(f"FROM {BASE_IMAGE}\nCOPY app.py /app.py\n"
                                       'RUN pip install flask\nCMD ["python", "app.py"]\n')
    check = exercises.ex05_wrong_order(prediction, folder)
    assert check.passed is passed
    if not passed:  # a wrong answer is told so, never given the right one
        assert f"rebuilt {steps} steps" not in str(check)


def test_ex03_accepts_a_container_started_with_the_docker_cli(lab: Path, ns: Settings,
                                                               client) -> None:
    import shutil
    import subprocess

    course.ensure(3)
    assert shutil.which("docker"), "the docker CLI is needed: the course's terminal cells use it"
    name = ns.container_name("hello-2")
    subprocess.run(["docker", "container", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "container", "run", "-d", "--name", name,
                    "-p", f"{engine.bind_ip()}::5000", course.image_name()],
                   check=True, capture_output=True)
    try:
        check = exercises.ex03_second_container()
        assert check.passed is True, str(check)
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            client.containers.get(name).remove(force=True)


def test_ex06_right_and_wrong(lab: Path) -> None:
    course.ensure(3)
    assert exercises.ex06_heaviest_layer("RUN pip install flask").passed is True
    assert exercises.ex06_heaviest_layer("COPY app.py /app.py").passed is False
    assert exercises.ex06_heaviest_layer(None).passed is None


def test_ex07_right_and_wrong(lab: Path, client: docker.DockerClient) -> None:
    """Of the five things, a plain prune takes only the stopped app container, on every
    engine: a tagged image, a named volume, the bridge network and the base image stay."""
    course.ensure(7)
    client.containers.get(settings().container_name("hello")).stop(timeout=0)
    preview = cleanup.preview_system_prune()
    assert exercises.ex07_would_go(preview) == {"app-container"}
    assert exercises.ex07_prune_preview({"app-container"}, preview=preview).passed is True
    assert exercises.ex07_prune_preview({"app-container", "registry-volume"},
                                        preview=preview).passed is False
    assert exercises.ex07_prune_preview(set(), preview=preview).passed is False
    assert exercises.ex07_prune_preview({"app-container", "volume"},
                                        preview=preview).passed is False
    assert exercises.ex07_prune_preview(None).passed is None


def test_ex08_right_and_wrong(lab: Path, client: docker.DockerClient) -> None:
    from labkit import layers

    course.ensure(3)
    ids = client.api.inspect_image(course.image_name())["RootFS"]["Layers"]
    analysis = layers.analyze(course.image_name())
    holder = analysis.owner("/app.py")
    assert holder is not None
    right = analysis.layers[holder[0]].diff_id
    assert right in ids  # the engine's own list of diff IDs names it
    assert exercises.ex08_app_layer(right).passed is True
    assert exercises.ex08_app_layer(right.removeprefix("sha256:")[:12].upper()).passed is True
    wrong = next(d for d in ids if d != right)
    verdict = exercises.ex08_app_layer(wrong)
    assert verdict.passed is False
    assert right.removeprefix("sha256:")[:12] not in str(verdict)  # never gives the answer
    image_id = client.api.inspect_image(course.image_name())["Id"]
    assert "image ID" in str(exercises.ex08_app_layer(image_id))
    assert exercises.ex08_app_layer("sha256:abc").passed is False  # too short
    assert exercises.ex08_app_layer(None).passed is None
