"""A JupyterLab server like `make lab`'s, and Chromium driven by Playwright.

The server runs on a temporary copy of notebooks/ (the committed notebooks and their
stored outputs are never touched), with its own settings, workspaces and config dirs,
and `windowingMode: none` so that every cell is in the page, not only the visible ones.
Screenshots and the executed copies of the notebooks go to artifacts/ (not committed).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from labkit.course import terminal_environment

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
ARTIFACTS = Path(os.environ.get("LABKIT_ARTIFACTS", ROOT / "artifacts"))

#: Where Debian/Ubuntu put Chromium (and Chrome), tried in order after $LABKIT_CHROMIUM.
CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)
CHROMIUM_ARGS = [
    "--no-sandbox",
    # A container's /dev/shm is 64 MB (Docker's default, CI jobs' too): Chromium's shared
    # memory goes to /tmp instead, or tabs crash. Harmless elsewhere.
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--no-proxy-server",
]

#: JupyterLab settings for the test server (an app-level overrides.json).
SETTINGS_OVERRIDES = {
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension:notification": {
        "checkForUpdates": False,
        "fetchNews": "false",
    },
}

SERVER_START_TIMEOUT = 90.0


def find_chromium() -> str | None:
    """The browser to drive: $LABKIT_CHROMIUM, else the first Debian/Ubuntu path present."""
    chosen = os.environ.get("LABKIT_CHROMIUM")
    if chosen:
        return chosen if Path(chosen).exists() else None
    return next((path for path in CHROMIUM_CANDIDATES if Path(path).exists()), None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab: where it listens, its token, and the directory it serves."""

    url: str
    token: str
    root: Path
    log: Path
    terminal: dict[str, str]  # what `labkit env` gave its terminals

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API (``/api/...``) and return the decoded JSON."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method,
            headers={"Authorization": f"token {self.token}"},
        )
        with _no_proxy().open(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str) -> str:
        """The notebook alone in a fresh workspace (``reset``: no tabs from earlier tests)."""
        return f"{self.url}/lab/tree/{notebook}?reset&token={self.token}"


def _no_proxy() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _answers(url: str) -> bool:
    try:
        with _no_proxy().open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def copy_notebooks(source: Path, target: Path) -> Path:
    """Copy the course's notebooks (and files beside them) without workspaces/checkpoints."""
    ignore = shutil.ignore_patterns("workspace", ".ipynb_checkpoints", "__pycache__")
    if source.is_dir():
        shutil.copytree(source, target, ignore=ignore)
    else:
        target.mkdir(parents=True)
    return target


@pytest.fixture(scope="session")
def artifacts() -> Path:
    (ARTIFACTS / "screenshots").mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "notebooks").mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab as `make lab` starts it (no browser, token set), on a copy of notebooks/."""
    base = tmp_path_factory.mktemp("lab")
    root = copy_notebooks(NOTEBOOKS, base / "notebooks")
    app_settings = base / "app-settings"
    app_settings.mkdir()
    (app_settings / "overrides.json").write_text(json.dumps(SETTINGS_OVERRIDES, indent=2))
    for name in ("user-settings", "workspaces", "config", "data", "runtime"):
        (base / name).mkdir()

    port, token = free_port(), secrets.token_hex(16)
    terminal = terminal_environment()
    env = dict(os.environ) | terminal  # as scripts/lab.sh: eval "$(labkit env)"
    # The user's own Jupyter config and settings stay out; the venv's (sys.prefix) apply.
    env.update(JUPYTER_CONFIG_DIR=str(base / "config"), JUPYTER_DATA_DIR=str(base / "data"),
               JUPYTER_RUNTIME_DIR=str(base / "runtime"))
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--notebook-dir", str(root), "--ServerApp.ip=127.0.0.1", f"--port={port}",
        "--port-retries=0", f"--IdentityProvider.token={token}",
        f"--LabApp.app_settings_dir={app_settings}",
        f"--LabApp.user_settings_dir={base / 'user-settings'}",
        f"--LabApp.workspaces_dir={base / 'workspaces'}",
        "--LabApp.extension_manager=readonly",
        # A terminal is the server's own shell, not a login shell (which Jupyter starts when
        # its output is no terminal): Debian's /etc/profile would reset PATH, and with it the
        # docker CLI this run's engine comes with (testbed.dind puts it first on PATH).
        f"--ServerApp.terminado_settings=shell_command={shutil.which('bash') or '/bin/sh'}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI images run as root
        command.append("--allow-root")
    log = base / "jupyterlab.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    server = LabServer(f"http://127.0.0.1:{port}", token, root, log, terminal)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while not _answers(f"{server.url}/api/status?token={token}"):
            if process.poll() is not None:
                pytest.fail(f"JupyterLab exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT:.0f} s:\n"
                            f"{log.read_text()}")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if ARTIFACTS.is_dir():
            shutil.copy(log, ARTIFACTS / "jupyterlab.log")


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium from the system: the test fails (never skips) when it is not installed."""
    path = find_chromium()
    if path is None:
        pytest.fail(
            "No Chromium found (tried $LABKIT_CHROMIUM and "
            + ", ".join(CHROMIUM_CANDIDATES)
            + "): install it with `apt-get install -y chromium`, or set LABKIT_CHROMIUM."
        )
    browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()


@pytest.fixture
def page(browser: Browser, lab_server: LabServer) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    yield page
    context.close()
    for session in lab_server.api("/api/sessions") or []:  # stop the kernels it started
        lab_server.api(f"/api/sessions/{session['id']}", method="DELETE")
