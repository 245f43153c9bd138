"""Byte counts as text: the one size formatter of labkit (decimal units, as docker uses)."""

from __future__ import annotations

UNITS = ("B", "kB", "MB", "GB", "TB", "PB")


def human_size(size: float | None, *, docker: bool = False) -> str:
    """A size as text: ``12.3 MB`` for tables and summaries ('' for a missing value), or
    with ``docker=True`` the way the docker CLI prints it (3 significant digits, ``4.99MB``).
    """
    if size is None or _missing(size):
        return ""
    value, unit = float(size), 0
    last = len(UNITS) - 1 if docker else UNITS.index("GB")
    while abs(value) >= 1000 and unit < last:
        value /= 1000
        unit += 1
    if docker:
        return f"{value:.3g}{UNITS[unit]}"
    return f"{value:,.0f} B" if unit == 0 else f"{value:,.1f} {UNITS[unit]}"


def _missing(size: object) -> bool:
    """NaN or pandas' NA (a table's empty cell): the values not equal to themselves."""
    try:
        return bool(size != size)
    except TypeError:  # pandas.NA: its comparisons are NA, whose truth value is ambiguous
        return True
