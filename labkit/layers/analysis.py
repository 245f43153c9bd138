"""Image layers: the files each layer adds, changes and deletes, read from the image itself.

The image is read with ``docker image save`` as a *stream* of tar chunks: each layer's
tar is analysed while it passes by, so only per-file metadata (path, kind, size) is ever
kept and peak memory does not grow with the image's size. Both archive layouts are read:
the legacy one (``manifest.json``, ``<id>.json``, ``<layer>/layer.tar``; Docker ≤ 24) and
the OCI one (``index.json``, ``blobs/sha256/…``; Docker ≥ 25). The order of the layers is
only known once ``manifest.json`` (often the last entry) has arrived, so layers are first
analysed by their path in the archive and put in ``rootfs`` order at the end.

Wasted bytes and efficiency
    For every path that has regular-file content in several layers, or that a later
    layer deletes, only one copy is visible in the running container: the top-most one
    (none if the path is deleted). Everything else still ships with the image::

        total_bytes   = Σ over layers, Σ over regular files in the layer: size
        visible_bytes = Σ over files of the final (merged) filesystem: size
        wasted_bytes  = total_bytes - visible_bytes
                      = Σ over paths (Σ of its copies - the copy that is kept)
        efficiency    = visible_bytes / total_bytes      (1.0 for an empty image)

    A deleted file therefore counts all the bytes it hides, and a file written once and
    never touched counts nothing. dive reports as "potential wasted space" the *whole*
    cumulative size of every duplicated path, including the copy that must be kept, and
    scores ``Σ smallest copy / Σ all copies`` per path (the smallest copy, not the one that
    is kept); for a 400 MB file written twice dive reports 800 MB wasted, this module 400 MB.
    Hard links count 0 bytes (their data belongs to the file they link to).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

import docker
from docker.utils import parse_repository_tag

from labkit.engine import DockerCommand
from labkit.engine import docker as docker_cmd
from labkit.images import (
    BUFSIZE,
    ByteStream,
    archive_ids,
    chain_ids,
    instruction_of,
    read_archive,
    resolve_image,
)
from labkit.layers import memo as layer_cache
from labkit.layers.memo import RawImage

if TYPE_CHECKING:
    import pandas as pd

FILE_COLUMNS = ["layer", "path", "kind", "change", "size_bytes", "lower_layer", "lower_bytes",
                "kept"]
LAYER_COLUMNS = ["layer", "instruction", "size_bytes", "tar_bytes", "files", "added",
                 "modified", "deleted", "added_bytes", "modified_bytes", "deleted_bytes",
                 "wasted_bytes", "diff_id", "chain_id", "created", "created_by"]


@dataclass(frozen=True)
class Layer:
    """One layer of an image, bottom (0) to top, with what it did to the filesystem."""

    index: int
    diff_id: str
    chain_id: str
    instruction: str
    created_by: str
    created: str
    size_bytes: int  # regular-file bytes in the layer (what `docker history` approximates)
    tar_bytes: int  # size of the layer's uncompressed tar in the archive
    files: int  # non-directory entries, whiteouts included
    added: int
    modified: int
    deleted: int
    added_bytes: int
    modified_bytes: int
    deleted_bytes: int  # bytes of lower layers that this layer's whiteouts hide
    wasted_bytes: int  # bytes of this layer that are not visible in the final image


@dataclass
class ImageLayers:
    """The layer analysis of one image: a layers table, a files table, waste and efficiency."""

    image: str
    image_id: str
    layout: str  # "docker" (legacy save) or "oci"
    layers: list[Layer]
    files: pd.DataFrame = field(repr=False)  # FILE_COLUMNS, one row per entry per layer
    total_bytes: int = 0
    visible_bytes: int = 0
    command: DockerCommand | None = None
    #: the documents naming the image, from its archive (see :mod:`labkit.layers.identity`)
    ids: dict[str, Any] | None = field(default=None, repr=False)
    _visible: dict[str, tuple[int, int]] | None = field(default=None, repr=False)

    @property
    def wasted_bytes(self) -> int:
        """Bytes shipped with the image but not visible in its final filesystem."""
        return self.total_bytes - self.visible_bytes

    @property
    def efficiency(self) -> float:
        """visible_bytes / total_bytes (see the module docstring)."""
        return self.visible_bytes / self.total_bytes if self.total_bytes else 1.0

    def layers_table(self) -> pd.DataFrame:
        """One row per layer, bottom first (LAYER_COLUMNS)."""
        import pandas as pd
        rows = [{c: getattr(layer, "index" if c == "layer" else c) for c in LAYER_COLUMNS}
                for layer in self.layers]
        return pd.DataFrame(rows, columns=LAYER_COLUMNS)

    def files_in(self, layer: int, include_dirs: bool = False) -> pd.DataFrame:
        """The entries of one layer (by index), largest first."""
        df = self.files[self.files["layer"] == layer]
        if not include_dirs:
            df = df[df["kind"] != "dir"]
        return df.sort_values("size_bytes", ascending=False, kind="stable").reset_index(
            drop=True)

    def waste_table(self) -> pd.DataFrame:
        """Paths whose copies are not all kept: copies, their bytes, kept and wasted bytes."""
        import pandas as pd
        df = self.files[self.files["kind"] == "file"]
        kept = df["size_bytes"].where(df["kept"], 0)
        g = df.assign(kept_bytes=kept).groupby("path", sort=False)
        out = pd.DataFrame({
            "copies": g.size(),
            "total_bytes": g["size_bytes"].sum(),
            "kept_bytes": g["kept_bytes"].sum(),
            "layers": g["layer"].agg(lambda s: list(s)),
        })
        out["wasted_bytes"] = out["total_bytes"] - out["kept_bytes"]
        out = out[out["wasted_bytes"] > 0].sort_values("wasted_bytes", ascending=False)
        return out.reset_index()

    def visible(self) -> dict[str, tuple[int, int]]:
        """Every path of the final filesystem -> (layer index, size) of its visible copy."""
        if self._visible is None:
            df = self.files[self.files["kept"] & (self.files["change"] != "opaque")]
            self._visible = {p: (int(layer), int(size)) for p, layer, size in
                             zip(df["path"], df["layer"], df["size_bytes"], strict=True)}
        return self._visible

    def owner(self, path: str) -> tuple[int, int] | None:
        """(layer index, size) of the copy of ``path`` visible in the image, if any."""
        return self.visible().get("/" + path.strip("/"))

    def summary(self) -> dict[str, Any]:
        """Totals of the image: layers, bytes, wasted bytes, efficiency."""
        return {"image": self.image, "layers": len(self.layers), "total_bytes": self.total_bytes,
                "visible_bytes": self.visible_bytes, "wasted_bytes": self.wasted_bytes,
                "efficiency": round(self.efficiency, 4)}


# ---------------------------------------------------------------- replaying the layers


class _Merged:
    """The merged filesystem while layers are applied bottom to top."""

    def __init__(self) -> None:
        self.visible: dict[str, tuple[int, str, int]] = {}  # path -> (layer, kind, size)
        self.children: dict[str, set[str]] = {}

    def _link(self, path: str) -> None:
        while path != "/":
            parent = posixpath.dirname(path)
            kids = self.children.setdefault(parent, set())
            if path in kids:
                return
            kids.add(path)
            path = parent

    def remove(self, path: str, keep_self: bool = False) -> tuple[int, int | None]:
        """Remove ``path`` (and its subtree): (bytes hidden, layer that owned ``path``)."""
        owner = self.visible[path][0] if path in self.visible else None
        hidden = 0
        stack = list(self.children.pop(path, ()))
        if not keep_self:
            entry = self.visible.pop(path, None)
            hidden += entry[2] if entry else 0
            parent = posixpath.dirname(path)
            self.children.get(parent, set()).discard(path)
        while stack:
            p = stack.pop()
            entry = self.visible.pop(p, None)
            hidden += entry[2] if entry else 0
            stack.extend(self.children.pop(p, ()))
        return hidden, owner

    def put(self, path: str, layer: int, kind: str, size: int) -> tuple[int, int] | None:
        """Add an entry; returns (layer, bytes) of the lower copy it replaces, if any."""
        lower = self.visible.get(path)
        replaced = None
        if lower is not None:
            extra = 0
            if lower[1] == "dir" and kind != "dir":
                extra, _ = self.remove(path, keep_self=True)
            replaced = (lower[0], lower[2] + extra)
        self.visible[path] = (layer, kind, size)
        self._link(path)
        return replaced


def _replay(entries_by_layer: list[list[tuple[str, str, int]]],
            ) -> tuple[list[dict[str, int]], tuple[list[tuple[Any, ...]], int]]:
    """Classify every entry; returns per-layer counters and the files table rows."""
    merged = _Merged()
    rows: list[tuple[Any, ...]] = []
    stats: list[dict[str, int]] = []
    for i, entries in enumerate(entries_by_layer):
        st = dict(size_bytes=0, files=0, added=0, modified=0, deleted=0, added_bytes=0,
                  modified_bytes=0, deleted_bytes=0)
        # whiteouts apply to lower layers only, before this layer's own entries
        for path, kind, _size in entries:
            if kind not in ("whiteout", "opaque"):
                continue
            hidden, owner = merged.remove(path, keep_self=(kind == "opaque"))
            rows.append((i, path, kind, "deleted" if kind == "whiteout" else "opaque", 0,
                         owner, hidden, False))
            st["files"] += 1
            st["deleted"] += 1
            st["deleted_bytes"] += hidden
        for path, kind, size in entries:
            if kind in ("whiteout", "opaque"):
                continue
            lower = merged.put(path, i, kind, size)
            change = "modified" if lower else "added"
            rows.append((i, path, kind, change, size, lower[0] if lower else None,
                         lower[1] if lower else None, None))
            st["size_bytes"] += size
            if kind != "dir":
                st["files"] += 1
                st[change] += 1
                st[f"{change}_bytes"] += size
        stats.append(st)
    visible = merged.visible
    final_rows: list[tuple[Any, ...]] = []
    wasted = [0] * len(entries_by_layer)
    for r in rows:
        if r[7] is None:
            v = visible.get(r[1])
            kept = v is not None and v[0] == r[0]
            if not kept:
                wasted[r[0]] += r[4]
            r = (*r[:7], kept)
        final_rows.append(r)
    for st, w in zip(stats, wasted, strict=True):
        st["wasted_bytes"] = w
    visible_bytes = sum(v[2] for v in visible.values())
    return stats, (final_rows, visible_bytes)


def read_raw(source: IO[bytes] | Iterable[bytes], image: str = "") -> RawImage:
    """What a saved image (a file object, or an iterator of tar chunks) holds, streamed once."""
    if hasattr(source, "read"):
        fileobj = source
        source = iter(lambda: fileobj.read(BUFSIZE), b"")
    arc = read_archive(ByteStream(source))
    layout, config, paths, config_id = resolve_image(arc, image)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    if len(history) != len(paths):
        history = [{}] * (len(paths) - len(history)) + history[-len(paths):] if paths else []
    if len(diff_ids) != len(paths):
        diff_ids = (diff_ids + [""] * len(paths))[: len(paths)]
    entries, tar_sizes = [], []
    for p in paths:
        ents, size = arc.layer(p)
        entries.append(ents)
        tar_sizes.append(size)
    return RawImage(layout=layout, config_id=config_id, diff_ids=diff_ids, history=history,
                    entries=entries, tar_sizes=tar_sizes,
                    ids=archive_ids(arc.docs, arc.digests, config))


def from_raw(raw: RawImage, image: str = "", image_id: str = "") -> ImageLayers:
    """The analysis of an image from what its archive holds (the layers replayed)."""
    import pandas as pd
    stats, (rows, visible_bytes) = _replay(raw.entries)
    chains = chain_ids(raw.diff_ids)
    layers = [
        Layer(index=i, diff_id=raw.diff_ids[i], chain_id=chains[i],
              instruction=instruction_of(h.get("created_by", ""), h.get("comment", "")),
              created_by=h.get("created_by", ""), created=h.get("created", ""),
              tar_bytes=raw.tar_sizes[i], **st)
        for i, (h, st) in enumerate(zip(raw.history, stats, strict=True))
    ]
    files = pd.DataFrame(rows, columns=FILE_COLUMNS)
    files["lower_layer"] = files["lower_layer"].astype("Int64")
    files["lower_bytes"] = files["lower_bytes"].astype("Int64")
    files["kept"] = files["kept"].astype(bool)
    total = int(files.loc[files["kind"] == "file", "size_bytes"].sum())
    cfg_id = image_id or raw.config_id
    return ImageLayers(image=image, image_id=cfg_id, layout=raw.layout, layers=layers,
                       files=files, total_bytes=total, visible_bytes=visible_bytes,
                       command=docker_cmd("image", "save", image or cfg_id), ids=raw.ids)


def analyze_archive(source: IO[bytes] | Iterable[bytes], image: str = "",
                    image_id: str = "") -> ImageLayers:
    """Analyse a saved image (a file object, or an iterator of tar chunks), streamed once."""
    return from_raw(read_raw(source, image), image=image, image_id=image_id)


def one_image(image: str) -> str:
    """A reference naming one image: ``docker save REPO`` without a tag saves every tag of
    the repository (in an order of the engine's), so a bare repository means ``:latest``."""
    if "@" in image or image.startswith("sha256:") or all(c in "0123456789abcdef" for c in image):
        return image
    return image if parse_repository_tag(image)[1] else f"{image}:latest"


def analyze(image: str, client: docker.DockerClient | None = None,
            chunk_size: int = BUFSIZE, cache: bool = True, need_ids: bool = False,
            ) -> ImageLayers:
    """Analyse the layers of a local image, streamed from ``docker image save``.

    The image is saved once: later calls for the same image ID in this process return the
    same analysis, and an image whose layers were all read before (see
    :mod:`labkit.layers.memo`) is analysed from their records. ``cache=False`` always
    reads the image. ``need_ids`` reads it again if what is remembered lacks the documents
    naming the image (``ids``). Equivalent: ``docker image save IMAGE | tar -t`` and the
    same for every layer tar.
    """
    from labkit.engine import client as default_client
    from labkit.images import get_image

    cli = client or default_client()
    img = get_image(image, client=cli)
    if cache:
        known = layer_cache.remembered(cli, img.id)
        if known is not None and (known.ids is not None or not need_ids):
            return known if known.image == image else replace(
                known, image=image, command=docker_cmd("image", "save", image or img.id))
    raw = layer_cache.load(cli, img) if cache else None
    if raw is None or (need_ids and raw.ids is None):
        ref = one_image(image)
        stream = cli.api.get_image(ref, chunk_size=chunk_size)
        try:
            raw = read_raw(stream, ref)
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        if cache:
            layer_cache.save(cli, raw, image_id=img.id)
    result = from_raw(raw, image=image, image_id=img.id)
    if cache:
        layer_cache.remember(cli, img.id, result)
    return result


def top_layer(image: str, client: docker.DockerClient | None = None) -> Layer:
    """The newest layer of ``image`` as read from the image itself (same on every store)."""
    return analyze(image, client=client).layers[-1]
