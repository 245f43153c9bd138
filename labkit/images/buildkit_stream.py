"""BuildKit's progress, read as the docker CLI streams it: ``--progress=rawjson`` (one
SolveStatus JSON a line: ``vertexes``, ``statuses``, ``logs``, ``warnings``; buildx ≥ 0.15)
or ``--progress=plain`` (``#5 [2/3] RUN ...``, ``#5 CACHED``, ``#5 DONE 0.2s``). Both give the
same :class:`BuildStep` facts and :class:`BuildEvent` s as the classic builder's stream, and
a failure as :class:`BuildFailed` naming the step with its output's tail.

Each step's layer comes from the image afterwards (:func:`attach_layers`): BuildKit keeps no
image per step, its history rows say ``<missing>``.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from labkit.engine import BuildFailed, strip_ansi
from labkit.images.build_stream import (
    TAIL_LINES,
    BuildEvent,
    BuildStep,
    parse_error_to_build_failed,
)

#: A Dockerfile step's vertex name: ``[2/4] RUN ...`` or ``[build 2/4] RUN ...``.
STEP_NAME_RE = re.compile(r"^\[(?:(?P<stage>[^\]\s]+) )?(?P<n>\d+)/(?P<m>\d+)\] (?P<instr>.*)$",
                          re.S)
_PLAIN_RE = re.compile(r"^#(?P<id>\d+) (?P<rest>.*)$")
_PLAIN_TIME_RE = re.compile(r"^\d+\.\d+ (?P<line>.*)$")
_DONE_RE = re.compile(r"^DONE (?P<s>\d+(?:\.\d+)?)s$")
_FAILED_PREFIXES = ("ERROR: failed to build: failed to solve: ", "ERROR: failed to solve: ",
                    "ERROR: failed to build: ", "ERROR: ")
#: History keywords whose BuildKit rows made a layer (the rest are metadata).
_CANCELED = "context canceled"
LAYER_KEYWORDS = ("RUN", "COPY", "ADD", "WORKDIR")


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


class BuildKitParser:
    """What both progress formats share: steps by vertex, their output, the failure."""

    def __init__(self) -> None:
        self._by_vertex: dict[str, BuildStep] = {}
        # a step may come as several vertices: BuildKit merges a step that another build
        # on the engine is solving at the same moment with the same cache key (two learners
        # copying the same app.py), and reports both builds' vertices to each
        self._cached: dict[str, bool] = {}  # vertex -> BuildKit said it came from the cache
        self._done: set[str] = set()
        self._started: dict[str, datetime] = {}
        self.errors: dict[str, str] = {}  # vertex -> BuildKit's error of that step
        self.trailer: list[str] = []  # what the CLI printed that is not progress
        self.warnings: list[str] = []
        self._partial: dict[tuple[str, int], str] = {}  # a log line not ended yet

    @property
    def steps(self) -> list[BuildStep]:
        """Every Dockerfile step so far, in Dockerfile order (stage by stage)."""
        unique = list({id(step): step for step in self._by_vertex.values()}.values())
        stages: list[str] = []
        for step in unique:
            if step.stage not in stages:
                stages.append(step.stage)
        return sorted(unique, key=lambda s: (stages.index(s.stage), s.number))

    def _step(self, vertex: str, name: str) -> tuple[BuildStep | None, list[BuildEvent]]:
        step = self._by_vertex.get(vertex)
        if step is not None:
            return step, []
        match = STEP_NAME_RE.match(name.strip())
        if not match:
            return None, []
        number, stage = int(match.group("n")), match.group("stage") or ""
        same = next((s for s in self._by_vertex.values()
                     if (s.stage, s.number) == (stage, number)), None)
        if same is not None:  # the same Dockerfile step, merged with another build's
            self._by_vertex[vertex] = same
            return same, []
        step = BuildStep(number, int(match.group("m")), match.group("instr").strip(),
                         vertex=vertex, stage=stage)
        self._by_vertex[vertex] = step
        return step, [BuildEvent("step", step)]

    def _mark_cached(self, vertex: str, step: BuildStep, cached: bool, settled: bool) -> None:
        """A step is cached when every vertex of it that BuildKit settled (finished, or said
        cached) came from the cache; a merged vertex only announced does not count."""
        if not (cached or settled):
            return
        self._cached[vertex] = self._cached.get(vertex, False) or cached
        step.cached = all(self._cached[v] for v, s in self._by_vertex.items()
                          if s is step and v in self._cached)

    def _output(self, step: BuildStep, text: str) -> list[BuildEvent]:
        events = []
        for raw in text.splitlines():
            line = strip_ansi(raw).rstrip()
            if line:
                step.output.append(line)
                events.append(BuildEvent("output", step, line))
        return events

    def _log(self, vertex: str, stream: int, data: str) -> list[BuildEvent]:
        """Output as BuildKit sends it: chunks of bytes, a line possibly in several."""
        step = self._by_vertex.get(vertex)
        if step is None:
            return []
        text = self._partial.pop((vertex, stream), "") + data
        whole, newline, rest = text.rpartition("\n")
        if rest:
            self._partial[(vertex, stream)] = rest
        return self._output(step, whole) if newline else []

    def _flush(self, vertex: str, step: BuildStep) -> list[BuildEvent]:
        events = []
        for key in [k for k in self._partial if k[0] == vertex]:
            events += self._output(step, self._partial.pop(key))
        return events

    def _complete(self, vertex: str, step: BuildStep) -> list[BuildEvent]:
        if vertex in self._done:
            return []
        first = not any(self._by_vertex.get(v) is step for v in self._done)
        self._done.add(vertex)
        flushed = self._flush(vertex, step)
        return [*flushed, BuildEvent("step_done", step)] if first else flushed

    def failure(self, dockerfile_text: str = "") -> BuildFailed:
        """The error of a build the CLI ended with a non-zero status."""
        message = next((line for line in reversed(self.trailer) if line.startswith("ERROR")),
                       "")
        for prefix in _FAILED_PREFIXES:
            if message.startswith(prefix):
                message = message[len(prefix):]
                break
        # A failing step cancels the steps running beside it; their "context canceled"
        # may arrive first, and is never the reason.
        failing = sorted((v for v in self.errors if v in self._by_vertex),
                         key=lambda v: _CANCELED in self.errors[v])
        failed = self._by_vertex[failing[0]] if failing else None
        if failed is not None:
            hint = ("Fix the command of that RUN line (try it first in a container of the "
                    "base image) and build again." if failed.keyword == "RUN"
                    else "Fix that line of the Dockerfile and build again.")
            why = self.errors.get(failed.vertex or "") or message
            return BuildFailed(f"The build failed: {why}", step=failed.title,
                               log_tail="\n".join(failed.output[-TAIL_LINES:]), hint=hint)
        if "dockerfile parse error" in message or "unknown instruction" in message:
            return parse_error_to_build_failed(message, dockerfile_text)
        tail = [line for line in self.trailer if line.strip()]
        return BuildFailed(f"The build failed: {message or 'the docker CLI stopped'}",
                           log_tail="\n".join(tail[-TAIL_LINES:]),
                           hint="Read the output above, fix the Dockerfile and build again.")


class RawJsonParser(BuildKitParser):
    """``docker build --progress=rawjson``: one SolveStatus JSON object per line."""

    def feed(self, line: str) -> list[BuildEvent]:
        """Consume one line of the CLI's stderr."""
        text = line.strip()
        if not text:
            return []
        try:
            status = json.loads(text)
        except ValueError:
            self.trailer.append(strip_ansi(line.rstrip("\n")))
            return []
        if not isinstance(status, Mapping):
            return []
        events: list[BuildEvent] = []
        for vertex in status.get("vertexes") or []:
            events += self._vertex(vertex)
        for log in status.get("logs") or []:
            if log.get("data"):
                data = base64.b64decode(log["data"]).decode("utf-8", "replace")
                events += self._log(str(log.get("vertex", "")), int(log.get("stream") or 1),
                                    data)
        for warning in status.get("warnings") or []:
            short = warning.get("short")
            if short:
                self.warnings.append(base64.b64decode(short).decode("utf-8", "replace"))
        return events

    def _vertex(self, vertex: Mapping[str, Any]) -> list[BuildEvent]:
        digest = str(vertex.get("digest", ""))
        step, events = self._step(digest, str(vertex.get("name", "")))
        if step is None:
            return []
        completed = _time(vertex.get("completed"))
        self._mark_cached(digest, step, bool(vertex.get("cached")), completed is not None)
        started = _time(vertex.get("started"))
        if started is not None:
            self._started.setdefault(digest, started)
        if vertex.get("error"):
            self.errors[digest] = str(vertex["error"])
        if completed is not None:
            begun = self._started.get(digest, completed)
            step.seconds = max(step.seconds, (completed - begun).total_seconds())
            events += self._complete(digest, step)
        return events

    def finish(self) -> list[BuildEvent]:
        """The output lines not ended by a newline yet."""
        events = []
        for vertex, step in self._by_vertex.items():
            events += self._flush(vertex, step)
        return events


class PlainParser(BuildKitParser):
    """``docker build --progress=plain`` (buildx without rawjson, e.g. 0.13)."""

    def __init__(self) -> None:
        super().__init__()
        self._in_error_block = False

    def feed(self, line: str) -> list[BuildEvent]:
        """Consume one line of the CLI's stderr."""
        text = strip_ansi(line.rstrip("\n")).rstrip()
        match = _PLAIN_RE.match(text)
        if not match:
            if text:
                self.trailer.append(text)
            return []
        vertex, rest = f"#{match.group('id')}", match.group("rest")
        step = self._by_vertex.get(vertex)
        if step is None:
            _, events = self._step(vertex, rest)
            return events
        if rest == "CACHED":
            self._mark_cached(vertex, step, True, True)
            return self._complete(vertex, step)
        done = _DONE_RE.match(rest)
        if done:
            self._mark_cached(vertex, step, False, True)
            step.seconds = max(step.seconds, float(done.group("s")))
            return self._complete(vertex, step)
        if rest.startswith("ERROR: "):
            self.errors[vertex] = rest.removeprefix("ERROR: ")
            return self._complete(vertex, step)
        timed = _PLAIN_TIME_RE.match(rest)
        if timed:
            return self._output(step, timed.group("line"))
        return []  # the CLI's own status lines (resolve, transferring, ...)

    def finish(self) -> list[BuildEvent]:
        """Nothing is buffered: every line is whole."""
        return []


def _keyword(created_by: str) -> str:
    text = created_by.strip()
    return text.split(maxsplit=1)[0].upper() if text else ""


def attach_layers(steps: Sequence[BuildStep], history: Sequence[Mapping[str, Any]],
                  diff_ids: Sequence[str], base_layers: int | None) -> bool:
    """Give each step of the image's last stage that made a layer its diff ID.

    ``history`` is the engine's image history (newest first, as ``docker image history``),
    ``diff_ids`` the image's ``RootFS.Layers`` (bottom first), ``base_layers`` how many of
    them the final stage's FROM image has (``None``: unknown). BuildKit writes one history row
    per instruction (``comment: buildkit.dockerfile.v0``); RUN, COPY, ADD and WORKDIR rows
    made a layer. Returns False, attaching nothing, when the rows and layers disagree.
    """
    if not steps:
        return False
    last_stage = steps[-1].stage
    own = [s for s in steps if s.stage == last_stage and s.keyword != "FROM"]
    rows = list(history)  # newest first
    if not own or not rows:
        return False
    layers = list(reversed(diff_ids))  # newest first
    matched: list[tuple[BuildStep, Mapping[str, Any]]] = []
    r = 0
    for step in reversed(own):
        while r < len(rows) and _keyword(str(rows[r].get("CreatedBy", ""))) != step.keyword:
            r += 1
        if r == len(rows):
            return False
        matched.append((step, rows[r]))
        r += 1
    oldest_row = r  # rows[:r] belong to this stage's instructions
    made = [row for row in rows[:oldest_row]
            if row.get("Comment") == "buildkit.dockerfile.v0"
            and _keyword(str(row.get("CreatedBy", ""))) in LAYER_KEYWORDS]
    if base_layers is not None and len(made) != len(diff_ids) - base_layers:
        return False
    if len(made) > len(layers):
        return False
    layer_of = {id(row): layers[i] for i, row in enumerate(made)}
    for step, row in matched:
        step.layer = layer_of.get(id(row))
    return True
