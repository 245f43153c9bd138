"""The instructor's view: a JupyterHub service showing who is where, and who is stuck.

Run by the hub (``c.JupyterHub.services``), reachable at ``/services/progress/`` for the
instructor only (the hub's OAuth; scope ``access:services!service=progress``):

- ``/services/progress/``      a table that refreshes itself every 10 s;
- ``/services/progress/api``   the same as JSON (what the classroom test reads).

The rows come from the exercise results each learner's course appends to its own file
(:mod:`labkit.learner_progress`), joined with the hub's own word on each learner's server (running
or not, last activity).
"""

from __future__ import annotations

import html
import json
import os
from datetime import UTC, datetime

from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web


def _load_progress():  # noqa: ANN202
    """labkit's learner_progress module by its path: it is standard library only, while the
    labkit package itself needs the course's dependencies, which the hub does not have."""
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "labkit" / "learner_progress.py"
    spec = importlib.util.spec_from_file_location("labkit_learner_progress", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


progress = _load_progress()

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/progress/")
FOLDER = os.environ["CLASSROOM_PROGRESS_DIR"]


def _age(stamp: str | None) -> str:
    if not stamp:
        return ""
    then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    minutes = int((datetime.now(UTC) - then).total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h"


async def hub_users() -> dict[str, dict]:
    """The hub's users with their default server's state (this service's own token)."""
    url = url_path_join(os.environ["JUPYTERHUB_API_URL"], "users")
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    response = await httpclient.AsyncHTTPClient().fetch(
        url, headers={"Authorization": f"token {token}"})
    return {user["name"]: user for user in json.loads(response.body)}


async def rows() -> list[dict]:
    """One row per learner: the hub's view of their server, and their exercise results."""
    users = await hub_users()
    learners = {who.user: who for who in progress.summary(progress.read(FOLDER))}
    out = []
    for name in sorted(set(users) | set(learners)):
        user = users.get(name, {})
        if user.get("admin"):
            continue
        who = learners.get(name, progress.Learner(name))
        server = (user.get("servers") or {}).get("", {})
        out.append({
            "user": name,
            "server": "running" if server.get("ready") else
                      ("starting" if server.get("pending") else "stopped"),
            "last_activity": user.get("last_activity"),
            "at_exercise": who.at,
            "passed": sorted(who.passed, key=progress._order),
            "passed_at": who.passed,
            "stuck_on": who.stuck_on,
            "stuck_since": who.stuck_since,
            "stuck_for": _age(who.stuck_since),
            "last_failed": who.last_failed,
            "attempts": who.attempts,
            "last_check": who.last_seen,
        })
    return out


class Api(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    async def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.write(json.dumps({"learners": await rows()}))


class Table(HubOAuthenticated, web.RequestHandler):
    @web.authenticated
    async def get(self) -> None:
        cells = []
        for row in await rows():
            stuck = (f"step {row['stuck_on']} for {row['stuck_for']}: "
                     + html.escape("; ".join(row["last_failed"]))) if row["stuck_on"] else ""
            cells.append(
                "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                    row["user"], row["server"], row["at_exercise"] or "",
                    ", ".join(row["passed"]), row["last_check"] or ""))
                + f"<td class='stuck'>{stuck}</td></tr>")
        body = "".join(cells) or "<tr><td colspan=6>No learner yet.</td></tr>"
        self.write(
            "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=10>"
            "<title>Classroom progress</title><style>body{font-family:sans-serif}"
            "td,th{padding:4px 10px;border-bottom:1px solid #ccc}.stuck{color:#b00}</style>"
            "<h1>Classroom progress</h1><table><tr><th>learner</th><th>server</th>"
            "<th>at exercise</th><th>passed</th><th>last check (UTC)</th><th>stuck</th></tr>"
            f"{body}</table><p>Refreshes every 10 s. JSON: <a href='api'>api</a></p>")


def main() -> None:
    app = web.Application(
        [(PREFIX, Table), (url_path_join(PREFIX, "api"), Api),
         (url_path_join(PREFIX, "oauth_callback"), HubOAuthCallbackHandler)],
        cookie_secret=os.urandom(32))
    url = os.environ["JUPYTERHUB_SERVICE_URL"]
    port = int(url.rsplit(":", 1)[1].strip("/"))
    # loopback beside the hub; Kubernetes: the hub pod's address, for the proxy's pod
    app.listen(port, os.environ.get("CLASSROOM_PROGRESS_BIND", "127.0.0.1"))
    ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
