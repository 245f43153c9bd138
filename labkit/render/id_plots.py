"""A diagram of one image's names: image ID, index, manifest, config, and per layer its
blob digest, diff ID and chain ID (:class:`labkit.layers.ImageIds`).

It draws on the ``ax`` it is given (or a new figure) and returns the Axes; nothing here
changes matplotlib's global settings.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from labkit.layers import ImageIds

_BOX = {"boxstyle": "round,pad=0.4", "linewidth": 1}
_ARROW = {"arrowstyle": "->", "color": "dimgrey", "linewidth": 1}


def _short(digest: str | None) -> str:
    return (digest or "").split(":")[-1][:12]


def _label(text: str, width: int = 34) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB" if size >= 100_000 else f"{size:,} B"


def plot_image_ids(ids: ImageIds, ax: Axes | None = None) -> Axes:
    """Boxes and arrows: what each ID of the image is the sha256 of, and what names what.

    The top row shows the documents (the image ID's own document first); below, one row per
    layer, top layer first as ``docker history`` lists them: its blob (as the manifest
    lists it), its diff ID and its chain ID.
    """
    n = len(ids.diff_ids)
    height = 3.6 + 0.45 * n
    if ax is None:
        _, ax = plt.subplots(figsize=(12, height))
    ax.set_xlim(0, 12)
    ax.set_ylim(0, height)
    ax.axis("off")
    top_y = height - 1.1

    def box(x: float, y: float, text: str, colour: str, dashed: bool = False) -> None:
        ax.text(x, y, text, ha="center", va="center", fontsize=8, family="monospace",
                bbox={**_BOX, "facecolor": colour,
                      "edgecolor": "grey" if dashed else "black",
                      "linestyle": "--" if dashed else "-"})

    def arrow(x0: float, y0: float, x1: float, y1: float, note: str = "") -> None:
        ax.annotate("", xy=(x1, y1), xytext=(x0, y0), arrowprops=_ARROW)
        if note:
            ax.text((x0 + x1) / 2, (y0 + y1) / 2 + 0.05, note, ha="center", va="bottom",
                    fontsize=6.5, color="dimgrey")

    containerd = ids.top_kind != "config"
    box(1.3, top_y, f"image ID\n{_short(ids.image_id)}\n= sha256 of the {ids.top_kind}",
        "gold")
    manifest_x, config_x = 6.2, 10.2
    if containerd and ids.top_kind == "index":
        box(3.7, top_y, f"index\n{_short(ids.top_sha256)}\none manifest per platform",
            "lightyellow")
        arrow(2.45, top_y, 2.6, top_y)
        arrow(4.85, top_y, 5.0, top_y, "")
    elif containerd:
        arrow(2.45, top_y, 5.0, top_y)
    if ids.manifest_digest:
        box(manifest_x, top_y, f"manifest\n{_short(ids.manifest_digest)}\nconfig + layer blobs",
            "lightyellow")
        arrow(7.4, top_y, 8.9, top_y, "names")
    else:
        box(manifest_x, top_y, "manifest\n(none yet: made\nby docker push)", "white",
            dashed=True)
    box(config_x, top_y, f"config\n{_short(ids.config_sha256)}\nsettings, history, diff IDs",
        "lightyellow")
    if not containerd:  # over the manifest's box: the image ID is the config's digest
        ax.annotate("", xy=(config_x, top_y + 0.45), xytext=(1.3, top_y + 0.45),
                    arrowprops={**_ARROW, "connectionstyle": "arc3,rad=-0.08"})
        ax.text(manifest_x, top_y + 0.85, "the same digest", ha="center", va="bottom",
                fontsize=7, color="dimgrey")

    # one row per layer, top layer first
    cols = {"blob": 2.2, "diff": 5.6, "chain": 8.3, "step": 10.6}
    head_y = top_y - 1.35
    heads = {"blob": "layer blob (as stored/sent)", "diff": "diff ID (uncompressed tar)",
             "chain": "chain ID (with all below)", "step": "made by"}
    for key, text in heads.items():
        ax.text(cols[key], head_y, text, ha="center", va="center", fontsize=8,
                fontweight="bold")
    if ids.manifest_digest:
        arrow(manifest_x - 0.4, top_y - 0.5, cols["blob"] + 0.6, head_y + 0.2)
    arrow(config_x - 0.3, top_y - 0.5, cols["diff"] + 0.6, head_y + 0.2)
    for row, i in enumerate(reversed(range(n))):
        y = head_y - 0.45 * (row + 1)
        blob = ids.blobs[i] if i < len(ids.blobs) else None
        if blob is not None:
            kind = blob.media_type.rsplit("+", 1)[-1] if blob.compressed else "tar"
            box(cols["blob"], y, f"{_short(blob.digest)} {kind:>4} {_mb(blob.size):>9}",
                "lightblue" if blob.compressed else "white")
            same = blob.digest == ids.diff_ids[i]
            arrow(cols["blob"] + 1.55, y, cols["diff"] - 0.9, y,
                  "same bytes" if same else "unzipped, sha256")
        else:
            box(cols["blob"], y, "(made at push)", "white", dashed=True)
        box(cols["diff"], y, _short(ids.diff_ids[i]), "white")
        arrow(cols["diff"] + 0.75, y, cols["chain"] - 0.75, y,
              "" if row else "with the parent's")
        box(cols["chain"], y, _short(ids.chain_ids[i]), "white")
        step = ids.instructions[i] if i < len(ids.instructions) else ""
        ax.text(cols["step"] - 0.8, y, _label(step, 30), ha="left", va="center", fontsize=7)
    ax.set_title(f"The names of {ids.image} and of its parts (first 12 hex digits)",
                 fontsize=10)
    return ax
