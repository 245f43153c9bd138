"""Diagrams of layers drawn from the facts of the learner's own image: the stack an image's
containers share, what two images store once, and copy-on-write.

Every layer is a box of the same height (a one-file layer next to a 100 MB one would be
invisible on a scale); its size is written in it. Shared layers are drawn once, and what
sits on them (an image's own layers, a container's writable layer) side by side on top.
Each function draws on the ``ax`` (or ``axes``) it is given, or on a new figure, and
changes no global matplotlib setting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, Rectangle

from labkit.engine import human_size

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from labkit.layers.sharing import ImageStack, Sharing

Kind = Literal["base", "own", "writable"]

COLOURS: dict[str, str] = {"base": "#c6d5e8", "own": "#f6c28b", "writable": "#b9e3b0"}
_WIDTH = 10.0  # the trunk's width, in data units
_GAP = 0.3  # between side-by-side columns
_CHAR_POINTS = 4.6  # the width of one label character at font size 8, about (DejaVu Sans)


@dataclass(frozen=True)
class Box:
    """One layer as drawn: its label (the instruction), its size, and what kind it is."""

    label: str
    size_bytes: int | None
    kind: Kind


def boxes(stack: ImageStack, base_layers: int) -> list[Box]:
    """An image's layers, bottom first: its base image's ``base_layers`` first."""
    return [Box(instruction, size, "base" if i < base_layers else "own")
            for i, (instruction, size) in enumerate(zip(stack.instructions, stack.sizes,
                                                        strict=True))]


def _room(ax: Axes, width: float) -> int:
    """How many label characters fit across ``width`` data units of ``ax`` (its x limits
    set)."""
    left, right = ax.get_xlim()
    figure = ax.get_figure(root=True)
    inches = figure.get_figwidth() if figure is not None else 10.0
    points = ax.get_position().width * inches * 72
    return int(width / (right - left) * points / _CHAR_POINTS)


def _text(box: Box, room: int) -> str:
    """The box's label, each line cut to ``room`` characters; the size after the first."""
    size = "" if box.size_bytes is None else f"  ·  {human_size(box.size_bytes, docker=True)}"
    lines = [re.sub(r"\b(file|dir|sha256):([0-9a-f]{12})[0-9a-f]{52}\b", r"\1:\2",
                    " ".join(line.split())) for line in box.label.split("\n")]
    out = []
    for n, line in enumerate(lines):
        tail = size if n == 0 else ""
        fit = max(room - len(tail), 8)
        out.append((line if len(line) <= fit else line[: fit - 1] + "…") + tail)
    return "\n".join(out)


def _box(ax: Axes, x: float, y: float, width: float, height: float, box: Box) -> None:
    ax.add_patch(Rectangle((x, y), width, height, facecolor=COLOURS[box.kind],
                           edgecolor="#333333", linewidth=0.8))
    ax.text(x + width / 2, y + height / 2, _text(box, _room(ax, width)), ha="center",
            va="center", fontsize=8)


def _bracket(ax: Axes, y0: float, y1: float, text: str, x: float = _WIDTH + 0.25) -> None:
    ax.plot([x, x + 0.15, x + 0.15, x], [y0 + 0.05, y0 + 0.05, y1 - 0.05, y1 - 0.05],
            color="#555555", linewidth=0.8)
    ax.text(x + 0.3, (y0 + y1) / 2, text, ha="left", va="center", fontsize=8)


def _new_axes(ax: Axes | None, rows: float) -> Axes:
    if ax is not None:
        return ax
    _, new = plt.subplots(figsize=(10, 0.42 * rows + 1.0))
    return new


def draw_stacks(trunk: Sequence[Box], branches: Mapping[str, Sequence[Box]], *,
                title: str, ax: Axes | None = None, branch_height: float = 1.0,
                trunk_label: str | None = None) -> Axes:
    """``trunk`` (bottom first) drawn once at full width, and each branch's boxes side by side
    on top of it, named above their column. Brackets on the right name the trunk's base and
    own layers, or say ``trunk_label`` for the whole trunk."""
    tallest = max((len(b) for b in branches.values()), default=0)
    ax = _new_axes(ax, len(trunk) + tallest * branch_height + 1.2)
    ax.set_xlim(-0.1, _WIDTH + 2.2)
    ax.set_ylim(-0.1, len(trunk) + tallest * branch_height + 0.8)
    for i, box in enumerate(trunk):
        _box(ax, 0, i, _WIDTH, 1, box)
    y = float(len(trunk))
    n = max(len(branches), 1)
    width = (_WIDTH - _GAP * (n - 1)) / n
    for k, (name, column) in enumerate(branches.items()):
        x = k * (width + _GAP)
        for j, box in enumerate(column):
            _box(ax, x, y + j * branch_height, width, branch_height, box)
        ax.text(x + width / 2, y + len(column) * branch_height + 0.15,
                _text(Box(name, None, "own"), _room(ax, width) - 4), ha="center",
                va="bottom", fontsize=9, fontweight="bold")
    kinds = [b.kind for b in trunk]
    base = kinds.count("base")
    if trunk_label is not None:
        _bracket(ax, 0, len(trunk), trunk_label)
    elif base:
        _bracket(ax, 0, base, f"base image\n{base} layers")
    if trunk_label is None and len(trunk) > base:
        _bracket(ax, base, len(trunk), "your\nDockerfile" if base else "shared")
    ax.set_title(title, fontsize=10)
    ax.axis("off")
    return ax


def image_and_containers(stack: ImageStack, base_layers: int,
                         containers: Sequence[str] = ("container 1", "container 2"),
                         ax: Axes | None = None) -> Axes:
    """An image's read-only layers drawn once, and one thin writable layer per container
    started from it."""
    branches = {name: [Box("writable layer (its own changes)", None, "writable")]
                for name in containers}
    return draw_stacks(boxes(stack, base_layers), branches, branch_height=0.7, ax=ax,
                       title=f"{stack.name}: read-only layers, shared by "
                             f"{len(containers)} containers")


def shared_once(sharing: Sharing, base_layers: int, ax: Axes | None = None) -> Axes:
    """Two images as the engine stores them: the layers they share once, at the bottom, and
    each image's own layers on top (:class:`labkit.layers.sharing.Sharing`)."""
    table = sharing.table.sort_values("position")
    rows = {name: table[table["image"] == name] for name in (sharing.a, sharing.b)}
    first = rows[sharing.a]
    trunk = [Box(r.instruction, int(r.size_bytes), "base" if r.position < base_layers
                 else "own") for r in first[first["shared"]].itertuples()]
    branches = {name: [Box(r.instruction, int(r.size_bytes), "own")
                       for r in frame[~frame["shared"]].itertuples()]
                for name, frame in rows.items()}
    stored = sharing.a_bytes + sharing.b_bytes - sharing.shared_bytes
    label = (f"shared by both:\nstored once\n{human_size(sharing.shared_bytes, docker=True)}"
             if trunk else None)
    return draw_stacks(trunk, branches, ax=ax, trunk_label=label, title=(
        f"Two images as stored: {len(trunk)} shared layers once, "
        f"{human_size(stored, docker=True)} in all (not "
        f"{human_size(sharing.a_bytes + sharing.b_bytes, docker=True)})"))


def copy_on_write(layers: Sequence[Box], *, read: tuple[str, int], write: tuple[str, int],
                  delete: tuple[str, int], axes: Sequence[Axes] | None = None) -> list[Axes]:
    """Three panels over one image's layers (bottom first) and a container's writable layer:
    a read goes down the stack to the layer that holds the file; a write copies the file
    up into the container's layer first; a delete leaves a whiteout there that hides it.
    Each operation is (path, index in ``layers`` of the layer holding the file). The base
    image's layers are drawn as one box, unless an operation's file is in one of them."""
    base = [i for i, b in enumerate(layers) if b.kind == "base"]
    holders = {read[1], write[1], delete[1]}
    if len(base) > 1 and not holders & set(base):
        folded = Box(f"base image: {len(base)} layers",
                     sum(b.size_bytes or 0 for b in layers if b.kind == "base"), "base")
        shift = len(base) - 1
        layers = [folded, *(b for b in layers if b.kind != "base")]
        read, write, delete = ((p, i - shift) for p, i in (read, write, delete))
    if axes is None:
        _, made = plt.subplots(1, 3, figsize=(15, 0.5 * (len(layers) + 3) + 0.6))
        axes = list(made)
    panels = (("read", read), ("write", write), ("delete", delete))
    for ax, (kind, (path, holder)) in zip(axes, panels, strict=True):
        _cow_panel(ax, layers, kind, path, holder)
    return list(axes)


def _cow_panel(ax: Axes, layers: Sequence[Box], kind: str, path: str, holder: int) -> None:
    width, top = 6.0, float(len(layers))
    ax.set_xlim(-0.1, width + 2.3)
    ax.set_ylim(-0.1, top + 2.6)
    name = PurePosixPath(path).name
    here = {"read": f"{name}: read from here", "write": f"{name}: the image's copy, unchanged",
            "delete": f"{name}: still here, hidden"}[kind]
    for i, box in enumerate(layers):
        shown = Box(f"{box.label}\n{here}", box.size_bytes, box.kind) if i == holder else box
        _box(ax, 0, i, width, 1, shown)
    upper = {"read": "container: nothing of it", "write": f"container: {name}, changed",
             "delete": f"container: whiteout {name}"}[kind]
    _box(ax, 0, top, width, 1, Box(upper, None, "writable"))
    where = path if len(path) <= 40 else "…" + path[-39:]
    ax.text(width / 2, top + 1.3, {"read": "read", "write": "write (append to it)",
                                   "delete": "delete (rm)"}[kind] + f"\n{where}",
            ha="center", va="bottom", fontsize=9, fontweight="bold")
    x = width + 0.35
    if kind == "read":
        _arrow(ax, (x, top + 1.0), (x, holder + 0.5), "down the\nstack to the\nfirst layer\n"
               "that has it")
    elif kind == "write":
        _arrow(ax, (x, holder + 0.5), (x, top + 0.5), "copied up\n(the whole\nfile) first")
    else:
        _arrow(ax, (x, top + 0.5), (x, holder + 0.5), "the whiteout\nhides it")
    ax.axis("off")


def _arrow(ax: Axes, start: tuple[float, float], end: tuple[float, float], text: str) -> None:
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12,
                                 color="#b03030", linewidth=1.4))
    ax.text(start[0] + 0.15, (start[1] + end[1]) / 2, text, ha="left", va="center",
            fontsize=8, color="#b03030")
