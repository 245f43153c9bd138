"""The session's own clean-up (conftest.reap_session) on the real engine: it finds what a
module namespace made, labelled or only named after it, removes it, and nothing else."""

from __future__ import annotations

import io
import secrets
from collections.abc import Iterator

import docker
import pytest

from labkit.engine import config

pytestmark = pytest.mark.integration


@pytest.fixture
def sub(settings: config.Settings) -> str:
    """A namespace of the session's that no other test uses."""
    return f"{settings.namespace}-reap{secrets.token_hex(2)}"


@pytest.fixture
def outsider(client: docker.DockerClient, settings: config.Settings) -> Iterator[dict]:
    """Things whose names only contain the session's namespace, or carry another one."""
    token = secrets.token_hex(3)
    made = {
        "volumes": [client.volumes.create(name=f"x{settings.namespace}-{token}").name,
                    client.volumes.create(name=f"other-{token}", labels={
                        config.LABEL_NAMESPACE: f"{settings.namespace}x"}).name],
    }
    base = client.images.get(config.BASE_IMAGE)
    tag = f"not{settings.namespace}/base:{token}"
    base.tag(tag)
    made["tags"] = [tag]
    yield made
    for name in made["volumes"]:
        client.volumes.get(name).remove(force=True)
    client.images.remove(tag)


def test_the_reaper_takes_what_a_module_namespace_left(client: docker.DockerClient, reaper,
                                                       sub: str, outsider: dict,
                                                       settings: config.Settings) -> None:
    session = reaper.leftovers(client, settings.namespace)
    assert not set(outsider["volumes"]) & set(session["volumes"])
    assert client.images.get(config.BASE_IMAGE).id not in session["images"]
    labels = {config.LABEL_NAMESPACE: sub}
    token = secrets.token_hex(3)
    made = {
        # labelled, with names the reaper cannot guess
        "containers": [client.containers.create(config.BASE_IMAGE, ["true"], labels=labels,
                                                name=f"anon-{token}").id,
                       # named after the namespace, no label at all
                       client.containers.create(config.BASE_IMAGE, ["true"],
                                                name=f"{sub}-app").id],
        "volumes": [client.volumes.create(name=f"anon-{token}", labels=labels).name,
                    client.volumes.create(name=f"{sub}-data").name],
        "networks": [client.networks.create(f"anon-{token}", labels=labels).id,
                     client.networks.create(f"{sub}-net").id],
    }
    base = client.images.get(config.BASE_IMAGE)
    base.tag(f"{sub}/base", "1")  # the stand-in tagged into the namespace: only the tag goes
    image, _ = client.images.build(fileobj=_dockerfile(), tag=f"{sub}/built:1", labels=labels,
                                   rm=True, pull=False)
    made["images"] = [image.id]

    found = reaper.leftovers(client, sub)
    for kind, idents in made.items():
        assert set(idents) <= set(found[kind]), kind
    assert base.id in found["images"]

    reaper.reap(client, sub)

    assert not any(reaper.leftovers(client, sub).values())
    with pytest.raises(docker.errors.NotFound):
        client.images.get(image.id)
    base.reload()
    assert f"{sub}/base:1" not in base.tags and config.BASE_IMAGE in base.tags
    names = {v.name for v in client.volumes.list()}
    assert set(outsider["volumes"]) <= names
    assert client.images.get(outsider["tags"][0]).id == base.id


def _dockerfile() -> io.BytesIO:
    return io.BytesIO(f"FROM {config.BASE_IMAGE}\nENV REAPED=1\n".encode())
