"""Rendering for registry results: live push progress and the per-layer push table.

Kept apart from ``registry.py`` (which returns data). In a Jupyter kernel progress is an
ipywidgets bar while pushing, replaced by a static table of the layers once the push is
over (so a saved notebook reads without widgets); elsewhere nothing is drawn.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from labkit.engine import human_size, register_display, register_html, register_push_renderer
from labkit.registry import PushResult
from labkit.render.builds import StaticOutput, in_notebook, result_html

if TYPE_CHECKING:
    from labkit.registry import LayerProgress, PushStream


def progress_text(stream: PushStream) -> str:
    """One line: layers done, bytes sent so far."""
    sent = sum(x.current or 0 for x in stream.layers.values() if x.phase in ("pushing", "pushed"))
    total = sum(x.total or 0 for x in stream.layers.values() if x.total)
    bytes_part = f", {human_size(sent)} of {human_size(total)}" if total else ""
    return f"{stream.done}/{len(stream.layers)} layers done{bytes_part}"


def push_progress_output(target: str, stream: PushStream | None) -> StaticOutput:
    """A push's final state as the progress saw it: one line, then one row per layer
    (status, bytes sent, size); the engine's error when the push failed."""
    if stream is None:
        return StaticOutput(f"<p><b>{html.escape(target)}</b>: the engine reported no layer.</p>",
                            f"{target}: the engine reported no layer.")
    head = (f"{target}: push failed: {stream.error}" if stream.error
            else f"{target}: {progress_text(stream)}")
    rows = [(x.layer, x.phase + (f" from {x.mounted_from}" if x.mounted_from else ""),
             human_size(x.current) if x.phase in ("pushing", "pushed") else "",
             human_size(x.total)) for x in stream.layers.values()]
    cells = "".join("<tr>" + "".join(f"<td style='text-align:left'>{html.escape(str(v))}</td>"
                                     for v in row) + "</tr>" for row in rows)
    table = ("<table><thead><tr><th>layer</th><th>status</th><th>sent</th><th>size</th>"
             f"</tr></thead><tbody>{cells}</tbody></table>") if rows else ""
    text = [head] + [f"  {r[0]}  {r[1]:<8} {r[2]:>10} {r[3]:>10}".rstrip() for r in rows]
    state = "failed" if stream.error else "done"
    page = (f"<div class='labkit-push labkit-push-{state}'><p><b>{html.escape(head)}</b></p>"
            f"{table}</div>")
    return StaticOutput(page, "\n".join(text))


class PushProgress:
    """A live progress bar for one push (a no-op outside a Jupyter kernel).

    Displayed with a display id; :meth:`close` replaces it with
    :func:`push_progress_output`, so the saved notebook shows the layers, not a widget.
    """

    def __init__(self, target: str, *, widgets: bool | None = None) -> None:
        self.target = target
        self.stream: PushStream | None = None  # the parser state last shown
        self.final: StaticOutput | None = None  # what replaced the bar at the end
        self._bar: Any = None
        self._label: Any = None
        self._box: Any = None
        self._handle: Any = None
        if in_notebook() if widgets is None else widgets:
            import ipywidgets as widgets_module
            from IPython.display import display

            self._bar = widgets_module.IntProgress(value=0, min=0, max=1, description="push")
            self._label = widgets_module.Label(value=f"{target}: preparing")
            self._box = widgets_module.HBox([self._bar, self._label])
            self._handle = display(self._box, display_id=True)

    def update(self, stream: PushStream, layer: LayerProgress | None = None) -> None:
        """Redraw from the parser state."""
        self.stream = stream
        if self._bar is None:
            return
        self._bar.max = max(1, len(stream.layers))
        self._bar.value = stream.done
        self._label.value = f"{self.target}: {progress_text(stream)}"

    def close(self) -> None:
        """The push is over: replace the bar by the final state of every layer."""
        if self._box is None:
            return
        self.final = push_progress_output(self.target, self.stream)
        if self._handle is not None:
            self._handle.update(self.final)
        for widget in (self._box, self._bar, self._label):
            widget.close()


def push_summary(result: PushResult) -> str:
    """``pushed 1, exists 4, mounted 0`` plus the digest."""
    counts = ", ".join(f"{k} {v}" for k, v in result.counts.items())
    return f"{result.repository}:{result.tag}: {counts}; digest {result.digest}"


def push_html(result: PushResult) -> str:
    """HTML: the summary, the layer table, and the equivalent command."""
    return result_html(push_summary(result), result.command, result.layers, "bytes_total",
                       ["layer", "status", "size"])


def render_push(result: PushResult) -> None:
    """Show the pushed layers (HTML in a notebook, text elsewhere is left to the caller)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(push_html(result)))


register_push_renderer(PushProgress)  # what registry.push(show=True) draws
register_html(PushResult, push_html)
register_display(PushResult, render_push)
