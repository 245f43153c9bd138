"""The bytes a clean-up frees, predicted per layer, against what the engine frees.

Two images on the base image share a 20 MB layer and have 5 MB of their own each: removing
both frees 30 MB of layers (the shared one once, the base not at all), not the 2 x 35 MB
plus twice the base that adding up their sizes says. The data is random, so no store
compresses it.

How the engine's side is measured:
- the classic image store (overlay2): the image prune's own ``SpaceReclaimed``, which the
  engine adds up from the layers it released; within 2 % and 64 kB of the prediction. The
  images are built there by the classic builder: BuildKit's build cache on that store
  holds the layers it built as well, so removing the images frees nothing until the cache
  goes (measured on 28.5: the image prune reclaimed 0 bytes, `docker builder prune`
  30,000,132), and a whole-cache prune would take other tests' records too;
- the containerd image store: its prune reports only the manifests it deleted, so the
  test reads ``docker system df``'s ``LayersSize`` before and after. That store keeps each
  layer twice (unpacked, and its packed blob): the drop lies between the prediction and
  2.2 times it plus 4 MB (other learners may build meanwhile on a shared engine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import docker
import pytest

from labkit import engine
from labkit.cleanup import freed
from labkit.engine import BASE_IMAGE, config
from labkit.engine.engine_info import image_store

pytestmark = pytest.mark.integration
MB = 1_000_000
DOCKERFILE = f"""FROM {BASE_IMAGE}
RUN head -c {20 * MB} /dev/urandom > /shared.bin
ARG N
RUN head -c {5 * MB} /dev/urandom > /own-$N.bin
"""


def build(folder: Path, tag: str, n: int, label: str, classic: bool) -> str:
    """``docker build`` as a learner types it (BuildKit where the CLI has buildx), or with
    the classic builder (``DOCKER_BUILDKIT=0``)."""
    assert shutil.which("docker"), "this test builds with the docker CLI"
    env = {**os.environ, **({"DOCKER_BUILDKIT": "0"} if classic else {})}
    done = subprocess.run(["docker", "build", "-q", "--label", label, "--build-arg",
                           f"N={n}", "-t", tag, str(folder)], capture_output=True, text=True,
                          timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_bytes_freed_are_each_layer_once_as_the_engine_frees_them(
        client: docker.DockerClient, settings: config.Settings, tmp_path: Path) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    marker = f"org.labkit.test-freed={uuid.uuid4().hex[:12]}"
    tags = [f"{settings.namespace}/freed:{n}" for n in (1, 2)]  # the reaper's, if it fails
    store = image_store(client.info())
    ids = [build(tmp_path, tag, n, marker, classic=store != "containerd")
           for n, tag in enumerate(tags, 1)]
    stacks = [freed.stack_of(i, client) for i in ids]
    assert all(s is not None for s in stacks)
    others = [i["Id"] for i in client.api.images() if i["Id"] not in ids]
    counted = freed.freed([s for s in stacks if s is not None],
                          [freed.chains_of(i, client) for i in others])
    assert 30 * MB <= counted.bytes <= 30 * MB + 512 * 1024, counted
    assert counted.layers == 3
    assert counted.sizes_added > 2 * 25 * MB + counted.bytes  # the base, once per image

    before = int(engine.df(client).get("LayersSize") or 0)
    answer = client.api.prune_images(filters={"label": [marker], "dangling": False})
    after = int(engine.df(client).get("LayersSize") or 0)
    assert not {i for i in ids if _exists(client, i)}, answer
    if store == "containerd":
        drop = before - after
        assert counted.bytes * 0.95 <= drop <= counted.bytes * 2.2 + 4 * MB, (drop, counted)
    else:
        reclaimed = int(answer.get("SpaceReclaimed") or 0)
        assert abs(reclaimed - counted.bytes) <= counted.bytes * 0.02 + 64 * 1024, (
            reclaimed, counted)


def _exists(client: docker.DockerClient, ident: str) -> bool:
    try:
        client.api.inspect_image(ident)
    except docker.errors.NotFound:
        return False
    return True
