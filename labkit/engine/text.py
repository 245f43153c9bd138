"""Text meant for a terminal, made plain: colour, cursor and title escapes removed."""

from __future__ import annotations

import re

#: CSI sequences (colours, cursor moves: ESC [ ... final byte), OSC sequences (window titles,
#: links: ESC ] ... BEL or ESC \), character set choices (ESC ( B), and the two-byte escapes
#: (ESC followed by one of @-Z \ ] ^ _).
ANSI_RE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"
    r"|\x1b[()*+][0-9A-Za-z]"
    r"|\x1b[@-Z\\-_]"
)


def strip_ansi(text: str) -> str:
    """``text`` without ANSI escape sequences (colours, bold, cursor moves, titles)."""
    return ANSI_RE.sub("", text)


def has_ansi(text: str) -> bool:
    """True when ``text`` still holds an escape character (any sequence, even a broken one)."""
    return "\x1b" in text
