"""labkit.experiments."""
