"""The flag catalog of one vLLM version, read from schema/vllm/<version>.json.

The catalogs are extracted from `vllm serve`'s own parser (deploygen.vllm.extract), so every check here
is against the real flag set, never a hand-written list.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploygen.paths import ROOT
from deploygen.sglang.catalog import Flag

CATALOG_DIR = ROOT / "schema" / "vllm"
ENABLE_DISABLE = "custom:vllm.utils.argparse_utils.EnableDisableAction"


@dataclass(frozen=True)
class VllmFlag(Flag):
    """A `vllm serve` option. `type` is the kind of value vLLM's converter takes: int, float, str, json,
    human_readable_int, human_readable_int_or_auto."""

    optional: bool = False
    json_class: str | None = None
    metavar: Any = None
    negative_option_strings: tuple[str, ...] = ()
    hidden_option_strings: tuple[str, ...] = ()

    @property
    def takes_value(self) -> bool:
        return self.nargs != 0

    @property
    def is_boolean_optional(self) -> bool:
        return self.action in ("BooleanOptionalAction", ENABLE_DISABLE)

    @property
    def negative(self) -> str:
        """The option that sets a BooleanOptional flag to false, as vLLM's help shows it."""
        visible = [o for o in self.option_strings if o in self.negative_option_strings]
        return (visible or sorted(self.negative_option_strings) or ["--no-" + self.option_strings[0][2:]])[0]

    @property
    def positive(self) -> str:
        return next(o for o in self.option_strings if o not in self.negative_option_strings)

    @property
    def accepted_values(self) -> tuple[Any, ...] | None:
        """argparse's choices, or the values a metavar lists (vLLM validates --kv-cache-dtype that way)."""
        if self.choices is not None:
            return tuple(c for c in self.choices if c is not None)
        if isinstance(self.metavar, list):
            return tuple(self.metavar)
        return None


@dataclass(frozen=True)
class JsonField:
    name: str
    type: str
    choices: tuple[Any, ...] | None
    default: Any


@dataclass(frozen=True)
class VllmCatalog:
    version: str
    path: Path
    flags: tuple[VllmFlag, ...]
    json_arguments: dict[str, dict[str, JsonField]]
    tool_call_parsers: tuple[str, ...]
    reasoning_parsers: tuple[str, ...]
    allow_abbrev: bool

    @functools.cached_property
    def by_option(self) -> dict[str, VllmFlag]:
        """Every option string the parser accepts exactly, hidden ones (--no-enable-x) included."""
        return {o: flag for flag in self.flags for o in (*flag.option_strings, *flag.hidden_option_strings)}

    @functools.cached_property
    def by_dest(self) -> dict[str, VllmFlag]:
        return {flag.dest: flag for flag in self.flags}

    def option_names(self) -> list[str]:
        return [o.removeprefix("--") for o in self.by_option if o.startswith("--")]

    def json_fields(self, flag: VllmFlag) -> dict[str, JsonField] | None:
        return next((self.json_arguments[o] for o in flag.option_strings if o in self.json_arguments), None)


def available_versions() -> list[str]:
    return sorted((p.stem for p in CATALOG_DIR.glob("*.json")), key=version_key)


def version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


def _flag(entry: dict[str, Any]) -> VllmFlag:
    choices = entry.get("choices")
    value = entry.get("value_type") or {}
    return VllmFlag(
        option_strings=tuple(entry["option_strings"]),
        dest=entry["dest"],
        action=entry["action"],
        type=value.get("kind") if entry.get("nargs") != 0 else None,
        nargs=entry.get("nargs"),
        choices=tuple(choices) if choices is not None else None,
        default=entry.get("default"),
        help=entry.get("help") or "",
        deprecation=entry.get("deprecation"),
        optional=bool(value.get("optional")),
        json_class=value.get("dataclass"),
        metavar=entry.get("metavar"),
        negative_option_strings=tuple(entry.get("negative_option_strings") or ()),
        hidden_option_strings=tuple(entry.get("hidden_option_strings") or ()),
    )


@functools.cache
def load_catalog(version: str) -> VllmCatalog:
    path = CATALOG_DIR / f"{version}.json"
    data = json.loads(path.read_text())
    flags = tuple(_flag(e) for e in data["flags"] if e["action"] != "help" and e["option_strings"])
    json_arguments = {
        option: {
            name: JsonField(name, spec["type"], tuple(spec["choices"]) if spec["choices"] else None, spec["default"])
            for name, spec in schema["fields"].items()
        }
        for option, schema in data.get("json_arguments", {}).items()
    }
    return VllmCatalog(
        version=data["vllm_version"],
        path=path,
        flags=flags,
        json_arguments=json_arguments,
        tool_call_parsers=tuple(data.get("registered_tool_call_parsers", ())),
        reasoning_parsers=tuple(data.get("registered_reasoning_parsers", ())),
        allow_abbrev=bool(data.get("allow_abbrev", True)),
    )
