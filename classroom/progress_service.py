"""The instructor's view: a JupyterHub service showing who is where, and who is stuck.

Run by the hub (``c.JupyterHub.services``), reachable at ``/services/progress/`` for the
instructor only (the hub's OAuth; scope ``access:services!service=progress``):

- ``/services/progress/``      a table that refreshes itself every 10 s;
- ``/services/progress/api``   the same as JSON (what the classroom test reads).

The rows come from the exercise results each learner's course appends to its own file
(:mod:`labkit.learners.records`), joined with the hub's own word on each learner's server (running
or not, last activity). Those files are the learners' own: see :mod:`progress_view` for how
they are read and shown (escaped, under a policy that runs no script).

Started by the hub as root, the service opens the progress folder, then becomes ``nobody``
(``CLASSROOM_PROGRESS_USER``; no other groups, and it cannot become root again) before it
reads any record: the learners' folders and files (owner 1000, made with umask 022) are
readable by any user, and the folders above need not be (see
:func:`progress_view.open_folder`). A learner who closes theirs only hides their own row.
Modules it needs later are imported before the drop: the hub's Python may live where
``nobody`` cannot read.
"""

from __future__ import annotations

import contextlib
import json
import os

import progress_view
import tornado.simple_httpclient  # noqa: F401  imported now: after the drop, maybe unreadable
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated
from jupyterhub.utils import url_path_join
from tornado import httpclient, ioloop, web

PREFIX = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/progress/")
FOLDER = os.environ["CLASSROOM_PROGRESS_DIR"]
RUN_AS = os.environ.get("CLASSROOM_PROGRESS_USER", "nobody")


async def hub_users() -> dict[str, dict]:
    """The hub's users with their default server's state (this service's own token)."""
    url = url_path_join(os.environ["JUPYTERHUB_API_URL"], "users")
    token = os.environ["JUPYTERHUB_API_TOKEN"]
    response = await httpclient.AsyncHTTPClient().fetch(
        url, headers={"Authorization": f"token {token}"})
    return {user["name"]: user for user in json.loads(response.body)}


class Api(HubOAuthenticated, progress_view.ApiPage):
    @web.authenticated
    async def get(self) -> None:
        await super().get()


class Table(HubOAuthenticated, progress_view.TablePage):
    @web.authenticated
    async def get(self) -> None:
        await super().get()


class Callback(HubOAuthCallbackHandler):
    def set_default_headers(self) -> None:
        for key, value in progress_view.HEADERS.items():
            self.set_header(key, value)


def main() -> None:
    folder = progress_view.open_folder(FOLDER)  # as root: the folders above may be closed
    progress_view.drop_privileges(RUN_AS)
    pages = {"folder": folder, "users": hub_users}
    app = web.Application(
        [(PREFIX, Table, pages), (url_path_join(PREFIX, "api"), Api, pages),
         (url_path_join(PREFIX, "oauth_callback"), Callback)],
        cookie_secret=os.urandom(32))
    url = os.environ["JUPYTERHUB_SERVICE_URL"]
    port = int(url.rsplit(":", 1)[1].strip("/"))
    # loopback beside the hub; Kubernetes: the hub pod's address, for the proxy's pod
    app.listen(port, os.environ.get("CLASSROOM_PROGRESS_BIND", "127.0.0.1"))
    with contextlib.suppress(KeyboardInterrupt):  # how the hub first asks it to stop
        ioloop.IOLoop.current().start()


if __name__ == "__main__":
    main()
