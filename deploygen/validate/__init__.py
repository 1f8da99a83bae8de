"""Validation: JSON Schema, the pinned SGLang's real flag catalog, then the semantic rules."""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.errors import Problem, UserError
from deploygen.load import ResolvedProfile, load_profile
from deploygen.plan.deployment import Deployment, plan_deployment
from deploygen.validate.flags import argv_problems, flag_problems, profile_catalog
from deploygen.validate.rules import rule_problems
from deploygen.validate.schema import apply_defaults, schema_problems


@dataclass
class Checked:
    deployment: Deployment
    warnings: list[Problem]


def check_profile(profile: ResolvedProfile, *, strict: bool = False) -> Checked:
    """Every check, in order; raise UserError with all errors (and warnings when strict)."""
    problems = schema_problems(profile)
    if problems:
        raise UserError(problems)
    apply_defaults(profile)
    catalog, problems = profile_catalog(profile)
    if catalog is not None:
        problems += flag_problems(profile, catalog)
    problems += rule_problems(profile)
    # --strict makes warnings fail too; info notes never fail.
    failing = ("error", "warning") if strict else ("error",)
    if any(p.severity in failing for p in problems):
        raise UserError([p for p in problems if p.severity in failing])
    deployment = plan_deployment(profile, catalog)
    origin = profile.origin(("sglang",))
    final = argv_problems(deployment.argv[3:], catalog, origin=origin)
    final += argv_problems(deployment.compile_argv[3:], catalog, compile_step=True, origin=origin)
    if final:
        raise UserError(final)
    return Checked(deployment, [p for p in problems if p.severity != "error"])


def check(name_or_path: str, *, strict: bool = False) -> Checked:
    return check_profile(load_profile(name_or_path), strict=strict)
