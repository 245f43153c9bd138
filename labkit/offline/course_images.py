"""Make every course image present on the engine: already there, pulled, or an offline stand-in.

Pulling is the default; when a pull fails, or offline (``LABKIT_OFFLINE=1``; a CI run is
not offline by itself), each missing image is built from Debian packages instead and
labelled ``org.labkit.standin=true``:

- the base (``python:3.11-slim-bookworm``): built in layers like the official image
  (:mod:`labkit.offline.base_image`): Debian bookworm minbase, then python3, then pip
  (layer tarballs made by :mod:`labkit.offline.debian_rootfs` with mmdebstrap, with or
  without root, and cached), then the official ``ENV`` and ``CMD``, a ``python`` command
  and no EXTERNALLY-MANAGED marker
  (so ``RUN pip install flask`` works as in the official image);
- the registry (``registry:2``) and Docker-in-Docker (``docker:dind``) images: the
  Dockerfiles in the repository's ``images/`` directory, built on that base with the
  legacy builder (never pulling).

``trust_host_ca`` (``LABKIT_TRUST_HOST_CA=1``) copies the host's CA bundle into the base,
in steps of its own, for networks whose TLS-inspecting gateway would otherwise break
``pip install``.
"""

from __future__ import annotations

import io
import sys
import tarfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import docker

from labkit import engine
from labkit.engine import DockerCommand, ImageMissing, PrepareError
from labkit.engine import docker as docker_cmd
from labkit.offline.base_image import build_base as build_layered_base
from labkit.offline.base_image import follow_build, standin_labels

if TYPE_CHECKING:
    import pandas as pd

RECIPES = Path(__file__).resolve().parents[2] / "images"

Progress = Callable[[str, str], None]
#: a built stand-in: the docker-py Image and the equivalent command
Built = tuple[docker.models.images.Image, DockerCommand]


@dataclass(frozen=True)
class CourseImage:
    """One image the course needs, and the role its stand-in is labelled with."""

    name: str
    role: str
    recipe: str | None = None  # directory under images/ (None: the layered base)

    @property
    def repository(self) -> str:
        return self.name.rsplit(":", 1)[0]

    @property
    def tag(self) -> str:
        return self.name.rsplit(":", 1)[1]


COURSE_IMAGES: tuple[CourseImage, ...] = (
    CourseImage(engine.BASE_IMAGE, "base"),
    CourseImage(engine.REGISTRY_IMAGE, "registry-image", "registry"),
    CourseImage(engine.DIND_IMAGE, "dind-image", "dind"),
)


class ProgressPrinter:
    """Default progress: one line per stage, with the time since preparation started."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self.start = time.monotonic()

    def __call__(self, image: str, stage: str) -> None:
        elapsed = time.monotonic() - self.start
        print(f"[{elapsed:6.1f} s] {image}: {stage}", file=self.stream or sys.stdout, flush=True)


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    if client is not None:
        return client
    from labkit.engine import client as engine_client

    return engine_client()


def _find(client: docker.DockerClient, name: str) -> docker.models.images.Image | None:
    try:
        return client.images.get(name)
    except docker.errors.ImageNotFound:
        return None


def image_status(client: docker.DockerClient | None = None) -> pd.DataFrame:
    """Which course images the engine has: image, role, present, standin, id, size (bytes)."""
    import pandas as pd
    cli = _client(client)
    rows = []
    for spec in COURSE_IMAGES:
        img = _find(cli, spec.name)
        labels = (img.labels or {}) if img is not None else {}
        rows.append({
            "image": spec.name,
            "role": spec.role,
            "present": img is not None,
            "standin": labels.get(engine.LABEL_STANDIN) == "true",
            "id": img.short_id.split(":", 1)[-1] if img is not None else None,
            "size": int(img.attrs.get("Size", 0)) if img is not None else 0,
        })
    return pd.DataFrame(rows)


def prepare(*, offline: bool | None = None, trust_host_ca: bool | None = None,
            images: Iterable[str] | None = None, client: docker.DockerClient | None = None,
            progress: Progress | None = None, cache_dir: Path | None = None) -> pd.DataFrame:
    """Make each course image present; returns image, status, standin, id, size, seconds, command.

    ``status`` is ``present`` (already there), ``pulled`` or ``built stand-in``. Offline
    (``LABKIT_OFFLINE=1``) nothing is pulled. When a pull fails, a stand-in is
    built instead and the progress says why.
    """
    import pandas as pd
    settings = engine.settings()
    offline = settings.offline if offline is None else offline
    trust = settings.trust_host_ca if trust_host_ca is None else trust_host_ca
    cli = _client(client)
    say = progress or ProgressPrinter()
    wanted = set(images) if images is not None else None
    rows = []
    for spec in COURSE_IMAGES:
        if wanted is not None and spec.name not in wanted:
            continue
        start = time.monotonic()
        img = _find(cli, spec.name)
        command: DockerCommand | None = None
        if img is not None:
            status = "present"
            say(spec.name, "present")
        else:
            img, status, command = None, "", None
            if not offline:
                try:
                    say(spec.name, "pulling")
                    img, command = pull(spec.name, client=cli, offline=offline), \
                        docker_cmd("pull", spec.name)
                    status = "pulled"
                except Exception as exc:  # any failure: fall back to the stand-in
                    say(spec.name, f"pull failed ({_one_line(exc)}); building a stand-in")
            if img is None:
                img, command = build_standin(spec, trust_host_ca=trust, client=cli,
                                             progress=say, cache_dir=cache_dir)
                status = "built stand-in"
            say(spec.name, f"{status} in {time.monotonic() - start:.1f} s")
        labels = img.labels or {}
        rows.append({
            "image": spec.name,
            "status": status,
            "standin": labels.get(engine.LABEL_STANDIN) == "true",
            "id": img.short_id.split(":", 1)[-1],
            "size": int(img.attrs.get("Size", 0)),
            "seconds": round(time.monotonic() - start, 2),
            "command": str(command) if command else "",
        })
    return pd.DataFrame(rows)


def pull(name: str, *, client: docker.DockerClient | None = None, offline: bool | None = None,
         ) -> docker.models.images.Image:
    """Pull one image (refused when offline); returns the docker-py Image."""
    if offline if offline is not None else engine.settings().offline:
        raise ImageMissing(
            f"{name} is not on the engine and pulling is disabled (offline).",
            "Run `labkit prepare --offline` to build the stand-in images, or "
            "`labkit prepare --from FILE` with an image bundle.",
        )
    cli = _client(client)
    repository, tag = name.rsplit(":", 1)
    for chunk in cli.api.pull(repository, tag=tag, stream=True, decode=True):
        if "error" in chunk:
            raise PrepareError(f"Pulling {name} failed: {chunk['error']}",
                               "Check the network, or prepare offline with `--offline`.")
    return cli.images.get(name)


def build_standin(spec: CourseImage, *, trust_host_ca: bool = False,
                  client: docker.DockerClient | None = None, progress: Progress | None = None,
                  cache_dir: Path | None = None) -> Built:
    """Build one offline stand-in; returns (docker-py Image, the equivalent command)."""
    cli = _client(client)
    say = progress or ProgressPrinter()
    if spec.recipe is None:
        return build_base(spec, trust_host_ca=trust_host_ca, client=cli, progress=say,
                          cache_dir=cache_dir)
    return build_recipe(spec, client=cli, progress=say)


# --- the base: Debian, Python, pip, in layers ---------------------------------------------


def build_base(spec: CourseImage = COURSE_IMAGES[0], *, trust_host_ca: bool = False,
               client: docker.DockerClient | None = None, progress: Progress | None = None,
               cache_dir: Path | None = None) -> Built:
    """Build the base stand-in in layers (:mod:`labkit.offline.base_image`); returns (Image,
    command)."""
    return build_layered_base(spec.name, role=spec.role, trust_host_ca=trust_host_ca,
                              client=_client(client), progress=progress or ProgressPrinter(),
                              cache_dir=cache_dir)


# --- the registry and DinD stand-ins: Dockerfiles under images/ ----------------------------


def recipe_dir(spec: CourseImage) -> Path:
    """The directory of a stand-in's Dockerfile, refusing clearly when it is missing."""
    path = RECIPES / str(spec.recipe)
    if not (path / "Dockerfile").is_file():
        raise PrepareError(
            f"The recipe for the {spec.name} stand-in ({path}/Dockerfile) is missing.",
            "Run `labkit prepare` from a clone of the course installed with `pip install -e .`.",
        )
    return path


def context_tar(directory: Path) -> io.BytesIO:
    """A build context (the recipe's few small files) as an in-memory tar."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path in sorted(directory.iterdir()):
            tar.add(path, arcname=path.name)
    buf.seek(0)
    return buf


def build_recipe(spec: CourseImage, *, client: docker.DockerClient | None = None,
                 progress: Progress | None = None, base: str = engine.BASE_IMAGE) -> Built:
    """Build a stand-in from its Dockerfile on the base, never pulling; returns (Image, cmd)."""
    cli = _client(client)
    say = progress or ProgressPrinter()
    if _find(cli, base) is None:  # the legacy builder would pull a missing FROM image
        raise ImageMissing(f"The {spec.name} stand-in is built on {base}, which is missing.",
                           "Prepare the base first: `labkit prepare --offline`.")
    directory = recipe_dir(spec)
    labels = standin_labels(spec.role)
    stream = cli.api.build(fileobj=context_tar(directory), custom_context=True, tag=spec.name,
                           pull=False, rm=True, forcerm=True, decode=True, labels=labels,
                           buildargs={"BASE": base})
    image_id = follow_build(stream, spec.name, say)
    if image_id is None:
        raise PrepareError(f"Building the {spec.name} stand-in gave no image.",
                           "Run `docker build` on the recipe to see the engine's answer.")
    flags = [arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")]
    command = docker_cmd("build", "--build-arg", f"BASE={base}", *flags, "-t", spec.name,
                         f"images/{spec.recipe}")
    return cli.images.get(spec.name), command


def _one_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:120]
