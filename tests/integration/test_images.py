"""Builds, history, image list and tags against the real engine (facts the engine reports)."""

from __future__ import annotations

import dataclasses
import subprocess
import uuid
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
    """The lab's image built, then rebuilt after touching only app.py (to a text never
    built before: both builders key COPY on the file's content)."""
    folder = tmp_path_factory.mktemp("build")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    # Both apps are new to the cache: BuildKit keeps every result of a step that ran (other
    # tests run RUN pip install flask with --no-cache) and gives a build it has not seen the
    # newest one, while a build it has seen keeps its own.
    token = uuid.uuid4().hex
    (folder / "app.py").write_text(APP_PY + f"# {token}\n")
    first = images.build(folder, "it-hello", client=client, show=False)
    (folder / "app.py").write_text(APP_PY + f"# {token} edited\n")
    second = images.build(folder, "it-hello", client=client, show=False)
    return TwoBuilds(first, second)


def test_build_tags_the_image_it_reports(builds: TwoBuilds, client: docker.DockerClient):
    assert client.images.get(builds.second.tag).id == builds.second.image_id


#: The Dockerfile's steps each builder reports: BuildKit has no step for metadata (CMD).
STEPS = {"classic": ["FROM", "RUN", "CMD", "COPY"], "buildkit": ["FROM", "RUN", "COPY"]}


def test_build_uses_the_builder_the_cli_uses_here(builds: TwoBuilds,
                                                  client: docker.DockerClient):
    assert builds.second.builder == images.which_builder(client)
    assert builds.second.builder.name in STEPS


def test_build_reports_every_dockerfile_step(builds: TwoBuilds):
    keywords = [s.keyword for s in builds.second.steps]
    assert keywords == STEPS[builds.second.builder.name]


def test_rebuild_after_editing_app_py_takes_steps_before_copy_from_cache(builds: TwoBuilds):
    assert builds.second.step("RUN").cached
    if builds.second.builder.name == "classic":
        assert builds.second.step("CMD").cached


def test_rebuild_after_editing_app_py_rebuilds_copy(builds: TwoBuilds):
    assert not builds.second.step("COPY").cached
    assert builds.second.step("COPY").status == "rebuilt"


def test_cached_rebuild_after_an_edit_rebuilds_only_copy(builds: TwoBuilds):
    assert [s.keyword for s in builds.second.rebuilt_steps] == ["COPY"]


def test_cached_steps_keep_what_they_made(builds: TwoBuilds):
    # the classic builder's step image, or the layer a BuildKit step made
    assert builds.second.step("RUN").made is not None
    assert builds.second.step("RUN").made == builds.first.step("RUN").made


def test_copy_step_makes_something_new(builds: TwoBuilds):
    assert builds.second.step("COPY").made != builds.first.step("COPY").made
    assert builds.second.image_id != builds.first.image_id


def test_what_each_step_made_is_in_the_image(builds: TwoBuilds, client: docker.DockerClient):
    image = client.api.inspect_image(builds.second.tag)
    if builds.second.builder.buildkit:
        diff_ids = image["RootFS"]["Layers"]
        assert builds.second.step("COPY").layer == diff_ids[-1]
        assert builds.second.step("RUN").layer == diff_ids[-2]
        assert all(s.image_id is None for s in builds.second.steps)
    else:
        engine_ids = {h["Id"].removeprefix("sha256:")[:12]
                      for h in client.api.history(builds.second.tag)}
        assert {s.image_id for s in builds.second.steps} <= engine_ids


def test_buildkit_steps_have_buildkit_history_rows(builds: TwoBuilds,
                                                   client: docker.DockerClient):
    rows = client.api.history(builds.second.tag)
    comments = [r.get("Comment") for r in rows[:len(DOCKERFILE.splitlines()) - 1]]
    expected = "buildkit.dockerfile.v0" if builds.second.builder.buildkit else ""
    assert comments == [expected] * (len(DOCKERFILE.splitlines()) - 1)


def test_build_adds_no_label(builds: TwoBuilds, client: docker.DockerClient):
    labels = client.images.get(builds.second.tag).labels or {}
    assert config.LABEL_NAMESPACE not in labels
    assert "--label" not in builds.second.command.args
    assert str(builds.second.command).startswith("docker build -t ")


def test_build_is_recorded_as_this_learners(builds: TwoBuilds, settings: config.Settings):
    assert builds.second.image_id.removeprefix("sha256:") in images.owned.recorded_ids(settings)


def test_the_echoed_command_builds_the_same_layers(
        builds: TwoBuilds, client: docker.DockerClient, settings: config.Settings,
        tmp_path: Path):
    # What a learner types in a terminal: the echoed command, with the CLI on PATH.
    folder = Path(builds.second.command.args[-1])
    tag = f"{settings.namespace}/by-hand:latest"
    args = [*builds.second.command.args[:-1], str(folder)]
    args[args.index(builds.second.tag)] = tag
    done = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    typed, built = client.api.inspect_image(tag), client.api.inspect_image(builds.second.tag)
    assert typed["RootFS"]["Layers"] == built["RootFS"]["Layers"]
    # Every step came from labkit's cache: the same configuration, made at the same moment
    # (the classic builder keys COPY on the context's tar headers: labkit sends the CLI's).
    assert typed["Created"] == built["Created"]
    said_deprecated = "DEPRECATED" in done.stderr
    assert said_deprecated == (not builds.second.builder.buildkit
                               and "DEPRECATED" in builds.second.builder.reason)


# ------------------------------------------------------------------ failures


def test_failing_run_names_its_step(client: docker.DockerClient, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(
        f"FROM {config.BASE_IMAGE}\nRUN echo about to fail && false\nCMD [\"true\"]\n"
    )
    with pytest.raises(BuildFailed) as info:
        images.build(tmp_path, "it-fails", client=client, show=False)
    step = "RUN echo about to fail && false"
    titles = {"classic": f"Step 2/3 : {step}", "buildkit": f"[2/2] {step}"}
    assert info.value.step == titles[images.which_builder(client).name]
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
