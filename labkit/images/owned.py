"""Which images and containers are this learner's, with no label the learner has to type.

An image is this learner's when one of its tags names a repository under the learner's
own name (``<learner>/<name>``, after an optional registry host: ``localhost:5000/``,
``localhost/``, ``registry.example.org/``), or when labkit built it for this learner and
recorded its ID (:func:`remember_build`; a rebuild leaves the old image untagged,
``<none>``, and only the record still names it). labkit also records every image it sees
under the learner's name (:func:`note_named`: before each build, in listings, previews and
clean-ups), so an image built in the terminal stays theirs once a later build takes its
name; one replaced before labkit ever saw it is not known. A learner name holds no ``/``, so the
rule is unambiguous: ``ann`` never owns ``ann-b/web`` nor ``ann-b-web``.

A container is this learner's when labkit's namespace label says so, or, carrying no such
label, when its image is this learner's (a plain ``docker run`` typed in the terminal).

The record is a small text file in the learner's state folder (``Settings.state_dir``),
one per learner, so learners sharing one engine (and one home) never read each other's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import docker

from labkit import engine
from labkit.engine import LABEL_NAMESPACE, Settings, settings
from labkit.learners import is_learner_name

HEX = set("0123456789abcdef")
#: at most this many IDs are kept in one learner's record (the oldest are dropped)
MAX_RECORDED = 500


def record_file(s: Settings | None = None) -> Path:
    """Where the IDs of the images labkit built for this learner are recorded."""
    s = s or settings()
    return s.state_dir / f"{s.namespace}.builds"


def _strip(ident: str) -> str:
    return ident.removeprefix("sha256:")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[Any]:
    """The record file opened for update, under an exclusive lock (two kernels, one learner)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    with os.fdopen(fd, "r+", encoding="utf-8") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield fh


def _read_lines(fh: Any) -> list[tuple[str, str]]:
    fh.seek(0)
    out = []
    for line in fh.read().splitlines():
        ident, _, tag = line.strip().partition(" ")
        if ident and set(ident) <= HEX:
            out.append((ident, tag))
    return out


def _write_lines(fh: Any, entries: list[tuple[str, str]]) -> None:
    fh.seek(0)
    fh.truncate()
    fh.write("".join(f"{ident} {tag}\n" for ident, tag in entries[-MAX_RECORDED:]))
    fh.flush()


def remember_build(image_id: str, tag: str, s: Settings | None = None) -> None:
    """Record that labkit built ``image_id`` (tagged ``tag``) for this learner."""
    ident = _strip(image_id).lower()
    if not ident:
        return
    with _locked(record_file(s)) as fh:
        entries = [e for e in _read_lines(fh) if e[0] != ident]
        _write_lines(fh, [*entries, (ident, tag)])


def note_named(images: Iterable[Mapping[str, Any]], s: Settings | None = None) -> set[str]:
    """Record every image among ``images`` that carries one of this learner's names now, so
    that it stays theirs once a later build takes the name (a ``docker build`` typed in the
    terminal, then replaced); returns the whole record."""
    named = {_strip(str(i.get("Id") or "")).lower() for i in images if own_tags(i, s)}
    named.discard("")
    known = recorded_ids(s)
    if named - known:
        with _locked(record_file(s)) as fh:
            entries = _read_lines(fh)
            have = {e[0] for e in entries}
            _write_lines(fh, [*entries, *((i, "named") for i in sorted(named - have))])
    return known | named


def recorded_ids(s: Settings | None = None) -> set[str]:
    """The image IDs (no ``sha256:``) labkit recorded for this learner."""
    path = record_file(s)
    if not path.exists():
        return set()
    with _locked(path) as fh:
        return {ident for ident, _ in _read_lines(fh)}


def forget(image_ids: Iterable[str], s: Settings | None = None) -> None:
    """Drop IDs from the record (images that are gone from the engine)."""
    gone = {_strip(i).lower() for i in image_ids}
    path = record_file(s)
    if not gone or not path.exists():
        return
    with _locked(path) as fh:
        _write_lines(fh, [e for e in _read_lines(fh) if e[0] not in gone])


# --------------------------------------------------------------------------- the rule


def _is_host(component: str) -> bool:
    """Docker's rule for the first component of a reference: a registry host when it holds
    a ``.`` or a ``:``, or is ``localhost`` (distribution/reference)."""
    return "." in component or ":" in component or component == "localhost"


def repository_path(reference: str) -> str:
    """A reference's repository path: no registry host, no tag, no digest.

    ``localhost:5000/ann/app:v1`` -> ``ann/app``; ``python:3.11`` -> ``python``.
    """
    ref = reference.partition("@")[0]
    first, slash, rest = ref.partition("/")
    if slash and _is_host(first):
        ref = rest
    name, _, tag = ref.rpartition(":")
    if name and "/" not in tag:
        ref = name
    return ref


def owner_of_reference(reference: str) -> str | None:
    """The learner a reference's repository is under (``ann/app`` -> ``ann``), or None."""
    head, slash, _ = repository_path(reference).partition("/")
    return head if slash and is_learner_name(head) else None


def is_own_reference(reference: str, s: Settings | None = None) -> bool:
    """True when ``reference`` names a repository under this learner's name."""
    return owner_of_reference(reference) == (s or settings()).namespace


def tags_of(image: Mapping[str, Any]) -> list[str]:
    """An engine image entry's real tags (``<none>:<none>`` left out)."""
    return [t for t in image.get("RepoTags") or [] if t and t != "<none>:<none>"]


def own_tags(image: Mapping[str, Any], s: Settings | None = None) -> list[str]:
    """The tags of an engine image entry that name this learner's repositories."""
    return [t for t in tags_of(image) if is_own_reference(t, s)]


def is_own_image(image: Mapping[str, Any], recorded: set[str] | None = None,
                 s: Settings | None = None) -> bool:
    """An engine image entry (``docker image ls`` / ``inspect``) is this learner's."""
    ids = recorded_ids(s) if recorded is None else recorded
    return bool(own_tags(image, s)) or _strip(str(image.get("Id") or "")) in ids


def own_image_ids(images: Iterable[Mapping[str, Any]], recorded: set[str] | None = None,
                  s: Settings | None = None) -> set[str]:
    """The IDs (no ``sha256:``) of the images among ``images`` that are this learner's."""
    ids = recorded_ids(s) if recorded is None else recorded
    return {_strip(str(i["Id"])) for i in images if is_own_image(i, ids, s)}


def _container_fields(container: Mapping[str, Any]) -> tuple[dict[str, str], str, str]:
    """(labels, image reference, image ID) of a container, listed or inspected.

    ``docker container ls`` gives ``Labels``, ``Image`` (the reference) and ``ImageID``;
    ``docker container inspect`` gives ``Config.Labels``, ``Config.Image`` and ``Image``
    (the ID).
    """
    config = container.get("Config")
    if isinstance(config, Mapping):
        return (dict(config.get("Labels") or {}), str(config.get("Image") or ""),
                _strip(str(container.get("Image") or "")))
    return (dict(container.get("Labels") or {}), str(container.get("Image") or ""),
            _strip(str(container.get("ImageID") or "")))


def container_namespace(container: Mapping[str, Any]) -> str | None:
    """The namespace labkit's label puts on a container (or image) entry, if any."""
    config = container.get("Config")
    labels = (config.get("Labels") if isinstance(config, Mapping) else None) \
        or container.get("Labels") or {}
    return labels.get(LABEL_NAMESPACE) if isinstance(labels, Mapping) else None


def is_own_container(container: Mapping[str, Any], own_images: set[str],
                     s: Settings | None = None) -> bool:
    """A container entry (listed or inspected) is this learner's.

    labkit's label decides when there is one; otherwise the container's image does: its
    reference under this learner's name, or an image ID in ``own_images``
    (:func:`own_image_ids`).
    """
    labels, reference, image_id = _container_fields(container)
    ns = labels.get(LABEL_NAMESPACE)
    if ns is not None:
        return ns == (s or settings()).namespace
    return (is_own_reference(reference, s) or image_id in own_images
            or _strip(reference) in own_images)


def foreign_owner(entry: Mapping[str, Any], s: Settings | None = None) -> str | None:
    """Another learner a container or image entry belongs to (labkit's label, or a tag or an
    image reference under their name), or None."""
    me = (s or settings()).namespace
    ns = container_namespace(entry)
    if ns is not None:
        return ns if ns != me else None
    config = entry.get("Config")
    refs = [*tags_of(entry), str(entry.get("Image") or "")]
    if isinstance(config, Mapping):
        refs.append(str(config.get("Image") or ""))
    for ref in refs:
        owner = owner_of_reference(ref)
        if owner is not None and owner != me:
            return owner
    return None


# --------------------------------------------------------------------------- on the engine


def own_images(client: docker.DockerClient | None = None,
               **filters: Any) -> list[dict[str, Any]]:
    """This learner's images as the engine lists them (``docker image ls``)."""
    cli = client or engine.client()
    listed = engine.images(cli, **filters)
    recorded = note_named(listed)
    return [i for i in listed if is_own_image(i, recorded)]


def own_containers(client: docker.DockerClient | None = None, size: bool = False,
                   **kwargs: Any) -> list[dict[str, Any]]:
    """This learner's containers as the engine lists them (``docker container ls``; ``all``
    and ``filters`` as docker-py takes them; ``size`` adds ``SizeRw``)."""
    cli = client or engine.client()
    mine = own_image_ids(engine.images(cli))
    listed = (engine.containers_with_size(cli, **kwargs) if size
              else cli.api.containers(**kwargs))
    return [c for c in listed if is_own_container(c, mine)]
