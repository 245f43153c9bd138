"""Charts of layers: sizes per layer, two images' stacks with shared layers, the CoW demo.

Each function draws on the ``ax`` it is given (or a new figure) and returns the Axes.
Nothing here changes matplotlib's global settings.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

MB = 1_000_000


def _label(instruction: str, width: int = 48) -> str:
    text = " ".join(str(instruction).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _axes(ax: Axes | None, size: tuple[float, float]) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=size)
    return new


def plot_layer_sizes(layers_table: pd.DataFrame, ax: Axes | None = None,
                     title: str | None = None) -> Axes:
    """Horizontal bars of each layer's size (MB), bottom layer at the bottom.

    Wasted bytes (``wasted_bytes``, if present) are drawn hatched inside each bar.
    """
    ax = _axes(ax, (8, 0.45 * max(len(layers_table), 2) + 1.2))
    y = list(range(len(layers_table)))
    sizes = layers_table["size_bytes"].astype(float) / MB
    ax.barh(y, sizes, color="tab:blue", label="size")
    if "wasted_bytes" in layers_table:
        wasted = layers_table["wasted_bytes"].astype(float) / MB
        if wasted.sum() > 0:
            ax.barh(y, wasted, color="none", edgecolor="tab:red", hatch="//",
                    label="not visible in the image (wasted)")
            # below the axes, under the x label: inside them it would hide a bar's label
            # (borderaxespad is in font sizes: 4.5 × 8 pt clears the ticks and the x label)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, 0.0), borderaxespad=4.5,
                      ncols=2, frameon=False, fontsize=8)
    ax.set_yticks(y, [_label(s) for s in layers_table["instruction"]])
    for yi, mb in zip(y, sizes, strict=True):
        ax.annotate(f"{mb:,.1f} MB", (mb, yi), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_xlabel("uncompressed size (MB)")
    ax.set_title(title or "Layer sizes (bottom layer at the bottom)")
    ax.margins(x=0.15)
    return ax


def plot_sharing(table: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Each image's stack side by side; a shared layer has the same colour in both stacks.

    ``table`` is :attr:`labkit.layers.sharing.Sharing.table`.
    """
    ax = _axes(ax, (7, 5))
    images = list(dict.fromkeys(table["image"]))
    shared_chains = list(dict.fromkeys(table.loc[table["shared"], "chain_id"]))
    palette = plt.get_cmap("tab10")
    colour = {c: palette(i % 10) for i, c in enumerate(shared_chains)}
    for x, image in enumerate(images):
        bottom = 0.0
        rows = table[table["image"] == image].sort_values("position")
        for row in rows.itertuples():
            height = float(row.size_bytes) / MB
            shared = bool(row.shared)
            ax.bar(x, height, bottom=bottom, width=0.6,
                   color=colour[row.chain_id] if shared else "lightgrey",
                   edgecolor="black", hatch=None if shared else "..")
            if height > 0:
                ax.text(x, bottom + height / 2, _label(row.instruction, 28), ha="center",
                        va="center", fontsize=7)
            bottom += height
    ax.set_xticks(range(len(images)), images)
    ax.set_ylabel("uncompressed size (MB)")
    ax.set_title("Layer stacks: shared layers are stored once")
    ax.legend(handles=[Patch(facecolor=palette(0), edgecolor="black", label="shared layer"),
                       Patch(facecolor="lightgrey", edgecolor="black", hatch="..",
                             label="own layer")], loc="upper left", fontsize=8)
    return ax


def plot_cow_demo(demo: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Disk added by N containers (their writable layers) against N full copies of the image.

    ``demo`` is :func:`labkit.layers.cow.demo`'s table. Start time per N is printed on the bars.
    """
    ax = _axes(ax, (7, 4))
    x = list(range(len(demo)))
    ax.bar([i - 0.2 for i in x], demo["full_copies_bytes"] / MB, width=0.4,
           color="lightgrey", edgecolor="black", label="N full copies of the image")
    ax.bar([i + 0.2 for i in x], demo["size_rw_bytes"] / MB, width=0.4, color="tab:green",
           label="what N containers really add (writable layers)")
    for i, row in zip(x, demo.itertuples(), strict=True):
        ax.annotate(f"{row.size_rw_bytes / 1000:,.1f} kB\nstart {row.start_seconds:.2f} s",
                    (i + 0.2, row.size_rw_bytes / MB), xytext=(0, 3),
                    textcoords="offset points", ha="center", fontsize=8)
    ax.set_xticks(x, [f"N = {n}" for n in demo["containers"]])
    ax.set_ylabel("MB")
    ax.set_title("Copy-on-write: containers share the image's layers")
    ax.legend(fontsize=8)
    return ax
