"""The build cache, which is not the image store: what it holds, who else shares the engine,
and ``docker builder prune``.

BuildKit keeps the result of each build step as a cache record of its own (``docker buildx
du``, the Build Cache row of ``docker system df``); removing an image leaves its cache
behind, and ``docker builder prune`` empties it. A cache record names no owner: a prune
takes the cache of every build on the engine, the course's, the learner's other projects'
and other learners'. So clean-up prunes it only when asked to, and says who else builds
here (:mod:`labkit.images.owned`'s rule). The classic builder keeps no such records: its
cache is the untagged parent images of each build, which go with the image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker

from labkit import engine
from labkit.engine import DockerCommand
from labkit.engine import docker as docker_cmd
from labkit.images import owned
from labkit.learners import is_learner_name

SHARED_NOTE = ("BuildKit's cache records name no owner, so `docker builder prune` would take "
               "the cache of every build here, not only the course's: clean-up keeps it "
               "unless you ask (`clean(build_cache_prune=True)`, `labkit clean --build-cache`).")
CLASSIC_NOTE = ("This engine holds no BuildKit cache: the classic builder's cache is the "
                "untagged parent images of each build, and they go with your images.")


def prune_command() -> DockerCommand:
    """``docker builder prune --all --force``: every build cache record no build uses."""
    return docker_cmd("builder", "prune", "--all", "--force")


def usage_command() -> DockerCommand:
    """``docker system df``: its Build Cache row (``docker buildx du`` lists the records)."""
    return docker_cmd("system", "df")


@dataclass(frozen=True)
class BuildCacheUsage:
    """The engine's build cache now: records, bytes, what a prune could reclaim."""

    records: int
    bytes: int
    reclaimable: int
    in_use: int

    @classmethod
    def of(cls, df: dict[str, Any]) -> BuildCacheUsage:
        """From ``docker system df``'s answer (``client.df()``; ``BuildCache`` may be null)."""
        found = df.get("BuildCache") or []
        total = sum(int(b.get("Size") or 0) for b in found)
        # shared records are counted once by the engine's own df; InUse ones stay on prune
        free = sum(int(b.get("Size") or 0) for b in found
                   if not b.get("InUse") and not b.get("Shared"))
        return cls(records=len(found), bytes=total, reclaimable=free,
                   in_use=sum(1 for b in found if b.get("InUse")))


def usage(client: docker.DockerClient | None = None) -> BuildCacheUsage:
    """What the engine's build cache holds now (``docker system df``)."""
    return BuildCacheUsage.of(engine.df(client or engine.client()))


def other_learners(client: docker.DockerClient | None = None) -> list[str]:
    """Other learners whose images or containers are on this engine (by labkit's label, or
    a tag or image under their name), sorted."""
    cli = client or engine.client()
    found = {owned.foreign_owner(i) for i in engine.images(cli)}
    found |= {owned.foreign_owner(c) for c in cli.api.containers(all=True)}
    # a name no learner can have (e.g. a clean-up check's canaries) is no learner's
    return sorted(name for name in found if name and is_learner_name(name))


@dataclass
class BuildCacheDecision:
    """Whether clean-up prunes the build cache, and why (one sentence)."""

    prune: bool
    reason: str
    others: list[str] = field(default_factory=list)
    usage: BuildCacheUsage | None = None


def decide(asked: bool | None, client: docker.DockerClient | None = None,
           df: dict[str, Any] | None = None) -> BuildCacheDecision:
    """Prune only when ``asked`` is True (None and False keep it: a record names no owner,
    and nothing tells the course's builds from the learner's other ones). ``df``: the
    engine's ``docker system df`` answer, if at hand."""
    cli = client or engine.client()
    cache = BuildCacheUsage.of(df) if df is not None else usage(cli)
    others = other_learners(cli)
    if asked is False:
        return BuildCacheDecision(False, "Build cache kept: not asked to prune it.", others,
                                  cache)
    if asked:
        who = f" (other learners here: {', '.join(others)})" if others else ""
        return BuildCacheDecision(True, f"Build cache pruned, as asked{who}.", others, cache)
    if others:
        return BuildCacheDecision(False, f"Build cache kept: other learners use this engine "
                                  f"({', '.join(others)}). {SHARED_NOTE}", others, cache)
    if not cache.records:
        return BuildCacheDecision(False, CLASSIC_NOTE, others, cache)
    return BuildCacheDecision(False, f"Build cache kept. {SHARED_NOTE}", others, cache)


def prune(client: docker.DockerClient | None = None) -> tuple[int, int]:
    """``docker builder prune --all --force``: (records deleted, bytes reclaimed)."""
    cli = client or engine.client()
    answer = engine.one_at_a_time(lambda: cli.api.prune_builds(all=True),
                                  "docker builder prune")
    return len(answer.get("CachesDeleted") or []), int(answer.get("SpaceReclaimed") or 0)
