"""Stopping containers: ``SIGTERM``, the wait, then ``SIGKILL``, told as facts.

``docker container stop -t N`` sends the container's first process ``SIGTERM`` and, if it
is still running N seconds later, ``SIGKILL``. Exit code 137 (128 + 9) says it was killed.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import docker

from labkit import engine
from labkit.containers.apps import stop
from labkit.engine import LABEL_ROLE
from labkit.images import owned

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["name", "role", "seconds", "exit_code", "killed", "command"]


def stop_all(timeout: int = 2, client: docker.DockerClient | None = None) -> pd.DataFrame:
    """Stop every running container of this learner's (labkit's, and those run from the
    learner's images: :mod:`labkit.images.owned`) at once (each gets ``timeout`` s
    after ``SIGTERM``); one row each: how long it took, its exit code, whether it was
    killed."""
    import pandas as pd
    cli = client or engine.client()
    running = [cli.containers.get(c["Id"])
               for c in owned.own_containers(cli, filters={"status": "running"})]

    def one(container: docker.models.containers.Container) -> dict[str, object]:
        started = time.monotonic()
        command = stop(container.id, timeout=timeout, client=cli)
        seconds = time.monotonic() - started
        container.reload()
        code = container.attrs["State"].get("ExitCode")
        return {"name": container.name, "role": (container.labels or {}).get(LABEL_ROLE, ""),
                "seconds": round(seconds, 1), "exit_code": code, "killed": code == 137,
                "command": str(command)}

    with ThreadPoolExecutor(max_workers=max(1, min(8, len(running)))) as pool:
        rows = list(pool.map(one, running))
    return pd.DataFrame(rows, columns=COLUMNS)
