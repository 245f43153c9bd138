"""Step 2's comparison of the two builders: the one labkit did not use, shown once.

On an engine where ``docker build`` uses BuildKit, the classic builder still answers through
the Engine API: labkit builds the lab's image with it once (``Step 1/4``, ``---> Using
cache``). Where there is no BuildKit client (a docker CLI without buildx), BuildKit cannot
run: a recorded sample of its output stands in, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import docker

from labkit.course.workspace import APP_NAME, WORKSPACE

if TYPE_CHECKING:
    from labkit.images import BuildResult

#: ``docker build -t student/python-hello-world:latest .`` after a change of app.py, as the
#: docker CLI 28.5.2 with buildx 0.29.1 printed it in a notebook's terminal cell (no TTY:
#: BuildKit's plain progress), against Docker Engine 28.5.
BUILDKIT_SAMPLE = """\
#0 building with "default" instance using docker driver

#1 [1/3] FROM docker.io/library/python:3.11-slim-bookworm@sha256:10b835ad2b47…
#1 CACHED

#2 [internal] load build definition from Dockerfile
#2 transferring dockerfile: 135B done
#2 DONE 0.0s

#3 [internal] load metadata for docker.io/library/python:3.11-slim-bookworm
#3 DONE 0.0s

#4 [internal] load .dockerignore
#4 transferring context: 2B done
#4 DONE 0.0s

#5 [internal] load build context
#5 transferring context: 200B done
#5 DONE 0.1s

#6 [2/3] RUN pip install flask
#6 CACHED

#7 [3/3] COPY app.py /app.py
#7 DONE 0.2s

#8 exporting to image
#8 exporting layers 0.1s done
#8 naming to docker.io/student/python-hello-world:latest done
#8 unpacking to docker.io/student/python-hello-world:latest 0.0s done
#8 DONE 0.2s
"""


@dataclass(frozen=True)
class RecordedSample:
    """Output recorded elsewhere, shown with a title that says it did not run here."""

    title: str
    text: str

    def __str__(self) -> str:
        return f"{self.title}\n{self.text}"

    def _repr_markdown_(self) -> str:
        return f"**{self.title}**\n\n```text\n{self.text.rstrip()}\n```"


def other_builder(result: BuildResult, client: docker.DockerClient | None = None
                  ) -> RecordedSample | None:
    """The builder ``result`` did not use, once: after a BuildKit build, the lab's image
    built by the classic builder through the API (tag ``classic-builder``, shown live as
    every build is; returns None); after a classic build, a recorded sample of BuildKit's
    output (returned, to be shown)."""
    from labkit import images

    if result.builder.buildkit:
        images.build(WORKSPACE, APP_NAME, tag="classic-builder", builder="classic",
                     client=client)
        return None
    return RecordedSample(
        "A sample of BuildKit's output, recorded with the docker CLI 28.5 and buildx 0.29 "
        f"(not run on this engine: {result.builder.reason})", BUILDKIT_SAMPLE)
