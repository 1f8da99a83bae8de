"""Did-you-mean: the one way deploygen suggests a close match for a mistyped name or value."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# Choices that start with what was typed (`fp8` for fp8_e4m3 and fp8_e5m2) are all offered, up to this many.
MAX_PREFIXED = 3


def close_matches(word: object, choices: Iterable[object], n: int = 1, cutoff: float = 0.6) -> list[str]:
    """The choices closest to `word`, compared as strings: the same but for case first, then the choices
    that start with it, then difflib's closest."""
    names = [str(c) for c in choices]
    text = str(word)
    same_case = [name for name in names if name.lower() == text.lower() and name != text]
    if same_case:
        return same_case[:n]
    prefixed = [name for name in names if name.lower().startswith(text.lower()) and name != text] if text else []
    if prefixed:
        return prefixed[:MAX_PREFIXED]
    return difflib.get_close_matches(text, names, n=n, cutoff=cutoff)


def did_you_mean(word: object, choices: Iterable[object], n: int = 1, cutoff: float = 0.6, quote: str = "'") -> str:
    """`did you mean 'x'?` (`'x' or 'y'` for several), or '' when nothing is close; a match that differs only
    in case says so."""
    close = close_matches(word, choices, n, cutoff)
    if not close:
        return ""
    text = "did you mean " + " or ".join(f"{quote}{c}{quote}" for c in close) + "?"
    return text + " (case matters)" if close[0].lower() == str(word).lower() else text
