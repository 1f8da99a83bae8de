"""The profile's SGLang flag matrix, checked against the pinned version's real parser catalog."""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from deploygen.errors import Origin, Problem, Severity
from deploygen.facts import read_data
from deploygen.load import ResolvedProfile
from deploygen.paths import DATA_DIR
from deploygen.sglang.catalog import (
    LAUNCH_SERVER,
    SGLANG_SERVE,
    Catalog,
    Flag,
    available_versions,
    catalog_version_for,
    entry_points,
    load_catalog,
    sglang_serve_since,
    ships_sglang_serve,
)
from deploygen.suggest import did_you_mean

DEPRECATED_VALUES_PATH = DATA_DIR / "sglang-deprecated-values.yaml"
RENAMES_PATH = DATA_DIR / "sglang-renames.yaml"
GENERATED_HOST = "0.0.0.0"
# Flags the generator writes from other sections; setting them in `sglang` would contradict those.
DERIVED = {
    "model-path": "model.path",
    "model": "model.path",
    "served-model-name": "model.name",
    "host": "(always 0.0.0.0 inside the container)",
    "port": "server.port",
    "api-key": "secrets.api_key (the name of a Modal secret holding API_KEY)",
    "nnodes": "gpu.nodes",
    "node-rank": "gpu.nodes (each container passes its own rank)",
    "dist-init-addr": "server.rendezvous_port (rank 0's cluster address is known only at start)",
    "nccl-init-addr": "server.rendezvous_port (rank 0's cluster address is known only at start)",
}
HUMAN_INT = "human_readable_int"
# Types whose argument SGLang parses as JSON.
JSON_TYPES = ("loads", "json_list_type")
# The codes of the warnings below, which a profile may acknowledge.
WARNING_CODES = ("sglang-deprecated-value", "sglang-deprecated-flag")
# What argparse takes for a negative number rather than an option (its _negative_number_matcher).
NEGATIVE_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


@functools.cache
def renames() -> dict[str, dict[str, str]]:
    return read_data(RENAMES_PATH)


def profile_catalog(profile: ResolvedProfile) -> tuple[Catalog | None, list[Problem]]:
    version = profile.get("image", "sglang_version")
    found = catalog_version_for(version) if isinstance(version, str) else None
    if found:
        return load_catalog(found), []
    problem = Problem(
        profile.origin(("image", "sglang_version")),
        "image.sglang_version",
        f"no flag catalog for SGLang {version}",
        f"catalogs exist for SGLang {available_versions()[0]} to {available_versions()[-1]} "
        f"(schema/sglang/index.json); add a newer release with `python generate.py catalog add {version}`",
        code="sglang-catalog",
    )
    return None, [problem]


def _unknown_hint(name: str, catalog: Catalog) -> str:
    rename = renames().get(name)
    if rename and f"--{rename['replacement'].split(':')[0]}" in catalog.by_option:
        when = f" since SGLang {rename['since']}" if "since" in rename else f" before SGLang {rename['until']}"
        return f"renamed{when}: use `{rename['replacement']}`"
    prefixed = [o for o in catalog.option_names() if o.startswith(name)]
    if len(prefixed) == 1:
        return f"`{name}` is only an abbreviation; write the full option `{prefixed[0]}`"
    return did_you_mean(name, catalog.option_names(), n=3, cutoff=0.75, quote="`")


def check_value(flag: Flag, value: Any) -> str:
    """Why a value does not fit a flag, or '' when it does."""
    # Before the bare-flag test: a BooleanOptionalAction has nargs 0 too, but `false` writes --no-NAME.
    if flag.is_boolean_optional:
        negative = next((o for o in flag.option_strings if o.startswith("--no-")), "--no-...")
        return "" if isinstance(value, bool) else f"takes true or false (false writes {negative}), not {value!r}"
    if not flag.takes_value:
        return (
            ""
            if isinstance(value, bool)
            else f"is a bare flag: write `true` (or `false` to leave it out), not {value!r}"
        )
    if isinstance(value, bool):
        return "takes a value; `true`/`false` only fit bare flags"
    if flag.nargs in ("+", "*"):
        if not isinstance(value, list):
            return f"takes a list of values, not {value!r}"
        if flag.nargs == "+" and not value:
            return "takes at least one value, not an empty list"
        return next((reason for item in value if (reason := _scalar_problem(flag, item))), "")
    if isinstance(value, list):
        return "takes one value, not a list"
    return _scalar_problem(flag, value)


def _scalar_problem(flag: Flag, value: Any) -> str:
    kind = (flag.type or "str").rsplit(".", 1)[-1]
    if kind == "int" and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"takes an integer, not {value!r}"
    if kind == HUMAN_INT and not (isinstance(value, int) and not isinstance(value, bool)):
        return f"takes an integer number of tokens, not {value!r}"
    if kind == "float" and not isinstance(value, (int, float)):
        return f"takes a number, not {value!r}"
    text = str(value)
    if kind in JSON_TYPES:
        try:
            json.loads(text)
        except ValueError as exc:
            return f"takes JSON, and {text!r} is not JSON ({exc.msg} at character {exc.pos})"
    # Whatever follows: argparse reads "--api-key=x y" and "-h x" as options too.
    if text.startswith("-") and len(text) > 1 and not NEGATIVE_NUMBER.match(text):
        return f"value {text!r} starts with '-', so SGLang's parser would read it as an option"
    if flag.choices is not None and value not in flag.choices and str(value) not in map(str, flag.choices):
        close = did_you_mean(value, flag.choices)
        hint = f" ({close})" if close else ""
        return f"{value!r} is not one of {', '.join(map(str, flag.choices))}{hint}"
    return ""


def flag_problems(profile: ResolvedProfile, catalog: Catalog) -> list[Problem]:
    problems: list[Problem] = []
    seen_dests: dict[str, str] = {}
    flags = profile.get("sglang", default={}) or {}
    for name, value in flags.items():
        path = ("sglang", name)
        origin = profile.origin(path)
        where = f"sglang.{name}"
        if name == "host" and str(value) == GENERATED_HOST:
            problems.append(
                Problem(
                    origin,
                    where,
                    f"--host {GENERATED_HOST} is what the generator writes anyway",
                    "remove it",
                    severity=Severity.INFO,
                    code="sglang-derived-flag",
                )
            )
            continue
        if name in DERIVED:
            problems.append(
                Problem(
                    origin,
                    where,
                    f"--{name} is set by the generator",
                    f"set {DERIVED[name]} instead",
                    code="sglang-derived-flag",
                )
            )
            continue
        flag = catalog.by_option.get(f"--{name}")
        if flag is None:
            problems.append(
                Problem(
                    origin,
                    where,
                    f"SGLang {catalog.version} has no option --{name}",
                    _unknown_hint(name, catalog),
                    code="sglang-unknown-flag",
                )
            )
            continue
        if flag.dest in seen_dests:
            problems.append(
                Problem(
                    origin,
                    where,
                    f"--{name} sets the same option as --{seen_dests[flag.dest]}",
                    "keep one of them",
                    code="sglang-duplicate-flag",
                )
            )
            continue
        seen_dests[flag.dest] = name
        reason = check_value(flag, value)
        if reason:
            problems.append(Problem(origin, where, f"--{name} {reason}", code="sglang-flag-value"))
        elif flag.action.endswith(".DeprecatedAction") and value is not False:
            # SGLang's DeprecatedAction raises ValueError(help) when the option is given: launch fails.
            problems.append(
                Problem(
                    origin,
                    where,
                    f"SGLang {catalog.version} refuses --{name} at launch: {flag.help}",
                    "remove it",
                    code="sglang-removed-flag",
                )
            )
        elif (alias := _deprecated_value(name, value, catalog)) is not None:
            problems.append(
                Problem(
                    origin,
                    where,
                    f"--{name} {value} is a deprecated alias in SGLang {catalog.version} (since {alias['since']})",
                    f"use `{name}: {alias['replacement']}`",
                    severity=Severity.WARNING,
                    code="sglang-deprecated-value",
                )
            )
        elif flag.deprecated:
            instead = _replacement(name, flag)
            problems.append(
                Problem(
                    origin,
                    where,
                    f"--{name} is deprecated in SGLang {catalog.version}",
                    f"use `{instead}`" if instead else "see `--help` of that version",
                    severity=Severity.WARNING,
                    code="sglang-deprecated-flag",
                )
            )
    return problems


@functools.cache
def deprecated_values() -> dict[str, dict[str, dict[str, str]]]:
    return read_data(DEPRECATED_VALUES_PATH)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _deprecated_value(name: str, value: object, catalog: Catalog) -> dict[str, str] | None:
    """The curated entry for a value SGLang keeps only as a deprecated alias in this version."""
    entry = deprecated_values().get(name, {}).get(str(value))
    if entry and _version_tuple(catalog.version) >= _version_tuple(str(entry["since"])):
        return entry
    return None


def _replacement(name: str, flag: Flag) -> str:
    """What to write instead of a deprecated flag: the curated rename (in profile syntax), else what
    SGLang's own deprecation names."""
    rename = renames().get(name, {})
    if "since" in rename:
        return rename["replacement"]
    return (flag.deprecation or {}).get("new_flag") or flag.replacement


def entry_point_problems(argv: list[str], version: str, origin: Origin | None = None) -> tuple[int, list[Problem]]:
    """How many leading tokens of an SGLang command line start the server, and what is wrong with them:
    `sglang serve` (a release whose wheel ships the `sglang` script) or `python3 -m sglang.launch_server`."""
    origin = origin or Origin("")
    if tuple(argv[:2]) == SGLANG_SERVE:
        if ships_sglang_serve(version):
            return 2, []
        scripts = ", ".join(entry_points(version)["console_scripts"]) or "none"
        message = (
            f"SGLang {version} has no `sglang serve` (its wheel's console scripts: {scripts}; `sglang serve` comes "
            f"with SGLang {sglang_serve_since()}): start it with `{' '.join(LAUNCH_SERVER)}`"
        )
        return 2, [Problem(origin, "", message, code="sglang-argv")]
    if len(argv) >= 3 and argv[0] in ("python", "python3") and tuple(argv[1:3]) == LAUNCH_SERVER[1:]:
        return 3, []
    shown = " ".join(argv[:3])
    message = f"{shown!r} does not start SGLang's server: use `{' '.join(SGLANG_SERVE)}` or `{' '.join(LAUNCH_SERVER)}`"
    return 0, [Problem(origin, "", message, code="sglang-argv")]


def argv_problems(
    argv: list[str], catalog: Catalog, *, compile_step: bool = False, origin: Origin | None = None
) -> list[Problem]:
    """Check a rendered command line token by token: exact option strings only, typed values."""
    origin = origin or Origin("")
    options = catalog.compile_by_option if compile_step else catalog.by_option
    what = "compile_deep_gemm" if compile_step else "launch_server"
    problems: list[Problem] = []
    index = 0
    while index < len(argv):
        token = argv[index]
        flag = options.get(token)
        if flag is None:
            problems.append(
                Problem(
                    origin,
                    "",
                    f"{what} of SGLang {catalog.version} has no option {token!r} (abbreviations are never accepted)",
                    code="sglang-argv",
                )
            )
            index += 1
            continue
        if not flag.takes_value or (flag.is_boolean_optional):
            index += 1
            continue
        # nargs + and * take every following token up to the next option.
        end = index + 2
        if flag.nargs in ("+", "*"):
            while end < len(argv) and argv[end] not in options:
                end += 1
        values = argv[index + 1 : end]
        if not values or values[0] in options:
            if flag.nargs != "*":
                problems.append(Problem(origin, "", f"{token} needs a value", code="sglang-argv"))
            index += 1
            continue
        for value in values:
            if flag.choices is not None and value not in map(str, flag.choices):
                problems.append(
                    Problem(
                        origin,
                        "",
                        f"{token} {value!r} is not one of {', '.join(map(str, flag.choices))}",
                        code="sglang-argv",
                    )
                )
        index = end
    return problems
