"""The course's images on the engine: one row per tag, as a table (``docker image ls``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import docker

from labkit import engine
from labkit.engine import (
    BASE_IMAGE,
    DIND_IMAGE,
    LABEL_ROLE,
    LABEL_STANDIN,
    REGISTRY_IMAGE,
    DockerCommand,
    boundary,
    human_size,
    settings,
)
from labkit.engine import docker as docker_cmd
from labkit.images import owned

if TYPE_CHECKING:
    import pandas as pd

COURSE_BASE_IMAGES = (BASE_IMAGE, REGISTRY_IMAGE, DIND_IMAGE)


def _is_base(entry: Mapping[str, Any]) -> bool:
    return any(t in COURSE_BASE_IMAGES for t in entry.get("RepoTags") or [])


def _course_image(entry: Mapping[str, Any], namespace: str | None) -> bool:
    """A course base image by name, or a learner's image (:mod:`labkit.images.owned`: a
    name under the learner's, or labkit's record of its builds); ``namespace`` None: any
    learner's (a name under a learner's, or labkit's namespace label).

    Labels are inherited from the FROM image, so the stand-in labels alone do not make an
    image a course image: every image built on a stand-in carries them too.
    """
    if _is_base(entry):
        return True
    if namespace is None:
        return bool(owned.foreign_owner(entry) or owned.is_own_image(entry))
    learner = settings() if namespace == settings().namespace else replace(settings(),
                                                                           user=namespace)
    return owned.is_own_image(entry, s=learner)


def _role(entry: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    """The role label, unless a built image merely inherited its stand-in base's."""
    if not _is_base(entry) and labels.get(LABEL_STANDIN) == "true":
        return ""
    return str(labels.get(LABEL_ROLE, ""))


def images_frame(entries: Iterable[Mapping[str, Any]], namespace: str | None) -> pd.DataFrame:
    """Shape the engine's image list: one row per tag of a course image, newest first."""
    import pandas as pd
    rows = []
    for entry in entries:
        if not _course_image(entry, namespace):
            continue
        labels = entry.get("Labels") or {}
        tags = [t for t in entry.get("RepoTags") or [] if t != "<none>:<none>"] or ["<none>"]
        for repo_tag in tags:
            rows.append({
                "image": repo_tag,
                "id": str(entry.get("Id", "")).removeprefix("sha256:")[:12],
                "size_bytes": int(entry.get("Size") or 0),
                "size": human_size(int(entry.get("Size") or 0), docker=True),
                "created": datetime.fromtimestamp(int(entry.get("Created") or 0), tz=UTC),
                "standin": _is_base(entry) and labels.get(LABEL_STANDIN) == "true",
                "role": _role(entry, labels),
            })
    frame = pd.DataFrame(rows, columns=["image", "id", "size_bytes", "size", "created",
                                        "standin", "role"])
    return frame.sort_values(["created", "image"], ascending=[False, True],
                             ignore_index=True)


@boundary("list the images")
def list_images(client: docker.DockerClient | None = None,
                all_course: bool = False) -> pd.DataFrame:
    """This learner's images plus the course base images (``all_course``: every learner's).

    Columns: image (repository:tag), id, size_bytes, size, created, standin (an offline
    stand-in of a course base image), role.
    """
    cli = client or engine.client()
    namespace = None if all_course else settings().namespace
    frame = images_frame(engine.images(cli), namespace)
    frame.attrs["command"] = list_images_command()
    return frame


def list_images_command() -> DockerCommand:
    """The equivalent of :func:`list_images`: ``docker image ls`` (every image; the table
    keeps the course's base images and this learner's)."""
    return docker_cmd("image", "ls")
