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
from dataclasses import dataclass, field
from typing import Any

from labkit.images.archive_stream import (
    CORRUPT_HINT,
    ByteStream,
    ImageArchiveError,
    LayerUnreadable,
    Stream,
    compression,
    inflate,
    iter_tar,
)

_MAX_JSON = 8 << 20
WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"


_KINDS = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file",
          tarfile.DIRTYPE: "dir", tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}


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


def read_layer_tar(data: Stream) -> list[tuple[str, str, int]]:
    """Entries of one layer tar, streamed: ``(path, kind, size)``.

    ``kind`` is file/dir/symlink/hardlink/other, or ``whiteout`` (path = the deleted
    path) and ``opaque`` (path = the directory whose lower contents are hidden).
    Compressed layers (OCI gzip blobs; bzip2, xz) are decompressed on the fly.
    """
    kind = compression(data.peek(6))
    tar = ByteStream(inflate(data, kind), layer=True) if kind else data
    return [_entry(info.name, info.type, info.size) for info, _ in iter_tar(tar)]


@dataclass
class _Archive:
    layers: dict[str, tuple[list[tuple[str, str, int]], int]] = field(default_factory=dict)
    docs: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    unreadable: dict[str, ImageArchiveError] = field(default_factory=dict)  # by member
    not_json: set[str] = field(default_factory=set)
    digests: dict[str, str] = field(default_factory=dict)  # JSON member -> sha256 of its bytes

    def layer(self, path: str) -> tuple[list[tuple[str, str, int]], int]:
        """(entries, tar size) of the layer the index names ``path``."""
        key = self.aliases.get(path, path)
        if key in self.unreadable:
            err = self.unreadable[key]
            raise ImageArchiveError(f"{err.message} (layer {path})", err.hint)
        if key not in self.layers:
            raise ImageArchiveError(
                f"The saved image lists layer {path} but does not contain it.",
                "Save the image again; the archive may be truncated.")
        return self.layers[key]


def read_archive(stream: ByteStream) -> _Archive:
    """Every layer and JSON document of the archive, read in one pass.

    A member that is not a readable layer is noted, not fatal: an OCI archive may hold
    blobs that no manifest of ours names. A cut-off stream or a broken header is fatal.
    """
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
            try:
                arc.layers[name] = (read_layer_tar(data), m.size)
            except LayerUnreadable as exc:
                arc.unreadable[name] = exc
        elif m.size <= _MAX_JSON and (name.endswith(".json") or head == b"{"):
            raw = data.read()
            arc.digests[name] = "sha256:" + hashlib.sha256(raw).hexdigest()
            try:
                arc.docs[name] = json.loads(raw)
            except ValueError:
                arc.not_json.add(name)
    return arc


def _blob(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"blobs/{algo}/{hexpart}"


def _config_id(path: str) -> str:
    return "sha256:" + posixpath.basename(path).removesuffix(".json")


def resolve_image(arc: _Archive, image: str) -> tuple[str, dict[str, Any], list[str], str]:
    """(layout, config, layer paths in rootfs order, image id) from the archive's index."""
    try:
        found = _from_manifest(arc, image) or _from_index(arc)
    except (KeyError, TypeError, AttributeError) as exc:
        raise ImageArchiveError(
            f"The saved image's manifest.json or index.json lacks a field it needs ({exc}).",
            CORRUPT_HINT) from None
    if found is not None:
        return found
    broken = sorted(arc.not_json & {"manifest.json", "index.json"})
    if broken:
        raise ImageArchiveError(f"The saved image's {broken[0]} is not valid JSON.",
                                CORRUPT_HINT)
    raise ImageArchiveError(
        "The saved image has neither a usable manifest.json nor an OCI index.json.",
        "Save the image with `docker image save` from Docker 20.10 or newer and try again.")


def _from_manifest(arc: _Archive, image: str) -> tuple[str, dict[str, Any], list[str], str] | None:
    manifest = arc.docs.get("manifest.json")
    if not (isinstance(manifest, list) and manifest):
        return None
    named = [e for e in manifest if image and image in (e.get("RepoTags") or [])]
    if not named and len(manifest) > 1:  # several images: which one is not ours to guess
        raise ImageArchiveError(
            f"The saved archive holds {len(manifest)} images, none of them named {image!r}.",
            "Save one image: name it with its tag (REPO:TAG) or its ID.")
    entry = named[0] if named else manifest[0]
    config = arc.docs.get(entry["Config"])
    layout = "oci" if "index.json" in arc.docs else "docker"
    if not isinstance(config, dict):
        return None
    return layout, config, [str(p) for p in entry["Layers"]], _config_id(entry["Config"])


def _from_index(arc: _Archive) -> tuple[str, dict[str, Any], list[str], str] | None:
    index = arc.docs.get("index.json")
    for _ in range(4):  # an index may point to a nested index
        if not isinstance(index, dict):
            return None
        if "layers" in index and "config" in index:
            config = arc.docs.get(_blob(index["config"]["digest"]))
            if not isinstance(config, dict):
                return None
            layer_paths = [_blob(x["digest"]) for x in index["layers"]]
            return "oci", config, layer_paths, index["config"]["digest"]
        children = index.get("manifests") or []
        if not children:
            return None
        index = arc.docs.get(_blob(children[0]["digest"]))
    return None


def _is_image_manifest(desc: dict[str, Any]) -> bool:
    """A descriptor of an image manifest (not an attestation's)."""
    annotations = desc.get("annotations") or {}
    platform = desc.get("platform") or {}
    return annotations.get("vnd.docker.reference.type") != "attestation-manifest" \
        and platform.get("os") != "unknown"


def archive_ids(docs: dict[str, Any], digests: dict[str, str],
                config: dict[str, Any]) -> dict[str, Any]:
    """The documents that name an image in its saved archive, with the sha256 of their bytes.

    ``docs`` and ``digests`` are the archive's JSON members (parsed, and the digest of their
    bytes) by path; ``config`` is the image's config, as found in ``docs``. Returns a
    JSON-able dict: ``config`` (path and sha256), ``top`` (the descriptor ``index.json``
    names and the sha256 of that document, None in a legacy archive) and ``manifest`` (the
    image manifest's digest, sha256, config digest and layer descriptors, or None).
    """
    config_path = next((p for p, d in docs.items() if d is config), "")
    out: dict[str, Any] = {"config": {"path": config_path,
                                      "sha256": digests.get(config_path, "")},
                           "top": None, "manifest": None}
    index = docs.get("index.json")
    children = index.get("manifests") if isinstance(index, dict) else None
    if not children:
        return out
    top = children[0]
    top_path = _blob(str(top.get("digest", "")))
    out["top"] = {"digest": top.get("digest", ""), "media_type": top.get("mediaType", ""),
                  "sha256": digests.get(top_path, "")}
    doc, desc, path = docs.get(top_path), top, top_path
    for _ in range(4):  # an index names manifests (or more indexes)
        if not isinstance(doc, dict) or "manifests" not in doc:
            break
        wanted = [m for m in doc["manifests"] if _is_image_manifest(m)] or doc["manifests"]
        desc = wanted[0]
        path = _blob(str(desc.get("digest", "")))
        doc = docs.get(path)
    if isinstance(doc, dict) and "layers" in doc:
        out["manifest"] = {
            "digest": desc.get("digest", ""), "sha256": digests.get(path, ""),
            "config_digest": (doc.get("config") or {}).get("digest", ""),
            "layers": [{"digest": x.get("digest", ""), "size": int(x.get("size", 0)),
                        "media_type": x.get("mediaType", "")} for x in doc["layers"]],
        }
    return out


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
