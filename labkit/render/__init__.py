"""labkit.render."""
