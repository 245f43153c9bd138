"""The one way from domain results to the rendering layer: observers and renderers by type.

Domain code returns data, reports long operations (a build, a push) to observers, and never
imports :mod:`labkit.render`. The rendering layer registers here, when it is imported:

- per result type, its HTML (what a notebook's ``_repr_html_`` shows) and how to show it
  after the fact (``show=True`` on a clean-up, the end of a push);
- per long operation (``"build"``, ``"push"``), the live observer that ``show=True`` uses.

A lookup imports the rendering layer the first time something is shown, by its name, so that
importing labkit or any of its domain packages loads none of IPython, pandas' HTML,
ipywidgets or matplotlib.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from labkit.engine.commands import DockerCommand
    from labkit.engine.errors import LabkitError
    from labkit.images.build_stream import BuildEvent
    from labkit.images.builder import BuildResult
    from labkit.registry.push_stream import LayerProgress, PushStream

#: The package that registers the renderers when it is imported.
RENDER_PACKAGE = "labkit.render"


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


class StepObserver(Protocol):
    """Told each step of a longer operation as it starts (a second engine started, waited
    for, pulled into), then that it is over."""

    def step(self, text: str) -> None:
        """A step starts; ``text`` says what it does."""

    def close(self) -> None:
        """The operation is over (succeeded or failed)."""


T = TypeVar("T")
Obs = TypeVar("Obs")

BuildRenderer = Callable[["DockerCommand"], BuildObserver]
PushRenderer = Callable[[str], PushObserver]
StepRenderer = Callable[[str], StepObserver]

_html: dict[type[Any], Callable[[Any], str]] = {}
_shown: dict[type[Any], Callable[[Any], None]] = {}
_live: dict[str, Callable[[Any], Any]] = {}


def register_html(kind: type[T], renderer: Callable[[T], str]) -> None:
    """Make ``renderer(result)`` the HTML of every ``kind`` result (and its subclasses)."""
    _html[kind] = renderer


def register_display(kind: type[T], renderer: Callable[[T], None]) -> None:
    """Make ``renderer(result)`` what showing a ``kind`` result after the fact does."""
    _shown[kind] = renderer


def register_build_renderer(factory: BuildRenderer) -> None:
    """Make ``factory(command)`` the observer that ``images.build(show=True)`` uses."""
    _live["build"] = factory


def register_push_renderer(factory: PushRenderer) -> None:
    """Make ``factory(target)`` the observer that ``registry.push(show=True)`` uses."""
    _live["push"] = factory


def register_step_renderer(factory: StepRenderer) -> None:
    """Make ``factory(title)`` the observer of the steps of an operation shown with ``show``."""
    _live["steps"] = factory


def load_renderers() -> None:
    """Import the rendering layer (once: importing it registers every renderer)."""
    importlib.import_module(RENDER_PACKAGE)


def _by_type(table: dict[type[Any], Callable[[Any], T]], result: object
             ) -> Callable[[Any], T] | None:
    for kind in type(result).__mro__:
        if kind in table:
            return table[kind]
    return None


def _find(table: dict[type[Any], Callable[[Any], T]], result: object) -> Callable[[Any], T]:
    found = _by_type(table, result)
    if found is None:
        load_renderers()
        found = _by_type(table, result)
    if found is None:
        raise LookupError(f"no renderer for {type(result).__name__}")
    return found


def html_of(result: object) -> str:
    """The HTML the rendering layer makes of ``result`` (for its ``_repr_html_``)."""
    return _find(_html, result)(result)


def show_result(result: object) -> None:
    """Show ``result`` as the rendering layer does after the fact (in a notebook)."""
    _find(_shown, result)(result)


def _live_renderer(operation: str) -> Callable[[Any], Any]:
    if operation not in _live:
        load_renderers()
    return _live[operation]


def _observers(operation: str, about: object, show: bool, observer: Obs | None) -> list[Obs]:
    """The registered live renderer of ``about`` if ``show``, then ``observer``."""
    found: list[Obs] = []
    if show:
        found.append(_live_renderer(operation)(about))
    if observer is not None:
        found.append(observer)
    return found


def build_observers(command: DockerCommand, show: bool,
                    observer: BuildObserver | None) -> list[BuildObserver]:
    """The observers of one build: the registered renderer if ``show``, then ``observer``."""
    return _observers("build", command, show, observer)


def push_observers(target: str, show: bool,
                   observer: PushObserver | None) -> list[PushObserver]:
    """The observers of one push: the registered renderer if ``show``, then ``observer``."""
    return _observers("push", target, show, observer)


def step_observers(title: str, show: bool,
                   observer: StepObserver | None) -> list[StepObserver]:
    """The observers of one operation's steps: the registered renderer if ``show``, then
    ``observer``."""
    return _observers("steps", title, show, observer)
