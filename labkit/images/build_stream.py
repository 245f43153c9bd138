"""The classic builder's stream, read line by line: steps, cache hits, the image each step
made, and failures turned into :class:`BuildFailed` with the step and its output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from labkit.engine import BuildFailed, strip_ansi

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
    vertex: str | None = None  # BuildKit's vertex (its digest, or ``#N`` in plain progress)
    stage: str = ""  # BuildKit's stage name of a multi-stage build (``[build 2/4]``)
    layer: str | None = None  # the diff ID of the layer this step made (BuildKit)

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
    def buildkit(self) -> bool:
        """True for a step BuildKit built (it has a vertex, no step image)."""
        return self.vertex is not None

    @property
    def title(self) -> str:
        """The builder's own heading: ``[2/4] RUN pip install flask`` (BuildKit) or
        ``Step 2/4 : RUN pip install flask`` (the classic builder)."""
        if self.buildkit:
            stage = f"{self.stage} " if self.stage else ""
            return f"[{stage}{self.number}/{self.total}] {self.instruction}"
        return f"Step {self.number}/{self.total} : {self.instruction}"

    @property
    def made(self) -> str | None:
        """What this step left behind: its step image (classic) or its layer (BuildKit)."""
        return self.image_id or self.layer


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

    ``clock`` is injectable so tests control the step times.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
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
            closed = self.finish()
            self._raise(chunk)
            return closed  # pragma: no cover - _raise always raises
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
            step = BuildStep(number, total, instruction)
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
        if line.startswith(("Removing intermediate container ",
                            " ---> Removed intermediate container ")):
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
