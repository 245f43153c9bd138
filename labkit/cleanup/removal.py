"""Clean-up of what is this learner's, and nothing else.

What goes (:mod:`labkit.images.owned` decides whose an object is):

- containers labkit labelled for this learner, and containers of this learner's images
  (a plain ``docker run`` typed in the terminal);
- this learner's images: every tag under the learner's name (``student/app``,
  ``localhost:5000/student/app``), and the untagged images labkit recorded (its builds,
  the classic builder's steps of them, and what it saw under the learner's name);
- the volumes and networks labkit labelled for this learner (labkit creates them itself);
- the build cache only when asked (:mod:`labkit.cleanup.build_cache`): its records name
  no owner, so a prune takes everyone's.

Images are removed by name (``docker image rm student/app:latest``), never forced: a name
another learner gave the same image keeps it, and so does a container another learner
runs from it (a "kept" row). Their classic-builder parents go only while no other image
builds on them: the containerd image store's own prune would take parents another
learner's image still builds on (seen on 28.5), so labkit removes with ``noprune`` and
walks the parents itself. The prepared base images (stand-ins, ``org.labkit.standin``)
stay unless ``include_base=True``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import APIError, NotFound

from labkit import engine, images
from labkit.cleanup import build_cache, freed
from labkit.engine import (
    BASE_IMAGE,
    DIND_IMAGE,
    LABEL_NAMESPACE,
    LABEL_STANDIN,
    REGISTRY_IMAGE,
    DockerCommand,
    html_of,
    settings,
    show_result,
)
from labkit.engine import docker as docker_cmd
from labkit.images import owned

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("container", "image", "volume", "network", "build cache")
ITEM_COLUMNS = ["kind", "name", "id", "bytes", "outcome"]
PREPARED_IMAGES = (BASE_IMAGE, REGISTRY_IMAGE, DIND_IMAGE)

#: rows of the report's items table, one per object removed or kept
Rows = list[dict[str, Any]]


@dataclass
class CleanupReport:
    """What ``clean()`` did: one row per object, bytes reclaimed per kind, the commands."""

    items: pd.DataFrame
    reclaimed: dict[str, int]
    commands: list[DockerCommand] = field(default_factory=list)
    #: (kind, full id) of every object removed, and the learner it belonged to by the rule
    #: of :mod:`labkit.images.owned` (labkit's label, or an image under the learner's name
    #: or recorded for them), as the engine listed it before the clean-up.
    removed: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: Every image id the engine says it deleted (untagged parents too).
    deleted_images: set[str] = field(default_factory=set)
    #: Whether the build cache was pruned, and why (one sentence).
    build_cache: str = ""
    #: The removed images' sizes added up, each shared layer once per image: what
    #: ``reclaimed["image"]`` (each layer once, none an image that stays uses) is not.
    image_sizes_added: int = 0

    @property
    def counts(self) -> dict[str, int]:
        """Objects removed, per kind."""
        removed = self.items[self.items["outcome"] == "removed"]
        return {k: int((removed["kind"] == k).sum()) for k in KINDS}

    @property
    def reclaimed_bytes(self) -> int:
        """Bytes given back, all kinds together."""
        return sum(self.reclaimed.values())

    def names(self, kind: str) -> list[str]:
        """Names of the removed objects of one kind."""
        rows = self.items[(self.items["kind"] == kind) & (self.items["outcome"] == "removed")]
        return list(rows["name"])

    @property
    def kept(self) -> pd.DataFrame:
        """Objects of ours that stayed (e.g. an image another learner's container uses)."""
        return self.items[self.items["outcome"].str.startswith("kept")]

    def _repr_html_(self) -> str:
        return html_of(self)


@dataclass
class Plan:
    """What a clean-up would remove, found before anything is removed."""

    containers: list[dict[str, Any]]
    images: list[dict[str, Any]]
    prepared: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    networks: list[dict[str, Any]]
    cache: build_cache.BuildCacheDecision
    #: ``docker system df`` when planned: the sizes (removals report none)
    df: dict[str, Any] = field(default_factory=dict)

    def commands(self) -> list[DockerCommand]:
        """The plain ``docker`` commands that remove the same things."""
        out: list[DockerCommand] = []
        names = [_container_name(c) for c in self.containers]
        if names:
            out.append(docker_cmd("container", "rm", "--force", "--volumes", *names))
        refs = [t for i in self.images for t in owned.own_tags(i)]
        refs += [_short(i["Id"]) for i in self.images if not owned.own_tags(i)]
        refs += [t for i in self.prepared for t in owned.tags_of(i)]
        if refs:
            out.append(docker_cmd("image", "rm", *refs))
        if self.volumes:
            out.append(docker_cmd("volume", "rm", *(v["Name"] for v in self.volumes)))
        if self.networks:
            out.append(docker_cmd("network", "rm", *(n["Name"] for n in self.networks)))
        if self.cache.prune:
            out.append(build_cache.prune_command())
        return out


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client or engine.client()


def _short(ident: str) -> str:
    return ident.removeprefix("sha256:")[:12]


def _container_name(c: dict[str, Any]) -> str:
    return str((c.get("Names") or ["?"])[0]).lstrip("/")


def _prepared(images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prepared stand-ins: labelled stand-in, no namespace, tagged with a course name.

    Label and name together: an image a learner builds FROM a stand-in inherits its labels.
    """
    return [img for img in images
            if (img.get("Labels") or {}).get(LABEL_STANDIN) == "true"
            and LABEL_NAMESPACE not in (img.get("Labels") or {})
            and set(img.get("RepoTags") or []) & set(PREPARED_IMAGES)]


def plan(include_base: bool = False, build_cache_prune: bool | None = None,
         client: docker.DockerClient | None = None) -> Plan:
    """What :func:`clean` would remove now (nothing is removed)."""
    cli = _client(client)
    images = engine.images(cli)
    recorded = owned.note_named(images)
    mine = [i for i in images if owned.is_own_image(i, recorded)]
    mine_ids = {_strip(i["Id"]) for i in mine}
    found = [c["Id"] for c in cli.api.containers(all=True)
             if owned.is_own_container(c, mine_ids)]
    # sizes only for ours: the engine measures each container it lists with --size
    containers = [c for c in engine.containers_with_size(cli, all=True, filters={"id": found})
                  if c["Id"] in found] if found else []
    labelled = {"label": settings().label_filters()}
    df = engine.df(cli)
    return Plan(
        containers=containers, images=mine,
        prepared=[i for i in _prepared(images) if _strip(i["Id"]) not in mine_ids]
        if include_base else [],
        volumes=cli.api.volumes(filters=labelled).get("Volumes") or [],
        networks=cli.api.networks(filters=labelled),
        cache=build_cache.decide(build_cache_prune, cli, df), df=df)


def _strip(ident: str) -> str:
    return ident.removeprefix("sha256:")


def cleanup_commands(include_base: bool = False, build_cache_prune: bool | None = None,
                     client: docker.DockerClient | None = None) -> list[DockerCommand]:
    """The plain `docker` commands equivalent to ``clean()`` now."""
    return plan(include_base, build_cache_prune, client).commands()


def _row(kind: str, name: str, ident: str, size: int | None, outcome: str,
         owner: str | None = None) -> dict[str, Any]:
    """A report row; ``full_id`` and ``owner`` go to ``CleanupReport.removed``."""
    return {"kind": kind, "name": name, "id": ident[:19], "bytes": size, "outcome": outcome,
            "full_id": ident, "owner": owner}


def _remove(action: Callable[[], Any]) -> str:
    """Run one removal; "not found" counts as done, "in use" as kept."""
    try:
        action()
    except NotFound:
        return "gone"
    except APIError as exc:
        if exc.status_code == 409:
            return "kept (in use)"
        raise
    return "removed"


def _owner_of(labels: dict[str, str] | None) -> str:
    return (labels or {}).get(LABEL_NAMESPACE) or settings().namespace


def _clean_containers(cli: docker.DockerClient, found: list[dict[str, Any]]
                      ) -> tuple[Rows, int]:
    rows, total = [], 0
    for c in found:
        size = int(c.get("SizeRw") or 0)
        ident = str(c["Id"])
        outcome = _remove(partial(cli.api.remove_container, ident, v=True, force=True))
        total += size if outcome == "removed" else 0
        rows.append(_row("container", _container_name(c), c["Id"], size, outcome,
                         _owner_of(c.get("Labels"))))
    return rows, total


def _remove_image(cli: docker.DockerClient, ref: str, deleted: set[str]) -> str:
    """``docker image rm REF``, never forced, keeping the parents (``noprune``: the
    containerd image store would also delete untagged parents another learner's image
    builds on); the image ids the engine deleted are noted."""
    answer: list[dict[str, Any]] = []

    def run() -> None:
        answer.extend(cli.api.remove_image(ref, noprune=True) or [])

    outcome = _remove(run)
    deleted |= {_strip(d["Deleted"]) for d in answer if d.get("Deleted")}
    return outcome


def _remove_unused_parents(cli: docker.DockerClient, chains: list[list[str]],
                           deleted: set[str]) -> None:
    """The classic builder's steps of removed images, nearest first, while no other image
    builds on them and nothing names them (what the classic store's own prune does)."""
    for chain in chains:
        for parent in chain[1:]:
            listed = engine.images(cli, all=True)
            entry = next((i for i in listed if _strip(i["Id"]) == _strip(parent)), None)
            if entry is None:
                continue
            children = [i for i in listed if i.get("ParentId") == entry["Id"]]
            if children or owned.tags_of(entry):
                break
            if _remove_image(cli, _strip(parent), deleted) != "removed":
                break


def _clean_images(cli: docker.DockerClient, p: Plan, deleted: set[str],
                  out: list[freed.Freed]) -> tuple[Rows, int]:
    """Remove the plan's images; the bytes freed are counted per layer (:mod:`.freed`)."""
    if not p.images and not p.prepared:
        return [], 0
    # each layer's size, read before removal (image rm reports none)
    stacks = {_strip(i["Id"]): freed.stack_of(i["Id"], cli) for i in [*p.images, *p.prepared]}
    parents = {i["Id"]: i.get("ParentId") or "" for i in engine.images(cli, all=True)}
    for img in p.images:
        mine = owned.own_tags(img)
        for ref in mine:
            _remove_image(cli, ref, deleted)
        if not set(owned.tags_of(img)) - set(mine):  # no name of anyone else's on it
            _remove_image(cli, _strip(img["Id"]), deleted)
    for img in p.prepared:
        for ref in owned.tags_of(img):
            _remove_image(cli, ref, deleted)
    _remove_unused_parents(cli, [images.parent_chain(parents, i["Id"]) for i in p.images
                                 if _strip(i["Id"]) in deleted], deleted)
    left = {_strip(i["Id"]): i for i in engine.images(cli)}
    rows, gone = [], []
    for img in [*p.images, *p.prepared]:
        ident = _strip(img["Id"])
        name = ", ".join(owned.own_tags(img) or owned.tags_of(img)) or "<none>"
        now = left.get(ident)
        if now is None:
            outcome = "removed"
            gone.append(ident)
        elif set(owned.tags_of(now)) - set(owned.own_tags(now)):
            outcome = "kept (also named " + ", ".join(
                t for t in owned.tags_of(now) if not owned.is_own_reference(t)) + ")"
        else:
            outcome = "kept (in use)"
        rows.append(_row("image", name, ident, img.get("Size"), outcome,
                         settings().namespace if img in p.images else None))
    owned.forget(set(owned.recorded_ids()) - set(left))  # the record keeps only what is there
    counted = freed.freed([s for i in gone if (s := stacks.get(i)) is not None],
                          [freed.chains_of(i, cli) for i in left])
    out.append(counted)
    return rows, counted.bytes


def _volume_sizes(df: dict[str, Any]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for v in (df.get("Volumes") or []):
        size = (v.get("UsageData") or {}).get("Size")
        if size is not None and size >= 0:
            sizes[v["Name"]] = int(size)
    return sizes


def _clean_volumes(cli: docker.DockerClient, found: list[dict[str, Any]],
                   df: dict[str, Any]) -> tuple[Rows, int]:
    if not found:
        return [], 0
    sizes = _volume_sizes(df)  # measured before removal: volume rm reports no size
    rows, total = [], 0
    for v in found:
        name = str(v["Name"])
        outcome = _remove(partial(cli.api.remove_volume, name))
        size = sizes.get(v["Name"])
        total += (size or 0) if outcome == "removed" else 0
        rows.append(_row("volume", v["Name"], v["Name"], size, outcome,
                         _owner_of(v.get("Labels"))))
    return rows, total


def _clean_networks(cli: docker.DockerClient, found: list[dict[str, Any]]) -> tuple[Rows, int]:
    rows = []
    for n in found:
        ident = str(n["Id"])
        outcome = _remove(partial(cli.api.remove_network, ident))
        rows.append(_row("network", n["Name"], n["Id"], None, outcome,
                         _owner_of(n.get("Labels"))))
    return rows, 0


def _clean_build_cache(cli: docker.DockerClient, p: Plan) -> tuple[Rows, int]:
    usage = p.cache.usage
    if not p.cache.prune:
        if not usage or not usage.records:
            return [], 0
        return [_row("build cache", f"{usage.records} records", "", usage.bytes,
                     "kept (shared engine)" if p.cache.others else "kept")], 0
    records, freed = build_cache.prune(cli)
    # Records shared with an image (the containerd store) hold that image's layers: their
    # bytes were counted with the image. Only the cache's own bytes count here.
    own = min(freed, usage.reclaimable) if usage else freed
    return [_row("build cache", f"{records} records", "", own, "removed")], own


def clean(include_base: bool = False, client: docker.DockerClient | None = None,
          show: bool = True, build_cache_prune: bool | None = None) -> CleanupReport:
    """Remove this learner's containers (with their anonymous volumes), images (every name
    under the learner's, and labkit's recorded builds), labkit's volumes and networks for
    this learner; keep the prepared base images unless asked.

    The build cache is pruned only when ``build_cache_prune`` is True
    (:func:`labkit.cleanup.build_cache.decide`). Safe to repeat. ``show`` displays the report
    in a notebook.
    """
    import pandas as pd
    cli = _client(client)
    p = plan(include_base, build_cache_prune, cli)
    rows: list[dict[str, Any]] = []
    reclaimed: dict[str, int] = {}
    deleted: set[str] = set()
    counted: list[freed.Freed] = []
    steps: list[tuple[str, Callable[[], tuple[Rows, int]]]] = [
        ("container", lambda: _clean_containers(cli, p.containers)),
        ("image", lambda: _clean_images(cli, p, deleted, counted)),
        ("volume", lambda: _clean_volumes(cli, p.volumes, p.df)),
        ("network", lambda: _clean_networks(cli, p.networks)),
        ("build cache", lambda: _clean_build_cache(cli, p)),
    ]
    for kind, step in steps:
        got, total = step()
        rows += got
        reclaimed[kind] = total
    report = CleanupReport(
        items=pd.DataFrame(rows, columns=ITEM_COLUMNS), reclaimed=reclaimed,
        commands=p.commands(), deleted_images=deleted, build_cache=p.cache.reason,
        image_sizes_added=counted[0].sizes_added if counted else 0,
        removed={(r["kind"], r["full_id"]): r["owner"] for r in rows
                 if r["outcome"] == "removed" and r["kind"] != "build cache"})
    if show:
        show_result(report)
    return report
