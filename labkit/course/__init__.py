"""labkit.course."""
