"""Validation: JSON Schema, the pinned SGLang's real flag catalog, then the semantic rules."""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.errors import Problem, Severity, UserError
from deploygen.load import ResolvedProfile
from deploygen.sglang.catalog import Catalog
from deploygen.validate.flags import flag_problems, profile_catalog
from deploygen.validate.rules import rule_problems
from deploygen.validate.schema import apply_defaults, schema_problems


@dataclass(frozen=True)
class Validated:
    """A profile that passed validation: with the schema's defaults, its SGLang catalog, and the findings
    that did not stop it (warnings and info notes)."""

    profile: ResolvedProfile
    catalog: Catalog
    findings: tuple[Problem, ...]


def failing_severities(strict: bool) -> tuple[Severity, ...]:
    """--strict makes warnings fail too; info notes never fail."""
    return (Severity.ERROR, Severity.WARNING) if strict else (Severity.ERROR,)


def validate(profile: ResolvedProfile, *, strict: bool = False) -> Validated:
    """Every check, in order; raise UserError with all errors (and warnings when strict).

    The loaded profile is left as it is: the result holds a copy with the schema's defaults."""
    problems = schema_problems(profile)
    if problems:
        raise UserError(problems)
    profile = apply_defaults(profile)
    catalog, problems = profile_catalog(profile)
    if catalog is not None:
        problems += flag_problems(profile, catalog)
    problems += rule_problems(profile)
    failing = failing_severities(strict)
    if catalog is None or any(p.severity in failing for p in problems):
        raise UserError([p for p in problems if p.severity in failing])
    return Validated(profile, catalog, tuple(p for p in problems if p.severity != Severity.ERROR))
