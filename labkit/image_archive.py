"""A saved image (``docker image save``), read as it streams: the legacy layout
(``manifest.json``, one tar per layer) or the OCI one (``index.json``, ``blobs/sha256/…``,
layers possibly compressed), one tar header at a time; nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import LabkitError

_BUFSIZE = 1 << 20
_MAX_JSON = 8 << 20
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


class ImageArchiveError(LabkitError):
    """A saved image archive could not be read as Docker or OCI layout."""


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


def _resolve(arc: _Archive, image: str) -> tuple[str, dict[str, Any], list[str], str]:
    """(layout, config, layer paths in rootfs order, image id) from the archive's index."""
    manifest = arc.docs.get("manifest.json")
    if isinstance(manifest, list) and manifest:
        named = [e for e in manifest if image and image in (e.get("RepoTags") or [])]
        if not named and len(manifest) > 1:  # several images: which one is not ours to guess
            raise ImageArchiveError(
                f"The saved archive holds {len(manifest)} images, none of them named {image!r}.",
                "Save one image: name it with its tag (REPO:TAG) or its ID.")
        entry = named[0] if named else manifest[0]
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
