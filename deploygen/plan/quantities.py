"""Quantities with provenance: every number of a plan carries its unit and where it comes from.

A source names the profile field (with file and line), the data file entry, or the formula that
derives the number from the quantities above it.
"""

from __future__ import annotations

from typing import Any

from deploygen.load import ResolvedProfile


def quantity(label: str, value: Any, unit: str, source: str, **extra: Any) -> dict[str, Any]:
    """One number with its unit and where it comes from."""
    return {"label": label, "value": value, "unit": unit, "source": source, **extra}


def where(profile: ResolvedProfile, *path: str) -> str:
    """`dotted.field (file:line)`, or `(schema default)` when no file set it."""
    origin = profile.origin(path)
    place = f"{origin.file}:{origin.line}" if origin.line else "schema default"
    return f"{'.'.join(path)} ({place})"


def flag_source(profile: ResolvedProfile, *names: str) -> str:
    """Where the profile sets an SGLang flag, under the first of its names (aliases) it uses."""
    flags = profile.data.get("sglang", {})
    return where(profile, "sglang", next(n for n in names if n in flags))


def models_file(profile: ResolvedProfile) -> str:
    return f"data/models/{profile.data['model']['facts']}.yaml"
