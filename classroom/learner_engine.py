"""One learner's own Docker engine: a DinD container started before their server, removed after.

The hub calls :func:`start` from the spawner's ``pre_spawn_hook`` and :func:`stop` from its
``post_stop_hook`` (so idle culling, which stops the server, stops the engine too). Every
object made here carries the label ``org.labkit.classroom=<classroom>``: ``make
classroom-stop`` removes exactly those.

- The engine is ROOTLESS (``engine/``): its dockerd runs under rootlesskit as uid 1000, in a
  user namespace of its own, so nothing the learner runs in it (``--privileged``,
  ``--cap-add ALL``, ``-v /:/host`` included) holds a capability over this machine. The
  container itself gets no capability but SETUID and SETGID (newuidmap's), no host cgroup
  tree, and /dev/net/tun (slirp4netns). Where this machine's engine has the Sysbox runtime,
  the engine runs under it instead, as a plain (rootful) dockerd: :func:`isolation`.
- Each learner has a network of their own, ``<classroom>-<user>-net``, with only their
  engine on it; their server joins the engine's network namespace (``container:<engine>``,
  as a Kubernetes pod's containers do), so the engine is ``tcp://localhost:2376`` and the
  ports the learner publishes on 127.0.0.1 answer their server and nobody else.
- The engine serves TLS on :2376 (on the shared namespace's 127.0.0.1); its client
  certificates are written into the volume ``<prefix>-<user>-certs``, which is mounted
  (read-only) into that learner's server only.
- Its data (images, containers) is an ext4 file system of its own, in a sparse file of
  ``CLASSROOM_DISK`` bytes (a loop mount): a learner who fills it gets "no space left on
  device" from their own engine, and nobody else is touched.
- Its CPU, memory and pids limits are the engine container's: everything the learner runs
  is inside that container's cgroup, which the learner can neither see writable nor leave.
- The course's images are loaded into it from this machine's engine: nothing is pulled.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

LABEL = "org.labkit.classroom"
# Every image the course's set-up (labkit's prepare, in 00) checks for: a learner's engine
# has them all from the start, since it has no recipe to build them and must never pull.
COURSE_IMAGES = ("python:3.11-slim-bookworm", "registry:2", "docker:dind")
# What rootlesskit needs of the engine container, and nothing more:
# - seccomp and AppArmor unconfined: the default profiles refuse unshare(CLONE_NEWUSER) and
#   mount() to a process without CAP_SYS_ADMIN;
# - SETUID and SETGID only: the entrypoint's switch to uid 1000, and newuidmap/newgidmap's
#   file capabilities (everything else runs as uid 1000 with no capability at all);
# - /dev/net/tun: slirp4netns's tap device;
# - no masked or read-only /proc paths (the CLI's `systempaths=unconfined`, which the API
#   spells as empty MaskedPaths and ReadonlyPaths): the kernel lets a user namespace mount
#   a new /proc only where the container's /proc is fully visible.
ROOTLESS_SECURITY = ["seccomp=unconfined", "apparmor=unconfined"]
ROOTLESS_CAPS = ["SETUID", "SETGID"]
ROOTLESS_USER = "rootless"  # uid 1000 in the engine image
ROOTLESS_DATA = "/home/rootless/.local/share/docker"
SYSBOX = "sysbox-runc"


@dataclass(frozen=True)
class Plan:
    """Names and limits of one classroom (read from the CLASSROOM_* environment)."""

    classroom: str
    network: str  # the hub's: no container joins it; its gateway is the hub's address
    state: Path
    engine_image: str
    engine_memory: str
    engine_cpus: float
    engine_pids: int
    disk_bytes: int
    progress_bytes: int
    home_bytes: int
    learner_image: str

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
            engine_pids=int(os.environ.get("CLASSROOM_ENGINE_PIDS", "2048")),
            disk_bytes=_bytes(os.environ.get("CLASSROOM_DISK", "10g")),
            progress_bytes=_bytes(os.environ.get("CLASSROOM_PROGRESS_DISK", "16m")),
            home_bytes=_bytes(os.environ.get("CLASSROOM_HOME_DISK", "2g")),
            learner_image=os.environ.get("CLASSROOM_LEARNER_IMAGE", f"{name}-learner:latest"),
        )

    def labels(self, user: str, role: str) -> dict[str, str]:
        return {LABEL: self.classroom, f"{LABEL}.user": user, f"{LABEL}.role": role}

    def engine_name(self, user: str) -> str:
        return f"{self.classroom}-{user}-engine"

    def learner_network(self, user: str) -> str:
        return f"{self.classroom}-{user}-net"

    def certs_volume(self, user: str) -> str:
        return f"{self.classroom}-{user}-certs"

    def home_disk(self, user: str) -> Path:
        return self.state / "disks" / f"{user}.home.ext4"  # '.': in no learner's name

    def home_dir(self, user: str) -> Path:
        return self.state / "disks" / f"{user}.home"

    def disk_file(self, user: str) -> Path:
        return self.state / "disks" / f"{user}.ext4"

    def disk_mount(self, user: str) -> Path:
        return self.state / "disks" / user

    def progress_dir(self, user: str) -> Path:
        return self.state / "progress" / user

    def progress_disk(self, user: str) -> Path:
        return self.state / "progress-disks" / f"{user}.ext4"


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


def _loop_fs(image: Path, mount: Path, size: int, label: str, options: str = "") -> bool:
    """An ext4 file system of ``size`` bytes in the sparse file ``image``, mounted at
    ``mount`` (kept if it already is); True when it was made just now (then empty)."""
    mount.mkdir(parents=True, exist_ok=True)
    if _mounted(mount):
        return False
    image.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    made = not image.exists()
    if made:
        with open(image, "wb") as f:
            f.truncate(size)
        _run("mkfs.ext4", "-q", "-F", "-L", label, str(image))
    _run("mount", "-o", ",".join(filter(None, ("loop", options))), str(image), str(mount))
    if made:
        with contextlib.suppress(FileNotFoundError):
            os.rmdir(mount / "lost+found")
    return made


def mount_disk(plan: Plan, user: str, owner: int = 0) -> Path:
    """The engine's data: an ext4 file system of ``disk_bytes`` (sparse file), its root
    directory owned by ``owner`` (the rootless engine's uid 1000)."""
    mount = plan.disk_mount(user)
    _loop_fs(plan.disk_file(user), mount, plan.disk_bytes, f"{user}-engine")
    os.chown(mount, owner, owner)
    return mount


def mount_progress(plan: Plan, user: str) -> Path:
    """The learner's progress folder: an ext4 file system of ``progress_bytes`` of its own
    (a learner writes that file as they like: filling it fills nothing else). It stays
    mounted while the classroom runs, so the instructor's table keeps a culled learner's
    records; the file is kept until ``make classroom-stop CLEAN=1``."""
    mount = plan.progress_dir(user)
    _loop_fs(plan.progress_disk(user), mount, plan.progress_bytes, f"{user}-progress",
             "nodev,nosuid,noexec")
    return mount


def mount_home(plan: Plan, user: str, cli: docker.DockerClient) -> Path:
    """The learner's home in their server: an ext4 file system of ``home_bytes`` of its own
    (so their work, and whatever they write there, fills nothing else), made at their first
    start with what the course image has in /home/learner (the notebooks). It stays mounted
    while the classroom runs, so a culled learner who comes back finds their work."""
    mount = plan.home_dir(user)
    if _loop_fs(plan.home_disk(user), mount, plan.home_bytes, f"{user}-home", "nodev,nosuid"):
        _copy_home(cli, plan.learner_image, mount)
    return mount


def _copy_home(cli: docker.DockerClient, image: str, mount: Path) -> None:
    """/home/learner of ``image`` into ``mount``, owners and modes kept."""
    container = cli.containers.create(image, command=["true"], network_disabled=True)
    try:
        stream, _ = container.get_archive("/home/learner")
        with tempfile.TemporaryFile() as tar:
            for chunk in stream:
                tar.write(chunk)
            tar.seek(0)
            with tarfile.open(fileobj=tar) as archive:
                members = []
                for member in archive.getmembers():  # "learner/x" → "x"
                    head, _, rest = member.name.partition("/")
                    if head == "learner" and rest:
                        member.name = rest
                        members.append(member)
                archive.extractall(mount, members=members, filter="tar")
    finally:
        container.remove(force=True)
    os.chown(mount, 1000, 1000)  # the learner image's user
    os.chmod(mount, 0o755)


def unmount_disk(plan: Plan, user: str) -> None:
    mount = plan.disk_mount(user)
    if _mounted(mount):
        _run("umount", str(mount))  # the loop device is released with it (autoclear)


def isolation(cli: docker.DockerClient) -> str:
    """``sysbox-runc`` where this machine's engine has the Sysbox runtime (the engine then
    runs as a plain dockerd in a container Sysbox isolates), else ``rootless``."""
    runtimes = cli.info().get("Runtimes") or {}
    return SYSBOX if SYSBOX in runtimes else "rootless"


@dataclass(frozen=True)
class EngineSettings:
    """How the engine container is made and reached, for one kind of isolation."""

    mode: str
    data_dir: str  # where the engine keeps images and containers (the loop-mounted disk)
    owner: int  # the uid that owns that disk's root
    exec_user: str  # who `docker exec <engine> docker ...` runs as
    environment: dict[str, str]
    host_config: dict[str, Any]  # create_host_config() arguments beyond mounts and limits
    raw_host_config: dict[str, Any]  # HostConfig fields docker-py has no argument for


def engine_settings(mode: str) -> EngineSettings:
    if mode == SYSBOX:  # documented, not tested here (no Sysbox on the test machine)
        return EngineSettings(
            mode=mode, data_dir="/var/lib/docker", owner=0, exec_user="root",
            environment={"CLASSROOM_ENGINE_ROOTFUL": "1",
                         "DOCKER_HOST": "unix:///var/run/docker.sock"},
            host_config={"runtime": SYSBOX}, raw_host_config={})
    return EngineSettings(
        mode=mode, data_dir=ROOTLESS_DATA, owner=1000, exec_user=ROOTLESS_USER,
        environment={},
        host_config={"cap_drop": ["ALL"], "cap_add": ROOTLESS_CAPS,
                     "security_opt": ROOTLESS_SECURITY,
                     "devices": ["/dev/net/tun:/dev/net/tun:rwm"]},
        raw_host_config={"MaskedPaths": [], "ReadonlyPaths": []})


def _wait_engine(cli: docker.DockerClient, name: str, user: str, patience: float = 90) -> None:
    deadline = time.monotonic() + patience
    while time.monotonic() < deadline:
        container = cli.containers.get(name)
        if container.status not in ("created", "running"):
            raise RuntimeError(f"engine {name} stopped: {container.logs(tail=20).decode()}")
        code, _ = container.exec_run(["docker", "version"], user=user)
        if code == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(f"engine {name} did not answer within {patience:.0f} s")


def _load_images(cli: docker.DockerClient, name: str, user: str) -> list[str]:
    container = cli.containers.get(name)
    missing = [img for img in COURSE_IMAGES
               if container.exec_run(["docker", "image", "inspect", img], user=user)[0] != 0]
    if missing:
        save = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        subprocess.run(["docker", "exec", "-i", "-u", user, name, "docker", "load", "-q"],
                       stdin=save.stdout, check=True, capture_output=True)
        if save.wait() != 0:
            raise RuntimeError(f"docker save {' '.join(missing)} failed")
    return missing


def _ensure_network(cli: docker.DockerClient, plan: Plan, user: str) -> str:
    name = plan.learner_network(user)
    try:
        cli.networks.get(name)
    except docker.errors.NotFound:
        cli.networks.create(name, driver="bridge", labels=plan.labels(user, "network"))
    return name


def _create_engine(cli: docker.DockerClient, plan: Plan, user: str,
                   settings: EngineSettings, disk: Path) -> None:
    """The engine container, through the low-level API: docker-py's create_host_config()
    has no argument for MaskedPaths/ReadonlyPaths, so they are added to its result."""
    api = cli.api
    name = plan.engine_name(user)
    network = _ensure_network(cli, plan, user)
    host_config = api.create_host_config(
        binds={plan.certs_volume(user): {"bind": "/certs", "mode": "rw"},
               str(disk): {"bind": settings.data_dir, "mode": "rw"}},
        network_mode=network, mem_limit=plan.engine_memory,
        nano_cpus=int(plan.engine_cpus * 1e9), pids_limit=plan.engine_pids,
        **settings.host_config)
    host_config.update(settings.raw_host_config)
    created = api.create_container(
        plan.engine_image, name=name, hostname=name, detach=True,
        labels=plan.labels(user, "engine"),
        environment={"DOCKER_TLS_CERTDIR": "/certs", **settings.environment},
        volumes=["/certs", settings.data_dir], host_config=host_config)
    api.start(created["Id"])


def start(plan: Plan, user: str) -> str:
    """Start (or keep) the learner's engine; returns its DOCKER_HOST, as their server (in
    the engine's network namespace) reaches it."""
    cli = _client()
    settings = engine_settings(isolation(cli))
    name = plan.engine_name(user)
    try:
        cli.volumes.get(plan.certs_volume(user))
    except docker.errors.NotFound:
        cli.volumes.create(plan.certs_volume(user), labels=plan.labels(user, "volume"))
    mount_home(plan, user, cli)
    progress = mount_progress(plan, user)
    os.chown(progress, 1000, 1000)  # the learner image's user
    # the progress service reads it as nobody: it may enter the folder of folders (not list
    # it) and read each learner's folder, whatever the hub's umask
    os.chmod(progress.parent, 0o711)
    os.chmod(progress, 0o755)
    try:
        container = cli.containers.get(name)
        if container.status != "running":
            container.remove(force=True, v=True)  # v: its anonymous volume only
            raise docker.errors.NotFound(name)
    except docker.errors.NotFound:
        disk = mount_disk(plan, user, owner=settings.owner)
        _create_engine(cli, plan, user, settings, disk)
    _wait_engine(cli, name, settings.exec_user)
    _load_images(cli, name, settings.exec_user)
    return "tcp://localhost:2376"


def engine_ip(plan: Plan, user: str) -> str:
    """The engine's address on the learner's network: where the hub reaches their server."""
    data = _client().api.inspect_container(plan.engine_name(user))
    return str(data["NetworkSettings"]["Networks"][plan.learner_network(user)]["IPAddress"])


def stop(plan: Plan, user: str) -> None:
    """Remove the learner's engine container and network, and release its disk; keep their
    volumes (``v=True`` removes only the anonymous one the stand-in's ``VOLUME
    /var/lib/docker`` makes, which the rootless engine does not use)."""
    cli = _client()
    with contextlib.suppress(docker.errors.NotFound):
        cli.containers.get(plan.engine_name(user)).remove(force=True, v=True)
    with contextlib.suppress(docker.errors.NotFound):
        cli.networks.get(plan.learner_network(user)).remove()
    unmount_disk(plan, user)
