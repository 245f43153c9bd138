"""Clean-up without an engine: a fake low-level API that records what was removed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, NotFound

from labkit.cleanup import labelled as cleanup
from labkit.engine import config

OURS = {"org.labkit.managed": "true", "org.labkit.namespace": "h3", "org.labkit.role": "app"}
OTHER_NS = {"org.labkit.managed": "true", "org.labkit.namespace": "h2", "org.labkit.role": "app"}
BASE = {"org.labkit.managed": "true", "org.labkit.role": "base", "org.labkit.standin": "true"}


def matches(labels: dict[str, str] | None, wanted: list[str]) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, _, v in (w.partition("=") for w in wanted))


class FakeAPI:
    """Just enough of docker-py's APIClient for cleanup.py."""

    def __init__(self) -> None:
        self.containers_ = [
            {"Id": "c1" * 32, "Names": ["/h3-app"], "SizeRw": 1000, "Labels": OURS,
             "State": "running", "ImageID": "sha256:i1", "Mounts": [], "NetworkSettings": {}},
            {"Id": "c2" * 32, "Names": ["/mine"], "SizeRw": 7, "Labels": {},
             "State": "exited", "ImageID": "sha256:i9", "Mounts": [
                 {"Type": "volume", "Name": "foreign"}], "NetworkSettings": {}},
        ]
        self.images_ = [
            {"Id": "sha256:i1", "RepoTags": ["h3/app:latest", "localhost:1/h3/app:latest"],
             "Labels": OURS, "Size": 500, "SharedSize": 400},
            {"Id": "sha256:i2", "RepoTags": ["<none>:<none>"], "Labels": OURS, "Size": 450,
             "SharedSize": 400},
            {"Id": "sha256:i3", "RepoTags": ["h2/app:latest"], "Labels": OTHER_NS, "Size": 9,
             "SharedSize": 0},
            {"Id": "sha256:base", "RepoTags": [config.BASE_IMAGE], "Labels": BASE, "Size": 400,
             "SharedSize": 400},
            {"Id": "sha256:i9", "RepoTags": ["mine:1"], "Labels": BASE, "Size": 401,
             "SharedSize": 400},
            {"Id": "sha256:dang", "RepoTags": [], "Labels": None, "Size": 3, "SharedSize": 0},
        ]
        self.volumes_ = [{"Name": "h3-data", "Labels": OURS},
                         {"Name": "foreign", "Labels": None}]
        self.networks_ = [{"Id": "n1", "Name": "h3-net", "Labels": OURS, "Driver": "bridge"},
                          {"Id": "n0", "Name": "bridge", "Labels": {}, "Driver": "bridge"},
                          {"Id": "n2", "Name": "mine-net", "Labels": {}, "Driver": "bridge"}]
        self.removed: list[tuple[str, str]] = []
        self.in_use: set[str] = set()

    # listing
    def containers(self, all: bool = False, size: bool = False, filters: Any = None):
        return [c for c in self.containers_ if matches(c["Labels"], filters["label"])]

    def images(self, all: bool = False, filters: Any = None):
        wanted = (filters or {}).get("label", [])
        return [i for i in self.images_ if matches(i["Labels"], wanted)]

    def volumes(self, filters: Any = None):
        return {"Volumes": [v for v in self.volumes_ if matches(v["Labels"], filters["label"])]}

    def networks(self, filters: Any = None):
        wanted = (filters or {}).get("label", [])
        return [n for n in self.networks_ if matches(n["Labels"], wanted)]

    # removing
    def remove_container(self, ident: str, v: bool = False, force: bool = False) -> None:
        self.removed.append(("container", ident))
        self.containers_ = [c for c in self.containers_ if c["Id"] != ident]

    def prune_images(self, filters: Any) -> dict[str, Any]:
        self.last_prune = filters
        gone = [i for i in self.images_ if matches(i["Labels"], filters["label"])
                and i["Id"] not in self.in_use]
        self.images_ = [i for i in self.images_ if i not in gone]
        self.removed += [("image", i["Id"]) for i in gone]
        return {"ImagesDeleted": [{"Deleted": i["Id"]} for i in gone], "SpaceReclaimed": 0}

    def remove_image(self, ref: str) -> None:
        self.removed.append(("image", ref))
        self.images_ = [i for i in self.images_ if ref not in i["RepoTags"]]

    def remove_volume(self, name: str) -> None:
        if name == "gone-meanwhile":
            raise NotFound("no such volume")
        if name in self.in_use:
            raise APIError("in use", response=type("R", (), {"status_code": 409})())
        self.removed.append(("volume", name))

    def remove_network(self, ident: str) -> None:
        self.removed.append(("network", ident))


class FakeClient:
    def __init__(self) -> None:
        self.api = FakeAPI()

    def df(self) -> dict[str, Any]:
        return {"Containers": self.api.containers_, "Images": self.api.images_,
                "Volumes": [{**v, "UsageData": {"Size": 2000, "RefCount": 0}}
                            for v in self.api.volumes_],
                "BuildCache": [{"ID": "b1", "Type": "regular", "Description": "RUN x",
                                "InUse": False, "Shared": False, "Size": 11}]}


@pytest.fixture(autouse=True)
def h3(tmp_path: Path):
    before = config.settings()
    config.use(config.Settings(user="h3", state_dir=tmp_path))
    yield
    config.use(before)


def test_clean_removes_only_our_container() -> None:
    fake = FakeClient()
    cleanup.clean(client=fake, show=False)
    assert [x for x in fake.api.removed if x[0] == "container"] == [("container", "c1" * 32)]


def test_clean_prunes_tagged_images_too() -> None:
    fake = FakeClient()
    cleanup.clean(client=fake, show=False)
    assert fake.api.last_prune["dangling"] is False


def test_clean_removes_both_of_our_images_and_no_other() -> None:
    fake = FakeClient()
    cleanup.clean(client=fake, show=False)
    assert {x[1] for x in fake.api.removed if x[0] == "image"} == {"sha256:i1", "sha256:i2"}


def test_clean_measures_image_bytes_when_the_engine_says_zero() -> None:
    report = cleanup.clean(client=FakeClient(), show=False)
    assert report.reclaimed["image"] == (500 - 400) + (450 - 400)


def test_clean_counts_container_and_volume_bytes() -> None:
    report = cleanup.clean(client=FakeClient(), show=False)
    assert (report.reclaimed["container"], report.reclaimed["volume"]) == (1000, 2000)


def test_clean_keeps_the_base_image_by_default() -> None:
    fake = FakeClient()
    cleanup.clean(client=fake, show=False)
    assert "sha256:base" in {i["Id"] for i in fake.api.images_}


def test_include_base_removes_the_prepared_image_not_a_derived_one() -> None:
    fake = FakeClient()
    cleanup.clean(include_base=True, client=fake, show=False)
    assert {i["Id"] for i in fake.api.images_} == {"sha256:i3", "sha256:i9", "sha256:dang"}


def test_image_in_use_is_reported_kept() -> None:
    fake = FakeClient()
    fake.api.in_use.add("sha256:i2")
    report = cleanup.clean(client=fake, show=False)
    assert list(report.kept["name"]) == ["<none>"]


def test_volume_in_use_is_kept_not_an_error() -> None:
    fake = FakeClient()
    fake.api.in_use.add("h3-data")
    report = cleanup.clean(client=fake, show=False)
    assert report.counts["volume"] == 0 and report.reclaimed["volume"] == 0


def test_volume_gone_meanwhile_counts_as_done() -> None:
    fake = FakeClient()
    fake.api.volumes_.append({"Name": "gone-meanwhile", "Labels": OURS})
    report = cleanup.clean(client=fake, show=False)
    assert "gone" in set(report.items["outcome"])


def test_clean_removes_our_network_only() -> None:
    fake = FakeClient()
    cleanup.clean(client=fake, show=False)
    assert [x for x in fake.api.removed if x[0] == "network"] == [("network", "n1")]


def test_container_command_substitutes_the_label_listing() -> None:
    first = str(cleanup.cleanup_commands()[0])
    assert first == ("docker container rm -f -v $(docker ps -aq --filter "
                     "label=org.labkit.namespace=h3)")


def test_image_command_prunes_all_not_only_dangling() -> None:
    assert str(cleanup.cleanup_commands()[1]).startswith("docker image prune -a -f --filter")


# ---------------------------------------------------------------- prune preview


def test_preview_lists_stopped_not_running_containers() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert list(frame[frame["kind"] == "container"]["name"]) == ["mine"]


def test_preview_marks_what_the_course_did_not_make() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert not frame[frame["name"] == "mine"]["course"].iloc[0]


def test_preview_lists_only_dangling_images() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert list(frame[frame["kind"] == "image"]["id"]) == ["i2", "dang"]


def test_preview_skips_default_networks() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert set(frame[frame["kind"] == "network"]["name"]) == {"h3-net", "mine-net"}


def test_preview_volumes_need_the_volumes_flag() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert set(frame[frame["kind"] == "volume"]["removed_by"]) == {
        "docker system prune --volumes"}


def test_preview_includes_unused_build_cache() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert list(frame[frame["kind"] == "build cache"]["bytes"]) == [11]


def test_preview_removes_nothing() -> None:
    fake = FakeClient()
    cleanup.preview_system_prune(client=fake)
    assert fake.api.removed == []


def test_preview_names_the_command() -> None:
    frame = cleanup.preview_system_prune(client=FakeClient())
    assert str(frame.attrs["command"]) == "docker system prune"


def test_clean_takes_an_image_with_the_namespace_label_alone() -> None:
    fake = FakeClient()  # built with labkit's one label on a base without labkit labels
    fake.api.images_.append({"Id": "sha256:one", "RepoTags": ["h3/one:latest"],
                             "Labels": {"org.labkit.namespace": "h3"}, "Size": 5,
                             "SharedSize": 0})
    report = cleanup.clean(client=fake, show=False)
    assert "h3/one:latest" in report.names("image")
    assert ("image", "sha256:i3") not in fake.api.removed  # another namespace's stays


def test_the_report_names_each_removed_object_with_its_namespace() -> None:
    report = cleanup.clean(client=FakeClient(), show=False)
    assert report.removed == {("container", "c1" * 32): "h3", ("image", "i1"): "h3",
                              ("image", "i2"): "h3", ("volume", "h3-data"): "h3",
                              ("network", "n1"): "h3"}
    assert report.deleted_images == {"i1", "i2"}
