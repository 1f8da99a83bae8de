"""Data flows one way: no module of deploygen imports from a later stage (imports inside functions too)."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "deploygen"

# Each top-level module or folder of deploygen/, in pipeline order. A module may import from its own
# layer and earlier ones, never from a later one.
LAYERS: list[set[str]] = [
    # Shared by every stage: errors, repository paths, atomic writes, did-you-mean; and the code that
    # runs inside the container, which is included verbatim into deploy.py and so imports nothing here.
    # What a secret looks like, and printing safely to a terminal.
    {"errors", "paths", "files", "suggest", "runtime", "secrets", "terminal"},
    # What the world is made of: the memory model, the SGLang (and vLLM) flag catalogs.
    {"memory", "sglang", "vllm"},
    {"load"},
    # Facts about GPUs and models: data files read with the loader's line numbers.
    {"facts", "models"},
    {"validate"},
    {"plan"},
    # load -> validate -> plan as one call, returning the checked result every command takes.
    {"pipeline"},
    {"render"},
    {"operate"},
    {"cli"},
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "deploygen" and len(parts) > 1 else None


def _imports(path) -> list[tuple[int, str]]:
    """(line, imported deploygen module) of every import in a file, relative ones resolved."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base]).strip(".")
            found += [(node.lineno, base)]
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if not node.module]
    return found


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts == ("__init__",):
            continue
        yield parts[0], path


def test_every_part_of_the_package_has_a_place_in_the_pipeline_order():
    unplaced = sorted({top for top, _ in _modules()} - set(LAYER))
    assert unplaced == [], f"add {unplaced} to LAYERS in {__file__}"


def test_no_module_imports_from_a_later_stage():
    backwards = []
    for top, path in _modules():
        for line, module in _imports(path):
            target = _top(module)
            if target is not None and target in LAYER and LAYER[target] > LAYER.get(top, -1):
                backwards.append(f"{path.relative_to(ROOT)}:{line}: {top} imports {module}")
    assert backwards == []


def test_the_stages_are_in_pipeline_order():
    order = ["load", "validate", "plan", "render", "operate", "cli"]
    assert [LAYER[name] for name in order] == sorted(LAYER[name] for name in order)
    assert len({LAYER[name] for name in order}) == len(order)
