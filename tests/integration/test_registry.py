"""The local registry against the real engine: auth on, login, push, catalog, manifest.

Order-independent: the first and second pushes use tags of their own ("1", "2"), tests
look at the registry as it runs now (``running``), and a test that stops the registry or
changes its password leaves it running again with the stored password (``restored``).
"""

from __future__ import annotations

import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest
import requests

from labkit import cleanup, images, layers, registry
from labkit.engine import config
from labkit.engine.errors import RegistryError
from labkit.registry import password as state

pytestmark = pytest.mark.integration
SUFFIX = "reg"




@pytest.fixture(scope="module")
def reg(ns: config.Settings, client: docker.DockerClient) -> Iterator[registry.Registry]:
    cleanup.clean(client=client, show=False)  # a previous run's leftovers
    yield registry.start_registry(client=client)
    cleanup.clean(client=client, show=False)


@pytest.fixture
def running(reg: registry.Registry, client: docker.DockerClient) -> registry.Registry:
    """The module's registry as it runs now (re-created, if a test changed its password)."""
    return registry.start_registry(client=client)


@pytest.fixture
def restored(reg: registry.Registry, client: docker.DockerClient) -> Iterator[None]:
    """For a test that stops the registry: afterwards it runs again, at the same address,
    with the stored password, whatever the test did."""
    yield
    assert registry.start_registry(client=client).address == reg.address


@pytest.fixture
def new_password(restored: None) -> Iterator[str]:
    """A password other than the stored one, in the environment during the test only."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv(state.PASSWORD_ENV, "a-new-password-for-the-test")
        yield "a-new-password-for-the-test"


@pytest.fixture(scope="module")
def builder(ns: config.Settings, client: docker.DockerClient, app_builder,
            tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("app")
    scope = secrets.token_hex(4)
    return lambda greeting: app_builder(client, workdir, ns.image_name("python-hello-world"),
                                        ns.labels("app"), greeting, scope)


@pytest.fixture(scope="module")
def first(reg: registry.Registry, builder, client: docker.DockerClient):
    image = builder("Hello, World!")
    tagged = registry.tag_for_registry(image, tag="1", registry=reg, client=client)
    registry.login(reg, client=client)
    result = registry.push(str(tagged), registry=reg, client=client, show=False)
    return image, tagged, result


@pytest.fixture(scope="module")
def second(first, reg: registry.Registry, builder,
           client: docker.DockerClient):
    image = builder("Hello again!")
    tagged = registry.tag_for_registry(image, tag="2", registry=reg, client=client)
    return image, registry.push(str(tagged), registry=reg, client=client, show=False)


def _unauthenticated(reg: registry.Registry) -> int:
    with requests.Session() as session:
        session.trust_env = False
        return session.get(f"{reg.api_url}/v2/", timeout=5, verify=reg.ca_file).status_code


def test_registry_requires_auth(running: registry.Registry) -> None:
    assert _unauthenticated(running) == 401


def test_registry_answers_with_the_password(running: registry.Registry) -> None:
    with requests.Session() as session:
        session.trust_env = False
        answer = session.get(f"{running.api_url}/v2/",
                             auth=(running.username, state.registry_password()), timeout=5,
                             verify=running.ca_file)
    assert answer.status_code == 200


def test_registry_container_carries_the_labels(running: registry.Registry,
                                               client: docker.DockerClient,
                                               ns: config.Settings) -> None:
    labels = client.containers.get(running.container_id).labels
    assert ns.labels("registry").items() <= labels.items()


def test_registry_data_volume_carries_the_labels(reg: registry.Registry,
                                                 client: docker.DockerClient,
                                                 ns: config.Settings) -> None:
    labels = client.volumes.get(registry.volume_name()).attrs["Labels"]
    assert ns.labels("registry").items() <= labels.items()


def test_start_is_idempotent(running: registry.Registry, client: docker.DockerClient) -> None:
    again = registry.start_registry(client=client)
    assert (again.container_id, again.address) == (running.container_id, running.address)


def test_status_reports_auth_on(running: registry.Registry,
                                client: docker.DockerClient) -> None:
    got = registry.registry_status(client=client)
    assert (got["running"], got["auth"], got["address"]) == (True, True, running.address)


def test_login_with_the_right_password(running: registry.Registry,
                                       client: docker.DockerClient) -> None:
    assert registry.login(running, client=client).status == "Login Succeeded"


def test_login_with_a_wrong_password_after_a_right_one_fails(
        running: registry.Registry, client: docker.DockerClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry.login(running, client=client)
    monkeypatch.setenv(state.PASSWORD_ENV, "not-the-password")
    with pytest.raises(RegistryError, match="wrong user name or password"):
        registry.login(running, client=client)


def test_first_push_pushes_or_mounts_every_layer(first) -> None:
    _, _, result = first
    assert set(result.layers["status"]) <= {"pushed", "mounted"}


def test_first_push_reports_one_row_per_image_layer(first) -> None:
    image, _, result = first
    assert len(result.layers) == len(image.attrs["RootFS"]["Layers"])


def test_first_push_reports_the_manifest_digest(first, running: registry.Registry) -> None:
    _, tagged, result = first
    assert result.digest == registry.manifest(tagged.repository, tagged.tag,
                                              registry=running)["digest"]


def test_catalog_lists_the_repository(first, running: registry.Registry,
                                      ns: config.Settings) -> None:
    assert ns.image_name("python-hello-world") in registry.catalog(registry=running)


def test_tags_lists_the_tag(first, running: registry.Registry) -> None:
    _, tagged, _ = first
    tags = registry.tags(tagged.repository, registry=running)
    assert "1" in tags and set(tags) <= {"1", "2"}  # "2": the second push, if it ran


def test_manifest_has_one_layer_per_image_layer(first, running: registry.Registry) -> None:
    image, tagged, _ = first
    got = registry.manifest(tagged.repository, tagged.tag, registry=running)
    assert len(got["layers"]) == len(image.attrs["RootFS"]["Layers"])


def test_second_push_pushes_only_the_changed_layer(second) -> None:
    assert second[1].counts["pushed"] == 1


def test_lifecycle_joins_every_layer_of_the_second_push(second, running: registry.Registry,
                                                       ns: config.Settings,
                                                       client: docker.DockerClient) -> None:
    """Build, history, push and registry agree on each layer, on either image store."""
    image, pushed = second
    manifest = registry.manifest(ns.image_name("python-hello-world"), pushed.tag,
                                 registry=running, client=client)
    diff_ids = image.attrs["RootFS"]["Layers"]
    table = layers.lifecycle(None, images.history(image.id, client=client), pushed.layers,
                             manifest, diff_ids)
    assert len(table) == len(diff_ids)
    assert table["push_status"].notna().all(), table[["instruction", "push_status"]]
    assert list(table["push_status"]).count("pushed") == 1
    assert table["push_status"].iloc[-1] == "pushed"  # the top layer: COPY app.py
    assert list(table["digest"]) == [x["digest"] for x in manifest["layers"]]
    assert manifest["digest"] == pushed.digest
    # the registry holds the blobs the engine pushed: gzip or plain tar, as each layer's media
    # type says (the classic store compresses as it pushes; containerd's pushes its content
    # store's blobs as they are), and a plain tar blob is the layer: digest == diff ID
    said = [layers.media_type_compression(m) for m in table["media_type"]]
    assert None not in said, list(table["media_type"])
    assert table["compressed"].tolist() == [s != "none" for s in said]


def test_second_push_finds_the_other_layers(second) -> None:
    _, pushed = second
    assert pushed.counts["exists"] == len(pushed.layers) - 1


def test_push_without_the_image_raises(running: registry.Registry,
                                       client: docker.DockerClient) -> None:
    with pytest.raises(RegistryError, match="does not exist") as caught:
        registry.push(running.repository("never-built"), registry=running, client=client,
                      show=False)
    assert "Tag the image for the registry first" in (caught.value.hint or "")


def test_state_file_is_private(reg: registry.Registry, ns: config.Settings) -> None:
    assert stat.S_IMODE(Path(ns.state_file).stat().st_mode) == 0o600


def test_password_is_in_no_result(first, second, running: registry.Registry,
                                  client: docker.DockerClient) -> None:
    _, tagged, result = first
    secret = state.registry_password()
    shown = "".join([
        repr(running), str(running.command), *map(str, running.steps), repr(tagged),
        str(tagged.command), repr(result), result.layers.to_csv(), second[1].layers.to_csv(),
        repr(registry.login(running, client=client)),
        repr(registry.registry_status(client=client)),
    ])
    assert secret not in shown


def test_changed_password_is_taken_on_restart(first, running: registry.Registry,
                                              client: docker.DockerClient,
                                              new_password: str) -> None:
    restarted = registry.start_registry(client=client)
    assert registry.login(restarted, client=client).status == "Login Succeeded"
    with requests.Session() as session:
        session.trust_env = False
        old = session.get(f"{restarted.api_url}/v2/", timeout=5, verify=restarted.ca_file,
                          auth=(restarted.username, state.stored_password() or ""))
    assert old.status_code == 401  # the stored password no longer opens it


def test_restart_keeps_the_port_and_the_data(first, running: registry.Registry,
                                             client: docker.DockerClient,
                                             restored: None) -> None:
    registry.stop_registry(client=client)
    again = registry.start_registry(client=client)
    assert again.address == running.address
    assert first[1].tag in registry.tags(first[1].repository, registry=again)


def test_push_to_a_stopped_registry_raises(first, running: registry.Registry,
                                           client: docker.DockerClient,
                                           restored: None) -> None:
    registry.stop_registry(client=client)
    with pytest.raises(RegistryError, match="failed"):
        registry.push(str(first[1]), registry=running, client=client, show=False)
