"""labkit.cleanup."""
