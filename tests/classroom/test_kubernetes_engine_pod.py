"""The Kubernetes learner pod's two containers, run for real on the engine of DOCKER_HOST.

classroom/kubernetes/engine is built on the rootless engine (classroom/engine) with a one-
image bundle and started as the pod's `engine` sidecar would be (no capability but SETUID
and SETGID; TLS certificates and the engine's data in volumes of their own). Its postStart
script loads the bundle and its startupProbe (`--check`) passes only afterwards. Then a
second container joins its network namespace, as the `notebook` container shares the pod's:
user 1000, no capabilities, the certificates read-only. That container talks TLS to
tcp://localhost:2376. A port it publishes on 127.0.0.1 answers there and nowhere else, and
the engine's TLS port turns away a client without the pod's client certificate. Everything
carries a namespace label of its own and is removed at the end.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import EngineUnavailable
from labkit.offline import bundle

pytestmark = pytest.mark.integration

ENGINE_DIR = Path(__file__).resolve().parents[2] / "classroom" / "kubernetes" / "engine"
SCRIPT = "/usr/local/bin/load-course-images.sh"
ROOTLESS_DIR = ENGINE_DIR.parents[1] / "engine"
#: What the pod's rootless engine gets (values.yaml): no capability but SETUID and SETGID,
#: no seccomp or AppArmor filter, an unmasked /proc, /dev/net/tun; no host cgroup tree.
#: The docker CLI runs it: `systempaths=unconfined` is a CLI option, not an API one.
ROOTLESS_FLAGS = ["--cap-drop", "ALL", "--cap-add", "SETUID", "--cap-add", "SETGID",
                  "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                  "--security-opt", "systempaths=unconfined", "--device", "/dev/net/tun"]
ROOTLESS_DATA = "/home/rootless/.local/share/docker"
NOTEBOOK_ENV = {"DOCKER_HOST": "tcp://localhost:2376", "DOCKER_TLS_VERIFY": "1",
                "DOCKER_CERT_PATH": "/certs/client"}
PROBE = """
import socket, ssl, sys, urllib.request
host, mode = sys.argv[1], sys.argv[2]
try:
    if mode == "http":
        print(urllib.request.urlopen(f"http://{host}:8000/v2/", timeout=5).status)
    else:
        ctx = ssl.create_default_context(cafile="/certs/client/ca.pem")
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.create_connection((host, 2376), timeout=5)) as s:
            s.sendall(b"GET /version HTTP/1.0\\r\\n\\r\\n")
            print("answered", s.recv(12))
except Exception as exc:
    print(type(exc).__name__)
"""


def _quietly(action, *args, **kwargs) -> None:
    with contextlib.suppress(docker.errors.APIError):
        action(*args, **kwargs)


@pytest.fixture(scope="module")
def cli() -> Iterator[docker.DockerClient]:
    try:
        client = engine.connect()
    except EngineUnavailable as exc:
        pytest.fail(f"This test needs a Docker Engine: {exc}", pytrace=False)
    yield client
    client.close()


@pytest.fixture(scope="module")
def labels() -> dict[str, str]:
    return {config.LABEL_NAMESPACE: "k8s" + secrets.token_hex(4)}


@pytest.fixture(scope="module")
def pod(cli: docker.DockerClient, labels: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[docker.models.containers.Container]:
    """The engine container, started from an image with a one-image bundle."""
    context = tmp_path_factory.mktemp("engine")
    for name in ("Dockerfile", "load-course-images.sh"):
        shutil.copy2(ENGINE_DIR / name, context / name)
    bundle.export_bundle(context / "course-images.tar", images=[config.REGISTRY_IMAGE],
                         client=cli)
    tag = f"labkit-kube-engine-test:{labels[config.LABEL_NAMESPACE]}"
    rootless = f"labkit-kube-rootless-test:{labels[config.LABEL_NAMESPACE]}"
    flt = {"label": [f"{k}={v}" for k, v in labels.items()]}
    try:
        # the rootless engine (classroom/engine), then the pod's engine image on it
        cli.images.build(path=str(ROOTLESS_DIR), tag=rootless, labels=labels, rm=True,
                         buildargs={"ENGINE": config.DIND_IMAGE})
        image, _ = cli.images.build(path=str(context), tag=tag, labels=labels, rm=True,
                                    buildargs={"ENGINE": rootless})
        certs = cli.volumes.create(labels=labels)
        data = cli.volumes.create(labels=labels)
        container = cli.containers.get(start_engine(image.id, labels, certs.name, data.name))
        yield container
    finally:
        for container in cli.containers.list(all=True, filters=flt):
            _quietly(container.remove, force=True, v=True)
        for volume in cli.volumes.list(filters=flt):
            _quietly(volume.remove, force=True)
        _quietly(cli.images.remove, tag, force=True)
        _quietly(cli.images.remove, rootless, force=True)


def start_engine(image: str, labels: dict[str, str], certs: str, data: str) -> str:
    """``docker run`` the engine container as the pod runs it; its id."""
    base = ["docker", "run", "-d", "-e", "DOCKER_TLS_CERTDIR=/certs",
            "--mount", f"type=volume,src={certs},dst=/certs",
            "--mount", f"type=volume,src={data},dst={ROOTLESS_DATA}"]
    base += [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
    done = subprocess.run([*base, *ROOTLESS_FLAGS, image], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"docker run of the engine failed: {done.stderr.strip()}", pytrace=False)
    return done.stdout.strip()


def sidecar_run(cli: docker.DockerClient, pod, labels: dict[str, str], image: str,
                command: list[str], *, network: str | None = None) -> str:
    """Run ``command`` as the notebook container would: in the pod's network namespace,
    user 1000, no capabilities, the certificates read-only; return its output."""
    certs = next(m["Name"] for m in pod.attrs["Mounts"] if m["Destination"] == "/certs")
    container = cli.containers.run(
        image, command[1:], entrypoint=command[:1], detach=True, labels=labels,
        user="1000:100", cap_drop=["ALL"], security_opt=["no-new-privileges"],
        environment=NOTEBOOK_ENV, network_mode=network or f"container:{pod.id}",
        mounts=[docker.types.Mount("/certs", certs, read_only=True)])
    try:
        status = container.wait(timeout=120)["StatusCode"]
        out = container.logs().decode().strip()
    finally:
        # v=True: docker:dind declares a VOLUME, which `--rm` alone would leave behind.
        container.remove(force=True, v=True)
    assert status == 0, out
    return out


def wait_loaded(pod) -> int:
    """Run the pod's postStart script; return the startupProbe's exit code afterwards."""
    result = pod.exec_run([SCRIPT])
    assert result.exit_code == 0, result.output.decode()
    return pod.exec_run([SCRIPT, "--check"]).exit_code


def test_startup_probe_waits_for_the_bundle(pod) -> None:
    assert pod.exec_run([SCRIPT, "--check"]).exit_code != 0
    assert wait_loaded(pod) == 0


def test_notebook_reaches_its_engine_over_tls_on_localhost(cli, pod, labels) -> None:
    assert wait_loaded(pod) == 0
    listing = sidecar_run(cli, pod, labels, config.DIND_IMAGE,
                          ["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"])
    assert config.REGISTRY_IMAGE in listing.split()


def test_published_port_answers_in_the_pod_only(cli, pod, labels) -> None:
    assert wait_loaded(pod) == 0
    sidecar_run(cli, pod, labels, config.DIND_IMAGE,
                ["docker", "run", "-d", "--name", "web", "-p", "127.0.0.1:8000:5000",
                 config.REGISTRY_IMAGE])
    inside = sidecar_run(cli, pod, labels, config.BASE_IMAGE,
                         ["python3", "-c", PROBE, "127.0.0.1", "http"])
    assert inside == "200"
    pod.reload()
    address = pod.attrs["NetworkSettings"]["IPAddress"]
    assert address, "the engine container has no address on the default bridge"
    outside = sidecar_run(cli, pod, labels, config.BASE_IMAGE,
                          ["python3", "-c", PROBE, address, "http"], network="bridge")
    assert outside in ("URLError", "ConnectionRefusedError"), outside


def test_engine_refuses_a_client_without_the_pods_certificate(cli, pod, labels) -> None:
    assert wait_loaded(pod) == 0
    pod.reload()
    address = pod.attrs["NetworkSettings"]["IPAddress"]
    # from outside the pod the rootless engine's TLS port is not even open (rootlesskit
    # forwards it to the pod's loopback only); inside the pod, no certificate, no answer
    outside = sidecar_run(cli, pod, labels, config.BASE_IMAGE,
                          ["python3", "-c", PROBE, address, "tls"], network="bridge")
    assert outside in ("ConnectionRefusedError", "TimeoutError"), outside
    inside = sidecar_run(cli, pod, labels, config.BASE_IMAGE,
                         ["python3", "-c", PROBE, "127.0.0.1", "tls"])
    assert inside in ("SSLError", "ConnectionResetError"), inside


def test_the_pods_engine_is_rootless(pod) -> None:
    assert wait_loaded(pod) == 0
    info = pod.exec_run(["setpriv", "--reuid=rootless", "--regid=rootless", "--init-groups",
                         "docker", "info", "--format", "{{json .SecurityOptions}}"])
    assert info.exit_code == 0, info.output.decode()
    assert "rootless" in info.output.decode()
    uid_map = pod.exec_run(["sh", "-c", "cat /proc/$(pgrep -xn dockerd)/uid_map"])
    assert uid_map.output.split()[:3] == [b"0", b"1000", b"1"], uid_map.output
