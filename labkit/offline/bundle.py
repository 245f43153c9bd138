"""Image bundles for classrooms without Wi-Fi: every course image in one file, checksummed.

``export_bundle(FILE)`` writes what ``docker image save IMAGE...`` writes (so
``docker load -i FILE`` works too) and ``FILE.sha256`` beside it, in ``sha256sum`` format
(``sha256sum -c FILE.sha256`` checks it). ``load_bundle(FILE)`` checks the checksum
before the engine sees a byte, loads the file and checks that every course image arrived.
Progress goes to an observer, ``on_progress(done_bytes, total_bytes)``: the caller
chooses how to show it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import docker

from labkit import engine
from labkit.engine import DockerCommand, PrepareError
from labkit.engine import docker as docker_cmd
from labkit.images import image_exists

OnProgress = Callable[[int, int], None]
CHUNK = 1 << 20
#: The images a bundle carries: everything `labkit prepare` makes.
BUNDLE_IMAGES = (engine.BASE_IMAGE, engine.REGISTRY_IMAGE, engine.DIND_IMAGE)


@dataclass(frozen=True)
class BundleResult:
    """A bundle written or loaded: its file, size, checksum and images."""

    path: Path
    size: int
    sha256: str
    images: tuple[str, ...]
    command: DockerCommand


def checksum_path(path: Path) -> Path:
    """Where the checksum of ``path`` lives: ``FILE.sha256``."""
    return path.with_name(path.name + ".sha256")


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    if client is not None:
        return client
    from labkit.engine import client as engine_client

    return engine_client()


def _save_stream(cli: docker.DockerClient, names: Iterable[str]) -> Iterator[bytes]:
    """``GET /images/get?names=…``: one archive for several images, shared layers once
    (docker-py's public ``get_image`` saves one image only)."""
    api = cli.api
    response = api._get(api._url("/images/get"), params={"names": list(names)}, stream=True)
    api._raise_for_status(response)
    yield from response.iter_content(CHUNK)


def export_bundle(path: str | Path, *, images: Iterable[str] = BUNDLE_IMAGES,
                  client: docker.DockerClient | None = None,
                  on_progress: OnProgress | None = None) -> BundleResult:
    """Save the course images to ``path`` and their checksum to ``path.sha256``."""
    cli = _client(client)
    names = tuple(images)
    total = 0
    for name in names:
        try:
            total += int(cli.images.get(name).attrs.get("Size", 0))
        except docker.errors.ImageNotFound:
            raise PrepareError(f"{name} is not on the engine, so it cannot be bundled.",
                               "Run `labkit prepare` first.") from None
    target = Path(path)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    done = 0
    try:
        with partial.open("wb") as out:
            for chunk in _save_stream(cli, names):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if on_progress is not None:
                    on_progress(done, max(total, done))
        os.replace(partial, target)
    except docker.errors.APIError as exc:
        raise PrepareError(f"The engine could not save the images: {exc.explanation or exc}",
                           "Check `labkit doctor`, then try again.") from None
    finally:
        partial.unlink(missing_ok=True)
    checksum_path(target).write_text(f"{digest.hexdigest()}  {target.name}\n")
    return BundleResult(target, done, digest.hexdigest(), names,
                        docker_cmd("image", "save", "-o", target.name, *names))


class _Reader:
    """A file read in chunks for the engine, reporting progress; sized for requests."""

    def __init__(self, path: Path, on_progress: OnProgress | None) -> None:
        self.file = path.open("rb")
        self.size = path.stat().st_size
        self.done = 0
        self.on_progress = on_progress

    def __len__(self) -> int:
        return self.size

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(CHUNK if n is None or n < 0 else n)
        self.done += len(data)
        if self.on_progress is not None and data:
            self.on_progress(self.done, self.size)
        return data

    def close(self) -> None:
        self.file.close()


def file_sha256(path: Path, on_progress: OnProgress | None = None) -> str:
    """The SHA-256 of a file, read in chunks."""
    digest, done, size = hashlib.sha256(), 0, path.stat().st_size
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
            done += len(block)
            if on_progress is not None:
                on_progress(done, size)
    return digest.hexdigest()


def expected_sha256(path: Path) -> str:
    """The checksum recorded beside the bundle (refusing clearly when there is none)."""
    sums = checksum_path(path)
    try:
        text = sums.read_text().split()
    except OSError:
        raise PrepareError(f"{sums.name} is missing: the bundle cannot be checked.",
                           "Copy it with the bundle (`labkit bundle export` writes both).",
                           ) from None
    if not text or len(text[0]) != 64:
        raise PrepareError(f"{sums.name} holds no SHA-256 checksum.",
                           "Export the bundle again (`labkit bundle export FILE`).")
    return text[0].lower()


def load_bundle(path: str | Path, *, images: Iterable[str] = BUNDLE_IMAGES,
                client: docker.DockerClient | None = None,
                on_progress: OnProgress | None = None,
                on_stage: Callable[[str], None] | None = None) -> BundleResult:
    """Check a bundle against its checksum, load it, and check every course image arrived."""
    cli = _client(client)
    source = Path(path)
    if not source.is_file():
        raise PrepareError(f"There is no bundle at {source}.",
                           "Give the file `labkit bundle export` wrote.")
    stage = on_stage or (lambda text: None)
    stage("checking the checksum")
    want = expected_sha256(source)
    got = file_sha256(source, on_progress)
    if got != want:
        raise PrepareError(f"{source.name} does not match its checksum: it is damaged or "
                           "incomplete.", "Copy the bundle again, then retry.")
    stage("loading the images into the engine")
    reader = _Reader(source, on_progress)
    try:
        for chunk in cli.api.load_image(reader, quiet=True):
            if isinstance(chunk, dict) and chunk.get("error"):
                raise PrepareError(f"The engine refused the bundle: {chunk['error']}",
                                   "Check `labkit doctor`, then retry.")
    except docker.errors.APIError as exc:
        raise PrepareError(f"The engine refused the bundle: {exc.explanation or exc}",
                           "Check `labkit doctor`, then retry.") from None
    finally:
        reader.close()
    names = tuple(images)
    missing = [n for n in names if not image_exists(n, client=cli)]
    if missing:
        raise PrepareError(f"The bundle did not contain {', '.join(missing)}.",
                           "Export it again from a machine where `labkit prepare` ran.")
    return BundleResult(source, reader.size, got, names,
                        docker_cmd("image", "load", "-i", source.name))
