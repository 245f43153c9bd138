"""Running the lab's app against the real engine: HTTP, ports, logs, diff, re-runs."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from labkit import course
from labkit.containers import apps as containers
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import ContainerFailed, LabkitError
from labkit.engine.wait import wait_until
from labkit.images import builder as images

pytestmark = pytest.mark.integration

APP_PY = course.app_source(course.HELLO)
DOCKERFILE = course.DOCKERFILE


@pytest.fixture(scope="module")
def image(client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory) -> str:
    folder = tmp_path_factory.mktemp("app")
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / "app.py").write_text(APP_PY)
    return images.build(folder, "it-run", client=client, show=False).tag


@pytest.fixture(scope="module")
def app(image: str, client: docker.DockerClient) -> Iterator[containers.RunningApp]:
    with containers.run(image, "it-app", client=client) as running:
        yield running


def test_app_answers_at_the_returned_url(app: containers.RunningApp):
    with containers.http_session() as session:
        assert session.get(app.url, timeout=10).text == "hello world!"


def test_port_is_bound_where_labkit_says(app: containers.RunningApp,
                                         client: docker.DockerClient):
    binding = client.api.inspect_container(app.id)["NetworkSettings"]["Ports"]["5000/tcp"][0]
    assert binding["HostIp"] == engine.bind_ip()
    assert binding["HostPort"] == str(app.host_port)


def test_the_engine_listens_where_the_binding_says(app: containers.RunningApp,
                                                   client: docker.DockerClient):
    """The port answers from the engine's own machine (a container on its host network)
    at the address the binding names; 127.0.0.1 unless LABKIT_BIND_IP opted in."""
    binding = client.api.inspect_container(app.id)["NetworkSettings"]["Ports"]["5000/tcp"][0]
    assert binding["HostIp"] == (config.settings().bind_ip or "127.0.0.1")
    address = "127.0.0.1" if binding["HostIp"] == "0.0.0.0" else binding["HostIp"]
    probe = ("import urllib.request; print(urllib.request.urlopen("
             f"'http://{address}:{app.host_port}/', timeout=10).read().decode())")
    out = client.containers.run(config.BASE_IMAGE, ["python", "-c", probe], remove=True,
                                network_mode="host", labels=config.settings().labels("test"))
    assert out.decode().strip() == "hello world!"


def test_logs_show_the_request(app: containers.RunningApp):
    app.get("/")
    assert wait_until(lambda: '"GET / HTTP/1.1" 200' in app.logs(), timeout=10)


def test_diff_names_a_file_written_in_the_container(app: containers.RunningApp):
    app.container.exec_run(["sh", "-c", "echo note > /tmp/labkit-note && rm /etc/issue"])
    frame = app.diff().set_index("path")
    assert frame.loc["/tmp/labkit-note", "kind"] == "added"
    assert frame.loc["/etc/issue", "kind"] == "deleted"
    assert frame.loc["/tmp", "kind"] == "changed"


def test_list_containers_shows_the_app(app: containers.RunningApp):
    frame = containers.list_containers(client=app.client).set_index("name")
    assert frame.loc[app.name, "state"] == "running"


def test_rerun_with_the_same_name_replaces_the_container(image: str,
                                                         client: docker.DockerClient):
    first = containers.run(image, "it-rerun", client=client)
    second = containers.run(image, "it-rerun", client=client)
    try:
        assert second.id != first.id
        assert second.get() == "hello world!"
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(first.id)
    finally:
        second.remove()


def test_foreign_container_with_the_same_name_is_left_alone(image: str,
                                                             client: docker.DockerClient,
                                                             settings: config.Settings):
    name = settings.container_name("it-foreign")
    foreign = client.containers.create(config.BASE_IMAGE, name=name, command=["true"])
    try:
        with pytest.raises(LabkitError):
            containers.run(image, "it-foreign", client=client)
        assert client.containers.get(name).id == foreign.id
    finally:
        foreign.remove(force=True)


def test_container_that_exits_is_reported_with_its_logs(client: docker.DockerClient):
    with pytest.raises(ContainerFailed) as info:
        containers.run(config.BASE_IMAGE, "it-exits", client=client, timeout=15)
    assert "exited" in info.value.message
    containers.remove("it-exits", client=client)


def test_stop_then_remove_twice(image: str, client: docker.DockerClient):
    app = containers.run(image, "it-stop", client=client)
    app.stop(timeout=1)
    assert client.containers.get(app.id).status == "exited"
    app.remove()
    app.remove()
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(app.id)


def test_context_manager_removes_the_container(image: str, client: docker.DockerClient):
    with containers.run(image, "it-with", client=client) as app:
        container_id = app.id
    with pytest.raises(docker.errors.NotFound):
        client.containers.get(container_id)
