"""Rendering for registry results: live push progress and the per-layer push table.

Kept apart from ``registry.py`` (which returns data). In a Jupyter kernel progress is an
ipywidgets bar (nbval ignores widget views, so the saved output stays stable); elsewhere
nothing is drawn while pushing.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .display import command_html, in_notebook
from .display import readable_size as _human

if TYPE_CHECKING:
    from .push_stream import LayerProgress, PushResult, PushStream


def progress_text(stream: PushStream) -> str:
    """One line: layers done, bytes sent so far."""
    sent = sum(x.current or 0 for x in stream.layers.values() if x.phase in ("pushing", "pushed"))
    total = sum(x.total or 0 for x in stream.layers.values() if x.total)
    bytes_part = f", {_human(sent)} of {_human(total)}" if total else ""
    return f"{stream.done}/{len(stream.layers)} layers done{bytes_part}"


class PushProgress:
    """A live progress bar for one push (a no-op outside a Jupyter kernel)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        if in_notebook():
            import ipywidgets as widgets
            from IPython.display import display

            self._bar = widgets.IntProgress(value=0, min=0, max=1, description="push")
            self._label = widgets.Label(value=f"{target}: preparing")
            self._box = widgets.HBox([self._bar, self._label])
            display(self._box)

    def update(self, stream: PushStream, layer: LayerProgress | None = None) -> None:
        """Redraw from the parser state."""
        if self._bar is None:
            return
        self._bar.max = max(1, len(stream.layers))
        self._bar.value = stream.done
        self._label.value = f"{self.target}: {progress_text(stream)}"

    def close(self) -> None:
        """Remove the bar once the push is over (the table replaces it)."""
        if self._box is not None:
            self._box.close()


def push_summary(result: PushResult) -> str:
    """``pushed 1, exists 4, mounted 0`` plus the digest."""
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    return f"{result.repository}:{result.tag}: {counts}; digest {result.digest}"


def push_html(result: PushResult) -> str:
    """HTML: the summary, the layer table, and the equivalent command."""
    frame = result.layers.copy()
    frame["size"] = [_human(x) for x in frame["bytes_total"]]
    table = frame[["layer", "status", "size"]].to_html(index=False, escape=True)
    return f"<p><b>{html.escape(push_summary(result))}</b></p>{command_html(result.command)}{table}"


def render_push(result: PushResult) -> None:
    """Show the pushed layers (HTML in a notebook, text elsewhere is left to the caller)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(push_html(result)))


def cleanup_summary(report: Any) -> str:
    """``removed 2 containers, 3 images, ...; reclaimed 190.3 MB``."""
    counts = ", ".join(f"{v} {k}s" for k, v in report.counts.items())
    return f"removed {counts}; reclaimed {_human(report.reclaimed_bytes)}"


def cleanup_html(report: Any) -> str:
    """HTML: the summary, what was removed or kept, and the equivalent commands."""
    frame = report.items.copy()
    frame["size"] = [_human(x) for x in frame["bytes"]]
    table = frame[["kind", "name", "size", "outcome"]].to_html(index=False, escape=True)
    summary = html.escape(cleanup_summary(report))
    return f"<p><b>{summary}</b></p>{command_html(report.commands)}{table}"


def render_cleanup(report: Any) -> None:
    """Show a clean-up report in a notebook (nothing outside a kernel)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(cleanup_html(report)))
