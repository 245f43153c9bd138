"""An ipywidgets layer explorer: pick an image → its layers and chart; pick a layer → its files.

The explorer displays as one output carrying both the live widget and a static HTML
rendering of the same tables: JupyterLab shows the widget, while a static render (GitHub,
nbviewer, an untrusted notebook, no ipywidgets installed) shows the tables.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import docker

from labkit import engine, images
from labkit.engine import BASE_IMAGE, human_size
from labkit.layers import ImageLayers, analyze


def layers_html(analysis: ImageLayers) -> str:
    """The layers table of an image, with a summary line, as HTML."""
    df = analysis.layers_table()[["layer", "instruction", "size_bytes", "files", "added",
                                  "modified", "deleted", "wasted_bytes"]].copy()
    for col in ("size_bytes", "wasted_bytes"):
        df[col] = df[col].map(human_size)
    s = analysis.summary()
    head = (f"<p><b>{html.escape(analysis.image)}</b>: {s['layers']} layers, "
            f"{human_size(s['total_bytes'])} in layers, "
            f"{human_size(s['wasted_bytes'])} not visible in the image "
            f"(efficiency {s['efficiency']:.1%})</p>")
    return head + str(df.iloc[::-1].to_html(index=False, escape=True))


def files_html(analysis: ImageLayers, layer: int, limit: int = 50) -> str:
    """The largest entries of one layer as HTML (at most ``limit`` rows)."""
    df = analysis.files_in(layer)
    shown = df.head(limit)[["path", "kind", "change", "size_bytes", "lower_layer", "kept"]].copy()
    shown["size_bytes"] = shown["size_bytes"].map(human_size)
    more = f"<p>… and {len(df) - limit} more</p>" if len(df) > limit else ""
    title = html.escape(analysis.layers[layer].instruction) if analysis.layers else ""
    return (f"<p>Layer {layer}: <code>{title}</code> ({len(df)} entries)</p>"
            + str(shown.to_html(index=False, escape=True)) + more)


def default_images(client: docker.DockerClient | None = None) -> list[str]:
    """The course base image and every image of this learner's (:mod:`labkit.images.owned`)."""
    from labkit.engine import client as default_client

    cli = client or default_client()
    names = [t for img in images.owned.own_images(cli) for t in images.owned.tags_of(img)]
    if engine.images(cli, name=BASE_IMAGE):
        names.append(BASE_IMAGE)
    return sorted(dict.fromkeys(names))


class LayerExplorer:
    """Layers of several images, browsable; analyses are made on first use and kept."""

    def __init__(self, images: Sequence[str] | None = None,
                 client: docker.DockerClient | None = None,
                 analyses: dict[str, ImageLayers] | None = None, file_limit: int = 50) -> None:
        self.client = client
        self.analyses: dict[str, ImageLayers] = dict(analyses or {})
        self.images = list(images) if images is not None else (
            list(self.analyses) or default_images(client))
        self.file_limit = file_limit
        self._widget: Any = None

    def analysis(self, image: str) -> ImageLayers:
        """The layer analysis of ``image`` (streamed from the engine once)."""
        if image not in self.analyses:
            self.analyses[image] = analyze(image, client=self.client)
        return self.analyses[image]

    def static_html(self) -> str:
        """What a reader without widgets sees: the first image's layers and files."""
        if not self.images:
            return "<p>No image to explore yet: build one first.</p>"
        a = self.analysis(self.images[0])
        parts = [layers_html(a)]
        for layer in reversed(a.layers):
            if layer.files:
                parts.append(files_html(a, layer.index, limit=min(self.file_limit, 15)))
        return "\n".join(parts)

    def widget(self) -> Any:
        """The ipywidgets view, or None when ipywidgets is not installed."""
        if self._widget is not None:
            return self._widget
        try:
            import ipywidgets as w
        except ImportError:
            return None
        from IPython.display import display

        pick_image = w.Dropdown(options=self.images, description="Image")
        pick_layer = w.Dropdown(options=[], description="Layer")
        layers_out, chart_out, files_out = w.Output(), w.Output(), w.Output()

        def show_files(change: Any = None) -> None:
            files_out.clear_output()
            if pick_image.value is None or pick_layer.value is None:
                return
            with files_out:
                display(w.HTML(files_html(self.analysis(pick_image.value), pick_layer.value,
                                          self.file_limit)))

        def show_image(change: Any = None) -> None:
            import matplotlib.pyplot as plt
            from matplotlib.figure import Figure

            from labkit.render.layer_plots import plot_layer_sizes

            layers_out.clear_output()
            chart_out.clear_output()
            if pick_image.value is None:
                return
            a = self.analysis(pick_image.value)
            with layers_out:
                display(w.HTML(layers_html(a)))
            with chart_out:
                ax = plot_layer_sizes(a.layers_table(), title=a.image)
                figure = ax.get_figure()
                display(figure)
                if isinstance(figure, Figure):  # plot_layer_sizes made it: a whole figure
                    plt.close(figure)
            pick_layer.options = [(f"{x.index}: {x.instruction[:60]}", x.index)
                                  for x in reversed(a.layers)]
            pick_layer.value = a.layers[-1].index if a.layers else None
            show_files()

        pick_image.observe(show_image, names="value")
        pick_layer.observe(show_files, names="value")
        show_image()
        self._widget = w.VBox([pick_image, layers_out, chart_out, pick_layer, files_out])
        return self._widget

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        bundle: dict[str, Any] = {"text/plain": f"LayerExplorer({', '.join(self.images)})",
                                  "text/html": self.static_html()}
        view = self.widget()
        if view is not None:
            widget_bundle = view._repr_mimebundle_()
            if widget_bundle:
                bundle.update({k: v for k, v in widget_bundle.items() if k != "text/plain"})
        return bundle


def explorer(images: Sequence[str] | None = None,
             client: docker.DockerClient | None = None) -> LayerExplorer:
    """A layer explorer over ``images`` (default: the base image and this user's images)."""
    return LayerExplorer(images, client=client)
