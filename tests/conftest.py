"""Shared test helpers: the repository root and the real command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, input: str | None = None) -> subprocess.CompletedProcess:
    """`python generate.py ARGS` as a user runs it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli
