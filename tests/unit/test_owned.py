"""The rule "this image / container is this learner's", and the record of labkit's builds."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from labkit.images import owned
from tests.unit.conftest import UseSettings


@pytest.mark.parametrize(("reference", "path"), [
    ("ann/app:latest", "ann/app"),
    ("ann/app", "ann/app"),
    ("localhost:5000/ann/app:v2", "ann/app"),
    ("127.0.0.1:41234/ann/app:latest", "ann/app"),
    ("localhost/ann/app", "ann/app"),
    ("registry.example.org/ann/app:1", "ann/app"),
    ("registry.example.org:443/ann/app@sha256:" + "a" * 64, "ann/app"),
    ("python:3.11-slim-bookworm", "python"),
    ("docker.io/library/python:3.11", "library/python"),
])
def test_repository_path_drops_host_tag_and_digest(reference: str, path: str) -> None:
    assert owned.repository_path(reference) == path


@pytest.mark.parametrize(("reference", "mine"), [
    ("ann/python-hello-world:latest", True),
    ("localhost:5000/ann/python-hello-world:latest", True),
    ("localhost/ann/x", True),
    ("registry.example.org/ann/x:1", True),
    ("ann-b/python-hello-world:latest", False),  # another learner whose name starts like ours
    ("localhost:5000/ann-b/x", False),
    ("ann_b/x", False),
    ("ann-b-web", False),
    ("ann:latest", False),  # a repository named like the learner is not under it
    ("ann", False),
    ("annb/x", False),
    ("bob/ann/x", False),
    ("localhost:5000/bob/ann/x", False),
    ("python:3.11-slim-bookworm", False),
    ("<none>:<none>", False),
    ("", False),
])
def test_is_own_reference_for_ann(course_settings: UseSettings, reference: str,
                                  mine: bool) -> None:
    course_settings(user="ann")
    assert owned.is_own_reference(reference) is mine


def test_a_name_with_dash_owns_only_its_own(course_settings: UseSettings) -> None:
    course_settings(user="ann-b")
    assert owned.is_own_reference("ann-b/x:1")
    assert not owned.is_own_reference("ann/x:1")
    assert not owned.is_own_reference("ann-b-c/x:1")


def test_record_round_trip_and_forget(course_settings: UseSettings, tmp_path: Path) -> None:
    course_settings(user="ann", state_dir=tmp_path)
    assert owned.recorded_ids() == set()
    owned.remember_build("sha256:" + "1" * 64, "ann/app:latest")
    owned.remember_build("2" * 64, "ann/app:latest")
    owned.remember_build("sha256:" + "1" * 64, "ann/app:latest")  # once only
    assert owned.recorded_ids() == {"1" * 64, "2" * 64}
    assert owned.record_file().read_text().count("\n") == 2
    owned.forget(["sha256:" + "1" * 64])
    assert owned.recorded_ids() == {"2" * 64}
    assert (owned.record_file().stat().st_mode & 0o777) == 0o600


def test_records_are_per_learner(course_settings: UseSettings, tmp_path: Path) -> None:
    course_settings(user="ann-b", state_dir=tmp_path)
    owned.remember_build("3" * 64, "ann-b/app:latest")
    course_settings(user="ann", state_dir=tmp_path)
    assert owned.recorded_ids() == set()


def test_a_damaged_record_line_is_skipped(course_settings: UseSettings, tmp_path: Path) -> None:
    course_settings(user="ann", state_dir=tmp_path)
    owned.record_file().write_text("not-an-id x\n" + "4" * 64 + " ann/a:1\n\n")
    assert owned.recorded_ids() == {"4" * 64}


def test_concurrent_records_keep_every_id(course_settings: UseSettings, tmp_path: Path) -> None:
    s = course_settings(user="ann", state_dir=tmp_path)
    ids = [f"{n:064x}" for n in range(40)]
    threads = [threading.Thread(target=owned.remember_build, args=(i, "ann/a:1", s))
               for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert owned.recorded_ids(s) == set(ids)


def test_untagged_image_is_ours_only_when_recorded(course_settings: UseSettings,
                                                   tmp_path: Path) -> None:
    course_settings(user="ann", state_dir=tmp_path)
    none = {"Id": "sha256:" + "5" * 64, "RepoTags": ["<none>:<none>"]}
    other = {"Id": "sha256:" + "6" * 64, "RepoTags": []}
    assert not owned.is_own_image(none)
    owned.remember_build("5" * 64, "ann/app:latest")
    assert owned.is_own_image(none)
    assert not owned.is_own_image(other)
    tagged = {"Id": "sha256:" + "7" * 64, "RepoTags": ["ann-b/app:latest", "ann/app:v1"]}
    assert owned.own_tags(tagged) == ["ann/app:v1"]
    assert owned.own_image_ids([none, other, tagged]) == {"5" * 64, "7" * 64}


def test_container_by_label_or_by_image(course_settings: UseSettings) -> None:
    course_settings(user="ann")
    mine = {"7" * 64}
    typed = {"Image": "ann/app", "ImageID": "sha256:" + "8" * 64, "Labels": {}}
    by_id = {"Image": "sha256:" + "7" * 64, "ImageID": "sha256:" + "7" * 64, "Labels": None}
    labelled = {"Image": "registry:2", "ImageID": "sha256:" + "9" * 64,
                "Labels": {"org.labkit.namespace": "ann"}}
    foreign_label = {"Image": "ann/app", "ImageID": "sha256:" + "7" * 64,
                     "Labels": {"org.labkit.namespace": "ann-b"}}
    neighbour = {"Image": "ann-b/app", "ImageID": "sha256:" + "a" * 64, "Labels": {}}
    assert owned.is_own_container(typed, mine)
    assert owned.is_own_container(by_id, mine)
    assert owned.is_own_container(labelled, mine)
    assert not owned.is_own_container(foreign_label, mine)  # the label decides
    assert not owned.is_own_container(neighbour, mine)
    assert owned.foreign_owner(neighbour) == "ann-b"
    assert owned.foreign_owner(foreign_label) == "ann-b"
    assert owned.foreign_owner(typed) is None
    assert owned.foreign_owner({"RepoTags": ["python:3.11-slim-bookworm"]}) is None
