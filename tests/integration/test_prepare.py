"""labkit.offline.course_images against the real engine: the course images exist and act like the
originals."""

from __future__ import annotations

import contextlib
import time

import docker
import pytest
import requests

from labkit import images
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.offline import course_images as prepare

ROLES = {spec.name: spec.role for spec in prepare.COURSE_IMAGES}


def test_prepare_offline_finds_every_course_image_present(client: docker.DockerClient) -> None:
    result = prepare.prepare(offline=True, client=client, progress=lambda image, stage: None)
    assert list(result["image"]) == [spec.name for spec in prepare.COURSE_IMAGES]
    assert set(result["status"]) == {"present"}
    assert (result["size"] > 0).all()


@pytest.mark.parametrize("name", list(ROLES))
def test_course_image_is_labelled_by_role(client: docker.DockerClient, name: str) -> None:
    labels = client.images.get(name).labels or {}
    if labels.get(config.LABEL_STANDIN) != "true":  # an official image: no labkit labels
        assert config.LABEL_ROLE not in labels
    else:
        assert labels[config.LABEL_ROLE] == ROLES[name]
        assert labels[config.LABEL_MANAGED] == "true"
        assert config.LABEL_NAMESPACE not in labels  # shared by every learner


def test_image_status_reports_all_present(client: docker.DockerClient) -> None:
    status = prepare.image_status(client=client)
    assert status["present"].all()


def test_base_runs_python_3_11(client: docker.DockerClient, labels: dict[str, str]) -> None:
    out = client.containers.run(
        config.BASE_IMAGE, ["python", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        labels=labels, remove=True,
    )
    assert out.decode().strip() == "3.11"


def test_base_has_pip_and_no_externally_managed_marker(client: docker.DockerClient,
                                                       labels: dict[str, str]) -> None:
    script = ("import glob, pip; "
              "print(len(glob.glob('/usr/lib/python3*/EXTERNALLY-MANAGED')))")
    out = client.containers.run(config.BASE_IMAGE, ["python3", "-c", script], labels=labels,
                                remove=True)
    assert out.decode().strip() == "0"


def test_lab_dockerfile_builds_and_imports_flask(client: docker.DockerClient, workdir,
                                                 settings: config.Settings,
                                                 labels: dict[str, str]) -> None:
    tag = settings.image_name("prepare-check")
    image, _ = client.images.build(path=str(workdir), tag=tag, labels=labels, pull=False,
                                   rm=True, forcerm=True)
    out = client.containers.run(image.id, ["python", "-c", "import flask; print('ok')"],
                                labels=labels, remove=True)
    assert out.decode().strip() == "ok"


def test_registry_image_serves_the_v2_api(client: docker.DockerClient,
                                          labels: dict[str, str]) -> None:
    container = client.containers.run(config.REGISTRY_IMAGE, detach=True, labels=labels,
                                      ports={"5000/tcp": (engine.bind_ip(), None)})
    container.reload()
    port = container.ports["5000/tcp"][0]["HostPort"]
    url = f"http://{engine.publish_host()}:{port}/v2/"
    deadline, status = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        try:
            status = requests.get(url, timeout=2).status_code
            break
        except requests.ConnectionError:
            time.sleep(0.2)
    assert status == 200


def test_registry_recipe_builds_without_pulling(client: docker.DockerClient,
                                                settings: config.Settings) -> None:
    spec = prepare.CourseImage(f"{settings.namespace}/registry-standin:test", "registry-image",
                               "registry")
    stages: list[str] = []
    try:
        image, command = prepare.build_recipe(spec, client=client,
                                              progress=lambda image, stage: stages.append(stage))
        assert image.labels[config.LABEL_STANDIN] == "true"
        assert image.attrs["Config"]["ExposedPorts"] == {"5000/tcp": {}}
        assert any(stage.startswith("step 1/") for stage in stages)
        assert command.args[0] == "build"
    finally:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(spec.name, force=True)


def test_base_is_built_in_layers_like_the_official_image(client: docker.DockerClient) -> None:
    image = client.images.get(config.BASE_IMAGE)
    diff_ids = image.attrs["RootFS"]["Layers"]
    assert len(set(diff_ids)) >= 4  # Debian, Python, pip, the python command at least
    if (image.labels or {}).get(config.LABEL_STANDIN) != "true":
        return  # an official image: its history is its own
    frame = images.history(config.BASE_IMAGE, client=client)
    steps = [s for s in reversed(frame["instruction"].tolist()) if not s.startswith("LABEL")]
    kinds = [s.split()[0] for s in steps]
    assert kinds[:8] == ["ADD", "CMD", "ENV", "ENV", "ENV", "ADD", "ADD", "RUN"]
    assert steps[-1] == 'CMD ["python3"]'
    assert any(s.startswith("ENV PYTHON_VERSION=3.11.") for s in steps)
    assert sum(k in ("ADD", "COPY", "RUN") for k in kinds) == len(diff_ids)  # one layer each
