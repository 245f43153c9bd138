"""Rendering for clean-up: what :func:`labkit.cleanup.labelled.clean` removed or kept, and why.

Kept apart from ``cleanup.py`` (which returns a :class:`~labkit.cleanup.labelled.CleanupReport`).
"""

from __future__ import annotations

from labkit.cleanup import CleanupReport
from labkit.engine import human_size, register_display, register_html
from labkit.render.builds import in_notebook, result_html


def cleanup_summary(report: CleanupReport) -> str:
    """``removed 2 containers, 3 images, ...; reclaimed 190.3 MB``."""
    counts = ", ".join(f"{v} {k}s" for k, v in report.counts.items())
    return f"removed {counts}; reclaimed {human_size(report.reclaimed_bytes)}"


def cleanup_html(report: CleanupReport) -> str:
    """HTML: the summary, what was removed or kept, and the equivalent commands."""
    return result_html(cleanup_summary(report), report.commands, report.items, "bytes",
                       ["kind", "name", "size", "outcome"])


def render_cleanup(report: CleanupReport) -> None:
    """Show a clean-up report in a notebook (nothing outside a kernel)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(cleanup_html(report)))


register_html(CleanupReport, cleanup_html)
register_display(CleanupReport, render_cleanup)
