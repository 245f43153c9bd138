"""Clean-up against the real engine, with two learners on it: A, and B named ``A-b``.

A's clean-up removes what is A's, found without any label A typed: the image labkit built
for A, the image A built in the terminal (a plain ``docker build -t A/...``), the container
A ran from it (a plain ``docker run``), labkit's labelled container, volume and network,
and the registry A pushed to. It leaves B's images, containers and build cache (the
engine is shared), the prepared stand-ins, and what nobody of the course made.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import docker
import pytest

from labkit import cleanup, course, engine, images, registry
from labkit.engine import config
from labkit.images import owned

pytestmark = pytest.mark.integration
SUFFIX = "cln"
SLEEP = ["python", "-c", "import time; time.sleep(600)"]


def docker_cli(*args: str, cwd: Path | None = None) -> str:
    """Run the docker CLI as a learner types it (the engine of DOCKER_HOST)."""
    assert shutil.which("docker"), "this test types plain docker commands, as a learner does"
    done = subprocess.run(["docker", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, (args, done.stderr)
    return done.stdout.strip()


def write_app(folder: Path, greeting: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "app.py").write_text(course.app_source(greeting))
    (folder / "Dockerfile").write_text(course.DOCKERFILE)
    return folder


def exists(call) -> bool:
    try:
        call()
    except docker.errors.NotFound:
        return False
    return True


def ids(entries: list[dict]) -> set[str]:
    return {str(e["Id"]).removeprefix("sha256:") for e in entries}


@dataclass
class Learner:
    """What one learner made on the engine."""

    settings: config.Settings
    labkit_image: str = ""
    replaced: str = ""  # labkit's earlier build of the same name (a rebuild left it)
    recorded: frozenset[str] = frozenset()
    replaced_kept: bool = False  # the engine kept it, untagged (the classic store does)
    typed_over: str = ""  # a terminal build of labkit's name, then replaced by labkit's
    terminal_image: str = ""
    terminal_container: str = ""
    labkit_container: str = ""
    volume: str = ""
    network: str = ""
    registry_tag: str = ""


@dataclass
class Engine:
    a: Learner
    b: Learner
    foreign_container: str
    foreign_volume: str
    preview: object
    cache_before: set[str]
    b_chain: list[str]


def as_learner(s: config.Settings) -> config.Settings:
    return config.use(s)


def make(learner: Learner, cli: docker.DockerClient, root: Path, registry_too: bool) -> None:
    """labkit's build and containers, and a build and a run typed in the terminal."""
    s = as_learner(learner.settings)
    tag = uuid.uuid4().hex[:8]
    app = write_app(root / s.namespace / "labkit", f"Hello from {s.namespace}")
    learner.replaced = images.build(app, "python-hello-world", show=False).image_id
    # the same name built in the terminal, then labkit's rebuild takes the name back
    write_app(app, f"typed over by {s.namespace}")
    docker_cli("build", "-q", "-t", f"{s.namespace}/python-hello-world:latest", ".", cwd=app)
    learner.typed_over = cli.images.get(f"{s.namespace}/python-hello-world:latest").id
    write_app(app, f"Hello again from {s.namespace}")
    learner.labkit_image = images.build(app, "python-hello-world", show=False).image_id
    learner.recorded = frozenset(owned.recorded_ids())
    learner.replaced_kept = learner.replaced != learner.labkit_image and exists(
        lambda: cli.api.inspect_image(learner.replaced))
    term = write_app(root / s.namespace / "terminal", f"typed by {s.namespace}")
    docker_cli("build", "-q", "-t", f"{s.namespace}/typed:latest", ".", cwd=term)
    learner.terminal_image = cli.images.get(f"{s.namespace}/typed:latest").id
    learner.terminal_container = docker_cli("run", "-d", "--name", f"{s.namespace}-web-{tag}",
                                            f"{s.namespace}/typed", *SLEEP)
    learner.volume = cli.volumes.create(name=s.container_name(f"data-{tag}"),
                                        labels=s.labels("app")).name
    learner.network = cli.networks.create(s.container_name(f"net-{tag}"),
                                          labels=s.labels("app")).id
    learner.labkit_container = cli.containers.run(
        learner.labkit_image, SLEEP, detach=True, name=s.container_name(f"app-{tag}"),
        labels=s.labels("app"), volumes={learner.volume: {"bind": "/data"}},
        network=learner.network).id
    if registry_too:
        reg = registry.start_registry(client=cli)
        learner.registry_tag = str(registry.tag_for_registry(
            learner.labkit_image, registry=reg, client=cli))


@pytest.fixture(scope="module")
def two(ns: config.Settings, client: docker.DockerClient,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    before = config.settings()
    root = tmp_path_factory.mktemp("learners")
    a = Learner(replace(ns, user=ns.namespace[:27]))
    b = Learner(replace(ns, user=f"{a.settings.namespace}-b",
                        state_dir=tmp_path_factory.mktemp("state-b")))
    for learner in (a, b):
        as_learner(learner.settings)
        cleanup.clean(client=client, show=False)  # a previous run's leftovers
    cli = client
    make(b, cli, root, registry_too=False)
    make(a, cli, root, registry_too=True)
    # what nobody of the course made, though named after A (names decide nothing)
    foreign_name = a.settings.container_name(f"nolabel-{uuid.uuid4().hex[:6]}")
    f_volume = cli.volumes.create(name=f"{foreign_name}-vol").name
    f_container = cli.containers.create(config.BASE_IMAGE, ["true"], name=foreign_name,
                                        volumes={f_volume: {"bind": "/data"}}).id
    cli.containers.get(a.terminal_container).stop(timeout=0)  # a stopped one: prune takes it
    as_learner(a.settings)
    cache_before = {str(r.get("ID")) for r in engine.df(cli).get("BuildCache") or []}
    parents = {i["Id"]: i.get("ParentId") or "" for i in cli.api.images(all=True)}
    b_chain = images.parent_chain(parents, cli.images.get(b.labkit_image).id)
    preview = cleanup.preview_system_prune(client=cli)
    yield Engine(a, b, f_container, f_volume, preview, cache_before, b_chain)
    for action in (lambda: cli.api.remove_container(f_container, force=True, v=True),
                   lambda: cli.api.remove_volume(f_volume)):
        with contextlib.suppress(docker.errors.NotFound):
            action()
    for learner in (a, b):
        as_learner(learner.settings)
        cleanup.clean(client=cli, show=False)
    config.use(before)


@pytest.fixture(scope="module")
def report(two: Engine, client: docker.DockerClient) -> cleanup.CleanupReport:
    as_learner(two.a.settings)
    return cleanup.clean(client=client, show=False)


# ---------------------------------------------------------------- the rule, on the engine


def test_labkit_recorded_both_of_as_builds(two: Engine) -> None:
    recorded = {f"sha256:{i}" for i in two.a.recorded}
    assert {two.a.replaced, two.a.labkit_image} <= recorded


def test_an_untagged_leftover_of_a_rebuild_is_as_by_the_record(
        two: Engine, client: docker.DockerClient) -> None:
    """The classic store keeps the replaced image, untagged; the containerd store with
    BuildKit drops it at once (seen on 28.5)."""
    as_learner(two.a.settings)
    if two.a.replaced_kept:
        assert client.api.inspect_image(two.a.replaced)["RepoTags"] == []
        assert two.a.replaced.removeprefix("sha256:") in ids(owned.own_images(client))
    else:
        assert not exists(lambda: client.api.inspect_image(two.a.replaced))


def test_the_rule_finds_both_of_as_images_and_none_of_bs(two: Engine,
                                                         client: docker.DockerClient) -> None:
    as_learner(two.a.settings)
    mine = ids(owned.own_images(client))
    assert {two.a.labkit_image, two.a.terminal_image} <= {f"sha256:{i}" for i in mine}
    assert not {two.b.labkit_image, two.b.terminal_image} & {f"sha256:{i}" for i in mine}


def test_the_rule_finds_as_terminal_container_not_bs(two: Engine,
                                                     client: docker.DockerClient) -> None:
    as_learner(two.a.settings)
    mine = ids(owned.own_containers(client, all=True))
    assert two.a.terminal_container in mine
    assert not {two.b.terminal_container, two.b.labkit_container} & mine


# ---------------------------------------------------------------- preview (before clean)


def test_preview_lists_the_stopped_terminal_container_as_as(two: Engine) -> None:
    frame = two.preview
    rows = frame[(frame["kind"] == "container") & (frame["id"] == two.a.terminal_container[:12])]
    assert list(zip(rows["mine"], rows["namespace"], strict=True)) == [
        (True, two.a.settings.namespace)]


def test_preview_marks_every_image_as_builds_made_as_as(two: Engine) -> None:
    """labkit's replaced build and the terminal build labkit's rebuild untagged, where the
    store keeps them (the classic one does; containerd's drops an unused one at once), and
    nothing of A's among the rows marked "not the course's"."""
    frame = two.preview
    images = frame[frame["kind"] == "image"]
    made = {i.removeprefix("sha256:")[:12] for i in (
        two.a.replaced, two.a.typed_over, two.a.labkit_image, two.a.terminal_image)}
    rows = images[images["id"].isin(made)]
    assert (two.a.replaced.removeprefix("sha256:")[:12] in set(rows["id"])) == \
        two.a.replaced_kept
    assert list(rows["mine"]) == [True] * len(rows)
    assert set(rows["namespace"]) <= {two.a.settings.namespace}


def test_preview_marks_what_nobody_of_the_course_made(two: Engine) -> None:
    frame = two.preview
    rows = frame[(frame["kind"] == "container") & (frame["id"] == two.foreign_container[:12])]
    assert list(rows["course"]) == [False]


def test_preview_lists_every_unused_build_cache_record(two: Engine,
                                                       client: docker.DockerClient) -> None:
    unused = {str(r["ID"])[:12] for r in engine.df(client).get("BuildCache") or []
              if not r.get("InUse")}
    frame = two.preview
    assert set(frame[frame["kind"] == "build cache"]["id"]) == unused


def test_a_buildkit_engine_has_build_cache_to_preview(two: Engine,
                                                      client: docker.DockerClient) -> None:
    """Where the docker CLI builds with BuildKit, the terminal builds left cache records."""
    has_buildx = subprocess.run(["docker", "buildx", "version"], capture_output=True,
                                check=False, timeout=30).returncode == 0
    assert (len(two.cache_before) > 0) == has_buildx


# ---------------------------------------------------------------- A's clean-up


def test_as_labkit_image_is_gone(report, two: Engine, client: docker.DockerClient) -> None:
    assert not exists(lambda: client.api.inspect_image(two.a.labkit_image))


def test_as_replaced_build_is_gone(report, two: Engine, client: docker.DockerClient) -> None:
    assert not exists(lambda: client.api.inspect_image(two.a.replaced))


def test_as_terminal_image_is_gone(report, two: Engine, client: docker.DockerClient) -> None:
    assert not exists(lambda: client.api.inspect_image(two.a.terminal_image))


def test_as_registry_tag_is_gone(report, two: Engine, client: docker.DockerClient) -> None:
    assert not exists(lambda: client.api.inspect_image(two.a.registry_tag))


def test_as_containers_are_gone(report, two: Engine, client: docker.DockerClient) -> None:
    for ident in (two.a.terminal_container, two.a.labkit_container):
        assert not exists(lambda i=ident: client.api.inspect_container(i))


def test_as_volume_and_network_are_gone(report, two: Engine,
                                        client: docker.DockerClient) -> None:
    assert not exists(lambda: client.api.inspect_volume(two.a.volume))
    assert not exists(lambda: client.api.inspect_network(two.a.network))


def test_bs_images_stay(report, two: Engine, client: docker.DockerClient) -> None:
    for ident in (two.b.labkit_image, two.b.terminal_image):
        assert exists(lambda i=ident: client.api.inspect_image(i))


def test_bs_classic_build_cache_stays(report, two: Engine,
                                      client: docker.DockerClient) -> None:
    """The classic builder's cache is the parent images of B's build."""
    gone = [i for i in two.b_chain if not exists(lambda i=i: client.api.inspect_image(i))]
    assert gone == []


def test_bs_containers_stay_though_their_names_start_with_as(
        report, two: Engine, client: docker.DockerClient) -> None:
    for ident in (two.b.terminal_container, two.b.labkit_container):
        name = client.api.inspect_container(ident)["Name"].lstrip("/")
        assert name.startswith(f"{two.a.settings.namespace}-")


def test_bs_volume_and_network_stay(report, two: Engine, client: docker.DockerClient) -> None:
    assert exists(lambda: client.api.inspect_volume(two.b.volume))
    assert exists(lambda: client.api.inspect_network(two.b.network))


def test_the_build_cache_stays_on_a_shared_engine(report, two: Engine,
                                                  client: docker.DockerClient) -> None:
    after = {str(r.get("ID")) for r in engine.df(client).get("BuildCache") or []}
    assert two.cache_before <= after
    assert two.b.settings.namespace in report.build_cache


def test_the_stand_ins_and_what_nobody_made_stay(report, two: Engine,
                                                 client: docker.DockerClient) -> None:
    assert exists(lambda: client.api.inspect_image(config.BASE_IMAGE))
    assert exists(lambda: client.api.inspect_container(two.foreign_container))
    assert exists(lambda: client.api.inspect_volume(two.foreign_volume))


def test_the_report_counts_and_measures(report) -> None:
    assert (report.counts["container"] >= 3, report.counts["image"] >= 2,
            report.counts["volume"] >= 1, report.counts["network"]) == (True, True, True, 1)
    # each layer once, the base's not at all: less than the images' sizes added up
    assert 0 < report.reclaimed["image"] < report.image_sizes_added


def test_the_commands_are_plain(report, two: Engine) -> None:
    lines = [str(c) for c in report.commands]
    assert not any("label" in line or "org.labkit" in line for line in lines)
    assert f"{two.a.settings.namespace}/typed:latest" in " ".join(lines)


def test_clean_is_safe_to_repeat(report, two: Engine, client: docker.DockerClient) -> None:
    as_learner(two.a.settings)
    again = cleanup.clean(client=client, show=False)
    assert sum(n for k, n in again.counts.items() if k != "build cache") == 0


def test_the_echoed_commands_do_what_clean_does(two: Engine, client: docker.DockerClient,
                                                tmp_path: Path) -> None:
    """B cleans with the commands the plan prints, typed in a shell: B's things go, A's
    new terminal image stays."""
    as_learner(two.a.settings)
    typed = write_app(tmp_path / "a", "A again")
    docker_cli("build", "-q", "-t", f"{two.a.settings.namespace}/again", ".", cwd=typed)
    as_learner(two.b.settings)
    commands = cleanup.cleanup_commands(build_cache_prune=False, client=client)
    for command in commands:
        done = subprocess.run(["bash", "-c", str(command)], capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, (str(command), done.stderr)
    for ident in (two.b.labkit_image, two.b.terminal_image):
        assert not exists(lambda i=ident: client.api.inspect_image(i))
    assert not exists(lambda: client.api.inspect_container(two.b.terminal_container))
    assert exists(lambda: client.api.inspect_image(f"{two.a.settings.namespace}/again"))
    client.api.remove_image(f"{two.a.settings.namespace}/again")
