"""What a layer analysis read from an image, kept so that an image is saved only once.

A *chain ID* names a layer together with every layer below it, by content: what such a
layer holds never changes. After a full read of ``docker image save``, each layer's entries
(path, kind, size), its tar size in that engine's archive, the archive layout and the
history line that made the layer are kept per engine, in
``<cache>/layers/<engine id>/<chain id>.json`` (``LABKIT_CACHE_DIR``, default
``~/.cache/labkit``). An image whose every chain is known, and whose ``docker history``
shows the same instructions at the same times, is then analysed without saving it again:
a rebuild that reuses the build cache (new image ID, same layers) costs two API calls.

In the process, analyses are also kept per engine and image ID (an image ID names
immutable content), so the explorer and the sharing comparison reuse the notebook's.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker

from labkit.images import chain_ids

if TYPE_CHECKING:
    from labkit.layers.analysis import ImageLayers

VERSION = 1
KEEP_ENGINES = 8  # engine directories kept (throwaway engines get new IDs)
KEEP_IN_MEMORY = 16  # analyses kept per process

Entry = tuple[str, str, int]


@dataclass
class RawImage:
    """What the saved archive said about an image, before the layers are replayed."""

    layout: str
    config_id: str
    diff_ids: list[str]
    history: list[dict[str, Any]]  # one per layer: created_by, created, comment
    entries: list[list[Entry]]
    tar_sizes: list[int]
    #: the archive's documents that name the image (config, manifest, index) with the
    #: sha256 of their bytes (:func:`labkit.layers.identity.archive_ids`); None when
    #: loaded from layer records without the image's own record
    ids: dict[str, Any] | None = None

    def cacheable(self) -> bool:
        """True when every layer has its own diff ID and history line (nothing padded)."""
        n = len(self.entries)
        return n > 0 and len(self.diff_ids) == len(self.history) == len(self.tar_sizes) == n \
            and all(self.diff_ids) and all(h.get("created") for h in self.history)


# ---------------------------------------------------------------- in the process

_memory: OrderedDict[tuple[str, str], ImageLayers] = OrderedDict()
_engine_ids: dict[str, str] = {}


def _base_url(cli: docker.DockerClient) -> str | None:
    url = getattr(getattr(cli, "api", None), "base_url", None)
    return url if isinstance(url, str) else None


def remembered(cli: docker.DockerClient, image_id: str) -> ImageLayers | None:
    """The analysis of ``image_id`` made earlier in this process on this engine, if any."""
    url = _base_url(cli)
    key = (url, image_id) if url else None
    if key is None or key not in _memory:
        return None
    _memory.move_to_end(key)
    return _memory[key]


def remember(cli: docker.DockerClient, image_id: str, analysis: ImageLayers) -> None:
    """Keep ``analysis`` for later calls on the same engine and image ID."""
    url = _base_url(cli)
    if not url or not image_id:
        return
    _memory[(url, image_id)] = analysis
    _memory.move_to_end((url, image_id))
    while len(_memory) > KEEP_IN_MEMORY:
        _memory.popitem(last=False)


def forget() -> None:
    """Drop every analysis kept in this process (the files on disk stay)."""
    _memory.clear()
    _engine_ids.clear()


# ---------------------------------------------------------------- on disk


def cache_dir(environ: dict[str, str] | None = None) -> Path:
    """Where layer records are kept: ``<LABKIT_CACHE_DIR or ~/.cache/labkit>/layers``."""
    from labkit.offline import cache_root

    return cache_root(environ) / "layers"


def _engine_id(cli: docker.DockerClient) -> str | None:
    url = _base_url(cli)
    if url is None:
        return None
    if url not in _engine_ids:
        try:
            ident = str(cli.info().get("ID") or "")
        except (docker.errors.APIError, AttributeError):
            ident = ""
        _engine_ids[url] = re.sub(r"[^A-Za-z0-9_.-]", "_", ident)
    return _engine_ids[url] or None


def _engine_dir(cli: docker.DockerClient, root: Path | None) -> Path | None:
    ident = _engine_id(cli)
    return (root or cache_dir()) / ident if ident else None


def _seconds(created: str) -> int | None:
    """Whole seconds since the epoch of an RFC 3339 time (``created`` of a config)."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)?", created)
    if not m:
        return None
    zone = m.group(2) or "Z"
    stamp = datetime.fromisoformat(m.group(1) + ("+00:00" if zone == "Z" else zone))
    return int(stamp.timestamp())


def _read(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and rec.get("v") == VERSION else None


def load(cli: docker.DockerClient, image: Any, root: Path | None = None) -> RawImage | None:
    """The image's archive data from the records of its chains; None unless all match.

    ``image`` is docker-py's Image. Every chain must be known, and the image's history
    must show each layer's instruction at the time recorded, bottom to top.
    """
    folder = _engine_dir(cli, root)
    diff_ids = list((getattr(image, "attrs", {}) or {}).get("RootFS", {}).get("Layers") or [])
    if folder is None or not diff_ids:
        return None
    recs = []
    for chain, diff in zip(chain_ids(diff_ids), diff_ids, strict=True):
        rec = _read(folder / (chain.split(":")[-1] + ".json"))
        if rec is None or rec.get("diff_id") != diff:
            return None
        recs.append(rec)
    if len({r["layout"] for r in recs}) != 1:
        return None
    try:
        rows = list(reversed(cli.api.history(image.id)))  # bottom first
    except docker.errors.APIError:
        return None
    j = 0
    for row in rows:
        h = recs[j]["history"] if j < len(recs) else None
        if h and row.get("CreatedBy", "") == h["created_by"] \
                and row.get("Created") == _seconds(h["created"]):
            j += 1
    if j != len(recs):
        return None
    for rec_path in (folder / (c.split(":")[-1] + ".json") for c in chain_ids(diff_ids)):
        with contextlib.suppress(OSError):
            os.utime(rec_path)
    ids = _read(_image_record(folder, image.id))
    return RawImage(layout=recs[0]["layout"], config_id=image.id, diff_ids=diff_ids,
                    history=[dict(r["history"]) for r in recs],
                    entries=[[(p, k, int(s)) for p, k, s in r["entries"]] for r in recs],
                    tar_sizes=[int(r["tar_bytes"]) for r in recs],
                    ids=ids.get("ids") if ids else None)


def _image_record(folder: Path, image_id: str) -> Path:
    """Where the documents naming one image (by its ID) are kept."""
    return folder / "images" / (image_id.split(":")[-1] + ".json")


def save(cli: docker.DockerClient, raw: RawImage, root: Path | None = None,
         image_id: str = "") -> int:
    """Record every chain of ``raw`` not recorded yet, and the documents naming the image
    ``image_id`` (its ``ids``); returns how many layer records were written."""
    folder = _engine_dir(cli, root)
    if folder is None or not raw.cacheable():
        return 0
    written = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.utime(folder)
        if image_id and raw.ids is not None:
            rec_path = _image_record(folder, image_id)
            rec_path.parent.mkdir(exist_ok=True)
            tmp = rec_path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps({"v": VERSION, "ids": raw.ids}, separators=(",", ":")))
            tmp.replace(rec_path)
        for i, chain in enumerate(chain_ids(raw.diff_ids)):
            path = folder / (chain.split(":")[-1] + ".json")
            if path.exists() and _read(path) is not None:
                continue
            h = raw.history[i]
            rec = {"v": VERSION, "diff_id": raw.diff_ids[i], "layout": raw.layout,
                   "tar_bytes": raw.tar_sizes[i], "entries": raw.entries[i],
                   "history": {"created_by": h.get("created_by", ""),
                               "created": h.get("created", ""),
                               "comment": h.get("comment", "")}}
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(rec, separators=(",", ":")))
            tmp.replace(path)
            written += 1
        _prune(folder.parent)
    except OSError:
        return written  # a read-only or full cache only costs speed
    return written


def _prune(root: Path) -> None:
    """Keep the engine directories used most recently."""
    dirs = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime,
                  reverse=True)
    for old in dirs[KEEP_ENGINES:]:
        shutil.rmtree(old, ignore_errors=True)
