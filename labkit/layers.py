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

import hashlib
import json
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import docker
import pandas as pd

from .commands import DockerCommand
from .commands import docker as docker_cmd
from .errors import LabkitError

_BUFSIZE = 1 << 20
_MAX_JSON = 8 << 20
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"

FILE_COLUMNS = ["layer", "path", "kind", "change", "size_bytes", "lower_layer", "lower_bytes",
                "kept"]
LAYER_COLUMNS = ["layer", "instruction", "size_bytes", "tar_bytes", "files", "added",
                 "modified", "deleted", "added_bytes", "modified_bytes", "deleted_bytes",
                 "wasted_bytes", "diff_id", "chain_id", "created", "created_by"]


class ImageArchiveError(LabkitError):
    """A saved image archive could not be read as Docker or OCI layout."""


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


# ---------------------------------------------------------------- reading the stream


class ByteStream:
    """Sequential reads over an iterator of byte chunks; skipping data copies nothing."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self._view = memoryview(b"")
        self.position = 0

    def _fill(self) -> bool:
        while not len(self._view):
            try:
                self._view = memoryview(next(self._it))
            except StopIteration:
                return False
        return True

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (fewer only at the end of the stream)."""
        if size is None or size < 0:
            size = 1 << 62
        parts = []
        while size > 0 and self._fill():
            part = self._view[:size]
            self._view = self._view[len(part):]
            parts.append(part)
            size -= len(part)
            self.position += len(part)
        return b"".join(parts)

    def skip(self, size: int) -> None:
        """Drop ``size`` bytes."""
        while size > 0 and self._fill():
            n = min(size, len(self._view))
            self._view = self._view[n:]
            size -= n
            self.position += n

    def peek(self, size: int) -> bytes:
        """The next ``size`` bytes, left in the stream."""
        while len(self._view) < size:
            try:
                more = next(self._it)
            except StopIteration:
                break
            self._view = memoryview(bytes(self._view) + more)
        return bytes(self._view[:size])


class _Member:
    """The data of one tar member, read or skipped from the underlying stream."""

    def __init__(self, stream: ByteStream | _Member, size: int) -> None:
        self._stream = stream
        self.left = size

    def read(self, size: int = -1) -> bytes:
        n = self.left if size is None or size < 0 else min(size, self.left)
        data = self._stream.read(n)
        self.left -= len(data)
        return data

    def skip(self, size: int) -> None:
        n = min(size, self.left)
        self._stream.skip(n)
        self.left -= n

    def peek(self, size: int) -> bytes:
        return self._stream.peek(min(size, self.left))


def _pax(data: bytes) -> dict[str, str]:
    out, pos = {}, 0
    while pos < len(data) and data[pos:pos + 1] != b"\0":
        space = data.index(b" ", pos)
        length = int(data[pos:space])
        key, _, value = data[space + 1:pos + length - 1].partition(b"=")
        out[key.decode()] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def iter_tar(stream: ByteStream | _Member) -> Iterator[tuple[tarfile.TarInfo, _Member]]:
    """Members of an uncompressed tar stream with their data; unread data is skipped.

    Handles ustar, GNU long names and PAX headers; only headers are ever kept.
    """
    extra: dict[str, str] = {}
    while True:
        block = stream.read(tarfile.BLOCKSIZE)
        if len(block) < tarfile.BLOCKSIZE or block == tarfile.NUL * tarfile.BLOCKSIZE:
            return
        info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        padded = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            value = stream.read(padded)[:info.size].rstrip(b"\0").decode(
                "utf-8", "surrogateescape")
            extra["path" if info.type == tarfile.GNUTYPE_LONGNAME else "linkpath"] = value
            continue
        if info.type in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
            extra.update(_pax(stream.read(padded)[:info.size]))
            continue
        if info.type == tarfile.XGLTYPE:
            stream.skip(padded)
            continue
        if "path" in extra:
            info.name = extra["path"]
        if "linkpath" in extra:
            info.linkname = extra["linkpath"]
        if "size" in extra:
            info.size = int(extra["size"])
            padded = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
        extra = {}
        data_size = info.size if info.type not in (tarfile.LNKTYPE, tarfile.SYMTYPE,
                                                   tarfile.DIRTYPE) else 0
        member = _Member(stream, data_size)
        yield info, member
        member.skip(member.left)
        stream.skip(padded - data_size if data_size else padded)


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
          tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}
_COMPRESSED = (b"\x1f\x8b", b"\x28\xb5\x2f\xfd", b"BZh", b"\xfd7zXZ")


def _norm(name: str) -> str:
    return "/" + posixpath.normpath("/" + name).lstrip("/")


def _entry(name: str, type_: bytes, size: int) -> tuple[str, str, int]:
    path = _norm(name)
    base = posixpath.basename(path)
    if base == OPAQUE:
        return posixpath.dirname(path), "opaque", 0
    if base.startswith(WHITEOUT):
        return posixpath.join(posixpath.dirname(path), base[len(WHITEOUT):]), "whiteout", 0
    kind = _KINDS.get(type_, "other")
    return path, kind, size if kind == "file" else 0


def read_layer_tar(data: ByteStream | _Member) -> list[tuple[str, str, int]]:
    """Entries of one layer tar, streamed: ``(path, kind, size)``.

    ``kind`` is file/dir/symlink/hardlink/other, or ``whiteout`` (path = the deleted
    path) and ``opaque`` (path = the directory whose lower contents are hidden).
    Compressed layers (OCI gzip/zstd blobs) are detected and decompressed on the fly.
    """
    if data.peek(6).startswith(_COMPRESSED):
        with tarfile.open(fileobj=data, mode="r|*", bufsize=_BUFSIZE) as tar:  # type: ignore
            return [_entry(m.name, m.type, m.size) for m in tar]
    return [_entry(info.name, info.type, info.size) for info, _ in iter_tar(data)]


@dataclass
class _Archive:
    layers: dict[str, tuple[list[tuple[str, str, int]], int]] = field(default_factory=dict)
    docs: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)


def _read_archive(stream: ByteStream) -> _Archive:
    arc = _Archive()
    for m, data in iter_tar(stream):
        name = m.name.removeprefix("./")
        if m.issym() or m.islnk():
            target = m.linkname if m.islnk() else posixpath.join(
                posixpath.dirname(name), m.linkname)
            arc.aliases[name] = posixpath.normpath(target).removeprefix("./")
            continue
        if not m.isfile():
            continue
        head = data.peek(1)
        if name.endswith("layer.tar") or (name.startswith("blobs/") and head != b"{"):
            arc.layers[name] = (read_layer_tar(data), m.size)
        elif m.size <= _MAX_JSON and (name.endswith(".json") or head == b"{"):
            try:
                arc.docs[name] = json.loads(data.read())
            except ValueError:
                continue
    return arc


def _blob(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _config_id(path: str) -> str:
    return "sha256:" + posixpath.basename(path).removesuffix(".json")


def _resolve(arc: _Archive, image: str) -> tuple[str, dict, list[str], str]:
    """(layout, config, layer paths in rootfs order, image id) from the archive's index."""
    manifest = arc.docs.get("manifest.json")
    if isinstance(manifest, list) and manifest:
        entry = next((e for e in manifest if image and image in (e.get("RepoTags") or [])),
                     manifest[0])
        config = arc.docs.get(entry["Config"])
        layout = "oci" if "index.json" in arc.docs else "docker"
        if config is not None:
            return layout, config, list(entry["Layers"]), _config_id(entry["Config"])
    index = arc.docs.get("index.json")
    for _ in range(4):  # an index may point to a nested index
        if not isinstance(index, dict):
            break
        if "layers" in index and "config" in index:
            config = arc.docs.get(_blob(index["config"]["digest"]))
            if config is not None:
                layer_paths = [_blob(x["digest"]) for x in index["layers"]]
                return "oci", config, layer_paths, index["config"]["digest"]
            break
        children = index.get("manifests") or []
        if not children:
            break
        index = arc.docs.get(_blob(children[0]["digest"]))
    raise ImageArchiveError(
        "The saved image has neither a usable manifest.json nor an OCI index.json.",
        "Save the image with `docker image save` from Docker 20.10 or newer and try again.")


def instruction_of(created_by: str, comment: str = "") -> str:
    """The Dockerfile instruction behind a history ``created_by`` line."""
    text = re.sub(r"\s*# buildkit$", "", (created_by or "").strip())
    if text.startswith("/bin/sh -c #(nop) "):
        return text[len("/bin/sh -c #(nop) "):].strip()
    for shell in ("/bin/sh -c ", "RUN /bin/sh -c "):
        if text.startswith(shell):
            return "RUN " + text[len(shell):].strip()
    if text:
        return text
    return f"({comment.strip()})" if comment else ""


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain IDs of a stack of layers: how the engine names a layer *with* its parents."""
    out: list[str] = []
    for d in diff_ids:
        out.append(d if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


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


def _replay(entries_by_layer: list[list[tuple[str, str, int]]]) -> tuple[list[dict], list]:
    """Classify every entry; returns per-layer counters and the files table rows."""
    merged = _Merged()
    rows: list[tuple] = []
    stats: list[dict] = []
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
    final_rows = []
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
    return stats, [final_rows, visible_bytes]


def analyze_archive(source: IO[bytes] | Iterable[bytes], image: str = "",
                    image_id: str = "") -> ImageLayers:
    """Analyse a saved image (a file object, or an iterator of tar chunks), streamed once."""
    if hasattr(source, "read"):
        fileobj = source
        source = iter(lambda: fileobj.read(_BUFSIZE), b"")  # type: ignore[union-attr]
    arc = _read_archive(ByteStream(source))  # type: ignore[arg-type]
    layout, config, paths, config_id = _resolve(arc, image)
    diff_ids = list(config.get("rootfs", {}).get("diff_ids", []))
    history = [h for h in config.get("history", []) if not h.get("empty_layer")]
    if len(history) != len(paths):
        history = [{}] * (len(paths) - len(history)) + history[-len(paths):] if paths else []
    if len(diff_ids) != len(paths):
        diff_ids = (diff_ids + [""] * len(paths))[: len(paths)]
    entries, tar_sizes = [], []
    for p in paths:
        key = arc.aliases.get(p, p)
        if key not in arc.layers:
            raise ImageArchiveError(f"The saved image lists layer {p} but does not contain it.",
                                    "Save the image again; the archive may be truncated.")
        ents, size = arc.layers[key]
        entries.append(ents)
        tar_sizes.append(size)
    stats, (rows, visible_bytes) = _replay(entries)
    chains = chain_ids(diff_ids)
    layers = [
        Layer(index=i, diff_id=diff_ids[i], chain_id=chains[i],
              instruction=instruction_of(h.get("created_by", ""), h.get("comment", "")),
              created_by=h.get("created_by", ""), created=h.get("created", ""),
              tar_bytes=tar_sizes[i], **st)
        for i, (h, st) in enumerate(zip(history, stats, strict=True))
    ]
    files = pd.DataFrame(rows, columns=FILE_COLUMNS)
    files["lower_layer"] = files["lower_layer"].astype("Int64")
    files["lower_bytes"] = files["lower_bytes"].astype("Int64")
    files["kept"] = files["kept"].astype(bool)
    total = int(files.loc[files["kind"] == "file", "size_bytes"].sum())
    cfg_id = image_id or config_id
    return ImageLayers(image=image, image_id=cfg_id, layout=layout, layers=layers, files=files,
                       total_bytes=total, visible_bytes=visible_bytes,
                       command=docker_cmd("image", "save", image or cfg_id))


def analyze(image: str, client: docker.DockerClient | None = None,
            chunk_size: int = _BUFSIZE) -> ImageLayers:
    """Analyse the layers of a local image, streamed from ``docker image save``.

    Equivalent: ``docker image save IMAGE | tar -t`` and the same for every layer tar.
    """
    from .engine import client as default_client
    from .images import get_image

    cli = client or default_client()
    img = get_image(image, client=cli)
    stream = cli.api.get_image(image, chunk_size=chunk_size)
    try:
        return analyze_archive(stream, image=image, image_id=img.id)
    finally:
        close = getattr(stream, "close", None)
        if close:
            close()


# ---------------------------------------------------------------- the lifecycle join


_EMPTY_KEYWORDS = {"ENV", "CMD", "LABEL", "EXPOSE", "ENTRYPOINT", "USER", "VOLUME", "ARG",
                   "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL", "MAINTAINER"}


def _short(digest: str) -> str:
    return str(digest).split(":")[-1][:12]


def lifecycle(build_table: pd.DataFrame | None, history_df: pd.DataFrame,
              push_layers_df: pd.DataFrame | None, manifest: dict | None,
              diff_ids: Sequence[str] | None = None) -> pd.DataFrame:
    """What happened to each layer: built or cached, its size, its push and registry size.

    Inputs (plain data, so any producer fits):

    - ``build_table``: one row per Dockerfile step, columns ``step`` (1-based),
      ``instruction``, ``cached`` (bool), ``seconds`` (float), ``image_id`` (the image the
      step produced, full or short). ``None`` when there was no build.
    - ``history_df``: ``docker history`` of the image, *newest first* as the CLI prints it,
      columns ``layer`` (image id or ``<missing>``), ``instruction``, ``size_bytes``,
      ``created``, ``empty`` (True for steps that made no layer, e.g. ENV or CMD).
    - ``push_layers_df``: one row per layer of a push, columns ``layer`` (the 12 hex digits
      the CLI shows), ``status`` (pushed / exists / mounted) and ``bytes`` (or
      ``bytes_pushed``). ``None`` when not pushed. The classic image store names a layer
      by its uncompressed diff ID there, the containerd store by its compressed digest:
      both are matched.
    - ``diff_ids``: the image's ``RootFS.Layers`` (bottom first), to match the classic
      store's push rows. ``None`` matches by compressed digest only.
    - ``manifest``: the registry manifest, ``{"layers": [{"digest", "size"}, ...]}`` in
      rootfs order (bottom first). ``None`` when not pushed.

    Returns one row per layer, bottom first: ``position``, ``instruction``, ``step``,
    ``cached``, ``build_seconds``, ``size_bytes`` (uncompressed, from history),
    ``digest`` and ``compressed_bytes`` (registry), ``push_status``, ``push_bytes`` and
    ``ratio`` (compressed / uncompressed).
    """
    hist = history_df.iloc[::-1].reset_index(drop=True)  # bottom first
    layers = list((manifest or {}).get("layers", []))
    made = ~hist["empty"].astype(bool)
    if manifest is not None and int(made.sum()) != len(layers):
        # "empty" from a 0-byte size misses layers that changed no bytes: use the keyword
        keyword = hist["instruction"].astype(str).str.split().str[0].str.upper()
        made = ~keyword.isin(_EMPTY_KEYWORDS)
    hist = hist[made].reset_index(drop=True)
    out = pd.DataFrame({
        "position": range(len(hist)),
        "instruction": hist["instruction"].astype(str),
        "size_bytes": hist["size_bytes"].astype("Int64"),
        "history_id": hist["layer"].astype(str),
    })
    out["step"] = pd.Series([pd.NA] * len(out), dtype="Int64")
    out["cached"] = pd.Series([pd.NA] * len(out), dtype="boolean")
    out["build_seconds"] = pd.Series([float("nan")] * len(out), dtype="float64")
    if build_table is not None and len(build_table):
        by_id = {_short(r.image_id): r for r in build_table.itertuples()
                 if isinstance(r.image_id, str) and r.image_id}
        for i, hid in enumerate(out["history_id"]):
            r = by_id.get(_short(hid))
            if r is not None:
                out.loc[i, ["step", "cached", "build_seconds"]] = [r.step, bool(r.cached),
                                                                   float(r.seconds)]
    if manifest is not None and len(layers) != len(out):
        raise ImageArchiveError(
            f"The manifest lists {len(layers)} layers but the history has {len(out)}.",
            "Pass the history and the manifest of the same image (same tag, same push).")
    out["digest"] = [x.get("digest") for x in layers] if layers else None
    out["compressed_bytes"] = pd.Series([x.get("size") for x in layers] if layers
                                        else [pd.NA] * len(out), dtype="Int64")
    push: dict[str, tuple[str, Any]] = {}
    if push_layers_df is not None:
        col = "bytes" if "bytes" in push_layers_df else "bytes_pushed"
        push = {_short(layer): (status, size) for layer, status, size in zip(
            push_layers_df["layer"], push_layers_df["status"], push_layers_df[col],
            strict=True)}
    digests = list(out["digest"]) if layers else [None] * len(out)
    diffs = list(diff_ids or []) if diff_ids is not None and len(diff_ids) == len(out) \
        else [None] * len(out)
    rows = [push.get(_short(d) if d else "") or push.get(_short(x) if x else "")
            for d, x in zip(digests, diffs, strict=True)]
    out["push_status"] = [r[0] if r else None for r in rows]
    out["push_bytes"] = pd.Series([r[1] if r else pd.NA for r in rows], dtype="Int64")
    ratio = out["compressed_bytes"].astype("Float64") / out["size_bytes"].astype("Float64")
    out["ratio"] = ratio.where(out["size_bytes"].fillna(0) > 0)
    return out.drop(columns=["history_id"])


def top_layer(image: str, client: docker.DockerClient | None = None) -> Layer:
    """The newest layer of ``image`` as read from the image itself (same on every store)."""
    return analyze(image, client=client).layers[-1]
