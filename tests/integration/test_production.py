"""Step 10's production Dockerfile against the real engine: a ``--target`` build, files
present or not in an image, ``pip freeze`` pins, and the base image pinned by digest."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from labkit import cleanup, course, images
from labkit.course import production
from labkit.course import terminal_cells as shell
from labkit.engine import BASE_IMAGE, config

pytestmark = pytest.mark.integration

SUFFIX = "prod"

TWO_STAGES = """FROM python:3.11-slim-bookworm AS build
RUN mkdir /out /tools && echo {token} > /out/result && echo tool > /tools/compiler

FROM python:3.11-slim-bookworm
COPY --from=build /out /out
"""


@pytest.fixture(scope="module")
def two_stages(ns: config.Settings, client: docker.DockerClient,
               tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[tuple[images.BuildResult, images.BuildResult]]:
    """A two-stage Dockerfile new to the cache, built up to its ``build`` stage, then whole."""
    folder = tmp_path_factory.mktemp("two-stages")
    (folder / "Dockerfile").write_text(TWO_STAGES.format(token=uuid.uuid4().hex))
    stage = images.build(folder, "it-stages", tag="build", target="build", client=client,
                         show=False)
    final = images.build(folder, "it-stages", tag="final", client=client, show=False)
    yield stage, final
    cleanup.clean(client=client, show=False)


def test_a_target_build_stops_at_its_stage(two_stages, client: docker.DockerClient):
    stage, final = two_stages
    assert "--target build" in str(stage.command)
    assert production.present(stage.tag, "/tools/compiler", "/out/result", client=client) == {
        "/tools/compiler": True, "/out/result": True}
    assert production.present(final.tag, "/tools/compiler", "/out/result", "/tools",
                              client=client) == {
        "/tools/compiler": False, "/out/result": True, "/tools": False}


def test_the_final_image_has_no_layer_of_the_build_stage(two_stages,
                                                        client: docker.DockerClient):
    stage, final = two_stages
    base = set(production.layers(BASE_IMAGE, client=client))
    build_only = set(production.layers(stage.tag, client=client)) - base
    assert build_only
    assert not build_only & set(production.layers(final.tag, client=client))
    assert production.layers(final.tag, client=client)[:len(base)] == production.layers(
        BASE_IMAGE, client=client)


def test_run_once_gives_the_exit_code_and_output(two_stages, client: docker.DockerClient):
    _, final = two_stages
    ran = production.run_once(final.tag, "sh", "-c", "cat /out/result; exit 3", client=client)
    assert ran.exit_code == 3
    assert len(ran.output.strip()) == 32
    assert str(ran.command) == f"docker run --rm {final.tag} sh -c 'cat /out/result; exit 3'"
    left = client.containers.list(all=True, filters={"ancestor": final.image_id})
    assert left == []


def test_freeze_pins_what_is_installed(ns: config.Settings, client: docker.DockerClient,
                                       tmp_path: Path):
    (tmp_path / "Dockerfile").write_text(course.DOCKERFILE)
    course.write_app(folder=tmp_path)
    built = images.build(tmp_path, "it-freeze", client=client, show=False)
    frozen = production.freeze(built.tag, client=client)
    pins = production.parse_pins(frozen)
    assert len(pins) == len(frozen.split())  # every line is a name==version pin
    ran = production.run_once(built.tag, "python", "-c", "import importlib.metadata as m; "
                              "print(m.version('flask'), m.version('werkzeug'))", client=client)
    assert ran.exit_code == 0
    assert ran.output.split() == [pins["flask"], pins["werkzeug"]]


def _forget(pinned: production.PinnedBase, client: docker.DockerClient) -> None:
    """The module's images, and the base's references in this test's registry, if it was
    pushed there (only those references: the base keeps its own tag)."""
    cleanup.clean(client=client, show=False)
    if not pinned.reference.startswith(BASE_IMAGE):
        for ref in (pinned.reference, pinned.reference.split("@")[0] + ":3.11-slim-bookworm"):
            with contextlib.suppress(docker.errors.ImageNotFound):
                client.images.remove(ref)


def test_pin_base_names_the_tag_s_image_and_builds_on_its_layers(
        ns: config.Settings, client: docker.DockerClient, tmp_path: Path):
    pinned = production.pin_base(client=client)
    try:
        assert "@sha256:" in pinned.reference
        assert images.get_image(pinned.reference, client=client).id == images.get_image(
            BASE_IMAGE, client=client).id
        again = production.pin_base(client=client)  # a second run pushes nothing
        assert again.reference == pinned.reference
        assert again.command.args[:2] == ("image", "inspect")
        (tmp_path / "Dockerfile").write_text(
            f"FROM {pinned.reference}\nRUN echo {uuid.uuid4().hex} > /pinned\n")
        built = images.build(tmp_path, "it-pinned", client=client, show=False)
        assert production.layers(built.tag, client=client)[:len(pinned.layers)] == list(
            pinned.layers)
        assert len(production.layers(built.tag, client=client)) == len(pinned.layers) + 1
    finally:
        _forget(pinned, client)


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "10-production-dockerfile.ipynb"


def _cells(prefix: str) -> list[str]:
    """The sources of notebook 10's code cells that start with ``prefix``."""
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and "".join(c["source"]).startswith(prefix)]


def _body(cell: str) -> str:
    return cell.split("\n", 1)[1]  # without its first line (the %% magic)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_the_terminal_cell_runs_as_printed(ns: config.Settings, client: docker.DockerClient,
                                           tmp_path: Path):
    """Notebook 10's final Dockerfile, .dockerignore and terminal cell, word for word: the
    cell's docker commands build the image, and what they print is what the text says."""
    folder = production.write_folder(tmp_path / production.PRODUCTION)
    (folder / ".dockerignore").write_text(_body(_cells("%%writefile workspace/production/"
                                                       ".dockerignore")[0]))
    (folder / "Dockerfile").write_text(course.DOCKERFILE)
    lab = images.build(folder, "it-terminal-lab", client=client, show=False)
    (folder / "requirements.txt").write_text(production.freeze(lab.tag, client=client))
    (folder / "Dockerfile").write_text(_body(_cells("%%writefile workspace/production/"
                                                    "Dockerfile")[-1]))
    pinned = production.pin_base(client=client)
    assert production.pin_from(pinned, folder).count(f"FROM {pinned.reference}") == 2
    (terminal,) = _cells("%%bash")
    env = {**os.environ, "LABKIT_USER": ns.user, "LABKIT_STATE_DIR": str(ns.state_dir)}
    shell.prepare(env)
    try:
        done = subprocess.run(["bash", "-c", _body(terminal)], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        lines = done.stdout.splitlines()
        assert f"FROM {pinned.reference} AS build" in lines
        image_id = next(line for line in lines if line.startswith("sha256:"))
        assert images.get_image(f"{ns.user}/production:terminal", client=client).id == image_id
        assert "user: 10001:10001" in lines
        assert "10001" in lines  # id -u in the container
        listing = lines[lines.index("10001") + 1:]
        assert {"app.py", "requirements.txt"} <= set(listing)
        assert not {".env", "notes"} & set(listing)
    finally:
        _forget(pinned, client)
