"""The one pipeline every command runs: load -> validate -> plan, returning an immutable checked result.

Commands (`render`, `check`, `explain`, `plan`, `bench`...) take a `Checked` rather than re-running
validation or reloading catalogs; rendering takes its `deployment`.
"""

from __future__ import annotations

from dataclasses import dataclass

from deploygen.errors import Problem, UserError
from deploygen.load import ResolvedProfile, available_profiles, load_profile
from deploygen.load.yaml_source import display_path
from deploygen.plan.deployment import Deployment, plan_deployment
from deploygen.sglang.catalog import Catalog
from deploygen.validate import validate
from deploygen.validate.flags import argv_problems, entry_point_problems
from deploygen.validate.vllm_flags import vllm_argv_problems
from deploygen.vllm.catalog import VllmCatalog


@dataclass(frozen=True)
class Checked:
    """A valid profile, planned: the profile with the schema's defaults, its engine's catalog, the
    deployment the templates render, and the findings that did not stop it (warnings, info notes)."""

    profile: ResolvedProfile
    catalog: Catalog | VllmCatalog
    deployment: Deployment
    findings: tuple[Problem, ...]


def check_profile(profile: ResolvedProfile, *, strict: bool = False) -> Checked:
    """Validate and plan a loaded profile; UserError with every error (and warning, when strict)."""
    validated = validate(profile, strict=strict)
    deployment = plan_deployment(validated.profile, validated.catalog)
    # The planned command lines, token by token, against the same catalog: what the engine will parse.
    origin = validated.profile.origin((deployment.engine,))
    if isinstance(validated.catalog, VllmCatalog):
        final = vllm_argv_problems(deployment.argv[3:], validated.catalog, origin=origin)
    elif validated.profile.data["image"]["flag_check"] == "off":
        final = []
    else:
        start, final = entry_point_problems(deployment.argv, validated.profile.data["image"]["sglang_version"], origin)
        final += argv_problems(deployment.argv[start:], validated.catalog, origin=origin) if start else []
        final += argv_problems(deployment.compile_argv[3:], validated.catalog, compile_step=True, origin=origin)
    if final:
        raise UserError(final)
    return Checked(validated.profile, validated.catalog, deployment, validated.findings)


def check(name_or_path: str, *, strict: bool = False) -> Checked:
    """Load a profile by name or path, then validate and plan it."""
    return check_profile(load_profile(name_or_path), strict=strict)


def load_deployable(name_or_path: str) -> ResolvedProfile:
    """A profile that renders a deployment; an abstract base is a UserError naming its children."""
    profile = load_profile(name_or_path)
    if profile.abstract:
        children = [p.name for p in loadable_profiles() if not p.abstract and profile.path in p.sources]
        raise UserError(f"{display_path(profile.path)} is an abstract base; render one of: {', '.join(children)}")
    return profile


def loadable_profiles() -> list[ResolvedProfile]:
    """The profiles in profiles/ that load; one that does not is reported when it is used, not here."""
    profiles = []
    for name in available_profiles():
        try:
            profiles.append(load_profile(name))
        except UserError:
            continue
    return profiles


def check_deployable(name_or_path: str, *, strict: bool = False) -> Checked:
    return check_profile(load_deployable(name_or_path), strict=strict)
