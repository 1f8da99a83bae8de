"""Every SGLang release has a catalog: the index, the stand-in extraction, and adding a release from a wheel."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import child
from deploygen.sglang import add_release, catalog
from deploygen.sglang.catalog import (
    CATALOG_DIR,
    catalog_version_for,
    entry_points,
    load_catalog,
    release_index,
    release_of_image,
    version_key,
)
from deploygen.sglang.extract import catalog_json

ROOT = Path(__file__).resolve().parents[1]
RELEASES = release_index()["releases"]


@pytest.mark.parametrize("version", list(RELEASES))
def test_every_release_maps_to_a_catalog_of_its_own_release(version: str) -> None:
    record = RELEASES[version]
    found = catalog_version_for(version)
    assert found == record["catalog"]
    assert found.split(".post")[0] == version.split(".post")[0]
    assert load_catalog(found).by_option["--model-path"].dest == "model_path"
    assert len(record["sha256"]) == 64 and record["wheel"].startswith(f"sglang-{version}-")
    if found != version:
        assert record["how"] == f"stand-ins; same parser as {found} (flags, test parses, compile_deep_gemm)"


@pytest.mark.parametrize("path", sorted(CATALOG_DIR.glob("[0-9]*.json")), ids=lambda path: path.stem)
def test_every_catalog_file_is_indexed_and_stored_in_the_compact_format(path: Path) -> None:
    text = path.read_text()
    data = json.loads(text)
    assert RELEASES[data["sglang_version"]]["catalog"] == path.stem == data["sglang_version"]
    assert text == catalog_json(data)
    # Named as SGLang names it: `sglang serve`, or launch_server.py under `python -m sglang.launch_server`.
    assert data["parser_prog"] in ("sglang serve", "launch_server.py")
    assert "entry_points" not in data  # the wheel's, recorded in the index
    # One flag a line, so that a changed flag is a one-line diff.
    flag_lines = [line for line in text.splitlines() if line.startswith('  {"option_strings": ')]
    assert [json.loads(line.rstrip(",")) for line in flag_lines] == data["flags"]


def test_the_index_is_ordered_by_version_and_stored_in_the_compact_format() -> None:
    assert list(RELEASES) == sorted(RELEASES, key=version_key)
    assert (CATALOG_DIR / "index.json").read_text() == catalog_json(release_index())


def test_the_versions_sort_as_releases_do() -> None:
    assert sorted(["0.5.11", "0.5.10.post1", "0.5.9", "0.5.10"], key=version_key) == [
        "0.5.9",
        "0.5.10",
        "0.5.10.post1",
        "0.5.11",
    ]


def test_an_unknown_version_has_no_catalog() -> None:
    assert catalog_version_for("0.4.99") is None
    assert catalog_version_for("0.5.10.post99") is None


@pytest.mark.parametrize("version", list(RELEASES))
def test_a_pinned_release_image_names_its_release(version: str) -> None:
    assert release_of_image(f"lmsysorg/sglang:v{version}") == version
    assert release_of_image(f"lmsysorg/sglang:v{version}-cu130") == version
    assert release_of_image(f"lmsysorg/sglang:v{version}-cu129-amd64@sha256:{'a' * 64}") == version


@pytest.mark.parametrize(
    "image",
    [
        "lmsysorg/sglang:latest",
        "lmsysorg/sglang:dev",
        "lmsysorg/sglang:nightly-dev-20261130-0a1b2c3d",
        "lmsysorg/sglang@sha256:" + "a" * 64,
        "lmsysorg/sglang:v0.4.99-cu130",
        "someone/sglang:v0.5.10",
    ],
)
def test_an_image_that_names_no_known_release_names_none(image: str) -> None:
    assert release_of_image(image) is None


def test_entry_points_say_which_releases_ship_sglang_serve() -> None:
    for version in RELEASES:
        points = entry_points(version)
        has_script = "sglang" in points["console_scripts"]
        assert has_script == bool(points["sglang_subcommands"])
        if has_script:
            assert points["console_scripts"]["sglang"] == "sglang.cli.main:main"
            assert "serve" in points["sglang_subcommands"]


# A tiny SGLang wheel: its parser asks torch about the GPU, as SGLang's does, and compile_deep_gemm imports a
# module that `sglang serve` does not (stood in while it is imported).
SERVER_ARGS = """
import argparse

import torch


class ServerArgs:
    @staticmethod
    def add_cli_args(parser):
        parser.add_argument("--model-path", "--model", type=str, required=True)
        parser.add_argument("--tp-size", "--tensor-parallel-size", dest="tensor_parallel_size", type=int, default=1)
        major, minor = torch.cuda.get_device_capability()
        parser.add_argument("--kv-cache-dtype", default="fp8_e4m3" if major >= 10 else "bfloat16")
        parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
{extra}

def prepare_server_args(argv):
    parser = argparse.ArgumentParser(prog="sglang serve")
    ServerArgs.add_cli_args(parser)
    parser.parse_args(argv)
"""
COMPILE_DEEP_GEMM = """
import argparse

from sglang.srt.entrypoints.http_server import launch_server


class CompileArgs:
    @staticmethod
    def add_cli_args(parser):
        parser.add_argument("--timeout", type=int, default=3600)
"""
CLI_MAIN = """
import argparse


def main():
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers(dest="subcommand", required=True)
    subparsers.add_parser("serve", add_help=False)
    subparsers.add_parser("version")
    parser.parse_known_args()
"""


def build_wheel(folder: Path, version: str, extra_flag: str = "", console_script: bool = True) -> Path:
    dist_info = f"sglang-{version}.dist-info"
    extra = f'        parser.add_argument("{extra_flag}")\n' if extra_flag else ""
    files = {
        "sglang/__init__.py": "",
        "sglang/launch_server.py": "from sglang.srt.server_args import prepare_server_args\n",
        "sglang/srt/__init__.py": "",
        "sglang/srt/server_args.py": SERVER_ARGS.format(extra=extra),
        "sglang/srt/entrypoints/__init__.py": "",
        "sglang/srt/entrypoints/http_server.py": "raise ImportError('needs the GPU stack')\n",
        "sglang/compile_deep_gemm.py": COMPILE_DEEP_GEMM,
        "sglang/cli/__init__.py": "",
        "sglang/cli/main.py": CLI_MAIN,
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: sglang\nVersion: {version}\n"
            "Requires-Dist: torch==2.9.1\nRequires-Dist: transformers==4.57.1\n"
        ),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/entry_points.txt": (
            "[console_scripts]\nsglang = sglang.cli.main:main\n" if console_script else "[console_scripts]\n"
        ),
    }
    files[f"{dist_info}/RECORD"] = "".join(f"{name},,\n" for name in files) + f"{dist_info}/RECORD,,\n"
    path = folder / f"sglang-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.fixture
def local_pypi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """pip finds wheels only in a local folder; the catalogs and the index are written to a scratch folder.

    The extraction's light dependencies are taken as installed (the tiny wheel needs none of them)."""
    wheels = tmp_path / "pypi"
    wheels.mkdir()
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    site = tmp_path / "cache" / "site-transformers-4.57.1"
    site.mkdir(parents=True)
    (site / ".complete").touch()
    catalogs = tmp_path / "schema" / "sglang"
    catalogs.mkdir(parents=True)
    monkeypatch.setattr(add_release, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(add_release, "CATALOG_DIR", catalogs)
    monkeypatch.setattr(add_release, "INDEX_PATH", catalogs / "index.json")
    monkeypatch.setattr(catalog, "INDEX_PATH", catalogs / "index.json")
    release_index.cache_clear()
    yield wheels
    release_index.cache_clear()


def test_adds_a_release_post_releases_with_the_same_parser_map_to_it(local_pypi: Path, capsys) -> None:
    wheel = build_wheel(local_pypi, "0.5.30")
    build_wheel(local_pypi, "0.5.30.post1")
    build_wheel(local_pypi, "0.5.30.post2", extra_flag="--new-flag")
    assert add_release.main(["0.5.30", "0.5.30.post1", "0.5.30.post2"]) == 0
    assert capsys.readouterr().out == (
        "sglang 0.5.30: catalog 0.5.30 (stand-ins); sglang-0.5.30-py3-none-any.whl\n"
        "sglang 0.5.30.post1: catalog 0.5.30 (stand-ins; same parser as 0.5.30 (flags, test parses, "
        "compile_deep_gemm)); sglang-0.5.30.post1-py3-none-any.whl\n"
        "sglang 0.5.30.post2: catalog 0.5.30.post2 (stand-ins; parser differs from 0.5.30); "
        "sglang-0.5.30.post2-py3-none-any.whl\n"
    )
    catalogs = add_release.CATALOG_DIR
    assert sorted(path.name for path in catalogs.iterdir()) == ["0.5.30.json", "0.5.30.post2.json", "index.json"]
    releases = json.loads((catalogs / "index.json").read_text())["releases"]
    assert releases["0.5.30"] == {
        "catalog": "0.5.30",
        "how": "stand-ins",
        "wheel": "sglang-0.5.30-py3-none-any.whl",
        "sha256": hashlib.sha256(wheel.read_bytes()).hexdigest(),
        "console_scripts": {"sglang": "sglang.cli.main:main"},
        "sglang_subcommands": ["serve", "version"],
    }
    assert releases["0.5.30.post1"]["catalog"] == "0.5.30"
    assert catalog_version_for("0.5.30.post1") == "0.5.30"

    extracted = json.loads((catalogs / "0.5.30.json").read_text())
    # The parser saw the modelled H200 (sm90, CUDA available): bfloat16 below sm100, as SGLang picks there.
    defaults = {flag["dest"]: flag["default"] for flag in extracted["flags"]}
    assert (defaults["kv_cache_dtype"], defaults["device"]) == ("bfloat16", "cuda")
    assert extracted["extraction"]["stand_in_modules_used"] == ["torch"]
    assert extracted["extraction"]["stand_in_versions"] == {"torch": "2.9.1"}
    assert extracted["extraction"]["compile_deep_gemm_stand_ins"] == [
        "sglang.srt.entrypoints",
        "sglang.srt.entrypoints.http_server",
    ]
    assert extracted["extraction"]["torch"] == {"version": "2.9.1", "cuda_available": True}
    assert [flag["option_strings"] for flag in extracted["compile_deep_gemm"]["flags_not_in_launch_server"]] == [
        ["--timeout"]
    ]


def test_extracting_the_same_wheel_twice_gives_the_same_bytes(local_pypi: Path) -> None:
    build_wheel(local_pypi, "0.5.30", console_script=False)
    assert add_release.main(["0.5.30"]) == 0
    first = {path.name: path.read_bytes() for path in add_release.CATALOG_DIR.iterdir()}
    assert add_release.main(["0.5.30"]) == 0
    assert {path.name: path.read_bytes() for path in add_release.CATALOG_DIR.iterdir()} == first
    record = json.loads(first["index.json"])["releases"]["0.5.30"]
    assert (record["console_scripts"], record["sglang_subcommands"]) == ({}, [])


def test_a_release_pypi_does_not_have_is_a_clear_error(local_pypi: Path, capsys) -> None:
    assert add_release.main(["0.5.31"]) == 1
    assert capsys.readouterr().err == (
        "error: pip download sglang==0.5.31 failed: ERROR: No matching distribution found for sglang==0.5.31\n"
    )
    assert list(add_release.CATALOG_DIR.iterdir()) == []


def test_a_real_import_catalog_that_the_stand_ins_contradict_is_refused(local_pypi: Path, capsys) -> None:
    build_wheel(local_pypi, "0.5.30")
    real = {
        "sglang_version": "0.5.30",
        "extraction": {"method": "real imports"},
        "flags": [],
        "compile_deep_gemm": {},
    }
    (add_release.CATALOG_DIR / "0.5.30.json").write_text(catalog_json(real))
    assert add_release.main(["0.5.30"]) == 1
    assert capsys.readouterr().err == (
        "error: the stand-in extraction of sglang 0.5.30 differs from its real-import catalog 0.5.30.json\n"
    )
    assert json.loads((add_release.CATALOG_DIR / "0.5.30.json").read_text()) == real


def test_the_command_runs_as_a_module_and_explains_itself() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "deploygen.sglang.add_release", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "Download an SGLang release from PyPI, extract its flag catalog and record it." in result.stdout


def test_the_catalog_command_adds_releases_and_reports_errors_without_a_traceback(local_pypi: Path, capsys) -> None:
    from deploygen.cli import main

    build_wheel(local_pypi, "0.5.30")
    assert main(["catalog", "add", "0.5.30", "0.5.31"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "sglang 0.5.30: catalog 0.5.30 (stand-ins); sglang-0.5.30-py3-none-any.whl\n"
    assert captured.err == (
        "error: pip download sglang==0.5.31 failed: ERROR: No matching distribution found for sglang==0.5.31\n"
    )
    assert catalog_version_for("0.5.30") == "0.5.30"


def test_a_version_without_a_catalog_says_which_exist_and_how_to_add_it(tmp_path: Path, cli) -> None:
    path = child(tmp_path, "image:\n  sglang_image: lmsysorg/sglang:v0.5.99-cu130\n  sglang_version: 0.5.99\n")
    result = cli("validate", str(path))
    first, last = list(RELEASES)[0], list(RELEASES)[-1]
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"{path}:5:3: error[sglang-catalog]: image.sglang_version: no flag catalog for SGLang 0.5.99\n"
        f"    hint: catalogs exist for SGLang {first} to {last} (schema/sglang/index.json); add a newer release "
        "with `python generate.py catalog add 0.5.99`\n"
    )
