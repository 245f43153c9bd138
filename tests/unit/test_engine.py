"""API version negotiation and what `docker info` says about the image store (no engine)."""

from __future__ import annotations

import pytest

from labkit import engine
from labkit.commands import docker as docker_cmd
from labkit.errors import EngineIncompatible
from labkit.images import build_command


@pytest.mark.parametrize(("server", "minimum", "chosen"), [
    ("1.41", "1.12", "1.41"),   # Docker 20.10: its own newest
    ("1.45", "1.24", "1.45"),   # Docker 26.1
    ("1.51", "1.24", "1.45"),   # Docker 28.5: the newest this docker-py speaks
    ("1.51", "1.44", "1.45"),   # Engine 29's floor: still above it
])
def test_negotiation_speaks_the_newest_version_both_know(server, minimum, chosen):
    assert engine.negotiate(server, minimum, client_max="1.45") == chosen


def test_an_engine_whose_floor_is_above_the_client_is_refused_with_its_own_fix():
    with pytest.raises(EngineIncompatible) as caught:
        engine.negotiate("1.60", "1.50", client_max="1.45")
    assert "needs API 1.50" in caught.value.message
    assert "pip install -U docker" in (caught.value.hint or "")
    assert "No Docker Engine" not in str(caught.value)


def test_an_engine_older_than_the_course_is_refused_as_too_old():
    with pytest.raises(EngineIncompatible) as caught:
        engine.negotiate("1.40", "1.12", client_max="1.45")
    assert "too old" in caught.value.message


def test_versions_compare_as_numbers_not_text():
    assert engine.negotiate("1.9", None, client_max="1.45", course_min="1.9") == "1.9"
    assert engine.negotiate("1.100", None, client_max="1.45") == "1.45"


@pytest.mark.parametrize(("status", "store"), [
    ([["Backing Filesystem", "extfs"], ["Supports d_type", "true"]], "graphdriver"),
    ([["driver-type", "io.containerd.snapshotter.v1"]], "containerd"),
    (None, "graphdriver"),
])
def test_image_store_is_read_from_the_driver_status(status, store):
    assert engine.image_store({"Driver": "overlayfs", "DriverStatus": status}) == store


@pytest.mark.parametrize(("version", "legacy"), [("20.10.24", True), ("23.0.0", False),
                                                   ("28.5.2+dfsg4", False), ("?", False)])
def test_which_builder_the_cli_uses_by_default(version, legacy):
    assert engine.legacy_cli_builder(version) is legacy


def test_the_echoed_build_selects_the_classic_builder_like_labkit():
    line = str(build_command("u/app:latest", "/ctx"))
    assert line.startswith("DOCKER_BUILDKIT=0 docker image build -t u/app:latest")


def test_command_environment_is_quoted():
    assert str(docker_cmd("ps", env={"A": "x y"})) == "A='x y' docker ps"
