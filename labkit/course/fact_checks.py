"""Fact checks: each claim of the lab, checked against what the engine reported."""

from __future__ import annotations

from dataclasses import dataclass

from labkit.engine import LabkitError


class CheckFailed(LabkitError):
    """A fact the lab claims did not hold on this engine."""


@dataclass(frozen=True)
class Fact:
    """A claim of the lab, checked against what the engine reports."""

    claim: str
    holds: bool
    detail: str = ""

    def __str__(self) -> str:
        mark = "✓" if self.holds else "✗"
        return f"{mark} {self.claim}" + (f" ({self.detail})" if self.detail else "")

    def _repr_markdown_(self) -> str:
        return str(self)


def expect(claim: str, holds: bool, detail: str = "") -> None:
    """Check a claim; raise :class:`CheckFailed` (failing the notebook in CI) if it is false."""
    fact = Fact(claim, bool(holds), detail)
    if not fact.holds:
        raise CheckFailed(str(fact), "Re-run the notebook from the top; if it still fails, "
                          "the engine did something the lab does not expect.")
    print(fact)
