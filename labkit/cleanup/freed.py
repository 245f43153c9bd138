"""The bytes a clean-up frees: each layer once, and none that an image which stays uses.

The engine stores a layer once per chain ID (the layer with every layer below it), so
images that share layers share their bytes on disk (steps 6 and 8). Adding up the sizes
of the images removed counts a shared layer once per image, and counts the base image's
layers, which stay. The count here takes each layer of the removed images once, and
leaves out every layer an image that stays still uses.

Sizes are the layers' sizes as ``docker history`` shows them (what step 6 adds up). The
classic image store (overlay2) keeps a layer only unpacked, so that is the disk it frees;
the containerd image store also keeps each layer's packed blob, so there the disk freed
is larger, up to about twice as much for data that does not compress.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import docker
from docker.errors import NotFound

from labkit.engine import ImageMissing
from labkit.images import chain_ids
from labkit.layers import sharing


@dataclass(frozen=True)
class Freed:
    """What removing some images frees, counted per layer."""

    #: bytes of the layers that go: each once, none that an image which stays uses
    bytes: int
    #: how many layers go
    layers: int
    #: the removed images' sizes added up (a shared layer once per image, the base too)
    sizes_added: int


def freed(removed: Sequence[sharing.ImageStack], kept: Iterable[Iterable[str]]) -> Freed:
    """Bytes freed by removing the ``removed`` stacks while images with the ``kept``
    chain IDs (one iterable per image) stay."""
    stays = {c for chains in kept for c in chains}
    going: dict[str, int] = {}
    for s in removed:
        for chain, size in zip(s.chain_ids, s.sizes, strict=True):
            if chain not in stays:
                going.setdefault(chain, size)
    return Freed(bytes=sum(going.values()), layers=len(going),
                 sizes_added=sum(sum(s.sizes) for s in removed))


def stack_of(image: str, client: docker.DockerClient) -> sharing.ImageStack | None:
    """The layer stack of a local image (``docker history`` sizes, as step 6 reads them),
    None when it is gone."""
    try:
        found = sharing.stack_from(image, client.api.inspect_image(image),
                                   client.api.history(image))
        return found if found is not None else sharing.stack(image, client=client)
    except (NotFound, ImageMissing):
        return None


def chains_of(image: str, client: docker.DockerClient) -> list[str]:
    """The chain IDs of a local image's layers (none when it is gone)."""
    try:
        found = client.api.inspect_image(image)
    except NotFound:
        return []
    return chain_ids(list((found.get("RootFS") or {}).get("Layers") or []))
