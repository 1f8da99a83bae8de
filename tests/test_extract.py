"""The SGLang catalog extractor: parser serialisation, test parses, the CLI and the Modal wrapper."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from deploygen.files import write_atomic
from deploygen.sglang.extract import (
    ExtractionError,
    capture_parser,
    catalog_json,
    describe_parser,
    parse_test,
)

ROOT = Path(__file__).resolve().parents[1]
CATALOG_0_5_10 = json.loads((ROOT / "schema" / "sglang" / "0.5.10.json").read_text())


class DeprecatedStoreTrueAction(argparse.Action):
    """Shaped like SGLang's: stores True, and names the flag to use instead."""

    def __init__(self, option_strings, dest, new_flag=None, nargs=0, const=True, default=False, **kwargs):
        self.new_flag = new_flag
        super().__init__(option_strings, dest, nargs=nargs, const=const, default=default, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, True)


def human_readable_int(text: str) -> int:
    return int(text.replace("K", "000"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sglang serve")
    parser.add_argument("--model-path", "--model", type=str, required=True, help="The path of the model weights.")
    parser.add_argument("--tp-size", "--tensor-parallel-size", dest="tensor_parallel_size", type=int, default=1)
    parser.add_argument("--mem-fraction-static", type=float)
    parser.add_argument("--max-total-tokens", type=human_readable_int)
    parser.add_argument("--kv-cache-dtype", choices=["auto", "fp8_e4m3", "bfloat16"], default="auto")
    parser.add_argument("--enable-metrics", action="store_true")
    parser.add_argument("--enable-fused-qk-norm-rope", action=argparse.BooleanOptionalAction)
    parser.add_argument(
        "--stream-output",
        dest="incremental_streaming_output",
        action=DeprecatedStoreTrueAction,
        new_flag="--incremental-streaming-output",
        help="[Deprecated] Use --incremental-streaming-output instead.",
    )
    parser.add_argument("--cuda-graph-bs", type=int, nargs="+", metavar="BS")
    speculative = parser.add_argument_group("speculative decoding")
    speculative.add_argument("--speculative-num-steps", type=int)
    # What add_argument(..., deprecated=True) sets on Python 3.13+.
    speculative.add_argument("--speculative-old-flag", type=int).deprecated = True
    return parser


def entry(option_strings: list[str], dest: str, **fields: Any) -> dict[str, Any]:
    """A serialised action: a plain optional `store` unless the fields say otherwise."""
    return {
        "option_strings": option_strings,
        "dest": dest,
        "action": "store",
        "is_boolean_flag": False,
        "type": None,
        "nargs": None,
        "default": None,
        "const": None,
        "choices": None,
        "required": False,
        "metavar": None,
        "help": None,
        "group": "options",
        "deprecation": None,
    } | fields


def test_describes_every_action_in_parser_order() -> None:
    assert describe_parser(build_parser()) == [
        entry(
            ["-h", "--help"],
            "help",
            action="help",
            nargs=0,
            default="==SUPPRESS==",
            help="show this help message and exit",
        ),
        entry(
            ["--model-path", "--model"], "model_path", type="str", required=True, help="The path of the model weights."
        ),
        entry(["--tp-size", "--tensor-parallel-size"], "tensor_parallel_size", type="int", default=1),
        entry(["--mem-fraction-static"], "mem_fraction_static", type="float"),
        entry(["--max-total-tokens"], "max_total_tokens", type=f"{__name__}.human_readable_int"),
        entry(["--kv-cache-dtype"], "kv_cache_dtype", default="auto", choices=["auto", "fp8_e4m3", "bfloat16"]),
        entry(
            ["--enable-metrics"],
            "enable_metrics",
            action="store_true",
            is_boolean_flag=True,
            nargs=0,
            default=False,
            const=True,
        ),
        entry(
            ["--enable-fused-qk-norm-rope", "--no-enable-fused-qk-norm-rope"],
            "enable_fused_qk_norm_rope",
            action="BooleanOptionalAction",
            is_boolean_flag=True,
            nargs=0,
        ),
        entry(
            ["--stream-output"],
            "incremental_streaming_output",
            action=f"custom:{__name__}.DeprecatedStoreTrueAction",
            is_boolean_flag=True,
            nargs=0,
            default=False,
            const=True,
            help="[Deprecated] Use --incremental-streaming-output instead.",
            deprecation={
                "action_class": f"{__name__}.DeprecatedStoreTrueAction",
                "new_flag": "--incremental-streaming-output",
                "help_mentions_deprecated": True,
            },
        ),
        entry(["--cuda-graph-bs"], "cuda_graph_bs", type="int", nargs="+", metavar="BS"),
        entry(["--speculative-num-steps"], "speculative_num_steps", type="int", group="speculative decoding"),
        entry(
            ["--speculative-old-flag"],
            "speculative_old_flag",
            type="int",
            group="speculative decoding",
            deprecation={"argparse_deprecated": True},
        ),
    ]


def test_makes_defaults_json_safe() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ids", type=int, nargs="*", default=(1, 2))
    parser.add_argument("--ratio", type=float, default=float("inf"))
    parser.add_argument("--path", type=Path, default=Path("/models"))
    parser.add_argument("--backend", choices={"pytorch", "flashinfer", "ascend"})
    ids, ratio, path, backend = describe_parser(parser)[1:]
    assert (ids["default"], ratio["default"], path["default"]) == ([1, 2], "inf", "PosixPath('/models')")
    assert (path["type"], backend["choices"]) == ("pathlib.Path", ["ascend", "flashinfer", "pytorch"])


def test_parse_test_records_an_abbreviation_and_the_parsed_values() -> None:
    argv = ["--model", "m", "--tp", "8", "--cuda-graph-bs", "1", "2", "--max-total-tokens", "64K"]
    argv += ["--mem-fraction-static=0.85", "--stream-output"]
    assert parse_test(build_parser(), argv) == {
        "argv": argv,
        "tokens": [
            {"token": "--model", "exact_option": True, "dest": "model_path"},
            {
                "token": "--tp",
                "exact_option": False,
                "prefix_matches": ["--tp-size"],
                "accepted_as_abbreviation_of": "--tp-size",
                "dest": "tensor_parallel_size",
            },
            {"token": "--cuda-graph-bs", "exact_option": True, "dest": "cuda_graph_bs"},
            {"token": "--max-total-tokens", "exact_option": True, "dest": "max_total_tokens"},
            {"token": "--mem-fraction-static=0.85", "exact_option": True, "dest": "mem_fraction_static"},
            {"token": "--stream-output", "exact_option": True, "dest": "incremental_streaming_output"},
        ],
        "ok": True,
        "parsed_values_of_given_flags": {
            "cuda_graph_bs": [1, 2],
            "incremental_streaming_output": True,
            "max_total_tokens": 64000,
            "mem_fraction_static": 0.85,
            "model_path": "m",
            "tensor_parallel_size": 8,
        },
        "stderr": "",
    }


def test_parse_test_rejects_an_unknown_flag_with_argparse_message() -> None:
    result = parse_test(build_parser(), ["--model-path", "m", "--nsa-decode-backend", "trtllm"])
    assert result["tokens"][1] == {"token": "--nsa-decode-backend", "exact_option": False, "prefix_matches": []}
    assert (result["ok"], result["exit_code"]) == (False, 2)
    assert result["stderr"].startswith("usage: sglang serve [-h] --model-path MODEL_PATH\n")
    assert result["stderr"].endswith("sglang serve: error: unrecognized arguments: --nsa-decode-backend trtllm\n")


def test_parse_test_lists_every_option_an_ambiguous_prefix_could_mean() -> None:
    result = parse_test(build_parser(), ["--model-path", "m", "--enable"])
    assert result["tokens"][1] == {
        "token": "--enable",
        "exact_option": False,
        "prefix_matches": ["--enable-metrics", "--enable-fused-qk-norm-rope"],
    }
    assert result["stderr"].splitlines()[-1] == (
        "sglang serve: error: ambiguous option: --enable could match --enable-metrics, --enable-fused-qk-norm-rope"
    )


def test_capture_parser_hands_back_the_parser_without_parsing() -> None:
    built = build_parser()

    def prepare_server_args(argv: list[str]) -> None:
        built.parse_args(argv)  # would fail: --model-path is required
        raise AssertionError("parse_args returned")

    assert capture_parser(prepare_server_args) is built
    with pytest.raises(ExtractionError, match=r"returned without calling ArgumentParser\.parse_args"):
        capture_parser(lambda argv: None)


def _stand_in_type(name: str | None) -> Any:
    """A converter that serialises to `name`: the builtin itself, or a function given that module and name."""
    builtins = {None: None, "str": str, "int": int, "float": float}
    if name in builtins:
        return builtins[name]

    def convert(text: str) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            return text

    convert.__module__, _, convert.__qualname__ = name.rpartition(".")
    return convert


def rebuild_parser(catalog: dict[str, Any]) -> argparse.ArgumentParser:
    """The catalog's parser, rebuilt from its entries; SGLang's own Action classes are left out."""
    parser = argparse.ArgumentParser(prog=catalog["parser_prog"])
    for flag in catalog["flags"]:
        options = flag["option_strings"]
        common = {"dest": flag["dest"], "default": flag["default"], "required": flag["required"], "help": flag["help"]}
        if flag["action"] == "store":
            parser.add_argument(
                *options,
                type=_stand_in_type(flag["type"]),
                nargs=flag["nargs"],
                const=flag["const"],
                choices=flag["choices"],
                metavar=flag["metavar"],
                **common,
            )
        elif flag["action"] == "store_true":
            parser.add_argument(*options, action="store_true", **common)
        elif flag["action"] == "BooleanOptionalAction":
            positive = [o for o in options if not (o.startswith("--no-") and f"--{o[5:]}" in options)]
            parser.add_argument(*positive, action=argparse.BooleanOptionalAction, **common)
    return parser


def test_round_trips_the_0_5_10_catalog_flags() -> None:
    rebuilt_actions = ("help", "store", "store_true", "BooleanOptionalAction")
    reproducible = [flag for flag in CATALOG_0_5_10["flags"] if flag["action"] in rebuilt_actions]
    assert len(reproducible) == CATALOG_0_5_10["flag_count"] - 5  # SGLang's LoRAPathAction and Deprecated*Action
    assert describe_parser(rebuild_parser(CATALOG_0_5_10)) == reproducible


@pytest.mark.parametrize("recorded", [CATALOG_0_5_10["test_parse"], *CATALOG_0_5_10["extra_test_parses"]])
def test_round_trips_the_0_5_10_test_parses(recorded: dict[str, Any]) -> None:
    result = parse_test(rebuild_parser(CATALOG_0_5_10), recorded["argv"])
    assert (result["tokens"], result["ok"]) == (recorded["tokens"], recorded["ok"])
    if recorded["ok"]:
        assert result["parsed_values_of_given_flags"] == recorded["parsed_values_of_given_flags"]
    else:
        # The usage text also lists the Action classes left out of the rebuilt parser; the error is the same.
        assert result["stderr"].splitlines()[-1] == recorded["stderr"].splitlines()[-1]


def test_writes_the_catalog_atomically_in_the_committed_format(tmp_path: Path) -> None:
    path = tmp_path / "schema" / "sglang" / "0.5.10.json"
    write_atomic(path, catalog_json(CATALOG_0_5_10))
    assert path.read_bytes() == (ROOT / "schema" / "sglang" / "0.5.10.json").read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["0.5.10.json"]


FAKE_SGLANG = {
    "sglang-0.5.10.dist-info/METADATA": "Metadata-Version: 2.1\nName: sglang\nVersion: 0.5.10\n",
    "torch/__init__.py": "__version__ = '2.9.1'\n\n\nclass cuda:\n    is_available = staticmethod(lambda: False)\n",
    "sglang/__init__.py": "",
    "sglang/launch_server.py": "from sglang.srt.server_args import prepare_server_args\n",
    "sglang/srt/__init__.py": "",
    "sglang/srt/server_args.py": """
import argparse


class ServerArgs:
    @staticmethod
    def add_cli_args(parser):
        parser.add_argument("--model-path", "--model", type=str, required=True)
        parser.add_argument("--tp-size", "--tensor-parallel-size", dest="tensor_parallel_size", type=int, default=1)
        parser.add_argument("--sampling-backend", choices={"pytorch", "flashinfer", "ascend"})


def prepare_server_args(argv):
    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    parser.parse_args(argv)
    raise RuntimeError("the extractor must not get past parse_args")
""",
    "sglang/compile_deep_gemm.py": """
class CompileArgs:
    @staticmethod
    def add_cli_args(parser):
        parser.add_argument("--timeout", type=int, default=3600)
""",
}


def run_extractor(site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONHASHSEED"}
    env["PYTHONPATH"] = str(site)
    return subprocess.run(
        [sys.executable, "-m", "deploygen.sglang.extract", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def fake_sglang(tmp_path: Path) -> Path:
    """A tiny installed 'sglang 0.5.10' with the entry points the extractor uses, and a torch stand-in."""
    site = tmp_path / "site"
    for relative, text in FAKE_SGLANG.items():
        (site / relative).parent.mkdir(parents=True, exist_ok=True)
        (site / relative).write_text(text)
    return site


def test_cli_extracts_the_installed_sglang_in_a_real_process(fake_sglang: Path, tmp_path: Path) -> None:
    out = tmp_path / "0.5.10.json"
    result = run_extractor(fake_sglang, "--out", str(out))
    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {out}\n", "")
    text = out.read_text()
    catalog = json.loads(text)
    assert text == catalog_json(catalog)
    assert catalog["sglang_version"] == "0.5.10"
    assert catalog["extraction"]["pythonhashseed"] == "0"
    assert catalog["extraction"]["method"] == "real imports"
    assert catalog["entry_points"] == {"console_scripts": {}, "sglang_subcommands": []}
    assert (catalog["parser_prog"], catalog["flag_count"]) == ("sglang serve", 4)
    assert [flag["option_strings"] for flag in catalog["flags"]] == [
        ["-h", "--help"],
        ["--model-path", "--model"],
        ["--tp-size", "--tensor-parallel-size"],
        ["--sampling-backend"],
    ]
    assert catalog["flags"][3]["choices"] == ["ascend", "flashinfer", "pytorch"]
    assert catalog["test_parse"]["tokens"][2]["accepted_as_abbreviation_of"] == "--tp-size"
    assert catalog["test_parse"]["ok"] is False
    assert "unrecognized arguments: --served-model-name glm-5.1 --host 0.0.0.0" in catalog["test_parse"]["stderr"]
    assert [parse["label"] for parse in catalog["extra_test_parses"]] == [
        "dsa_flags_nsa_backend",
        "dsa_modernized",
        "original_without_nsa_backend_flags",
    ]
    compile_deep_gemm = catalog["compile_deep_gemm"]
    assert [flag["option_strings"] for flag in compile_deep_gemm["flags_not_in_launch_server"]] == [["--timeout"]]
    assert compile_deep_gemm["model_tp_aliases"] == {
        "--model": "model_path",
        "--model-path": "model_path",
        "--tp": None,
        "--tp-size": "tensor_parallel_size",
        "--tensor-parallel-size": "tensor_parallel_size",
    }
    # Same SGLang, same bytes.
    again = tmp_path / "again.json"
    assert run_extractor(fake_sglang, "--out", str(again)).returncode == 0
    assert again.read_bytes() == out.read_bytes()


def test_cli_refuses_another_version_than_the_installed_one(fake_sglang: Path, tmp_path: Path) -> None:
    result = run_extractor(fake_sglang, "--out", str(tmp_path / "x.json"), "--version", "0.5.23")
    assert (result.returncode, result.stderr) == (2, "error: sglang 0.5.10 is installed here, not 0.5.23\n")
    assert not (tmp_path / "x.json").exists()


def test_cli_without_sglang_says_how_to_run_it_in_the_pinned_image(tmp_path: Path) -> None:
    result = run_extractor(tmp_path, "--out", str(tmp_path / "x.json"), "--version", "0.5.10.post1")
    assert (result.returncode, result.stderr) == (
        2,
        "error: sglang is not installed here; run the extraction inside the pinned image:\n"
        "  SGLANG_VERSION=0.5.10.post1 modal run -m deploygen.sglang.extract_on_modal "
        "--out schema/sglang/0.5.10.post1.json\n",
    )


def test_modal_wrapper_imports_offline_and_asks_for_cpu_only() -> None:
    from deploygen.sglang import extract_on_modal

    info = extract_on_modal.extract.info()
    assert (info.cpu, info.gpus, info.memory_mib, info.timeout) == (2.0, [], 8192, 900)
    assert extract_on_modal.SGLANG_IMAGE == f"lmsysorg/sglang:v{extract_on_modal.SGLANG_VERSION}"
