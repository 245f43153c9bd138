"""The chart of a cache experiment. Importing this module changes no matplotlib setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

COLOURS = ("tab:green", "tab:red", "tab:blue", "tab:orange")


def plot_rebuild_times(summary: pd.DataFrame, rounds: pd.DataFrame | None = None,
                       ax: Axes | None = None) -> Axes:
    """Bars of the median rebuild time per Dockerfile, each annotated with the steps it
    rebuilt; each round's own time is a dot on its bar when ``rounds`` is given.

    ``summary`` is :meth:`labkit.experiments.cache_order.CacheExperiment.summary`, ``rounds`` its
    :meth:`~labkit.experiments.cache_order.CacheExperiment.table`.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 4))
    names = [str(n) for n in summary["dockerfile"]]
    medians = [float(m) for m in summary["median_seconds"]]
    x = list(range(len(names)))
    ax.bar(x, medians, color=[COLOURS[i % len(COLOURS)] for i in x], alpha=0.8,
           label="median of the rounds")
    heights = list(medians)
    if rounds is not None and len(rounds):
        for xi, name in zip(x, names, strict=True):
            times = [float(t) for t in rounds.loc[rounds["dockerfile"] == name, "seconds"]]
            ax.plot([xi] * len(times), times, "o", color="black", markersize=4,
                    label="one round" if xi == 0 else None)
            heights[xi] = max([heights[xi], *times])
    for xi, median, steps, rebuilt in zip(x, medians, summary["rebuilt_steps"],
                                          summary["rebuilt"], strict=True):
        noun = "step" if int(steps) == 1 else "steps"
        ax.annotate(f"{median:.2f} s\n{int(steps)} {noun} rebuilt: {rebuilt or 'none'}",
                    (xi, heights[xi]), xytext=(0, 5), textcoords="offset points",
                    ha="center", va="bottom", fontsize=8)
    top = max(heights, default=0.0)
    ax.set_xticks(x, names)
    ax.set_ylim(0, top * 1.35 if top > 0 else 1)
    ax.set_ylabel("rebuild time after changing app.py (s)")
    ax.set_title("Rebuild after a change of app.py")
    ax.legend(loc="upper left", fontsize=8)
    return ax
