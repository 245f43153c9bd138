"""Clean-up scoped by label, and a preview of what a plain ``docker system prune`` would take.

``clean()`` removes only what carries this namespace's labels (``Settings.label_filters()``):
never by name, never anything the learner made outside the course. The prepared base images
(labelled ``org.labkit.standin``, no namespace) stay unless ``include_base=True``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker
from docker.errors import APIError, NotFound

from labkit import engine
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

if TYPE_CHECKING:
    import pandas as pd

KINDS = ("container", "image", "volume", "network")
ITEM_COLUMNS = ["kind", "name", "id", "bytes", "outcome"]
PREVIEW_COLUMNS = ["kind", "name", "id", "bytes", "removed_by", "course", "mine", "namespace",
                   "detail"]
PREPARED_IMAGES = (BASE_IMAGE, REGISTRY_IMAGE, DIND_IMAGE)
DEFAULT_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}


@dataclass(frozen=True)
class DockerSubstCommand(DockerCommand):
    """``docker ARGS $(docker SELECT...)``: act on the ids a listing command prints."""

    select: DockerCommand | None = None

    def __str__(self) -> str:
        return f"{super().__str__()} $({self.select})" if self.select else super().__str__()


@dataclass
class CleanupReport:
    """What ``clean()`` did: one row per object, bytes reclaimed per kind, the commands."""

    items: pd.DataFrame
    reclaimed: dict[str, int]
    commands: list[DockerCommand] = field(default_factory=list)
    #: (kind, full id) of every object removed, and the namespace label the engine listed
    #: on it: what proves, per learner, that the clean-up took only its own things.
    removed: dict[tuple[str, str], str | None] = field(default_factory=dict)
    #: Every image id the engine's prune says it deleted (the untagged parents too).
    deleted_images: set[str] = field(default_factory=set)

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
        """Objects with our labels that stayed (e.g. an image a foreign container uses)."""
        return self.items[self.items["outcome"].str.startswith("kept")]

    def _repr_html_(self) -> str:
        return html_of(self)


def _client(client: docker.DockerClient | None) -> docker.DockerClient:
    return client or engine.client()


def _filter_args(filters: list[str]) -> list[str]:
    out: list[str] = []
    for f in filters:
        out += ["--filter", f"label={f}"]
    return out


def cleanup_commands(include_base: bool = False) -> list[DockerCommand]:
    """The `docker` commands equivalent to ``clean()``."""
    flt = _filter_args(settings().label_filters())
    cmds: list[DockerCommand] = [
        DockerSubstCommand(("container", "rm", "-f", "-v"),
                           select=docker_cmd("ps", "-aq", *flt)),
        docker_cmd("image", "prune", "-a", "-f", *flt),
    ]
    if include_base:
        cmds.append(docker_cmd("image", "rm", *PREPARED_IMAGES))
    cmds += [
        DockerSubstCommand(("volume", "rm"), select=docker_cmd("volume", "ls", "-q", *flt)),
        DockerSubstCommand(("network", "rm"), select=docker_cmd("network", "ls", "-q", *flt)),
    ]
    return cmds


#: rows of the report's items table, one per object removed or kept
Rows = list[dict[str, Any]]


def _row(kind: str, name: str, ident: str, size: int | None, outcome: str,
         labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A report row; ``full_id`` and ``namespace`` go to ``CleanupReport.removed``."""
    return {"kind": kind, "name": name, "id": ident[:19], "bytes": size, "outcome": outcome,
            "full_id": ident, "namespace": (labels or {}).get(LABEL_NAMESPACE)}


def _remove(action: Any) -> str:
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


def _clean_containers(cli: docker.DockerClient, filters: list[str]) -> tuple[Rows, int]:
    rows, total = [], 0
    for c in engine.containers_with_size(cli, all=True, filters={"label": filters}):
        name = (c.get("Names") or ["?"])[0].lstrip("/")
        size = int(c.get("SizeRw") or 0)
        outcome = _remove(lambda c=c: cli.api.remove_container(c["Id"], v=True, force=True))
        total += size if outcome == "removed" else 0
        rows.append(_row("container", name, c["Id"], size, outcome, c.get("Labels")))
    return rows, total


def _image_name(img: dict[str, Any]) -> str:
    tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
    return ", ".join(tags) if tags else "<none>"


def _unique_sizes(cli: docker.DockerClient) -> dict[str, int]:
    """Bytes each image alone holds (Size - SharedSize), from `docker system df -v`."""
    out: dict[str, int] = {}
    for img in engine.df(cli).get("Images") or []:
        size, shared = int(img.get("Size") or 0), int(img.get("SharedSize") or 0)
        out[img["Id"]] = size - shared if shared >= 0 else size
    return out


def _prepared(cli: docker.DockerClient) -> dict[str, dict[str, Any]]:
    """The prepared stand-ins: labelled stand-in, no namespace, tagged with a course name.

    Label and name together: an image a learner builds FROM a stand-in inherits its labels.
    """
    out = {}
    for img in engine.images(cli, filters={"label": [f"{LABEL_STANDIN}=true"]}):
        labels = img.get("Labels") or {}
        if LABEL_NAMESPACE not in labels and set(img.get("RepoTags") or []) & set(
                PREPARED_IMAGES):
            out[img["Id"]] = img
    return out


def _clean_images(cli: docker.DockerClient, filters: list[str],
                  include_base: bool, deleted: set[str]) -> tuple[Rows, int]:
    before = {img["Id"]: img for img in engine.images(cli, filters={"label": filters})}
    prepared = _prepared(cli) if include_base else {}
    if not before and not prepared:
        return [], 0
    unique = _unique_sizes(cli)  # measured before removal (see below)
    # dangling=false: every unused image carrying the labels, tagged (and its other tags,
    # e.g. the registry names) or not; the engine's default dangling=true spares tags.
    answer = engine.prune_images(cli, {"label": filters, "dangling": False})
    engine_total = int(answer.get("SpaceReclaimed") or 0)
    deleted |= {d["Deleted"].removeprefix("sha256:") for d in answer.get("ImagesDeleted") or []
                if d.get("Deleted")}
    for img in prepared.values():
        for ref in img.get("RepoTags") or []:
            _remove(lambda ref=ref: cli.api.remove_image(ref))
    left = {img["Id"] for img in engine.images(cli, filters={"label": filters})}
    left |= {img["Id"] for img in engine.images(cli, all=False)} & set(prepared)
    rows = [
        _row("image", _image_name(img), img["Id"].removeprefix("sha256:"), img.get("Size"),
             "kept (in use)" if ident in left else "removed", img.get("Labels"))
        for ident, img in {**before, **prepared}.items()
    ]
    # Engine 20.10 often answers SpaceReclaimed=0 for image prune (it looks layers up by
    # image id); the bytes only the removed images held are a floor measured beforehand.
    measured = sum(unique.get(ident, 0) for ident in {**before, **prepared} if ident not in left)
    return rows, max(engine_total, measured)


def _volume_sizes(cli: docker.DockerClient) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for v in (engine.df(cli).get("Volumes") or []):
        size = (v.get("UsageData") or {}).get("Size")
        if size is not None and size >= 0:
            sizes[v["Name"]] = int(size)
    return sizes


def _clean_volumes(cli: docker.DockerClient, filters: list[str]) -> tuple[Rows, int]:
    found = cli.api.volumes(filters={"label": filters}).get("Volumes") or []
    if not found:
        return [], 0
    sizes = _volume_sizes(cli)  # measured before removal: volume rm reports no size
    rows, total = [], 0
    for v in found:
        outcome = _remove(lambda v=v: cli.api.remove_volume(v["Name"]))
        size = sizes.get(v["Name"])
        total += (size or 0) if outcome == "removed" else 0
        rows.append(_row("volume", v["Name"], v["Name"], size, outcome, v.get("Labels")))
    return rows, total


def _clean_networks(cli: docker.DockerClient, filters: list[str]) -> tuple[Rows, int]:
    rows = []
    for n in cli.api.networks(filters={"label": filters}):
        outcome = _remove(lambda n=n: cli.api.remove_network(n["Id"]))
        rows.append(_row("network", n["Name"], n["Id"], None, outcome, n.get("Labels")))
    return rows, 0


def clean(include_base: bool = False, client: docker.DockerClient | None = None,
          show: bool = True) -> CleanupReport:
    """Remove this namespace's containers (with their anonymous volumes), images (every tag
    pointing at them), volumes and networks; keep the prepared base images unless asked.

    Safe to repeat. ``show`` displays the report in a notebook.
    """
    import pandas as pd
    cli = _client(client)
    filters = settings().label_filters()
    rows: list[dict[str, Any]] = []
    reclaimed: dict[str, int] = {}
    deleted: set[str] = set()
    for kind, (got, total) in (
        ("container", _clean_containers(cli, filters)),
        ("image", _clean_images(cli, filters, include_base, deleted)),
        ("volume", _clean_volumes(cli, filters)),
        ("network", _clean_networks(cli, filters)),
    ):
        rows += got
        reclaimed[kind] = total
    report = CleanupReport(
        items=pd.DataFrame(rows, columns=ITEM_COLUMNS), reclaimed=reclaimed,
        commands=cleanup_commands(include_base), deleted_images=deleted,
        removed={(r["kind"], r["full_id"]): r["namespace"] for r in rows
                 if r["outcome"] == "removed"})
    if show:
        show_result(report)
    return report


# --------------------------------------------------------------------------- prune preview


def _owner(labels: dict[str, str] | None) -> tuple[bool, bool, str | None]:
    """(made by the course for some learner, made in this namespace, the namespace)."""
    ns = (labels or {}).get(LABEL_NAMESPACE)
    return ns is not None, ns == settings().namespace, ns


def preview_system_prune(client: docker.DockerClient | None = None) -> pd.DataFrame:
    """What a plain ``docker system prune`` would remove now, removing nothing.

    Columns: kind, name, id, bytes, removed_by (``docker system prune``, or with
    ``--volumes``), course (labkit made it, for any learner), mine (in this namespace),
    namespace, detail. The frame's
    ``attrs["command"]`` is the command previewed.
    """
    import pandas as pd
    cli = _client(client)
    df = engine.df(cli)  # one call: containers with sizes, images, volumes, build cache
    containers = df.get("Containers") or []
    running = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    rows: list[dict[str, Any]] = []
    plain, with_volumes = "docker system prune", "docker system prune --volumes"

    for c in containers:
        if c in running:
            continue
        course, mine, ns = _owner(c.get("Labels"))
        rows.append({"kind": "container", "name": (c.get("Names") or ["?"])[0].lstrip("/"),
                     "id": c["Id"][:12], "bytes": c.get("SizeRw"), "removed_by": plain,
                     "course": course, "mine": mine, "namespace": ns,
                     "detail": f"{c.get('State')} ({c.get('Image')})"})

    used_networks = {n.get("NetworkID") for c in running
                     for n in ((c.get("NetworkSettings") or {}).get("Networks") or {}).values()}
    for n in cli.api.networks():
        if n["Name"] in DEFAULT_NETWORKS or n["Id"] in used_networks:
            continue
        course, mine, ns = _owner(n.get("Labels"))
        rows.append({"kind": "network", "name": n["Name"], "id": n["Id"][:12], "bytes": None,
                     "removed_by": plain, "course": course, "mine": mine, "namespace": ns,
                     "detail": n.get("Driver")})

    running_images = {c.get("ImageID") for c in running}
    for img in df.get("Images") or []:
        tags = [t for t in img.get("RepoTags") or [] if t != "<none>:<none>"]
        if tags or img["Id"] in running_images:
            continue
        course, mine, ns = _owner(img.get("Labels"))
        rows.append({"kind": "image", "name": "<none>", "id": img["Id"].removeprefix(
            "sha256:")[:12], "bytes": img.get("Size"), "removed_by": plain, "course": course,
            "mine": mine, "namespace": ns, "detail": "dangling"})

    running_volumes = {m.get("Name") for c in running for m in c.get("Mounts") or []
                       if m.get("Type") == "volume"}
    for v in df.get("Volumes") or []:
        if v["Name"] in running_volumes:
            continue
        course, mine, ns = _owner(v.get("Labels"))
        size = (v.get("UsageData") or {}).get("Size")
        rows.append({"kind": "volume", "name": v["Name"], "id": v["Name"][:12],
                     "bytes": size if size is not None and size >= 0 else None,
                     "removed_by": with_volumes, "course": course, "mine": mine, "namespace": ns,
                     "detail": "unused; since Docker 23 --volumes takes anonymous ones only "
                               "(named: docker volume prune --all)"})

    for b in df.get("BuildCache") or []:
        if b.get("InUse"):
            continue
        rows.append({"kind": "build cache", "name": b.get("Description") or b.get("Type"),
                     "id": str(b.get("ID"))[:12], "bytes": b.get("Size"), "removed_by": plain,
                     "course": False, "mine": False, "namespace": None,
                     "detail": "shared" if b.get("Shared") else "unused"})

    frame = pd.DataFrame(rows, columns=PREVIEW_COLUMNS)
    frame["bytes"] = frame["bytes"].astype("Int64")
    frame["course"] = frame["course"].astype(bool)
    frame["mine"] = frame["mine"].astype(bool)
    frame.attrs["command"] = docker_cmd("system", "prune")
    return frame
