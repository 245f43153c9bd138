"""API version negotiation and what `docker info` says about the image store (no engine)."""

from __future__ import annotations

import pytest

from labkit.engine import connection as engine
from labkit.engine import engine_info
from labkit.engine.commands import docker as docker_cmd
from labkit.engine.errors import EngineIncompatible


@pytest.mark.parametrize(("server", "minimum", "chosen"), [
    ("1.41", "1.12", "1.41"),   # Docker 20.10: its own newest
    ("1.45", "1.24", "1.45"),   # Docker 26.1
    ("1.51", "1.24", "1.45"),   # Docker 28.5: the newest this docker-py speaks
    ("1.51", "1.44", "1.45"),   # Engine 29's floor: still above it
])
def test_negotiation_speaks_the_newest_version_both_know(server, minimum, chosen):
    assert engine.negotiate(server, minimum, client_max="1.45") == chosen


def test_an_engine_whose_floor_is_above_the_client_is_refused_with_its_own_fix():
    with pytest.raises(EngineIncompatible) as caught:
        engine.negotiate("1.60", "1.50", client_max="1.45")
    assert "needs API 1.50" in caught.value.message
    assert "pip install -U docker" in (caught.value.hint or "")
    assert "No Docker Engine" not in str(caught.value)


def test_an_engine_older_than_the_course_is_refused_as_too_old():
    with pytest.raises(EngineIncompatible) as caught:
        engine.negotiate("1.40", "1.12", client_max="1.45")
    assert "too old" in caught.value.message


def test_versions_compare_as_numbers_not_text():
    assert engine.negotiate("1.9", None, client_max="1.45", course_min="1.9") == "1.9"
    assert engine.negotiate("1.100", None, client_max="1.45") == "1.45"


@pytest.mark.parametrize(("status", "store"), [
    ([["Backing Filesystem", "extfs"], ["Supports d_type", "true"]], "graphdriver"),
    ([["driver-type", "io.containerd.snapshotter.v1"]], "containerd"),
    (None, "graphdriver"),
])
def test_image_store_is_read_from_the_driver_status(status, store):
    assert engine_info.image_store({"Driver": "overlayfs", "DriverStatus": status}) == store


def test_command_environment_is_quoted():
    assert str(docker_cmd("ps", env={"A": "x y"})) == "A='x y' docker ps"


# --- remote engines: verified TLS only, ports on loopback unless opted in ---------------
def _certs(folder) -> str:
    from labkit.registry.tls import make_certificates

    pems = make_certificates(["localhost"])
    for name, pem in (("ca.pem", "ca.crt"), ("cert.pem", "tls.crt"), ("key.pem", "tls.key")):
        (folder / name).write_text(pems[pem])
    return str(folder)


@pytest.mark.parametrize("host", ["tcp://192.0.2.10:2375", "tcp://docker:2375"])
def test_plain_tcp_over_a_network_is_refused_before_connecting(host):
    from labkit.engine.errors import EngineInsecure

    with pytest.raises(EngineInsecure) as caught:
        engine.connect({"DOCKER_HOST": host})
    assert "without TLS" in caught.value.message and host in caught.value.message
    hint = caught.value.hint or ""
    assert "DOCKER_TLS_VERIFY=1" in hint  # the TLS alternative
    assert "LABKIT_ALLOW_PLAIN_TCP=private-network" in hint  # and the opt-in


@pytest.mark.parametrize("value", ["1", "yes", "true", "private"])
def test_an_opt_in_that_states_no_reason_is_refused(value):
    from labkit.engine.errors import EngineInsecure

    env = {"DOCKER_HOST": "tcp://docker:2375", "LABKIT_ALLOW_PLAIN_TCP": value}
    with pytest.raises(EngineInsecure) as caught:
        engine.connect(env)
    assert repr(value) in caught.value.message and "'private-network'" in caught.value.message


def test_the_opt_in_admits_plain_tcp_and_names_it_unencrypted():
    env = {"DOCKER_HOST": "tcp://docker:2375", "LABKIT_ALLOW_PLAIN_TCP": "private-network"}
    chosen = engine.check_transport(engine.client_kwargs(env), env["DOCKER_HOST"], env)
    assert chosen.kind == "plain" and chosen.unencrypted
    assert "UNENCRYPTED" in chosen.summary
    said = engine.unencrypted_warning(env["DOCKER_HOST"])
    assert "registry logins" in said and "private network" in said


def test_the_opt_in_does_not_admit_tls_without_verification(tmp_path):
    from labkit.engine.errors import EngineInsecure

    env = {"DOCKER_HOST": "tcp://192.0.2.10:2376", "DOCKER_TLS_VERIFY": "",
           "DOCKER_CERT_PATH": _certs(tmp_path), "LABKIT_ALLOW_PLAIN_TCP": "private-network"}
    with pytest.raises(EngineInsecure, match="without checking its certificate"):
        engine.check_transport(engine.client_kwargs(env), env["DOCKER_HOST"], env)


@pytest.mark.parametrize(("env", "kind"), [
    ({"DOCKER_HOST": "unix:///var/run/docker.sock"}, "socket"),
    ({"DOCKER_HOST": "tcp://127.0.0.1:2375"}, "loopback"),
    ({"DOCKER_HOST": "ssh://learner@192.0.2.10"}, "ssh"),
])
def test_transport_says_how_the_engine_is_reached(env, kind):
    assert engine.transport(env).kind == kind
    assert not engine.transport(env).unencrypted


def test_tls_without_verification_is_refused(tmp_path):
    from labkit.engine.errors import EngineInsecure

    env = {"DOCKER_HOST": "tcp://192.0.2.10:2376", "DOCKER_TLS_VERIFY": "",
           "DOCKER_CERT_PATH": _certs(tmp_path)}
    with pytest.raises(EngineInsecure) as caught:
        engine.check_transport(engine.client_kwargs(env), "tcp://192.0.2.10:2376")
    assert "without checking its certificate" in caught.value.message


@pytest.mark.parametrize("env", [
    {"DOCKER_HOST": "tcp://127.0.0.1:2375"},
    {"DOCKER_HOST": "tcp://localhost:2375"},
    {"DOCKER_HOST": "unix:///var/run/docker.sock"},
    {"DOCKER_HOST": "ssh://learner@192.0.2.10"},
])
def test_loopback_sockets_and_ssh_need_no_tls(env):
    engine.check_transport(engine.client_kwargs(env), env["DOCKER_HOST"])


def test_verified_tls_over_a_network_is_accepted(tmp_path):
    env = {"DOCKER_HOST": "tcp://192.0.2.10:2376", "DOCKER_TLS_VERIFY": "1",
           "DOCKER_CERT_PATH": _certs(tmp_path)}
    engine.check_transport(engine.client_kwargs(env), env["DOCKER_HOST"])


REMOTE = {"DOCKER_HOST": "tcp://192.0.2.10:2376"}


def test_ports_bind_loopback_unless_opted_in(monkeypatch):
    from labkit.engine import config

    monkeypatch.setattr(config, "_current", config.Settings(user="u1"))
    assert engine.bind_ip(REMOTE) == "127.0.0.1"
    config.use(config.Settings(user="u1", bind_ip="0.0.0.0"))
    assert engine.bind_ip(REMOTE) == "0.0.0.0"


def test_a_remote_engine_without_the_opt_in_says_how_to_reach_its_ports(monkeypatch):
    from labkit.engine import config
    from labkit.engine.errors import PortsUnreachable

    monkeypatch.setattr(config, "_current", config.Settings(user="u1"))
    with pytest.raises(PortsUnreachable) as caught:
        engine.require_reachable("the app's port 5000", REMOTE)
    assert "192.0.2.10" in caught.value.message and "127.0.0.1" in caught.value.message
    assert "LABKIT_BIND_IP=0.0.0.0" in (caught.value.hint or "")
    engine.require_reachable("x", {"DOCKER_HOST": "unix:///var/run/docker.sock"})
    config.use(config.Settings(user="u1", bind_ip="0.0.0.0"))
    engine.require_reachable("x", REMOTE)
    config.use(config.Settings(user="u1", publish_host="localhost"))  # forwarded by hand
    engine.require_reachable("x", REMOTE)


def test_engine_times_read_with_nanoseconds_and_z() -> None:
    from datetime import UTC, datetime

    from labkit import engine as labkit_engine

    stamp = labkit_engine.timestamp("2026-12-05T23:40:15.275256541Z")
    assert stamp == datetime(2026, 12, 5, 23, 40, 15, 275256, tzinfo=UTC)
    assert labkit_engine.timestamp("2026-12-05T23:40:15Z") < stamp
