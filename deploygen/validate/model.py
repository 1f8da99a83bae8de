"""The profile's model facts: data/models/<model.facts>.yaml must exist, pass its schema and describe
the profile's model.repo. Checked before the rules, which all read it."""

from __future__ import annotations

from deploygen.errors import Problem, Severity, UserError
from deploygen.load import ResolvedProfile
from deploygen.models import known_models, load_model_facts
from deploygen.models.facts import default_name, model_path
from deploygen.suggest import did_you_mean

CODE = "model-facts"


def model_problems(profile: ResolvedProfile) -> list[Problem]:
    model = profile.data["model"]
    name, repo = model["facts"], model["repo"]
    blame = ("model", "facts")
    add = f"generate.py model add {repo}"
    if not model_path(name).is_file():
        known = known_models()
        fix = f"{add} --name {name}" if name != default_name(repo) else add
        hint = did_you_mean(name, known) or f"write it from the Hub: {fix}"
        message = f"no data/models/{name}.yaml (known: {', '.join(known) or 'none'})"
        return [Problem(profile.origin(blame), "model.facts", message, hint, code=CODE)]
    try:
        facts = load_model_facts(name)
    except UserError as exc:  # located in the facts file itself
        return [Problem(p.origin, p.path, p.message, p.hint, Severity.ERROR, CODE) for p in exc.problems]
    if facts.repo != repo:
        return [
            Problem(
                profile.origin(blame),
                "model.facts",
                f"data/models/{name}.yaml describes {facts.repo}, not model.repo {repo}",
                f"write the facts of {repo} with `{add}` and set model.facts: {default_name(repo)}",
                code=CODE,
            )
        ]
    return []
