"""A small client of a classroom hub's REST API, for the classroom test and its benchmark.

It speaks to JupyterHub (``/hub/api``), to a learner's server through the hub's proxy
(``/user/<name>/api``, with a token of that learner), to the instructor's progress service,
and runs commands in a learner's server container (``docker exec``) as the learner would
in its terminal.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests


@dataclass
class Hub:
    """A running classroom: its URL, the admin service's token, and its names."""

    url: str
    token: str
    name: str
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.trust_env = False  # loopback: no proxy, no CA bundle from the environment

    def api(self, method: str, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"token {token or self.token}"}
        return self.session.request(method, f"{self.url}/hub/api{path}", headers=headers,
                                    timeout=60, **kwargs)

    def login(self, name: str, password: str, code: str = "") -> requests.Response:
        """Log in through the hub's login form, as a browser does (a session of its own):
        302 when the hub lets the person in, 403 with the form and its message when not."""
        browser = requests.Session()
        browser.trust_env = False
        browser.verify = self.session.verify
        form = browser.get(f"{self.url}/hub/login", timeout=30)
        form.raise_for_status()
        return browser.post(f"{self.url}/hub/login", allow_redirects=False, timeout=60,
                            data={"username": name, "code": code, "password": password,
                                  "_xsrf": browser.cookies.get("_xsrf", "")})

    def user(self, name: str) -> dict:
        response = self.api("GET", f"/users/{name}")
        response.raise_for_status()
        return response.json()

    def create_user(self, name: str) -> None:
        response = self.api("POST", f"/users/{name}")
        if response.status_code not in (201, 409):
            response.raise_for_status()

    def token_for(self, name: str, scopes: list[str]) -> str:
        response = self.api("POST", f"/users/{name}/tokens",
                            json={"scopes": scopes, "note": "classroom test", "expires_in": 7200})
        response.raise_for_status()
        return response.json()["token"]

    def start_server(self, name: str) -> None:
        response = self.api("POST", f"/users/{name}/server")
        if response.status_code not in (201, 202, 400):  # 400: already running
            response.raise_for_status()

    def server(self, name: str) -> dict:
        return (self.user(name).get("servers") or {}).get("", {})

    def wait_ready(self, name: str, patience: float = 300) -> float:
        """Seconds until the hub says the learner's server is ready; raises if it failed."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < patience:
            server = self.server(name)
            if server.get("ready"):
                return time.monotonic() - t0
            if not server and time.monotonic() - t0 > 5:
                raise RuntimeError(f"{name}'s server failed to start (see the hub's log)")
            time.sleep(1)
        raise TimeoutError(f"{name}'s server was not ready within {patience:.0f} s")

    def stop_server(self, name: str, patience: float = 120) -> None:
        self.api("DELETE", f"/users/{name}/server")
        t0 = time.monotonic()
        while self.server(name) and time.monotonic() - t0 < patience:
            time.sleep(1)

    def server_get(self, name: str, token: str, path: str) -> requests.Response:
        """A request to the learner's own Jupyter server, through the proxy."""
        return self.session.get(f"{self.url}/user/{name}/api/{path}",
                                headers={"Authorization": f"token {token}"}, timeout=30)

    def progress(self, token: str) -> requests.Response:
        return self.session.get(f"{self.url}/services/progress/api",
                                headers={"Authorization": f"token {token}"}, timeout=30,
                                allow_redirects=False)

    # names of what the classroom makes for a learner (classroom/jupyterhub_config.py)
    def server_container(self, name: str) -> str:
        return f"{self.name}-{name}-server"

    def engine_container(self, name: str) -> str:
        return f"{self.name}-{name}-engine"

    def exec(self, name: str, *cmd: str, timeout: float = 900,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run a command in the learner's server container, as the learner."""
        flags = [f"--env={k}={v}" for k, v in (env or {}).items()]
        return subprocess.run(["docker", "exec", *flags, self.server_container(name), *cmd],
                              capture_output=True, text=True, timeout=timeout)

    def execute(self, name: str, notebook: str) -> tuple[float, subprocess.CompletedProcess]:
        """Run a course notebook in the learner's server (`jupyter execute`); seconds taken."""
        t0 = time.monotonic()
        done = self.exec(name, "jupyter", "execute", "--inplace", notebook)
        return time.monotonic() - t0, done


class KeepAlive:
    """What a learner's open JupyterLab tab does: ask their server something every few
    seconds (activity the hub's idle culler sees). ``drop(name)`` is closing the tab."""

    def __init__(self, hub: Hub, every: float = 5.0) -> None:
        self.hub, self.every = hub, every
        self.tokens: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, token: str) -> None:
        self.tokens[name] = token

    def drop(self, name: str) -> None:
        self.tokens.pop(name, None)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for name, token in list(self.tokens.items()):
                with contextlib.suppress(requests.RequestException):
                    self.hub.server_get(name, token, "contents")

    def __enter__(self) -> KeepAlive:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def first_cell_notebook(folder: Path) -> Path:
    """A notebook of one cell: the first cell of every course notebook."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("from labkit import course\ncourse.setup()"))
    path = folder / "first-cell.ipynb"
    nbformat.write(nb, path)
    return path
