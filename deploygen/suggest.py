"""Did-you-mean: the one way deploygen suggests a close match for a mistyped name or value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_matches(word: object, choices: Iterable[object], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The choices closest to `word`, compared as strings (case-insensitively first, then as typed)."""
    names = [str(c) for c in choices]
    text = str(word)
    same_case = [name for name in names if name.lower() == text.lower() and name != text]
    return (same_case + [m for m in difflib.get_close_matches(text, names, n=n, cutoff=cutoff) if m not in same_case])[
        :n
    ]


def did_you_mean(word: object, choices: Iterable[object], n: int = 1, cutoff: float = 0.6, quote: str = "'") -> str:
    """`did you mean 'x'?` (or `'x' or 'y'` for n > 1), or '' when nothing is close."""
    close = close_matches(word, choices, n, cutoff)
    if not close:
        return ""
    return "did you mean " + " or ".join(f"{quote}{c}{quote}" for c in close) + "?"
