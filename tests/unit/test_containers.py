"""Unit tests of labkit.containers.apps and labkit.engine.wait (fake client, no engine)."""

from __future__ import annotations

import docker.errors
import pytest

from labkit import containers
from labkit.engine import config
from labkit.engine.errors import ImageMissing, LabkitError
from labkit.engine.wait import wait_until

from .conftest import FakeClient

OURS = {"org.labkit.managed": "true", "org.labkit.namespace": "h2", "org.labkit.role": "app"}


@pytest.fixture(autouse=True)
def h2_settings(course_settings):
    course_settings(user="h2", bind_ip="127.0.0.1")
    yield config.settings()


# ------------------------------------------------------------------ shaping


def test_diff_kinds_follow_the_engine_numbering():
    frame = containers.diff_frame([
        {"Path": "/etc", "Kind": 0},
        {"Path": "/tmp/x", "Kind": 1},
        {"Path": "/etc/issue", "Kind": 2},
    ])
    assert frame.to_dict("records") == [
        {"path": "/etc", "kind": "changed", "letter": "C"},
        {"path": "/tmp/x", "kind": "added", "letter": "A"},
        {"path": "/etc/issue", "kind": "deleted", "letter": "D"},
    ]


def test_diff_of_an_untouched_container_is_empty_with_columns():
    frame = containers.diff_frame(None)
    assert frame.empty
    assert list(frame.columns) == ["path", "kind", "letter"]


def test_container_list_is_shaped_like_docker_ps():
    frame = containers.containers_frame([{
        "Id": "b5da45b8efaf308597ddb39e8a3e0a5a",
        "Names": ["/h2-hello"],
        "Image": "h2/hello:latest",
        "State": "running",
        "Status": "Up 2 seconds",
        "Ports": [{"IP": "127.0.0.1", "PrivatePort": 5000, "PublicPort": 32769, "Type": "tcp"}],
        "Labels": OURS,
    }])
    assert frame.to_dict("records") == [{
        "name": "h2-hello", "image": "h2/hello:latest", "status": "Up 2 seconds",
        "state": "running", "ports": "127.0.0.1:32769->5000/tcp", "id": "b5da45b8efaf",
        "role": "app",
    }]


# ------------------------------------------------------------------ commands


def test_run_command():
    cmd = containers.run_command("h2-hello", "h2/hello:latest", 5000, "127.0.0.1")
    assert str(cmd) == "docker container run -d --name h2-hello -p 127.0.0.1::5000 h2/hello:latest"
    init = containers.run_command("h2-quick", "h2/hello:latest", 5000, "127.0.0.1", init=True)
    assert str(init) == ("docker container run -d --init --name h2-quick -p 127.0.0.1::5000 "
                         "h2/hello:latest")


@pytest.mark.parametrize(
    ("cmd", "text"),
    [
        (containers.logs_command("h2-hello"), "docker container logs h2-hello"),
        (containers.logs_command("h2-hello", tail=5), "docker container logs --tail 5 h2-hello"),
        (containers.stop_command("h2-hello"), "docker container stop h2-hello"),
        (containers.remove_command("h2-hello"), "docker container rm -f h2-hello"),
        (containers.diff_command("h2-hello"), "docker container diff h2-hello"),
    ],
)
def test_equivalent_commands(cmd, text):
    assert str(cmd) == text


def test_list_command_is_the_plain_listing():
    assert str(containers.list_command()) == "docker container ls --all"


# ------------------------------------------------------------------ run() with a fake client


class FakeContainer:
    def __init__(self, name: str, labels: dict, image: str = "busybox:latest") -> None:
        self.name, self.labels, self.id = name, labels, "f" * 64
        self.attrs = {"Config": {"Labels": labels, "Image": image}, "Image": "sha256:" + "9" * 64}
        self.removed = False

    def remove(self, force: bool = False) -> None:
        self.removed = True


class FakeContainers:
    def __init__(self, existing: FakeContainer | None) -> None:
        self.existing = existing
        self.create_kwargs: dict | None = None

    def get(self, name: str) -> FakeContainer:
        if self.existing is None or name != self.existing.name:
            raise docker.errors.NotFound(f"No such container: {name}")
        return self.existing

    def create(self, image: str, **kwargs):
        self.create_kwargs = {"image": image, **kwargs}
        raise docker.errors.ImageNotFound(f"No such image: {image}")


def client_with(existing: FakeContainer | None) -> FakeClient:
    """A client whose containers hold ``existing`` (or nothing)."""
    return FakeClient(containers=FakeContainers(existing))


def test_run_refuses_to_replace_a_foreign_container():
    foreign = FakeContainer("h2-hello", {})
    client = client_with(foreign)
    with pytest.raises(LabkitError) as info:
        containers.run("h2/hello:latest", "hello", client=client)
    assert "h2-hello" in info.value.message
    assert foreign.removed is False
    assert client.containers.create_kwargs is None


def test_run_replaces_the_learners_own_terminal_container():
    typed = FakeContainer("h2-hello", {}, image="h2/hello")  # `docker run --name h2-hello h2/hello`
    with pytest.raises(ImageMissing):
        containers.run("h2/hello:latest", "hello", client=client_with(typed))
    assert typed.removed is True


def test_run_refuses_a_neighbours_terminal_container():
    typed = FakeContainer("h2-hello", {}, image="h2-b/hello")
    with pytest.raises(LabkitError):
        containers.run("h2/hello:latest", "hello", client=client_with(typed))
    assert typed.removed is False


def test_run_replaces_its_own_container_and_publishes_on_the_bind_ip():
    ours = FakeContainer("h2-hello", OURS)
    client = client_with(ours)
    with pytest.raises(ImageMissing):  # the fake has no image: stops right after create
        containers.run("h2/hello:latest", "hello", client=client)
    assert ours.removed is True
    kwargs = client.containers.create_kwargs
    assert kwargs is not None
    assert kwargs["name"] == "h2-hello"
    assert kwargs["ports"] == {"5000/tcp": ("127.0.0.1", None)}
    assert kwargs["labels"] == OURS


def test_remove_refuses_a_foreign_container():
    foreign = FakeContainer("h2-hello", {"org.labkit.managed": "true",
                                         "org.labkit.namespace": "someone-else"})
    with pytest.raises(LabkitError):
        containers.remove("hello", client=client_with(foreign))
    assert foreign.removed is False


def test_remove_of_a_missing_container_is_done():
    containers.remove("hello", client=client_with(None))
    containers.remove("hello", client=client_with(None))


# ------------------------------------------------------------------ wait_until


def test_wait_until_returns_the_first_truthy_value():
    values = iter([None, 0, "ready"])
    assert wait_until(lambda: next(values), timeout=5, interval=0) == "ready"


def test_wait_until_times_out_naming_what_it_waited_for():
    with pytest.raises(TimeoutError, match="the app"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message="the app")


def test_wait_until_lets_the_predicate_stop_early():
    def exited() -> bool:
        raise RuntimeError("container exited")

    with pytest.raises(RuntimeError):
        wait_until(exited, timeout=5)


def test_logs_are_plain_text_without_colour_codes():
    from labkit.engine.text import strip_ansi

    assert strip_ansi("\x1b[31m\x1b[1mWARNING: dev server\x1b[0m\n") == "WARNING: dev server\n"
