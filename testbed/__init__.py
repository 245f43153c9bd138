"""Maintainers' runs against real engines: the test run and its stages (not shipped to learners)."""
