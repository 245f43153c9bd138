"""One learner's own Docker engine: a DinD container started before their server, removed after.

The hub calls :func:`start` from the spawner's ``pre_spawn_hook`` and :func:`stop` from its
``post_stop_hook`` (so idle culling, which stops the server, stops the engine too). Every
object made here carries the label ``org.labkit.classroom=<classroom>``: ``make
classroom-stop`` removes exactly those.

- The engine serves TLS on :2376; its client certificates are written into the volume
  ``<prefix>-<user>-certs``, which is mounted (read-only) into that learner's server only.
- Its ``/var/lib/docker`` is an ext4 file system of its own, in a sparse file of
  ``CLASSROOM_DISK`` bytes (a loop mount): a learner who fills it gets "no space left on
  device" from their own engine, and nobody else is touched.
- Its CPU and memory limits hold for the containers the learner runs inside it (see
  ``engine/classroom-engine.sh``).
- The course's images are loaded into it from this machine's engine: nothing is pulled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

LABEL = "org.labkit.classroom"
# Every image the course's set-up (labkit's prepare, in 00) checks for: a learner's engine
# has them all from the start, since it has no recipe to build them and must never pull.
COURSE_IMAGES = ("python:3.11-slim-bookworm", "registry:2", "docker:dind")
# The DinD flags that work where CAP_SYS_RESOURCE cannot be granted (see scripts/dind.sh).
# The engine stand-in is Docker 20.10, which needs no systempaths=unconfined (Docker 28 does,
# and the API has no such option: the CLI turns it into empty MaskedPaths/ReadonlyPaths).
DIND_SECURITY = ["seccomp=unconfined", "apparmor=unconfined"]


@dataclass(frozen=True)
class Plan:
    """Names and limits of one classroom (read from the CLASSROOM_* environment)."""

    classroom: str
    network: str
    state: Path
    engine_image: str
    engine_memory: str
    engine_cpus: float
    disk_bytes: int

    @classmethod
    def from_env(cls) -> Plan:
        name = os.environ["CLASSROOM_NAME"]
        return cls(
            classroom=name,
            network=f"{name}-net",
            state=Path(os.environ["CLASSROOM_STATE"]),
            engine_image=os.environ.get("CLASSROOM_ENGINE_IMAGE", f"{name}-engine:latest"),
            engine_memory=os.environ.get("CLASSROOM_ENGINE_MEMORY", "2g"),
            engine_cpus=float(os.environ.get("CLASSROOM_ENGINE_CPUS", "1")),
            disk_bytes=_bytes(os.environ.get("CLASSROOM_DISK", "10g")),
        )

    def labels(self, user: str, role: str) -> dict[str, str]:
        return {LABEL: self.classroom, f"{LABEL}.user": user, f"{LABEL}.role": role}

    def engine_name(self, user: str) -> str:
        return f"{self.classroom}-{user}-engine"

    def certs_volume(self, user: str) -> str:
        return f"{self.classroom}-{user}-certs"

    def home_volume(self, user: str) -> str:
        return f"{self.classroom}-{user}-home"

    def disk_file(self, user: str) -> Path:
        return self.state / "disks" / f"{user}.ext4"

    def disk_mount(self, user: str) -> Path:
        return self.state / "disks" / user

    def progress_dir(self, user: str) -> Path:
        return self.state / "progress" / user


def _bytes(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    text = text.strip().lower().removesuffix("b")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def _client() -> docker.DockerClient:
    cli = docker.from_env(version="auto")
    cli.api.trust_env = False
    return cli


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _mounted(path: Path) -> bool:
    return os.path.ismount(path)


def mount_disk(plan: Plan, user: str) -> Path:
    """The engine's /var/lib/docker: an ext4 file system of ``disk_bytes`` (sparse file)."""
    image, mount = plan.disk_file(user), plan.disk_mount(user)
    mount.mkdir(parents=True, exist_ok=True)
    if _mounted(mount):
        return mount
    if not image.exists():
        with open(image, "wb") as f:
            f.truncate(plan.disk_bytes)
        _run("mkfs.ext4", "-q", "-F", "-L", f"{user}-engine", str(image))
    _run("mount", "-o", "loop", str(image), str(mount))
    return mount


def unmount_disk(plan: Plan, user: str) -> None:
    mount = plan.disk_mount(user)
    if _mounted(mount):
        _run("umount", str(mount))  # the loop device is released with it (autoclear)


def _wait_engine(cli: docker.DockerClient, name: str, patience: float = 90) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        container = cli.containers.get(name)
        if container.status not in ("created", "running"):
            raise RuntimeError(f"engine {name} stopped: {container.logs(tail=20).decode()}")
        code, _ = container.exec_run(["docker", "version"])
        if code == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"engine {name} did not answer within {patience:.0f} s")


def _load_images(cli: docker.DockerClient, name: str) -> list[str]:
    container = cli.containers.get(name)
    missing = [img for img in COURSE_IMAGES
               if container.exec_run(["docker", "image", "inspect", img])[0] != 0]
    if missing:
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", name, "docker", "load", "-q"],
                       stdin=save.stdout, check=True, capture_output=True)
        if save.wait() != 0:
            raise RuntimeError(f"docker save {' '.join(missing)} failed")
    return missing


def start(plan: Plan, user: str) -> str:
    """Start (or keep) the learner's engine; returns its DOCKER_HOST."""
    cli = _client()
    name = plan.engine_name(user)
    for volume in (plan.certs_volume(user), plan.home_volume(user)):
        try:
            cli.volumes.get(volume)
        except docker.errors.NotFound:
            cli.volumes.create(volume, labels=plan.labels(user, "volume"))
    progress = plan.progress_dir(user)
    progress.mkdir(parents=True, exist_ok=True)
    os.chown(progress, 1000, 1000)  # the learner image's user
    try:
        container = cli.containers.get(name)
        if container.status != "running":
            container.remove(force=True, v=False)
            raise docker.errors.NotFound(name)
    except docker.errors.NotFound:
        disk = mount_disk(plan, user)
        cli.containers.run(
            plan.engine_image, detach=True, name=name, hostname=name,
            network=plan.network, labels=plan.labels(user, "engine"),
            cap_add=["ALL"], cap_drop=["SYS_RESOURCE"], security_opt=DIND_SECURITY,
            environment={"DOCKER_TLS_CERTDIR": "/certs"},
            volumes={"/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                     plan.certs_volume(user): {"bind": "/certs", "mode": "rw"},
                     str(disk): {"bind": "/var/lib/docker", "mode": "rw"}},
            mem_limit=plan.engine_memory, nano_cpus=int(plan.engine_cpus * 1e9),
        )
    _wait_engine(cli, name)
    _load_images(cli, name)
    return f"tcp://{name}:2376"


def stop(plan: Plan, user: str) -> None:
    """Remove the learner's engine container and release its disk; keep their volumes."""
    cli = _client()
    with contextlib.suppress(docker.errors.NotFound):
        cli.containers.get(plan.engine_name(user)).remove(force=True, v=False)
    unmount_disk(plan, user)
