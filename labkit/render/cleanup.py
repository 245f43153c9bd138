"""Rendering for clean-up: what :func:`labkit.cleanup.clean` removed or kept, and why.

The clean-up itself (:mod:`labkit.cleanup`) returns a :class:`~labkit.cleanup.CleanupReport`; it
is shown through :mod:`labkit.engine.presentation`, where this module registers.
"""

from __future__ import annotations

import html

from labkit.cleanup import CleanupReport
from labkit.engine import human_size, register_display, register_html
from labkit.render.builds import in_notebook, result_html


def cleanup_summary(report: CleanupReport) -> str:
    """``removed 2 containers, 3 images, ...[; build cache pruned]; reclaimed 190.3 MB``,
    and, when images went, what adding up their sizes would have said instead."""
    counts = ", ".join(f"{v} {k}s" for k, v in report.counts.items() if k != "build cache")
    cache = "; build cache pruned" if report.counts.get("build cache") else ""
    added = ""
    if report.counts.get("image"):
        added = (f" (image layers counted once each, none the remaining images use; "
                 f"the removed images' sizes added up would say "
                 f"{human_size(report.image_sizes_added)})")
    return f"removed {counts}{cache}; reclaimed {human_size(report.reclaimed_bytes)}{added}"


def cleanup_html(report: CleanupReport) -> str:
    """HTML: the summary, what was removed or kept, the equivalent commands, and what
    became of the build cache (one sentence)."""
    note = f"<p>{html.escape(report.build_cache)}</p>" if report.build_cache else ""
    return result_html(cleanup_summary(report), report.commands, report.items, "bytes",
                       ["kind", "name", "size", "outcome"]) + note


def render_cleanup(report: CleanupReport) -> None:
    """Show a clean-up report in a notebook (nothing outside a kernel)."""
    if not in_notebook():
        return
    from IPython.display import HTML, display

    display(HTML(cleanup_html(report)))


register_html(CleanupReport, cleanup_html)
register_display(CleanupReport, render_cleanup)
