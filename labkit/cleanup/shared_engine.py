"""What is not this learner's, on an engine that other learners share.

Whose an object is: :mod:`labkit.images.owned`.
Other learners' containers, images, volumes and networks come and go at any time, so
"everything else is still there" cannot be proven by comparing the whole engine before
and after a clean-up. :func:`record` notes what is not ours and adds one canary of each
kind, labelled with a namespace no learner can have; :meth:`Others.untouched_by` then
proves the fact from this learner's own clean-up: everything it removed carried our
namespace, none of it was among the things recorded as not ours, and every canary is
still there. The canaries are removed afterwards (or when the process ends, or by the next
:func:`record`).
"""

from __future__ import annotations

import atexit
import contextlib
from dataclasses import dataclass, field
from typing import Any

import docker
from docker.errors import APIError, NotFound

from labkit import engine
from labkit.cleanup.removal import CleanupReport
from labkit.engine import BASE_IMAGE, LABEL_NAMESPACE, LABEL_ROLE, settings
from labkit.images import owned

CANARY_ROLE = "canary"
KINDS = ("container", "image", "volume", "network")


def canary_namespace() -> str:
    """``<user>.canary``: starts like ours, and no learner can have it (a dot is refused)."""
    return f"{settings().namespace}.canary"


def _labels() -> dict[str, str]:
    return {LABEL_NAMESPACE: canary_namespace(), LABEL_ROLE: CANARY_ROLE}


def _strip(ident: str) -> str:
    return ident.removeprefix("sha256:")


def canary_tag() -> str:
    """``<user>-canary…/app:check``: a repository that starts like ours and that no learner
    can own (longer than a learner name may be), on the canary image."""
    return f"{settings().namespace}-{'canary' * 6}"[:40] + "/app:check"


def inventory(client: docker.DockerClient | None = None) -> set[tuple[str, str]]:
    """The (kind, id) of every container, image, volume and network that is NOT this
    learner's (:mod:`labkit.images.owned`; image ids without ``sha256:``, volumes by name),
    as the engine lists them now."""
    cli = client or engine.client()
    api, ours = cli.api, settings().namespace

    def foreign(labels: dict[str, str] | None) -> bool:
        return (labels or {}).get(LABEL_NAMESPACE) != ours

    images = engine.images(cli)
    mine = owned.own_image_ids(images)
    return (
        {("container", c["Id"]) for c in api.containers(all=True)
         if not owned.is_own_container(c, mine)}
        | {("image", _strip(i["Id"])) for i in images if _strip(i["Id"]) not in mine}
        | {("volume", v["Name"]) for v in api.volumes().get("Volumes") or []
           if foreign(v.get("Labels"))}
        | {("network", n["Id"]) for n in api.networks() if foreign(n.get("Labels"))}
    )


def remove_canaries(client: docker.DockerClient | None = None) -> int:
    """Remove this learner's canaries (from this or an earlier, interrupted check)."""
    cli = client or engine.client()
    api = cli.api
    flt = {"label": [f"{LABEL_NAMESPACE}={canary_namespace()}"]}
    steps: list[Any] = [lambda c=c: api.remove_container(c["Id"], force=True)
                        for c in api.containers(all=True, filters=flt)]
    steps += [lambda i=i: api.remove_image(i["Id"], force=True)
              for i in engine.images(cli, filters=flt)]
    steps += [lambda v=v: api.remove_volume(v["Name"], force=True)
              for v in api.volumes(filters=flt).get("Volumes") or []]
    steps += [lambda n=n: api.remove_network(n["Id"]) for n in api.networks(filters=flt)]
    for step in steps:
        with contextlib.suppress(NotFound):
            step()
    return len(steps)


def _make_canaries(cli: docker.DockerClient) -> dict[str, str]:
    """One stopped container, one image (its commit), one volume, one network: not ours."""
    api, labels, ns = cli.api, _labels(), canary_namespace()
    name = ns.replace(".", "-")  # names allow no dot before a letter on every engine
    container = api.create_container(BASE_IMAGE, ["true"], name=f"{name}-container",
                                     labels=labels, network_disabled=True)["Id"]
    image = engine.one_at_a_time(  # two learners committing the same empty layer at once
        lambda: api.commit(container, repository="labkit-canary", tag=settings().namespace,
                           conf={"Labels": labels}), "docker container commit", timeout=60,
        again=lambda exc: engine.is_vanished_image(str(exc)))["Id"]
    repository, _, tag = canary_tag().rpartition(":")
    api.tag(image, repository, tag)
    volume = api.create_volume(name=f"{name}-volume", labels=labels)["Name"]
    network = api.create_network(f"{name}-network", labels=labels)["Id"]
    return {"container": container, "image": _strip(image), "volume": volume,
            "network": network}


def _exists(api: Any, kind: str, ident: str) -> bool:
    inspect = {"container": api.inspect_container, "image": api.inspect_image,
               "volume": api.inspect_volume, "network": api.inspect_network}[kind]
    try:
        found = inspect(ident)
    except NotFound:
        return False
    labels = (found.get("Config") or {}).get("Labels") if kind in ("container", "image") \
        else found.get("Labels")
    if kind == "image" and canary_tag() not in (found.get("RepoTags") or []):
        return False  # the name that starts like ours was taken
    return (labels or {}).get(LABEL_NAMESPACE) == canary_namespace()


@dataclass
class Others:
    """What was not ours before a clean-up, and the canaries made for the check."""

    before: set[tuple[str, str]]
    canaries: dict[str, str]
    problems: list[str] = field(default_factory=list)
    _checked: bool = False

    def untouched_by(self, report: CleanupReport,
                     client: docker.DockerClient | None = None) -> bool:
        """True when ``report``'s clean-up took nothing that was not ours.

        Everything it removed was this learner's by the rule, no removed object nor image
        the prune deleted was recorded as not ours, and every canary is still there. The
        verdict's reasons are kept in ``problems``; the canaries are removed (once: asking
        again returns the same verdict).
        """
        if self._checked:
            return not self.problems
        cli = client or engine.client()
        ours = settings().namespace
        removed = set(report.removed) | {("image", i) for i in report.deleted_images}
        self.problems = [f"removed {kind} {ident[:19]} of {ns!r}"
                         for (kind, ident), ns in report.removed.items() if ns != ours]
        self.problems += [f"removed {kind} {ident[:19]}, which was not ours"
                          for kind, ident in sorted(removed & self.before)]
        try:
            self.problems += [f"the canary {kind} {ident[:19]} is gone"
                              for kind, ident in self.canaries.items()
                              if not _exists(cli.api, kind, ident)]
        finally:
            remove_canaries(cli)
        self._checked = True
        return not self.problems

    def __str__(self) -> str:
        return "; ".join(self.problems) or f"{len(self.before)} objects not ours, and " \
            f"{len(self.canaries)} canaries"


def record(client: docker.DockerClient | None = None) -> Others:
    """Before a clean-up: a canary of each kind that is not ours, then everything not ours.

    An engine that refuses a canary (e.g. no base image) raises its error: the check then
    cannot prove anything, and says so rather than passing.
    """
    cli = client or engine.client()
    remove_canaries(cli)
    try:
        canaries = _make_canaries(cli)
    except (APIError, docker.errors.ImageNotFound):
        remove_canaries(cli)
        raise
    atexit.register(_remove_quietly, cli)  # a check never reached: gone with the kernel
    return Others(before=inventory(cli), canaries=canaries)


def _remove_quietly(cli: docker.DockerClient) -> None:
    with contextlib.suppress(Exception):
        remove_canaries(cli)
