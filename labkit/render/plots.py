"""Charts with matplotlib. Importing this module changes no global matplotlib setting."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labkit.engine import human_size

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

_LABEL_WIDTH = 48


def _short(text: str, width: int = _LABEL_WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def layer_sizes_chart(history_df: pd.DataFrame, ax: Axes | None = None) -> Axes:
    """Horizontal bars of layer sizes from :func:`labkit.images.builder.history`, newest on top.

    The scale is logarithmic when the non-empty layers differ by more than 100 times (a
    base image next to a one-file COPY), linear otherwise; empty layers get a ``0B`` note.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(8, 0.45 * max(len(history_df), 2) + 1))
    sizes = [int(s) for s in history_df["size_bytes"]]
    labels = [_short(str(instr)) for instr in history_df["instruction"]]
    positions = list(range(len(sizes)))
    nonzero = [s for s in sizes if s > 0]
    log = bool(nonzero) and max(nonzero) / min(nonzero) > 100
    ax.barh(positions, sizes, color=["#4c72b0" if s else "#c0c0c0" for s in sizes])
    ax.set_yticks(positions, labels=labels)
    ax.invert_yaxis()  # newest first, as `docker image history` lists them
    if log:
        ax.set_xscale("log")
        ax.set_xlim(left=1, right=max(nonzero) * 20)
    elif nonzero:
        ax.set_xlim(left=0, right=max(nonzero) * 1.25)
    for y, size in zip(positions, sizes, strict=True):
        ax.text(size if size > 0 else (1 if log else 0), y, f" {human_size(size, docker=True)}",
                va="center", fontsize=8)
    ax.set_xlabel("layer size in bytes" + (" (log scale)" if log else ""))
    ax.set_title("Image layers (newest on top)")
    return ax
