"""How a learner's engine is reached, against a real engine of this module's own: plain TCP
on a network address (refused; admitted with the stated opt-in, and said unencrypted), and
ssh:// (docker-py over paramiko, and the docker CLI over the ssh binary).

The engine is a ``labkit-engine:28.5`` container on this machine's engine (the one the DinD
engines run on) with Debian's openssh-server added, serving plain TCP on 2375 as a
``docker:dind`` service with ``DOCKER_TLS_CERTDIR=""`` does. What the module starts carries
a label of this run and is removed by that label, whatever happens.
"""

from __future__ import annotations

import io
import os
import secrets
import shlex
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest
import requests

from labkit import course
from labkit.engine import connection as engine
from labkit.engine import engine_info
from labkit.engine.errors import EngineInsecure, EngineUnavailable
from testbed import dind, engines

BASE = engines.parse("28.5")
IMAGE = "labkit-engine-ssh:28.5"
#: The label naming the base image an ssh engine image was built from (rebuilt when it moves).
BASE_LABEL = "org.labkit.base-image"
RUN_LABEL = "org.labkit.transport-test"
PROBE = "transport-probe:1"
DOCKERFILE = f"""\
FROM {BASE.image}
RUN apt-get -o Acquire::Check-Valid-Until=false update \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server \\
 && rm -rf /var/lib/apt/lists/* && mkdir -p /run/sshd && ssh-keygen -A
ENTRYPOINT ["sh", "-c", "mkdir -p /root/.ssh && printf '%s\\\\n' \\"$SSH_AUTHORIZED_KEY\\" \
> /root/.ssh/authorized_keys && chmod 0600 /root/.ssh/authorized_keys && /usr/sbin/sshd \
&& exec dockerd-entrypoint.sh \\"$@\\"", "sh"]
"""


def _host(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The docker CLI against this machine's engine, whatever engine the run tests."""
    env = {k: v for k, v in os.environ.items() if k not in dind.CLIENT_VARIABLES}
    return subprocess.run(["docker", *args], input=stdin, env=env, capture_output=True,
                          text=True, check=False)


def _image_id(name: str) -> str:
    return _host("image", "inspect", "-f", "{{.Id}}", name).stdout.strip()


def _ssh_engine_image() -> str:
    """``labkit-engine-ssh:28.5``, built FROM the 28.5 stand-in unless present (about 6 s)."""
    with pytest.MonkeyPatch.context() as on_this_machine:  # not the engine under test
        for name in dind.CLIENT_VARIABLES:
            on_this_machine.delenv(name, raising=False)
        engines.build(BASE)
    base = _image_id(BASE.image)
    made_from = _host("image", "inspect", "-f", f'{{{{index .Config.Labels "{BASE_LABEL}"}}}}',
                      IMAGE).stdout.strip()
    if made_from != base:
        built = _host("build", "-q", "-t", IMAGE, "--label", f"{BASE_LABEL}={base}", "-",
                      stdin=DOCKERFILE)
        assert built.returncode == 0, built.stderr
    return IMAGE


@dataclass(frozen=True)
class Remote:
    """The module's engine: its address, and an ssh home that knows it."""

    ip: str
    home: Path

    @property
    def plain_url(self) -> str:
        return f"tcp://{self.ip}:2375"

    @property
    def ssh_url(self) -> str:
        return f"ssh://root@{self.ip}"


def _tar_of_one_file() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = b"reached\n"
        info = tarfile.TarInfo("probe.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _wait_until_up(ip: str) -> None:
    deadline = time.monotonic() + 60
    with requests.Session() as session:
        session.trust_env = False
        while time.monotonic() < deadline:
            try:
                ssh_up = socket.create_connection((ip, 22), timeout=1)
                ssh_up.close()
                if session.get(f"http://{ip}:2375/_ping", timeout=1).ok:
                    return
            except (OSError, requests.RequestException):
                pass
            time.sleep(0.2)
    raise AssertionError(f"the engine at {ip} did not come up in 60 s")


@pytest.fixture(scope="module")
def remote(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Remote]:
    """Start the engine (plain TCP + sshd), put one image on it; remove it by label after."""
    home = tmp_path_factory.mktemp("ssh-home")
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(ssh_dir / "id_ed25519")], check=True)
    public = (ssh_dir / "id_ed25519.pub").read_text().strip()
    image = _ssh_engine_image()
    label = f"{RUN_LABEL}={secrets.token_hex(6)}"
    try:
        run = _host("run", "-d", "--label", "org.labkit.managed=true", "--label", label,
                    *shlex.split(dind.DEFAULT_FLAGS), "-e", "DOCKER_TLS_CERTDIR=",
                    "-e", f"SSH_AUTHORIZED_KEY={public}", image, "--tls=false")
        assert run.returncode == 0, run.stderr
        ip = _host("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                   run.stdout.strip()).stdout.strip()
        _wait_until_up(ip)
        keys = subprocess.run(["ssh-keyscan", "-t", "ed25519", ip], capture_output=True,
                              text=True, check=True).stdout
        (ssh_dir / "known_hosts").write_text(keys)
        seed = docker.APIClient(base_url=f"tcp://{ip}:2375")  # labkit itself would refuse
        seed.import_image_from_data(_tar_of_one_file(), repository=PROBE)
        seed.close()
        yield Remote(ip, home)
    finally:
        found = _host("ps", "-aq", "--filter", f"label={label}").stdout.split()
        if found:
            _host("rm", "-f", "-v", *found)
        assert _host("ps", "-aq", "--filter", f"label={label}").stdout.strip() == ""


@pytest.fixture
def plain_env(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process pointed at the engine over plain TCP, without the opt-in."""
    for name in (*dind.CLIENT_VARIABLES, engine.PLAIN_TCP_VARIABLE):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DOCKER_HOST", remote.plain_url)
    return dict(os.environ)


def _tags(client: docker.DockerClient) -> set[str]:
    return {tag for image in client.images.list() for tag in image.tags}


# --------------------------------------------------------------------------- plain TCP


def test_plain_tcp_without_the_opt_in_is_refused_naming_it(remote: Remote,
                                                           plain_env: dict[str, str]) -> None:
    with pytest.raises(EngineInsecure) as caught:
        engine.connect(plain_env)
    assert remote.plain_url in caught.value.message and "without TLS" in caught.value.message
    hint = caught.value.hint or ""
    assert engine.PLAIN_TCP_OPT_IN in hint and "DOCKER_TLS_VERIFY=1" in hint
    with requests.Session() as session:  # the engine answers: the refusal is labkit's
        session.trust_env = False
        assert session.get(f"http://{remote.ip}:2375/_ping", timeout=5).text == "OK"


def test_plain_tcp_with_the_opt_in_connects_and_says_it_is_unencrypted(
        remote: Remote, plain_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(engine.PLAIN_TCP_VARIABLE, engine.PLAIN_TCP_REASON)
    with pytest.warns(engine.UnencryptedEngineWarning, match="registry logins") as said:
        client = engine.connect()
    assert len(said) == 1
    try:
        assert client.api.base_url == f"http://{remote.ip}:2375"
        assert PROBE in _tags(client)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once: a second client says nothing
            engine.connect().close()
        assert engine_info.info(client).transport.unencrypted
        checks = {check.name: check for check in course.doctor_checks(client)}
        assert "UNENCRYPTED" in checks["connection"].detail
        assert engine.PLAIN_TCP_OPT_IN in checks["connection"].detail
    finally:
        client.close()


# --------------------------------------------------------------------------- ssh


@pytest.fixture
def ssh_env(remote: Remote, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """This process pointed at the engine over ssh, its HOME the one that knows the host."""
    for name in dind.CLIENT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(remote.home))
    monkeypatch.setenv("DOCKER_HOST", remote.ssh_url)
    return dict(os.environ)


def test_an_ssh_engine_is_reached_through_docker_py(remote: Remote,
                                                    ssh_env: dict[str, str]) -> None:
    client = engine.connect(ssh_env)
    try:
        assert client.api.base_url == "http+docker://ssh"
        assert PROBE in _tags(client)
        assert engine.transport(ssh_env).kind == "ssh"
        assert engine.engine_hostname(ssh_env) == remote.ip
    finally:
        client.close()


def test_an_unknown_ssh_host_is_refused_with_what_to_check(
        remote: Remote, ssh_env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = tmp_path / ".ssh"
    shutil.copytree(remote.home / ".ssh", stranger)
    (stranger / "known_hosts").write_text("")  # the host's key was never accepted here
    monkeypatch.setenv("HOME", str(tmp_path))  # paramiko reads ~/.ssh of the process
    with pytest.raises(EngineUnavailable) as caught:
        engine.connect()
    assert "not found in known_hosts" in caught.value.message
    assert caught.value.hint == engine.SSH_HINT


@pytest.fixture
def cli_env(remote: Remote, ssh_env: dict[str, str], tmp_path: Path) -> Iterator[dict[str, str]]:
    """The docker CLI's environment for the ssh engine: an ``ssh`` first on PATH that reads
    this home's keys (OpenSSH reads ~/.ssh of the account, not of $HOME), and shares one
    connection between the CLI's many (ControlMaster, as Docker's documentation advises)."""
    control = Path(tempfile.mkdtemp(prefix="lk"))  # short: a socket path has ~100 bytes
    config = remote.home / ".ssh" / "config"
    config.write_text(f"Host {remote.ip}\n  IdentityFile {remote.home}/.ssh/id_ed25519\n"
                      f"  UserKnownHostsFile {remote.home}/.ssh/known_hosts\n"
                      "  StrictHostKeyChecking yes\n  BatchMode yes\n"
                      f"  ControlMaster auto\n  ControlPath {control}/cm\n"
                      "  ControlPersist 30\n")
    ssh = shutil.which("ssh")
    assert ssh, "the docker CLI reaches ssh:// engines with the ssh program"
    wrapper = tmp_path / "bin" / "ssh"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\nexec {ssh} -F {config} "$@"\n')
    wrapper.chmod(0o755)
    yield ssh_env | {"PATH": f"{wrapper.parent}:{ssh_env['PATH']}"}
    subprocess.run([ssh, "-F", str(config), "-O", "exit", remote.ip], capture_output=True,
                   check=False, timeout=10)  # the shared connection ends with the test
    shutil.rmtree(control, ignore_errors=True)


def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run(["docker", *args], env=env, cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_docker_cli_reaches_the_same_ssh_engine(cli_env: dict[str, str]) -> None:
    listed = _cli(cli_env, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}")
    assert PROBE in listed.split()


def test_the_docker_cli_builds_over_ssh_and_docker_py_sees_the_image(
        cli_env: dict[str, str], tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    (context / "hello.txt").write_text("built over ssh\n")
    (context / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    _cli(cli_env, "build", "-q", "-t", "transport-built:1", ".", cwd=context)
    client = engine.connect(cli_env)
    try:
        image = client.images.get("transport-built:1")
        assert len(image.attrs["RootFS"]["Layers"]) == 1  # the COPY, on the remote engine
    finally:
        client.close()
