"""The flag catalog of one SGLang version, read from schema/sglang/<version>.json.

The catalogs are extracted from SGLang's own argparse parser (deploygen.sglang.extract), so every check
here is against the real flag set, never a hand-written list. schema/sglang/index.json lists every release
(deploygen.sglang.add_release adds one): which catalog describes it (a post-release whose parser is the same
as its release's shares that catalog), the wheel it was extracted from, and its entry points.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploygen.paths import CATALOG_DIR

INDEX_PATH = CATALOG_DIR / "index.json"
# `lmsysorg/sglang:v0.5.10.post1-cu130`, optionally `@sha256:...`: the release the tag names.
RELEASE_TAG = re.compile(r"lmsysorg/sglang:v(\d+\.\d+\.\d+(?:\.post\d+)?)(?:-[\w.-]+)?(?:@sha256:[0-9a-f]{64})?")
BOOLEAN_ACTIONS = ("store_true", "store_false")


@dataclass(frozen=True)
class Flag:
    option_strings: tuple[str, ...]
    dest: str
    action: str
    type: str | None
    nargs: Any
    choices: tuple | None
    default: Any
    help: str
    deprecation: Any

    @property
    def takes_value(self) -> bool:
        return self.nargs != 0 and self.action not in BOOLEAN_ACTIONS and "StoreTrue" not in self.action

    @property
    def is_boolean_optional(self) -> bool:
        return self.action == "BooleanOptionalAction"

    @property
    def deprecated(self) -> bool:
        return bool(self.deprecation) or "Deprecated" in self.action

    @property
    def replacement(self) -> str:
        """What the help text says to use instead of a deprecated flag, if it says."""
        match = re.search(
            r"(?:use|Please use|in favor of|replaced by)\s+['`\"]?(--[a-z0-9-]+(?:\s+[a-z0-9_]+)?)",
            self.help or "",
            re.IGNORECASE,
        )
        return match.group(1) if match else ""


@dataclass(frozen=True)
class Catalog:
    version: str
    path: Path
    flags: tuple[Flag, ...]
    compile_only: tuple[Flag, ...]

    @functools.cached_property
    def by_option(self) -> dict[str, Flag]:
        return {option: flag for flag in self.flags for option in flag.option_strings}

    @functools.cached_property
    def compile_by_option(self) -> dict[str, Flag]:
        extra = {option: flag for flag in self.compile_only for option in flag.option_strings}
        return {**self.by_option, **extra}

    def option_names(self) -> list[str]:
        return [o.removeprefix("--") for o in self.by_option if o.startswith("--")]


def version_key(version: str) -> tuple[int, ...]:
    """0.5.10 < 0.5.10.post1 < 0.5.11."""
    return tuple(int(part) for part in re.findall(r"\d+", version))


@functools.cache
def release_index() -> dict[str, Any]:
    if not INDEX_PATH.is_file():
        return {"releases": {}}
    return json.loads(INDEX_PATH.read_text())


def available_versions() -> list[str]:
    """Every release with a catalog, oldest first."""
    return list(release_index()["releases"])


def catalog_version_for(version: str) -> str | None:
    """The catalog that describes an SGLang release: its own, or the one its parser matches (0.5.10.post1: 0.5.10)."""
    record = release_index()["releases"].get(version)
    return record["catalog"] if record else None


def release_of_image(image: str) -> str | None:
    """The release an `lmsysorg/sglang:vX...` image names, if it names one that has a catalog."""
    match = RELEASE_TAG.fullmatch(image)
    return match.group(1) if match and match.group(1) in release_index()["releases"] else None


def entry_points(version: str) -> dict[str, Any]:
    """The console scripts of that release's wheel and the `sglang` script's subcommands (`serve`...)."""
    record = release_index()["releases"][version]
    return {"console_scripts": record["console_scripts"], "sglang_subcommands": record["sglang_subcommands"]}


# The two ways to start SGLang's server. `sglang serve` is the recommended one (sglang PR #40647: `python -m
# sglang.launch_server` "is still supported" with a warning); it is the `sglang` console script of the wheels
# from 0.5.5 on, whose subcommand `serve` parses the same ServerArgs (sglang/cli/serve.py).
SGLANG_SERVE = ("sglang", "serve")
LAUNCH_SERVER = ("python3", "-m", "sglang.launch_server")


def ships_sglang_serve(version: str) -> bool:
    """Whether that release's wheel has the `sglang` console script with its `serve` subcommand."""
    points = entry_points(version)
    return "sglang" in points["console_scripts"] and "serve" in points["sglang_subcommands"]


def sglang_serve_since() -> str:
    """The oldest catalogued release that ships `sglang serve` (the index lists releases oldest first)."""
    return next(version for version in available_versions() if ships_sglang_serve(version))


def serve_command(version: str) -> tuple[str, ...]:
    """The recommended command that starts the server of that release: `sglang serve` where it ships."""
    return SGLANG_SERVE if ships_sglang_serve(version) else LAUNCH_SERVER


def _flag(entry: dict[str, Any]) -> Flag:
    choices = entry.get("choices")
    return Flag(
        option_strings=tuple(entry["option_strings"]),
        dest=entry["dest"],
        action=entry["action"],
        type=entry.get("type"),
        nargs=entry.get("nargs"),
        choices=tuple(choices) if choices is not None else None,
        default=entry.get("default"),
        help=entry.get("help") or "",
        deprecation=entry.get("deprecation"),
    )


@functools.cache
def load_catalog(version: str) -> Catalog:
    path = CATALOG_DIR / f"{version}.json"
    data = json.loads(path.read_text())
    flags = tuple(_flag(e) for e in data["flags"] if e["action"] != "help")
    compile_only = tuple(_flag(e) for e in data.get("compile_deep_gemm", {}).get("flags_not_in_launch_server", []))
    return Catalog(version, path, flags, compile_only)
