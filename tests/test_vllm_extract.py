"""The vLLM catalog extractor, run as a real process on a wheel built in the test (a tiny vllm package whose
`vllm serve` parser has every kind of option the real one has), and the committed catalogs' record."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deploygen.vllm.docs_parser import value_type

ROOT = Path(__file__).resolve().parents[1]

FAKE_VLLM = {
    "vllm/__init__.py": "",
    "vllm/utils/__init__.py": "",
    "vllm/utils/argparse_utils.py": '''
import argparse


class EnableDisableAction(argparse.BooleanOptionalAction):
    """--enable-x / --disable-x; --no-enable-x still parses but is hidden from help."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        inverses = ["--disable-" + o.removeprefix("--enable-") for o in option_strings if o.startswith("--enable-")]
        self.negative_option_strings = {o for o in self.option_strings if o not in option_strings} | set(inverses)
        self.visible_option_strings = [*option_strings, *inverses]
        self.option_strings = [*self.option_strings, *inverses]

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string not in self.negative_option_strings)


def human_readable_int_or_auto(value):
    return -1 if value == "auto" else int(value.rstrip("k")) * (1000 if value.endswith("k") else 1)


class FlexibleArgumentParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        self._deprecated = set()
        super().__init__(*args, **kwargs)
        self.register("action", argparse.BooleanOptionalAction, EnableDisableAction)

    def add_argument(self, *args, **kwargs):
        deprecated = kwargs.pop("deprecated", False)
        action = super().add_argument(*args, **kwargs)
        if isinstance(action, EnableDisableAction):
            action.option_strings = action.visible_option_strings
        if deprecated:
            self._deprecated.add(action)
        return action
''',
    "vllm/config/__init__.py": """
from dataclasses import dataclass, field
from typing import Literal


@dataclass
class SpeculativeConfig:
    method: Literal["mtp", "eagle"] | None = None
    num_speculative_tokens: int | None = None


@dataclass
class CompilationConfig:
    mode: int = 0


@dataclass
class VllmConfig:
    speculative_config: SpeculativeConfig | None = None
    compilation_config: CompilationConfig = field(default_factory=CompilationConfig)


@dataclass
class DeviceConfig:
    device: str = "auto"

    def __post_init__(self):
        raise RuntimeError("no GPU here")
""",
    "vllm/entrypoints/__init__.py": "",
    "vllm/entrypoints/cli/__init__.py": "",
    "vllm/entrypoints/cli/serve.py": """
import argparse

import heavy_engine_that_needs_a_gpu  # the engine: serve.py's own imports are never run

from vllm.entrypoints.common.cli_args import make_arg_parser

DESCRIPTION = "Launch the test server."


class ServeSubcommand:
    name = "serve"

    def subparser_init(self, subparsers: argparse._SubParsersAction):
        usage = "vllm serve [model_tag] [options]"
        serve_parser = subparsers.add_parser(self.name, description=DESCRIPTION, usage=usage)
        serve_parser = make_arg_parser(serve_parser)
        serve_parser.add_argument("--grpc", action="store_true", help="added by serve itself")
        return serve_parser
""",
    "vllm/entrypoints/common/__init__.py": "",
    "vllm/entrypoints/common/cli_args.py": """
import argparse
import importlib.metadata
import json

import torch  # not installed where the extractor runs: mocked

from vllm.config import CompilationConfig, DeviceConfig
from vllm.utils.argparse_utils import human_readable_int_or_auto


def optional_type(return_type):
    def _optional_type(val):
        return None if val in ("", "None") else return_type(val)

    return _optional_type


def parse_dataclass(val, cls=CompilationConfig):
    return cls(**json.loads(val))


def make_arg_parser(parser):
    DeviceConfig()
    parser.add_argument("model_tag", nargs="?")
    parser.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    parser.add_argument("--max-model-len", type=human_readable_int_or_auto)
    parser.add_argument("--kv-cache-dtype", default="auto", metavar=["auto", "fp8"])
    parser.add_argument("--speculative-config", "-sc", type=optional_type(json.loads))
    parser.add_argument("--compilation-config", "-cc", type=parse_dataclass)
    parser.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    parser.add_argument("--old-flag", type=int, deprecated=True, help="Deprecated: use --tensor-parallel-size.")
    parser.add_argument("--torch-version", default=importlib.metadata.version("torch"))
    parser.add_argument("--kernels", type=str(torch.__name__) and str)
    return parser
""",
    "vllm/tool_parsers/__init__.py": (
        "class ToolParserManager:\n    @classmethod\n"
        "    def list_registered(cls):\n        return ['hermes', 'glm47']\n"
    ),
    "vllm/reasoning/__init__.py": (
        "class ReasoningParserManager:\n    @classmethod\n    def list_registered(cls):\n        return ['glm45']\n"
    ),
    "vllm-9.9.0.dist-info/METADATA": (
        "Metadata-Version: 2.1\nName: vllm\nVersion: 9.9.0\nRequires-Dist: torch==2.99.0\nRequires-Dist: pydantic>=2\n"
    ),
    "vllm/_C.abi3.so": "not Python: never unpacked",
}


def build_wheel(path: Path, files: dict[str, str] = FAKE_VLLM) -> Path:
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text.lstrip("\n"))
    return path


def extract(wheel: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "deploygen.vllm.extract", "--wheel", str(wheel), "--out", str(out), *extra]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def fake_catalog(tmp_path_factory) -> tuple[dict, Path]:
    folder = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(folder / "vllm-9.9.0-py3-none-any.whl")
    out = folder / "9.9.0.json"
    result = extract(wheel, out)
    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {out}\n", "")
    return json.loads(out.read_text()), wheel


def flag(catalog: dict, option: str) -> dict:
    return next(f for f in catalog["flags"] if option in f["option_strings"])


def test_records_the_wheel_and_how_the_parser_was_built(fake_catalog):
    catalog, wheel = fake_catalog
    extraction = catalog["extraction"]
    assert catalog["vllm_version"] == "9.9.0"
    assert extraction["wheel"] == {
        "file": wheel.name,
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "source": "https://pypi.org/project/vllm/9.9.0/",
    }
    assert extraction["commands"][1] == (
        f"python -m deploygen.vllm.extract --wheel <dir>/{wheel.name} --python <venv>/bin/python "
        "--out schema/vllm/9.9.0.json"
    )
    # torch is imported by the parser's module and mocked; the engine module serve.py imports never is.
    assert "torch" in extraction["mocked_modules"]
    assert "heavy_engine_that_needs_a_gpu" not in extraction["mocked_modules"]
    assert catalog["parser_prog"] == "vllm serve"


def test_builds_the_parser_as_vllm_serve_does(fake_catalog):
    catalog, _ = fake_catalog
    options = [f["option_strings"] for f in catalog["flags"]]
    assert options == [
        ["-h", "--help"],
        [],
        ["--tensor-parallel-size", "-tp"],
        ["--max-model-len"],
        ["--kv-cache-dtype"],
        ["--speculative-config", "-sc"],
        ["--compilation-config", "-cc"],
        ["--enable-prefix-caching", "--disable-prefix-caching"],
        ["--old-flag"],
        ["--torch-version"],
        ["--kernels"],
        ["--grpc"],  # added by ServeSubcommand.subparser_init after make_arg_parser
    ]
    # importlib.metadata.version of a package that is not installed answers with the wheel's own pin.
    assert flag(catalog, "--torch-version")["default"] == "2.99.0"


def test_sees_through_vllms_value_converters(fake_catalog):
    catalog, _ = fake_catalog
    kinds = {f["option_strings"][0]: f["value_type"] for f in catalog["flags"] if f["option_strings"]}
    assert kinds["--tensor-parallel-size"] == {"kind": "int", "optional": False}
    assert kinds["--max-model-len"] == {"kind": "human_readable_int_or_auto", "optional": False}
    assert kinds["--speculative-config"] == {"kind": "json", "optional": True}
    assert kinds["--compilation-config"] == {
        "kind": "json",
        "optional": False,
        "dataclass": "vllm.config.CompilationConfig",
    }
    assert kinds["--enable-prefix-caching"] is None  # takes no value


def test_records_hidden_negatives_and_deprecation(fake_catalog):
    catalog, _ = fake_catalog
    caching = flag(catalog, "--enable-prefix-caching")
    assert caching["action"] == "custom:vllm.utils.argparse_utils.EnableDisableAction"
    assert caching["hidden_option_strings"] == ["--no-enable-prefix-caching"]
    assert caching["negative_option_strings"] == ["--disable-prefix-caching", "--no-enable-prefix-caching"]
    assert flag(catalog, "--old-flag")["deprecation"] == {
        "help_mentions_deprecated": True,
        "flexible_argument_parser_deprecated": True,
    }
    assert flag(catalog, "--tensor-parallel-size")["deprecation"] is None


def test_records_the_fields_behind_json_arguments_and_the_parser_registries(fake_catalog):
    catalog, _ = fake_catalog
    assert catalog["json_arguments"] == {
        "--speculative-config": {
            "class": "vllm.config.SpeculativeConfig",
            "fields": {
                "method": {"type": "Optional[Literal['mtp', 'eagle']]", "choices": ["mtp", "eagle"], "default": None},
                "num_speculative_tokens": {"type": "int | None", "choices": None, "default": None},
            },
        },
        "--compilation-config": {
            "class": "vllm.config.CompilationConfig",
            "fields": {"mode": {"type": "int", "choices": None, "default": 0}},
        },
    }
    assert catalog["registered_tool_call_parsers"] == ["glm47", "hermes"]
    assert catalog["registered_reasoning_parsers"] == ["glm45"]


def test_records_how_the_recipe_and_its_variants_parse(fake_catalog):
    catalog, _ = fake_catalog
    recipe = catalog["test_parse"]
    assert recipe["ok"] is False and recipe["exit_code"] == 2
    assert recipe["stderr"].splitlines()[-1].startswith("vllm serve: error: unrecognized arguments: --speculative")
    assert recipe["dotted_json_tokens"][0] == {
        "token": "--speculative-config.method",
        "json_flag": "--speculative-config",
        "keys": ["method"],
        "dest": "speculative_config",
    }
    parses = {p["label"]: p for p in catalog["extra_test_parses"]}
    assert parses["speculative_config_json"]["ok"] is True
    assert parses["speculative_config_json"]["parsed_values_of_given_flags"]["speculative_config"] == {
        "method": "mtp",
        "num_speculative_tokens": 3,
    }
    assert parses["bare_value_flag"]["stderr"].endswith("argument --max-model-len: expected one argument\n")


def test_the_same_wheel_gives_the_same_bytes(fake_catalog, tmp_path):
    catalog, wheel = fake_catalog
    again = tmp_path / "again.json"
    assert extract(wheel, again).returncode == 0
    assert json.loads(again.read_text()) == catalog


def test_refuses_a_file_that_is_not_a_vllm_wheel(tmp_path):
    not_a_zip = tmp_path / "vllm.whl"
    not_a_zip.write_text("hello")
    result = extract(not_a_zip, tmp_path / "out.json")
    assert (result.returncode, result.stderr) == (2, f"error: cannot read {not_a_zip}: File is not a zip file\n")
    other = build_wheel(tmp_path / "other.whl", {"other/__init__.py": ""})
    result = extract(other, tmp_path / "out.json")
    assert (result.returncode, result.stderr) == (
        2,
        f"error: {other} is not a vLLM wheel (no vllm-*.dist-info/METADATA)\n",
    )
    assert not (tmp_path / "out.json").exists()


def test_refuses_a_wheel_of_another_version(tmp_path):
    wheel = build_wheel(tmp_path / "vllm-9.9.0-py3-none-any.whl")
    result = extract(wheel, tmp_path / "out.json", "--version", "0.33.0")
    assert (result.returncode, result.stderr) == (2, f"error: {wheel.name} holds vLLM 9.9.0, not 0.33.0\n")


def test_a_parser_that_fails_to_build_reports_the_error_without_writing(tmp_path):
    broken = {**FAKE_VLLM, "vllm/config/__init__.py": "raise ValueError('config module is broken')\n"}
    wheel = build_wheel(tmp_path / "vllm-9.9.0-py3-none-any.whl", broken)
    result = extract(wheel, tmp_path / "out.json")
    assert (result.returncode, result.stderr) == (
        2,
        f"error: building vllm serve's parser from {wheel.name} failed: ValueError: config module is broken "
        "(at vllm/config/__init__.py:1)\n",
    )
    assert not (tmp_path / "out.json").exists()


def parse_type(return_type):
    """Shaped like vllm.engine.arg_utils.parse_type."""

    def _parse_type(val):
        return return_type(val)

    return _parse_type


def optional_type(return_type):
    """Shaped like vllm.engine.arg_utils.optional_type."""

    def _optional_type(val):
        return None if val == "None" else parse_type(return_type)(val)

    return _optional_type


def test_value_type_unwraps_nested_converters():
    assert value_type(optional_type(float)) == {"kind": "float", "optional": True}
    assert value_type(parse_type(json.loads)) == {"kind": "json", "optional": False}
    assert value_type(None) == {"kind": "str", "optional": False}


@pytest.mark.parametrize("version", ["0.19.0", "0.33.0"])
def test_the_committed_catalogs_record_their_wheel_and_parse_the_recipe(version):
    catalog = json.loads((ROOT / "schema" / "vllm" / f"{version}.json").read_text())
    wheel = catalog["extraction"]["wheel"]
    assert wheel["file"].startswith(f"vllm-{version}-") and len(wheel["sha256"]) == 64
    assert catalog["test_parse"]["ok"] is True
    assert catalog["test_parse"]["parsed_values_of_given_flags"]["tensor_parallel_size"] == 8
    assert "glm47" in catalog["registered_tool_call_parsers"]
    assert "mtp" in catalog["json_arguments"]["--speculative-config"]["fields"]["method"]["choices"]
