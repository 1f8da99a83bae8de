"""Everything the command line prints goes through here: safe to show on a terminal, no secret in it.

A profile string can hold control characters (an ANSI escape that recolours or clears the screen, a
carriage return that overwrites a line) and bidirectional overrides that reorder what is shown. They are
printed escaped, as Python writes them in a string literal, and secret-shaped text is masked.
"""

from __future__ import annotations

import io
import re
import unicodedata
from typing import Any, TextIO

from deploygen.secrets import mask

# Bidirectional embeddings, overrides and isolates (the "Trojan Source" characters).
_BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_UNSAFE = re.compile(f"[^\\S\\n ]|[{_BIDI}]|[\\x00-\\x1f\\x7f-\\x9f]")


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\n" or (char.isspace() and unicodedata.category(char) == "Zs"):
        return char
    return repr(char)[1:-1] if char not in _BIDI else f"\\u{ord(char):04x}"


def printable(text: str) -> str:
    """`text` with control and bidi characters escaped (newlines kept) and secrets masked."""
    return mask(_UNSAFE.sub(_escape, text))


class SafeStream(io.TextIOBase):
    """A text stream that writes `printable(text)` to the stream it wraps."""

    def __init__(self, stream: TextIO):
        self.stream = stream

    def write(self, text: str) -> int:
        self.stream.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def writable(self) -> bool:
        return True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
