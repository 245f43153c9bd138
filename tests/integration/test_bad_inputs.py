"""Bad inputs a learner makes or meets, on the real engine: each ends in a labkit error with
its fix, and nothing of the learner's is lost (their image keeps its tag, their running app
keeps running) nor left behind unannounced.

Covered elsewhere, not repeated here: a failing RUN and a mistyped instruction name their
step (test_images), a missing base image offline is never pulled (test_images), a wrong
password and a push of a tag that does not exist (test_registry). Registry cases that need
a registry are in test_bad_inputs_registry.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from labkit import images
from labkit.containers import apps as containers
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import (
    AppError,
    BuildFailed,
    ConfigError,
    ContainerFailed,
    EngineGone,
    EngineUnavailable,
    ImageMissing,
    InvalidName,
    LabkitError,
)

SUFFIX = "bad"
BASE = config.BASE_IMAGE

#: A tiny web app on the base image (no package to install): 200 on /, 500 on /boom with
#: a traceback on stderr, as a Flask app that raises prints it.
SERVER_PY = '''import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/":
            print("Traceback (most recent call last):\\nZeroDivisionError: division by zero",
                  file=sys.stderr, flush=True)
        self.send_response(200 if self.path == "/" else 500)
        self.end_headers()
        self.wfile.write(b"ok")
http.server.HTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
'''


def make_image(folder: Path, name: str, dockerfile: str, files: dict[str, str] | None = None
               ) -> str:
    """Build ``dockerfile`` (with ``files`` beside it) as this namespace's ``name``."""
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in (files or {}).items():
        (folder / file).write_text(text)
    (folder / "Dockerfile").write_text(dockerfile)
    return images.build(folder, name, show=False).tag


@dataclass(frozen=True)
class Learner:
    """What the learner had before the mistake: an image and a running app of it."""

    image: str
    image_id: str
    app: containers.RunningApp


@pytest.fixture(scope="module")
def learner(ns: config.Settings, client: docker.DockerClient,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Learner]:
    tag = make_image(tmp_path_factory.mktemp("keep"), "keep",
                     f'FROM {BASE}\nCOPY app.py /app.py\nCMD ["python", "-u", "/app.py"]\n',
                     {"app.py": SERVER_PY})
    app = containers.run(tag, "keep", client=client)
    yield Learner(tag, client.images.get(tag).id, app)
    app.remove()


def assert_nothing_lost(client: docker.DockerClient, learner: Learner) -> None:
    """The learner's image still has its tag and id; their app still runs and answers."""
    assert client.images.get(learner.image).id == learner.image_id
    assert client.containers.get(learner.app.id).status == "running"
    assert learner.app.get("/") == "ok"


def ours(client: docker.DockerClient, ns: config.Settings) -> dict[str, str]:
    """This namespace's containers: name → status."""
    return {c.name: c.status for c in client.containers.list(
        all=True, filters={"label": ns.label_filters()})}


def build_leftovers(client: docker.DockerClient, since: float) -> list[str]:
    """Containers created since ``since`` from an untagged image: a build's intermediates."""
    out = []
    for entry in client.api.containers(all=True):
        image = str(entry.get("Image", ""))
        if entry.get("Created", 0) >= int(since) and ":" not in image.removeprefix("sha256:"):
            out.append(f"{entry['Names'][0]} ({image})")
    return out


# ------------------------------------------------------------------ builds


BROKEN = {
    "mistyped instruction": (f"FROM {BASE}\nRUNN pip install flask\n", BuildFailed,
                             "RUNN pip install flask"),
    "failing RUN": (f"FROM {BASE}\nRUN echo about to fail && false\n", BuildFailed,
                    "RUN echo about to fail && false"),
    "COPY of a missing file": (f"FROM {BASE}\nCOPY missing.py /app.py\n", BuildFailed,
                               "missing.py"),
    "missing base image": ("FROM labkit-test-missing/never-pulled:1\nRUN true\n", ImageMissing,
                           "labkit-test-missing/never-pulled:1 is not on the engine"),
    "missing Dockerfile": (None, BuildFailed, "No readable Dockerfile"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_failing_rebuild_keeps_the_learners_image(case: str, learner: Learner,
                                                    client: docker.DockerClient,
                                                    ns: config.Settings, tmp_path: Path):
    dockerfile, error, said = BROKEN[case]
    if dockerfile is not None:
        (tmp_path / "Dockerfile").write_text(dockerfile)
    started = time.time()
    with pytest.raises(error) as caught:
        images.build(tmp_path, "keep", show=False)
    assert said in str(caught.value)
    assert caught.value.hint
    assert_nothing_lost(client, learner)
    assert build_leftovers(client, started) == []


def test_an_invalid_image_name_is_a_labkit_error(learner: Learner, client: docker.DockerClient,
                                                 ns: config.Settings, tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(f"FROM {BASE}\nCMD [\"true\"]\n")
    before = ours(client, ns)
    with pytest.raises(InvalidName) as built:
        images.build(tmp_path, "Bad Name!", show=False)
    assert f"'{ns.namespace}/Bad Name!:latest' is not a valid image name" in built.value.message
    assert "lowercase letters" in (built.value.hint or "")
    assert "docker build -t" in (built.value.hint or "")
    with pytest.raises(InvalidName, match="'Bad Name!' is not a valid image name"):
        containers.run("Bad Name!", "bad-name", client=client)
    with pytest.raises(InvalidName, match="is not a valid container name"):
        containers.run(learner.image, "Bad Name!", client=client)
    with pytest.raises(InvalidName, match="'Bad Name!:latest' is not a valid image name"):
        images.tag(learner.image, "Bad Name!")
    assert ours(client, ns) == before
    assert_nothing_lost(client, learner)


# ------------------------------------------------------------------ containers


def test_an_image_never_built_is_not_run(learner: Learner, client: docker.DockerClient,
                                         ns: config.Settings):
    before = ours(client, ns)
    with pytest.raises(ImageMissing) as caught:
        containers.run(ns.image_name("never-built"), "never", client=client)
    assert "Build it first" in (caught.value.hint or "")
    assert ours(client, ns) == before
    assert_nothing_lost(client, learner)


def test_a_crashed_app_is_kept_stopped_and_announced(learner: Learner,
                                                     client: docker.DockerClient,
                                                     ns: config.Settings, tmp_path: Path):
    tag = make_image(tmp_path, "crash", f'FROM {BASE}\nCMD ["python", "-c", "import sys; '
                     "print('boom: no config', file=sys.stderr); sys.exit(3)\"]\n")
    name = ns.container_name("crash")
    with pytest.raises(ContainerFailed) as first:
        containers.run(tag, "crash", client=client, timeout=30)
    assert "exited (code 3)" in first.value.message
    assert "boom: no config" in first.value.logs
    assert f"`docker container logs {name}`" in (first.value.hint or "")
    assert "the next run replaces it" in (first.value.hint or "")
    kept = client.containers.get(name)
    assert kept.status == "exited"
    with pytest.raises(ContainerFailed):
        containers.run(tag, "crash", client=client, timeout=30)
    assert client.containers.get(name).id != kept.id  # the next run replaced it
    assert_nothing_lost(client, learner)
    containers.remove("crash", client=client)


def test_an_app_bound_to_loopback_is_stopped_kept_and_explained(learner: Learner,
                                                               client: docker.DockerClient,
                                                               ns: config.Settings,
                                                               tmp_path: Path):
    tag = make_image(tmp_path, "loopback", f'FROM {BASE}\nCMD ["python", "-u", "-m", '
                     '"http.server", "5000", "--bind", "127.0.0.1"]\n')
    name = ns.container_name("loopback")
    with pytest.raises(ContainerFailed) as caught:
        containers.run(tag, "loopback", client=client, timeout=10)
    assert "did not answer" in caught.value.message
    assert "127.0.0.1" in caught.value.logs
    assert "0.0.0.0" in (caught.value.hint or "")
    assert f"`docker container logs {name}`" in (caught.value.hint or "")
    assert client.containers.get(name).status == "exited"  # nothing left running
    assert_nothing_lost(client, learner)
    containers.remove("loopback", client=client)


def test_a_container_that_cannot_start_is_removed(learner: Learner,
                                                  client: docker.DockerClient,
                                                  ns: config.Settings, tmp_path: Path):
    tag = make_image(tmp_path, "nostart", f'FROM {BASE}\nCMD ["/no/such/program"]\n')
    before = ours(client, ns)
    with pytest.raises(ContainerFailed) as caught:
        containers.run(tag, "nostart", client=client, timeout=30)
    text = str(caught.value)
    assert f"{ns.container_name('nostart')} could not start" in text
    assert "/no/such/program" in text
    assert "labkit removed the container it had created" in text
    assert ours(client, ns) == before
    assert_nothing_lost(client, learner)


def test_an_app_answering_500_is_an_app_error_with_its_logs(learner: Learner,
                                                            client: docker.DockerClient):
    with pytest.raises(AppError) as caught:
        learner.app.get("/boom")
    assert caught.value.status_code == 500
    assert f"{learner.app.name} answered 500" in caught.value.message
    assert "ZeroDivisionError" in caught.value.logs
    assert f"`docker container logs {learner.app.name}`" in (caught.value.hint or "")
    assert_nothing_lost(client, learner)


# ------------------------------------------------------------------ engine and settings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _labkit(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "labkit.cli", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_no_engine_is_one_message_with_the_fix(learner: Learner, client: docker.DockerClient):
    nowhere = f"tcp://127.0.0.1:{_closed_port()}"
    with pytest.raises(EngineUnavailable) as caught:
        engine.connect({"DOCKER_HOST": nowhere})
    assert f"No Docker Engine answers at {nowhere}" in caught.value.message
    assert "Start Docker" in (caught.value.hint or "")
    done = _labkit("doctor", DOCKER_HOST=nowhere, DOCKER_TLS_VERIFY="", DOCKER_CERT_PATH="")
    assert done.returncode == 1
    assert f"No Docker Engine answers at {nowhere}" in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_lost(client, learner)


def test_an_invalid_labkit_user_is_one_message_with_the_fix(learner: Learner,
                                                           client: docker.DockerClient):
    with pytest.raises(ConfigError) as caught:
        config.from_env({"LABKIT_USER": "Bad User!"})
    assert isinstance(caught.value, ValueError)
    done = _labkit("registry", "status", LABKIT_USER="Bad User!")
    assert done.returncode == 1
    assert "LABKIT_USER='Bad User!' is not a valid name" in done.stderr
    assert "export LABKIT_USER=" in done.stderr
    assert "Traceback" not in done.stderr
    assert_nothing_lost(client, learner)


class EngineProxy:
    """A forwarder from 127.0.0.1:PORT to the engine under test (its socket, or its TCP port
    with the client's TLS): stopping it is, for a client, the engine going away."""

    def __init__(self, upstream: str, cert_path: str | None) -> None:
        self.upstream, self.cert_path, self.port = upstream, cert_path, 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str]) -> EngineProxy:
        tls = env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_CERT_PATH")
        return cls(env.get("DOCKER_HOST") or engine.DEFAULT_HOST,
                   env.get("DOCKER_CERT_PATH") if tls else None)

    def _connect(self) -> socket.socket:
        if self.upstream.startswith("unix://"):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self.upstream.removeprefix("unix://"))
            return sock
        host, _, port = self.upstream.split("://", 1)[1].rpartition(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        if not self.cert_path:
            return sock
        ctx = ssl.create_default_context(cafile=f"{self.cert_path}/ca.pem")
        ctx.load_cert_chain(f"{self.cert_path}/cert.pem", f"{self.cert_path}/key.pem")
        return ctx.wrap_socket(sock, server_hostname=host)

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen()
        self.port, self._listener = listener.getsockname()[1], listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = listener.accept()
                upstream = self._connect()
                upstream.settimeout(None)
                self._open += [client, upstream]
                threading.Thread(target=self._relay, args=(client, upstream),
                                 daemon=True).start()

    @staticmethod
    def _relay(a: socket.socket, b: socket.socket) -> None:
        """Copy both ways in one thread (an SSL socket must not be read and written at once
        from two threads) until either side closes."""
        with contextlib.suppress(OSError, ValueError):
            while True:
                ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
                for src in ready or select.select([a, b], [], [], 1)[0]:
                    data = src.recv(65536)
                    if not data:
                        return
                    (b if src is a else a).sendall(data)

    def stop(self) -> None:
        """Close the listener and every forwarded connection."""
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the thread blocked in accept()
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        for sock in self._open:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._open.clear()


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineProxy]:
    """The engine under test, reached through a forwarder on 127.0.0.1 that can be stopped."""
    proxy = EngineProxy.from_env(os.environ)
    proxy.start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{proxy.port}")
    for key in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_CONTEXT"):
        monkeypatch.delenv(key, raising=False)
    engine.reset()
    yield proxy
    proxy.stop()
    engine.reset()


def test_an_engine_gone_mid_session_is_reported_then_found_again(proxied: EngineProxy,
                                                                 learner: Learner):
    assert learner.image in images.list_images()["image"].tolist()  # the cached client
    proxied.stop()
    with pytest.raises(EngineGone) as caught:
        images.list_images()
    assert f"tcp://127.0.0.1:{proxied.port} went away" in caught.value.message
    assert "re-run the cell" in (caught.value.hint or "")
    assert isinstance(caught.value, LabkitError)
    proxied.start()  # the engine is back: the next call connects anew
    assert learner.image in images.list_images()["image"].tolist()
