"""labkit.engine."""
