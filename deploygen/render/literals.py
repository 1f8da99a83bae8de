"""The one way a profile value enters generated Python: as a literal that parses back to itself."""

from __future__ import annotations

import json
import math
from typing import Any


def py_literal(value: Any) -> str:
    """Python source for a value; `ast.literal_eval(py_literal(v)) == v` for every accepted value."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Python literal")
        return repr(value)
    if isinstance(value, str):
        # JSON's escapes are a subset of Python's, and ensure_ascii keeps the source plain ASCII.
        return json.dumps(value, ensure_ascii=True)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(py_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{py_literal(k)}: {py_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no literal for {type(value).__name__}")
