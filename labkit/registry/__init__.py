"""labkit.registry."""
