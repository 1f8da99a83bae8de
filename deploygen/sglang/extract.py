"""Build the flag catalog of the installed SGLang (schema/sglang/<version>.json) from SGLang's own parser.

    python -m deploygen.sglang.extract --out schema/sglang/0.5.10.post1.json

It needs an environment where sglang imports. With `--stand-ins`, the GPU stack (torch, triton, the kernel
packages) is replaced by stand-in modules (deploygen.sglang.stand_ins), so sglang's wheel and its light
dependencies are enough; `python -m deploygen.sglang.add_release VERSION` sets that up from PyPI. Without it,
sglang and torch must really import, as in the pinned image on a CPU-only Modal function (extract_on_modal.py):

    SGLANG_VERSION=0.5.10.post1 modal run -m deploygen.sglang.extract_on_modal --out schema/sglang/0.5.10.post1.json

How: `sglang.srt.server_args.prepare_server_args(argv)` builds the parser exactly as `sglang serve`
does; `argparse.ArgumentParser.parse_args` is patched for that one call to hand the parser back
instead of parsing. `describe_parser` serialises its actions, `parse_test` records how the GLM-5.1
reference command line parses with it, and the parser of `python -m sglang.compile_deep_gemm` is
built the way that module's `__main__` block builds it (with stand-ins, the sglang modules that it imports
and `sglang serve` did not are stood in, so only its own CompileArgs is added). `entry_points` lists the
console scripts of the installed distribution and the subcommands of the `sglang` script's own parser.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import io
import json
import math
import os
import platform
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from deploygen.errors import UserError
from deploygen.files import write_atomic
from deploygen.sglang.stand_ins import DEVICE_DESCRIPTION, GPU_STACK, LateStandInFinder, StandInFinder, installed

MODAL_COMMAND = (
    "SGLANG_VERSION={version} modal run -m deploygen.sglang.extract_on_modal --out schema/sglang/{version}.json"
)

# The production guide's GLM-5.1 launch command (https://www.quantml.org/guides/glm-5-1-fp8/code), parsed by
# every catalog: which tokens are exact option strings, which are abbreviations, and whether this SGLang
# accepts the command at all.
_MODEL = ["--model-path", "/model-cache/GLM-5.1-FP8", "--served-model-name", "glm-5.1"]
_SERVER = ["--host", "0.0.0.0", "--port", "8000", "--trust-remote-code", "--ep", "1"]
_SERVING = [
    *("--speculative-algorithm", "EAGLE", "--speculative-num-steps", "3", "--speculative-eagle-topk", "1"),
    *("--speculative-num-draft-tokens", "4", "--reasoning-parser", "glm45", "--tool-call-parser", "glm47"),
    *("--mem-fraction-static", "0.88", "--max-running-requests", "48", "--max-prefill-tokens", "32768"),
    *("--max-total-tokens", "65536", "--watchdog-timeout", "1200", "--enable-metrics", "--api-key", "secret"),
]
_MOE = ["--moe-runner-backend", "flashinfer_trtllm"]
_NSA_BACKENDS = ["--nsa-decode-backend", "trtllm", "--nsa-prefill-backend", "trtllm"]
_DSA_BACKENDS = ["--dsa-decode-backend", "trtllm", "--dsa-prefill-backend", "trtllm"]
_FUSION = "--enable-flashinfer-allreduce-fusion"
REFERENCE_ARGV = [
    *_MODEL, "--tp", "8", *_SERVER, "--attention-backend", "nsa", *_NSA_BACKENDS, *_MOE, _FUSION, *_SERVING
]  # fmt: skip
# Variants of it across the --nsa-* -> --dsa-* rename (docs/sources.md#flag-renames).
EXTRA_ARGVS = {
    "dsa_flags_nsa_backend": [
        *_MODEL, *_SERVER, *_MOE, *_SERVING, "--tp", "8", "--attention-backend", "nsa", *_DSA_BACKENDS, _FUSION
    ],
    "dsa_modernized": [
        *_MODEL, *_SERVER, *_MOE, *_SERVING, "--tp-size", "8", "--attention-backend", "dsa", *_DSA_BACKENDS,
        "--flashinfer-allreduce-fusion-backend", "auto",
    ],
    "original_without_nsa_backend_flags": [
        *_MODEL, *_SERVER, *_MOE, *_SERVING, "--tp", "8", "--attention-backend", "nsa", _FUSION
    ],
}  # fmt: skip
MODEL_TP_OPTIONS = ("--model", "--model-path", "--tp", "--tp-size", "--tensor-parallel-size")
_NEGATIVE_NUMBER = re.compile(r"-\d+$|-\d*\.\d+$")


class ExtractionError(UserError):
    """SGLang cannot be imported here, or it is not the version asked for."""


class _ParserCaptured(Exception):
    """Raised by the patched parse_args to carry the parser out of prepare_server_args."""

    def __init__(self, parser: argparse.ArgumentParser):
        super().__init__()
        self.parser = parser


def _json_safe(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json_safe(item) for key, item in value.items()}
    return repr(value)


def _choices(choices: Any) -> list[Any] | None:
    if choices is None:
        return None
    if isinstance(choices, set | frozenset):  # no order of its own: sort, so the hash seed does not matter
        return sorted(_json_safe(choice) for choice in choices)
    return [_json_safe(choice) for choice in choices]


def _callable_name(func: Any) -> str | None:
    """`str`, `int`, `json.loads`, `sglang.srt.utils.common.human_readable_int`..."""
    if func is None:
        return None
    name = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if name is None:  # an instance such as argparse.FileType("r"): name its class
        name, module = type(func).__qualname__, type(func).__module__
    return name if module == "builtins" else f"{module}.{name}"


def _action_names(parser: argparse.ArgumentParser) -> dict[type, str]:
    # argparse's own names for its classes ("store", "store_true", "help"...), from the parser's registry.
    return {cls: name for name, cls in parser._registries["action"].items() if name is not None}


def _action_name(action: argparse.Action, registered: dict[type, str]) -> str:
    cls = type(action)
    if cls.__module__ != "argparse":
        return f"custom:{cls.__module__}.{cls.__qualname__}"
    return registered.get(cls, cls.__name__)  # BooleanOptionalAction has no registered name


def _deprecation(action: argparse.Action) -> dict[str, Any] | None:
    marks: dict[str, Any] = {}
    cls = type(action)
    if "deprecated" in cls.__name__.lower():
        marks["action_class"] = f"{cls.__module__}.{cls.__qualname__}"
        # What SGLang's Deprecated*Action classes carry: the replacement, the value they store, the error.
        for detail in ("new_flag", "const_value", "error_message"):
            if getattr(action, detail, None) is not None:
                marks[detail] = _json_safe(getattr(action, detail))
    if getattr(action, "deprecated", False):  # add_argument(..., deprecated=True), Python 3.13+
        marks["argparse_deprecated"] = True
    if action.help and "deprecat" in action.help.lower():
        marks["help_mentions_deprecated"] = True
    return marks or None


def describe_parser(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """One JSON-safe entry per argparse action, in parser order."""
    group_of = {id(action): group.title for group in parser._action_groups for action in group._group_actions}
    registered = _action_names(parser)
    entries = []
    for action in parser._actions:
        name = _action_name(action, registered)
        entries.append(
            {
                "option_strings": list(action.option_strings),
                "dest": action.dest,
                "action": name,
                # Takes no value on the command line: store_true, BooleanOptionalAction, SGLang's deprecated flags.
                "is_boolean_flag": action.nargs == 0 and name not in ("help", "version"),
                "type": _callable_name(action.type),
                "nargs": action.nargs,
                "default": _json_safe(action.default),
                "const": _json_safe(action.const),
                "choices": _choices(action.choices),
                "required": action.required,
                "metavar": _json_safe(action.metavar),
                "help": action.help,
                "group": group_of.get(id(action)),
                "deprecation": _deprecation(action),
            }
        )
    return entries


def _option_tokens(parser: argparse.ArgumentParser, argv: Sequence[str]) -> list[str]:
    tokens = []
    for arg in argv:
        if arg == "--":  # everything after it is positional
            break
        if len(arg) > 1 and arg[0] in parser.prefix_chars and not _NEGATIVE_NUMBER.match(arg):
            tokens.append(arg)
    return tokens


def _resolve_token(parser: argparse.ArgumentParser, token: str) -> dict[str, Any]:
    options = parser._option_string_actions
    option = token.split("=", 1)[0]
    if option in options:
        return {"token": token, "exact_option": True, "dest": options[option].dest}
    # argparse accepts a unique prefix of a long option; single-dash tokens are only checked exactly.
    long_option = option[:2] in {c * 2 for c in parser.prefix_chars}
    matches = [s for s in options if s.startswith(option)] if parser.allow_abbrev and long_option else []
    entry: dict[str, Any] = {"token": token, "exact_option": False, "prefix_matches": matches}
    if len(matches) == 1:
        entry["accepted_as_abbreviation_of"] = matches[0]
        entry["dest"] = options[matches[0]].dest
    return entry


def parse_test(parser: argparse.ArgumentParser, argv: Sequence[str]) -> dict[str, Any]:
    """Parse argv with the parser; record how each option token resolves and whether the parse is accepted."""
    tokens = [_resolve_token(parser, token) for token in _option_tokens(parser, argv)]
    stderr = io.StringIO()
    # The usage text wraps at the terminal width; pin it so the result does not depend on where it ran.
    with mock.patch.dict(os.environ, {"COLUMNS": "80"}), contextlib.redirect_stderr(stderr):
        try:
            namespace = parser.parse_args(list(argv))
        except SystemExit as exc:
            return {
                "argv": list(argv),
                "tokens": tokens,
                "ok": False,
                "exit_code": exc.code,
                "stderr": stderr.getvalue(),
            }
    given = sorted({token["dest"] for token in tokens if "dest" in token})
    return {
        "argv": list(argv),
        "tokens": tokens,
        "ok": True,
        "parsed_values_of_given_flags": {dest: _json_safe(getattr(namespace, dest)) for dest in given},
        "stderr": stderr.getvalue(),
    }


def capture_parser(prepare_server_args: Callable[[list[str]], Any]) -> argparse.ArgumentParser:
    """The parser that prepare_server_args builds, taken at its parse_args call (nothing is parsed)."""

    def hand_back(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _ParserCaptured(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_args", hand_back):
        try:
            prepare_server_args([])
        except _ParserCaptured as captured:
            return captured.parser
    raise ExtractionError(f"{prepare_server_args.__qualname__}() returned without calling ArgumentParser.parse_args")


def describe_compile_deep_gemm(launch_flags: list[dict[str, Any]], late: LateStandInFinder | None) -> dict[str, Any]:
    """The parser of `python -m sglang.compile_deep_gemm`, compared with launch_server's."""
    with installed(late) if late else contextlib.nullcontext():
        from sglang.compile_deep_gemm import CompileArgs
    from sglang.srt.server_args import ServerArgs

    built_as = "argparse.ArgumentParser(); ServerArgs.add_cli_args(parser); CompileArgs.add_cli_args(parser)"
    parser = argparse.ArgumentParser()  # as compile_deep_gemm's __main__ block builds it
    ServerArgs.add_cli_args(parser)
    CompileArgs.add_cli_args(parser)
    flags = describe_parser(parser)
    launch_options = [flag["option_strings"] for flag in launch_flags]
    compile_options = [flag["option_strings"] for flag in flags]
    exact = parser._option_string_actions
    return {
        "info": {"module": "sglang.compile_deep_gemm", "built_as": built_as},
        "flags_not_in_launch_server": [flag for flag in flags if flag["option_strings"] not in launch_options],
        "launch_server_flags_not_in_compile_deep_gemm": [o for o in launch_options if o not in compile_options],
        "flag_count": len(flags),
        "option_strings": compile_options,
        "model_tp_aliases": {o: exact[o].dest if o in exact else None for o in MODEL_TP_OPTIONS},
    }


def _capture_subcommands(main: Callable[[], Any]) -> list[str]:
    """The subcommands of an argparse CLI whose main() builds its parser and calls parse_known_args."""

    def hand_back(parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        raise _ParserCaptured(parser)

    with mock.patch.object(argparse.ArgumentParser, "parse_known_args", hand_back):
        try:
            main()
        except _ParserCaptured as captured:
            actions = captured.parser._subparsers._group_actions if captured.parser._subparsers else []
            return [name for action in actions for name in action.choices]
    raise ExtractionError(f"{main.__qualname__}() returned without calling ArgumentParser.parse_known_args")


def describe_entry_points(stand_ins: bool) -> dict[str, Any]:
    """The console scripts the installed sglang ships, and the subcommands of its `sglang` script (with
    stand-ins, the sglang modules that the script's module imports are stood in: only its parser is read)."""
    scripts = importlib.metadata.distribution("sglang").entry_points.select(group="console_scripts")
    console_scripts = {script.name: script.value for script in sorted(scripts, key=lambda s: s.name)}
    if "sglang" not in console_scripts:
        return {"console_scripts": console_scripts, "sglang_subcommands": []}
    script = scripts["sglang"]
    with installed(LateStandInFinder(keep=script.module)) if stand_ins else contextlib.nullcontext():
        main = script.load()
    return {"console_scripts": console_scripts, "sglang_subcommands": _capture_subcommands(main)}


def stand_in_versions() -> dict[str, str]:
    """The versions the installed sglang pins for the stand-in packages (`torch==2.9.1`...)."""
    from packaging.requirements import Requirement

    pins = {}
    for line in importlib.metadata.requires("sglang") or []:
        requirement = Requirement(line)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        name = requirement.name.replace("-", "_").lower()
        if name in GPU_STACK and exact and name not in pins:  # the first pin: the default install's
            pins[name] = exact[0]
    return dict(sorted(pins.items()))


def installed_sglang_version(wanted: str | None = None) -> str:
    try:
        return importlib.metadata.version("sglang")
    except importlib.metadata.PackageNotFoundError:
        raise ExtractionError(
            "sglang is not installed here; run the extraction inside the pinned image:\n"
            f"  {MODAL_COMMAND.format(version=wanted or '<version>')}"
        ) from None


def extract_catalog(version: str, stand_ins: StandInFinder | None = None) -> dict[str, Any]:
    """The catalog of the installed sglang, which must be `version`; `stand_ins`: the finder in use, if any."""
    found = installed_sglang_version(version)
    if found != version:
        raise ExtractionError(f"sglang {found} is installed here, not {version}")

    # The same imports as `sglang serve`: launch_server first, then its plugins, which may add flags.
    from sglang import launch_server
    from sglang.srt.server_args import prepare_server_args

    steps = ["import sglang.launch_server"]
    if hasattr(launch_server, "load_plugins"):
        launch_server.load_plugins()
        steps.append("sglang.launch_server.load_plugins()")
    # A parser built without a prog is named after sys.argv[0]: launch_server.py under `python -m`.
    with mock.patch.object(sys, "argv", [launch_server.__file__]):
        parser = capture_parser(prepare_server_args)
    steps.append("sglang.srt.server_args.prepare_server_args([]) with ArgumentParser.parse_args patched")
    flags = describe_parser(parser)

    late = LateStandInFinder(keep="sglang.compile_deep_gemm") if stand_ins else None
    compile_deep_gemm = describe_compile_deep_gemm(flags, late)
    entry_points = describe_entry_points(stand_ins is not None)

    import torch

    torch_info = {"version": str(torch.__version__), "cuda_available": bool(torch.cuda.is_available())}
    python = platform.python_version()
    method = f"stand-ins for the GPU stack answering as {DEVICE_DESCRIPTION}" if stand_ins else "real imports"
    extraction: dict[str, Any] = {"method": method, "steps": steps}
    if stand_ins:
        extraction["stand_in_modules_used"] = sorted(stand_ins.imported)
        extraction["stand_in_versions"] = stand_ins.versions
        extraction["compile_deep_gemm_stand_ins"] = sorted(late.imported) if late else []
    extraction |= {
        "python": python,
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
        "machine": platform.machine(),
        "torch": torch_info,
        "script": "deploygen.sglang.extract",
    }
    return {
        "sglang_version": found,
        "extracted_with": (
            f"{method}; parser captured from sglang.srt.server_args.prepare_server_args; "
            f"Python {python}, torch {torch_info['version']}; deploygen.sglang.extract"
        ),
        "extraction": extraction,
        "entry_points": entry_points,
        "parser_prog": parser.prog,
        "flag_count": len(flags),
        "flags": flags,
        "test_parse": parse_test(parser, REFERENCE_ARGV),
        "extra_test_parses": [{**parse_test(parser, argv), "label": label} for label, argv in EXTRA_ARGVS.items()],
        "compile_deep_gemm": compile_deep_gemm,
    }


def _compact_lines(value: Any, indent: str) -> str:
    """Objects two levels deep and lists of objects one item a line; every other value on one line."""
    inner = indent + " "
    if isinstance(value, dict) and len(indent) < 2 and value:
        items = (f"{inner}{json.dumps(key)}: {_compact_lines(item, inner)}" for key, item in value.items())
        return "{\n" + ",\n".join(items) + f"\n{indent}}}"
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        return "[\n" + ",\n".join(f"{inner}{json.dumps(item)}" for item in value) + f"\n{indent}]"
    return json.dumps(value)


def catalog_json(value: Any) -> str:
    """JSON as the schema/sglang/*.json files hold it (catalogs and the index): key order kept, one flag (or
    release) a line, so that a changed flag is a one-line diff; final newline."""
    return _compact_lines(value, "") + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Some SGLang choices are sets, listed in the usage text of rejected test parses in string-hash order:
    # run with a fixed seed so that the same SGLang always gives the same bytes.
    if os.environ.get("PYTHONHASHSEED") != "0":
        command = [sys.executable, "-m", "deploygen.sglang.extract", *argv]
        return subprocess.run(command, env={**os.environ, "PYTHONHASHSEED": "0"}, check=False).returncode
    parser = argparse.ArgumentParser(
        prog="python -m deploygen.sglang.extract",
        description="Write the launch_server flag catalog of the installed SGLang.",
    )
    parser.add_argument("--out", type=Path, required=True, help="where to write it, e.g. schema/sglang/0.5.10.json")
    parser.add_argument("--version", help="the SGLang version expected here (default: the installed one)")
    parser.add_argument(
        "--stand-ins",
        action="store_true",
        help="stand in for the GPU stack (torch, triton, kernels) instead of importing it",
    )
    args = parser.parse_args(argv)
    try:
        version = args.version or installed_sglang_version()
        if args.stand_ins:
            with installed(StandInFinder(GPU_STACK, stand_in_versions())) as finder:
                catalog = extract_catalog(version, finder)
        else:
            catalog = extract_catalog(version)
        write_atomic(args.out, catalog_json(catalog))
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
