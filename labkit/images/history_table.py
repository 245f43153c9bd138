"""`docker history` as a DataFrame: each layer's instruction, size and age, newest first."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from labkit import engine
from labkit.engine import (
    DockerCommand,
    ImageMissing,
    human_size,
)
from labkit.engine import docker as docker_cmd

if TYPE_CHECKING:
    import pandas as pd


def clean_created_by(created_by: str, comment: str = "") -> str:
    """A history entry's CreatedBy as the Dockerfile instruction that made it."""
    text = (created_by or "").strip()
    if not text:
        return f"({comment.strip()})" if comment.strip() else ""
    text = re.sub(r"^\|\d+(\s+\S+=\S*)*\s+", "", text)  # build-arg prefix of RUN
    if text.startswith("/bin/sh -c #(nop) "):
        text = text.removeprefix("/bin/sh -c #(nop) ").strip()
    elif text.startswith("/bin/sh -c "):
        text = "RUN " + text.removeprefix("/bin/sh -c ").strip()
    text = text.removesuffix("# buildkit").strip()
    text = re.sub(r"^RUN /bin/sh -c ", "RUN ", text)
    text = re.sub(r"\b(file|dir):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2", text)
    return re.sub(r"\s+", " ", text)


def history_frame(entries: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Shape the engine's history entries (newest first) as a DataFrame."""
    import pandas as pd
    rows = []
    for entry in entries:
        image_id = str(entry.get("Id") or "")
        size = int(entry.get("Size") or 0)
        instruction = clean_created_by(str(entry.get("CreatedBy") or ""),
                                       str(entry.get("Comment") or ""))
        rows.append({
            "image": image_id.removeprefix("sha256:")[:12] if image_id.startswith("sha256:")
            else "<missing>",
            "instruction": instruction,
            "size_bytes": size,
            "size": human_size(size, docker=True),
            "created": datetime.fromtimestamp(int(entry.get("Created") or 0), tz=UTC),
            "empty": size == 0,
        })
    return pd.DataFrame(rows, columns=["image", "instruction", "size_bytes", "size", "created",
                                       "empty"])


def history(image: str, client: docker.DockerClient | None = None) -> pd.DataFrame:
    """``docker image history`` as a DataFrame, newest layer first.

    Columns: image, instruction, size_bytes, size, created, empty (no file changes).
    ``image`` is the IMAGE column of ``docker image history``: the ID of the image a step
    left on this engine (the top row: the image itself), not a layer's digest; ``<missing>``
    where no such image is here (BuildKit keeps none per step, and a pulled base image's
    steps come without theirs).
    """
    cli = client or engine.client()
    try:
        entries = cli.api.history(image)
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"The image {image} is not on the engine.",
                           "Build it first (see the build step).") from exc
    frame = history_frame(entries)
    frame.attrs["command"] = history_command(image)
    return frame


def history_command(image: str) -> DockerCommand:
    """The equivalent of :func:`history`."""
    return docker_cmd("image", "history", image)
