"""A learner's exercise results, for an instructor: recorded in a classroom, off otherwise.

When ``LABKIT_PROGRESS_FILE`` names a file (a classroom hub sets it to a folder only the
instructor and that learner can reach), every exercise check appends one JSON line:
``{"time", "user", "exercise", "passed", "failed"}`` (``passed`` is null when the
exercise was not attempted; ``failed`` lists the findings that were wrong). Without the
variable nothing is written: a single learner's course is unchanged.

:func:`read` and :func:`summary` turn the classroom's files into one row per learner:
where they are, and which step they are stuck on. Standard library only: the hub's
instructor service imports this module without the course's dependencies.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "LABKIT_PROGRESS_FILE"
FILE_NAME = "progress.jsonl"


def record(check: object, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Append ``check``'s verdict to the progress file; returns the line written, or None.

    A file that cannot be written costs the learner nothing but this record.
    """
    env = os.environ if environ is None else environ
    target = env.get(ENV)
    if not target:
        return None
    line = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": env.get("LABKIT_USER", "student"),
        "exercise": str(getattr(check, "exercise", "?")),
        "passed": getattr(check, "passed", None),
        "failed": [text for ok, text in getattr(check, "findings", []) if not ok],
    }
    try:
        with open(target, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
    except OSError:
        return None
    return line


def read(folder: Path | str) -> list[dict[str, Any]]:
    """Every line of every ``<folder>/<learner>/progress.jsonl``, oldest first."""
    lines: list[dict[str, Any]] = []
    for path in sorted(Path(folder).glob(f"*/{FILE_NAME}")):
        for text in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                item = json.loads(text)
            except ValueError:
                continue
            if isinstance(item, dict) and "exercise" in item:
                item["user"] = path.parent.name  # the folder the hub gave them decides
                lines.append(item)
    return sorted(lines, key=lambda item: str(item.get("time", "")))


@dataclass
class Learner:
    """One learner's state: exercises passed, the one they are stuck on, and since when."""

    user: str
    passed: dict[str, str] = field(default_factory=dict)  # exercise -> first pass time
    attempts: dict[str, int] = field(default_factory=dict)
    stuck_on: str | None = None  # the latest exercise failed and not passed since
    stuck_since: str | None = None
    last_failed: list[str] = field(default_factory=list)
    last_seen: str | None = None

    @property
    def at(self) -> str | None:
        """The furthest exercise they checked."""
        tried = list(self.attempts)
        return max(tried, key=_order) if tried else None


def _order(exercise: str) -> tuple[int, str]:
    return (int(exercise), "") if exercise.isdigit() else (10**6, exercise)


def summary(lines: Iterable[dict[str, Any]]) -> list[Learner]:
    """One :class:`Learner` per user seen in ``lines`` (as :func:`read` returns them)."""
    learners: dict[str, Learner] = {}
    for item in lines:
        user, exercise = str(item.get("user")), str(item.get("exercise"))
        who = learners.setdefault(user, Learner(user))
        who.last_seen = item.get("time")
        if item.get("passed") is None:
            continue
        who.attempts[exercise] = who.attempts.get(exercise, 0) + 1
        if item["passed"]:
            who.passed.setdefault(exercise, str(item.get("time")))
            if who.stuck_on == exercise:
                who.stuck_on, who.stuck_since, who.last_failed = None, None, []
        elif exercise not in who.passed:
            if who.stuck_on != exercise:
                who.stuck_on, who.stuck_since = exercise, item.get("time")
            who.last_failed = list(item.get("failed") or [])
    return sorted(learners.values(), key=lambda who: who.user)
