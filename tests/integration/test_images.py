"""Builds, history, image list and tags against the real engine (facts the engine reports)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import course, images
from labkit.engine import config
from labkit.engine.errors import BuildFailed, ImageMissing

pytestmark = pytest.mark.integration

APP_PY = course.app_source(course.HELLO)
DOCKERFILE = course.DOCKERFILE


@dataclasses.dataclass
class TwoBuilds:
    first: images.BuildResult
    second: images.BuildResult


@pytest.fixture(scope="module")
def builds(client: docker.DockerClient, settings: config.Settings,
           tmp_path_factory: pytest.TempPathFactory) -> TwoBuilds:
    """The lab's image built, then rebuilt after touching only app.py."""
    folder = tmp_path_factory.mktemp("build")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.py").write_text(APP_PY)
    first = images.build(folder, "it-hello", client=client, show=False)
    (folder / "app.py").write_text(APP_PY + "# edited\n")
    second = images.build(folder, "it-hello", client=client, show=False)
    return TwoBuilds(first, second)


def test_build_tags_the_image_it_reports(builds: TwoBuilds, client: docker.DockerClient):
    assert client.images.get(builds.second.tag).id == builds.second.image_id


def test_build_reports_every_dockerfile_step(builds: TwoBuilds):
    keywords = [s.keyword for s in builds.second.dockerfile_steps]
    assert keywords == ["FROM", "RUN", "CMD", "COPY"]


def test_rebuild_after_editing_app_py_takes_steps_before_copy_from_cache(builds: TwoBuilds):
    assert builds.second.step("RUN").cached
    assert builds.second.step("CMD").cached


def test_rebuild_after_editing_app_py_rebuilds_copy(builds: TwoBuilds):
    assert not builds.second.step("COPY").cached
    assert builds.second.step("COPY").status == "rebuilt"


def test_cached_steps_keep_their_image_ids(builds: TwoBuilds):
    for keyword in ("FROM", "RUN", "CMD"):
        assert builds.second.step(keyword).image_id == builds.first.step(keyword).image_id


def test_copy_step_makes_a_new_image(builds: TwoBuilds):
    assert builds.second.step("COPY").image_id != builds.first.step("COPY").image_id
    assert builds.second.image_id != builds.first.image_id


def test_step_image_ids_are_layers_of_the_image(builds: TwoBuilds, client: docker.DockerClient):
    engine_ids = {h["Id"].removeprefix("sha256:")[:12]
                  for h in client.api.history(builds.second.tag)}
    assert {s.image_id for s in builds.second.steps} <= engine_ids


def test_build_labels_the_image_with_the_namespace(builds: TwoBuilds,
                                                   client: docker.DockerClient,
                                                   settings: config.Settings):
    labels = client.images.get(builds.second.tag).labels
    assert labels[config.LABEL_NAMESPACE] == settings.namespace


def test_one_label_step_is_added_by_labkit(builds: TwoBuilds, settings: config.Settings):
    added = [s.instruction for s in builds.second.steps if s.added_by_labkit]
    assert added == [f"LABEL {config.LABEL_NAMESPACE}={settings.namespace}"]


def test_cached_rebuild_after_an_edit_rebuilds_one_layer_and_one_label(builds: TwoBuilds):
    rebuilt = [s.keyword for s in builds.second.rebuilt_steps]
    assert rebuilt == ["COPY", "LABEL"]


def test_an_image_built_with_the_echoed_command_is_listed(
        builds: TwoBuilds, client: docker.DockerClient, settings: config.Settings,
        tmp_path: Path):
    # What a learner types in a terminal: the echoed command's labels, through the engine.
    (tmp_path / "Dockerfile").write_text(f"FROM {config.BASE_IMAGE}\nCMD [\"true\"]\n")
    tag = f"{settings.namespace}/by-hand:latest"
    labels = dict(arg.split("=", 1) for arg in builds.second.command.args
                  if "=" in arg and arg.startswith("org.labkit."))
    client.images.build(path=str(tmp_path), tag=tag, labels=labels, rm=True)
    assert tag in images.list_images(client=client)["image"].tolist()


# ------------------------------------------------------------------ failures


def test_failing_run_names_its_step(client: docker.DockerClient, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {config.BASE_IMAGE}\nRUN echo about to fail && false\nCMD [\"true\"]\n"
    )
    with pytest.raises(BuildFailed) as info:
        images.build(tmp_path, "it-fails", client=client, show=False)
    assert info.value.step == "Step 2/4 : RUN echo about to fail && false"
    assert "about to fail" in info.value.log_tail


def test_bad_instruction_names_its_line(client: docker.DockerClient, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(f"FROM {config.BASE_IMAGE}\nRUNN pip install flask\n")
    with pytest.raises(BuildFailed) as info:
        images.build(tmp_path, "it-typo", client=client, show=False)
    assert info.value.step == "line 2: RUNN pip install flask"


@pytest.fixture
def offline(settings: config.Settings) -> Iterator[config.Settings]:
    before = config.settings()
    yield config.use(dataclasses.replace(before, offline=True))
    config.use(before)


def test_missing_base_image_offline_raises_without_pulling(
    client: docker.DockerClient, tmp_path: Path, offline: config.Settings
):
    missing = "labkit-test-missing/never-pulled:1"
    (tmp_path / "Dockerfile").write_text(f"FROM {missing}\nRUN true\n")
    with pytest.raises(ImageMissing):
        images.build(tmp_path, "it-missing", client=client, show=False)
    assert not images.image_exists(missing, client=client)
    assert not images.image_exists(f"{offline.image_name('it-missing')}:latest", client=client)


# ------------------------------------------------------------------ facts about images


def test_history_has_one_row_per_engine_entry(builds: TwoBuilds, client: docker.DockerClient):
    frame = images.history(builds.second.tag, client=client)
    engine_history = client.api.history(builds.second.tag)
    assert frame["size_bytes"].tolist() == [h["Size"] for h in engine_history]


def test_history_names_the_instructions(builds: TwoBuilds, client: docker.DockerClient):
    frame = images.history(builds.second.tag, client=client)
    assert "RUN pip install flask" in frame["instruction"].tolist()
    assert 'CMD ["python" "app.py"]' in frame["instruction"].tolist()


def test_list_images_shows_the_build_and_the_base(builds: TwoBuilds,
                                                  client: docker.DockerClient):
    listed = images.list_images(client=client)["image"].tolist()
    assert builds.second.tag in listed
    assert config.BASE_IMAGE in listed


def test_tag_gives_the_image_a_second_name(builds: TwoBuilds, client: docker.DockerClient,
                                           settings: config.Settings):
    repository = settings.image_name("it-tagged")
    command = images.tag(builds.second.tag, repository, "v2", client=client)
    assert client.images.get(f"{repository}:v2").id == builds.second.image_id
    assert command.args == ("image", "tag", builds.second.tag, f"{repository}:v2")
