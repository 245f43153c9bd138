"""labkit.layers."""
