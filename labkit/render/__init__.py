"""The rendering layer: HTML, text, widgets and charts of what the domain packages return.

Nothing else in labkit imports this package by name: :mod:`labkit.engine.presentation` imports it
the first time a result is shown (``show=True`` or a notebook's ``_repr_html_``), and importing
it registers every renderer there. It is the only part of labkit that loads IPython, pandas'
HTML, ipywidgets and matplotlib.
"""

from . import (
    builds,
    cards,
    cleanup,
    diagrams,
    elsewhere,
    experiments_plots,
    id_plots,
    layer_plots,
    plots,
    pushes,
    widgets,
)

__all__ = [
    "builds", "cards", "cleanup", "diagrams", "elsewhere", "experiments_plots", "id_plots",
    "layer_plots", "plots", "pushes", "widgets",
]
