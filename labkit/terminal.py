"""Text meant for a terminal, made plain: colour and cursor escapes removed."""

from __future__ import annotations

import re

ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, bold, cursor moves)."""
    return ANSI_RE.sub("", text)
