"""Bad inputs around the registry, on the real engine: a registry answering 5xx (a real
server that does), a stopped registry, a corrupt state file. Each ends in a labkit error
with its fix, or is repaired, and nothing pushed or built is lost.

A wrong password and a push of a tag that does not exist are in test_registry.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from labkit import cleanup, registry
from labkit.containers import apps as containers
from labkit.engine import config
from labkit.engine import connection as engine
from labkit.engine.errors import RegistryError
from labkit.images import builder as images
from labkit.registry import password as state

SUFFIX = "badreg"

#: A server that answers 503 to everything, as a registry does when its storage fails.
FAILING_PY = '''import http.server
class Handler(http.server.BaseHTTPRequestHandler):
    def answer(self):
        self.send_response(503, "Service Unavailable")
        self.send_header("Content-Length", "0")
        self.end_headers()
    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = answer
http.server.HTTPServer(("0.0.0.0", 5000), Handler).serve_forever()
'''


def _build(folder: Path, name: str, dockerfile: str, files: dict[str, str]) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for file, text in files.items():
        (folder / file).write_text(text)
    (folder / "Dockerfile").write_text(dockerfile)
    return images.build(folder, name, show=False).tag


@pytest.fixture(scope="module")
def tiny(ns: config.Settings, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A one-file image (FROM scratch): quick to push."""
    return _build(tmp_path_factory.mktemp("tiny"), "tiny",
                  "FROM scratch\nCOPY hello.txt /hello.txt\n", {"hello.txt": "hello\n"})


@pytest.fixture(scope="module")
def reg(ns: config.Settings, client: docker.DockerClient) -> Iterator[registry.Registry]:
    yield registry.start_registry(client=client)
    cleanup.clean(client=client, show=False)


@pytest.fixture(scope="module")
def pushed(reg: registry.Registry, tiny: str, client: docker.DockerClient
           ) -> registry.TaggedName:
    tagged = registry.tag_for_registry(tiny, "tiny", registry=reg, client=client)
    registry.login(reg, client=client)
    registry.push(tagged, registry=reg, client=client, show=False)
    return tagged


@pytest.fixture
def failing(ns: config.Settings, client: docker.DockerClient,
            tmp_path: Path) -> Iterator[registry.Registry]:
    """A registry address where a real server answers 503 to every request."""
    image = _build(tmp_path, "failing-registry",
                   f'FROM {config.BASE_IMAGE}\nCOPY server.py /server.py\n'
                   'CMD ["python", "-u", "/server.py"]\n', {"server.py": FAILING_PY})
    app = containers.run(image, "failing-registry", client=client)
    yield registry.Registry(name=app.name, address=f"localhost:{app.host_port}",
                            api_url=f"http://{engine.publish_host()}:{app.host_port}",
                            username=ns.user, local=True)
    app.remove()


def test_a_registry_answering_5xx_is_a_registry_error(failing: registry.Registry, tiny: str,
                                                      client: docker.DockerClient):
    with pytest.raises(RegistryError) as listed:
        registry.catalog(registry=failing)
    assert f"{failing.address} answered 503 Service Unavailable" in listed.value.message
    assert f"`docker container logs {failing.name}`" in (listed.value.hint or "")
    with pytest.raises(RegistryError, match="answered 503"):
        registry.tags(failing.repository("tiny"), registry=failing)
    with pytest.raises(RegistryError, match="answered 503"):
        registry.manifest(failing.repository("tiny"), registry=failing)
    with pytest.raises(RegistryError, match="503") as login:
        registry.login(failing, client=client)
    assert "its logs say why" in (login.value.hint or "")
    tagged = registry.tag_for_registry(tiny, "tiny", registry=failing, client=client)
    with pytest.raises(RegistryError) as caught:  # the engine's words differ by image store
        registry.push(tagged, registry=failing, client=client, show=False)
    assert f"Push of {tagged} failed" in caught.value.message
    assert "its logs say why" in (caught.value.hint or "")
    assert client.images.get(tiny).id == client.images.get(str(tagged)).id  # nothing lost


def test_a_stopped_registry_says_start_it_and_keeps_the_data(reg: registry.Registry,
                                                             pushed: registry.TaggedName,
                                                             tiny: str,
                                                             client: docker.DockerClient):
    registry.stop_registry(client=client)
    try:
        with pytest.raises(RegistryError) as pushing:
            registry.push(pushed, registry=reg, client=client, show=False)
        assert "labkit registry start" in (pushing.value.hint or "")
        with pytest.raises(RegistryError, match="does not answer") as listing:
            registry.catalog(registry=reg)
        assert "labkit registry start" in (listing.value.hint or "")
        assert client.images.get(str(pushed)).id == client.images.get(tiny).id
    finally:
        again = registry.start_registry(client=client)
    assert again.address == reg.address
    assert registry.tags(pushed.repository, registry=again) == ["latest"]


def test_a_corrupt_state_file_is_replaced_and_nothing_is_lost(reg: registry.Registry,
                                                              pushed: registry.TaggedName,
                                                              ns: config.Settings,
                                                              client: docker.DockerClient):
    registry.start_registry(client=client)
    ns.state_file.write_text("{this is not json")
    again = registry.start_registry(client=client)
    assert again.address == reg.address  # every localhost:PORT/... tag still works
    assert registry.login(again, client=client).status == "Login Succeeded"
    assert registry.tags(pushed.repository, registry=again) == ["latest"]
    assert isinstance(json.loads(ns.state_file.read_text()), dict)
    assert stat.S_IMODE(ns.state_file.stat().st_mode) == 0o600


def test_a_wrong_password_or_a_missing_tag_loses_nothing(reg: registry.Registry,
                                                          pushed: registry.TaggedName,
                                                          client: docker.DockerClient,
                                                          monkeypatch: pytest.MonkeyPatch):
    """test_registry checks both errors' words; here, that the registry and the pushed image
    are unharmed by them."""
    with monkeypatch.context() as wrong:
        wrong.setenv(state.PASSWORD_ENV, "not-the-password")
        with pytest.raises(RegistryError, match="wrong user name or password"):
            registry.login(reg, client=client)
    with pytest.raises(RegistryError, match="does not exist"):
        registry.push(reg.repository("never-built"), registry=reg, client=client, show=False)
    assert registry.login(reg, client=client).status == "Login Succeeded"
    assert registry.tags(pushed.repository, registry=reg) == ["latest"]
