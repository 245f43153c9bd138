"""Images: a streamed build with per-step cache facts, the image list, history and tags.

The engine's classic builder reports a build as text lines ("Step 2/4 : RUN ...",
" ---> Using cache", " ---> 1a2b3c4d5e6f"). :class:`BuildStreamParser` turns those lines
into :class:`BuildStep` facts; :func:`build` feeds it live from the engine and returns a
:class:`BuildResult`. Rendering lives in :mod:`labkit.display`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import docker
import docker.errors
import pandas as pd

from . import engine
from .commands import DockerCommand
from .commands import docker as docker_cmd
from .config import (
    BASE_IMAGE,
    DIND_IMAGE,
    LABEL_MANAGED,
    LABEL_NAMESPACE,
    LABEL_ROLE,
    LABEL_STANDIN,
    REGISTRY_IMAGE,
    settings,
)
from .errors import BuildFailed, ImageMissing, LabkitError
from .terminal import strip_ansi

TAIL_LINES = 15

_STEP_RE = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_ARROW_RE = re.compile(r"^ ---> (.*)$")
_HEX_RE = re.compile(r"^[0-9a-f]{12,64}$")
_PARSE_LINE_RE = re.compile(r"line (\d+)")


# --------------------------------------------------------------------------- build stream


@dataclass
class BuildStep:
    """One Dockerfile instruction as the engine built it."""

    number: int
    total: int
    instruction: str
    cached: bool = False
    image_id: str | None = None  # short id of the image this step produced (" ---> ID")
    seconds: float = 0.0  # wall time from this step's line to the next one
    output: list[str] = field(default_factory=list)
    container_id: str | None = None  # the intermediate container (" ---> Running in ID")
    added_by_labkit: bool = False  # a LABEL step the engine appended for labkit's labels

    @property
    def keyword(self) -> str:
        """The instruction's keyword, upper case (``RUN``, ``COPY``, ...)."""
        return self.instruction.split(maxsplit=1)[0].upper() if self.instruction else ""

    @property
    def status(self) -> str:
        """``base`` for FROM, else ``cached`` or ``rebuilt``."""
        if self.keyword == "FROM":
            return "base"
        return "cached" if self.cached else "rebuilt"

    @property
    def title(self) -> str:
        """The engine's own heading, e.g. ``Step 2/4 : RUN pip install flask``."""
        return f"Step {self.number}/{self.total} : {self.instruction}"


EventKind = Literal["step", "output", "step_done", "built", "tagged"]


@dataclass(frozen=True)
class BuildEvent:
    """Something the build stream said: a step started or finished, a line, the result."""

    kind: EventKind
    step: BuildStep | None = None
    line: str = ""


def clean_line(text: str) -> str:
    """A stream line without terminal colours, carriage-return redraws or trailing space."""
    text = strip_ansi(text)
    if "\r" in text:
        parts = [p for p in text.split("\r") if p.strip()]
        text = parts[-1] if parts else ""
    return text.rstrip()


class BuildStreamParser:
    """Turns the classic builder's decoded stream chunks into steps and events.

    ``added_labels`` are the labels passed to the build: the engine appends one
    ``LABEL`` step per label at the end, which are marked ``added_by_labkit``.
    ``clock`` is injectable so tests control the step times.
    """

    def __init__(self, added_labels: Mapping[str, str] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.added_labels = dict(added_labels or {})
        self.clock = clock
        self.steps: list[BuildStep] = []
        self.preamble: list[str] = []  # lines before the first step
        self.image_id: str | None = None  # full id from the "aux" chunk
        self.short_id: str | None = None  # from "Successfully built ID"
        self.tags: list[str] = []
        self._buffer = ""
        self._started: float | None = None
        self._current: BuildStep | None = None

    # public -------------------------------------------------------------------------
    def feed(self, chunk: Mapping[str, Any]) -> list[BuildEvent]:
        """Consume one decoded chunk; raise :class:`BuildFailed` on an error chunk."""
        if "error" in chunk or "errorDetail" in chunk:
            events = self.finish()
            self._raise(chunk)
            return events  # pragma: no cover - _raise always raises
        if "aux" in chunk:
            aux = chunk["aux"]
            if isinstance(aux, Mapping) and aux.get("ID"):
                self.image_id = str(aux["ID"])
            return []
        text = chunk.get("stream")
        if text is None and "status" in chunk:  # e.g. a pull (never wanted, but shown)
            text = " ".join(str(chunk[k]) for k in ("status", "progress") if chunk.get(k)) + "\n"
        if not text:
            return []
        self._buffer += str(text)
        events: list[BuildEvent] = []
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            events.extend(self._line(line))
        return events

    def finish(self) -> list[BuildEvent]:
        """Flush a last unterminated line and close the running step."""
        events: list[BuildEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer, ""
            events.extend(self._line(line))
        events.extend(self._close_step())
        return events

    @property
    def current(self) -> BuildStep | None:
        """The step being built right now."""
        return self._current

    # internals ----------------------------------------------------------------------
    def _line(self, raw: str) -> list[BuildEvent]:
        line = clean_line(raw)
        step_match = _STEP_RE.match(line)
        if step_match:
            events = self._close_step()
            number, total = int(step_match.group(1)), int(step_match.group(2))
            instruction = step_match.group(3).strip()
            added = bool(self.added_labels) and instruction.upper().startswith("LABEL ") and (
                number > total - len(self.added_labels)
            )
            step = BuildStep(number, total, instruction, added_by_labkit=added)
            self.steps.append(step)
            self._current, self._started = step, self.clock()
            return [*events, BuildEvent("step", step)]
        arrow = _ARROW_RE.match(line)
        if arrow and self._current is not None:
            rest = arrow.group(1).strip()
            if rest == "Using cache":
                self._current.cached = True
                return []
            if rest.startswith("Running in "):
                self._current.container_id = rest.removeprefix("Running in ").strip()
                return []
            if _HEX_RE.match(rest):
                self._current.image_id = rest
                return []
        if line.startswith("Removing intermediate container "):
            return []
        if line.startswith("Successfully built "):
            self.short_id = line.removeprefix("Successfully built ").strip()
            return [*self._close_step(), BuildEvent("built", line=self.short_id)]
        if line.startswith("Successfully tagged "):
            tag = line.removeprefix("Successfully tagged ").strip()
            self.tags.append(tag)
            return [BuildEvent("tagged", line=tag)]
        if not line:
            return []
        if self._current is not None:
            self._current.output.append(line)
        else:
            self.preamble.append(line)
        return [BuildEvent("output", self._current, line)]

    def _close_step(self) -> list[BuildEvent]:
        step, self._current = self._current, None
        if step is None:
            return []
        if self._started is not None:
            step.seconds = max(0.0, self.clock() - self._started)
        return [BuildEvent("step_done", step)]

    def _raise(self, chunk: Mapping[str, Any]) -> None:
        detail = chunk.get("errorDetail") or {}
        message = str(chunk.get("error") or detail.get("message") or "unknown build error")
        step = self.steps[-1] if self.steps else None
        lines = step.output if step else self.preamble
        hint = (
            "Fix the command of that RUN line (try it first in a container of the base image) "
            "and build again."
            if step is not None and step.keyword == "RUN"
            else "Fix that line of the Dockerfile and build again."
        )
        raise BuildFailed(
            f"The build failed: {message.strip()}",
            step=step.title if step else None,
            log_tail="\n".join(lines[-TAIL_LINES:]),
            hint=hint,
        )


def parse_error_to_build_failed(explanation: str, dockerfile_text: str = "") -> BuildFailed:
    """The labkit error for an engine refusal before any step ran (e.g. a Dockerfile typo)."""
    explanation = explanation.strip()
    step = None
    match = _PARSE_LINE_RE.search(explanation)
    if match and dockerfile_text:
        number = int(match.group(1))
        lines = dockerfile_text.splitlines()
        if 0 < number <= len(lines):
            step = f"line {number}: {lines[number - 1].strip()}"
    if "unknown instruction" in explanation:
        hint = "Check the spelling of that instruction (FROM, RUN, COPY, CMD, ...) and build again."
    else:
        hint = "Fix the Dockerfile as the engine says and build again."
    return BuildFailed(f"The engine refused the Dockerfile: {explanation}", step=step, hint=hint)


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
) -> BuildResult:
    """Build ``path`` into ``<user>/<name>:<tag>``, streaming each step, and return the facts.

    Never pulls: every FROM image must already be on the engine (else :class:`ImageMissing`).
    A failing step raises :class:`BuildFailed` naming it, with the tail of its output.
    """
    cli = client or engine.client()
    labels = settings().labels(role)
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

    progress = None
    if show:
        from .display import BuildProgress

        progress = BuildProgress(command)
    parser = BuildStreamParser(labels)
    started = time.monotonic()
    try:
        stream: Iterable[Mapping[str, Any]] = cli.api.build(
            path=str(path), tag=full_tag, dockerfile=dockerfile, rm=True, forcerm=True,
            decode=True, labels=labels, pull=False, nocache=nocache,
        )
        for chunk in stream:
            events = parser.feed(chunk)
            if progress:
                progress.update(events)
        events = parser.finish()
        if progress:
            progress.update(events)
    except docker.errors.APIError as exc:
        error = parse_error_to_build_failed(str(exc.explanation or exc), text)
        if progress:
            progress.fail(error)
        raise error from exc
    except BuildFailed as error:
        if progress:
            progress.update(parser.finish())
            progress.fail(error)
        raise
    image_id = parser.image_id or (f"sha256:{parser.short_id}" if parser.short_id else None)
    if not image_id:
        error = BuildFailed("The engine ended the build without naming an image.",
                            log_tail="\n".join((parser.steps[-1].output if parser.steps
                                                else parser.preamble)[-TAIL_LINES:]),
                            hint="Read the output above, fix the Dockerfile and build again.")
        if progress:
            progress.fail(error)
        raise error
    result = BuildResult(image_id, full_tag, parser.steps, time.monotonic() - started, command)
    if progress:
        progress.done(result)
    return result


# --------------------------------------------------------------------------- image facts


def parent_chain(parents: Mapping[str, str], image_id: str) -> list[str]:
    """An image id and its parents' ids, from one image listing (``{id: ParentId}``; the
    classic builder records each step's parent)."""
    out: list[str] = []
    current = image_id
    while current and current not in out:
        out.append(current)
        current = parents.get(current, "")
    return out


def remove_replaced(old_id: str, new_id: str,
                    client: docker.DockerClient | None = None) -> list[str]:
    """Remove the steps of ``old_id`` that ``new_id`` does not build on, newest first.

    Each removal keeps its parents (``noprune``): the containerd image store would
    otherwise also delete untagged parents that ``new_id`` still builds on (the cached
    steps), where the classic store keeps any parent another image uses.
    """
    cli = client or engine.client()
    parents = {i["Id"]: i.get("ParentId") or "" for i in cli.api.images(all=True)}
    keep = set(parent_chain(parents, new_id))
    removed = []
    for image_id in parent_chain(parents, old_id):
        if image_id in keep:
            break
        try:
            cli.api.remove_image(image_id, noprune=True)
            removed.append(image_id)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:  # still used (a container, another tag): keep it
            break
    return removed


def image_exists(name: str, client: docker.DockerClient | None = None) -> bool:
    """True when the engine has this image (by name, tag or id); never pulls."""
    cli = client or engine.client()
    try:
        cli.api.inspect_image(name)
    except docker.errors.ImageNotFound:
        return False
    return True


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


def human_size(size: float) -> str:
    """A size the way docker prints it: decimal units, 3 significant digits (``4.99MB``)."""
    units = ["B", "kB", "MB", "GB", "TB", "PB"]
    value, unit = float(size), 0
    while value >= 1000 and unit < len(units) - 1:
        value /= 1000
        unit += 1
    return f"{value:.3g}{units[unit]}"


def clean_created_by(created_by: str, comment: str = "") -> str:
    """A history entry's CreatedBy as the Dockerfile instruction that made it."""
    text = (created_by or "").strip()
    if not text:
        return f"({comment.strip()})" if comment.strip() else ""
    text = re.sub(r"^\|\d+(\s+\S+=\S*)*\s+", "", text)  # build-arg prefix of RUN
    if text.startswith("/bin/sh -c #(nop) "):
        text = text.removeprefix("/bin/sh -c #(nop) ").strip()
    elif text.startswith("/bin/sh -c "):
        text = "RUN " + text.removeprefix("/bin/sh -c ").strip()
    text = text.removesuffix("# buildkit").strip()
    text = re.sub(r"^RUN /bin/sh -c ", "RUN ", text)
    text = re.sub(r"\b(file|dir):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2", text)
    return re.sub(r"\s+", " ", text)


def history_frame(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Shape the engine's history entries (newest first) as a DataFrame."""
    rows = []
    for entry in entries:
        image_id = str(entry.get("Id") or "")
        size = int(entry.get("Size") or 0)
        instruction = clean_created_by(str(entry.get("CreatedBy") or ""),
                                       str(entry.get("Comment") or ""))
        rows.append({
            "layer": image_id.removeprefix("sha256:")[:12] if image_id.startswith("sha256:")
            else "<missing>",
            "instruction": instruction,
            "size_bytes": size,
            "size": human_size(size),
            "created": datetime.fromtimestamp(int(entry.get("Created") or 0), tz=UTC),
            "empty": size == 0,
            "added_by_labkit": instruction.startswith(
                tuple(f"LABEL {k}=" for k in (LABEL_MANAGED, LABEL_NAMESPACE, LABEL_ROLE))
            ),
        })
    return pd.DataFrame(rows, columns=["layer", "instruction", "size_bytes", "size", "created",
                                       "empty", "added_by_labkit"])


def history(image: str, client: docker.DockerClient | None = None) -> pd.DataFrame:
    """``docker image history`` as a DataFrame, newest layer first.

    Columns: layer, instruction, size_bytes, size, created, empty (no file changes),
    added_by_labkit (the LABEL steps labkit's build labels add).
    """
    cli = client or engine.client()
    try:
        entries = cli.api.history(image)
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"The image {image} is not on the engine.",
                           "Build it first (see the build step).") from exc
    frame = history_frame(entries)
    frame.attrs["command"] = history_command(image)
    return frame


def history_command(image: str) -> DockerCommand:
    """The equivalent of :func:`history`."""
    return docker_cmd("image", "history", image)


COURSE_BASE_IMAGES = (BASE_IMAGE, REGISTRY_IMAGE, DIND_IMAGE)


def _is_base(entry: Mapping[str, Any]) -> bool:
    return any(t in COURSE_BASE_IMAGES for t in entry.get("RepoTags") or [])


def _course_image(entry: Mapping[str, Any], namespace: str | None) -> bool:
    """A course base image by name, or an image labkit built (namespace label present).

    Labels are inherited from the FROM image, so the stand-in labels alone do not make an
    image a course image: every image built on a stand-in carries them too.
    """
    if _is_base(entry):
        return True
    labels = entry.get("Labels") or {}
    if labels.get(LABEL_MANAGED) != "true" or not labels.get(LABEL_NAMESPACE):
        return False
    return namespace is None or labels.get(LABEL_NAMESPACE) == namespace


def images_frame(entries: Iterable[Mapping[str, Any]], namespace: str | None) -> pd.DataFrame:
    """Shape the engine's image list: one row per tag of a course image, newest first."""
    rows = []
    for entry in entries:
        if not _course_image(entry, namespace):
            continue
        labels = entry.get("Labels") or {}
        tags = [t for t in entry.get("RepoTags") or [] if t != "<none>:<none>"] or ["<none>"]
        for repo_tag in tags:
            rows.append({
                "image": repo_tag,
                "id": str(entry.get("Id", "")).removeprefix("sha256:")[:12],
                "size_bytes": int(entry.get("Size") or 0),
                "size": human_size(int(entry.get("Size") or 0)),
                "created": datetime.fromtimestamp(int(entry.get("Created") or 0), tz=UTC),
                "standin": _is_base(entry) and labels.get(LABEL_STANDIN) == "true",
                "role": labels.get(LABEL_ROLE, ""),
            })
    frame = pd.DataFrame(rows, columns=["image", "id", "size_bytes", "size", "created",
                                        "standin", "role"])
    return frame.sort_values(["created", "image"], ascending=[False, True],
                             ignore_index=True)


def list_images(client: docker.DockerClient | None = None,
                all_course: bool = False) -> pd.DataFrame:
    """This namespace's images plus the course base images (``all_course``: every namespace).

    Columns: image (repository:tag), id, size_bytes, size, created, standin (an offline
    stand-in of a course base image), role.
    """
    cli = client or engine.client()
    namespace = None if all_course else settings().namespace
    frame = images_frame(cli.api.images(), namespace)
    frame.attrs["command"] = list_images_command()
    return frame


def list_images_command() -> DockerCommand:
    """The equivalent of :func:`list_images` (filtered to this namespace's label)."""
    return docker_cmd("image", "ls", "--filter",
                      f"label={LABEL_NAMESPACE}={settings().namespace}")


def tag(image: str, repository: str, tag: str = "latest",
        client: docker.DockerClient | None = None) -> DockerCommand:
    """Give ``image`` the name ``repository:tag``; return the equivalent command."""
    cli = client or engine.client()
    try:
        ok = cli.api.tag(image, repository, tag)
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"The image {image} is not on the engine.",
                           "Build it first (see the build step).") from exc
    if not ok:
        raise LabkitError(f"The engine did not tag {image} as {repository}:{tag}.",
                          "Check the repository name: lowercase letters, digits, '/', '.', '-'.")
    return docker_cmd("image", "tag", image, f"{repository}:{tag}")
