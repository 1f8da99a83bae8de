"""Validation: JSON Schema, the pinned SGLang's real flag catalog, then the semantic rules."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from deploygen.errors import Problem, Severity, UserError
from deploygen.load import ResolvedProfile
from deploygen.sglang.catalog import Catalog
from deploygen.suggest import did_you_mean
from deploygen.validate.flags import WARNING_CODES, flag_problems, profile_catalog
from deploygen.validate.model import model_problems
from deploygen.validate.rules import RULES, rule_problems
from deploygen.validate.schema import apply_defaults, schema_problems
from deploygen.validate.vllm_flags import WARNING_CODES as VLLM_WARNING_CODES
from deploygen.validate.vllm_flags import profile_vllm_catalog, vllm_flag_problems
from deploygen.vllm.catalog import VllmCatalog


@dataclass(frozen=True)
class Validated:
    """A profile that passed validation: with the schema's defaults, its engine's flag catalog (SGLang's or
    vLLM's), and the findings that did not stop it (warnings and info notes)."""

    profile: ResolvedProfile
    catalog: Catalog | VllmCatalog
    findings: tuple[Problem, ...]


def failing_severities(strict: bool) -> tuple[Severity, ...]:
    """--strict makes warnings fail too; info notes never fail."""
    return (Severity.ERROR, Severity.WARNING) if strict else (Severity.ERROR,)


def engine_flag_problems(profile: ResolvedProfile) -> tuple[Catalog | VllmCatalog | None, list[Problem]]:
    """The chosen engine's catalog and the problems of its flag matrix (the other engine's section is
    refused: its flags would be silently ignored)."""
    engine = profile.data["engine"]
    other = "sglang" if engine == "vllm" else "vllm"
    problems = []
    if other in profile.data:
        problems.append(
            Problem(
                profile.origin((other,)),
                other,
                f"`{other}:` flags do not apply: this profile's engine is {engine}",
                f"move what you need to `{engine}:` (names differ between the engines), or set `engine: {other}`",
                code="engine-section",
            )
        )
    if engine == "vllm":
        catalog, found = profile_vllm_catalog(profile)
        problems += found + (vllm_flag_problems(profile, catalog) if catalog is not None else [])
        return catalog, problems
    catalog, found = profile_catalog(profile)
    flagged = flag_problems(profile, catalog) if catalog is not None else []
    if profile.data["image"]["flag_check"] == "off":  # said loudly by the flag-check-off warning
        flagged = [dataclasses.replace(p, severity=Severity.WARNING) for p in flagged]
    return catalog, problems + found + flagged


def validate(profile: ResolvedProfile, *, strict: bool = False) -> Validated:
    """Every check, in order; raise UserError with all errors (and warnings when strict).

    The loaded profile is left as it is: the result holds a copy with the schema's defaults."""
    problems = schema_problems(profile)
    if problems:
        raise UserError(problems)
    profile = apply_defaults(profile)
    problems = model_problems(profile)  # every rule reads the model's facts
    if problems:
        raise UserError(problems)
    catalog, problems = engine_flag_problems(profile)
    problems = acknowledged(profile, problems + rule_problems(profile))
    failing = failing_severities(strict)
    if catalog is None or any(p.severity in failing for p in problems):
        raise UserError([p for p in problems if p.severity in failing])
    return Validated(profile, catalog, tuple(p for p in problems if p.severity != Severity.ERROR))


def acknowledged(profile: ResolvedProfile, problems: list[Problem]) -> list[Problem]:
    """The problems with the warnings the profile acknowledges marked as such (with the reason), and a
    warning for each acknowledgement that names no warning or one that no longer fires."""
    reasons: dict[str, str] = profile.data.get("acknowledge", {})
    if not reasons:
        return problems
    severities = {rule.code: rule.severity for rule in RULES} | {
        code: Severity.WARNING for code in (*WARNING_CODES, *VLLM_WARNING_CODES)
    }
    warnings = sorted(code for code, severity in severities.items() if severity == Severity.WARNING)
    out = []
    for problem in problems:
        if problem.severity == Severity.WARNING and problem.code in reasons:
            where = profile.origin(("acknowledge", problem.code))
            problem = dataclasses.replace(
                problem, severity=Severity.ACKNOWLEDGED, hint=f"{reasons[problem.code]} (acknowledged at {where})"
            )
        out.append(problem)
    fired = {p.code for p in problems}
    for code in reasons:
        path = ("acknowledge", code)
        if code not in severities:
            hint = did_you_mean(code, warnings) or f"warnings a profile can acknowledge: {', '.join(warnings)}"
            message = f"no check reports a warning {code!r}"
        elif severities[code] != Severity.WARNING:
            hint = "fix what it reports; only warnings can be acknowledged"
            message = f"{code!r} reports {severities[code]}s, not warnings"
        elif code not in fired:
            hint = "remove the acknowledgement"
            message = f"{code!r} no longer fires for this profile"
        else:
            continue
        out.append(Problem(profile.origin(path), f"acknowledge.{code}", message, hint, Severity.WARNING, "acknowledge"))
    return out
