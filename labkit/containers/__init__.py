"""labkit.containers."""
