"""Images: a build with per-step cache facts, with the builder the learner's ``docker build``
uses (:mod:`labkit.images.builder_choice`).

BuildKit builds run through the docker CLI (``--progress=rawjson``, or ``plain`` for older
buildx), read by :mod:`labkit.images.buildkit_stream`; each step's layer comes from the image's
history afterwards. The classic builder's builds stream from the Engine API ("Step 2/4 : RUN
...", " ---> Using cache"), read by :class:`BuildStreamParser`. Both give :class:`BuildStep`
facts and a :class:`BuildResult`. Rendering lives in :mod:`labkit.render.builds`.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
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
    InvalidName,
    LabkitError,
    boundary,
    build_observers,
    invalid_name,
    is_invalid_name,
    settings,
)
from labkit.engine import docker as docker_cmd
from labkit.images.build_cache import parent_chain
from labkit.images.build_context import cli_context
from labkit.images.build_stream import (
    TAIL_LINES,
    BuildEvent,
    BuildStep,
    BuildStreamParser,
    parse_error_to_build_failed,
)
from labkit.images.builder_choice import (
    BuilderChoice,
    BuilderName,
    cli_environ,
    which_builder,
)
from labkit.images.buildkit_stream import PlainParser, RawJsonParser, attach_layers
from labkit.images.owned import note_named, remember_build, tags_of

if TYPE_CHECKING:
    import pandas as pd

# --------------------------------------------------------------------------- build


@dataclass
class BuildResult:
    """What a build produced: the image, each step with its cache fact and time, and which
    builder ran (and why)."""

    image_id: str
    tag: str
    steps: list[BuildStep]
    seconds: float
    command: DockerCommand
    builder: BuilderChoice

    @property
    def short_id(self) -> str:
        """The 12-character id ``docker images`` shows."""
        return self.image_id.removeprefix("sha256:")[:12]

    @property
    def cached_steps(self) -> list[BuildStep]:
        """Steps the builder took from its cache."""
        return [s for s in self.steps if s.status == "cached"]

    @property
    def rebuilt_steps(self) -> list[BuildStep]:
        """Steps the builder executed (not FROM, not from the cache)."""
        return [s for s in self.steps if s.status == "rebuilt"]

    def step(self, keyword: str) -> BuildStep:
        """The first step with this keyword (``"COPY"``)."""
        for s in self.steps:
            if s.keyword == keyword.upper():
                return s
        raise KeyError(keyword)

    def table(self) -> pd.DataFrame:
        """One row per step: step, instruction, status, cached, seconds, image_id (the
        classic builder's step image, or the layer a BuildKit step made)."""
        import pandas as pd
        return pd.DataFrame(
            [
                {
                    "step": s.number,
                    "instruction": s.instruction,
                    "status": s.status,
                    "cached": s.cached,
                    "seconds": round(s.seconds, 3),
                    "image_id": s.made,
                }
                for s in self.steps
            ],
            columns=["step", "instruction", "status", "cached", "seconds", "image_id"],
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


def build_command(tag: str, path: str | Path = ".", *, dockerfile: str = "Dockerfile",
                  nocache: bool = False, target: str | None = None) -> DockerCommand:
    """The ``docker build`` line a learner types for the same build: plain, for either
    builder (the CLI picks the same one labkit did, see :func:`which_builder`)."""
    args = ["build", "-t", tag]
    if nocache:
        args.append("--no-cache")
    if target:
        args += ["--target", target]
    if dockerfile != "Dockerfile":
        args += ["-f", dockerfile]
    try:
        here = Path(path).resolve() == Path.cwd().resolve()
    except OSError:
        here = False
    args.append("." if here else str(path))
    return docker_cmd(*args)


@boundary("build the image")
def build(
    path: str | Path,
    name: str,
    *,
    tag: str = "latest",
    dockerfile: str = "Dockerfile",
    role: str = "app",
    nocache: bool = False,
    builder: BuilderName | None = None,
    client: docker.DockerClient | None = None,
    show: bool = True,
    observer: BuildObserver | None = None,
    target: str | None = None,
) -> BuildResult:
    """Build ``path`` into ``<user>/<name>:<tag>``, streaming each step, and return the facts.

    The builder is the one ``docker build`` uses here (:func:`which_builder`): BuildKit
    through the docker CLI, else the classic builder through the Engine API; ``builder=
    "classic"`` asks for the classic builder (e.g. to compare the two). No label is added:
    the image is what the learner's own ``docker build -t NAME .`` makes, and labkit records
    its ID as this learner's (:func:`labkit.images.owned.remember_build`).
    Progress goes to ``observer`` and, with ``show``, to the registered renderer (live
    steps in a notebook, plain lines elsewhere: :class:`labkit.render.builds.BuildProgress`).

    Never pulls: every FROM image must already be on the engine (else :class:`ImageMissing`).
    A failing step raises :class:`BuildFailed` naming it, with the tail of its output.
    ``target`` builds only up to that stage of a multi-stage Dockerfile (``--target``).
    ``role`` is accepted for compatibility and not recorded.
    A cached step that another learner's clean-up removed mid-build is built once more.
    """
    del role
    cli = client or engine.client()
    choice = _choose(builder, cli)
    args = (Path(path), name, tag, dockerfile, nocache, cli, show, observer, choice, target)
    try:
        return _build(*args)
    except BuildFailed as error:
        if not engine.is_vanished_image(str(error)):
            raise
        return _build(*args)


def _choose(builder: BuilderName | None, cli: docker.DockerClient) -> BuilderChoice:
    if builder == "classic":
        return BuilderChoice("classic", "asked for (builder=\"classic\"): the engine's classic "
                             "builder, through its API.")
    found = which_builder(cli)
    if builder is None or found.buildkit:
        return found
    raise LabkitError(f"BuildKit is not available to labkit here: {found.reason}",
                      "Install the docker CLI's buildx plugin (docker-buildx), or build "
                      "without builder=\"buildkit\".")


def _notify(observers: Sequence[BuildObserver], events: list[BuildEvent]) -> None:
    if events:
        for seen in observers:
            seen.update(events)


#: The engine lost a snapshot while BuildKit used it (containerd store, another build or
#: clean-up at the same moment): the same build then works.
_SNAPSHOT_RACE = re.compile(r"snapshot \S+ does not exist: not found")


def _fail(observers: Sequence[BuildObserver], error: LabkitError) -> LabkitError:
    for seen in observers:
        seen.fail(error)
    return error


def _build(path: Path, name: str, tag: str, dockerfile: str, nocache: bool,
           cli: docker.DockerClient, show: bool, observer: BuildObserver | None,
           choice: BuilderChoice, target: str | None) -> BuildResult:
    full_tag = f"{image_name(name)}:{tag}"
    command = build_command(full_tag, path, dockerfile=dockerfile, nocache=nocache,
                            target=target)
    dockerfile_path = path / dockerfile
    try:
        text = dockerfile_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildFailed(f"No readable Dockerfile at {dockerfile_path}.",
                          hint="Write the Dockerfile first (see the step before).") from exc
    if target:
        text = stage_text(text, target)  # what the build reads: the stages up to the target
    for base in base_images(text):
        require_image(base, client=cli)
    try:  # what this build may untag stays ours
        note_named([cli.api.inspect_image(full_tag)])
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        if is_invalid_name(exc):  # the name the build would give: said before it starts
            raise invalid_name("image", full_tag, exc, command) from exc
        raise
    observers = build_observers(command, show, observer)
    started = time.monotonic()
    if choice.buildkit:
        image_id, steps = _run_buildkit(path, full_tag, dockerfile, nocache, text, command,
                                        observers, choice, target)
        _layers_of(steps, image_id, text, cli)
    else:
        image_id, steps = _run_classic(path, full_tag, dockerfile, nocache, text, command,
                                       observers, cli, target)
    remember_build(image_id, full_tag)  # this learner's image, without a label
    if not choice.buildkit:
        _remember_steps(cli, image_id, full_tag)
    result = BuildResult(image_id, full_tag, steps, time.monotonic() - started, command,
                         choice)
    for seen in observers:
        seen.done(result)
    return result


def _remember_steps(cli: docker.DockerClient, image_id: str, tag: str) -> None:
    """Record the classic builder's untagged step images below ``image_id``, down to the
    first tagged one (the base): once the image goes without them (``--no-prune``), each
    is a dangling image of this learner's build, not a stranger's."""
    listed = engine.images(cli, all=True)
    parents = {str(i["Id"]): str(i.get("ParentId") or "") for i in listed}
    tagged = {str(i["Id"]) for i in listed if tags_of(i)}
    full = next((i for i in parents if i.removeprefix("sha256:").startswith(
        image_id.removeprefix("sha256:"))), "")
    for step in parent_chain(parents, full)[1:]:
        if step in tagged:
            break
        remember_build(step, f"{tag} (a step)")


def _run_buildkit(path: Path, full_tag: str, dockerfile: str, nocache: bool, text: str,
                  command: DockerCommand, observers: Sequence[BuildObserver],
                  choice: BuilderChoice, target: str | None,
                  retry: bool = True) -> tuple[str, list[BuildStep]]:
    """``docker build --progress=rawjson|plain --iidfile F -t TAG [-f D] [--no-cache] PATH``,
    read live from the CLI's stderr. A build that meets the containerd store's snapshot race
    (a snapshot removed by another clean-up while BuildKit reads it) runs once more."""
    parser: RawJsonParser | PlainParser = (RawJsonParser() if choice.progress == "rawjson"
                                           else PlainParser())
    with tempfile.TemporaryDirectory(prefix="labkit-build-") as tmp:
        iidfile = Path(tmp) / "iid"
        args = ["docker", "build", f"--progress={choice.progress}", "--iidfile", str(iidfile),
                "-t", full_tag]
        if dockerfile != "Dockerfile":
            args += ["-f", str(path / dockerfile)]
        if nocache:
            args.append("--no-cache")
        if target:
            args += ["--target", target]
        args.append(str(path))
        try:
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, text=True, encoding="utf-8",
                                    errors="replace", env=cli_environ())
        except OSError as exc:
            raise _fail(observers, BuildFailed(
                f"The docker CLI could not be started: {exc}.",
                hint="Check that `docker` is on PATH (`docker buildx version`).")) from exc
        assert proc.stderr is not None
        with proc:
            for line in proc.stderr:
                _notify(observers, parser.feed(line))
            code = proc.wait()
        _notify(observers, parser.finish())
        image_id = iidfile.read_text(encoding="utf-8").strip() if iidfile.exists() else ""
    if code != 0 and retry and _SNAPSHOT_RACE.search("\n".join(parser.trailer)):
        return _run_buildkit(path, full_tag, dockerfile, nocache, text, command, observers,
                             choice, target, retry=False)
    if code != 0:
        refused = next((line for line in parser.trailer
                        if "invalid tag" in line or "invalid reference format" in line), None)
        error: LabkitError
        if refused is not None:
            said = refused.removeprefix("ERROR: ").removeprefix("failed to build: ")
            error = InvalidName(f"{full_tag!r} is not a valid image name: Docker says "
                                f"\"{said}\".",
                                "Use lowercase letters, digits and '.', '_', '-', with '/' "
                                "between parts and ':TAG' at the end (e.g. python-hello-world)."
                                f" `{command}` is refused the same way.")
        else:
            error = parser.failure(text)
        raise _fail(observers, error)
    if not image_id:
        raise _fail(observers, BuildFailed(
            "The docker CLI ended the build without naming an image.",
            log_tail="\n".join(parser.trailer[-TAIL_LINES:]),
            hint="Read the output above, fix the Dockerfile and build again."))
    return image_id, parser.steps


def _layers_of(steps: list[BuildStep], image_id: str, text: str,
               cli: docker.DockerClient) -> None:
    """Each BuildKit step's layer, from the image's history and rootfs (docker-py)."""
    try:
        history = cli.api.history(image_id)
        diff_ids = list(cli.api.inspect_image(image_id).get("RootFS", {}).get("Layers") or [])
        bases = base_images(text)
        final = _final_from(text)
        base_layers = None
        if final is not None and final in bases:
            base = cli.api.inspect_image(final)
            base_layers = len(base.get("RootFS", {}).get("Layers") or [])
        elif final == "scratch":
            base_layers = 0
    except docker.errors.NotFound:
        return
    attach_layers(steps, history, diff_ids, base_layers)


def stage_text(dockerfile_text: str, target: str) -> str:
    """The Dockerfile up to the end of stage ``target`` (``FROM ... AS target``): the part a
    ``--target`` build reads. The whole text when no stage has that name."""
    lines = dockerfile_text.splitlines(keepends=True)
    found = False
    for i, raw in enumerate(lines):
        words = [w for w in raw.strip().split() if not w.startswith("--")]
        if not words or words[0].upper() != "FROM":
            continue
        if found:
            return "".join(lines[:i])
        found = len(words) >= 4 and words[2].upper() == "AS" and words[3].lower() == target.lower()
    return dockerfile_text


def _final_from(dockerfile_text: str) -> str | None:
    """The image the last FROM names (``None`` for a stage alias or an ARG)."""
    joined = re.sub(r"\\\s*\n", " ", dockerfile_text)
    image = None
    for raw in joined.splitlines():
        words = [w for w in raw.strip().split() if not w.startswith("--")]
        if words and words[0].upper() == "FROM" and len(words) > 1:
            image = words[1]
    if image is None or "$" in image:
        return None
    return image


def _run_classic(path: Path, full_tag: str, dockerfile: str, nocache: bool, text: str,
                 command: DockerCommand, observers: Sequence[BuildObserver],
                 cli: docker.DockerClient, target: str | None) -> tuple[str, list[BuildStep]]:
    """The classic builder through the Engine API, streamed, with the context the docker CLI
    would send (no label: the same image, and the same cache, as the learner's
    ``docker build -t NAME .`` with this builder)."""
    parser = BuildStreamParser()
    try:
        stream: Iterable[Mapping[str, Any]] = cli.api.build(
            fileobj=cli_context(path, dockerfile), custom_context=True, tag=full_tag,
            dockerfile=dockerfile, rm=True, forcerm=True, decode=True, pull=False,
            nocache=nocache, target=target,
        )
        for chunk in stream:
            _notify(observers, parser.feed(chunk))
        _notify(observers, parser.finish())
    except docker.errors.DockerException as exc:
        if is_invalid_name(exc):
            failed: LabkitError = invalid_name("image", full_tag, exc, command)
        elif isinstance(exc, docker.errors.APIError):
            failed = parse_error_to_build_failed(str(exc.explanation or exc), text)
        else:
            raise
        raise _fail(observers, failed) from exc
    except BuildFailed as error:
        _notify(observers, parser.finish())
        raise _fail(observers, error) from None
    image_id = parser.image_id or (f"sha256:{parser.short_id}" if parser.short_id else None)
    if not image_id:
        raise _fail(observers, BuildFailed(
            "The engine ended the build without naming an image.",
            log_tail="\n".join((parser.steps[-1].output if parser.steps
                                else parser.preamble)[-TAIL_LINES:]),
            hint="Read the output above, fix the Dockerfile and build again."))
    return image_id, parser.steps


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

