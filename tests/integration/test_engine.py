"""The engine under test, and the Docker-in-Docker stand-in's own engine."""

from __future__ import annotations

import os
import time
from urllib.parse import urlparse

import docker
import pytest

from labkit import engine
from labkit.engine import config
from labkit.engine.errors import EngineIncompatible

DIND_FLAGS = dict(
    cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
    security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
)
TLS_ENV = "DOCKER_HOST=tcp://localhost:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client"


def _v(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def test_engine_info_names_version_and_storage(client: docker.DockerClient) -> None:
    info = engine.info(client)
    assert _v(info.api_version) >= (1, 41)
    assert info.storage_driver != "?"
    assert info.image_store in ("graphdriver", "containerd")


def test_labkit_speaks_a_version_the_engine_accepts(client: docker.DockerClient) -> None:
    info = engine.info(client)
    assert _v(info.min_api_version) <= _v(info.client_api_version) <= _v(info.api_version)
    assert "DOCKER_API_VERSION" not in os.environ


def test_the_engine_is_the_one_the_matrix_asked_for(client: docker.DockerClient) -> None:
    spec = os.environ.get("LABKIT_ENGINE")
    if not spec:
        pytest.skip("no LABKIT_ENGINE: the engine under test is whatever DOCKER_HOST names")
    info = engine.info(client)
    assert info.version.startswith(spec.split("+")[0] + ".")
    assert info.image_store == ("containerd" if "+containerd" in spec else "graphdriver")
    if "+api1.44" in spec:
        assert info.min_api_version == "1.44"


def test_a_pinned_version_below_the_engines_floor_is_refused_not_reported_missing(
        client: docker.DockerClient) -> None:
    floor = engine.info(client).min_api_version
    env = dict(os.environ, DOCKER_API_VERSION="1.41")
    if _v(floor) <= (1, 41):  # this engine still accepts 1.41: the pin is honoured
        assert engine.connect(env).api.api_version == "1.41"
        return
    with pytest.raises(EngineIncompatible) as caught:
        engine.connect(env)
    assert floor in caught.value.message
    assert "DOCKER_API_VERSION" in (caught.value.hint or "")


def test_urls_use_the_host_of_docker_host(client: docker.DockerClient) -> None:
    host = urlparse(engine.describe_host()).hostname
    if config.settings().publish_host:
        assert engine.publish_host() == config.settings().publish_host
    elif engine.is_local():
        assert engine.publish_host() == "localhost"
    else:  # DinD or a remote engine: published ports open on its address
        assert engine.publish_host() == host


def _exec(container, command: str) -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", command])
    return code, out.decode(errors="replace").strip()


def test_dind_image_serves_tls_with_client_certificates(client: docker.DockerClient,
                                                        labels: dict[str, str]) -> None:
    container = _run_dind(client, labels)
    try:
        _check_dind(container)
    finally:
        container.remove(force=True, v=True)


def _run_dind(client: docker.DockerClient, labels: dict[str, str]):
    """Start the course's docker:dind: SYS_RESOURCE dropped where the engine may grant it.

    Nested in a DinD engine that lacks the capability, Docker 20.10 still needs it dropped,
    while Docker 23+ refuses to drop a capability it does not have ("invalid CapDrop").
    """
    try:
        return client.containers.run(config.DIND_IMAGE, detach=True, labels=labels,
                                     **DIND_FLAGS)
    except docker.errors.APIError as exc:
        if "CapDrop" not in str(exc):
            raise
    flags = dict(DIND_FLAGS, cap_drop=[])
    return client.containers.run(config.DIND_IMAGE, detach=True, labels=labels, **flags)


def _check_dind(container) -> None:
    deadline, code, out = time.monotonic() + 60, 1, ""
    while time.monotonic() < deadline:
        code, out = _exec(container, f"{TLS_ENV} docker version --format '{{{{.Server.Version}}}}'")
        if code == 0:
            break
        container.reload()
        assert container.status == "running", container.logs(tail=30).decode(errors="replace")
        time.sleep(0.5)
    assert code == 0, out
    assert out
    container.reload()
    ip = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))["IPAddress"]
    _, san = _exec(container, "openssl x509 -in /certs/server/cert.pem -noout -ext "
                              "subjectAltName,extendedKeyUsage")
    assert f"IP Address:{ip}" in san
    assert "DNS:docker" in san
    assert "TLS Web Server Authentication" in san
    _, client_usage = _exec(container, "openssl x509 -in /certs/client/cert.pem -noout -ext "
                                       "extendedKeyUsage")
    assert "TLS Web Client Authentication" in client_usage
