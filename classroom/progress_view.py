"""The instructor's progress page without the hub: rows, HTML, headers, and who reads.

Everything here treats the learners' records as hostile (they write them, from inside their
own containers):

- the records are read by :mod:`labkit.learners.records` (no links, no FIFOs, bounded size,
  known exercises only, each bad line skipped and counted);
- the page comes from one tornado template, which escapes every ``{{ value }}`` (tornado's
  autoescape, on by default; the template has no ``{% raw %}``, a test checks it), and is
  served with a Content-Security-Policy that allows no script at all, only the page's own
  style (by its hash), and no framing;
- :func:`drop_privileges` makes the service ``nobody`` right after it opened the progress
  folder as root: the learners' files are then read through that open folder with no
  more rights than any user of the machine has.

``progress_service.py`` adds the hub's part (OAuth, the hub's list of users); this module
needs tornado only, so the course's unit tests render real records without a hub.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import tied
from tornado import template, web


def load_progress() -> ModuleType:
    """labkit's learner records module (labkit/learners/records.py) by its path: it is
    standard library only, while the labkit package itself needs the course's dependencies,
    which the hub does not have."""
    name = "labkit_learner_progress"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "labkit" / "learners" / "records.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


progress = load_progress()

STYLE = ("body{font-family:sans-serif}td,th{padding:4px 10px;border-bottom:1px solid #ccc;"
         "text-align:left;vertical-align:top}.stuck,.bad{color:#b00}")
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CSP = ("default-src 'none'; "
       f"style-src 'sha256-{_STYLE_HASH}'; "
       "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

# Autoescaped: every {{ }} goes through tornado's xhtml_escape. Never add {% raw %}.
PAGE = template.Template("""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="10">
<title>Classroom progress</title><style>{{ style }}</style></head><body>
<h1>Classroom progress</h1>
<table><tr><th>learner</th><th>server</th><th>at exercise</th><th>passed</th>
<th>last check (UTC)</th><th>stuck</th><th>records not read</th></tr>
{% for row in rows %}<tr><td>{{ row["user"] }}</td><td>{{ row["server"] }}</td>
<td>{{ row["at_exercise"] or "" }}</td><td>{{ ", ".join(row["passed"]) }}</td>
<td>{{ row["last_check"] or "" }}</td>
<td class="stuck">{% if row["stuck_on"] %}step {{ row["stuck_on"] }} for {{ row["stuck_for"] }}: {{ "; ".join(row["last_failed"]) }}{% end %}</td>
<td class="bad">{{ row["not_read"] }}</td></tr>
{% end %}{% if not rows %}<tr><td colspan="7">No learner yet.</td></tr>{% end %}
</table><p>Refreshes every 10 s. JSON: <a href="api">api</a></p></body></html>
""", name="progress.html")  # noqa: E501


def age(stamp: str | None, now: datetime | None = None) -> str:
    """How long ago ``stamp`` (an ISO time, UTC) was, in minutes or hours; '' when unknown
    or in the future."""
    if not stamp:
        return ""
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if then.tzinfo is None:
            then = then.replace(tzinfo=UTC)
        minutes = int(((now or datetime.now(UTC)) - then).total_seconds() // 60)
    except (ValueError, TypeError, OverflowError):
        return ""
    if minutes < 0:  # a time to come (the learner's clock, or their editor)
        return ""
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


def not_read(who: Any) -> str:
    """What of a learner's file the table does not show, in words ('' when all was read)."""
    parts = []
    if who.problem:
        parts.append(who.problem)
    if who.skipped:
        parts.append(f"{who.skipped} bad line{'s' if who.skipped != 1 else ''} skipped")
    if who.truncated:
        parts.append(f"file too long: only its first {progress.MAX_BYTES >> 20} MiB "
                     f"or {progress.MAX_LINES} lines read")
    return "; ".join(parts)


def rows(users: dict[str, dict[str, Any]], learners: list[Any]) -> list[dict[str, Any]]:
    """One row per learner: the hub's view of their server, and their exercise results.

    ``users`` is the hub's (name -> user model), ``learners`` what
    :func:`labkit.learners.records.learners` read; admins (the instructor) have no row.
    """
    by_name = {who.user: who for who in learners}
    out = []
    for name in sorted(set(users) | set(by_name)):
        user = users.get(name, {})
        if user.get("admin"):
            continue
        who = by_name.get(name) or progress.Learner(name)
        server = (user.get("servers") or {}).get("", {})
        out.append({
            "user": name,
            "server": "running" if server.get("ready") else
                      ("starting" if server.get("pending") else "stopped"),
            "last_activity": user.get("last_activity"),
            "at_exercise": who.at,
            "passed": sorted(who.passed, key=progress.order),
            "passed_at": who.passed,
            "stuck_on": who.stuck_on,
            "stuck_since": who.stuck_since,
            "stuck_for": age(who.stuck_since),
            "last_failed": who.last_failed,
            "attempts": who.attempts,
            "last_check": who.last_seen,
            "skipped_lines": who.skipped,
            "truncated": who.truncated,
            "problem": who.problem,
            "not_read": not_read(who),
        })
    return out


def render(table: list[dict[str, Any]]) -> bytes:
    """The page for ``table`` (as :func:`rows` makes it)."""
    return PAGE.generate(rows=table, style=STYLE)


UsersSource = Callable[[], Awaitable[dict[str, dict[str, Any]]]]


class ProgressHandler(web.RequestHandler):
    """Reads the records through ``folder`` (an open folder, or a path) on each request."""

    def initialize(self, folder: int | str, users: UsersSource) -> None:
        self.folder = folder
        self.users = users

    def set_default_headers(self) -> None:
        for key, value in HEADERS.items():
            self.set_header(key, value)

    async def table(self) -> list[dict[str, Any]]:
        return rows(await self.users(), progress.learners(self.folder))


class TablePage(ProgressHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(render(await self.table()))


class ApiPage(ProgressHandler):
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"learners": await self.table()}))


def open_folder(path: str | Path) -> int:
    """The progress folder, opened: call it before :func:`drop_privileges`.

    What ``nobody`` then needs: nothing on the folders above it; search (x) on the folder
    itself (it is listed through this descriptor: 0711 is enough); read and search on each
    learner's folder and read on their file (0755 and 0644, as uid 1000 with umask 022
    makes them). A learner who closes theirs hides only their own row ("not read").
    """
    return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def drop_privileges(user: str = "nobody") -> bool:
    """Become ``user`` (and its group, no other groups) when run as root; True if it did.

    Raises if root cannot be dropped for good: the service must not read learners' files
    as root. The kernel forgets a parent-death signal (tied.py's tie to the hub) when the
    user changes: it is set again, and the service exits if the hub has already gone.
    """
    if os.geteuid() != 0:
        return False
    import pwd

    entry = pwd.getpwnam(user)
    parent, signum = os.getppid(), tied.death_signal()
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise RuntimeError(f"still able to become root after switching to {user}")
    if signum:
        tied.set_death_signal(signum, parent)
    return True
