"""The profile's vLLM flag matrix (`vllm:`), checked against the pinned vLLM version's real parser catalog.

Profile syntax: option names without `--`; `true`/`false` for bare and BooleanOptional flags (`false`
writes the negative option, e.g. --no-enable-prefix-caching); a mapping for a JSON argument
(`speculative-config: {method: mtp, num_speculative_tokens: 3}`), or its keys one by one in vLLM's dotted
form (`speculative-config.method: mtp`), checked against the fields of the config dataclass vLLM validates
that JSON with.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from deploygen.errors import Origin, Problem
from deploygen.load import ResolvedProfile
from deploygen.suggest import did_you_mean
from deploygen.validate.flags import NEGATIVE_NUMBER
from deploygen.vllm.catalog import JsonField, VllmCatalog, VllmFlag, available_versions, load_catalog, version_key

# Flags the generator writes from other sections; setting them in `vllm` would contradict those.
DERIVED = {
    "model": "model.path",
    "served-model-name": "model.name",
    "host": "(always 0.0.0.0 inside the container)",
    "port": "server.port",
    "api-key": "secrets.api_key (the name of a Modal secret holding API_KEY)",
}
# vLLM's human_readable_int (vllm/utils/argparse_utils.py): 1k, 25.6k, 1M, 2G; lowercase k/m/g are decimal.
HUMAN_INT = re.compile(r"^\d+(\.\d+)?[kKmMgGtT]?$")
VERSION_PATH = ("image", "vllm_version")
# The codes of the warnings below, which a profile may acknowledge.
WARNING_CODES = ("vllm-deprecated-flag",)


def profile_vllm_catalog(profile: ResolvedProfile) -> tuple[VllmCatalog | None, list[Problem]]:
    version = profile.get(*VERSION_PATH)
    if isinstance(version, str) and version in available_versions():
        return load_catalog(version), []
    problem = Problem(
        profile.origin(VERSION_PATH),
        ".".join(VERSION_PATH),
        f"no flag catalog for vLLM {version}",
        f"supported versions: {', '.join(available_versions())}; add one with `python -m deploygen.vllm.extract "
        "--wheel <the vllm wheel>`",
        code="vllm-catalog",
    )
    return None, [problem]


def other_catalogs(catalog: VllmCatalog) -> list[VllmCatalog]:
    return [load_catalog(v) for v in available_versions() if v != catalog.version]


def _renamed_or_removed(name: str, catalog: VllmCatalog) -> str:
    """What another catalogued vLLM version says about an option this one lacks."""
    for other in other_catalogs(catalog):
        flag = other.by_option.get(f"--{name}")
        if flag is None:
            continue
        now = catalog.by_dest.get(flag.dest)
        if now is not None and f"--{name}" in flag.negative_option_strings:
            return f"vLLM {catalog.version} spells it `{now.positive[2:]}: false` (vLLM {other.version}: --{name})"
        newer = version_key(catalog.version) > version_key(other.version)
        if now is not None and now.option_strings[0].startswith("--"):
            verb = "renamed" if newer else "called differently"
            current = now.option_strings[0][2:]
            return f"{verb} in vLLM {catalog.version} (vLLM {other.version} calls it --{name}): use `{current}`"
        change = "removed" if newer else "added later"
        return f"{change}: vLLM {other.version} has --{name}, vLLM {catalog.version} does not"
    return ""


def unknown_hint(name: str, catalog: VllmCatalog) -> str:
    if f"-{name}" in catalog.by_option:  # -tp, -sc, -q: short aliases
        return (
            f"`-{name}` is a short alias; write the full option `{catalog.by_option[f'-{name}'].option_strings[0][2:]}`"
        )
    if "_" in name and f"--{name.replace('_', '-')}" in catalog.by_option:
        return f"write `{name.replace('_', '-')}` (vLLM turns underscores into dashes; the catalog spells it so)"
    if renamed := _renamed_or_removed(name, catalog):
        return renamed
    prefixed = [o for o in catalog.option_names() if o.startswith(name)]
    if len(prefixed) == 1:
        return f"`{name}` is only an abbreviation; write the full option `{prefixed[0]}`"
    return did_you_mean(name, catalog.option_names(), n=3, cutoff=0.75, quote="`")


def _scalar_problem(flag: VllmFlag, value: Any) -> str:
    kind = flag.type or "str"
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, bool | list | Mapping) and kind != "json":
        return f"takes one {kind} value, not {value!r}"
    if kind == "int" and not is_int:
        return f"takes an integer, not {value!r}"
    if kind == "float" and not isinstance(value, int | float):
        return f"takes a number, not {value!r}"
    if kind == "human_readable_int" and not (is_int or HUMAN_INT.match(str(value))):
        return f"takes an integer (or 64k, 1M style), not {value!r}"
    if kind == "human_readable_int_or_auto" and not (is_int or value == "auto" or HUMAN_INT.match(str(value))):
        return f"takes an integer (or 64k style, or auto), not {value!r}"
    text = str(value)
    # Whatever follows: argparse reads "--api-key=x y" and "-h x" as options too.
    if text.startswith("-") and len(text) > 1 and not NEGATIVE_NUMBER.match(text):
        return f"value {text!r} starts with '-', so vLLM's parser would read it as an option"
    accepted = flag.accepted_values
    if accepted is not None and text not in map(str, accepted):
        close = did_you_mean(text, accepted)
        return f"{value!r} is not one of {', '.join(map(str, accepted))}" + (f" ({close})" if close else "")
    return ""


def check_value(flag: VllmFlag, value: Any) -> str:
    """Why a value does not fit a vLLM flag, or '' when it does (JSON arguments: see json_problems)."""
    if flag.is_boolean_optional:
        return "" if isinstance(value, bool) else f"takes true or false (false writes {flag.negative}), not {value!r}"
    if not flag.takes_value:
        return (
            ""
            if isinstance(value, bool)
            else f"is a bare flag: write `true` (or `false` to leave it out), not {value!r}"
        )
    if isinstance(value, bool):
        return "takes a value; `true`/`false` only fit bare flags"
    if flag.nargs in ("+", "*"):
        values = value if isinstance(value, list) else [value]
        if flag.nargs == "+" and not values:
            return "takes at least one value, not an empty list"
        return next((reason for item in values if (reason := _scalar_problem(flag, item))), "")
    if isinstance(value, list):
        return "takes one value, not a list"
    if flag.type == "json":
        return "" if isinstance(value, Mapping) else _json_text_problem(value)
    return _scalar_problem(flag, value)


def _json_text_problem(value: Any) -> str:
    try:
        parsed = json.loads(str(value))
    except ValueError as exc:
        return f"takes JSON (or a mapping), and {str(value)!r} is not JSON ({exc.msg} at character {exc.pos})"
    return "" if isinstance(parsed, dict) else f"takes a JSON object, not {value!r}"


def json_value(value: Any) -> dict[str, Any] | None:
    """A JSON argument's keys as the profile gives them: a mapping, or JSON text of an object."""
    if isinstance(value, Mapping):
        return dict(value)
    try:
        parsed = json.loads(str(value))
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _field_problem(option: str, field: JsonField, value: Any) -> str:
    if field.choices is not None and value is not None and value not in field.choices:
        close = did_you_mean(value, field.choices)
        choices = ", ".join(map(str, field.choices))
        return f"{option}.{field.name} {value!r} is not one of {choices}" + (f" ({close})" if close else "")
    kind = field.type.split(" | ")[0].split("[")[0]
    if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)) and value is not None:
        return f"{option}.{field.name} takes an integer, not {value!r}"
    if kind == "bool" and not isinstance(value, bool) and value is not None:
        return f"{option}.{field.name} takes true or false, not {value!r}"
    if kind == "float" and not isinstance(value, int | float) and value is not None:
        return f"{option}.{field.name} takes a number, not {value!r}"
    return ""


def json_problems(option: str, keys: dict[str, Any], catalog: VllmCatalog, flag: VllmFlag) -> list[str]:
    """Keys of a JSON argument that its config dataclass does not have, or values it refuses."""
    fields = catalog.json_fields(flag)
    if fields is None:
        return []
    reasons = []
    for key, value in keys.items():
        field = fields.get(key) or fields.get(key.replace("-", "_"))
        if field is None:
            close = did_you_mean(key, fields, cutoff=0.75, quote="`")
            reasons.append(f"{option} has no key {key!r} in vLLM {catalog.version}" + (f"; {close}" if close else ""))
        elif reason := _field_problem(option, field, value):
            reasons.append(reason)
    return reasons


def _deprecation_hint(flag: VllmFlag) -> str:
    match = re.search(r"(?:use|in favou?r of|replaced by)\s+[`'\"]?(--[a-z0-9-]+[.a-z0-9_]*)", flag.help, re.IGNORECASE)
    return f"use `{match.group(1)[2:]}`" if match else "see `vllm serve --help=all` of that version"


def vllm_flag_problems(profile: ResolvedProfile, catalog: VllmCatalog) -> list[Problem]:
    problems: list[Problem] = []
    seen_dests: dict[str, str] = {}
    dotted: dict[str, list[str]] = {}
    flags = profile.get("vllm", default={}) or {}
    for name, value in flags.items():
        path = ("vllm", name)
        origin = profile.origin(path)
        where = f"vllm.{name}"

        def problem(message: str, hint: str = "", code: str = "vllm-flag-value", severity: str = "error") -> None:
            problems.append(Problem(origin, where, message, hint, severity=severity, code=code))  # noqa: B023

        base, _, key = name.partition(".")
        if base in DERIVED:
            problem(f"--{base} is set by the generator", f"set {DERIVED[base]} instead", "vllm-derived-flag")
            continue
        flag = catalog.by_option.get(f"--{base}")
        if flag is None:
            problem(f"vLLM {catalog.version} has no option --{base}", unknown_hint(base, catalog), "vllm-unknown-flag")
            continue
        if key:
            if flag.type != "json":
                problem(f"--{base} takes no JSON, so `{base}.{key}` means nothing", f"write `{base}: <value>`")
                continue
            dotted.setdefault(flag.dest, []).append(name)
            for reason in json_problems(f"--{base}", {key: value}, catalog, flag):
                problem(reason)
            continue
        if f"--{base}" in flag.negative_option_strings:
            positive = flag.positive.removeprefix("--")
            problem(f"--{base} is the negative spelling of --{positive}", f"write `{positive}: false`", "vllm-alias")
            continue
        if flag.dest in seen_dests:
            problem(
                f"--{base} sets the same option as --{seen_dests[flag.dest]}", "keep one of them", "vllm-duplicate-flag"
            )
            continue
        seen_dests[flag.dest] = base
        if base != flag.positive.removeprefix("--"):
            problem(f"--{base} is an alias", f"write the canonical `{flag.positive[2:]}`", "vllm-alias")
        if reason := check_value(flag, value):
            problem(f"--{base} {reason}")
        elif flag.type == "json" and (keys := json_value(value)) is not None:
            for reason in json_problems(f"--{base}", keys, catalog, flag):
                problem(reason)
        if flag.deprecated and value is not False:
            message = f"--{base} is deprecated in vLLM {catalog.version}"
            problem(message, _deprecation_hint(flag), "vllm-deprecated-flag", "warning")
    for dest, names in dotted.items():
        flag = catalog.by_dest[dest]
        whole = next((n for n in flags if n in {o[2:] for o in flag.option_strings}), None)
        if whole is not None:
            # FlexibleArgumentParser appends the dotted keys as one more --flag JSON: it replaces the whole one.
            problems.append(Problem(profile.origin(("vllm", names[0])), f"vllm.{names[0]}",
                                    f"--{whole} is set whole and by keys; vLLM would keep only the keys",
                                    f"move `{names[0]}` into `{whole}`", code="vllm-duplicate-flag"))  # fmt: skip
    return problems


def vllm_argv_problems(argv: list[str], catalog: VllmCatalog, origin: Origin | None = None) -> list[Problem]:
    """Check a rendered `vllm serve` command line (after `vllm serve MODEL`) token by token: exact option
    strings only (no abbreviation, no underscore spelling), values of the right kind and choices."""
    origin = origin or Origin("")
    problems: list[Problem] = []

    def problem(message: str) -> None:
        problems.append(Problem(origin, "", message, code="vllm-argv"))

    index = 0
    while index < len(argv):
        token = argv[index]
        option, has_inline, inline = token.partition("=")
        base, _, key = option.partition(".")
        flag = catalog.by_option.get(base)
        if flag is None or (key and flag.type != "json"):
            problem(f"vllm serve of vLLM {catalog.version} has no option {token!r} (abbreviations are never accepted)")
            index += 1
            while index < len(argv) and not argv[index].startswith("-"):  # its values
                index += 1
            continue
        if not flag.takes_value:
            if has_inline:
                problem(f"{base} takes no value, not {inline!r}")
            index += 1
            continue
        if has_inline:
            values, end = [inline], index + 1
        else:
            end = index + 2
            if flag.nargs in ("+", "*"):
                while end < len(argv) and argv[end].partition("=")[0].partition(".")[0] not in catalog.by_option:
                    end += 1
            values = argv[index + 1 : end]
        if not values or values[0].partition("=")[0].partition(".")[0] in catalog.by_option:
            problem(f"{token} needs a value")
            index += 1
            continue
        for value in values:
            if key:
                keys = {key: _loads_or_text(value)}
                reasons = json_problems(base, keys, catalog, flag)
            elif flag.type == "json":
                reasons = [_json_text_problem(value)]
                if not reasons[0] and (parsed := json_value(value)) is not None:
                    reasons = json_problems(base, parsed, catalog, flag)
            else:
                reasons = [_scalar_problem(flag, _loads_number(value, flag))]
            for reason in filter(None, reasons):
                problem(f"{token}: {reason}")
        index = end
    return problems


def _loads_or_text(text: str) -> Any:
    """A dotted key's value as FlexibleArgumentParser reads it: JSON if it parses, else the text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _loads_number(text: str, flag: VllmFlag) -> Any:
    """A command-line token as the converter of an int or float flag reads it."""
    converters = {"int": int, "float": float}
    try:
        return converters[flag.type or ""](text)
    except (KeyError, ValueError):
        return text
