"""Notebook helpers: the course's files, "make sure the earlier steps ran", and fact checks.

Every notebook starts with ``course.setup()`` and, from step 2 on, ``course.ensure(N)``,
so that a learner can open any step directly and "Restart Kernel and Run All" works
any number of times.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from . import engine, workspace
from .config import settings
from .errors import EngineIncompatible, EngineUnavailable, LabkitError

APP_NAME = "python-hello-world"
HELLO = "hello world!"
BEAUTIFUL = "hello beautiful world!"
WORKSPACE = workspace.WORKSPACE  # relative: this learner's (see labkit.workspace)

APP_TEMPLATE = '''from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "{message}"


if __name__ == "__main__":
    app.run(host="0.0.0.0")
'''

DOCKERFILE = """FROM python:3.11-slim-bookworm
RUN pip install flask
CMD ["python", "app.py"]
COPY app.py /app.py
"""


class CheckFailed(LabkitError):
    """A fact the lab claims did not hold on this engine."""


# --------------------------------------------------------------------------- set-up
def _short_error(shell, etype, value, tb, tb_offset=None):  # noqa: ANN001 - IPython API
    """Show a labkit error as its message and fix, not as a traceback."""
    stb = [f"{etype.__name__}: {value}"]
    shell._showtraceback(etype, value, stb)
    return stb


def setup(quiet: bool = False) -> None:
    """First cell of every notebook: short errors, a workspace, and the engine's status.

    When no engine answers it says what to do, once, without a traceback (the stored
    outputs of the notebook remain readable).
    """
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - outside IPython
        shell = None
    if shell is not None:
        from .display import enable_command_tables

        shell.set_custom_exc((LabkitError,), _short_error)
        enable_command_tables(shell)
    here = Path.cwd()
    own = workspace.enter(here)  # another learner's workspace/ here: this one gets its own
    if own is not None:
        print(f"workspace/ here is {workspace.owner(here / WORKSPACE)}'s; yours, as "
              f"{settings().user}, is {own.relative_to(here) / WORKSPACE}/")
    from .shell import prepare as prepare_terminal

    prepare_terminal()  # the %%bash cells: the docker CLI, $LABKIT_USER
    try:
        info = engine.info()
    except EngineIncompatible as exc:
        print(f"Docker Engine found, but: {exc.message}\n→ {exc.hint}")
        return
    except EngineUnavailable:
        from .binder import check_engine

        verdict = check_engine()
        print(f"No Docker Engine: {verdict.message}\n→ {verdict.hint}")
        return
    if not quiet:
        print(
            f"Docker Engine {info.version} (API {info.client_api_version}, {info.store_label}) "
            f"at {'this machine' if engine.is_local() else info.publish_host}; "
            f"course user: {settings().user}"
        )


# --------------------------------------------------------------------------- files
def app_source(message: str = HELLO) -> str:
    """The lab's Flask app, answering ``message`` on ``/``."""
    return APP_TEMPLATE.format(message=message)


def write_app(message: str = HELLO, folder: Path = WORKSPACE) -> Path:
    """Write ``app.py`` into ``folder`` (as the notebook's ``%%writefile`` cell does)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "app.py"
    path.write_text(app_source(message))
    return path


def write_dockerfile(folder: Path = WORKSPACE, text: str = DOCKERFILE) -> Path:
    """Write the lab's Dockerfile into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "Dockerfile"
    path.write_text(text)
    return path


def image_name() -> str:
    """The learner's image, ``<user>/python-hello-world``."""
    return settings().image_name(APP_NAME)


# --------------------------------------------------------------------------- steps
def ensure(step: int, *, message: str = HELLO):
    """Make sure what the steps before ``step`` produced exists; build it if not.

    - 2: ``workspace/app.py`` is the app of step 1 (answering ``message``);
    - 3: and the Dockerfile, and the image ``<user>/python-hello-world`` built from them;
    - 4: and a container of it, ``<user>-hello``, runs;
    - 5: and the local registry runs, you are logged in, and the image is pushed.
    Returns the build result (step ≥ 3) or the path of app.py.
    """
    app = WORKSPACE / "app.py"
    if not app.exists() or app.read_text() != app_source(message):
        write_app(message)
    if step <= 2:
        return app
    if not (WORKSPACE / "Dockerfile").exists():
        write_dockerfile()
    from . import images

    result = images.build(WORKSPACE, APP_NAME, show=False)
    if step <= 3:
        return result
    _ensure_running(result.image_id, result.tag)
    if step <= 4:
        return result
    from . import registry

    reg = registry.start_registry()
    registry.login(reg)
    ref = registry.tag_for_registry(image_name(), APP_NAME, registry=reg)
    registry.push(ref, registry=reg, show=False)
    return result


def _ensure_running(image_id: str, image: str, name: str = "hello") -> None:
    """Start the step-3 container unless it already runs this very image."""
    from . import containers

    try:
        current = engine.client().containers.get(settings().container_name(name))
        if current.status == "running" and current.attrs.get("Image") == image_id:
            return
    except docker.errors.NotFound:
        pass
    containers.run(image, name=name)


# --------------------------------------------------------------------------- facts
@dataclass(frozen=True)
class Fact:
    """A claim of the lab, checked against what the engine reports."""

    claim: str
    holds: bool
    detail: str = ""

    def __str__(self) -> str:
        mark = "✓" if self.holds else "✗"
        return f"{mark} {self.claim}" + (f" ({self.detail})" if self.detail else "")

    def _repr_markdown_(self) -> str:
        return str(self)


def expect(claim: str, holds: bool, detail: str = "") -> None:
    """Check a claim; raise :class:`CheckFailed` (failing the notebook in CI) if it is false."""
    fact = Fact(claim, bool(holds), detail)
    if not fact.holds:
        raise CheckFailed(str(fact), "Re-run the notebook from the top; if it still fails, "
                          "the engine did something the lab does not expect.")
    print(fact)


# --------------------------------------------------------------------------- step 1
@dataclass
class LocalApp:
    """The Flask app running on this machine, without Docker."""

    process: subprocess.Popen
    url: str

    def get(self, path: str = "/") -> str:
        """GET a page of the app."""
        from .containers import http_session

        with http_session() as session:
            return session.get(self.url.rstrip("/") + path, timeout=5).text

    def stop(self) -> int:
        """Stop the app (Ctrl+C in a terminal); returns its exit status."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_locally(folder: Path = WORKSPACE, timeout: float = 20) -> LocalApp:
    """Start ``app.py`` with Flask on 127.0.0.1 and a free port; wait until it answers."""
    import requests

    from .wait import wait_until

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "app", "run", "--host", "127.0.0.1",
         "--port", str(port)],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    app = LocalApp(proc, f"http://127.0.0.1:{port}/")

    def answers() -> bool:
        if proc.poll() is not None:
            raise LabkitError("The app stopped at once.", "Run `python app.py` in a terminal "
                              "in the workspace folder to see its error.")
        try:
            return app.get() is not None
        except requests.RequestException:
            return False

    try:
        wait_until(answers, timeout=timeout, interval=0.1)
    except BaseException:
        app.stop()
        raise
    return app


# --------------------------------------------------------------------------- step 0
def doctor():  # noqa: ANN201 - a DataFrame
    """``labkit doctor`` as a table: each check, whether it is fine, and the fix."""
    import pandas as pd

    from .cli import doctor_checks

    return pd.DataFrame(
        [{"check": c.name, "ok": "✓" if c.ok else "✗", "detail": c.detail, "fix": c.fix}
         for c in doctor_checks()]
    )


# --------------------------------------------------------------------------- step 6
def exec_in(app, command: str):  # noqa: ANN001, ANN201 - a CommandOutput
    """Run a shell command inside a running container (``docker exec``); returns its output,
    which a notebook shows with the ``docker container exec`` line."""
    from .commands import CommandOutput
    from .containers import exec_command

    code, out = app.container.exec_run(["sh", "-c", command])
    text = out.decode("utf-8", "replace")
    if code != 0:
        raise LabkitError(f"`{command}` failed in {app.name} (exit {code}): {text.strip()}")
    return CommandOutput(text, exec_command(app.name, command))


def read_image_file(image: str, path: str, client=None) -> str:  # noqa: ANN001
    """A file's text as the image holds it (``docker create`` + ``docker cp``; nothing runs)."""
    from .image_file import read_file

    found = read_file(image, path, client=client)
    return found[0].decode("utf-8", "replace") if found else ""


# Step 5's fresh start lives in its own module; its names stay importable from here.
from .fresh_start import forget_change, fresh_start_for_change  # noqa: E402, F401
