"""Many learners on one engine: each clean-up is proven from its own removals, and the
engine-wide calls (system df, image prune) of learners asking at once all succeed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from labkit import cleanup
from labkit.cleanup import shared_engine as others
from labkit.engine import config
from labkit.engine import disk as system
from labkit.engine.config import BASE_IMAGE, LABEL_NAMESPACE

pytestmark = pytest.mark.integration
SUFFIX = "oth"


MADE: set[str] = set()


@pytest.fixture(scope="module", autouse=True)
def reap(client: docker.DockerClient) -> Iterator[None]:
    """Remove every other learner's namespace these tests made, whatever the tests did."""
    yield
    for namespace in MADE:
        flt = {"label": [f"{LABEL_NAMESPACE}={namespace}"]}
        for c in client.api.containers(all=True, filters=flt):
            client.api.remove_container(c["Id"], force=True)
        for i in client.api.images(filters=flt):
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_image(i["Id"], force=True)
        for v in client.api.volumes(filters=flt).get("Volumes") or []:
            client.api.remove_volume(v["Name"], force=True)
    others.remove_canaries(client)


def other_learner(settings: config.Settings, name: str) -> str:
    """A namespace of another learner (removed at the end of the module)."""
    namespace = f"{settings.namespace}-{name}"[:30]
    MADE.add(namespace)
    return namespace


def make_things(cli: docker.DockerClient, namespace: str) -> dict[str, str]:
    """A stopped container, its commit as an image, and a volume, labelled ``namespace``."""
    labels = {LABEL_NAMESPACE: namespace, config.LABEL_ROLE: "test"}
    tag = uuid.uuid4().hex[:8]
    container = cli.api.create_container(BASE_IMAGE, ["true"], labels=labels,
                                         name=f"{namespace}-{tag}", network_disabled=True)["Id"]
    image = cli.api.commit(container, repository=f"{namespace}/thing", tag=tag,
                           conf={"Labels": labels})["Id"]
    volume = cli.api.create_volume(name=f"{namespace}-{tag}", labels=labels)["Name"]
    return {"container": container, "image": image.removeprefix("sha256:"), "volume": volume}


def canaries_left(cli: docker.DockerClient) -> list[str]:
    flt = {"label": [f"{LABEL_NAMESPACE}={others.canary_namespace()}"]}
    return [c["Id"] for c in cli.api.containers(all=True, filters=flt)] + [
        v["Name"] for v in cli.api.volumes(filters=flt).get("Volumes") or []] + [
        i["Id"] for i in cli.api.images(filters=flt)] + [
        n["Id"] for n in cli.api.networks(filters=flt)]


def test_the_check_holds_while_other_learners_things_come_and_go(
        ns: config.Settings, settings: config.Settings, client: docker.DockerClient) -> None:
    mine = make_things(client, ns.namespace)
    leaving = make_things(client, other_learner(settings, "leaves"))
    not_ours = others.record(client=client)
    # meanwhile another learner cleans up theirs, and a third one starts
    client.api.remove_container(leaving["container"], force=True)
    client.api.remove_volume(leaving["volume"])
    arriving = make_things(client, other_learner(settings, "arrives"))

    report = cleanup.clean(client=client, show=False)

    assert not (not_ours.before <= others.inventory(client))  # the engine-wide comparison fails
    assert not_ours.untouched_by(report, client=client), not_ours.problems
    assert {("container", mine["container"]), ("volume", mine["volume"])} <= set(report.removed)
    assert client.api.inspect_volume(arriving["volume"])["Name"] == arriving["volume"]
    assert client.api.inspect_image(arriving["image"])["Id"].endswith(arriving["image"])
    assert canaries_left(client) == []


def test_a_clean_up_that_took_a_canary_is_caught(ns: config.Settings,
                                                 client: docker.DockerClient) -> None:
    not_ours = others.record(client=client)
    report = cleanup.clean(client=client, show=False)
    client.api.remove_volume(not_ours.canaries["volume"])  # as a clean-up going too far would

    assert not_ours.untouched_by(report, client=client) is False
    assert not_ours.problems == [f"the canary volume {not_ours.canaries['volume'][:19]} is gone"]
    assert not_ours.untouched_by(report, client=client) is False  # asked again: same verdict
    assert canaries_left(client) == []


def test_a_removal_of_something_labelled_otherwise_is_caught(
        ns: config.Settings, settings: config.Settings, client: docker.DockerClient) -> None:
    foreign = make_things(client, other_learner(settings, "foreign"))
    not_ours = others.record(client=client)
    report = cleanup.clean(client=client, show=False)
    report.removed[("volume", foreign["volume"])] = other_learner(settings, "foreign")

    assert not_ours.untouched_by(report, client=client) is False
    assert any("which was not ours" in p for p in not_ours.problems)
    assert any(f"of {other_learner(settings, 'foreign')!r}" in p for p in not_ours.problems)


def test_learners_asking_for_disk_usage_and_prunes_at_once_all_get_answers(
        ns: config.Settings, client: docker.DockerClient) -> None:
    nobody = {"label": [f"{LABEL_NAMESPACE}={ns.namespace}-nobody"], "dangling": False}
    calls = [lambda: system.df(client)] * 6 + [lambda: system.prune_images(client, nobody)] * 4
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        answers = list(pool.map(lambda call: call(), calls))
    assert all("Images" in a for a in answers[:6])
    assert all("SpaceReclaimed" in a for a in answers[6:])


def test_two_learners_cleaning_at_once_each_remove_their_own(
        settings: config.Settings, client: docker.DockerClient) -> None:
    names = [other_learner(settings, f"at-once-{i}") for i in range(3)]
    made = {name: make_things(client, name) for name in names}
    procs = [subprocess.Popen([sys.executable, "-m", "labkit.cli", "clean"],
                              env={**os.environ, "LABKIT_USER": name},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in names]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * len(names), outputs
    for things in made.values():
        for kind, inspect in (("container", client.api.inspect_container),
                              ("image", client.api.inspect_image),
                              ("volume", client.api.inspect_volume)):
            with pytest.raises(docker.errors.NotFound):
                inspect(things[kind])
