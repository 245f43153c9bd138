"""The engine under test, and the Docker-in-Docker stand-in's own engine."""

from __future__ import annotations

import time
from urllib.parse import urlparse

import docker

from labkit import config, engine

DIND_FLAGS = dict(
    cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
    security_opt=["seccomp=unconfined", "apparmor=unconfined"],
    volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}},
)
TLS_ENV = "DOCKER_HOST=tcp://localhost:2376 DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=/certs/client"


def test_engine_info_names_version_and_storage(client: docker.DockerClient) -> None:
    info = engine.info(client)
    assert tuple(int(p) for p in info.api_version.split(".")) >= (1, 41)
    assert info.storage_driver != "?"


def test_urls_use_the_host_of_docker_host(client: docker.DockerClient) -> None:
    host = urlparse(engine.describe_host()).hostname
    if engine.is_local():
        assert engine.publish_host() == "localhost"
        assert engine.bind_ip() == "127.0.0.1"
    else:  # DinD or a remote engine: published ports open on its address
        assert engine.publish_host() == host
        assert engine.bind_ip() == "0.0.0.0"


def _exec(container, command: str) -> tuple[int, str]:
    code, out = container.exec_run(["sh", "-c", command])
    return code, out.decode(errors="replace").strip()


def test_dind_image_serves_tls_with_client_certificates(client: docker.DockerClient,
                                                        labels: dict[str, str]) -> None:
    container = client.containers.run(config.DIND_IMAGE, detach=True, labels=labels,
                                      **DIND_FLAGS)
    try:
        _check_dind(container)
    finally:
        container.remove(force=True, v=True)


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
