"""labkit: do real Docker work from a notebook, and show what the engine did."""

# The rendering layer registers the renderers that `show=True` uses (labkit.engine.observers).
from labkit.render import builds as display  # noqa: F401
from labkit.render import pushes as display_registry  # noqa: F401

__version__ = "0.1.0"
