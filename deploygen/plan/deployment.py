"""The concrete deployment of a validated profile: derived flags, the engine's argv, the GPU architecture."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from deploygen.facts import gpu_facts
from deploygen.load import ResolvedProfile
from deploygen.load.yaml_source import Path_
from deploygen.sglang.catalog import Catalog, serve_command
from deploygen.validate.derived import (
    derived_tp_size,
    exit_grace_period,
    model_dir,
    server_concurrency,
    vllm_parallel_sizes,
)
from deploygen.validate.image_steps import LOCAL_KINDS, LocalSource, content_digest, local_source, pip_options, steps
from deploygen.validate.warmup import derive_requests
from deploygen.vllm.catalog import VllmCatalog

# The autoscaler keep-alive re-applies its window this often (a missed run heals at the next one).
AUTOSCALER_SCHEDULE = "*/5 * * * *"
AUTOSCALER_PERIOD_S = 5 * 60


@dataclass(frozen=True)
class Flag:
    """One option of the engine's command line, with the profile value that set it."""

    option: str
    values: tuple[str, ...]  # () for a bare flag
    source: Path_  # ("sglang", name) for a flag the profile sets; the value it derives from otherwise


@dataclass(frozen=True)
class ImageStep:
    """One build step of the serving image: Modal's Image method and its arguments, in profile order."""

    method: str
    values: tuple[str, ...]  # packages or commands; for a local file or folder, its remote path
    source: Path_  # ("image", "steps", index)
    local: LocalSource | None = None  # the file or folder of add_local_file / add_local_dir
    digest: str = ""  # sha256 of its content: an edited file changes the render
    options: tuple[tuple[str, str], ...] = ()  # keyword arguments: a pip step's index URLs


def plan_image_steps(profile: ResolvedProfile) -> tuple[ImageStep, ...]:
    planned = []
    for index, kind, value in steps(profile):
        source = ("image", "steps", index)
        if kind in LOCAL_KINDS:
            local = local_source(profile, index, kind, value["local"])
            assert isinstance(local, LocalSource), "validated: the file exists inside the project"
            planned.append(ImageStep(kind, (value["remote"],), source, local, content_digest(local)))
        else:
            options = tuple(pip_options(profile.data["image"]["steps"][index]).items())
            planned.append(ImageStep(kind, tuple(value), source, options=options))
    return tuple(planned)


@dataclass(frozen=True)
class Deployment:
    profile: ResolvedProfile
    catalog: Catalog | VllmCatalog
    flags: tuple[Flag, ...]
    command: tuple[str, ...]  # what starts the engine's server: `sglang serve`, `vllm serve`...
    argv: list[str]  # the command, then the flags
    compile_argv: list[str]  # empty for vLLM: it compiles at its first start, into the cache volume
    gpu_arch: str
    # @app.server (target_concurrency, max_concurrency); max None: unlimited.
    server_concurrency: tuple[float, int | None]
    # How long before a keep-alive window opens the autoscaler raises min_containers.
    keepalive_lead_s: int
    # @app.server's exit_grace_period: seconds after SIGTERM for @modal.exit and the volume commit.
    exit_grace_period: int
    warmup: tuple[dict, ...] = ()  # the warmup requests, derived from the profile (validate/warmup.py)
    image_steps: tuple[ImageStep, ...] = ()  # the profile's build steps of the serving image

    @property
    def engine(self) -> str:
        return self.profile.data["engine"]


def _flag_tokens(name: str, value: Any, catalog: Catalog) -> list[str]:
    flag = catalog.by_option.get(f"--{name}")
    if flag is None:  # not in the catalog: only with image.flag_check off, written as the profile says
        if isinstance(value, bool):
            return [f"--{name}"] if value else []
        return [f"--{name}", *(str(v) for v in (value if isinstance(value, list) else [value]))]
    if flag.is_boolean_optional:
        return [f"--{name}" if value else f"--no-{name}"]
    if not flag.takes_value:
        return [f"--{name}"] if value else []
    if isinstance(value, list):
        return [f"--{name}", *(str(v) for v in value)]
    return [f"--{name}", str(value)]


def _vllm_flag_tokens(name: str, value: Any, catalog: VllmCatalog) -> list[str]:
    """`vllm serve` tokens for a profile value: BooleanOptional false writes vLLM's negative option, a
    mapping is one JSON argument, `json-arg.key` stays vLLM's dotted form."""
    base, dot, _ = name.partition(".")
    flag = catalog.by_option[f"--{base}"]
    if dot:
        return [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    if flag.is_boolean_optional:
        return [flag.positive if value else flag.negative]
    if not flag.takes_value:
        return [f"--{name}"] if value else []
    if isinstance(value, dict):
        return [f"--{name}", json.dumps(value)]
    if isinstance(value, list):
        return [f"--{name}", *(str(v) for v in value)]
    return [f"--{name}", str(value)]


def plan_vllm_deployment(profile: ResolvedProfile, catalog: VllmCatalog) -> Deployment:
    """`vllm serve MODEL_PATH` with the derived flags first, then the profile's `vllm:` matrix."""
    data = profile.data
    flags = dict(data.get("vllm") or {})
    tp, _ = vllm_parallel_sizes(profile)
    derived: dict[str, tuple[Any, Path_]] = {
        "served-model-name": (data["model"]["name"], ("model", "name")),
        **({} if "tensor-parallel-size" in flags else {"tensor-parallel-size": (tp, ("gpu", "count"))}),
        "host": ("0.0.0.0", ()),
        "port": (data["server"]["port"], ("server", "port")),
    }
    ordered = {**derived, **{name: (value, ("vllm", name)) for name, value in flags.items()}}
    planned = []
    for name, (value, source) in ordered.items():
        tokens = _vllm_flag_tokens(name, value, catalog)
        if tokens:
            planned.append(Flag(tokens[0], tuple(tokens[1:]), source))
    tokens = [token for flag in planned for token in (flag.option, *flag.values)]
    return Deployment(
        profile=profile,
        catalog=catalog,
        flags=tuple(planned),
        command=("vllm", "serve"),
        argv=["vllm", "serve", model_dir(profile), *tokens],
        compile_argv=[],
        gpu_arch=gpu_facts()[data["gpu"]["type"]]["arch"],
        warmup=derive_requests(profile),
        image_steps=plan_image_steps(profile),
        server_concurrency=server_concurrency(profile),
        keepalive_lead_s=keepalive_lead_s(profile),
        exit_grace_period=exit_grace_period(profile),
    )


def plan_deployment(profile: ResolvedProfile, catalog: Catalog | VllmCatalog) -> Deployment:
    if isinstance(catalog, VllmCatalog):
        return plan_vllm_deployment(profile, catalog)
    data = profile.data
    flags = dict(data.get("sglang", {}))
    has_tp = any(k in flags for k in ("tp-size", "tensor-parallel-size"))
    nodes = data["gpu"]["nodes"]
    # Flags the command always carries, from the values they derive from.
    derived: dict[str, tuple[Any, Path_]] = {
        "model-path": (model_dir(profile), ("model", "path")),
        "served-model-name": (data["model"]["name"], ("model", "name")),
        **({} if has_tp else {"tp-size": (derived_tp_size(profile), ("gpu", "nodes" if nodes > 1 else "count"))}),
        "host": ("0.0.0.0", ()),
        "port": (data["server"]["port"], ("server", "port")),
    }
    ordered = {**derived, **{name: (value, ("sglang", name)) for name, value in flags.items()}}
    planned = []
    for name, (value, source) in ordered.items():
        tokens = _flag_tokens(name, value, catalog)
        if tokens:
            planned.append(Flag(tokens[0], tuple(tokens[1:]), source))
    tokens = [token for flag in planned for token in (flag.option, *flag.values)]
    command = serve_command(data["image"]["sglang_version"])
    return Deployment(
        profile=profile,
        catalog=catalog,
        flags=tuple(planned),
        # `sglang serve` where the pinned release ships it (sglang PR #40647 recommends it), else launch_server.
        command=command,
        argv=[*command, *tokens],
        compile_argv=["python3", "-m", "sglang.compile_deep_gemm", *tokens],
        gpu_arch=gpu_facts()[data["gpu"]["type"]]["arch"],
        warmup=derive_requests(profile),
        image_steps=plan_image_steps(profile),
        server_concurrency=server_concurrency(profile),
        keepalive_lead_s=keepalive_lead_s(profile),
        exit_grace_period=exit_grace_period(profile),
    )


def keepalive_lead_s(profile: ResolvedProfile) -> int:
    """The planner's cold start (slow volume, cached kernels, warmup) in whole minutes, plus one period
    of the autoscaler schedule: raised that early, the replica is warm when the window opens."""
    from deploygen.plan.capacity import cold_start_estimate_s

    return math.ceil(cold_start_estimate_s(profile) / 60) * 60 + AUTOSCALER_PERIOD_S
