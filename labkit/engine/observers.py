"""Progress observers: how a long operation (a build, a push) tells someone what it does.

Domain code (:mod:`labkit.images.build`, :mod:`labkit.registry.push`) returns data and
reports progress to an observer; it draws nothing. The rendering layer (:mod:`labkit.render.builds`,
:mod:`labkit.render.pushes`) registers the default renderers that ``show=True`` uses:
live widgets in a notebook, plain lines elsewhere. ``import labkit`` registers them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from labkit.engine.commands import DockerCommand
    from labkit.engine.errors import LabkitError
    from labkit.images.build import BuildResult
    from labkit.images.build_stream import BuildEvent
    from labkit.registry.push_stream import LayerProgress, PushStream


class BuildObserver(Protocol):
    """Told about a build as the engine streams it, then how it ended."""

    def update(self, events: Iterable[BuildEvent]) -> None:
        """What the stream just said (steps started, output lines, steps done)."""

    def done(self, result: BuildResult) -> None:
        """The build succeeded."""

    def fail(self, error: LabkitError) -> None:
        """The build failed (the error is raised after this call)."""


class PushObserver(Protocol):
    """Told about a push after every chunk of the engine's stream, then that it is over."""

    def update(self, stream: PushStream, layer: LayerProgress | None = None) -> None:
        """The parser state after a chunk (``layer``: the layer it was about, if any)."""

    def close(self) -> None:
        """The push is over (succeeded or failed)."""


T = TypeVar("T")
Obs = TypeVar("Obs")

BuildRenderer = Callable[["DockerCommand"], BuildObserver]
PushRenderer = Callable[[str], PushObserver]

_build_renderer: BuildRenderer | None = None
_push_renderer: PushRenderer | None = None


def register_build_renderer(factory: BuildRenderer) -> None:
    """Make ``factory(command)`` the observer that ``images.build(show=True)`` uses."""
    global _build_renderer
    _build_renderer = factory


def register_push_renderer(factory: PushRenderer) -> None:
    """Make ``factory(target)`` the observer that ``registry.push(show=True)`` uses."""
    global _push_renderer
    _push_renderer = factory


def _observers(renderer: Callable[[T], Obs] | None, about: T, show: bool,
               observer: Obs | None) -> list[Obs]:
    """The registered renderer of ``about`` if ``show``, then ``observer``."""
    found: list[Obs] = []
    if show and renderer is not None:
        found.append(renderer(about))
    if observer is not None:
        found.append(observer)
    return found


def build_observers(command: DockerCommand, show: bool,
                    observer: BuildObserver | None) -> list[BuildObserver]:
    """The observers of one build: the registered renderer if ``show``, then ``observer``."""
    return _observers(_build_renderer, command, show, observer)


def push_observers(target: str, show: bool,
                   observer: PushObserver | None) -> list[PushObserver]:
    """The observers of one push: the registered renderer if ``show``, then ``observer``."""
    return _observers(_push_renderer, target, show, observer)
