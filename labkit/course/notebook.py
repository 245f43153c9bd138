"""Notebook helpers: set-up, "make sure the earlier steps ran", and the small helpers the
steps' cells call. The lab's files are in :mod:`labkit.course.workspace`, the fact checks in
:mod:`labkit.course.fact_checks`, step 1's app without Docker in
:mod:`labkit.course.local_app`; the notebooks reach all of them through :mod:`labkit.course`
(``course.expect(...)``, ``course.WORKSPACE``).

Every notebook starts with ``course.setup()`` and, from step 2 on, ``course.ensure(N)``
(:mod:`labkit.course.earlier_steps`), so that a learner can open any step directly and
"Restart Kernel and Run All" works any number of times.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.course import workspace_owner
from labkit.course.workspace import WORKSPACE
from labkit.engine import (
    CommandOutput,
    EngineIncompatible,
    EngineInsecure,
    EngineUnavailable,
    LabkitError,
    settings,
)

if TYPE_CHECKING:
    import pandas as pd
    from IPython.core.interactiveshell import InteractiveShell

    from labkit.containers import RunningApp



# --------------------------------------------------------------------------- set-up
def _short_error(shell: InteractiveShell, etype: type[BaseException], value: BaseException,
                 tb: TracebackType | None, tb_offset: int | None = None) -> list[str]:
    """Show a labkit error as its message and fix, not as a traceback (a raw docker-py or
    connection error is translated first: :func:`labkit.engine.show_in_notebook`)."""
    from labkit.engine import show_in_notebook

    return show_in_notebook(shell, etype, value, tb, tb_offset)


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
        from labkit import render  # the course is the top layer: it may set up the drawing
        from labkit.engine import RAW_ERRORS

        shell.set_custom_exc((LabkitError, *RAW_ERRORS), _short_error)
        render.builds.enable_command_tables(shell)
    here = Path.cwd()
    own = workspace_owner.enter(here)  # another learner's workspace/ here: this one gets its own
    if own is not None:
        print(f"workspace/ here is {workspace_owner.owner(here / WORKSPACE)}'s; yours, as "
              f"{settings().user}, is {own.relative_to(here) / WORKSPACE}/")
    from labkit.course.terminal_cells import prepare as prepare_terminal

    prepare_terminal()  # the %%bash cells: the docker CLI, $LABKIT_USER
    try:
        info = engine.info()
    except (EngineIncompatible, EngineInsecure) as exc:
        print(f"Docker Engine found, but: {exc.message}\n→ {exc.hint}")
        return
    except EngineUnavailable:
        from labkit.engine import check_engine

        verdict = check_engine()
        print(f"No Docker Engine: {verdict.message}\n→ {verdict.hint}")
        return
    if not quiet:
        print(
            f"Docker Engine {info.version} (API {info.client_api_version}, {info.store_label}) "
            f"at {'this machine' if engine.is_local() else info.publish_host}; "
            f"course user: {settings().user}"
        )
        if not engine.ports_reachable():
            print(f"Its published ports listen on its 127.0.0.1 only, out of reach from here: "
                  f"set {engine.BIND_OPT_IN} before starting Jupyter to reach them.")


# --------------------------------------------------------------------------- step 0
def doctor() -> pd.DataFrame:
    """``labkit doctor`` as a table: each check, whether it is fine, and the fix."""
    import pandas as pd

    from labkit.course.doctor import doctor_checks

    return pd.DataFrame(
        [{"check": c.name, "ok": c.mark, "detail": c.detail, "fix": c.fix}
         for c in doctor_checks()]
    )


# --------------------------------------------------------------------------- step 6
def exec_in(app: RunningApp, command: str) -> CommandOutput:
    """Run a shell command inside a running container (``docker exec``); returns its output,
    which a notebook shows with the ``docker container exec`` line."""
    from labkit.containers import exec_command

    code, out = app.container.exec_run(["sh", "-c", command])
    text = out.decode("utf-8", "replace")
    if code != 0:
        raise LabkitError(f"`{command}` failed in {app.name} (exit {code}): {text.strip()}")
    return CommandOutput(text, exec_command(app.name, command))


def read_image_file(image: str, path: str, client: docker.DockerClient | None = None) -> str:
    """A file's text as the image holds it (``docker create`` + ``docker cp``; nothing runs)."""
    from labkit.images import read_file

    found = read_file(image, path, client=client)
    return found[0].decode("utf-8", "replace") if found else ""


