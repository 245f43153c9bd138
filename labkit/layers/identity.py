"""The names of one image and of its parts, and the sizes it is shown with.

Every name is a sha256 digest of some bytes:

- the **config** (a JSON document: the image's settings, its history and the diff IDs of
  its layers); on the classic image store its digest is the **image ID**;
- the **manifest** (JSON: the config's digest and one descriptor per layer *blob*), made
  by the containerd image store at build time, by the classic one only when it pushes;
  on the containerd store the image ID is the digest of the image's top-level document:
  an **index** (one manifest per platform, and BuildKit's attestations) or a manifest;
- a layer **blob**: the layer as stored and sent, a tar that may be compressed;
- a layer's **diff ID**: the digest of its *uncompressed* tar (the same for the same files,
  however the blob is compressed);
- a layer's **chain ID**: the digest of its parent's chain ID and its own diff ID, so it
  names the layer together with every layer below it (the bottom layer's is its diff ID).

:func:`labkit.images.archive_ids` reads those documents from a saved image as it streams
by (the layer analysis keeps them); :func:`identify` joins them with what the engine says
about the image.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker

from labkit.images import chain_ids
from labkit.layers.analysis import analyze

if TYPE_CHECKING:
    import pandas as pd

INDEX_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
)
SIZE_COLUMNS = ["size", "bytes", "counts"]


@dataclass(frozen=True)
class Blob:
    """One layer as the manifest lists it: digest, size, media type."""

    digest: str
    size: int
    media_type: str

    @property
    def compressed(self) -> bool:
        """True for a gzip or zstd blob (its digest is then not its diff ID)."""
        return self.media_type.endswith(("gzip", "zstd"))


@dataclass
class ImageIds:
    """Every name of one image and of its parts, from the engine and the saved image."""

    image: str
    image_store: str  # "containerd" or "graphdriver" (the classic store)
    image_id: str  # what the engine calls it (`docker image inspect --format {{.Id}}`)
    repo_digests: list[str]  # registry manifest digests the engine knows for it
    top_kind: str  # what the image ID is the digest of: "config", "index" or "manifest"
    top_sha256: str  # sha256 of that document's bytes, from the saved image
    manifest_digest: str | None  # the image manifest (None: not made yet, classic store)
    manifest_sha256: str | None
    config_digest: str  # the config's digest as its referrer names it
    config_sha256: str  # sha256 of the config's bytes, from the saved image
    blobs: list[Blob]  # as the manifest lists them, bottom first (empty without one)
    diff_ids: list[str]  # from the config, bottom first
    engine_diff_ids: list[str]  # `docker image inspect`'s RootFS.Layers
    chain_ids: list[str] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    history_rows: int = 0  # `docker history` rows
    history_missing: int = 0  # of them, <missing>

    def table(self) -> pd.DataFrame:
        """One row per layer, bottom first: instruction, blob, compressed, diff ID, chain ID."""
        import pandas as pd

        rows = []
        for i, diff in enumerate(self.diff_ids):
            blob = self.blobs[i] if i < len(self.blobs) else None
            rows.append({"layer": i, "instruction": self.instructions[i] if i < len(
                self.instructions) else "", "blob_digest": blob.digest if blob else None,
                "blob_bytes": blob.size if blob else None,
                "compressed": blob.compressed if blob else None,
                "diff_id": diff, "chain_id": self.chain_ids[i]})
        return pd.DataFrame(rows)


def identify(image: str, client: docker.DockerClient | None = None) -> ImageIds:
    """Every name of ``image``: from ``docker image inspect``, ``docker history`` and the
    image's saved archive (read once by the layer analysis, and remembered)."""
    from labkit.engine import client as default_client
    from labkit.engine import info

    cli = client or default_client()
    analysis = analyze(image, client=cli, need_ids=True)
    attrs = cli.api.inspect_image(image)
    store = info(cli).image_store
    ids = analysis.ids or {}
    manifest = ids.get("manifest")
    top = ids.get("top")
    config = ids.get("config") or {}
    if store == "containerd" and top:
        kind = "index" if top.get("media_type") in INDEX_TYPES else "manifest"
        top_sha = str(top.get("sha256", ""))
    else:
        kind, top_sha = "config", str(config.get("sha256", ""))
    history = cli.api.history(image)
    diff_ids = [x.diff_id for x in analysis.layers]
    return ImageIds(
        image=image, image_store=store, image_id=attrs["Id"],
        repo_digests=list(attrs.get("RepoDigests") or []),
        top_kind=kind, top_sha256=top_sha,
        manifest_digest=manifest["digest"] if manifest else None,
        manifest_sha256=manifest["sha256"] if manifest else None,
        config_digest=manifest["config_digest"] if manifest else
        "sha256:" + posixpath.basename(str(config.get("path", ""))).removesuffix(".json"),
        config_sha256=str(config.get("sha256", "")),
        blobs=[Blob(x["digest"], int(x["size"]), x["media_type"])
               for x in (manifest or {}).get("layers", [])],
        diff_ids=diff_ids, engine_diff_ids=list(attrs.get("RootFS", {}).get("Layers") or []),
        chain_ids=chain_ids(diff_ids), instructions=[x.instruction for x in analysis.layers],
        history_rows=len(history),
        history_missing=sum(1 for h in history if h.get("Id") in (None, "", "<missing>")),
    )


def sizes(ids: ImageIds, client: docker.DockerClient | None = None,
          file_bytes: int | None = None) -> pd.DataFrame:
    """The sizes one image is shown with, side by side (SIZE_COLUMNS), from the engine.

    ``file_bytes`` is the bytes of the files in all its layers (the layer analysis's
    ``total_bytes``); computed when omitted.
    """
    import pandas as pd

    from labkit.engine import client as default_client

    cli = client or default_client()
    listed = cli.api.images(name=ids.image) or [{}]
    ls_size = int(next((x for x in listed if x.get("Id") == ids.image_id), listed[0])
                  .get("Size") or 0)
    inspect_size = int(cli.api.inspect_image(ids.image).get("Size") or 0)
    history_size = sum(int(h.get("Size") or 0) for h in cli.api.history(ids.image))
    if file_bytes is None:
        file_bytes = analyze(ids.image, client=cli).total_bytes
    containerd = ids.image_store == "containerd"
    packed = sum(b.size for b in ids.blobs) if ids.blobs else None
    rows = [
        ("docker image ls", ls_size,
         "the blobs as stored plus the unpacked layers (snapshots)" if containerd else
         "the unpacked layers: the bytes of their files"),
        ("docker history (sum)", history_size,
         "each layer's unpacked size on disk, in whole 4 kB blocks, folders included"
         if containerd else "each layer's files, in bytes"),
        ("docker image inspect .Size", inspect_size,
         "the blobs as stored (packed), with the config, manifest and index" if containerd
         else "the unpacked layers: the bytes of their files"),
        ("layer blobs a push sends", packed,
         "the manifest's layer blobs, compressed or not, as a push to an empty registry "
         "sends them" if packed is not None else
         "not known yet: this store compresses the layers when it pushes"),
        ("files in all layers", file_bytes,
         "the bytes of every file in every layer, from the saved image"),
    ]
    return pd.DataFrame(rows, columns=SIZE_COLUMNS).astype({"bytes": "Int64"})
