"""Image bundles against the real engine: save, check, remove, load back the same image."""

from __future__ import annotations

import contextlib
import io
import tarfile
from pathlib import Path

import docker
import pytest

from labkit.engine import config
from labkit.engine.errors import PrepareError
from labkit.offline import bundle

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def probe(client: docker.DockerClient, settings: config.Settings):
    """A small image of this session (one label on the base): what the bundle carries."""
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = f"FROM {config.BASE_IMAGE}\nLABEL probe=bundle\n".encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    tag = settings.image_name("bundle-probe") + ":latest"
    image, _ = client.images.build(fileobj=context, custom_context=True, tag=tag, pull=False,
                                   labels=settings.labels("bundle"), rm=True)
    yield tag, image.id
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, force=True)


def test_a_bundle_loads_back_the_image_it_saved(probe, client, tmp_path: Path) -> None:
    tag, image_id = probe
    seen: list[tuple[int, int]] = []
    saved = bundle.export_bundle(tmp_path / "course.tar", images=[tag], client=client,
                                 on_progress=lambda d, t: seen.append((d, t)))
    assert saved.size == (tmp_path / "course.tar").stat().st_size
    assert bundle.checksum_path(saved.path).read_text().split() == [saved.sha256, "course.tar"]
    assert seen and seen[-1][0] == saved.size
    client.images.remove(tag)
    loaded = bundle.load_bundle(saved.path, images=[tag], client=client)
    assert loaded.sha256 == saved.sha256
    assert client.images.get(tag).id == image_id


def test_a_damaged_bundle_is_refused_before_the_engine_sees_it(probe, client,
                                                                tmp_path: Path) -> None:
    tag, _ = probe
    saved = bundle.export_bundle(tmp_path / "course.tar", images=[tag], client=client)
    with saved.path.open("r+b") as f:
        f.seek(saved.size // 2)
        byte = f.read(1)
        f.seek(saved.size // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(PrepareError, match="does not match its checksum"):
        bundle.load_bundle(saved.path, images=[tag], client=client,
                           on_stage=lambda text: None)


def test_bundling_a_missing_image_says_to_prepare_first(client, tmp_path: Path) -> None:
    with pytest.raises(PrepareError, match="not on the engine") as caught:
        bundle.export_bundle(tmp_path / "x.tar", images=["labkit-never/built:1"],
                             client=client)
    assert "labkit prepare" in (caught.value.hint or "")
    assert not (tmp_path / "x.tar").exists()
