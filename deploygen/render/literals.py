"""The one way a profile value enters generated Python: as a literal that parses back to itself."""

from __future__ import annotations

import json
import math
import re
from typing import Any


def py_literal(value: Any, block: bool = False) -> str:
    """Python source for a value; `ast.literal_eval(py_literal(v)) == v` for every accepted value.

    block=True writes a string as a triple-quoted block (for docstrings), still exact.
    """
    if block and isinstance(value, str):
        return _block_string(value)
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, str):
        return '"' + "".join(_escape(c) for c in value) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {type(value).__name__}")


def _block_string(text: str) -> str:
    body = "".join(_block_char(c) for c in text)
    # A quote next to another quote or at either end could close the literal: escape those.
    body = re.sub(r'""+|^"|"$', lambda quotes: '\\"' * len(quotes.group()), body)
    # ruff format strips a docstring's leading spaces and each line's trailing ones: escaped, they stay.
    body = re.sub(r"^ +| +(?=\n|$)", lambda spaces: "\\x20" * len(spaces.group()), body)
    return f'"""{body}"""'


def _block_char(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char == "\n" or (char.isprintable() and char.isascii()):
        return char
    return _escape(char)


def _escape(char: str) -> str:
    """One character in plain ASCII that Python reads back to it: JSON's escapes (a subset of Python's),
    except above U+FFFF, where JSON writes a surrogate pair that Python would read as two characters."""
    if ord(char) > 0xFFFF:
        return f"\\U{ord(char):08x}"
    return json.dumps(char)[1:-1]
