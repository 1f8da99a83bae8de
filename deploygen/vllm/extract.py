"""Build the flag catalog of a vLLM release (schema/vllm/<version>.json) from `vllm serve`'s own parser,
taken from the release's wheel, without torch or a GPU.

    pip download vllm==0.33.0 --no-deps -d /tmp/wheels
    python -m venv /tmp/vllm-extract && /tmp/vllm-extract/bin/pip install -r deploygen/vllm/extract-requirements.txt
    python -m deploygen.vllm.extract --wheel /tmp/wheels/vllm-0.33.0-*.whl \\
        --python /tmp/vllm-extract/bin/python --out schema/vllm/0.33.0.json

The wheel's Python files and metadata are unpacked to a temporary folder; `deploygen.vllm.docs_parser`
builds the parser there in a child process with the interpreter given (an environment with pydantic and the
light packages that vLLM's docs build installs, extract-requirements.txt; torch and the GPU libraries are
mocked). The catalog records the wheel's file name and sha256, the commands, the interpreter's packages
and every module that was mocked.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from deploygen.errors import UserError
from deploygen.files import write_atomic
from deploygen.paths import ROOT
from deploygen.sglang.extract import catalog_json

REQUIREMENTS = Path(__file__).with_name("extract-requirements.txt")


class ExtractionError(UserError):
    """The wheel cannot be read, or the parser cannot be built from it."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as wheel:
        for block in iter(lambda: wheel.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def unpack_python(wheel: Path, site: Path) -> str:
    """The wheel's .py files and its dist-info (compiled extensions are never loaded); its version."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist() if n.endswith(".py") or ".dist-info/" in n]
            archive.extractall(site, names)
    except (OSError, zipfile.BadZipFile) as exc:
        raise ExtractionError(f"cannot read {wheel}: {exc}") from None
    metadata = next(site.glob("vllm-*.dist-info/METADATA"), None)
    if metadata is None:
        raise ExtractionError(f"{wheel} is not a vLLM wheel (no vllm-*.dist-info/METADATA)")
    version = next((line.split(":", 1)[1].strip() for line in metadata.read_text().splitlines()
                    if line.startswith("Version:")), None)  # fmt: skip
    if version is None:
        raise ExtractionError(f"{metadata.name} of {wheel} names no version")
    return version


def _failure(stderr: str, site: Path) -> str:
    """The child's exception line and the innermost place in the wheel's code it came from."""
    lines = stderr.strip().splitlines() or ["(no output)"]
    frames = re.findall(r'File "([^"]+)", line (\d+)', stderr)
    inside = [f"{Path(file).relative_to(site)}:{line}" for file, line in frames if file.startswith(str(site))]
    return lines[-1] + (f" (at {inside[-1]})" if inside else "")


def _environment(python: str) -> dict[str, str]:
    """The extraction interpreter's Python version and packages (`pip freeze`)."""
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    freeze = subprocess.run([python, "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=False)
    packages = sorted(line for line in freeze.stdout.splitlines() if "==" in line)
    return {"python": version, "packages": packages}


def extract_catalog(wheel: Path, python: str, expected_version: str | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vllm-wheel-") as temp:
        site = Path(temp)
        version = unpack_python(wheel, site)
        if expected_version and version != expected_version:
            raise ExtractionError(f"{wheel.name} holds vLLM {version}, not {expected_version}")
        command = [python, "-m", "deploygen.vllm.docs_parser", str(site)]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
        child = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
        if child.returncode != 0:
            raise ExtractionError(
                f"building vllm serve's parser from {wheel.name} failed: {_failure(child.stderr, site)}"
            )
        body = json.loads(child.stdout)
    if body["vllm_version"] != version:
        raise ExtractionError(f"the parser reports vLLM {body['vllm_version']}, the wheel {version}")
    environment = _environment(python)
    sha256 = sha256_of(wheel)
    mocked = body.pop("mocked_modules")
    return {
        "vllm_version": version,
        "extracted_with": (
            f"vLLM docs-hook method (mocked imports, no torch, no GPU) on the wheel {wheel.name} "
            f"(sha256 {sha256}); Python {environment['python']}; deploygen.vllm.extract"
        ),
        "extraction": {
            "method": "docs hook: mocked imports, no torch, no GPU",
            "wheel": {"file": wheel.name, "sha256": sha256, "source": f"https://pypi.org/project/vllm/{version}/"},
            "commands": [
                f"pip download vllm=={version} --no-deps -d <dir>",
                f"python -m deploygen.vllm.extract --wheel <dir>/{wheel.name} --python <venv>/bin/python "
                f"--out schema/vllm/{version}.json",
            ],
            "steps": [
                "unpack the wheel's .py files and dist-info (no compiled extension is loaded)",
                "mock vllm._C, vllm.model_executor.custom_op, vllm.utils.torch_utils, torch.nn, vllm.ir, and "
                "every package vLLM imports outside try: that is not installed "
                "(docs/mkdocs/hooks/generate_argparse.py)",
                "importlib.metadata.version of a package not installed: the wheel's == pin",
                "FlexibleArgumentParser(prog='vllm') -> add_subparsers -> ServeSubcommand.subparser_init "
                "(vllm/entrypoints/cli/serve.py), DeviceConfig.__post_init__ patched out",
            ],
            "python": environment["python"],
            "pythonhashseed": "0",
            "machine": platform.machine(),
            "environment_packages": environment["packages"],
            "mocked_modules": mocked,
            "docs_hook": "https://github.com/vllm-project/vllm/blob/main/docs/mkdocs/hooks/generate_argparse.py",
            "script": "deploygen.vllm.extract",
        },
        **body,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m deploygen.vllm.extract",
        description="Write the `vllm serve` flag catalog of a vLLM wheel.",
    )
    parser.add_argument("--wheel", type=Path, required=True, help="a vLLM wheel (pip download vllm==X --no-deps)")
    parser.add_argument("--out", type=Path, required=True, help="where to write it, e.g. schema/vllm/0.33.0.json")
    parser.add_argument(
        "--python",
        default=sys.executable,
        help=f"the interpreter that builds the parser: one with {REQUIREMENTS.name} installed (default: this one)",
    )
    parser.add_argument("--version", help="the vLLM version the wheel must hold")
    args = parser.parse_args(argv)
    try:
        write_atomic(args.out, catalog_json(extract_catalog(args.wheel, args.python, args.version)))
    except UserError as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
