"""Code shared by the vLLM stand-in: the flag catalog, the `vllm serve` parser rebuilt from it, env knobs, logs.

The parser is rebuilt from schema/vllm/<version>.json (captured from `vllm serve`'s own parser), including
what vLLM's FlexibleArgumentParser does before argparse sees the arguments (underscores to dashes, dotted
`--json-arg.key value` folded into one JSON argument), so a command line vLLM rejects is rejected here too,
with argparse's message and exit code 2. Standard library only: tests run it as a real process.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

CATALOG_DIR = Path(__file__).resolve().parents[3] / "schema" / "vllm"
DEFAULT_VERSION = "0.33.0"


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def fault() -> str:
    return os.environ.get("STANDIN_FAULT", "").strip()


# --- catalog -------------------------------------------------------------------------------------


def requested_version() -> str:
    return os.environ.get("STANDIN_VLLM_VERSION", "").strip() or DEFAULT_VERSION


def catalog_path(version: str) -> Path:
    path = CATALOG_DIR / f"{version}.json"
    if not path.is_file():
        known = sorted(p.stem for p in CATALOG_DIR.glob("*.json"))
        raise RuntimeError(f"vLLM stand-in: no catalog for version {version!r} in {CATALOG_DIR} (have {known})")
    return path


@functools.cache
def load_catalog(version: str) -> dict:
    return json.loads(catalog_path(version).read_text())


# --- argparse types and actions, behaving like vLLM's (vllm/utils/argparse_utils.py, engine/arg_utils.py) ---


def human_readable_int(value: str) -> int:
    """'1k' -> 1000, '1K' -> 1024, '25.6k' -> 25600; plain integers pass through."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if not match:
        return int(value)
    number, suffix = match.groups()
    decimal = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
    if suffix in decimal:
        return int(float(number) * decimal[suffix])
    binary = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        return int(number) * binary[suffix]
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"Decimals are not allowed with binary suffixes like {suffix}. "
            f"Did you mean to use {number}{suffix.lower()} instead?"
        ) from e


def human_readable_int_or_auto(value: str) -> int:
    if value.strip().lower() in ("auto", "-1"):
        return -1
    return human_readable_int(value)


# How vLLM's parse_type names the function it wraps when a value does not convert (memory address dropped).
WRAPPED_NAMES = {"int": "<class 'int'>", "float": "<class 'float'>", "str": "<class 'str'>", "json": "<function loads>"}


def _converter(kind: str, wrapped: bool):
    """The value converter for a catalog value kind. vLLM wraps optional and JSON converters in parse_type,
    which turns a ValueError into "Value x cannot be converted to ..."; bare int/float are argparse's own."""
    base = {
        "int": int,
        "float": float,
        "str": str,
        "json": json.loads,
        "human_readable_int": human_readable_int,
        "human_readable_int_or_auto": human_readable_int_or_auto,
        "parse_reasoning_parser": lambda v: "" if v.lower() == "none" else v,
        "union_dict_and_str": lambda v: json.loads(v) if re.match(r"(?s)^\s*{.*}\s*$", v) else v,
    }.get(kind, str)

    def convert(value: str):
        if not wrapped:
            return base(value)
        try:
            return base(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"Value {value} cannot be converted to {WRAPPED_NAMES[kind]}.") from e

    convert.__name__ = kind
    return convert


class EnableDisableAction(argparse.Action):
    """vLLM's BooleanOptionalAction: --x / --no-x, and --enable-x / --disable-x pairs."""

    def __init__(self, option_strings, dest, negative=(), **kwargs):
        self.negative = set(negative)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.negative)


class JsonDataclassType:
    """A JSON argument that vLLM validates against a config dataclass while parsing (pydantic TypeAdapter)."""

    def __init__(self, class_name: str, fields: dict, optional: bool):
        self.class_name = class_name.rsplit(".", 1)[-1]
        self.fields = fields
        self.optional = optional
        self.__name__ = "parse_dataclass"

    def __call__(self, value: str):
        if self.optional and value in ("", "None"):
            return None
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"1 validation error for {self.class_name}\n  Invalid JSON: {e}") from e
        problems = json_field_problems(parsed, self.fields)
        if problems:
            raise argparse.ArgumentTypeError(
                f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} for {self.class_name}\n"
                + "\n".join(problems)
            )
        return parsed


def json_field_problems(value: Any, fields: dict) -> list[str]:
    """pydantic-style errors for a JSON object checked against a dataclass's fields (extra keys forbidden)."""
    if not isinstance(value, dict):
        return [f"  Input should be a dictionary [type=dict_type, input_value={value!r}]"]
    problems = []
    for key, item in value.items():
        field = fields.get(key)
        if field is None:
            problems.append(
                f"{key}\n  Unexpected keyword argument [type=unexpected_keyword_argument, input_value={item!r}]"
            )
        elif field["choices"] and item is not None and item not in field["choices"]:
            expected = ", ".join(repr(c) for c in field["choices"])
            problems.append(f"{key}\n  Input should be {expected} [type=literal_error, input_value={item!r}]")
        elif (
            field["type"].split(" | ")[0] == "int"
            and item is not None
            and not (isinstance(item, int) and not isinstance(item, bool))
        ):
            problems.append(f"{key}\n  Input should be a valid integer [type=int_type, input_value={item!r}]")
    return problems


class ObjectDefault:
    """A default that the catalog holds as the repr of a config object (EPLBConfig(...))."""

    def __init__(self, text: str):
        self.text = text

    def __eq__(self, other: object) -> bool:
        return other == self.text or (isinstance(other, ObjectDefault) and other.text == self.text)

    def __hash__(self) -> int:
        return hash(self.text)

    def __repr__(self) -> str:
        return self.text


# --- the parser ------------------------------------------------------------------------------------


class FlexibleArgumentParser(argparse.ArgumentParser):
    """What vLLM's FlexibleArgumentParser.parse_args does before argparse: `--a_b` -> `--a-b` (up to the
    first dot), `--json-arg.key value` folded into one `--json-arg '{"key": value}'` appended at the end."""

    def parse_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        processed = []
        for arg in args:
            if arg.startswith("--"):
                key, eq, value = arg.partition("=")
                head, dot, rest = key[2:].partition(".")
                processed.append("--" + head.replace("_", "-") + dot + rest + eq + value)
            else:
                processed.append(arg)
        folded: dict[str, dict] = defaultdict(dict)
        kept, skip = [], set()
        for i, arg in enumerate(processed):
            if i in skip:
                continue
            key = arg.partition("=")[0]
            if arg.startswith("-") and "." in key:
                if "=" in arg:
                    key, value_text = arg.split("=", 1)
                elif i + 1 < len(processed):
                    value_text = processed[i + 1]
                    skip.add(i + 1)
                else:
                    kept.append(arg)  # argparse reports it
                    continue
                base, *keys = key.split(".")
                try:
                    value = json.loads(value_text)
                except ValueError:
                    try:
                        value = human_readable_int(value_text)
                    except (ValueError, argparse.ArgumentTypeError):
                        value = value_text
                node = folded[base]
                for part in keys[:-1]:
                    node = node.setdefault(part, {})
                node[keys[-1]] = value
                continue
            kept.append(arg)
        for base, value in folded.items():
            kept += [base, json.dumps(value)]
        return super().parse_args(kept, namespace)


def add_flag(parser: argparse.ArgumentParser, flag: dict, json_arguments: dict) -> None:
    """Register one catalog entry as vLLM registered it (same option strings, dest, order)."""
    action = flag["action"]
    options = [*flag["option_strings"], *flag.get("hidden_option_strings", [])]
    help_text = argparse.SUPPRESS if flag["help"] == argparse.SUPPRESS else flag["help"]
    common = {"dest": flag["dest"], "help": help_text, "required": flag["required"]}
    if flag["metavar"] is not None:
        common["metavar"] = flag["metavar"]  # a list stays a list: argparse prints it, as for vLLM
    name = action.rsplit(".", 1)[-1]
    if action == "help":
        parser.add_argument(*options, action="help", help=help_text)
    elif action in ("store_true", "store_false"):
        parser.add_argument(*options, action=action, default=flag["default"], **common)
    elif name in ("EnableDisableAction", "BooleanOptionalAction"):
        negative = flag.get("negative_option_strings") or [o for o in options if o.startswith("--no-")]
        parser.add_argument(*options, action=EnableDisableAction, negative=negative, default=flag["default"], **common)
    elif name == "append":
        parser.add_argument(*options, action="append", default=flag["default"], **common)
    else:  # store, and vLLM's custom value actions (LoRAParserAction, DeprecatedLogConfigFileAction): store
        value = flag.get("value_type") or {"kind": "str", "optional": False}
        schema = next((json_arguments[o] for o in flag["option_strings"] if o in json_arguments), None)
        if "dataclass" in value and schema is not None:
            converter = JsonDataclassType(value["dataclass"], schema["fields"], value["optional"])
        else:
            wrapped = value["kind"] in WRAPPED_NAMES and (value["optional"] or value["kind"] == "json")
            converter = _converter(value["kind"], wrapped)
        default = flag["default"]
        if isinstance(default, str) and value["kind"] in ("json", "union_dict_and_str"):
            default = ObjectDefault(default)  # vLLM's default is a config object; argparse must not parse it
        kwargs = {"nargs": flag["nargs"], "default": default, "choices": flag["choices"], "type": converter}
        if flag["const"] is not None:
            kwargs["const"] = flag["const"]
        if flag["option_strings"]:
            parser.add_argument(*options, **kwargs, **common)
        else:  # the positional model_tag
            common.pop("required")
            parser.add_argument(common.pop("dest"), **kwargs, **common)


def build_parser(catalog: dict, *, allow_abbrev: bool | None = None) -> argparse.ArgumentParser:
    """`vllm serve`'s parser. allow_abbrev stays as vLLM's (True: "--gpu-memory 0.9" is accepted) unless given."""
    parser = FlexibleArgumentParser(
        prog=catalog["parser_prog"],
        usage="vllm serve [model_tag] [options]",
        add_help=False,
        allow_abbrev=catalog.get("allow_abbrev", True) if allow_abbrev is None else allow_abbrev,
    )
    for flag in catalog["flags"]:
        add_flag(parser, flag, catalog.get("json_arguments", {}))
    return parser


# --- logs: vLLM's format on stdout/stderr, uvicorn's access log, one flushed line each -----------------


def log(message: str, *, process: str = "APIServer", level: str = "INFO", where: str = "api_server.py:1") -> None:
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"({process} pid={os.getpid()}) {level} {stamp} [{where}] {message}", file=sys.stderr, flush=True)


def uvicorn_log(message: str) -> None:
    """uvicorn's own lines, behind vLLM's process prefix."""
    print(f"(APIServer pid={os.getpid()}) INFO:     {message}", file=sys.stderr, flush=True)


def access_log(client: str, request_line: str, status: str) -> None:
    print(f'(APIServer pid={os.getpid()}) INFO:     {client} - "{request_line}" {status}', flush=True)
