"""Jinja rendering, ruff formatting and atomic writes of the generated deploy.py."""

from __future__ import annotations

import functools
import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jinja2

from deploygen.files import cache_dir, write_atomic
from deploygen.paths import ROOT, TEMPLATES_DIR
from deploygen.plan.deployment import Deployment
from deploygen.render.view import build_view


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    folder = cache_dir("jinja")
    return jinja2.FileSystemBytecodeCache(str(folder)) if folder else None


@functools.cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        # Compiled templates are reused across runs; Jinja checks each template's mtime itself.
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    return env


def _ruff() -> list[str]:
    beside = Path(sys.executable).with_name("ruff")
    if beside.is_file():
        return [str(beside)]
    found = shutil.which("ruff")
    return [found] if found else [sys.executable, "-m", "ruff"]


def format_python(sources: list[str]) -> list[str]:
    """ruff format (pinned in requirements.txt), so renders read as hand-written.

    Each result is kept in the user's cache under a digest of the source, the ruff binary and its
    configuration: an unchanged render costs no ruff process, a changed one runs ruff once for all.
    """
    ruff = _ruff()
    config = ROOT / "pyproject.toml"
    identity = hashlib.sha256(" ".join(ruff).encode() + b"\0" + config.read_bytes())
    for part in ruff[:1]:
        stat = Path(part).stat()
        identity.update(f"{stat.st_mtime_ns}:{stat.st_size}".encode())
    keys = [_digest(identity, source) for source in sources]
    cache = cache_dir("format")
    formatted = [_cached(cache, key) for key in keys]
    missing = [index for index, text in enumerate(formatted) if text is None]
    if missing:
        fresh = _run_ruff(ruff, config, [sources[index] for index in missing])
        for index, text in zip(missing, fresh, strict=True):
            formatted[index] = text
            if cache is not None:
                try:
                    write_atomic(cache / f"{keys[index]}.py", text)
                except OSError:
                    pass  # a full or read-only cache only costs the next run the ruff process
    return formatted


def _digest(identity: hashlib._Hash, source: str) -> str:
    digest = identity.copy()
    digest.update(source.encode())
    return digest.hexdigest()


def _cached(cache: Path | None, key: str) -> str | None:
    try:
        return (cache / f"{key}.py").read_text() if cache is not None else None
    except (OSError, UnicodeDecodeError):
        return None


def _run_ruff(ruff: list[str], config: Path, sources: list[str]) -> list[str]:
    """One ruff process for all sources."""
    with tempfile.TemporaryDirectory(prefix="deploygen-") as folder:
        paths = [Path(folder) / f"deploy_{index}.py" for index in range(len(sources))]
        for path, source in zip(paths, sources, strict=True):
            path.write_text(source)
        result = subprocess.run(
            [*ruff, "format", "--quiet", "--no-cache", "--config", str(config), *map(str, paths)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"ruff format rejected a rendered file (a template bug):\n{result.stderr}")
        return [path.read_text() for path in paths]


def render_deployments(deployments: list[Deployment], out_dir: Path | None = None) -> list[str]:
    """The rendered files; out_dir: where they will be written, when not generated/<profile>/."""
    template = _environment().get_template("deploy.py.j2")
    return format_python([template.render(v=build_view(d, out_dir)) for d in deployments])


def render_deployment(deployment: Deployment) -> str:
    return render_deployments([deployment])[0]
