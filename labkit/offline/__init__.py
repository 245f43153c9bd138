"""labkit.offline."""
