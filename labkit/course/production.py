"""Step 10, a production Dockerfile: its own folder (with a secret and notes a build must not
see), a command run once in an image, exact pins read from an image, and the base image
pinned by a manifest digest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from labkit import engine, images, registry
from labkit.course.workspace import WORKSPACE, app_source
from labkit.engine import (
    BASE_IMAGE,
    LABEL_STANDIN,
    CommandOutput,
    DockerCommand,
    LabkitError,
    boundary,
    settings,
)
from labkit.engine import docker as docker_cmd

PRODUCTION = WORKSPACE / "production"
MESSAGE = "hello from a production image!"
SECRET = ".env"
NOTES_FILE = "notes/recording.bin"
NOTES_BYTES = 4 * 1024 * 1024
_PUSHED = ("no registry digest on this engine (built here, never pulled): pushed to your "
           "registry, whose manifest digest is the pin")
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^=\s;]+)$")


def write_folder(folder: Path = PRODUCTION) -> Path:
    """The app's folder as a real project has it: ``app.py``, a ``.env`` with a (fake)
    secret and a ``notes/`` folder of 4 MiB, and no ``.dockerignore`` yet (one is removed).
    Files whose content is already right are left as they are."""
    _write(folder / "app.py", app_source(MESSAGE).encode())
    _write(folder / SECRET, b"API_TOKEN=not-a-real-token-but-it-could-have-been\n")
    _write(folder / NOTES_FILE, bytes(range(256)) * (NOTES_BYTES // 256))
    (folder / ".dockerignore").unlink(missing_ok=True)
    return folder


def pin_from(base: PinnedBase, folder: Path = PRODUCTION) -> str:
    """Rewrite ``folder/Dockerfile`` so that every ``FROM`` of ``base.image`` names its
    digest (``FROM python:3.11-slim-bookworm@sha256:...``); returns the new text."""
    path = folder / "Dockerfile"
    pattern = re.compile(rf"^(FROM\s+(?:--\S+\s+)*){re.escape(base.image)}(?=\s|$)",
                         re.IGNORECASE | re.MULTILINE)
    text = pattern.sub(lambda m: m.group(1) + base.reference, path.read_text())
    _write(path, text.encode())
    return text


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != data:
        path.write_bytes(data)


# --------------------------------------------------------------------------- one command
@dataclass(frozen=True)
class RunOnce:
    """A command run once in a new container of an image: its exit code and output."""

    exit_code: int
    output: str
    command: DockerCommand

    def __str__(self) -> str:
        return self.output

    def _repr_markdown_(self) -> str:
        return str(CommandOutput(self.output, self.command)._repr_markdown_())


@boundary("run a command in the image")
def run_once(image: str, *argv: str, client: docker.DockerClient | None = None) -> RunOnce:
    """``docker run --rm IMAGE ARGV...``: the exit code and what it printed (stdout and
    stderr). The container carries labkit's labels and is removed after."""
    cli = client or engine.client()
    container = cli.containers.create(image, list(argv), labels=settings().labels("inspect"))
    try:
        container.start()
        code = int(container.wait(timeout=60).get("StatusCode", -1))
        out = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
    finally:
        container.remove(force=True)
    return RunOnce(code, out, docker_cmd("run", "--rm", image, *argv))


@boundary("look for files in the image")
def present(image: str, *paths: str, client: docker.DockerClient | None = None
            ) -> dict[str, bool]:
    """Whether each path (a file or a folder) is in the image, as the engine's archive API
    answers for a created, never started container (what ``docker container cp`` asks)."""
    cli = client or engine.client()
    container = cli.containers.create(image, labels=settings().labels("inspect"))
    url = f"{cli.api.base_url}/v{cli.api.api_version}/containers/{container.id}/archive"
    try:
        found = {}
        for path in paths:
            answer = cli.api.head(url, params={"path": path})
            if answer.status_code not in (200, 404):
                answer.raise_for_status()
            found[path] = answer.status_code == 200
        return found
    finally:
        container.remove(force=True)


def parse_pins(text: str) -> dict[str, str]:
    """``{name: version}`` of ``pip freeze`` / requirements lines ``name==version``; names
    lower-cased with ``_`` as ``-`` (as pip compares them). Other lines are left out."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        found = _PIN.match(line.strip())
        if found:
            pins[found.group(1).lower().replace("_", "-")] = found.group(2)
    return pins


def freeze(image: str, client: docker.DockerClient | None = None) -> CommandOutput:
    """``pip freeze`` in the image: every installed package, pinned with ``==`` (shown with
    its ``docker run`` line). pip's check for a newer pip, a request to PyPI, is skipped."""
    ran = run_once(image, "pip", "freeze", "--disable-pip-version-check", client=client)
    if ran.exit_code != 0:
        raise LabkitError(f"`pip freeze` failed in {image} (exit {ran.exit_code}): "
                          f"{ran.output.strip()[-300:]}", "Build the image first.")
    return CommandOutput(ran.output, ran.command)


def layers(image: str, client: docker.DockerClient | None = None) -> list[str]:
    """The image's layers as diff IDs, bottom first (``RootFS.Layers``)."""
    return list(images.get_image(image, client=client).attrs.get("RootFS", {}).get("Layers")
                or [])


# --------------------------------------------------------------------------- the base's digest
@dataclass(frozen=True)
class PinnedBase:
    """The base image as a ``FROM`` line can pin it: the reference with its digest, where
    the digest comes from, and the base's layers (diff IDs, bottom first)."""

    image: str
    reference: str
    digest: str
    source: str
    layers: tuple[str, ...]
    command: DockerCommand

    def _repr_markdown_(self) -> str:
        return (f"```bash\n$ {self.command}\n```\n`FROM {self.reference}`\n\n"
                f"Where the digest comes from: {self.source}.")


@boundary("pin the base image")
def pin_base(image: str = BASE_IMAGE, client: docker.DockerClient | None = None) -> PinnedBase:
    """``image`` pinned by its manifest digest, read from the engine (``RepoDigests``).

    An image pulled from a registry has the registry's digest. The course's stand-in base,
    built on this machine, has one only on the containerd image store (every image there has
    a manifest, which no registry serves). On the classic store it has none: it is pushed to
    your local registry, whose digest is then the pin (``<registry>/<user>/python@sha256:...``).
    """
    cli = client or engine.client()
    base = images.get_image(image, client=cli)
    layers = tuple(base.attrs.get("RootFS", {}).get("Layers") or [])
    repo, _, tag = image.rpartition(":") if ":" in image.split("/")[-1] else (image, "", "latest")
    inspect = docker_cmd("image", "inspect", "--format", "{{json .RepoDigests}}", image)
    standin = (base.labels or {}).get(LABEL_STANDIN) == "true"
    for found in base.attrs.get("RepoDigests") or []:
        name, _, digest = found.partition("@")
        if _same_repository(name, repo):
            source = ("the stand-in's own manifest (containerd store): no registry has it"
                      if standin else "the registry's manifest, recorded when it was pulled")
            return PinnedBase(image, f"{image}@{digest}", digest, source, layers, inspect)
    local = registry.find_registry(client=cli)
    if local is not None:  # pushed there by an earlier run: the engine kept its digest
        mine = local.repository(repo.split("/")[-1])
        for found in base.attrs.get("RepoDigests") or []:
            name, _, digest = found.partition("@")
            if name == mine:
                return PinnedBase(image, f"{mine}@{digest}", digest, _PUSHED, layers, inspect)
    reg = registry.start_registry(client=cli)
    registry.login(reg, client=cli)
    tagged = registry.tag_for_registry(image, repo.split("/")[-1], tag=tag, registry=reg,
                                       client=cli)
    pushed = registry.push(tagged.repository, tagged.tag, registry=reg, client=cli, show=False)
    if not pushed.digest:
        raise LabkitError(f"The registry gave no digest for {tagged.repository}:{tag}.",
                          "Run the cell again; if it persists, restart the registry "
                          "(`labkit registry start`).")
    return PinnedBase(image, f"{tagged.repository}@{pushed.digest}", pushed.digest, _PUSHED,
                      layers, docker_cmd("push", f"{tagged.repository}:{tag}"))


def _same_repository(name: str, repo: str) -> bool:
    """``docker.io/library/python`` and ``python`` name the same repository."""
    def norm(n: str) -> str:
        n = n.removeprefix("docker.io/")
        return n.removeprefix("library/")
    return norm(name) == norm(repo)
