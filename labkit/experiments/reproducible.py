"""Is a Dockerfile a repeatable recipe? Two builds of it compared layer by layer.

A rebuild with ``--no-cache`` runs every step again. Each step that writes files makes a
layer named by the digest of its tar stream (the diff ID), so a layer is bit-identical only
when every byte of every file and every file's metadata (mode, owner, modification time)
are the same. ``COPY`` of an unchanged file gives the same layer; ``RUN pip install``
writes files stamped with the time of the build, and byte code that records it, so its
layer differs while the app behaves the same.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import docker
import docker.errors

from labkit import engine
from labkit.engine import LabkitError
from labkit.images import BuildStep, read_file

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ["step", "instruction", "layers", "first", "second", "identical"]


def step_layers(steps: Iterable[BuildStep], client: docker.DockerClient | None = None
                ) -> list[tuple[BuildStep, list[str]]]:
    """Each Dockerfile step with the diff IDs it added: BuildKit's step record names its
    layer; the classic builder's step image lists its layers (the new ones are this step's)."""
    cli = client or engine.client()
    below: list[str] = []
    out = []
    for step in steps:
        if step.buildkit:
            layers = _base_layers(step, cli) if step.keyword == "FROM" else (
                [step.layer] if step.layer else [])
            out.append((step, layers))
            continue
        if not step.image_id:
            raise LabkitError(f"Step {step.number} ({step.instruction}) named no image.",
                              "Build again: the builder reports each step's image.")
        layers = list(cli.api.inspect_image(step.image_id)["RootFS"]["Layers"])
        out.append((step, layers[len(below):]))
        below = layers
    return out


def _base_layers(step: BuildStep, cli: docker.DockerClient) -> list[str]:
    """The layers of the image a BuildKit FROM step names (``FROM docker.io/library/NAME@DIGEST``:
    the engine knows it by its short name)."""
    ref = step.instruction.split()[1].split("@")[0].removeprefix("docker.io/library/")
    try:
        return list(cli.api.inspect_image(ref)["RootFS"]["Layers"])
    except docker.errors.NotFound:
        return []


def _short(diff_ids: list[str]) -> str:
    return ", ".join(d.split(":")[-1][:12] for d in diff_ids) if diff_ids else "(no layer)"


def compare(first: Iterable[BuildStep], second: Iterable[BuildStep],
            client: docker.DockerClient | None = None) -> pd.DataFrame:
    """One row per Dockerfile step of two builds: the layers each made, and whether they
    are bit-identical (``identical`` is None for a step that makes no layer)."""
    import pandas as pd
    a, b = step_layers(first, client), step_layers(second, client)
    if [s.instruction for s, _ in a] != [s.instruction for s, _ in b]:
        raise LabkitError("The two builds do not run the same Dockerfile.",
                          "Compare two builds of the same folder.")
    rows = [{"step": sa.number, "instruction": sa.instruction, "layers": len(la),
             "first": _short(la), "second": _short(lb),
             "identical": (la == lb) if (la or lb) else None}
            for (sa, la), (_, lb) in zip(a, b, strict=True)]
    return pd.DataFrame(rows, columns=COLUMNS)


def _file_facts(image: str, path: str, cli: docker.DockerClient) -> tuple[str, datetime]:
    """(sha256 of the bytes, modification time) of one file as the image holds it."""
    found = read_file(image, path, client=cli)
    if found is None:
        raise LabkitError(f"{path} is not a file in {image}.", "Pick a path the step wrote.")
    data, mtime = found
    return hashlib.sha256(data).hexdigest(), datetime.fromtimestamp(mtime, UTC)


def file_differences(first: str, second: str, paths: Iterable[str],
                     client: docker.DockerClient | None = None) -> pd.DataFrame:
    """For each path: are its bytes the same in both images, and its modification times."""
    import pandas as pd
    cli = client or engine.client()
    rows = []
    for path in paths:
        hash_a, time_a = _file_facts(first, path, cli)
        hash_b, time_b = _file_facts(second, path, cli)
        rows.append({"path": path, "same_bytes": hash_a == hash_b,
                     "modified_first": time_a.strftime("%H:%M:%S"),
                     "modified_second": time_b.strftime("%H:%M:%S"),
                     "same_time": time_a == time_b})
    return pd.DataFrame(rows, columns=["path", "same_bytes", "modified_first",
                                       "modified_second", "same_time"])
