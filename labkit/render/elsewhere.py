"""Rendering of a pull into a second engine: each step live while it runs, then one card
with the facts, the per-layer table and the plain docker commands.
"""

from __future__ import annotations

import html
import time
from typing import Any

from labkit.engine import human_size, register_html, register_step_renderer
from labkit.registry import elsewhere
from labkit.render.builds import StaticOutput, card_html, in_notebook


class StepProgress:
    """One line that names the running step and the time so far (a notebook display updated
    in place; plain lines elsewhere), and the total time at the end."""

    def __init__(self, title: str, *, notebook: bool | None = None) -> None:
        self.title = title
        self.started = time.perf_counter()
        self.lines: list[str] = []
        self._notebook = in_notebook() if notebook is None else notebook
        self._handle: Any = None
        if self._notebook:
            from IPython.display import display

            self._handle = display(self._html("starting"), display_id=True)

    def _html(self, text: str) -> StaticOutput:
        return StaticOutput(f"<p class='labkit-steps'><b>{html.escape(self.title)}</b>: "
                            f"{html.escape(text)}</p>", f"{self.title}: {text}")

    def step(self, text: str) -> None:
        """Show the step that starts now."""
        line = f"{time.perf_counter() - self.started:5.1f} s  {text}"
        self.lines.append(line)
        if self._handle is not None:
            self._handle.update(self._html(line.strip()))
        elif not self._notebook:
            print(line, flush=True)

    def close(self) -> None:
        """The operation is over: one line with its total time."""
        if self._handle is not None:
            self._handle.update(self._html(
                f"{len(self.lines)} steps in {time.perf_counter() - self.started:.1f} s"))


def elsewhere_html(result: elsewhere.ElsewhereResult) -> str:
    """The pull into a second engine: the commands, the facts, then one row per layer."""
    sent = int(result.layers["sent_by_registry"].sum()) if len(result.layers) else 0
    facts = {
        "second engine": f"Docker {result.engine_version}, {result.image_store}",
        "started with": result.flags,
        "images there before the pull": result.images_before,
        "layers downloaded": f"{result.downloaded} of {len(result.layers)}",
        "sent by the registry": human_size(sent),
        "image platform": result.platform,
        "digest there": result.repo_digest,
        "digest of the registry's tag": result.registry_digest,
        "the app answered": result.answer if not result.not_run else result.not_run,
        "seconds": ", ".join(f"{k} {v:.1f}" for k, v in result.seconds.items()),
        "second engine removed": "yes" if result.removed else "NO",
    }
    shown = result.layers.copy()
    for column in ("size", "sent_by_registry"):
        shown[column] = [human_size(int(x)) for x in shown[column]]
    table = str(shown.to_html(index=False, escape=True))
    return card_html(f"{result.reference} pulled into a second engine", facts,
                     result.commands) + table


register_step_renderer(StepProgress)  # what show=True draws for an operation's steps
register_html(elsewhere.ElsewhereResult, elsewhere_html)
