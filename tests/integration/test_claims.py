"""The course's three claims, proven on the engine under test:
the image carries its own dependencies, the Dockerfile is a repeatable recipe (and where
not, why), and the registry makes the image available elsewhere (removed, pulled back, run).
The docker CLI's login line that labkit echoes is run as printed."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator

import docker
import pytest

from labkit import cleanup, course, registry
from labkit.containers import apps as containers
from labkit.containers import python_runtime as runtime
from labkit.course import terminal_cells as shell
from labkit.engine import config
from labkit.experiments import reproducible
from labkit.images import builder as images
from labkit.registry import pull

pytestmark = pytest.mark.integration
SUFFIX = "claims"


@pytest.fixture(scope="module")
def app_image(ns: config.Settings, client: docker.DockerClient, tmp_path_factory):
    folder = tmp_path_factory.mktemp("claims")
    course.write_app("hello claims!", folder)
    course.write_dockerfile(folder)
    return folder, images.build(folder, "python-hello-world", show=False, client=client)


@pytest.fixture(scope="module")
def reg(ns: config.Settings, client: docker.DockerClient) -> Iterator[registry.Registry]:
    reg = registry.start_registry(client=client)
    registry.login(reg, client=client)
    yield reg
    cleanup.clean(client=client, show=False)


def test_the_container_brings_its_own_python_and_flask(app_image, client) -> None:
    _, built = app_image
    with containers.run(built, name="claims-runtime", client=client) as app:
        facts = runtime.compare(app)
    assert facts.container["flask"], "the container has Flask"
    assert facts.flask_in_image, "its Flask is in the image's files"
    if facts.host_flask_visible_inside is not None:
        assert facts.host_flask_visible_inside is False, "the host's Flask is not visible inside"


def test_two_builds_from_scratch_share_the_copy_layer_not_the_run_layer(
        app_image, client) -> None:
    # Two builds from scratch of the same folder. (A cached COPY may instead hold an older
    # file with the same content but another date, which makes another layer.)
    folder, _ = app_image
    built = images.build(folder, "python-hello-world", tag="scratch-1", nocache=True,
                         show=False, client=client)
    again = images.build(folder, "python-hello-world", tag="scratch-2", nocache=True,
                         show=False, client=client)
    table = reproducible.compare(built.steps, again.steps, client=client).set_index("step")
    by_word = {row.instruction.split()[0]: row for row in table.itertuples()}
    assert bool(by_word["FROM"].identical) is True
    assert bool(by_word["COPY"].identical) is True
    assert bool(by_word["RUN"].identical) is False
    if not built.builder.buildkit:  # BuildKit makes no step of CMD (configuration only)
        assert by_word["CMD"].identical is None
    assert [s.keyword for s in built.steps] == [s.keyword for s in again.steps]
    assert not any(s.cached for s in again.steps if s.keyword in ("RUN", "COPY"))
    with containers.run(built, name="claims-where", client=client) as app:
        where = runtime.compare(app).container["flask_at"]
    diffs = reproducible.file_differences(built.tag, again.tag, [f"{where}/__init__.py"],
                                          client=client)
    assert bool(diffs["same_bytes"].iloc[0]) is True
    assert bool(diffs["same_time"].iloc[0]) is False


def test_pulled_back_after_removal_the_image_runs(app_image, reg, client) -> None:
    _, built = app_image
    ref = registry.tag_for_registry(built.tag, "python-hello-world", registry=reg, client=client)
    registry.push(ref, registry=reg, client=client, show=False)
    layers_before = client.images.get(ref).attrs["RootFS"]["Layers"]
    pull.forget_local(ref, client=client)
    assert not images.image_exists(ref, client=client)
    assert not images.image_exists(built.tag, client=client)
    served = pull.served_layers(ref, registry=reg, client=client)
    assert bool(served["digest_matches"].all()) and bool((served["received"] ==
                                                          served["size"]).all())
    result = pull.pull(ref, registry=reg, client=client)
    assert result.diff_ids == layers_before
    with containers.run(ref, name="claims-pulled", client=client) as app:
        assert app.get() == "hello claims!"


def test_forget_local_refuses_an_image_not_of_the_course(client) -> None:
    base = client.images.get(config.BASE_IMAGE)
    with pytest.raises(Exception, match="is not one of your images"):
        pull.forget_local(base.tags[0], client=client)
    assert images.image_exists(config.BASE_IMAGE, client=client)


@pytest.mark.skipif(shutil.which("docker") is None, reason="needs the docker CLI")
def test_the_echoed_login_line_runs_as_printed(reg, ns, tmp_path) -> None:
    line = str(registry.login_command(reg))
    env = {**os.environ, "DOCKER_CONFIG": str(tmp_path), "LABKIT_USER": ns.user,
           "LABKIT_STATE_DIR": str(ns.state_dir)}
    shell.prepare(env)  # as the notebooks' terminal cells have it: labkit on PATH
    done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "Login Succeeded" in done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_printed_curl_lines_ask_the_registry_as_labkit_does(app_image, reg, ns, client,
                                                                tmp_path) -> None:
    """The registry's HTTP API, from a terminal: catalog, tags, manifest and one blob, each
    line run in bash as printed; they answer what labkit's own queries answer."""
    import hashlib
    import json

    _, built = app_image
    ref = registry.tag_for_registry(built.image_id, "python-hello-world", tag="curl",
                                    registry=reg, client=client)
    registry.push(ref, registry=reg, client=client, show=False)
    path = registry.repository_path(reg, ref.repository)
    top = registry.manifest(ref.repository, "curl", reg, client=client)["layers"][-1]["digest"]
    lines = (registry.curl(reg, "/v2/_catalog", f"/v2/{path}/tags/list")
             + registry.curl(reg, f"/v2/{path}/manifests/curl", accept=registry.MANIFEST_ACCEPT)
             + registry.curl(reg, f"/v2/{path}/blobs/{top}", output="layer"))
    env = {**os.environ, "LABKIT_USER": ns.user, "LABKIT_STATE_DIR": str(ns.state_dir)}
    shell.prepare(env)  # as the terminal cells have it: labkit on PATH
    out = []
    for line in lines:
        done = subprocess.run(["bash", "-o", "pipefail", "-c", str(line)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0, (str(line), done.stderr)
        assert registry.credentials(reg)[1] not in str(line) + done.stderr
        out.append(done.stdout)
    assert path in json.loads(out[0])["repositories"]
    assert "curl" in json.loads(out[1])["tags"]
    body = json.loads(out[2])
    assert registry.parse_manifest(body).get("layers") or registry.platform_manifest(body)
    blob = (tmp_path / "layer").read_bytes()
    assert "sha256:" + hashlib.sha256(blob).hexdigest() == top
