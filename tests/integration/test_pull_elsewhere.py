"""Step 5's "available anywhere", for real: an image pushed to the learner's registry is
pulled into a second, empty engine (a docker:dind container of the engine under test), run
there, and asked for its page; nothing of the second engine stays behind, also on failure.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import docker
import pytest

from labkit import cleanup, registry
from labkit.engine import config
from labkit.engine.errors import RegistryError
from labkit.registry import elsewhere

pytestmark = pytest.mark.integration
SUFFIX = "far"


@pytest.fixture(scope="module")
def reg(ns: config.Settings, client: docker.DockerClient) -> Iterator[registry.Registry]:
    cleanup.clean(client=client, show=False)  # a previous run's leftovers
    yield registry.start_registry(client=client)
    cleanup.clean(client=client, show=False)


@pytest.fixture(scope="module")
def pushed(reg: registry.Registry, ns: config.Settings, client: docker.DockerClient,
           app_builder, tmp_path_factory: pytest.TempPathFactory):
    greeting = f"hello from far away {secrets.token_hex(3)}"
    image = app_builder(client, tmp_path_factory.mktemp("app"), ns.image_name("far"),
                        ns.labels("app"), greeting, secrets.token_hex(4))
    tagged = registry.tag_for_registry(image, "far", registry=reg, client=client)
    registry.login(reg, client=client)
    push = registry.push(str(tagged), registry=reg, client=client, show=False)
    return greeting, client.images.get(str(tagged)), tagged, push


@pytest.fixture(scope="module")
def far(pushed, reg: registry.Registry,
        client: docker.DockerClient) -> elsewhere.ElsewhereResult:
    return elsewhere.pull_elsewhere(str(pushed[2]), registry=reg, client=client, show=False)


def test_the_second_engine_starts_empty(far: elsewhere.ElsewhereResult) -> None:
    assert far.images_before == 0
    assert not far.layers["here_before"].any()


def test_every_layer_of_the_image_arrives(far: elsewhere.ElsewhereResult, pushed) -> None:
    image = pushed[1]
    diff_ids = image.attrs["RootFS"]["Layers"]
    assert list(far.layers["layer"]) == [d.split(":")[-1][:12] for d in diff_ids]


def test_the_registry_sent_every_layer_in_full(far: elsewhere.ElsewhereResult) -> None:
    assert (far.layers["sent_by_registry"] >= far.layers["size"]).all(), far.layers
    assert far.downloaded == len(far.layers)
    assert far.every_layer_downloaded


def test_the_second_engine_holds_the_pushed_digest(far: elsewhere.ElsewhereResult,
                                                   pushed) -> None:
    assert far.repo_digest == pushed[3].digest
    assert far.registry_digest == pushed[3].digest


def test_the_app_answers_in_the_second_engine(far: elsewhere.ElsewhereResult,
                                              pushed) -> None:
    assert far.answer == pushed[0]


def test_nothing_of_the_second_engine_is_left(far: elsewhere.ElsewhereResult,
                                              reg: registry.Registry,
                                              client: docker.DockerClient) -> None:
    assert far.removed
    assert elsewhere.leftovers(client) == []
    registry_container = client.containers.get(reg.container_id)
    assert elsewhere.engine_name() not in registry_container.attrs["NetworkSettings"]["Networks"]
    # The registry still answers where the learner's commands reach it: its published port
    # did not move (`docker network connect` may move a port the engine chose, moby#44137).
    ports = registry_container.ports.get(f"{elsewhere.REGISTRY_PORT}/tcp") or []
    assert reg.address.rsplit(":", 1)[1] in {p["HostPort"] for p in ports}
    assert registry.manifest(f"{reg.username}/far", "latest", reg)["layers"]
    labelled = client.containers.list(all=True, filters={
        "label": f"{config.LABEL_ROLE}={elsewhere.ROLE}"})
    assert [c.name for c in labelled if c.name == elsewhere.engine_name()] == []


def test_the_commands_are_plain_docker(far: elsewhere.ElsewhereResult) -> None:
    lines = [str(c) for c in far.commands]
    assert any(" docker pull " in line for line in lines)
    assert not any("--label" in line for line in lines)
    assert any(line.startswith("labkit registry password | docker exec -i ") for line in lines)


def test_a_failed_pull_leaves_nothing_either(far: elsewhere.ElsewhereResult, pushed,
                                             reg: registry.Registry,
                                             client: docker.DockerClient) -> None:
    missing = str(pushed[2]).rsplit(":", 1)[0] + ":not-pushed"
    with pytest.raises(RegistryError, match="could not pull"):
        elsewhere.pull_elsewhere(missing, registry=reg, client=client, show=False)
    assert elsewhere.leftovers(client) == []
