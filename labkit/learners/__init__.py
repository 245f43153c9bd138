"""labkit.learners."""
