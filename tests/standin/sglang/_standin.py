"""Code shared by the stand-in's entry points: the flag catalog, the CLI parser built from it, env knobs, logs.

The parser is rebuilt from schema/sglang/<version>.json (captured from SGLang's own argparse parser), so a
flag SGLang rejects is rejected here too, with argparse's own message and exit code 2.
Standard library only: tests run it as a real process, without torch or a GPU.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

CATALOG_DIR = Path(__file__).resolve().parents[3] / "schema" / "sglang"
DEFAULT_VERSION = "0.5.10"

# ServerArgs.from_cli_args copies these CLI dests onto the dataclass fields that ServerArgs repr shows.
FIELD_RENAMES = {
    "tensor_parallel_size": "tp_size",
    "pipeline_parallel_size": "pp_size",
    "data_parallel_size": "dp_size",
    "expert_parallel_size": "ep_size",
}


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "")
    return float(value) if value.strip() else default


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    return int(value) if value.strip() else default


def fault() -> str:
    return os.environ.get("STANDIN_FAULT", "").strip()


# --- per-phase knobs -------------------------------------------------------------------------------

# loading: flags parsed, rendezvous and weights not done, no port; starting: listening, /health 503;
# serving: /health 200 (the lifecycle's warmup requests arrive in this phase).
PHASES = ("loading", "starting", "serving")


def per_phase(name: str, default: float) -> dict[str, float]:
    """A knob like "0.1" (every phase) or "0.1,loading:inf,serving:3" (a default, then phase:value pairs)."""
    parts = [part.strip() for part in os.environ.get(name, "").split(",") if part.strip()]
    bare = [part for part in parts if ":" not in part]
    values = dict.fromkeys(PHASES, float(bare[-1]) if bare else default)
    for phase, _, value in (part.partition(":") for part in parts if ":" in part):
        if phase not in PHASES:
            raise RuntimeError(f"SGLang stand-in: {name}: unknown phase {phase!r} (phases: {', '.join(PHASES)})")
        values[phase] = float(value)
    return values


def thinking_mode() -> str:
    """on: the model thinks unless enable_thinking is false; off: only when it is true; never: no thinking mode."""
    mode = os.environ.get("STANDIN_THINKING", "").strip() or "on"
    if mode not in ("on", "off", "never"):
        raise RuntimeError(f"SGLang stand-in: STANDIN_THINKING must be on, off or never, not {mode!r}")
    return mode


# --- catalog -------------------------------------------------------------------------------------


def requested_version() -> str:
    return os.environ.get("STANDIN_SGLANG_VERSION", "").strip() or DEFAULT_VERSION


def catalog_path(version: str) -> Path:
    # A .postN build shares its release's flags (same rule as deploygen.sglang.catalog).
    for candidate in (version, re.sub(r"\.post\d+$", "", version)):
        path = CATALOG_DIR / f"{candidate}.json"
        if path.is_file():
            return path
    known = sorted(p.stem for p in CATALOG_DIR.glob("*.json"))
    raise RuntimeError(f"SGLang stand-in: no catalog for version {version!r} in {CATALOG_DIR} (have {known})")


@functools.cache
def load_catalog(version: str) -> dict:
    return json.loads(catalog_path(version).read_text())


# --- argparse types and actions, named and behaving like SGLang's (argparse quotes the type's name) ----


def human_readable_int(value):
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


def json_list_type(value):
    try:
        return json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"Invalid JSON list: {value}. Please provide a valid JSON list.") from e


def nullable_str(val):
    if not val or val == "None":
        return None
    return val


def parse_cuda_graph_backend_arg(value):
    # SGLang 0.5.23 names the retired backend instead of a bare "invalid choice".
    if value == "tc_piecewise":
        raise argparse.ArgumentTypeError("tc_piecewise was removed; select breakable, full, or disabled")
    return value


def parse_cuda_graph_config_arg(value):
    try:
        config = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"--cuda-graph-config must be a JSON object: {value}") from e
    if not isinstance(config, dict):
        raise argparse.ArgumentTypeError(f"--cuda-graph-config must be a JSON object: {value}")
    for phase in config.values():
        if isinstance(phase, dict):
            if phase.get("backend") == "tc_piecewise":
                parse_cuda_graph_backend_arg("tc_piecewise")
            if "tc_compiler" in phase:
                raise argparse.ArgumentTypeError("tc_compiler was removed from --cuda-graph-config")
    return config


# Keyed by the last part of the catalog's dotted name: SGLang moves these between modules across releases.
TYPES = {
    "str": str,
    "int": int,
    "float": float,
    "loads": json.loads,
    "human_readable_int": human_readable_int,
    "json_list_type": json_list_type,
    "nullable_str": nullable_str,
    "parse_cuda_graph_backend_arg": parse_cuda_graph_backend_arg,
    "parse_cuda_graph_config_arg": parse_cuda_graph_config_arg,
}


def print_deprecated_warning(message: str) -> None:
    # SGLang logs this before its logger is configured, so Python's last-resort handler prints the bare text.
    print(f"\033[1;33m{message}\033[0m", file=sys.stderr, flush=True)


class LoRAPathAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):
        lora_paths = []
        for lora_path in values or []:
            lora_path = lora_path.strip()
            if lora_path.startswith("{") and lora_path.endswith("}"):
                obj = json.loads(lora_path)
                assert "lora_path" in obj and "lora_name" in obj, (
                    f"{lora_path!r} looks like a JSON str, but it does not contain 'lora_name' and 'lora_path' keys."
                )
                lora_paths.append(obj)
            else:
                lora_paths.append(lora_path)
        setattr(namespace, self.dest, lora_paths)


class DeprecatedAction(argparse.Action):
    """A retired flag that is accepted, ignored and warned about."""

    def __call__(self, parser, namespace, values, option_string=None):
        print_deprecated_warning(
            f"The command line argument '{option_string}' is deprecated and will be removed in future versions."
        )


class DeprecatedStoreTrueAction(argparse.Action):
    def __init__(self, option_strings, dest, new_flag=None, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        replacement = f" Use '{self.new_flag}' instead." if self.new_flag else ""
        print_deprecated_warning(
            f"'{option_string}' is deprecated and will be removed in a future release.{replacement}"
        )
        setattr(namespace, self.dest, True)


class DeprecatedStoreConstAction(argparse.Action):
    def __init__(self, option_strings, dest, new_flag=None, const_value=None, **kwargs):
        self.new_flag = new_flag
        self.const_value = const_value
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        replacement = f" Use '{self.new_flag}' instead." if self.new_flag else ""
        print_deprecated_warning(
            f"'{option_string}' is deprecated and will be removed in a future release.{replacement}"
        )
        setattr(namespace, self.dest, self.const_value)


# Actions registered with type/nargs/default/choices, by the last part of the catalog's name.
VALUE_ACTIONS = {
    "store": "store",
    "LoRAPathAction": LoRAPathAction,
    "DeprecatedAction": DeprecatedAction,
    "DeprecatedStoreTrueAction": DeprecatedStoreTrueAction,
    "DeprecatedStoreConstAction": DeprecatedStoreConstAction,
}


# --- the parser ------------------------------------------------------------------------------------


def add_flag(parser: argparse.ArgumentParser, flag: dict) -> None:
    """Register one catalog entry exactly as SGLang registered it (same option strings, dest, order)."""
    action = flag["action"]
    options = flag["option_strings"]
    # argparse tests `help is SUPPRESS` by identity, so the JSON string must become the real sentinel.
    help_text = argparse.SUPPRESS if flag["help"] == argparse.SUPPRESS else flag["help"]
    common = {"dest": flag["dest"], "help": help_text, "required": flag["required"]}
    if flag["metavar"] is not None:
        common["metavar"] = flag["metavar"]

    if action == "help":
        parser.add_argument(*options, action="help", help=help_text)
    elif action in ("store_true", "store_false", "store_const"):
        if action == "store_const":
            common["const"] = flag["const"]
        parser.add_argument(*options, action=action, default=flag["default"], **common)
    elif action == "BooleanOptionalAction":
        # The action creates the --no-X spelling itself; the catalog lists both.
        positive = [o for o in options if "--no-" + o[2:] in options]
        parser.add_argument(*positive, action=argparse.BooleanOptionalAction, default=flag["default"], **common)
    elif action.rsplit(".", 1)[-1] in VALUE_ACTIONS:  # "store" or "custom:<module>.<Class>"
        deprecation = flag["deprecation"] or {}
        for key in ("new_flag", "const_value"):  # the Deprecated* actions' own constructor arguments
            if key in deprecation:
                common[key] = deprecation[key]
        kwargs = {"nargs": flag["nargs"], "default": flag["default"], "choices": flag["choices"]}
        if flag["type"] is not None:
            type_name = flag["type"].rsplit(".", 1)[-1]
            if type_name not in TYPES:
                raise RuntimeError(f"SGLang stand-in: no stand-in for argparse type {flag['type']} ({options})")
            kwargs["type"] = TYPES[type_name]
        if flag["const"] is not None:  # argparse only takes const with nargs='?' (e.g. --model-checksum)
            kwargs["const"] = flag["const"]
        parser.add_argument(*options, action=VALUE_ACTIONS[action.rsplit(".", 1)[-1]], **kwargs, **common)
    else:
        raise RuntimeError(f"SGLang stand-in: no stand-in for argparse action {action} ({options})")


def build_parser(catalog: dict, prog: str | None = None, extra_flags: tuple | list = ()) -> argparse.ArgumentParser:
    # add_help=False: the catalog's own -h/--help entry is registered in its place in the order.
    # allow_abbrev stays True, like SGLang's parser: "--tp 8" is accepted as "--tp-size 8".
    parser = argparse.ArgumentParser(prog=prog, add_help=False)
    for flag in [*catalog["flags"], *extra_flags]:
        add_flag(parser, flag)
    return parser


def launch_server_parser(catalog: dict) -> argparse.ArgumentParser:
    return build_parser(catalog, prog=catalog["parser_prog"])


def compile_deep_gemm_parser(catalog: dict) -> argparse.ArgumentParser:
    # SGLang builds it with a bare ArgumentParser(), so prog is the script name, as here.
    return build_parser(catalog, extra_flags=catalog["compile_deep_gemm"]["flags_not_in_launch_server"])


def server_args(namespace: argparse.Namespace, catalog: dict) -> dict:
    """The ServerArgs fields, in catalog order, after SGLang's renames and the path defaults of __post_init__."""
    fields = {}
    for flag in catalog["flags"]:
        dest = flag["dest"]
        if dest != "help" and hasattr(namespace, dest):
            fields.setdefault(FIELD_RENAMES.get(dest, dest), getattr(namespace, dest))
    if fields.get("tokenizer_path") is None:
        fields["tokenizer_path"] = fields["model_path"]
    if fields.get("served_model_name") is None:
        fields["served_model_name"] = fields["model_path"]
    return fields


def server_args_repr(fields: dict) -> str:
    # SGLang logs f"{server_args=}": the dataclass repr, secrets (api_key) included in clear.
    return "ServerArgs(" + ", ".join(f"{name}={value!r}" for name, value in fields.items()) + ")"


# --- logs: SGLang's logging format on stderr, uvicorn's access log on stdout, one flushed line each ----


_WRITE_LOCK = threading.Lock()


def _write(stream, line: str) -> None:
    # One write per line under a lock, like logging's handlers: threads never splice their lines.
    with _WRITE_LOCK:
        stream.write(line + "\n")
        stream.flush()


def log(message: str, prefix: str = "") -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    _write(sys.stderr, f"[{stamp}{prefix}] {message}")


def access_log(client: str, request_line: str, status: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    _write(sys.stdout, f'[{stamp}] INFO:     {client} - "{request_line}" {status}')


def log_raw(line: str) -> None:
    """A line another library (torch, NCCL, tqdm) writes to stderr in its own format."""
    _write(sys.stderr, line)


# --- dying like SGLang ------------------------------------------------------------------------------

SGLANG_DIR = "/sgl-workspace/sglang/python/sglang"  # where the image has SGLang's sources
SCHEDULER_FILE = f"{SGLANG_DIR}/srt/managers/scheduler.py"


def scheduler_frames() -> list[str]:
    return [
        f'  File "{SCHEDULER_FILE}", line 2938, in run_scheduler_process',
        "    scheduler = Scheduler(server_args, port_args, gpu_id, tp_rank, moe_ep_rank, pp_rank, dp_rank)",
        f'  File "{SCHEDULER_FILE}", line 358, in __init__',
        "    self.tp_worker = TpModelWorker(",
    ]


def crash(lines: list[str], code: int, prefix: str = " TP0") -> None:
    """Die like a scheduler that raised: the traceback one line per write, SGLang's sigquit line, then the exit.

    The parent's log reader gets the traceback in the pipe only just before the process is gone: a lifecycle that
    stops reading at the exit loses the lines that explain it.
    """
    log("Scheduler hit an exception: Traceback (most recent call last):", prefix)
    for line in lines:
        log_raw(line)
    log("Received sigquit from a child process. It usually means the child failed.")
    os._exit(code)
