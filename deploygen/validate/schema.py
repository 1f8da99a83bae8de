"""JSON Schema validation (draft 2020-12) with errors located at the file and line that set the value."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import re
from typing import Any

import jsonschema

from deploygen.errors import Origin, Problem
from deploygen.load import ResolvedProfile, available_profiles
from deploygen.load.yaml_source import display_path
from deploygen.paths import SCHEMA_PATH
from deploygen.secrets import looks_secret, secret_name
from deploygen.suggest import did_you_mean

# Missing this many required top-level sections, a profile without `extends` most likely forgot it.
FORGOTTEN_EXTENDS = 3
DEFAULT_ORIGIN = Origin("schema/profile.schema.json (default)")


@functools.cache
def profile_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _ecma_regex(pattern: str) -> re.Pattern[str]:
    """`pattern` as JSON Schema means it (ECMA-262): a final `$` matches only at the very end, where
    Python's `$` also matches before a trailing newline (so "name\\n" would pass `^[a-z]+$`)."""
    return re.compile(re.sub(r"(?<!\\)\$$", r"\\Z", pattern))


def _ecma_pattern(validator, pattern, instance, schema):  # noqa: ANN001, ANN202 - jsonschema's signature
    if validator.is_type(instance, "string") and not _ecma_regex(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # The schema itself is checked against the 2020-12 metaschema by the tests, not on every run.
    strict = jsonschema.validators.extend(
        jsonschema.Draft202012Validator,
        {"pattern": _ecma_pattern},
        # An integer field takes an integer: JSON Schema also counts 8.0, which would reach the command
        # line as `--tp-size 8.0`.
        type_checker=jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
            "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
        ),
    )
    return strict(_inline_refs(profile_schema()))


def _inline_refs(node: Any) -> Any:
    """The schema with every local $ref replaced by its definition: the same rules, validated without
    a reference lookup per field (our $defs have no cycles)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return {**_inline_refs(_resolve_ref(node)), **{k: _inline_refs(v) for k, v in node.items() if k != "$ref"}}
        return {k: _inline_refs(v) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(item) for item in node]
    return node


def _resolve_ref(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        name = node["$ref"].removeprefix("#/$defs/")
        node = {**profile_schema()["$defs"][name], **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _subschema(path: tuple) -> dict[str, Any] | None:
    node: dict[str, Any] | None = profile_schema()
    for part in path:
        node = _resolve_ref(node)
        props = node.get("properties", {})
        if part in props:
            node = props[part]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return None
    return _resolve_ref(node)


def schema_default(*path: str) -> Any:
    """The schema's default for a dotted field, e.g. schema_default("keepalive", "schedule")."""
    return (_subschema(path) or {}).get("default")


def apply_defaults(profile: ResolvedProfile) -> ResolvedProfile:
    """A copy of the profile with the schema's defaults filled in, recorded as coming from the schema."""
    data = copy.deepcopy(profile.data)
    origins = dict(profile.origins)

    def fill(node: dict[str, Any], schema: dict[str, Any], path: tuple) -> None:
        for key, sub in schema.get("properties", {}).items():
            sub = _resolve_ref(sub)
            if key not in node and "default" in sub:
                node[key] = copy.deepcopy(sub["default"])
                origins[(*path, key)] = DEFAULT_ORIGIN
            if isinstance(node.get(key), dict) and sub.get("type") == "object" and "properties" in sub:
                fill(node[key], sub, (*path, key))

    fill(data, profile_schema(), ())
    return dataclasses.replace(profile, data=data, origins=origins)


# What YAML 1.1 tools read as booleans and YAML 1.2 (this loader, the editor) reads as strings.
YAML11_BOOLEANS = {"yes", "no", "on", "off", "y", "n"}


def _value(instance: Any, path: tuple) -> str:
    """The value as a message shows it: never one that looks like a secret, or that sits under a secret's name."""
    secret = isinstance(instance, str) and (looks_secret(instance) or any(secret_name(str(p)) for p in path[-1:]))
    return "this value (not shown: it looks like a secret)" if secret else repr(instance)


def _describe(error: jsonschema.ValidationError) -> tuple[str, str]:
    """A message and a hint a user can act on, for one schema error."""
    validator = error.validator
    value = _value(error.instance, tuple(error.absolute_path))
    if validator == "additionalProperties":
        return "", ""  # reported per key by schema_problems
    if validator == "required":
        missing = error.message.split("'")[1]
        sub = _subschema((*error.absolute_path, missing)) or {}
        return f"missing required field {missing!r}", sub.get("description", "")
    if validator == "enum":
        return (
            f"{value} is not one of {', '.join(map(repr, error.validator_value))}",
            did_you_mean(error.instance, error.validator_value),
        )
    if validator == "const":
        return f"must be {error.validator_value!r}, not {value}", ""
    if validator == "type":
        expected = error.validator_value
        if expected == "object":
            return f"{value} is {_a(_json_type(error.instance))}, expected a mapping", _mapping_hint(error)
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        hint = ""
        if "boolean" in expected and isinstance(error.instance, str) and error.instance.lower() in YAML11_BOOLEANS:
            hint = "YAML 1.2 (this tool and the editor) reads yes/no/on/off as strings: write true or false"
        return f"{value} is {_a(_json_type(error.instance))}, expected {expected}", hint
    if validator in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        sub = _subschema(tuple(error.absolute_path)) or {}
        return error.message, sub.get("description", "")
    if validator == "pattern":
        sub = _subschema(tuple(error.absolute_path)) or {}
        return f"{value} is not a valid value", sub.get("description", "")
    if validator == "oneOf":
        sub = _subschema(tuple(error.absolute_path)) or {}
        return f"{value} is not a valid value", sub.get("description", "")
    if validator == "not":
        return f"{value} is not allowed here", "mount volumes on a dedicated path such as /model-cache"
    if validator in ("maxLength", "minLength"):
        sub = _subschema(tuple(error.absolute_path)) or {}
        size = ("long", "at most") if validator == "maxLength" else ("short", "at least")
        return f"{value} is too {size[0]}: {size[1]} {error.validator_value} characters", sub.get("description", "")
    return error.message, ""


def _mapping_hint(error: jsonschema.ValidationError) -> str:
    """How to write a section given as a string, e.g. `gpu: "B200:8"` -> `gpu: {type: B200, count: 8}`."""
    path = tuple(error.absolute_path)
    properties = list(_resolve_ref(error.schema).get("properties", {}))
    shape = re.fullmatch(r"\s*([A-Za-z0-9+!-]+)\s*[:x]\s*(\d+)\s*", str(error.instance))
    if path == ("gpu",) and shape:
        return f"write a mapping: `gpu: {{type: {shape[1]}, count: {shape[2]}}}`"
    return f"write a mapping with the keys {', '.join(properties)}" if properties else ""


def _elsewhere(key: str, path: tuple) -> list[str]:
    """The dotted fields named `key` in other sections of the schema: where a misplaced key belongs."""
    found = []

    def walk(node: dict[str, Any], at: tuple) -> None:
        node = _resolve_ref(node)
        for name, sub in node.get("properties", {}).items():
            here = (*at, name)
            if name == key and at != path:
                found.append(".".join(here))
            if isinstance(sub, dict) and len(here) < 4:
                walk(sub, here)

    walk(profile_schema(), ())
    return found


FLAG_MATRICES = ("sglang", "vllm")


def _option_name_hint(key: str) -> str:
    """`--context-length` or `context_length` in a flag matrix: the option name as the parser spells it."""
    name = key.lstrip("-").replace("_", "-").lower()
    return f"write the option name without leading dashes, with - between words: {name}"


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _json_type(value: Any) -> str:
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "list",
        dict: "mapping",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def schema_problems(profile: ResolvedProfile) -> list[Problem]:
    problems: list[Problem] = []
    missing_sections: list[str] = []
    for error in _validator().iter_errors(profile.data):
        path = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = list(error.schema.get("properties", {}))
            for key in sorted(set(error.instance) - set(allowed)):
                elsewhere = _elsewhere(key, path)
                hint = (
                    f"did you mean {' or '.join(elsewhere)}? (a key of that section, not of this level)"
                    if elsewhere
                    else did_you_mean(key, allowed) or f"allowed keys: {', '.join(allowed)}"
                )
                problems.append(
                    Problem(profile.origin((*path, key)), _dotted((*path, key)), f"unknown key {key!r}", hint)
                )
            continue
        if error.validator == "propertyNames" or "propertyNames" in error.relative_schema_path:
            # A bad key: blamed on the key's own line, not on the mapping that holds it.
            key = error.instance
            hint = (
                _option_name_hint(key)
                if path[-1:] and path[-1] in FLAG_MATRICES
                else (_subschema(path) or {}).get("description", "")
            )
            message = f"invalid key {_value(key, ())}"
            problems.append(Problem(profile.origin((*path, key)), _dotted((*path, key)), message, hint))
            continue
        if error.validator == "required" and not path and len(profile.sources) == 1:
            missing_sections.append(error.message.split("'")[1])
            continue
        message, hint = _describe(error)
        problems.append(Problem(profile.origin(path), _dotted(path), message, hint))
    if len(missing_sections) >= FORGOTTEN_EXTENDS:
        # Most of a profile missing: it was meant to build on another one.
        names = available_profiles()
        problems.append(
            Problem(
                Origin(display_path(profile.path), 1, 1),
                "",
                f"missing required sections: {', '.join(missing_sections)}",
                f"did you forget `extends:`? e.g. `extends: {names[0] if names else 'PARENT'}`; "
                f"profiles to build on: {', '.join(names)}",
            )
        )
    else:
        for missing in missing_sections:
            problems.append(
                Problem(
                    profile.origin(()),
                    "",
                    f"missing required field {missing!r}",
                    (_subschema((missing,)) or {}).get("description", ""),
                )
            )
    return sorted(problems, key=lambda p: (p.origin.file, p.origin.line, p.origin.column, p.path))


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path)
