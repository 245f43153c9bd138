"""Remote engines (DinD is one from here): verified TLS to the engine, ports on loopback
unless opted in, and the registry's HTTP API over verified HTTPS only."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import urlparse

import docker
import pytest
import requests

from labkit import cleanup, course, registry
from labkit.containers import apps as containers
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import EngineInsecure, PortsUnreachable
from labkit.images import builder as images

pytestmark = pytest.mark.integration
SUFFIX = "remote"


def _remote_only() -> None:
    if engine.is_local():
        pytest.skip("the engine under test is on this machine: nothing crosses a network")


@pytest.fixture(scope="module")
def image(ns: config.Settings, client: docker.DockerClient,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("app")
    (folder / "Dockerfile").write_text(course.DOCKERFILE)
    (folder / "app.py").write_text(course.app_source(course.HELLO))
    yield images.build(folder, "it-remote", client=client, show=False).tag
    config.use(ns)
    cleanup.clean(client=client, show=False)  # everything this module made


@pytest.fixture
def without_opt_in(ns: config.Settings) -> Iterator[config.Settings]:
    """This module's settings without LABKIT_BIND_IP / LABKIT_PUBLISH_HOST: the default."""
    chosen = config.use(replace(ns, bind_ip=None, publish_host=None))
    yield chosen
    config.use(ns)


@pytest.fixture
def opted_in(ns: config.Settings) -> Iterator[config.Settings]:
    chosen = config.use(replace(ns, bind_ip="0.0.0.0"))
    yield chosen
    config.use(ns)


def _connects(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=3):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- the engine


def test_the_engine_is_reached_over_verified_tls(client: docker.DockerClient) -> None:
    _remote_only()
    assert client.api.base_url.startswith("https://")
    assert os.path.isfile(client.api.verify)  # its certificate is checked against this CA


def test_tls_without_verification_to_the_same_engine_is_refused() -> None:
    _remote_only()
    env = dict(os.environ, DOCKER_TLS_VERIFY="")  # docker-py: TLS, certificate unchecked
    with pytest.raises(EngineInsecure) as caught:
        engine.connect(env)
    assert "without checking its certificate" in caught.value.message
    assert "DOCKER_TLS_VERIFY=1" in (caught.value.hint or "")


def test_plain_tcp_to_the_same_host_is_refused_before_anything_is_sent() -> None:
    _remote_only()
    host = urlparse(engine.describe_host()).hostname
    env = {"DOCKER_HOST": f"tcp://{host}:2375", "HOME": os.environ.get("HOME", "/")}
    with pytest.raises(EngineInsecure, match="without TLS"):
        engine.connect(env)


# --------------------------------------------------------------------------- ports


def test_without_the_opt_in_ports_listen_on_the_engines_loopback_only(
        without_opt_in: config.Settings, image: str, client: docker.DockerClient) -> None:
    assert engine.bind_ip() == "127.0.0.1"
    container = client.containers.run(image, detach=True, labels=without_opt_in.labels("test"),
                                      ports={"5000/tcp": (engine.bind_ip(), None)})
    try:
        container.reload()
        binding = container.attrs["NetworkSettings"]["Ports"]["5000/tcp"][0]
        assert binding["HostIp"] == "127.0.0.1"
        if not engine.is_local():  # nothing on the engine's network reaches it
            assert not _connects(engine.publish_host(), int(binding["HostPort"]))
    finally:
        container.remove(force=True)


def test_without_the_opt_in_a_remote_app_is_refused_with_the_fix_and_nothing_runs(
        without_opt_in: config.Settings, image: str, client: docker.DockerClient) -> None:
    _remote_only()
    with pytest.raises(PortsUnreachable) as caught:
        containers.run(image, "it-remote-app", client=client)
    assert "127.0.0.1" in caught.value.message
    assert "LABKIT_BIND_IP=0.0.0.0" in (caught.value.hint or "")
    name = without_opt_in.container_name("it-remote-app")
    assert client.containers.list(all=True, filters={"name": f"^{name}$"}) == []


def test_with_the_opt_in_the_app_answers_here(opted_in: config.Settings, image: str,
                                             client: docker.DockerClient) -> None:
    with containers.run(image, "it-remote-app", client=client) as app:
        binding = client.api.inspect_container(app.id)["NetworkSettings"]["Ports"]["5000/tcp"]
        assert binding[0]["HostIp"] == "0.0.0.0"
        assert app.get("/") == "hello world!"


# --------------------------------------------------------------------------- the registry


@pytest.fixture
def reg(opted_in: config.Settings, client: docker.DockerClient) -> registry.Registry:
    """This module's registry, published on the engine's network (the opt-in)."""
    return registry.start_registry(client=client)


@pytest.fixture
def loopback_ns(without_opt_in: config.Settings, image: str,
                client: docker.DockerClient) -> Iterator[config.Settings]:
    """A namespace of its own without the opt-in (its registry binds 127.0.0.1)."""
    chosen = config.use(replace(without_opt_in, user=f"{without_opt_in.user}-lo"[:30]))
    yield chosen
    cleanup.clean(client=client, show=False)
    config.use(without_opt_in)


def test_the_registry_api_is_https_verified_against_its_own_ca(reg: registry.Registry) -> None:
    assert (reg.api_url or "").startswith("https://") and reg.ca_file
    with requests.Session() as session:
        session.trust_env = False
        assert session.get(f"{reg.api_url}/v2/", verify=reg.ca_file, timeout=5).status_code == 401
        with pytest.raises(requests.exceptions.SSLError):  # not a certificate the system trusts
            session.get(f"{reg.api_url}/v2/", timeout=5)
        plain = session.get(f"{reg.api_url.replace('https://', 'http://', 1)}/v2/", timeout=5)
    assert plain.status_code == 400  # "Client sent an HTTP request to an HTTPS server"
    assert "Docker-Distribution-Api-Version" not in plain.headers


def test_push_and_pull_round_trip_over_https(reg: registry.Registry, image: str,
                                             ns: config.Settings,
                                             client: docker.DockerClient) -> None:
    tagged = registry.tag_for_registry(image, "it-remote", tag="rt", registry=reg, client=client)
    registry.login(reg, client=client)
    pushed = registry.push(tagged, registry=reg, client=client, show=False)
    assert registry.tags(tagged.repository, registry=reg) == ["rt"]
    layers = client.images.get(image).attrs["RootFS"]["Layers"]
    client.images.remove(str(tagged))
    pulled = client.images.pull(tagged.repository, tag="rt")
    assert pulled.attrs["RootFS"]["Layers"] == layers
    assert registry.manifest(tagged.repository, "rt", registry=reg)["digest"] == pushed.digest


def test_without_the_opt_in_a_remote_engine_still_pushes_and_the_api_says_why_not_here(
        loopback_ns: config.Settings, image: str, client: docker.DockerClient) -> None:
    _remote_only()
    local = registry.start_registry(client=client)
    binding = client.api.inspect_container(local.container_id)["NetworkSettings"]["Ports"]
    assert binding["5000/tcp"][0]["HostIp"] == "127.0.0.1"
    tagged = registry.tag_for_registry(image, "it-remote", tag="loop", registry=local,
                                       client=client)
    registry.login(local, client=client)
    assert registry.push(tagged, registry=local, client=client, show=False).digest
    with pytest.raises(PortsUnreachable) as caught:
        registry.tags(tagged.repository, registry=local)
    assert "LABKIT_BIND_IP=0.0.0.0" in (caught.value.hint or "")
