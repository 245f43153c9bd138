"""One file as an image holds it, read without running anything."""

from __future__ import annotations

import io
import tarfile

import docker
import docker.errors

from labkit import engine
from labkit.engine import settings


def read_file(image: str, path: str, client: docker.DockerClient | None = None
              ) -> tuple[bytes, int] | None:
    """(bytes, modification time) of one file as ``image`` holds it, None when absent:
    ``docker container create`` + ``docker container cp``; nothing runs."""
    cli = client or engine.client()
    container = cli.containers.create(image, labels=settings().labels("inspect"))
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.next()
            handle = tar.extractfile(member) if member else None
            return (handle.read(), int(member.mtime)) if member and handle else None
    except docker.errors.NotFound:
        return None
    finally:
        container.remove(force=True)
