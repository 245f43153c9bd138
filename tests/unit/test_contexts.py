"""Docker CLI contexts (Docker Desktop, colima, OrbStack), written as the docker CLI writes
them into a ~/.docker of the test's own, and followed to the engine they name."""

from __future__ import annotations

import hashlib
import json
import shutil
import socket
import socketserver
import tempfile
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from docker.constants import DEFAULT_DOCKER_API_VERSION

from labkit.engine import connection as engine
from labkit.engine import contexts
from labkit.engine.errors import EngineInsecure, EngineUnavailable

COLIMA = "unix:///Users/learner/.colima/default/docker.sock"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """This process's HOME is tmp_path (docker-py reads ~/.docker from the process)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("DOCKER_CONFIG", "DOCKER_CONTEXT", "DOCKER_HOST", "DOCKER_TLS_VERIFY",
                 "DOCKER_CERT_PATH"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _current(home: Path, current: str | None) -> dict[str, str]:
    """~/.docker/config.json naming ``current``; returns the environment to pass."""
    docker_dir = home / ".docker"
    docker_dir.mkdir(exist_ok=True)
    config = {"auths": {}} | ({"currentContext": current} if current else {})
    (docker_dir / "config.json").write_text(json.dumps(config))
    return {"HOME": str(home)}


def _context(home: Path, name: str, host: str, *, skip_tls_verify: bool = False,
             tls_files: tuple[str, ...] = (), docker_dir: Path | None = None) -> Path:
    """Write a context as `docker context create` does; return its TLS directory."""
    root = (docker_dir or home / ".docker") / "contexts"
    ident = hashlib.sha256(name.encode()).hexdigest()
    meta_dir = root / "meta" / ident
    meta_dir.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": skip_tls_verify}
    meta = {"Name": name, "Metadata": {"Description": name}, "Endpoints": {"docker": endpoint}}
    (meta_dir / "meta.json").write_text(json.dumps(meta))
    tls_dir = root / "tls" / ident / "docker"
    if tls_files:
        tls_dir.mkdir(parents=True)
        for filename in tls_files:
            (tls_dir / filename).write_text("-----BEGIN PLACEHOLDER-----\n")
    return tls_dir


def test_no_config_means_the_default_context(home):
    env = {"HOME": str(home)}
    assert contexts.current_name(env) == "default"
    assert contexts.active(env) is None
    assert engine.describe_host(env) == engine.DEFAULT_HOST


def test_current_context_from_config_json_gives_its_socket(home):
    env = _current(home, "colima")
    _context(home, "colima", COLIMA)
    endpoint = contexts.active(env)
    assert endpoint is not None
    assert endpoint.host == COLIMA
    assert endpoint.client_kwargs() == {"base_url": COLIMA}
    assert engine.describe_host(env) == COLIMA
    assert engine.describe_engine(env) == f"{COLIMA} from the Docker context 'colima'"
    assert engine.client_kwargs(env) == {"base_url": COLIMA}


def test_docker_context_variable_beats_config_json(home):
    env = _current(home, "colima") | {"DOCKER_CONTEXT": "orbstack"}
    _context(home, "colima", COLIMA)
    _context(home, "orbstack", "unix:///Users/learner/.orbstack/run/docker.sock")
    assert contexts.current_name(env) == "orbstack"
    assert engine.describe_host(env).endswith("/.orbstack/run/docker.sock")


def test_docker_host_beats_every_context(home):
    env = _current(home, "colima") | {"DOCKER_CONTEXT": "colima",
                                      "DOCKER_HOST": "tcp://docker:2376"}
    _context(home, "colima", COLIMA)
    assert contexts.active(env) is None
    assert engine.describe_host(env) == "tcp://docker:2376"
    assert engine.describe_engine(env) == "tcp://docker:2376"


def test_docker_context_default_means_the_local_socket(home):
    env = _current(home, "colima") | {"DOCKER_CONTEXT": "default"}
    assert contexts.active(env) is None
    assert engine.describe_host(env) == engine.DEFAULT_HOST


def test_docker_config_names_the_config_directory(home, monkeypatch):
    config = home / "elsewhere"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"currentContext": "desktop-linux"}))
    _context(home, "desktop-linux", "unix:///Users/learner/.docker/run/docker.sock",
             docker_dir=config)
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    assert contexts.current_name() == "desktop-linux"
    assert engine.describe_host() == "unix:///Users/learner/.docker/run/docker.sock"


def test_a_broken_config_json_means_the_default_context(home):
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text("{not json")
    assert contexts.current_name({"HOME": str(home)}) == "default"


def test_a_remote_context_gives_the_remote_host_for_published_ports(home):
    env = _current(home, "remote")
    _context(home, "remote", "tcp://build-box.example:2375")
    assert engine.engine_hostname(env) == "build-box.example"
    assert not engine.is_local(env)


def test_tls_material_is_used_and_verified(home):
    env = _current(home, "secure")
    tls_dir = _context(home, "secure", "tcp://engine.example:2376",
                       tls_files=("ca.pem", "cert.pem", "key.pem"))
    params = engine.client_kwargs(env)
    assert params["base_url"] == "tcp://engine.example:2376"
    tls = params["tls"]
    assert tls.ca_cert == str(tls_dir / "ca.pem")
    assert tls.cert == (str(tls_dir / "cert.pem"), str(tls_dir / "key.pem"))
    assert tls.verify is True
    assert engine.transport(env).kind == "tls"


def test_skip_tls_verify_keeps_tls_without_verification_and_is_refused(home):
    env = _current(home, "insecure")
    _context(home, "insecure", "tcp://engine.example:2376", skip_tls_verify=True,
             tls_files=("cert.pem", "key.pem"))
    endpoint = contexts.active(env)
    assert endpoint is not None
    assert endpoint.ca_cert is None
    tls = endpoint.tls_config()
    assert tls is not None
    assert tls.verify is False
    with pytest.raises(EngineInsecure, match="without checking its certificate"):
        engine.connect(env)


def test_a_ca_alone_verifies_without_a_client_certificate(home):
    env = _current(home, "ca-only")
    tls_dir = _context(home, "ca-only", "tcp://engine.example:2376", tls_files=("ca.pem",))
    tls = engine.client_kwargs(env)["tls"]
    assert tls.ca_cert == str(tls_dir / "ca.pem")
    assert tls.cert is None
    assert tls.verify is True


def test_a_missing_context_is_one_clear_error(home):
    env = _current(home, "gone")
    with pytest.raises(EngineUnavailable) as caught:
        contexts.active(env)
    assert "context 'gone' does not exist" in caught.value.message
    assert "docker context use" in (caught.value.hint or "")
    assert engine.describe_host(env) == engine.DEFAULT_HOST  # describing never raises
    with pytest.raises(EngineUnavailable, match="context 'gone'"):
        engine.connect(env)


def test_a_context_without_a_docker_endpoint_is_refused(home):
    env = _current(home, "k8s")
    _context(home, "k8s", "unused")
    meta_file = next((home / ".docker" / "contexts" / "meta").glob("*/meta.json"))
    meta_file.write_text(json.dumps({"Name": "k8s", "Metadata": {},
                                     "Endpoints": {"kubernetes": {"Host": "https://k8s"}}}))
    with pytest.raises(EngineUnavailable, match="names no docker engine address"):
        contexts.active(env)


def test_a_corrupt_context_is_refused(home):
    env = _current(home, "broken")
    _context(home, "broken", "unused")
    next((home / ".docker" / "contexts" / "meta").glob("*/meta.json")).write_text("{oops")
    with pytest.raises(EngineUnavailable, match="context 'broken' has no readable"):
        engine.connect(env)


def test_connect_through_a_dead_context_names_the_context(home):
    with socket.socket() as sock:  # a port nothing listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = _current(home, "stopped")
    _context(home, "stopped", f"tcp://127.0.0.1:{port}")
    with pytest.raises(EngineUnavailable) as caught:
        engine.connect(env)
    assert f"tcp://127.0.0.1:{port} from the Docker context 'stopped'" in caught.value.message
    assert caught.value.hint == engine.NO_ENGINE_HINT


class _FakeEngine(BaseHTTPRequestHandler):
    """Answers /version as Docker 28.5 does; enough for connect() to negotiate."""

    paths: list[str] = []  # every path asked, in order

    def do_GET(self) -> None:
        self.paths.append(self.path)
        body = json.dumps({"Version": "28.5.2", "ApiVersion": "1.51",
                           "MinAPIVersion": "1.24"}).encode()
        self.send_response(200 if self.path.endswith("/version") else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def address_string(self) -> str:
        return "unix-socket"

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_connect_follows_the_context_to_its_socket(home):
    sock_dir = Path(tempfile.mkdtemp(prefix="lk"))  # short: a socket path has ~100 bytes
    sock_path = sock_dir / "docker.sock"  # as colima's ~/.colima/default/docker.sock
    server = _UnixHTTPServer(str(sock_path), _FakeEngine)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = _current(home, "colima")
        _context(home, "colima", f"unix://{sock_path}")
        client = engine.connect(env)
        try:
            assert client.version()["Version"] == "28.5.2"
            # the newest version both speak: the engine's 1.51, or docker-py's own maximum
            expected = min("1.51", DEFAULT_DOCKER_API_VERSION,
                           key=lambda v: tuple(int(p) for p in v.split(".")))
            assert client.api.api_version == expected
            assert f"/v{expected}/version" in _FakeEngine.paths  # and spoken to the engine
        finally:
            client.close()
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(sock_dir, ignore_errors=True)
