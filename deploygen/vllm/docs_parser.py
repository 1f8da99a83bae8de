"""Build `vllm serve`'s parser from an unpacked vLLM wheel without torch or a GPU, and describe it as JSON.

Run by deploygen.vllm.extract in a child process (the mocks below replace modules for the whole process):

    python -m deploygen.vllm.docs_parser SITE_DIR > catalog-body.json

It builds the parser the way vLLM's own docs build theirs, docs/mkdocs/hooks/generate_argparse.py
(https://github.com/vllm-project/vllm/blob/main/docs/mkdocs/hooks/generate_argparse.py): vllm._C, the
custom-op registry and torch.nn are replaced by mocks, every other module that is not installed is
mocked the first time an import misses it (`auto_mock`), and `DeviceConfig.__post_init__` is patched out
while the arguments are added. Then, unlike the docs, it builds the parser exactly as `vllm serve` does
(vllm/entrypoints/cli/main.py): a top-level `FlexibleArgumentParser`, its subparsers, and
`ServeSubcommand().subparser_init(subparsers)`. pydantic is real, so the JSON arguments typed as config
dataclasses validate as they do in vLLM; the modules mocked are listed in the result.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import re
import sys
import typing
from collections.abc import Callable
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest.mock import MagicMock, patch

from deploygen.sglang.extract import _json_safe, describe_parser, parse_test

# The GLM-5.1 command of vLLM's recipe (docs.vllm.ai/projects/recipes/en/latest/GLM/GLM5.html), with the
# served name and the port a deployment sets, parsed by every catalog.
RECIPE_ARGV = [
    "/model-cache/GLM-5.1-FP8",
    *("--tensor-parallel-size", "8", "--speculative-config.method", "mtp"),
    *("--speculative-config.num_speculative_tokens", "3", "--tool-call-parser", "glm47"),
    *("--reasoning-parser", "glm45", "--enable-auto-tool-choice", "--chat-template-content-format=string"),
    *("--served-model-name", "glm-5.1", "--host", "0.0.0.0", "--port", "8000"),
]
# Variants: the JSON form of the speculative config, abbreviations, BooleanOptional pairs, bad values.
EXTRA_ARGVS = {
    "speculative_config_json": [
        "/model-cache/GLM-5.1-FP8", "--tensor-parallel-size", "8",
        "--speculative-config", '{"method": "mtp", "num_speculative_tokens": 3}',
    ],
    "short_and_abbreviated_options": ["/model-cache/GLM-5.1-FP8", "-tp", "8", "--gpu-memory", "0.9"],
    "boolean_optional_pair": ["/model-cache/GLM-5.1-FP8", "--enable-prefix-caching", "--no-enable-prefix-caching"],
    "bare_value_flag": ["/model-cache/GLM-5.1-FP8", "--max-model-len"],
    "kv_cache_dtype_not_a_choice": ["/model-cache/GLM-5.1-FP8", "--kv-cache-dtype", "bfloat16"],
    "speculative_config_not_json": ["/model-cache/GLM-5.1-FP8", "--speculative-config", "{method: mtp}"],
    "underscored_option": ["/model-cache/GLM-5.1-FP8", "--max_num_seqs", "32"],
    "max_model_len_human_readable": ["/model-cache/GLM-5.1-FP8", "--max-model-len", "64k"],
}  # fmt: skip
MAX_MOCKS = 100


class PydanticMagicMock(MagicMock):
    """A MagicMock module that pydantic accepts as any type (as in vLLM's docs hook)."""

    def __init__(self, *args: Any, **kwargs: Any):
        name = kwargs.get("name")
        super().__init__(*args, **kwargs)
        self.__spec__ = ModuleSpec(name, None)

    def __get_pydantic_core_schema__(self, source_type: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.any_schema()


class _MockCustomOp:
    @staticmethod
    def register(name: str) -> Callable[[type], type]:
        return lambda cls: cls


def wheel_pins() -> dict[str, str]:
    """The exact pins (`torch==2.14.0`) among the unpacked wheel's Requires-Dist, by canonical name."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for text in importlib.metadata.requires("vllm") or []:
        requirement = Requirement(text)
        specifiers = list(requirement.specifier)
        if requirement.marker is None and len(specifiers) == 1 and specifiers[0].operator == "==":
            pins[canonicalize_name(requirement.name)] = specifiers[0].version
    return pins


class _MockFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path: once a package is known to be missing here (the docs' auto_mock learns that
    from a ModuleNotFoundError), it and every submodule of it import as mock packages, also when the import
    runs inside a pydantic validator, where the error would have become a ValidationError."""

    def __init__(self, mocked: list[str]):
        self.mocked = mocked
        self.roots: set[str] = set()

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if not any(fullname == root or fullname.startswith(f"{root}.") for root in self.roots):
            return None
        return ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: ModuleSpec) -> Any:
        self.mocked.append(spec.name)
        module = PydanticMagicMock(name=spec.name)
        module.__path__ = []
        return module

    def exec_module(self, module: Any) -> None:
        pass


def missing_import_roots(site: Path) -> set[str]:
    """Top-level packages that vLLM's code imports outside `try:` blocks and that are not installed here.
    Known up front, they are mocked even where vLLM imports them inside a pydantic validator (the docs'
    auto_mock only learns of a package from a ModuleNotFoundError, which a validator turns into a
    ValidationError). Imports inside `try:` stay real: vLLM handles those packages being absent."""
    roots: set[str] = set()
    for path in sorted((site / "vllm").rglob("*.py")):
        tree = ast.parse(path.read_bytes(), str(path))
        guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try) for s in t.body for n in ast.walk(s)}
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            if isinstance(node, ast.Import):
                roots.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
    return {
        r for r in roots if r != "vllm" and r not in sys.stdlib_module_names and importlib.util.find_spec(r) is None
    }


class MockedImports:
    """The docs hook's mocks, with a record of every module replaced."""

    def __init__(self, site: Path):
        self.site = site
        self.mocked: list[str] = []
        self.fixed: set[str] = set()

    def install(self) -> None:
        sys.path.insert(0, str(self.site))
        fixed = {
            "vllm._C": MagicMock(),
            "vllm.model_executor.custom_op": MagicMock(CustomOp=_MockCustomOp),
            "vllm.utils.torch_utils": MagicMock(direct_register_custom_op=lambda *a, **k: None),
            "torch.nn": MagicMock(Parameter=object),  # safe to inherit from
            # vLLM's IR op registry (newer than the docs hook) parses torch schemas when ops register.
            "vllm.ir": MagicMock(),
        }
        self.fixed = set(fixed)
        for name, module in fixed.items():
            module.__path__ = []  # a package: its submodules import as mocks too
            module.__spec__ = ModuleSpec(name, None, is_package=True)
            sys.modules[name] = module
            self.mocked.append(name)
        self.finder = _MockFinder(self.mocked)
        self.finder.roots.update(missing_import_roots(self.site) | {"vllm.ir"})
        sys.meta_path.append(self.finder)
        # Version checks of packages that are not installed here: the docs answer with CI's pins, this with
        # the wheel's own `==` pins (torch==...), else "0.0.0". vllm's version comes from the wheel's
        # dist-info, which is on sys.path.
        from packaging.utils import canonicalize_name

        real_version = importlib.metadata.version
        pins = wheel_pins()

        def version(name: str) -> str:
            try:
                return real_version(name)
            except importlib.metadata.PackageNotFoundError:
                return pins.get(canonicalize_name(name), "0.0.0")

        importlib.metadata.version = version

    def call(self, function: Callable[[], Any]) -> Any:
        """function(); each package found missing on the way is mocked and function() runs again."""
        for _ in range(MAX_MOCKS):
            try:
                return function()
            except ModuleNotFoundError as exc:
                root = (exc.name or "").split(".")[0]
                if not root or root == "vllm" or root in self.finder.roots:
                    raise  # a vllm module that does not exist is a wrong path, not a heavy import
                self.finder.roots.add(root)
                stale = [n for n in sys.modules if (n == root or n.startswith(f"{root}.")) and n not in self.fixed]
                for name in stale:
                    del sys.modules[name]  # half-imported: import it again, as a mock
        raise ImportError(f"still failing after mocking {MAX_MOCKS} packages")

    def import_attr(self, module_name: str, attr: str) -> Any:
        """`from module_name import attr`, mocking missing packages on the way."""

        def load() -> Any:
            module = importlib.import_module(module_name)
            return getattr(module, attr) if hasattr(module, attr) else importlib.import_module(f"{module_name}.{attr}")

        return self.call(load)


def _serve_subparser_init(imports: MockedImports) -> Callable[..., argparse.ArgumentParser]:
    """ServeSubcommand.subparser_init, compiled from vllm/entrypoints/cli/serve.py, with only the names it
    uses imported (serve.py's own imports pull in the engine, the worker and CUDA code)."""
    path = imports.site / "vllm" / "entrypoints" / "cli" / "serve.py"
    tree = ast.parse(path.read_text(), str(path))
    sources: dict[str, tuple[str, str | None]] = {}
    constants: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module:
            sources.update({a.asname or a.name: (node.module, a.name) for a in node.names})
        elif isinstance(node, ast.Import):
            sources.update({a.asname or a.name: (a.name, None) for a in node.names})
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            constants.update({t.id: node.value.value for t in node.targets if isinstance(t, ast.Name)})
    command = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "ServeSubcommand")
    function = next(n for n in command.body if isinstance(n, ast.FunctionDef) and n.name == "subparser_init")
    function.decorator_list = []
    namespace: dict[str, Any] = {"__name__": "vllm.entrypoints.cli.serve"}
    for name in sorted({n.id for n in ast.walk(function) if isinstance(n, ast.Name)}):
        if name in constants:
            namespace[name] = constants[name]
        elif name in sources:
            module, attr = sources[name]
            namespace[name] = imports.import_attr(module, attr) if attr else importlib.import_module(module)
    exec(compile(ast.Module(body=[function], type_ignores=[]), str(path), "exec"), namespace)
    return namespace["subparser_init"]


def build_serve_parser(imports: MockedImports) -> argparse.ArgumentParser:
    """`vllm serve`'s parser, built as vllm/entrypoints/cli/main.py builds it: the top-level parser, its
    subparsers, and ServeSubcommand.subparser_init."""
    flexible = imports.import_attr("vllm.utils.argparse_utils", "FlexibleArgumentParser")
    subparser_init = _serve_subparser_init(imports)

    def build() -> argparse.ArgumentParser:
        top = flexible(prog="vllm", description="vLLM CLI")
        subparsers = top.add_subparsers(required=False, dest="subparser")
        return subparser_init(SimpleNamespace(name="serve"), subparsers)

    def build_patched() -> argparse.ArgumentParser:
        with patch("vllm.config.DeviceConfig.__post_init__"):
            return build()

    return imports.call(build_patched)


# What the value converters of vllm/engine/arg_utils.py wrap, innermost first.
_KINDS = {"int": "int", "float": "float", "str": "str", "loads": "json", "human_readable_int": "human_readable_int"}


def value_type(converter: Any, seen: int = 0) -> dict[str, Any]:
    """What a flag's value converter accepts, looked up through vLLM's wrappers (optional_type, parse_type,
    parse_dataclass): {"kind": int|float|str|json|human_readable_int[_or_auto]|<name>, "optional": bool,
    "dataclass": module.Class when the JSON is validated against a config dataclass at parse time}."""
    if converter is None or seen > 5:
        return {"kind": "str" if converter is None else "unknown", "optional": False}
    name = getattr(converter, "__name__", type(converter).__name__)
    if name == "human_readable_int_or_auto":
        return {"kind": "human_readable_int_or_auto", "optional": False}
    if name in _KINDS and "<locals>" not in getattr(converter, "__qualname__", ""):
        return {"kind": _KINDS[name], "optional": False}
    if name == "parse_dataclass":
        cls = (converter.__defaults__ or (None,))[0]
        return {"kind": "json", "optional": False, "dataclass": f"{cls.__module__}.{cls.__qualname__}"}
    inner = [cell.cell_contents for cell in converter.__closure__ or () if callable(cell.cell_contents)]
    if not inner:
        return {"kind": getattr(converter, "__qualname__", name), "optional": False}
    result = value_type(inner[0], seen + 1)
    return {**result, "optional": result["optional"] or name == "_optional_type"}


def _hint_text(hint: Any) -> str:
    text = getattr(hint, "__name__", None) if isinstance(hint, type) else None
    return text or repr(hint).replace("typing.", "")


def _literal_choices(hint: Any) -> list[Any] | None:
    """Every value of the Literal types inside a type hint (Literal["a"] | Literal["b"] | None...)."""
    if typing.get_origin(hint) is typing.Literal:
        return list(typing.get_args(hint))
    choices = [c for arg in typing.get_args(hint) for c in (_literal_choices(arg) or [])]
    return choices or None


def describe_dataclass(cls: type) -> dict[str, Any]:
    """The fields a JSON argument of this config dataclass accepts, with their Literal choices."""
    hints = typing.get_type_hints(cls, include_extras=False)
    fields = {}
    for field in dataclasses.fields(cls):
        hint = hints.get(field.name, field.type)
        default = field.default if field.default is not dataclasses.MISSING else None
        fields[field.name] = {
            "type": _hint_text(hint),
            "choices": _json_safe(_literal_choices(hint)),
            "default": _json_safe(default if not hasattr(default, "default") else default.default),
        }
    return {"class": f"{cls.__module__}.{cls.__qualname__}", "fields": fields}


def json_argument_schemas(parser: argparse.ArgumentParser, vllm_config: type) -> dict[str, Any]:
    """For each flag that takes JSON of a config dataclass: the dataclass's fields (what `--flag.key`
    and `--flag '{...}'` may hold). The class comes from the converter, or, where vLLM delays validation
    (--speculative-config is plain json.loads), from VllmConfig's field of the same name."""
    config_fields = {f.name: f for f in dataclasses.fields(vllm_config)}
    hints = typing.get_type_hints(vllm_config)
    schemas = {}
    for action in parser._actions:
        kind = value_type(action.type)
        if kind["kind"] != "json" or not action.option_strings:
            continue
        cls: Any = None
        if "dataclass" in kind:
            module, _, name = kind["dataclass"].rpartition(".")
            cls = getattr(importlib.import_module(module), name, None)
        elif action.dest in config_fields:
            hint = hints.get(action.dest)
            cls = next((a for a in (typing.get_args(hint) or (hint,)) if dataclasses.is_dataclass(a)), None)
        if cls is not None and dataclasses.is_dataclass(cls):
            schemas[action.option_strings[0]] = describe_dataclass(cls)
    return schemas


def describe_flags(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """describe_parser's entries plus what vLLM adds: the value type behind its converters, option strings
    that parse but are hidden from help (EnableDisableAction's --no-enable-x), and deprecation through
    FlexibleArgumentParser's own `deprecated=` (Python < 3.13)."""
    deprecated = {id(action) for action in getattr(parser, "_deprecated", ())}
    strings_of: dict[int, list[str]] = {}
    for option, action in parser._option_string_actions.items():
        strings_of.setdefault(id(action), []).append(option)
    entries = describe_parser(parser)
    for entry, action in zip(entries, parser._actions, strict=True):
        entry["value_type"] = value_type(action.type) if action.nargs != 0 else None
        entry["hidden_option_strings"] = [o for o in strings_of.get(id(action), []) if o not in action.option_strings]
        negative = getattr(action, "negative_option_strings", None)
        if negative is None and type(action).__name__ == "BooleanOptionalAction":
            negative = [o for o in action.option_strings if o.startswith("--no-")]
        entry["negative_option_strings"] = sorted(negative) if negative is not None else None
        if id(action) in deprecated:
            entry["deprecation"] = {**(entry["deprecation"] or {}), "flexible_argument_parser_deprecated": True}
    return entries


def _dotted_tokens(argv: list[str], parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """How FlexibleArgumentParser reads `--json-arg.key value` tokens: which flag, which key."""
    tokens = []
    for arg in argv:
        if arg.startswith("--") and "." in arg.split("=", 1)[0]:
            base, *keys = arg.split("=", 1)[0].split(".")
            base = "--" + base[2:].replace("_", "-")
            action = parser._option_string_actions.get(base)
            tokens.append({"token": arg, "json_flag": base, "keys": keys, "dest": action.dest if action else None})
    return tokens


def vllm_parse_test(parser: argparse.ArgumentParser, argv: list[str]) -> dict[str, Any]:
    """parse_test through FlexibleArgumentParser.parse_args (dotted keys, underscores), plus the dotted
    tokens it folded into JSON."""
    try:
        result = parse_test(parser, argv)
    except (ValueError, TypeError) as exc:  # FlexibleArgumentParser's own checks raise before argparse
        result = {"argv": list(argv), "ok": False, "exception": f"{type(exc).__name__}: {exc}"}
    if "stderr" in result:  # function reprs carry memory addresses: keep the bytes stable
        result["stderr"] = re.sub(r" at 0x[0-9a-f]+>", ">", result["stderr"])
    dotted = _dotted_tokens(argv, parser)
    return {**result, "dotted_json_tokens": dotted} if dotted else result


def extract(site: Path) -> dict[str, Any]:
    imports = MockedImports(site)
    imports.install()
    parser = build_serve_parser(imports)
    vllm_config = imports.import_attr("vllm.config", "VllmConfig")
    tool_parsers = imports.import_attr("vllm.tool_parsers", "ToolParserManager")
    reasoning_parsers = imports.import_attr("vllm.reasoning", "ReasoningParserManager")
    flags = describe_flags(parser)
    return {
        "vllm_version": importlib.metadata.version("vllm"),
        "mocked_modules": sorted(set(imports.mocked)),
        "parser_prog": parser.prog,
        "allow_abbrev": parser.allow_abbrev,
        "flag_count": len(flags),
        "flags": flags,
        "json_arguments": json_argument_schemas(parser, vllm_config),
        # vLLM checks these names at start (validate_api_server_args), not in argparse.
        "registered_tool_call_parsers": sorted(tool_parsers.list_registered()),
        "registered_reasoning_parsers": sorted(reasoning_parsers.list_registered()),
        "test_parse": vllm_parse_test(parser, RECIPE_ARGV),
        "extra_test_parses": [{**vllm_parse_test(parser, argv), "label": label} for label, argv in EXTRA_ARGVS.items()],
    }


def main() -> int:
    body = extract(Path(sys.argv[1]))
    sys.stdout.write(json.dumps(body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
