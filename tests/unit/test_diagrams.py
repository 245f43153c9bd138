"""The layer diagrams: shared layers drawn once, one writable layer per container, the three
copy-on-write operations, and no label over another or out of its box."""

from __future__ import annotations

import itertools

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from labkit.layers.sharing import ImageStack, compare_stacks
from labkit.render import diagrams

#: The course's stand-in base (six layers, long instructions), then the lab's two steps.
CA = "/usr/local/share/ca-certificates/labkit-host-ca.crt"
BASE = [("ADD file:" + "9" * 64 + " in /", 185_491_456),
        ("ADD file:" + "a" * 64 + " in /", 48_435_200),
        ("ADD file:" + "e" * 64 + " in /", 33_959_936),
        ("RUN set -eux; ln -svT python3 /usr/bin/python; "
         "rm -fv /usr/lib/python3*/EXTERNALLY-MANAGED", 20_480),
        ("COPY file:" + "3" * 64 + f" in {CA}", 241_664),
        (f"RUN cp {CA} /etc/ssl/certs/ca-certificates.crt", 237_568)]


def stack(name: str, app_digest: str, run_digest: str = "r") -> ImageStack:
    rows = [*BASE, ("RUN pip install flask", 5_877_760), ("COPY app.py /app.py", 8_192)]
    diff_ids = [f"sha256:{i}" for i in range(len(BASE))] + [f"sha256:{run_digest}",
                                                              f"sha256:{app_digest}"]
    return ImageStack(name, diff_ids, [s for _, s in rows], [i for i, _ in rows])


def problems(fig: Figure) -> list[str]:
    """Labels that overlap one another, or that stick out of the box they sit in."""
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    fig.draw(renderer)
    found = []
    texts = [(t.get_text(), t.get_window_extent(renderer)) for ax in fig.axes for t in ax.texts]
    for (a, box_a), (b, box_b) in itertools.combinations(texts, 2):
        if box_a.overlaps(box_b):
            found.append(f"{a!r} overlaps {b!r}")
    for ax in fig.axes:
        rects = [p.get_window_extent(renderer) for p in ax.patches if isinstance(p, Rectangle)]
        for text in ax.texts:
            t = text.get_window_extent(renderer)
            for r in rects:
                inside = r.contains((t.x0 + t.x1) / 2, (t.y0 + t.y1) / 2)
                if inside and (t.x0 < r.x0 or t.x1 > r.x1):
                    found.append(f"{text.get_text()!r} sticks out of its box")
    return found


def rectangles(ax: Axes) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def test_an_image_and_two_containers_share_one_stack() -> None:
    ax = Figure(figsize=(7, 5)).subplots()
    diagrams.image_and_containers(stack("me/app", "c"), len(BASE), ["one", "two"], ax=ax)
    boxes = rectangles(ax)
    assert len(boxes) == len(BASE) + 2 + 2  # every image layer once, one writable per container
    writable = [b for b in boxes if b.get_facecolor()[:3] == Rectangle((0, 0), 1, 1,
                facecolor=diagrams.COLOURS["writable"]).get_facecolor()[:3]]
    assert len(writable) == 2
    assert problems(ax.figure) == []  # type: ignore[arg-type]


def test_shared_layers_are_drawn_once() -> None:
    sharing = compare_stacks(stack("me/app", "c1"), stack("me/app-2", "c2"))
    ax = Figure(figsize=(7, 5)).subplots()
    diagrams.shared_once(sharing, len(BASE), ax=ax)
    assert sharing.shared_layers == len(BASE) + 1  # the base and the RUN layer
    assert len(rectangles(ax)) == sharing.shared_layers + 2  # and each image's own COPY
    labels = [t.get_text() for t in ax.texts]
    assert sum("RUN pip install flask" in x for x in labels) == 1
    assert any("stored once" in x for x in labels)
    assert problems(ax.figure) == []  # type: ignore[arg-type]


def test_a_run_layer_that_differs_is_each_images_own() -> None:
    sharing = compare_stacks(stack("me/app", "c1", "r1"), stack("me/app-2", "c2", "r2"))
    ax = Figure(figsize=(7, 5)).subplots()
    diagrams.shared_once(sharing, len(BASE), ax=ax)
    assert sum("RUN pip install flask" in t.get_text() for t in ax.texts) == 2
    assert len(rectangles(ax)) == len(BASE) + 4


def test_copy_on_write_shows_read_write_and_whiteout() -> None:
    layers = diagrams.boxes(stack("me/app", "c"), len(BASE))
    axes = list(Figure(figsize=(13, 4)).subplots(1, 3))
    site = "/usr/local/lib/python3.11/site-packages/flask"
    diagrams.copy_on_write(layers, read=(f"{site}/__init__.py", 6), write=("/app.py", 7),
                           delete=(f"{site}/py.typed", 6), axes=axes)
    text = ["\n".join(t.get_text() for t in ax.texts) for ax in axes]
    assert "read from here" in text[0] and "copied up" in text[1] and "whiteout" in text[2]
    assert all(len(rectangles(ax)) == 4 for ax in axes)  # base (one box), RUN, COPY, container
    assert problems(axes[0].figure) == []  # type: ignore[arg-type]


def test_boxes_mark_the_base_images_layers() -> None:
    kinds = [b.kind for b in diagrams.boxes(stack("me/app", "c"), len(BASE))]
    assert kinds == ["base"] * len(BASE) + ["own", "own"]
