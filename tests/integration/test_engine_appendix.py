"""What 00's appendix ("your engine") says about image IDs and `docker save`, checked on
the engine under test: a tiny image built as the course builds, then saved."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import docker
import pytest

from labkit import images
from labkit.engine import engine_info
from labkit.engine.config import Settings

SUFFIX = "appx"
INDEX = "application/vnd.oci.image.index.v1+json"
MANIFESTS = ("application/vnd.oci.image.manifest.v1+json",
             "application/vnd.docker.distribution.manifest.v2+json")


def saved(client: docker.DockerClient, ref: str) -> dict[str, bytes]:
    """The small files of ``docker image save REF`` (every file; the image is tiny)."""
    data = b"".join(client.api.get_image(ref))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()  # type: ignore[union-attr]
                if m.isfile()}


def major(version: str) -> int:
    return int(version.split(".", 1)[0])


@pytest.mark.parametrize("builder", ["default", "classic"])
def test_image_id_and_save_layout_are_as_the_appendix_says(
        ns: Settings, client: docker.DockerClient, tmp_path: Path, builder: str) -> None:
    (tmp_path / "hello.txt").write_text(f"{ns.namespace} {builder}\n")
    (tmp_path / "Dockerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
    result = images.build(tmp_path, "appendix-probe", tag=builder, show=False, client=client,
                          builder=None if builder == "default" else "classic")
    info = engine_info.info(client)
    image_id = client.api.inspect_image(result.tag)["Id"]
    files = saved(client, result.tag)
    try:
        if major(info.version) >= 25:  # an OCI layout on either store, manifest.json beside it
            assert {"index.json", "oci-layout", "manifest.json"} <= set(files)
        else:
            assert "manifest.json" in files
            assert "index.json" not in files
        if info.image_store == "containerd":  # the ID is the top-level descriptor's digest
            (top,) = json.loads(files["index.json"])["manifests"]
            assert top["digest"] == image_id
            if result.builder.buildkit:  # BuildKit adds a provenance record: an index
                assert top["mediaType"] == INDEX
            else:
                assert top["mediaType"] in MANIFESTS
        else:  # the classic store: the ID is the digest of the image's configuration
            (entry,) = json.loads(files["manifest.json"])
            config = files[entry["Config"]]
            assert f"sha256:{hashlib.sha256(config).hexdigest()}" == image_id
    finally:
        client.api.remove_image(result.tag, force=True)
