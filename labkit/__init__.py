"""labkit: do real Docker work from a notebook, and show what the engine did."""

__version__ = "0.1.0"
