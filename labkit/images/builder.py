"""Images: a streamed build with per-step cache facts, the image list, history and tags.

The engine's classic builder reports a build as text lines ("Step 2/4 : RUN ...",
" ---> Using cache", " ---> 1a2b3c4d5e6f"). :class:`BuildStreamParser` turns those lines
into :class:`BuildStep` facts; :func:`build` feeds it live from the engine and returns a
:class:`BuildResult`. Rendering lives in :mod:`labkit.render.builds`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from labkit import engine
from labkit.engine import (
    BuildFailed,
    BuildObserver,
    DockerCommand,
    ImageMissing,
    LabkitError,
    boundary,
    build_observers,
    invalid_name,
    is_invalid_name,
    settings,
)
from labkit.engine import docker as docker_cmd
from labkit.images.build_stream import (
    TAIL_LINES,
    BuildStep,
    BuildStreamParser,
    parse_error_to_build_failed,
)

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- build


@dataclass
class BuildResult:
    """What a build produced: the image, and each step with its cache fact and time."""

    image_id: str
    tag: str
    steps: list[BuildStep]
    seconds: float
    command: DockerCommand

    @property
    def short_id(self) -> str:
        """The 12-character id ``docker images`` shows."""
        return self.image_id.removeprefix("sha256:")[:12]

    @property
    def cached_steps(self) -> list[BuildStep]:
        """Steps the engine took from its layer cache."""
        return [s for s in self.steps if s.status == "cached"]

    @property
    def rebuilt_steps(self) -> list[BuildStep]:
        """Steps the engine executed (not FROM, not from the cache)."""
        return [s for s in self.steps if s.status == "rebuilt"]

    @property
    def dockerfile_steps(self) -> list[BuildStep]:
        """The steps of the Dockerfile itself (without labkit's LABEL steps)."""
        return [s for s in self.steps if not s.added_by_labkit]

    def step(self, keyword: str) -> BuildStep:
        """The first Dockerfile step with this keyword (``"COPY"``)."""
        for s in self.dockerfile_steps:
            if s.keyword == keyword.upper():
                return s
        raise KeyError(keyword)

    def table(self) -> pd.DataFrame:
        """One row per step: step, instruction, status, cached, seconds, image_id, added."""
        import pandas as pd
        return pd.DataFrame(
            [
                {
                    "step": s.number,
                    "instruction": s.instruction,
                    "status": s.status,
                    "cached": s.cached,
                    "seconds": round(s.seconds, 3),
                    "image_id": s.image_id,
                    "added_by_labkit": s.added_by_labkit,
                }
                for s in self.steps
            ],
            columns=["step", "instruction", "status", "cached", "seconds", "image_id",
                     "added_by_labkit"],
        )


def base_images(dockerfile_text: str) -> list[str]:
    """The images a Dockerfile's FROM lines need (stage aliases and ``scratch`` left out)."""
    joined = re.sub(r"\\\s*\n", " ", dockerfile_text)
    args: dict[str, str] = {}
    aliases: set[str] = set()
    seen_from = False
    out: list[str] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG" and not seen_from:
            name, _, default = rest.strip().partition("=")
            args[name.strip()] = default.strip().strip("\"'")
        elif keyword == "FROM":
            seen_from = True
            words = [w for w in rest.split() if not w.startswith("--")]
            if not words:
                continue
            image = re.sub(
                r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), ""), words[0]
            )
            if len(words) >= 3 and words[1].upper() == "AS":
                aliases.add(words[2].lower())
            if image.lower() in aliases or image.lower() == "scratch":
                continue
            if image not in out:
                out.append(image)
    return out


def image_name(name: str) -> str:
    """``name`` in this namespace (``<user>/<name>``) unless it already names a repository."""
    return name if "/" in name else settings().image_name(name)


#: What makes the docker CLI build with the classic builder, as labkit does.
CLASSIC_BUILDER_ENV = {"DOCKER_BUILDKIT": "0"}


def build_command(tag: str, path: str | Path = ".", *, dockerfile: str = "Dockerfile",
                  labels: Mapping[str, str] | None = None, nocache: bool = False,
                  ) -> DockerCommand:
    """The ``docker image build`` line that does the same build, with the same builder.

    labkit drives the classic builder (the only one the Engine API streams step by step);
    ``DOCKER_BUILDKIT=0`` makes the CLI use it too, so a learner's terminal prints the same
    steps (``Step N/M``, ``Using cache``) as the notebook on every engine. Docker 23+ would
    otherwise build with BuildKit (``CACHED``), and Docker 28+ warns that the classic
    builder is deprecated.
    """
    args = ["image", "build", "-t", tag]
    for key, value in sorted((labels or {}).items()):
        args += ["--label", f"{key}={value}"]
    if nocache:
        args.append("--no-cache")
    if dockerfile != "Dockerfile":
        args += ["-f", dockerfile]
    try:
        here = Path(path).resolve() == Path.cwd().resolve()
    except OSError:
        here = False
    args.append("." if here else str(path))
    return docker_cmd(*args, env=CLASSIC_BUILDER_ENV)


@boundary("build the image")
def build(
    path: str | Path,
    name: str,
    *,
    tag: str = "latest",
    dockerfile: str = "Dockerfile",
    role: str = "app",
    nocache: bool = False,
    client: docker.DockerClient | None = None,
    show: bool = True,
    observer: BuildObserver | None = None,
) -> BuildResult:
    """Build ``path`` into ``<user>/<name>:<tag>``, streaming each step, and return the facts.

    Progress goes to ``observer`` and, with ``show``, to the registered renderer (live
    steps in a notebook, plain lines elsewhere: :class:`labkit.render.builds.BuildProgress`).

    Never pulls: every FROM image must already be on the engine (else :class:`ImageMissing`).
    A failing step raises :class:`BuildFailed` naming it, with the tail of its output.
    The image gets one label, the namespace (:meth:`Settings.image_labels`): the engine adds
    one ``LABEL`` step per label. ``role`` is accepted for compatibility and not labelled.
    A cached step that another learner's clean-up removed mid-build is built once more.
    """
    del role  # images carry the namespace only (one LABEL step)
    args = (path, name, tag, dockerfile, nocache, client, show, observer)
    try:
        return _build(*args)
    except BuildFailed as error:
        if not engine.is_vanished_image(str(error)):
            raise
        return _build(*args)


def _build(path: str | Path, name: str, tag: str, dockerfile: str, nocache: bool,
           client: docker.DockerClient | None, show: bool,
           observer: BuildObserver | None) -> BuildResult:
    cli = client or engine.client()
    labels = settings().image_labels()
    full_tag = f"{image_name(name)}:{tag}"
    command = build_command(full_tag, path, dockerfile=dockerfile, labels=labels,
                            nocache=nocache)
    dockerfile_path = Path(path) / dockerfile
    try:
        text = dockerfile_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildFailed(f"No readable Dockerfile at {dockerfile_path}.",
                          hint="Write the Dockerfile first (see the step before).") from exc
    for base in base_images(text):
        require_image(base, client=cli)

    observers = build_observers(command, show, observer)
    parser = BuildStreamParser(labels)
    started = time.monotonic()
    try:
        stream: Iterable[Mapping[str, Any]] = cli.api.build(
            path=str(path), tag=full_tag, dockerfile=dockerfile, rm=True, forcerm=True,
            decode=True, labels=labels, pull=False, nocache=nocache,
        )
        for chunk in stream:
            events = parser.feed(chunk)
            for seen in observers:
                seen.update(events)
        events = parser.finish()
        for seen in observers:
            seen.update(events)
    except docker.errors.DockerException as exc:
        if is_invalid_name(exc):
            failed: LabkitError = invalid_name("image", full_tag, exc, command)
        elif isinstance(exc, docker.errors.APIError):
            failed = parse_error_to_build_failed(str(exc.explanation or exc), text)
        else:
            raise
        for seen in observers:
            seen.fail(failed)
        raise failed from exc
    except BuildFailed as error:
        if observers:
            events = parser.finish()
        for seen in observers:
            seen.update(events)
            seen.fail(error)
        raise
    image_id = parser.image_id or (f"sha256:{parser.short_id}" if parser.short_id else None)
    if not image_id:
        unnamed = BuildFailed("The engine ended the build without naming an image.",
                              log_tail="\n".join((parser.steps[-1].output if parser.steps
                                                  else parser.preamble)[-TAIL_LINES:]),
                              hint="Read the output above, fix the Dockerfile and build again.")
        for seen in observers:
            seen.fail(unnamed)
        raise unnamed
    result = BuildResult(image_id, full_tag, parser.steps, time.monotonic() - started, command)
    for seen in observers:
        seen.done(result)
    return result


# --------------------------------------------------------------------------- image facts


@boundary("look the image up")
def image_exists(name: str, client: docker.DockerClient | None = None) -> bool:
    """True when the engine has this image (by name, tag or id); never pulls."""
    cli = client or engine.client()
    try:
        cli.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return False
    return True


@boundary("look the image up")
def get_image(name: str, client: docker.DockerClient | None = None) -> docker.models.images.Image:
    """The engine's image ``name`` (name, tag or id); :class:`ImageMissing` if absent."""
    cli = client or engine.client()
    try:
        return cli.images.get(name)
    except docker.errors.ImageNotFound:
        raise _missing(name) from None


def require_image(name: str, client: docker.DockerClient | None = None) -> None:
    """Raise :class:`ImageMissing` unless the engine has ``name`` (labkit never pulls it)."""
    if not image_exists(name, client=client):
        raise _missing(name)


def _missing(name: str) -> ImageMissing:
    if settings().offline:
        hint = "Run `labkit prepare` to make the course images present (pulling is disabled)."
    else:
        hint = f"Build it, or run `labkit prepare` (or `docker pull {name}`); labkit never pulls."
    return ImageMissing(f"The image {name} is not on the engine.", hint)


@boundary("tag the image")
def tag(image: str, repository: str, tag: str = "latest",
        client: docker.DockerClient | None = None) -> DockerCommand:
    """Give ``image`` the name ``repository:tag``; return the equivalent command."""
    cli = client or engine.client()
    try:
        ok = cli.api.tag(image, repository, tag)
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"The image {image} is not on the engine.",
                           "Build it first (see the build step).") from exc
    except docker.errors.APIError as exc:
        if not is_invalid_name(exc):
            raise
        raise invalid_name("image", f"{repository}:{tag}", exc,
                           docker_cmd("image", "tag", image, f"{repository}:{tag}")) from exc
    if not ok:
        raise LabkitError(f"The engine did not tag {image} as {repository}:{tag}.",
                          "Check the repository name: lowercase letters, digits, '/', '.', '-'.")
    return docker_cmd("image", "tag", image, f"{repository}:{tag}")

