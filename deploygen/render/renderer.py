"""Jinja rendering, ruff formatting and atomic writes of the generated deploy.py."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2

from deploygen.paths import PACKAGE_DIR, ROOT, TEMPLATES_DIR
from deploygen.plan.deployment import Deployment
from deploygen.render.literals import py_literal


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "deploygen" / "jinja"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # a read-only home only costs the compile time
    return jinja2.FileSystemBytecodeCache(str(folder))


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        # templates/, plus the package's request paths, which the generated file includes verbatim.
        loader=jinja2.FileSystemLoader([TEMPLATES_DIR, PACKAGE_DIR / "operate"]),
        # Compiled templates are reused across runs; Jinja checks each template's mtime itself.
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["py"] = py_literal
    return env


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else [sys.executable, "-m", "ruff"]


def format_python(sources: list[str]) -> list[str]:
    """ruff format (pinned in requirements.txt), one process for all files, so renders read as hand-written."""
    with tempfile.TemporaryDirectory(prefix="deploygen-") as folder:
        paths = [Path(folder) / f"deploy_{index}.py" for index in range(len(sources))]
        for path, source in zip(paths, sources, strict=True):
            path.write_text(source)
        result = subprocess.run(
            [*_ruff(), "format", "--quiet", "--no-cache", "--config", str(ROOT / "pyproject.toml"), *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ruff format rejected a rendered file (a template bug):\n{result.stderr}")
        return [path.read_text() for path in paths]


def render_deployments(deployments: list[Deployment]) -> list[str]:
    template = _environment().get_template("deploy.py.j2")
    return format_python([template.render(p=d.profile.data, d=d) for d in deployments])


def render_deployment(deployment: Deployment) -> str:
    return render_deployments([deployment])[0]
