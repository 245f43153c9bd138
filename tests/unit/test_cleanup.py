"""Clean-up without an engine: a fake low-level API that removes as the engine does (an
image by name is untagged, and deleted with its last name unless a container uses it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from docker.errors import APIError, NotFound

from labkit import cleanup
from labkit.engine import config
from labkit.images import owned
from labkit.layers import sharing
from labkit.layers.sharing import ImageStack

from .conftest import FakeClient

OURS = {"org.labkit.managed": "true", "org.labkit.namespace": "h3", "org.labkit.role": "app"}
OTHER_NS = {"org.labkit.managed": "true", "org.labkit.namespace": "h3-b", "org.labkit.role": "app"}
BASE = {"org.labkit.managed": "true", "org.labkit.role": "base", "org.labkit.standin": "true"}
RECORDED = "a2" * 32  # an untagged image labkit recorded building for h3


def matches(labels: dict[str, str] | None, wanted: list[str]) -> bool:
    labels = labels or {}
    return all(labels.get(k) == v for k, _, v in (w.partition("=") for w in wanted))


def conflict(text: str) -> APIError:
    return APIError(text, response=type("R", (), {"status_code": 409})())


#: each image's layers, bottom first: (diff ID, bytes, the step that made it). The base's
#: layer L0 stays; h3's two images share the RUN layer F (the same chain: stored once).
LAYERS: dict[str, list[tuple[str, int, str]]] = {
    "base": [("sha256:l0", 400, "ADD rootfs.tar /")],
    "a1" * 32: [("sha256:l0", 400, "ADD rootfs.tar /"), ("sha256:f", 40, "RUN pip install flask"),
                ("sha256:a", 60, "COPY app.py /app.py")],
    RECORDED: [("sha256:l0", 400, "ADD rootfs.tar /"), ("sha256:f", 40, "RUN pip install flask"),
               ("sha256:r", 10, "COPY app.py /app.py")],
    "i3": [("sha256:x", 9, "COPY app.py /app.py")],
    "i9": [("sha256:l0", 400, "ADD rootfs.tar /"), ("sha256:m", 1, "RUN touch /m")],
    "dang": [("sha256:d", 3, "RUN touch /d")],
}


class FakeAPI:
    """Just enough of docker-py's APIClient for the clean-up."""

    api_version = "1.45"

    def __init__(self) -> None:
        self.containers_ = [
            # labkit's, labelled for h3
            {"Id": "c1" * 32, "Names": ["/h3-app"], "SizeRw": 1000, "Labels": OURS,
             "State": "running", "Image": "h3/app", "ImageID": "sha256:" + "a1" * 32,
             "Mounts": [], "NetworkSettings": {}},
            # typed in h3's terminal: `docker run h3/app`, no label
            {"Id": "c3" * 32, "Names": ["/jolly_bell"], "SizeRw": 10, "Labels": {},
             "State": "exited", "Image": "h3/app", "ImageID": "sha256:" + "a1" * 32,
             "Mounts": [], "NetworkSettings": {}},
            # someone's own container, nothing to do with the course
            {"Id": "c2" * 32, "Names": ["/mine"], "SizeRw": 7, "Labels": {},
             "State": "exited", "Image": "mine:1", "ImageID": "sha256:i9", "Mounts": [
                 {"Type": "volume", "Name": "foreign"}], "NetworkSettings": {}},
            # learner h3-b's terminal container: its name starts with h3-
            {"Id": "c4" * 32, "Names": ["/h3-b-web"], "SizeRw": 5, "Labels": {},
             "State": "exited", "Image": "h3-b/app", "ImageID": "sha256:i3",
             "Mounts": [], "NetworkSettings": {}},
        ]
        self.images_ = [
            {"Id": "sha256:" + "a1" * 32,
             "RepoTags": ["h3/app:latest", "localhost:1/h3/app:latest"],
             "Labels": BASE, "Size": 500, "SharedSize": 400},
            {"Id": "sha256:" + RECORDED, "RepoTags": ["<none>:<none>"], "Labels": BASE,
             "Size": 450, "SharedSize": 400},
            {"Id": "sha256:i3", "RepoTags": ["h3-b/app:latest"], "Labels": OTHER_NS, "Size": 9,
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
        self.build_cache_pruned = 0

    # listing
    def containers(self, all: bool = False, size: bool = False, filters: Any = None):
        wanted = (filters or {}).get("label", [])
        return [c for c in self.containers_ if matches(c["Labels"], wanted)]

    def images(self, all: bool = False, filters: Any = None, name: Any = None):
        wanted = (filters or {}).get("label", [])
        return [i for i in self.images_ if matches(i["Labels"], wanted)]

    def volumes(self, filters: Any = None):
        wanted = (filters or {}).get("label", [])
        return {"Volumes": [v for v in self.volumes_ if matches(v["Labels"], wanted)]}

    def networks(self, filters: Any = None):
        wanted = (filters or {}).get("label", [])
        return [n for n in self.networks_ if matches(n["Labels"], wanted)]

    def _image(self, ref: str) -> dict[str, Any]:
        img = next((i for i in self.images_ if ref in i["RepoTags"]
                    or i["Id"].removeprefix("sha256:") == ref.removeprefix("sha256:")), None)
        if img is None:
            raise NotFound("no such image")
        return img

    def inspect_image(self, ref: str) -> dict[str, Any]:
        img = self._image(ref)
        layers = LAYERS.get(img["Id"].removeprefix("sha256:"), [])
        return {**img, "RootFS": {"Type": "layers", "Layers": [d for d, _, _ in layers]}}

    def history(self, ref: str) -> list[dict[str, Any]]:
        """Newest first, with a step that makes no layer (CMD) on top, as the engine lists."""
        layers = LAYERS.get(self._image(ref)["Id"].removeprefix("sha256:"), [])
        steps = [{"CreatedBy": f"/bin/sh -c {how}", "Size": size} for _, size, how in layers]
        return [{"CreatedBy": '/bin/sh -c #(nop)  CMD ["python"]', "Size": 0},
                *reversed(steps)]

    # removing
    def remove_container(self, ident: str, v: bool = False, force: bool = False) -> None:
        self.removed.append(("container", ident))
        self.containers_ = [c for c in self.containers_ if c["Id"] != ident]

    def remove_image(self, ref: str, noprune: bool = False) -> list[dict[str, str]]:
        assert noprune, "the containerd store would take parents others build on"
        img = next((i for i in self.images_ if ref in i["RepoTags"]
                    or i["Id"].removeprefix("sha256:") == ref), None)
        if img is None:
            raise NotFound("no such image")
        tags = [t for t in img["RepoTags"] if t != "<none>:<none>"]
        if ref in tags and len(tags) > 1:
            img["RepoTags"] = [t for t in tags if t != ref]
            self.removed.append(("untag", ref))
            return [{"Untagged": ref}]
        if ref not in tags and len(tags) > 1:
            raise conflict("image is referenced in multiple repositories")
        if img["Id"] in self.in_use or any(c["ImageID"] == img["Id"] for c in self.containers_):
            raise conflict("image is being used by a container")
        if any(i.get("ParentId") == img["Id"] for i in self.images_):
            raise conflict("image has dependent child images")
        self.images_.remove(img)
        self.removed.append(("image", img["Id"]))
        return [{"Untagged": ref}, {"Deleted": img["Id"]}]

    def remove_volume(self, name: str) -> None:
        if name == "gone-meanwhile":
            raise NotFound("no such volume")
        if name in self.in_use:
            raise conflict("in use")
        self.removed.append(("volume", name))

    def remove_network(self, ident: str) -> None:
        self.removed.append(("network", ident))

    def prune_builds(self, all: bool | None = None) -> dict[str, Any]:
        self.build_cache_pruned += 1
        return {"CachesDeleted": ["b1"], "SpaceReclaimed": 11}


def cleanup_client() -> FakeClient:
    """A client over a fresh :class:`FakeAPI`, whose ``df()`` reports what that API holds."""
    api = FakeAPI()

    def df() -> dict[str, Any]:
        return {"Containers": api.containers_, "Images": api.images_,
                "Volumes": [{**v, "UsageData": {"Size": 2000, "RefCount": 0}}
                            for v in api.volumes_],
                "BuildCache": [{"ID": "b1", "Type": "regular", "Description": "RUN x",
                                "InUse": False, "Shared": False, "Size": 11}]}

    return FakeClient(api, df=df)


@pytest.fixture(autouse=True)
def h3(tmp_path: Path, course_settings):
    course_settings(user="h3", state_dir=tmp_path)
    owned.remember_build(RECORDED, "h3/app:latest")
    yield


def removed_images(fake: FakeClient) -> set[str]:
    return {x[1] for x in fake.api.removed if x[0] == "image"}


def test_clean_removes_labkits_and_the_terminals_containers_only() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert {x[1] for x in fake.api.removed if x[0] == "container"} == {"c1" * 32, "c3" * 32}


def test_clean_removes_our_tagged_and_recorded_images_and_no_other() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert removed_images(fake) == {"sha256:" + "a1" * 32, "sha256:" + RECORDED}


def test_a_neighbour_whose_name_starts_like_ours_keeps_everything() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert "sha256:i3" in {i["Id"] for i in fake.api.images_}
    assert "c4" * 32 in {c["Id"] for c in fake.api.containers_}


def test_images_go_by_name_never_forced() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert ("untag", "h3/app:latest") in fake.api.removed


def test_parents_go_only_while_no_other_image_builds_on_them() -> None:
    fake = cleanup_client()
    ours, theirs = fake.api.images_[0], fake.api.images_[2]
    ours["ParentId"], theirs["ParentId"] = "sha256:p1", "sha256:p0"
    fake.api.images_ += [
        {"Id": "sha256:p1", "ParentId": "sha256:p0", "RepoTags": [], "Labels": BASE,
         "Size": 1, "SharedSize": 0},
        {"Id": "sha256:p0", "ParentId": "sha256:base", "RepoTags": [], "Labels": BASE,
         "Size": 1, "SharedSize": 0}]
    report = cleanup.clean(client=fake, show=False)
    assert ("image", "sha256:p1") in fake.api.removed
    assert "sha256:p0" in {i["Id"] for i in fake.api.images_}  # B's image builds on it
    assert "p1" in report.deleted_images


def test_the_record_forgets_what_is_gone() -> None:
    cleanup.clean(client=cleanup_client(), show=False)
    assert owned.recorded_ids() == set()


def test_clean_counts_a_shared_layer_once_and_the_base_not_at_all() -> None:
    """h3's two images: base L0 (400, stays), F (40, shared by both), A (60), R (10)."""
    report = cleanup.clean(client=cleanup_client(), show=False)
    assert report.reclaimed["image"] == 40 + 60 + 10
    assert report.image_sizes_added == (400 + 40 + 60) + (400 + 40 + 10)


def test_a_layer_an_image_that_stays_uses_is_not_freed() -> None:
    """h3-b's image was built on h3's F layer (same chain): F stays with it."""
    fake = cleanup_client()
    LAYERS["i3"] = LAYERS[RECORDED][:2] + [("sha256:x", 9, "COPY app.py /app.py")]
    try:
        report = cleanup.clean(client=fake, show=False)
    finally:
        LAYERS["i3"] = [("sha256:x", 9, "COPY app.py /app.py")]
    assert report.reclaimed["image"] == 60 + 10


def test_include_base_frees_the_base_layer_too() -> None:
    report = cleanup.clean(include_base=True, client=cleanup_client(), show=False)
    # mine:1 (i9) stays and builds on L0: the base's name goes, its layer stays
    assert report.reclaimed["image"] == 40 + 60 + 10


def test_clean_counts_container_and_volume_bytes() -> None:
    report = cleanup.clean(client=cleanup_client(), show=False)
    assert (report.reclaimed["container"], report.reclaimed["volume"]) == (1010, 2000)


def test_clean_keeps_the_base_image_by_default() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert "sha256:base" in {i["Id"] for i in fake.api.images_}


def test_include_base_removes_the_prepared_image_not_a_derived_one() -> None:
    fake = cleanup_client()
    cleanup.clean(include_base=True, client=fake, show=False)
    assert {i["Id"] for i in fake.api.images_} == {"sha256:i3", "sha256:i9", "sha256:dang"}


def test_image_another_learners_container_uses_is_kept() -> None:
    fake = cleanup_client()
    fake.api.containers_.append({"Id": "c5" * 32, "Names": ["/h3-b-x"], "SizeRw": 1,
                                 "Labels": OTHER_NS, "State": "exited", "Image": "h3/app",
                                 "ImageID": "sha256:" + "a1" * 32, "Mounts": []})
    report = cleanup.clean(client=fake, show=False)
    assert list(report.kept[report.kept["kind"] == "image"]["outcome"]) == ["kept (in use)"]
    assert "c5" * 32 in {c["Id"] for c in fake.api.containers_}


def test_a_name_another_learner_gave_our_image_keeps_it() -> None:
    fake = cleanup_client()
    fake.api.images_[0]["RepoTags"].append("h3-b/copy:1")
    report = cleanup.clean(client=fake, show=False)
    assert list(report.kept[report.kept["kind"] == "image"]["outcome"]) == [
        "kept (also named h3-b/copy:1)"]
    assert fake.api.images_[0]["RepoTags"] == ["h3-b/copy:1"]


def test_volume_in_use_is_kept_not_an_error() -> None:
    fake = cleanup_client()
    fake.api.in_use.add("h3-data")
    report = cleanup.clean(client=fake, show=False)
    assert report.counts["volume"] == 0 and report.reclaimed["volume"] == 0


def test_volume_gone_meanwhile_counts_as_done() -> None:
    fake = cleanup_client()
    fake.api.volumes_.append({"Name": "gone-meanwhile", "Labels": OURS})
    report = cleanup.clean(client=fake, show=False)
    assert "gone" in set(report.items["outcome"])


def test_clean_removes_our_network_only() -> None:
    fake = cleanup_client()
    cleanup.clean(client=fake, show=False)
    assert [x for x in fake.api.removed if x[0] == "network"] == [("network", "n1")]


def test_the_commands_are_plain_ones_a_learner_types() -> None:
    lines = [str(c) for c in cleanup.cleanup_commands(client=cleanup_client())]
    assert lines == [
        "docker container rm --force --volumes h3-app jolly_bell",
        f"docker image rm h3/app:latest localhost:1/h3/app:latest {RECORDED[:12]}",
        "docker volume rm h3-data",
        "docker network rm h3-net",
    ]
    assert not any("label" in line for line in lines)


# ---------------------------------------------------------------- the build cache


def test_build_cache_is_kept_while_another_learner_uses_the_engine() -> None:
    fake = cleanup_client()
    report = cleanup.clean(client=fake, show=False)
    assert fake.api.build_cache_pruned == 0
    assert "h3-b" in report.build_cache
    assert list(report.items[report.items["kind"] == "build cache"]["outcome"]) == [
        "kept (shared engine)"]


def test_build_cache_is_kept_when_alone_unless_asked() -> None:
    fake = cleanup_client()
    fake.api.containers_ = [c for c in fake.api.containers_ if c["Id"] != "c4" * 32]
    fake.api.images_ = [i for i in fake.api.images_ if i["Id"] != "sha256:i3"]
    report = cleanup.clean(client=fake, show=False)
    assert fake.api.build_cache_pruned == 0
    assert "Build cache kept" in report.build_cache
    assert "not only the course's" in report.build_cache
    report = cleanup.clean(client=fake, show=False, build_cache_prune=True)
    assert fake.api.build_cache_pruned == 1
    assert (report.counts["build cache"], report.reclaimed["build cache"]) == (1, 11)
    assert str(report.commands[-1]) == "docker builder prune --all --force"


def test_cache_bytes_an_image_shares_are_not_counted_twice() -> None:
    fake = cleanup_client()
    fake.api.containers_, fake.api.images_ = [], []
    df = fake._df
    fake._df = lambda: {**df(), "BuildCache": [{"ID": "b1", "Size": 11, "InUse": False,
                                                 "Shared": True}]}
    report = cleanup.clean(client=fake, show=False, build_cache_prune=True)
    assert fake.api.build_cache_pruned == 1
    assert report.reclaimed["build cache"] == 0


def test_build_cache_is_pruned_when_asked_even_if_shared() -> None:
    fake = cleanup_client()
    report = cleanup.clean(client=fake, show=False, build_cache_prune=True)
    assert fake.api.build_cache_pruned == 1
    assert "h3-b" in report.build_cache


def test_build_cache_is_kept_when_told_to() -> None:
    fake = cleanup_client()
    fake.api.containers_ = []
    fake.api.images_ = []
    cleanup.clean(client=fake, show=False, build_cache_prune=False)
    assert fake.api.build_cache_pruned == 0


def test_build_cache_usage_from_df() -> None:
    usage = cleanup.build_cache.BuildCacheUsage.of({"BuildCache": [
        {"Size": 10, "InUse": False, "Shared": True},
        {"Size": 5, "InUse": False, "Shared": False},
        {"Size": 3, "InUse": True, "Shared": False}]})
    assert (usage.records, usage.bytes, usage.reclaimable, usage.in_use) == (3, 18, 5, 1)
    assert cleanup.build_cache.BuildCacheUsage.of({"BuildCache": None}).records == 0


# ---------------------------------------------------------------- prune preview


def test_preview_lists_stopped_not_running_containers() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client())
    assert list(frame[frame["kind"] == "container"]["name"]) == ["jolly_bell", "mine", "h3-b-web"]


def test_preview_says_whose_each_container_is() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client()).set_index("name")
    assert (frame.loc["jolly_bell", "mine"], frame.loc["jolly_bell", "namespace"]) == (True, "h3")
    assert (frame.loc["h3-b-web", "mine"], frame.loc["h3-b-web", "namespace"]) == (
        False, "h3-b")
    assert not frame.loc["mine", "course"]


def test_preview_lists_only_dangling_images() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client())
    images = frame[frame["kind"] == "image"]
    assert list(images["id"]) == [RECORDED[:12], "dang"]
    assert list(images["mine"]) == [True, False]


def test_preview_skips_default_networks() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client())
    assert set(frame[frame["kind"] == "network"]["name"]) == {"h3-net", "mine-net"}


def test_preview_volumes_need_the_volumes_flag_and_since_api_1_42_no_name() -> None:
    fake = cleanup_client()
    fake.api.volumes_.append({"Name": "0f" * 32, "Labels": {"com.docker.volume.anonymous": ""}})
    frame = cleanup.preview_system_prune(client=fake)
    volumes = frame[frame["kind"] == "volume"]
    assert list(volumes["name"]) == ["0f" * 32]  # h3-data and foreign are named: they stay
    assert set(volumes["removed_by"]) == {"docker system prune --volumes"}


def test_preview_before_api_1_42_lists_named_volumes_too() -> None:
    fake = cleanup_client()
    fake.api.api_version = "1.41"
    frame = cleanup.preview_system_prune(client=fake)
    # foreign: its container is stopped, and containers are pruned first
    assert set(frame[frame["kind"] == "volume"]["name"]) == {"h3-data", "foreign"}


def test_preview_details_fit_a_table_cell_in_full() -> None:
    """pandas cuts a cell over 50 characters with "...": every caveat is shorter."""
    fake = cleanup_client()
    fake.api.api_version = "1.41"
    frame = cleanup.preview_system_prune(client=fake)
    assert set(frame["kind"]) >= {"container", "image", "volume", "network", "build cache"}
    assert frame["detail"].str.len().max() <= 50


def test_preview_marks_an_image_once_named_ours_as_ours() -> None:
    """A terminal build labkit saw under h3's name, untagged by a later build, stays h3's."""
    fake = cleanup_client()
    term = {"Id": "sha256:" + "e1" * 32, "RepoTags": ["h3/typed:latest"], "Labels": None,
            "Size": 5, "SharedSize": 0}
    fake.api.images_.append(term)
    cleanup.preview_system_prune(client=fake)  # labkit sees it under h3's name
    term["RepoTags"] = []  # the next `docker build -t h3/typed .` took the name
    frame = cleanup.preview_system_prune(client=fake)
    row = frame[frame["id"] == ("e1" * 32)[:12]]
    assert list(zip(row["course"], row["mine"], row["namespace"], strict=True)) == [
        (True, True, "h3")]


def test_preview_includes_unused_build_cache() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client())
    assert list(frame[frame["kind"] == "build cache"]["bytes"]) == [11]


def test_preview_removes_nothing() -> None:
    fake = cleanup_client()
    cleanup.preview_system_prune(client=fake)
    assert fake.api.removed == []


def test_preview_names_the_command() -> None:
    frame = cleanup.preview_system_prune(client=cleanup_client())
    assert str(frame.attrs["command"]) == "docker system prune"


def test_the_report_names_each_removed_object_with_its_owner() -> None:
    report = cleanup.clean(client=cleanup_client(), show=False)
    assert report.removed == {("container", "c1" * 32): "h3", ("container", "c3" * 32): "h3",
                              ("image", "a1" * 32): "h3", ("image", RECORDED): "h3",
                              ("volume", "h3-data"): "h3", ("network", "n1"): "h3"}
    assert report.deleted_images == {"a1" * 32, RECORDED}


# ---------------------------------------------------------------- bytes freed, per layer


def stack(name: str, *layers: tuple[str, int]) -> ImageStack:
    return ImageStack(name, [d for d, _ in layers], [n for _, n in layers],
                      ["RUN x"] * len(layers))


BASE_L = ("sha256:base", 130_000_000)
FLASK = ("sha256:flask", 12_000_000)


def test_freed_counts_a_layer_shared_by_removed_images_once() -> None:
    a = stack("a", BASE_L, FLASK, ("sha256:app-a", 4_096))
    b = stack("b", BASE_L, FLASK, ("sha256:app-b", 4_096))
    base = stack("python", BASE_L)
    got = cleanup.freed.freed([a, b], [base.chain_ids])
    assert (got.bytes, got.layers) == (12_000_000 + 2 * 4_096, 3)
    assert got.sizes_added == 2 * (130_000_000 + 12_000_000 + 4_096)


def test_freed_leaves_out_every_layer_an_image_that_stays_uses() -> None:
    a = stack("a", BASE_L, FLASK, ("sha256:app-a", 4_096))
    kept = stack("b", BASE_L, FLASK, ("sha256:app-b", 4_096))
    assert cleanup.freed.freed([a], [kept.chain_ids]).bytes == 4_096
    assert cleanup.freed.freed([a], [a.chain_ids]).bytes == 0


def test_the_same_content_on_another_stack_is_stored_again() -> None:
    """Same diff ID, different layers below it: another chain ID, so other bytes (step 6)."""
    a = stack("a", BASE_L, FLASK)
    b = stack("b", ("sha256:other-base", 100), FLASK)
    assert cleanup.freed.freed([a], [b.chain_ids]).bytes == 130_000_000 + 12_000_000


def test_a_stack_is_read_from_inspect_and_history_like_step_6() -> None:
    inspected = {"RootFS": {"Layers": ["sha256:base", "sha256:flask"]}}
    history = [{"CreatedBy": '/bin/sh -c #(nop)  CMD ["python", "app.py"]', "Size": 0},
               {"CreatedBy": "/bin/sh -c pip install flask", "Size": 12},
               {"CreatedBy": "/bin/sh -c #(nop) ADD file:1 in / ", "Size": 130}]
    got = sharing.stack_from("app", inspected, history)
    assert got is not None and (got.diff_ids, got.sizes) == (
        ["sha256:base", "sha256:flask"], [130, 12])
    assert sharing.stack_from("app", inspected, history[:2]) is None
