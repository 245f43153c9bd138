"""What a container runs with: the Python and the packages of its image, not the host's.

:func:`compare` asks the notebook's own Python and the container's the same questions,
and checks whether the host's Flask is even visible inside the container.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from importlib import metadata, util
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.engine import ContainerFailed, DockerCommand, html_of
from labkit.engine import docker as docker_cmd

if TYPE_CHECKING:
    import pandas as pd

#: Run by the container's ``python``: where it is, its version, its Flask.
PROBE = ("import json, sys, importlib.util as u; s = u.find_spec('flask'); "
         "import importlib.metadata as m; "
         "print(json.dumps({'python': sys.version.split()[0], 'executable': sys.executable, "
         "'flask': m.version('flask') if s else None, "
         "'flask_at': str(__import__('pathlib').Path(s.origin).parent) if s else None}))")


@dataclass
class RuntimeComparison:
    """The host's and the container's answers, and whether the host's Flask is visible."""

    host: dict[str, Any]
    container: dict[str, Any]
    flask_in_image: bool  # the container's Flask is in the image's own files
    host_flask_visible_inside: bool | None  # None: no Flask on the host, or the same path
    command: DockerCommand

    def table(self) -> pd.DataFrame:
        """One row per question: the host's answer and the container's."""
        import pandas as pd
        def shown(value: Any) -> str:  # this machine's own folders are not worth printing
            text = str(value) if value else "not installed"
            return text.replace(sys.prefix, "(this notebook's Python)", 1)

        rows = [{"question": key, "this notebook (host)": shown(self.host.get(key)),
                 "the container": self.container.get(key) or "not installed"}
                for key in ("python", "executable", "flask", "flask_at")]
        return pd.DataFrame(rows)

    def __repr__(self) -> str:  # the plain-text view: the same table, no host folders
        return f"$ {self.command}\n" + str(self.table().to_string(index=False))

    def _repr_html_(self) -> str:
        return html_of(self)


def host_facts() -> dict[str, Any]:
    """The same facts as :data:`PROBE`, for the Python running this notebook."""
    spec = util.find_spec("flask")
    return {"python": sys.version.split()[0], "executable": sys.executable,
            "flask": metadata.version("flask") if spec else None,
            "flask_at": str(Path(spec.origin).parent) if spec and spec.origin else None}


def compare(app: Any) -> RuntimeComparison:
    """Ask the container ``app`` (a running :class:`labkit.containers.apps.RunningApp`) and
    this notebook's Python which Python and Flask they use."""
    container = app.container
    code, out = container.exec_run(["python", "-c", PROBE])
    text = out.decode("utf-8", "replace").strip()
    if code != 0:
        raise ContainerFailed(f"python in {app.name} could not answer (exit {code}).",
                              logs=text, hint="Is the container running the course image?")
    inside = json.loads(text.splitlines()[-1])
    host = host_facts()
    visible = None
    if host["flask_at"] and host["flask_at"] != inside["flask_at"]:
        code, _ = container.exec_run(["test", "-e", host["flask_at"]])
        visible = code == 0
    in_image = bool(inside["flask_at"]) and _in_image(app, f"{inside['flask_at']}/__init__.py")
    command = docker_cmd("container", "exec", app.name, "python", "-c",
                         "import sys, importlib.metadata as m; "
                         'print(sys.version.split()[0], m.version("flask"))')
    return RuntimeComparison(host, inside, in_image, visible, command)


def _in_image(app: Any, path: str) -> bool:
    """True when ``path`` is in the files of the container's image (a new, unstarted
    container from it: nothing the running one did counts)."""
    from labkit.images import read_file

    return read_file(app.container.image.id, path, client=app.client) is not None
