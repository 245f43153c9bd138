"""Rendering for clean-up: what :func:`labkit.cleanup.clean` removed or kept, and why.

Kept apart from ``cleanup.py`` (which returns a :class:`~labkit.cleanup.CleanupReport`).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from .display import command_html, in_notebook
from .sizes import human_size

if TYPE_CHECKING:
    from .cleanup import CleanupReport


def cleanup_summary(report: CleanupReport) -> str:
    """``removed 2 containers, 3 images, ...; reclaimed 190.3 MB``."""
    counts = ", ".join(f"{v} {k}s" for k, v in report.counts.items())
    return f"removed {counts}; reclaimed {human_size(report.reclaimed_bytes)}"


def cleanup_html(report: CleanupReport) -> str:
    """HTML: the summary, what was removed or kept, and the equivalent commands."""
    frame = report.items.copy()
    frame["size"] = [human_size(x) for x in frame["bytes"]]
    table = frame[["kind", "name", "size", "outcome"]].to_html(index=False, escape=True)
    summary = html.escape(cleanup_summary(report))
    return f"<p><b>{summary}</b></p>{command_html(report.commands)}{table}"


def render_cleanup(report: CleanupReport) -> None:
    """Show a clean-up report in a notebook (nothing outside a kernel)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(cleanup_html(report)))
