"""labkit: do real Docker work from a notebook, and show what the engine did.

The notebooks import the concept packages (``from labkit import images``); the rendering
layer (:mod:`labkit.render`) is imported the first time a result is shown.
"""

__version__ = "0.1.0"
