"""What ``docker version`` and ``docker info`` say about the engine, and how labkit talks to it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import docker

from labkit.engine.connection import (
    CONTAINERD_SNAPSHOTTER,
    Transport,
    bind_ip,
    client,
    describe_engine,
    publish_host,
    transport,
)
from labkit.engine.error_translation import boundary


def image_store(data: dict[str, Any]) -> str:
    """``containerd`` when the engine keeps images in containerd's store, else ``graphdriver``.

    The containerd image store (Docker 29's default for new installs, Docker Desktop's)
    names ``io.containerd.snapshotter.v1`` as its driver type in ``docker info``.
    """
    status = data.get("DriverStatus") or []
    if any(len(kv) == 2 and kv[1] == CONTAINERD_SNAPSHOTTER for kv in status):
        return "containerd"
    return "graphdriver"


@dataclass(frozen=True)
class EngineInfo:
    """What `docker version` and `docker info` say about the engine, and how we talk to it."""

    host: str
    version: str
    api_version: str
    min_api_version: str
    client_api_version: str
    os: str
    arch: str
    storage_driver: str
    image_store: str
    cgroup_version: str
    images: int
    containers: int
    publish_host: str
    bind_ip: str
    transport: Transport

    @property
    def store_label(self) -> str:
        """The image store as a learner would name it."""
        if self.image_store == "containerd":
            return f"containerd image store ({self.storage_driver} snapshotter)"
        return f"{self.storage_driver} (classic image store)"


@boundary("ask the engine for its version")
def info(cli: docker.DockerClient | None = None) -> EngineInfo:
    """The engine's version, APIs, image store, how it is reached and where its ports are."""
    cli = cli or client()
    ver = cli.version()
    data = cli.info()
    return EngineInfo(
        host=describe_engine(),
        version=str(ver.get("Version", "?")),
        api_version=str(ver.get("ApiVersion", "?")),
        min_api_version=str(ver.get("MinAPIVersion", "?")),
        client_api_version=str(cli.api.api_version),
        os=str(ver.get("Os", "?")),
        arch=str(ver.get("Arch", "?")),
        storage_driver=str(data.get("Driver", "?")),
        image_store=image_store(data),
        cgroup_version=str(data.get("CgroupVersion", "?")),
        images=int(data.get("Images", 0)),
        containers=int(data.get("Containers", 0)),
        publish_host=publish_host(),
        bind_ip=bind_ip(),
        transport=transport(),
    )


def timestamp(text: str) -> datetime:
    """A time as the engine writes it (RFC 3339, nanoseconds, ``Z``), e.g. an image's
    ``Created``; to the microsecond."""
    return datetime.fromisoformat(text)


@boundary("ask the engine for its time")
def clock(cli: docker.DockerClient | None = None) -> datetime:
    """The engine's own time now (``docker info``'s SystemTime): what its records (an
    image's ``Created``) compare with, whatever this machine's clock says."""
    return timestamp(str((cli or client()).info()["SystemTime"]))
