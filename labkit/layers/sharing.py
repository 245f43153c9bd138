"""Layer sharing between two images: what the engine stores once, and the bytes that saves.

The engine stores a layer under its *chain ID* (the layer together with every layer below
it), so two images share a layer on disk only when their stacks are identical up to and
including it. Two layers with the same *diff ID* (same content) at different places in
their stacks are stored twice by the engine, although a registry stores their blob once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import docker

from labkit.engine import DockerCommand
from labkit.engine import docker as docker_cmd
from labkit.images import chain_ids, instruction_of
from labkit.layers.analysis import ImageLayers, analyze

if TYPE_CHECKING:
    import pandas as pd

TABLE_COLUMNS = ["image", "position", "instruction", "size_bytes", "diff_id", "chain_id",
                 "shared", "same_content"]

_EMPTY = {"ENV", "CMD", "LABEL", "EXPOSE", "ENTRYPOINT", "USER", "VOLUME", "ARG", "ONBUILD",
          "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


@dataclass(frozen=True)
class ImageStack:
    """The layers of one image, bottom first."""

    name: str
    diff_ids: list[str]
    sizes: list[int]
    instructions: list[str]
    chain_ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.chain_ids:
            object.__setattr__(self, "chain_ids", chain_ids(self.diff_ids))


@dataclass(frozen=True)
class Sharing:
    """Two images compared layer by layer; ``table`` is the data for the chart."""

    a: str
    b: str
    table: pd.DataFrame  # TABLE_COLUMNS, one row per layer of each image
    shared_layers: int
    shared_bytes: int  # bytes stored once instead of twice: what sharing saves on disk
    a_bytes: int
    b_bytes: int
    command: DockerCommand

    @property
    def saved_fraction(self) -> float:
        """Share of the two images' combined size that the engine does not store twice."""
        total = self.a_bytes + self.b_bytes
        return self.shared_bytes / total if total else 0.0

    def summary(self) -> pd.DataFrame:
        """One row per image plus the total, with and without sharing."""
        import pandas as pd
        return pd.DataFrame([
            {"image": self.a, "layers": int((self.table["image"] == self.a).sum()),
             "size_bytes": self.a_bytes},
            {"image": self.b, "layers": int((self.table["image"] == self.b).sum()),
             "size_bytes": self.b_bytes},
            {"image": "both, if nothing were shared", "layers": None,
             "size_bytes": self.a_bytes + self.b_bytes},
            {"image": "both, as stored", "layers": None,
             "size_bytes": self.a_bytes + self.b_bytes - self.shared_bytes},
        ])


def from_layers(analysis: ImageLayers) -> ImageStack:
    """An :class:`ImageStack` from a layer analysis (exact per-layer sizes)."""
    return ImageStack(
        name=analysis.image or analysis.image_id,
        diff_ids=[x.diff_id for x in analysis.layers],
        sizes=[x.size_bytes for x in analysis.layers],
        instructions=[x.instruction for x in analysis.layers],
    )


def _is_empty(created_by: str) -> bool:
    words = instruction_of(created_by).split(maxsplit=1)
    return bool(words) and words[0].upper() in _EMPTY


def stack(image: str, client: docker.DockerClient | None = None) -> ImageStack:
    """The layer stack of a local image, from ``docker image inspect`` and its history.

    When the history cannot be matched to the layers one to one, the sizes are read from
    the image itself (:func:`labkit.layers.analysis.analyze`).
    """
    from labkit.engine import client as default_client
    from labkit.images import get_image

    cli = client or default_client()
    img = get_image(image, client=cli)
    found = stack_from(image, img.attrs, img.history())
    return found if found is not None else from_layers(analyze(image, client=cli))


def stack_from(name: str, inspected: Mapping[str, Any],
               history: Sequence[Mapping[str, Any]]) -> ImageStack | None:
    """The stack of an image from ``docker image inspect`` and ``docker history`` answers,
    or None when the history cannot be matched to the layers one to one."""
    diff_ids = list((inspected.get("RootFS") or {}).get("Layers") or [])
    made = [h for h in reversed(history) if not _is_empty(str(h.get("CreatedBy") or ""))]
    if len(made) != len(diff_ids):
        return None
    return ImageStack(name=name, diff_ids=diff_ids,
                      sizes=[int(h.get("Size") or 0) for h in made],
                      instructions=[instruction_of(str(h.get("CreatedBy") or ""),
                                                   str(h.get("Comment") or "")) for h in made])


def compare_stacks(a: ImageStack, b: ImageStack) -> Sharing:
    """Compare two stacks: shared layers (same chain ID) and the bytes they save."""
    import pandas as pd
    chains_a, chains_b = set(a.chain_ids), set(b.chain_ids)
    diffs_a, diffs_b = set(a.diff_ids), set(b.diff_ids)
    rows = []
    for s, other_chains, other_diffs in ((a, chains_b, diffs_b), (b, chains_a, diffs_a)):
        for i, (d, c) in enumerate(zip(s.diff_ids, s.chain_ids, strict=True)):
            rows.append({"image": s.name, "position": i, "instruction": s.instructions[i],
                         "size_bytes": s.sizes[i], "diff_id": d, "chain_id": c,
                         "shared": c in other_chains, "same_content": d in other_diffs})
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    shared = table[(table["image"] == a.name) & table["shared"]]
    return Sharing(a=a.name, b=b.name, table=table, shared_layers=len(shared),
                   shared_bytes=int(shared["size_bytes"].sum()), a_bytes=sum(a.sizes),
                   b_bytes=sum(b.sizes),
                   command=docker_cmd("image", "inspect", "--format",
                                      "{{json .RootFS.Layers}}", a.name, b.name))


def compare(a: str | ImageLayers | ImageStack, b: str | ImageLayers | ImageStack,
            client: docker.DockerClient | None = None) -> Sharing:
    """Which layers two images share and how many bytes that saves.

    Each argument is an image name, a layer analysis or a stack.
    Equivalent: ``docker image inspect --format '{{json .RootFS.Layers}}' A B``.
    """
    def as_stack(x: str | ImageLayers | ImageStack) -> ImageStack:
        if isinstance(x, ImageStack):
            return x
        if isinstance(x, ImageLayers):
            return from_layers(x)
        return stack(x, client=client)

    sa, sb = as_stack(a), as_stack(b)
    if sa.name == sb.name:
        sb = ImageStack(f"{sb.name} (2)", sb.diff_ids, sb.sizes, sb.instructions, sb.chain_ids)
    return compare_stacks(sa, sb)
