"""The docker commands equivalent to making the local registry (shown to the learner)."""

from __future__ import annotations

from labkit import engine
from labkit.engine import REGISTRY_IMAGE, DockerCommand, settings
from labkit.engine import docker as docker_cmd
from labkit.registry import tls as registry_tls
from labkit.registry.server_config import CONFIG_DIR, DATA_DIR, REALM


def volume_name() -> str:
    """The named volume holding the local registry's data."""
    return settings().container_name("registry-data")


def run_command(bind: str | None = None) -> DockerCommand:
    """The one `docker run` line equivalent to the local registry, auth included: the
    registry reads an htpasswd file (bcrypt, ``htpasswd -Bbn USER PASSWORD``) from ./auth
    and serves HTTPS with the certificate in ./certs. labkit copies those files and
    config.yml in instead (:func:`run_steps`): the engine may be remote, where no folder of
    this machine can be mounted."""
    s = settings()
    return docker_cmd(
        "run", "-d", "--name", s.container_name("registry"),
        "-p", f"{bind or engine.bind_ip()}::5000",
        "-v", f"{volume_name()}:{DATA_DIR}", "-v", "./auth:/auth:ro", "-v", "./certs:/certs:ro",
        "-e", "REGISTRY_HTTP_TLS_CERTIFICATE=/certs/tls.crt",
        "-e", "REGISTRY_HTTP_TLS_KEY=/certs/tls.key",
        "-e", "REGISTRY_AUTH=htpasswd", "-e", f"REGISTRY_AUTH_HTPASSWD_REALM={REALM}",
        "-e", "REGISTRY_AUTH_HTPASSWD_PATH=/auth/htpasswd", REGISTRY_IMAGE,
    )


def run_steps(bind: str) -> tuple[DockerCommand, ...]:
    """The commands that make the registry the way labkit does (files copied in), as a
    learner would type them. labkit also labels the volume and the container it creates,
    which is how its clean-up finds them; a learner's own registry needs no label."""
    s = settings()
    name = s.container_name("registry")
    return (
        docker_cmd("volume", "create", volume_name()),
        docker_cmd("create", "--name", name, "-p", f"{bind}::5000",
                   "-v", f"{volume_name()}:{DATA_DIR}", REGISTRY_IMAGE),
        docker_cmd("cp", "config.yml", f"{name}:{CONFIG_DIR}/config.yml"),
        docker_cmd("cp", "htpasswd", f"{name}:{CONFIG_DIR}/htpasswd"),
        docker_cmd("cp", registry_tls.CERT_FILE, f"{name}:{CONFIG_DIR}/{registry_tls.CERT_FILE}"),
        docker_cmd("cp", registry_tls.KEY_FILE, f"{name}:{CONFIG_DIR}/{registry_tls.KEY_FILE}"),
        docker_cmd("start", name),
    )
