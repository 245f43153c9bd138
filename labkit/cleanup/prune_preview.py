"""What a plain ``docker system prune`` would remove now, and whose each item is."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import docker

from labkit import engine
from labkit.engine import docker as docker_cmd
from labkit.engine import settings
from labkit.images import owned

if TYPE_CHECKING:
    import pandas as pd

PREVIEW_COLUMNS = ["kind", "name", "id", "bytes", "removed_by", "course", "mine", "namespace",
                   "detail"]
DEFAULT_NETWORKS = {"bridge", "host", "none", "ingress", "docker_gwbridge"}


#: the label the engine puts on a volume it named itself (``docker run -v /data``)
ANONYMOUS = "com.docker.volume.anonymous"
#: from this API version on (Docker 23), ``docker volume prune`` and ``docker system prune
#: --volumes`` take only anonymous volumes; named ones need ``docker volume prune --all``
ANONYMOUS_ONLY_SINCE = (1, 42)


def anonymous_only(client: docker.DockerClient) -> bool:
    """True when this engine's volume prune takes only anonymous volumes (API 1.42+)."""
    version = str(client.api.api_version)
    try:
        major, minor = (int(x) for x in version.split(".")[:2])
    except ValueError:
        return True
    return (major, minor) >= ANONYMOUS_ONLY_SINCE


def _owner(entry: dict[str, Any], mine: bool) -> tuple[bool, bool, str | None]:
    """(a learner's, this learner's, whose): labkit's label, or a name under a learner's."""
    if mine:
        return True, True, settings().namespace
    other = owned.foreign_owner(entry)
    return other is not None, False, other


def preview_system_prune(client: docker.DockerClient | None = None) -> pd.DataFrame:
    """What a plain ``docker system prune`` would remove now, removing nothing.

    Columns: kind, name, id, bytes, removed_by (``docker system prune``, or with
    ``--volumes``: anonymous volumes, and named ones too before API 1.42), course (made in
    the course, for some learner: labkit's label, or an image under a learner's name),
    mine (this learner's, :mod:`labkit.images.owned`), namespace (whose), detail (short:
    shown in full). Untagged images only when no image builds on them (what the engine's
    prune calls dangling). Build cache records are listed too: they name no owner. The
    frame's ``attrs["command"]`` is the command previewed.
    """
    import pandas as pd
    cli = client or engine.client()
    df = engine.df(cli)  # one call: containers with sizes, images, volumes, build cache
    images = df.get("Images") or []
    recorded = owned.note_named(images)
    mine_ids = owned.own_image_ids(images, recorded)
    containers = df.get("Containers") or []
    running = [c for c in containers if c.get("State") in ("running", "paused", "restarting")]
    rows: list[dict[str, Any]] = []
    plain, with_volumes = "docker system prune", "docker system prune --volumes"

    for c in containers:
        if c in running:
            continue
        course, mine, ns = _owner(c, owned.is_own_container(c, mine_ids))
        rows.append({"kind": "container", "name": (c.get("Names") or ["?"])[0].lstrip("/"),
                     "id": c["Id"][:12], "bytes": c.get("SizeRw"), "removed_by": plain,
                     "course": course, "mine": mine, "namespace": ns,
                     "detail": f"{c.get('State')} ({c.get('Image')})"})

    used_networks = {n.get("NetworkID") for c in running
                     for n in ((c.get("NetworkSettings") or {}).get("Networks") or {}).values()}
    for n in cli.api.networks():
        if n["Name"] in DEFAULT_NETWORKS or n["Id"] in used_networks:
            continue
        ns = (n.get("Labels") or {}).get(engine.LABEL_NAMESPACE)
        course, mine, ns = _owner(n, ns == settings().namespace)
        rows.append({"kind": "network", "name": n["Name"], "id": n["Id"][:12], "bytes": None,
                     "removed_by": plain, "course": course, "mine": mine, "namespace": ns,
                     "detail": n.get("Driver")})

    running_images = {c.get("ImageID") for c in running}
    for img in images:
        if owned.tags_of(img) or img["Id"] in running_images:
            continue
        course, mine, ns = _owner(img, owned.is_own_image(img, recorded))
        rows.append({"kind": "image", "name": "<none>", "id": img["Id"].removeprefix(
            "sha256:")[:12], "bytes": img.get("Size"), "removed_by": plain, "course": course,
            "mine": mine, "namespace": ns, "detail": "dangling"})

    running_volumes = {m.get("Name") for c in running for m in c.get("Mounts") or []
                       if m.get("Type") == "volume"}
    named_too = not anonymous_only(cli)
    for v in df.get("Volumes") or []:
        anonymous = ANONYMOUS in (v.get("Labels") or {})
        if v["Name"] in running_volumes or not (anonymous or named_too):
            continue
        ns = (v.get("Labels") or {}).get(engine.LABEL_NAMESPACE)
        course, mine, ns = _owner(v, ns == settings().namespace)
        size = (v.get("UsageData") or {}).get("Size")
        rows.append({"kind": "volume", "name": v["Name"], "id": v["Name"][:12],
                     "bytes": size if size is not None and size >= 0 else None,
                     "removed_by": with_volumes, "course": course, "mine": mine, "namespace": ns,
                     "detail": "anonymous, unused" if anonymous else
                     "unused; before API 1.42 named ones go too"})

    for b in df.get("BuildCache") or []:
        if b.get("InUse"):
            continue
        rows.append({"kind": "build cache", "name": b.get("Description") or b.get("Type"),
                     "id": str(b.get("ID"))[:12], "bytes": b.get("Size"), "removed_by": plain,
                     "course": False, "mine": False, "namespace": None,
                     "detail": "no owner; data shared with an image" if b.get("Shared")
                     else "no owner; unused"})

    frame = pd.DataFrame(rows, columns=PREVIEW_COLUMNS)
    frame["bytes"] = frame["bytes"].astype("Int64")
    frame["course"] = frame["course"].astype(bool)
    frame["mine"] = frame["mine"].astype(bool)
    frame.attrs["command"] = docker_cmd("system", "prune")
    return frame
