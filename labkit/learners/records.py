"""A learner's exercise results, for an instructor: recorded in a classroom, off otherwise.

When ``LABKIT_PROGRESS_FILE`` names a file (a classroom hub sets it to a folder only the
instructor and that learner can reach), every exercise check appends one JSON line:
``{"time", "user", "exercise", "passed", "failed"}`` (``passed`` is null when the
exercise was not attempted; ``failed`` lists the findings that were wrong). Without the
variable nothing is written: a single learner's course is unchanged.

:func:`learners` (and :func:`read` with :func:`summary`) turn the classroom's files into one
row per learner: where they are, and which step they are stuck on. Those files are written
by the learners, from inside their own containers: reading treats every byte as hostile.
Only ``<folder>/<name>/progress.jsonl`` is read, for names a learner can have; neither the
learner's folder nor the file may be a symbolic link, the file must be a regular file (a
FIFO or a device is never read from), at most :data:`MAX_BYTES` of it are read, and each line
stands alone: one that is not a JSON object with a known exercise, a ``time`` as
:func:`record` writes it and the right types is skipped and counted, never fatal.

Standard library only: the hub's instructor service imports this module without the
course's dependencies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ENV = "LABKIT_PROGRESS_FILE"
FILE_NAME = "progress.jsonl"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
TIME_SHAPE = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z")  # TIME_FORMAT
# The course's exercises, in the order the notebooks give them (labkit.course.exercises and
# labkit.experiments.cache_order; tests/unit/test_learner_progress.py checks the two agree).
EXERCISES = ("2", "3", "3b", "4", "5", "6", "7", "8", "9")
# A learner's name as the classroom's authenticator accepts it (classroom/workshop_auth.py).
LEARNER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,29}")
MAX_BYTES = 1 << 20  # read at most this much of one learner's file,
MAX_LINES = 5000  # and at most this many lines of it (a class makes a few dozen each)
MAX_FAILED = 10  # findings kept per line, each at most MAX_TEXT characters
MAX_TEXT = 300


def record(check: object, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Append ``check``'s verdict to the progress file; returns the line written, or None.

    A file that cannot be written costs the learner nothing but this record.
    """
    env = os.environ if environ is None else environ
    target = env.get(ENV)
    if not target:
        return None
    line = {
        "time": time.strftime(TIME_FORMAT, time.gmtime()),
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


@dataclass
class LearnerFile:
    """What was read of one learner's file: the lines that hold, and what was not read."""

    user: str
    lines: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # lines that were not a valid record
    truncated: bool = False  # more than MAX_BYTES or MAX_LINES: only its start was read
    problem: str | None = None  # why nothing was read (a link, a FIFO, unreadable...)


def is_learner_name(name: str) -> bool:
    """Whether ``name`` is a name a learner can have (anything else is never read)."""
    return LEARNER_NAME.fullmatch(name) is not None


def valid_line(item: object) -> dict[str, Any] | None:
    """``item`` as a clean record (known exercise, valid time, right types), or None."""
    if not isinstance(item, dict):
        return None
    exercise, passed, stamp = item.get("exercise"), item.get("passed"), item.get("time")
    failed = item.get("failed", [])
    if not isinstance(exercise, str) or exercise not in EXERCISES:
        return None
    if passed is not None and not isinstance(passed, bool):
        return None
    shape = TIME_SHAPE.fullmatch(stamp) if isinstance(stamp, str) else None
    if shape is None:
        return None
    try:  # not strptime: it imports a module on first use, which `nobody` may not read
        year, month, day, hour, minute, second = (int(part) for part in shape.groups())
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    if failed is None:
        failed = []
    if not isinstance(failed, list) or not all(isinstance(text, str) for text in failed):
        return None
    return {"time": stamp, "exercise": exercise, "passed": passed,
            "failed": [text[:MAX_TEXT] for text in failed[:MAX_FAILED]]}


def parse(data: bytes, user: str) -> LearnerFile:
    """The records in ``data`` (one learner's file), each line on its own; at most
    :data:`MAX_LINES` lines (blank ones included) are looked at."""
    out = LearnerFile(user)
    lines = data.split(b"\n", MAX_LINES)
    if len(lines) > MAX_LINES:
        out.truncated = bool(lines.pop().strip())
    for raw in lines:
        if not raw.strip():
            continue
        try:
            item = valid_line(json.loads(raw.decode("utf-8")))
        except (ValueError, RecursionError):  # bad UTF-8 or JSON (or nested too deep)
            item = None
        if item is None:
            out.skipped += 1
            continue
        item["user"] = user  # the folder the hub gave them decides, not the line
        out.lines.append(item)
    return out


def _read_bounded(fd: int, limit: int) -> tuple[bytes, bool]:
    """At most ``limit`` bytes from ``fd``, and whether there was more."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 16, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    data = b"".join(chunks)
    if len(data) <= limit:
        return data, False
    data = data[:limit]
    return data[: data.rfind(b"\n") + 1], True  # no half line at the cut


@contextlib.contextmanager
def _opened(flags: int, name: str, dir_fd: int) -> Iterator[int]:
    fd = os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def read_learner(folder_fd: int, user: str, limit: int = MAX_BYTES) -> LearnerFile:
    """``<folder>/<user>/progress.jsonl``, read safely through ``folder_fd`` (an open folder).

    Never follows a link (neither the learner's folder nor the file), never opens what is
    not a regular file (a FIFO would block, a device could do anything), reads at most
    ``limit`` bytes. Whatever goes wrong is said in ``problem``; it never raises OSError.
    """
    out = LearnerFile(user)
    if not is_learner_name(user):
        out.problem = "not a learner's name"
        return out
    try:
        with _opened(os.O_RDONLY | os.O_DIRECTORY, user, folder_fd) as user_fd:
            before = os.stat(FILE_NAME, dir_fd=user_fd, follow_symlinks=False)
            if not stat.S_ISREG(before.st_mode):
                out.problem = f"{FILE_NAME} is not a regular file: not read"
                return out
            flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY
            with _opened(flags, FILE_NAME, user_fd) as fd:
                now = os.fstat(fd)
                if not stat.S_ISREG(now.st_mode) or (now.st_dev, now.st_ino) != (
                        before.st_dev, before.st_ino):
                    out.problem = f"{FILE_NAME} changed while opened: not read"
                    return out
                data, truncated = _read_bounded(fd, limit)
    except FileNotFoundError:
        return out  # no check run yet
    except NotADirectoryError:
        out.problem = "the learner's folder is not a folder: not read"
        return out
    except OSError as e:  # ELOOP: a symbolic link; EACCES: not readable
        what = "a symbolic link" if e.errno == errno.ELOOP else (e.strerror or "unreadable")
        out.problem = f"not read ({what})"
        return out
    parsed = parse(data, user)
    parsed.truncated = parsed.truncated or truncated
    return parsed


def read_all(folder: Path | str | int) -> list[LearnerFile]:
    """Every learner's file in ``folder`` (a path, or a folder already open), by name.

    Entries that are not a learner's name are ignored; a learner's folder that is a link
    (or not a folder) gives a row with its ``problem``.
    """
    own = not isinstance(folder, int)
    fd = (os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
          if not isinstance(folder, int) else folder)
    try:
        names = sorted(name for name in os.listdir(fd) if is_learner_name(name))
        return [read_learner(fd, name) for name in names]
    finally:
        if own:
            os.close(fd)


def read(folder: Path | str | int) -> list[dict[str, Any]]:
    """Every valid record of every learner's file in ``folder``, oldest first."""
    lines = [item for file in read_all(folder) for item in file.lines]
    return sorted(lines, key=lambda item: str(item["time"]))


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
    skipped: int = 0  # lines of their file that were not valid records
    truncated: bool = False  # their file is longer than what is read of it
    problem: str | None = None  # why their file was not read

    @property
    def at(self) -> str | None:
        """The furthest exercise they checked."""
        tried = list(self.attempts)
        return max(tried, key=order) if tried else None


def order(exercise: str) -> tuple[int, str]:
    """Sort key: the course's order of exercises (``3`` < ``3b`` < ``4``)."""
    step = re.fullmatch(r"(\d+)(\w*)", exercise)
    return (int(step.group(1)), step.group(2)) if step else (10**6, exercise)


_order = order  # the name callers used before


def summary(lines: Iterable[dict[str, Any]]) -> list[Learner]:
    """One :class:`Learner` per user seen in ``lines`` (as :func:`read` returns them).

    A line that is not a valid record (see :func:`valid_line`) counts in ``skipped``.
    """
    learners: dict[str, Learner] = {}
    for raw in lines:
        user = str(raw.get("user"))
        who = learners.setdefault(user, Learner(user))
        item = valid_line(raw)
        if item is None:
            who.skipped += 1
            continue
        exercise, stamp = item["exercise"], item["time"]
        who.last_seen = stamp
        if item["passed"] is None:
            continue
        who.attempts[exercise] = who.attempts.get(exercise, 0) + 1
        if item["passed"]:
            who.passed.setdefault(exercise, stamp)
            if who.stuck_on == exercise:
                who.stuck_on, who.stuck_since, who.last_failed = None, None, []
        elif exercise not in who.passed:
            if who.stuck_on != exercise:
                who.stuck_on, who.stuck_since = exercise, stamp
            who.last_failed = list(item["failed"])
    return sorted(learners.values(), key=lambda who: who.user)


def learners(folder: Path | str | int) -> list[Learner]:
    """One :class:`Learner` per learner's folder in ``folder``, with what was not read."""
    out = []
    for file in read_all(folder):
        found = summary(sorted(file.lines, key=lambda item: str(item["time"])))
        who = found[0] if found else Learner(file.user)
        who.skipped += file.skipped
        who.truncated, who.problem = file.truncated, file.problem
        out.append(who)
    return out
