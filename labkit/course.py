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

from . import engine
from .config import Settings, settings
from .errors import EngineUnavailable, LabkitError

APP_NAME = "python-hello-world"
HELLO = "hello world!"
BEAUTIFUL = "hello beautiful world!"
WORKSPACE = Path("workspace")

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


def setup(quiet: bool = False) -> Settings | None:
    """First cell of every notebook: short errors, a workspace, and the engine's status.

    Returns the settings, or None when no engine answers (then it says what to do, once,
    without a traceback: the stored outputs of the notebook remain readable).
    """
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:  # pragma: no cover - outside IPython
        shell = None
    if shell is not None:
        shell.set_custom_exc((LabkitError,), _short_error)
    WORKSPACE.mkdir(exist_ok=True)
    try:
        info = engine.info()
    except EngineUnavailable as exc:
        print(f"No Docker Engine: {exc.message}\n→ {exc.hint}")
        return None
    if not quiet:
        print(
            f"Docker Engine {info.version} (API {info.api_version}, {info.storage_driver}) "
            f"at {'this machine' if engine.is_local() else info.publish_host}; "
            f"course user: {settings().user}"
        )
    return settings()


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
def ensure(step: int, *, message: str | None = None):
    """Make sure what the steps before ``step`` produced exists; build it if not.

    - 2: ``workspace/app.py`` exists (written if missing);
    - 3: and the Dockerfile, and the image ``<user>/python-hello-world`` built from them;
    - 5: and the local registry runs, you are logged in, and the image is pushed.
    Returns the build result (step ≥ 3) or the path of app.py.
    """
    app = WORKSPACE / "app.py"
    if message is not None or not app.exists():
        write_app(message or HELLO)
    if step <= 2:
        return app
    if not (WORKSPACE / "Dockerfile").exists():
        write_dockerfile()
    from . import images

    result = images.build(WORKSPACE, APP_NAME, show=False)
    if step <= 4:
        return result
    from . import registry

    reg = registry.start_registry()
    registry.login(reg)
    ref = registry.tag_for_registry(image_name(), APP_NAME, registry=reg)
    registry.push(ref, registry=reg, show=False)
    return result


def forget_change(keep_image: str, client=None) -> list[str]:  # noqa: ANN001
    """Remove this user's earlier builds of a changed app (siblings of ``keep_image``).

    The build cache keys COPY on the file's content: after a first run of step 5 the
    changed app would come from the cache. Removing the images built from other versions
    of app.py on the same base layers makes the lab's experiment start fresh each run.
    Only images carrying this user's labels are removed.
    """
    cli = client or engine.client()
    keep = cli.images.get(keep_image)
    chain = _chain(cli, keep.id)
    removed: list[str] = []
    for img in cli.images.list(all=True, filters={"label": settings().label_filters()}):
        if img.id in chain:
            continue
        other = _chain(cli, img.id)
        shared = [i for i in other if i in chain]
        if shared and len(other) - len(shared) <= 3:  # differs only in its top steps
            try:
                cli.images.remove(img.id, force=True)
                removed.append(img.short_id)
            except Exception:  # noqa: BLE001 - already removed with its parent
                pass
    return removed


def _chain(cli, image_id: str) -> list[str]:  # noqa: ANN001
    """An image id and its parents' ids (classic builder keeps the chain)."""
    out = []
    current = image_id
    while current:
        out.append(current)
        try:
            current = cli.api.inspect_image(current).get("Parent") or ""
        except Exception:  # noqa: BLE001 - a pulled image has no local parents
            break
    return out


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


def expect(claim: str, holds: bool, detail: str = "") -> Fact:
    """Check a claim; raise :class:`CheckFailed` (failing the notebook in CI) if it is false."""
    fact = Fact(claim, bool(holds), detail)
    if not fact.holds:
        raise CheckFailed(str(fact), "Re-run the notebook from the top; if it still fails, "
                          "the engine did something the lab does not expect.")
    print(fact)
    return fact


# --------------------------------------------------------------------------- step 1
@dataclass
class LocalApp:
    """The Flask app running on this machine, without Docker."""

    process: subprocess.Popen
    url: str

    def get(self, path: str = "/") -> str:
        """GET a page of the app."""
        import requests

        with requests.Session() as s:
            s.trust_env = False
            return s.get(self.url.rstrip("/") + path, timeout=5).text

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
