"""`model add REPO[@REVISION] [--name NAME] [--set FACT=VALUE]`: write data/models/NAME.yaml from the Hub."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from deploygen.errors import Origin, Problem, UserError
from deploygen.files import write_atomic
from deploygen.load.yaml_source import display_path
from deploygen.models.derive import derive_facts
from deploygen.models.facts import MODELS_DIR, default_name, load_model_facts, model_schema, schema_problems
from deploygen.models.hub import read_checkpoint

REPO_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
REVISION_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
HAND_FACTS = ("repo", "commit")  # identify the checkpoint; never set by hand


def parse_spec(spec: str) -> tuple[str, str]:
    """`owner/name@revision` -> (repo, revision); the revision defaults to main."""
    repo, _, revision = spec.partition("@")
    revision = revision or "main"
    if not REPO_PATTERN.match(repo):
        raise UserError(
            Problem(
                Origin("model add"),
                "REPO",
                f"{repo!r} is not a Hub repository id",
                "write OWNER/NAME[@REVISION], e.g. Qwen/Qwen3-8B or Qwen/Qwen3-8B@main",
            )
        )
    if not REVISION_PATTERN.match(revision):
        raise UserError(
            Problem(
                Origin("model add"), "REVISION", f"{revision!r} is not a revision", "a branch, tag or 40-hex commit"
            )
        )
    return repo, revision


def parse_supplied(pairs: list[str]) -> dict[str, int | str]:
    """`--set FACT=VALUE` pairs, typed as the schema types the fact."""
    properties = model_schema()["properties"]
    supplied: dict[str, int | str] = {}
    for pair in pairs:
        fact, sep, value = pair.partition("=")
        if not sep or fact not in properties or fact in HAND_FACTS:
            settable = ", ".join(p for p in properties if p not in HAND_FACTS)
            raise UserError(
                Problem(Origin("model add"), "--set", f"{pair!r} is not FACT=VALUE", f"FACT is one of: {settable}")
            )
        ref = properties[fact]["$ref"].rsplit("/", 1)[-1]
        if ref in ("countFact", "nonNegativeFact"):
            if not re.fullmatch(r"[0-9]+", value) or (ref == "countFact" and int(value) == 0):
                raise UserError(
                    Problem(Origin("model add"), f"--set {fact}", f"{value!r} is not a whole number", "e.g. 40960")
                )
            supplied[fact] = int(value)
        else:
            supplied[fact] = value
    return supplied


def add_model(
    spec: str, name: str | None = None, supplied: dict[str, int | str] | None = None, models_dir: Path = MODELS_DIR
) -> tuple[Path, dict[str, Any]]:
    """Read REPO@REVISION from the Hub and write models_dir/NAME.yaml; nothing is written on an error."""
    repo, revision = parse_spec(spec)
    name = name or default_name(repo)
    if not NAME_PATTERN.match(name):
        raise UserError(
            Problem(
                Origin("model add"), "--name", f"{name!r} is not a model file name", "use lower case, digits, . _ -"
            )
        )
    path = models_dir / f"{name}.yaml"
    _refuse_other_repo(path, name, repo, models_dir)
    facts = derive_facts(read_checkpoint(repo, revision), supplied)
    text = render_facts(facts, f"{repo}@{revision}")
    _check(text, facts)
    _write_atomic(path, text)
    return path, facts


def _refuse_other_repo(path: Path, name: str, repo: str, models_dir: Path) -> None:
    if not path.exists():
        return
    try:
        existing = load_model_facts(name, models_dir).repo
    except UserError:
        return  # a broken file is replaced by a good one
    if existing != repo:
        raise UserError(
            Problem(
                Origin(display_path(path)),
                "repo",
                f"{path.name} describes {existing}, not {repo}",
                f"choose another name: --name {default_name(repo)}-2, or delete {path.name} first",
            )
        )


def render_facts(facts: dict[str, Any], spec: str) -> str:
    """The facts file's text: schema order, one fact per line, the same bytes for the same input."""
    lines = [
        "# yaml-language-server: $schema=../../schema/model.schema.json",
        f"# Facts about {facts['repo']}, written by `generate.py model add {spec}` (regenerate, do not edit).",
        "# Each value says which config.json key or Hub file it came from. KV bytes per token are not",
        "# stored: deploygen derives them from the attention geometry (deploygen/models/facts.py).",
        f"repo: {facts['repo']}",
        f"commit: {json.dumps(facts['commit'])}",
    ]
    for fact in model_schema()["properties"]:
        if fact in ("repo", "commit") or fact not in facts:
            continue
        value = facts[fact]
        lines.append(f"{fact}: {{value: {json.dumps(value['value'])}, from: {json.dumps(value['from'])}}}")
    return "\n".join(lines) + "\n"


def _check(text: str, facts: dict[str, Any]) -> None:
    """Refuse to write what the schema would refuse to read (a config value of the wrong type, say)."""
    origin = Origin(f"config.json of {facts['repo']}@{facts['commit'][:12]}")
    problems = schema_problems(yaml.safe_load(text), {}, origin.file)
    if problems:
        raise UserError([Problem(origin, p.path, p.message, p.hint) for p in problems])


def _write_atomic(path: Path, text: str) -> None:
    try:
        write_atomic(path, text)
    except OSError as exc:
        raise UserError(Problem(Origin(display_path(path)), "", f"cannot write the file: {exc.strerror}")) from None
