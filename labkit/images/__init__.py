"""labkit.images."""
