"""Engine-wide operations: ``docker system df`` and the prunes, one of each at a time.

The engine computes disk usage for one caller at a time and refuses a second one ("a disk
usage operation is already running"); each kind of prune likewise ("a prune operation is
already running"). Many learners share one engine, so every such call goes through
:func:`one_at_a_time`: it waits for the other caller to finish and asks again.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import docker
from docker.errors import APIError, NotFound

from labkit.engine.errors import LabkitError

T = TypeVar("T")

#: How long to wait for another caller's engine-wide operation (seconds).
BUSY_TIMEOUT = 300.0
BUSY_MARK = "already running"


class EngineBusy(LabkitError):
    """An engine-wide operation stayed refused because others kept running theirs."""


def is_busy(exc: BaseException) -> bool:
    """True for the engine's "another operation of this kind is already running" refusal."""
    return isinstance(exc, APIError) and BUSY_MARK in str(exc)


def is_busy_or_vanished(exc: BaseException) -> bool:
    """Busy, or something removed while the engine went over it: on the containerd image
    store, disk usage fails with "snapshot ... does not exist" and a prune with "lease ...:
    not found" when another learner's removal lands meanwhile (seen on 28.5 with eight
    learners). Both calls are safe to repeat, and the endpoints always exist."""
    text = str(exc).lower()
    return is_busy(exc) or isinstance(exc, NotFound) or (
        isinstance(exc, APIError) and ("does not exist" in text or "not found" in text))


#: What a build says when another learner's build or clean-up crossed it: the cached step
#: it took was removed before use (the classic builder shares its cache between learners),
#: or the containerd store committed the same layer for two builds at once.
CROSSED_BUILD = ('unable to find image "sha256:', "No such image: sha256:",
                 "failed to export layer", 'lease "', "lease does not exist")


def is_vanished_image(text: str) -> bool:
    """True when a build failed because another learner's build or clean-up crossed it."""
    return any(mark in text for mark in CROSSED_BUILD)


def one_at_a_time(call: Callable[[], T], what: str, timeout: float = BUSY_TIMEOUT,
                  sleep: Callable[[float], None] = time.sleep,
                  again: Callable[[BaseException], bool] = is_busy) -> T:
    """Run ``call``; while the engine answers "already running", wait and run it again.

    Waits grow from 0.1 s to 2 s with jitter, so that learners asking together spread out.
    ``again`` says which errors are worth asking again for (default: :func:`is_busy`).
    Raises :class:`EngineBusy` after ``timeout`` seconds of refusals; any other error at once.
    """
    end = time.monotonic() + timeout
    pause = 0.1
    while True:
        try:
            return call()
        except APIError as exc:
            if not again(exc):
                raise
            if time.monotonic() + pause > end:
                raise EngineBusy(
                    f"The engine kept refusing `{what}` for {timeout:.0f} s: another one "
                    "was always running (other learners on this engine).",
                    f"Run the cell again in a minute; `{what}` in a terminal shows the same."
                ) from exc
        sleep(pause * random.uniform(0.5, 1.5))
        pause = min(pause * 2, 2.0)


def df(cli: docker.DockerClient, timeout: float = BUSY_TIMEOUT) -> dict[str, Any]:
    """``docker system df -v``: containers, images, volumes and build cache with sizes."""
    return one_at_a_time(cli.df, "docker system df", timeout, again=is_busy_or_vanished)


def images(cli: docker.DockerClient, **kwargs: Any) -> list[dict[str, Any]]:
    """``docker image ls``: on the containerd store it fails ("content digest ...: not found")
    when another learner removes an image while the engine lists them; asked again."""
    return one_at_a_time(lambda: cli.api.images(**kwargs), "docker image ls",
                         again=is_busy_or_vanished)


def containers_with_size(cli: docker.DockerClient, **kwargs: Any) -> list[dict[str, Any]]:
    """``docker container ls --size``: sizes are computed per container, and a container
    another learner removes meanwhile fails the whole listing; asked again."""
    return one_at_a_time(lambda: cli.api.containers(size=True, **kwargs),
                         "docker container ls --size", again=is_busy_or_vanished)


def prune_images(cli: docker.DockerClient, filters: dict[str, Any],
                 timeout: float = BUSY_TIMEOUT) -> dict[str, Any]:
    """``docker image prune`` with ``filters``; the engine's answer (ImagesDeleted, ...)."""
    return one_at_a_time(lambda: cli.api.prune_images(filters=filters), "docker image prune",
                         timeout, again=is_busy_or_vanished)
