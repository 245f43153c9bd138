"""Waiting for a condition with a deadline, instead of sleeping and hoping."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    interval: float = 0.1,
    message: str | None = None,
) -> T:
    """Call ``predicate`` until it returns a truthy value, and return that value.

    Exceptions raised by ``predicate`` propagate at once (use that to stop early, e.g. when
    a container exited). Raises :class:`TimeoutError` naming what was awaited otherwise.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            what = message or getattr(predicate, "__name__", "the condition")
            raise TimeoutError(f"Waited {timeout:g} s for {what}, in vain.")
        time.sleep(min(interval, remaining))
