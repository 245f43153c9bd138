"""Fixtures of the registry and clean-up integration tests, until the shared conftest exists:
a namespace of their own, and a tiny Flask image built with docker-py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import docker

from labkit import config

DOCKERFILE = (
    f"FROM {config.BASE_IMAGE}\n"
    "RUN pip install flask\n"
    "COPY app.py /app.py\n"
    'CMD ["python", "/app.py"]\n'
)
APP = (
    "from flask import Flask\n"
    "app = Flask(__name__)\n\n"
    "@app.route('/')\n"
    "def hello():\n"
    "    return {greeting!r}\n\n"
    "if __name__ == '__main__':\n"
    "    app.run(host='0.0.0.0', port=5000)\n"
)


def wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``predicate`` until it holds or ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def use_namespace(user: str, state_dir: Path) -> Iterator[config.Settings]:
    """Make ``user`` the process-wide namespace for a module, with its own state dir."""
    before = config.settings()
    chosen = config.use(config.Settings(user=user, offline=True, state_dir=state_dir,
                                        bind_ip=before.bind_ip,
                                        publish_host=before.publish_host))
    yield chosen
    config.use(before)


class AppBuilder:
    """Builds the lab's image from a work directory, changing only app.py between builds."""

    def __init__(self, client: docker.DockerClient, workdir: Path, tag: str,
                 labels: dict[str, str] | None) -> None:
        self.client, self.workdir, self.tag, self.labels = client, workdir, tag, labels
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "Dockerfile").write_text(DOCKERFILE)

    def build(self, greeting: str = "Hello, World!") -> docker.models.images.Image:
        (self.workdir / "app.py").write_text(APP.format(greeting=greeting))
        image, _ = self.client.images.build(path=str(self.workdir), tag=self.tag,
                                            labels=self.labels, pull=False, rm=True,
                                            forcerm=True)
        return image
