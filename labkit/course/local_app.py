"""Step 1: the Flask app running on this machine, without Docker."""

from __future__ import annotations

import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from labkit.course.workspace import WORKSPACE
from labkit.engine import LabkitError


@dataclass
class LocalApp:
    """The Flask app running on this machine, without Docker."""

    process: subprocess.Popen[bytes]
    url: str

    def get(self, path: str = "/") -> str:
        """GET a page of the app."""
        from labkit.containers import http_session

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
        return int(self.process.returncode)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_locally(folder: Path = WORKSPACE, timeout: float = 20) -> LocalApp:
    """Start ``app.py`` with Flask on 127.0.0.1 and a free port; wait until it answers."""
    import requests

    from labkit.engine import wait_until

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
