"""The concrete deployment of a validated profile: derived flags, the SGLang argv, caches, constants."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploygen.facts import DATA_DIR, gpu_facts
from deploygen.load import ResolvedProfile
from deploygen.load.yaml_source import display_path
from deploygen.sglang.catalog import Catalog

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES_DIR = ROOT / "templates"


@dataclass(frozen=True)
class Deployment:
    profile: ResolvedProfile
    catalog: Catalog
    flags: list[tuple[str, str | list[str] | None]]
    argv: list[str]
    compile_argv: list[str]
    gpu_arch: str
    digest: str

    @property
    def constant_flags(self) -> dict[str, str]:
        """Flags whose value is one of the file's constants: the command reads them from there."""
        constants = {"--model-path": "MODEL_PATH", "--served-model-name": "MODEL_NAME", "--port": "str(port)"}
        if ("--tp-size", str(self.profile.data["gpu"]["count"])) in self.flags:
            constants["--tp-size"] = "str(GPU_COUNT)"
        return constants

    @property
    def sources(self) -> list[str]:
        return [display_path(p) for p in self.profile.sources]

    @property
    def image_slug(self) -> str:
        """A folder name for the image: caches built by one image never serve another."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", self.profile.data["image"]["sglang_image"].split("/")[-1])[:80]


def derived_tp_size(profile: ResolvedProfile) -> int:
    flags = profile.data.get("sglang", {})
    pp = flags.get("pp-size", flags.get("pipeline-parallel-size", 1))
    gpus = profile.data["gpu"]["count"]
    return gpus // pp if isinstance(pp, int) and pp > 0 else gpus


def _flag_tokens(name: str, value: Any, catalog: Catalog) -> list[str]:
    flag = catalog.by_option[f"--{name}"]
    if flag.is_boolean_optional:
        return [f"--{name}" if value else f"--no-{name}"]
    if not flag.takes_value:
        return [f"--{name}"] if value else []
    if isinstance(value, list):
        return [f"--{name}", *(str(v) for v in value)]
    return [f"--{name}", str(value)]


def plan_deployment(profile: ResolvedProfile, catalog: Catalog) -> Deployment:
    data = profile.data
    flags = dict(data.get("sglang", {}))
    has_tp = any(k in flags for k in ("tp-size", "tensor-parallel-size"))
    derived = {
        "model-path": data["model"]["path"],
        "served-model-name": data["model"]["name"],
        **({} if has_tp else {"tp-size": derived_tp_size(profile)}),
        "host": "0.0.0.0",
        "port": data["server"]["port"],
    }
    ordered = {**derived, **flags}
    tokens: list[str] = []
    rendered: list[tuple[str, Any]] = []
    for name, value in ordered.items():
        part = _flag_tokens(name, value, catalog)
        tokens += part
        if part:
            rendered.append((part[0], part[1:] if len(part) > 2 else (part[1] if len(part) == 2 else None)))
    return Deployment(
        profile=profile,
        catalog=catalog,
        flags=rendered,
        argv=["python3", "-m", "sglang.launch_server", *tokens],
        compile_argv=["python3", "-m", "sglang.compile_deep_gemm", *tokens],
        gpu_arch=gpu_facts()[data["gpu"]["type"]]["arch"],
        digest=inputs_digest(profile, catalog),
    )


def inputs_digest(profile: ResolvedProfile, catalog: Catalog) -> str:
    """A digest of every file the render depends on, so a changed input shows up in the header."""
    files = [
        *profile.sources,
        catalog.path,
        ROOT / "schema" / "profile.schema.json",
        DATA_DIR / "gpus.yaml",
        DATA_DIR / "models" / f"{profile.data['model']['facts']}.yaml",
        *sorted(TEMPLATES_DIR.rglob("*.j2")),
    ]
    digest = hashlib.sha256()
    for path in files:
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else path.name
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
