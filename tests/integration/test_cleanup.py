"""Clean-up against the real engine: only what carries our labels goes; prune is previewed."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace

import docker
import pytest

from labkit import cleanup, registry
from labkit.engine import config

pytestmark = pytest.mark.integration
SUFFIX = "cln"


SLEEP = ["python", "-c", "import time; time.sleep(600)"]


@dataclass
class Foreign:
    """What the test made WITHOUT labkit's labels (must survive clean())."""

    container: str
    volume: str
    image: str


@dataclass
class Ours:
    """What the test made WITH this namespace's labels (must go)."""

    containers: list[str]
    volume: str
    network: str
    image: str
    registry_tag: str


@pytest.fixture(scope="module")
def made(ns: config.Settings, client: docker.DockerClient, app_builder,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Ours, Foreign]]:
    cli = client
    suffix = uuid.uuid4().hex[:8]
    cleanup.clean(client=cli, show=False)  # a previous run's leftovers
    # ours: the registry (container + labelled volume), the app image tagged for it, a
    # running container, a labelled volume and network
    reg = registry.start_registry(client=cli)
    image = app_builder(cli, tmp_path_factory.mktemp("app"), ns.image_name("python-hello-world"),
                      ns.labels("app"), "Hello, World!", suffix)
    tagged = registry.tag_for_registry(image, registry=reg, client=cli)
    volume = cli.volumes.create(name=ns.container_name(f"data-{suffix}"), labels=ns.labels("app"))
    network = cli.networks.create(ns.container_name(f"net-{suffix}"), labels=ns.labels("app"))
    app = cli.containers.run(image.id, SLEEP, detach=True, name=ns.container_name(f"app-{suffix}"),
                             labels=ns.labels("app"), volumes={volume.name: {"bind": "/data"}},
                             network=network.name)
    app.exec_run(["sh", "-c", "head -c 300000 /dev/urandom > /data/blob && cp /data/blob /b"])
    # foreign: no labkit labels given (an image built FROM the stand-in base inherits only
    # the base's labels, never a namespace); named after the namespace, which clean() never
    # looks at, so that the session's own clean-up finds them if this module's does not
    foreign_name = ns.container_name(f"nolabel-{suffix}")
    f_volume = cli.volumes.create(name=f"{foreign_name}-vol")
    f_image = app_builder(cli, tmp_path_factory.mktemp("foreign"), f"{foreign_name}/app",
                          None, "not from the course", suffix)
    f_container = cli.containers.create(f_image.id, ["true"], name=foreign_name,
                                        volumes={f_volume.name: {"bind": "/data"}})
    ours = Ours([app.name, reg.name], volume.name, network.name, image.id, str(tagged))
    foreign = Foreign(f_container.name, f_volume.name, f_image.id)
    yield ours, foreign
    for action in (lambda: cli.api.remove_container(foreign.container, force=True, v=True),
                   lambda: cli.api.remove_volume(foreign.volume),
                   lambda: cli.api.remove_image(foreign.image, force=True),
                   lambda: cleanup.clean(client=cli, show=False)):
        with contextlib.suppress(docker.errors.NotFound):
            action()


@pytest.fixture(scope="module")
def preview(made, client: docker.DockerClient):
    before = sorted(c["Id"] for c in client.api.containers(all=True))
    frame = cleanup.preview_system_prune(client=client)
    after = sorted(c["Id"] for c in client.api.containers(all=True))
    return frame, before, after


@pytest.fixture(scope="module")
def report(preview, made, client: docker.DockerClient) -> cleanup.CleanupReport:
    return cleanup.clean(client=client, show=False)


def _exists(call) -> bool:
    try:
        call()
    except docker.errors.NotFound:
        return False
    return True


# ---------------------------------------------------------------- preview (before clean)


def test_preview_lists_the_stopped_foreign_container(preview, made) -> None:
    frame, _, _ = preview
    rows = frame[(frame["kind"] == "container") & (frame["name"] == made[1].container)]
    assert list(rows["course"]) == [False]


def test_preview_keeps_running_containers_out(preview, made) -> None:
    frame, _, _ = preview
    assert made[0].containers[0] not in set(frame["name"])


def test_preview_lists_the_foreign_volume_for_volumes_flag(preview, made) -> None:
    frame, _, _ = preview
    rows = frame[(frame["kind"] == "volume") & (frame["name"] == made[1].volume)]
    assert list(rows["removed_by"]) == ["docker system prune --volumes"]


def test_preview_removes_nothing(preview) -> None:
    _, before, after = preview
    assert set(before) <= set(after)


# ---------------------------------------------------------------- clean


def test_clean_removes_our_containers(report, made) -> None:
    assert set(made[0].containers) <= set(report.names("container"))


def test_our_containers_are_gone(report, made, client: docker.DockerClient) -> None:
    assert not any(_exists(lambda n=n: client.api.inspect_container(n))
                   for n in made[0].containers)


def test_our_image_is_gone(report, made, client: docker.DockerClient) -> None:
    assert not _exists(lambda: client.api.inspect_image(made[0].image))


def test_registry_tag_is_gone(report, made, client: docker.DockerClient) -> None:
    assert not _exists(lambda: client.api.inspect_image(made[0].registry_tag))


def test_our_volumes_are_gone(report, made, client: docker.DockerClient) -> None:
    names = [made[0].volume, registry.volume_name()]
    assert not any(_exists(lambda n=n: client.api.inspect_volume(n)) for n in names)


def test_our_network_is_gone(report, made, client: docker.DockerClient) -> None:
    assert not _exists(lambda: client.api.inspect_network(made[0].network))


def test_foreign_container_stays(report, made, client: docker.DockerClient) -> None:
    assert _exists(lambda: client.api.inspect_container(made[1].container))


def test_foreign_volume_stays(report, made, client: docker.DockerClient) -> None:
    assert _exists(lambda: client.api.inspect_volume(made[1].volume))


def test_foreign_image_stays(report, made, client: docker.DockerClient) -> None:
    assert _exists(lambda: client.api.inspect_image(made[1].image))


def test_prepared_base_image_stays(report, client: docker.DockerClient) -> None:
    assert _exists(lambda: client.api.inspect_image(config.BASE_IMAGE))


def test_clean_reports_reclaimed_bytes(report) -> None:
    assert report.reclaimed_bytes > 0


def test_clean_reports_image_bytes(report) -> None:
    assert report.reclaimed["image"] > 0


def test_clean_counts_per_kind(report) -> None:
    assert (report.counts["container"], report.counts["volume"], report.counts["network"]) == (
        2, 2, 1)


def test_clean_is_safe_to_repeat(report, client: docker.DockerClient) -> None:
    again = cleanup.clean(client=client, show=False)
    assert (sum(again.counts.values()), again.reclaimed_bytes) == (0, 0)


@pytest.fixture
def own(ns: config.Settings, client: docker.DockerClient) -> Iterator[config.Settings]:
    """A namespace of its own, for a test that cleans with the docker CLI."""
    before = config.settings()
    chosen = config.use(replace(ns, user=f"{ns.namespace}-sh"[:30]))
    yield chosen
    cleanup.clean(client=client, show=False)
    config.use(before)


def test_the_echoed_commands_clean_what_clean_does(own: config.Settings,
                                                   client: docker.DockerClient) -> None:
    """The commands the report shows, run in a shell as printed, remove this namespace's
    container, image, volume and network, and leave an unlabelled volume alone."""
    assert shutil.which("docker"), "this test runs the echoed commands with the docker CLI"
    labels = own.labels("app")
    # one step on the tagged base: the image the shell removes leaves no parent behind
    label = " ".join(f"{k}={v}" for k, v in own.image_labels().items())
    dockerfile = io.BytesIO(f"FROM {config.BASE_IMAGE}\nLABEL {label}\n".encode())
    image, _ = client.images.build(fileobj=dockerfile, tag=own.image_name("by-shell"),
                                   pull=False, rm=True)
    volume = client.volumes.create(name=own.container_name("data"), labels=labels)
    network = client.networks.create(own.container_name("net"), labels=labels)
    container = client.containers.create(image.id, ["true"], name=own.container_name("app"),
                                         labels=labels, network=network.name,
                                         volumes={volume.name: {"bind": "/data"}})
    foreign = client.volumes.create(name=own.container_name("nolabel-vol"))
    try:
        for command in cleanup.cleanup_commands():
            done = subprocess.run(["bash", "-c", str(command)], capture_output=True,
                                  text=True, timeout=120, check=False)
            assert done.returncode == 0, (str(command), done.stderr)
        assert not _exists(lambda: client.api.inspect_container(container.id))
        assert not _exists(lambda: client.api.inspect_image(image.id))
        assert not _exists(lambda: client.api.inspect_volume(volume.name))
        assert not _exists(lambda: client.api.inspect_network(network.id))
        assert _exists(lambda: client.api.inspect_volume(foreign.name))
    finally:
        foreign.remove(force=True)
