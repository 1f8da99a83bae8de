"""The runtime modules as the rendered file includes them: their code verbatim, their imports merged.

A runtime module (deploygen/runtime/*.py) is real Python with its own imports. The rendered file is
one module, so its docstring and imports are taken off here: the standard-library imports go to the
file's import block, imports of sibling runtime modules are dropped (their code is in the same file).
"""

from __future__ import annotations

import ast
import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from deploygen.paths import PACKAGE_DIR

RUNTIME_DIR = PACKAGE_DIR / "runtime"
RUNTIME_PACKAGE = "deploygen.runtime"


@dataclass(frozen=True)
class RuntimeModule:
    path: str  # relative to the repository, for the comment that introduces it
    imports: frozenset[str]  # standard-library import statements, one name each
    code: str  # everything after the imports, verbatim


@functools.cache
def runtime_module(name: str) -> RuntimeModule:
    path = RUNTIME_DIR / f"{name}.py"
    source = path.read_text()
    tree = ast.parse(source)
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring
    imports: set[str] = set()
    # The code starts after the docstring and the imports; comments between them belong to the code.
    header_end = tree.body[0].end_lineno if len(body) < len(tree.body) else 0
    in_header = True
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if not in_header:
                raise ValueError(f"{path}:{node.lineno}: imports belong at the top of a runtime module")
            imports |= _statements(node, path)
            header_end = node.end_lineno
        else:
            in_header = False
    lines = source.splitlines(keepends=True)
    code = "".join(lines[header_end:]).strip("\n") + "\n"
    return RuntimeModule(f"deploygen/runtime/{name}.py", frozenset(imports), code)


def import_block(statements: set[str]) -> list[str]:
    """The statements in isort's order: `import x` lines, then `from x import a, b` merged per module."""
    plain = sorted(s for s in statements if s.startswith("import "))
    names: dict[str, list[str]] = {}
    for statement in statements - set(plain):
        _, module, _, name = statement.split(" ", 3)
        names.setdefault(module, []).append(name)
    merged = [f"from {module} import {', '.join(sorted(names[module]))}" for module in sorted(names)]
    # One file, one namespace: `import time` and `from datetime import time` cannot both be in it.
    bound: dict[str, str] = {}
    for statement in statements:
        name = statement.split()[-1].split(".")[0]
        if bound.setdefault(name, statement) != statement:
            raise ValueError(f"runtime modules bind {name!r} twice: {bound[name]!r} and {statement!r}")
    return plain + merged


def _statements(node: ast.Import | ast.ImportFrom, path: Path) -> set[str]:
    if isinstance(node, ast.ImportFrom):
        module = node.module or ""
        if module == "__future__" or module.startswith(RUNTIME_PACKAGE):
            return set()
        _require_stdlib(module, node, path)
        return {f"from {module} import {_alias(a)}" for a in node.names}
    for alias in node.names:
        _require_stdlib(alias.name, node, path)
    return {f"import {_alias(a)}" for a in node.names}


def _alias(alias: ast.alias) -> str:
    return f"{alias.name} as {alias.asname}" if alias.asname else alias.name


def _require_stdlib(module: str, node: ast.stmt, path: Path) -> None:
    # The download image has no SGLang and the SGLang image no Hub client pin: a third-party package
    # is imported inside the function that needs it, in the image that has it.
    if module.split(".")[0] not in sys.stdlib_module_names:
        raise ValueError(f"{path}:{node.lineno}: import {module} inside the function that needs it")
