"""Values derived from a profile that both the rules and the later stages read: one home for each.

These read a profile whose schema has been checked; numeric flags that are not numbers fall back to
their default here (flag_problems reports them).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from deploygen.facts import gpu_facts
from deploygen.load import ResolvedProfile
from deploygen.memory import MemoryInputs
from deploygen.models import ModelFacts, load_model_facts
from deploygen.models.facts import KV_DTYPE_BYTES
from deploygen.runtime.engine import DRAIN_SECONDS, KILL_WAIT_SECONDS
from deploygen.runtime.weights import hf_snapshot_dir
from deploygen.sglang.catalog import Catalog
from deploygen.validate.flags import profile_catalog

TP_FLAGS = ("tp-size", "tensor-parallel-size")
EAGLE_ALGORITHMS = ("EAGLE", "EAGLE3", "NEXTN")
# SGLang's max-running-requests when speculative decoding is on and the profile leaves it unset
# (docs/sources.md#spec-v2).
EAGLE_MAX_RUNNING_REQUESTS = 48
PP_FLAGS = ("pp-size", "pipeline-parallel-size")


# Engine.stop returns at most this long after the grace: the wait after SIGKILL and the output drain.
STOP_OVERHEAD = KILL_WAIT_SECONDS + DRAIN_SECONDS
# Room for the volume commit Modal runs after the exit handlers.
VOLUME_COMMIT_MARGIN = 5


def shutdown_seconds(profile: ResolvedProfile) -> float:
    """How long a stopping container needs after SIGTERM: @modal.exit stops SGLang within the grace period
    plus STOP_OVERHEAD, then Modal commits the volumes."""
    return profile.data["lifecycle"]["shutdown"]["grace_period"] + STOP_OVERHEAD + VOLUME_COMMIT_MARGIN


def serves_with_app_server(profile: ResolvedProfile) -> bool:
    """@app.server renders for `interface: server` and for every multi-node profile (docs/multinode.md)."""
    return profile.data["server"]["interface"] == "server" or profile.data["gpu"]["nodes"] > 1


def exit_grace_period(profile: ResolvedProfile) -> int:
    """@app.server's exit_grace_period: the profile's, else whole seconds that fit the shutdown."""
    explicit = profile.data["server"].get("exit_grace_period")
    return explicit if explicit is not None else math.ceil(shutdown_seconds(profile))


def model_facts(profile: ResolvedProfile) -> ModelFacts:
    """The facts of the profile's model (data/models/<model.facts>.yaml), checked against its schema."""
    return load_model_facts(profile.data["model"]["facts"])


def model_dir(profile: ResolvedProfile) -> str:
    """The folder the engine loads: model.path, or with weights_layout hf-cache the snapshot folder of the
    pinned commit in the Hugging Face cache that is the weights volume."""
    model = profile.data["model"]
    if model.get("weights_layout") != "hf-cache":
        return model["path"]
    return hf_snapshot_dir(profile.data["volumes"]["weights"]["mount"], model["repo"], model["revision"])


def number_flag(profile: ResolvedProfile, *names: str, default: Any = None) -> Any:
    """A numeric flag, or the default when it is unset or not a number."""
    value = profile.flag(*names, default=default)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def catalog_default(profile: ResolvedProfile, name: str) -> Any:
    """The pinned SGLang's default of an option (None when its catalog is unknown or records none)."""
    catalog, _ = profile_catalog(profile)
    flag = catalog.by_option.get(f"--{name}") if catalog else None
    return flag.default if flag is not None else None


def max_running_requests(profile: ResolvedProfile) -> tuple[int | None, bool]:
    """SGLang's max-running-requests, when known before start-up, and whether the profile set it.

    Unset, SGLang sizes it from the KV pool at startup (None here), except with EAGLE-style speculative
    decoding, where it defaults to 48."""
    running = number_flag(profile, "max-running-requests")
    if running is not None:
        return running, True
    if profile.flag("speculative-algorithm") in EAGLE_ALGORITHMS:
        return EAGLE_MAX_RUNNING_REQUESTS, False
    return None, False


def total_gpus(profile: ResolvedProfile) -> int:
    """The GPUs of one replica: gpu.count on each of gpu.nodes containers."""
    gpu = profile.data["gpu"]
    return gpu["count"] * gpu.get("nodes", 1)


def derived_tp_size(profile: ResolvedProfile) -> int:
    """tp-size when the profile leaves it unset: every GPU of the replica, over the pipeline stages."""
    pp = profile.flag(*PP_FLAGS, default=1)
    gpus = total_gpus(profile)
    return gpus // pp if isinstance(pp, int) and pp > 0 else gpus


def parallel_sizes(profile: ResolvedProfile) -> tuple[int, int]:
    """(tp, pp) as SGLang will run them."""
    return number_flag(profile, *TP_FLAGS, default=derived_tp_size(profile)), number_flag(profile, *PP_FLAGS, default=1)


def gpu_arch(profile: ResolvedProfile) -> str:
    """The GPU's compute capability (sm103 for a B300): what compiled kernels are keyed by."""
    return gpu_facts()[profile.data["gpu"]["type"]]["arch"]


def gpu_family(profile: ResolvedProfile) -> str:
    """The kernel family SGLang picks backends by (sm100 for a B200 and a B300), from data/gpus.yaml."""
    return gpu_facts()[profile.data["gpu"]["type"]]["family"]


# DeepGEMM's FP8 kernels exist for Hopper and Blackwell only (docs/sources.md#jit-caches).
DEEPGEMM_FAMILIES = ("sm90", "sm100")


def precompiles_deepgemm(profile: ResolvedProfile) -> bool:
    """Whether deploy.py runs SGLang's DeepGEMM precompile: lifecycle.compile.enabled when the profile says,
    else (unset) exactly when there is something to compile: an FP8 model on a GPU DeepGEMM has kernels for."""
    if profile.data["engine"] != "sglang":
        return False
    enabled = profile.data["lifecycle"]["compile"]["enabled"]
    if enabled is not None:
        return enabled
    return model_facts(profile).quantization == "fp8" and gpu_family(profile) in DEEPGEMM_FAMILIES


def no_precompile_reason(profile: ResolvedProfile) -> str:
    """Why an SGLang deployment has no DeepGEMM precompile, in words for a comment or a plan row."""
    if profile.data["lifecycle"]["compile"]["enabled"] is False:
        return "lifecycle.compile.enabled is false"
    quantization = model_facts(profile).quantization
    if quantization != "fp8":
        return f"the model's weights are not FP8 (quantization {quantization}), so there is nothing to precompile"
    return f"DeepGEMM has no kernels for {profile.data['gpu']['type']} ({gpu_arch(profile)})"


def compile_step(profile: ResolvedProfile) -> str | None:
    """What this deployment compiles into the compile-cache volume (None: nothing): SGLang's DeepGEMM
    precompile (precompiles_deepgemm), or vLLM's torch.compile at its first start (unless eager)."""
    if profile.data["engine"] == "vllm":
        return None if profile.data.get("vllm", {}).get("enforce-eager") else "vLLM's torch.compile at first start"
    return "the DeepGEMM precompile" if precompiles_deepgemm(profile) else None


def kv_cache_dtype(profile: ResolvedProfile) -> tuple[str, bool]:
    """The KV cache dtype SGLang will use, and whether the profile chose it (False: SGLang's `auto`)."""
    flag = profile.flag("kv-cache-dtype")
    if flag in (None, "auto"):
        # SGLang picks FP8 KV for DSA models on SM100 (docs/sources.md#kv-dtype-default); otherwise auto is
        # the model's dtype.
        dsa_on_blackwell = model_facts(profile).attention == "dsa" and gpu_family(profile) == "sm100"
        return ("fp8_e4m3" if dsa_on_blackwell else "bfloat16"), False
    return ("bfloat16" if flag == "bf16" else str(flag)), True


def linear_state_ratio(profile: ResolvedProfile, catalog: Catalog | None) -> tuple[float | None, bool]:
    """--mamba-full-memory-ratio of a hybrid linear-attention model (None for others), and whether the
    profile set it (False: the pinned SGLang's default, from its catalog)."""
    if not model_facts(profile).hybrid_linear_attention:
        return None, False
    ratio = number_flag(profile, "mamba-full-memory-ratio")
    if ratio is not None:
        return ratio, True
    flag = catalog.by_option.get("--mamba-full-memory-ratio") if catalog else None
    return (flag.default if flag is not None else None), False


def memory_inputs(profile: ResolvedProfile, catalog: Catalog | None) -> MemoryInputs | None:
    """The memory model's inputs for a profile; None when it leaves mem-fraction-static unset or uses a
    KV cache dtype deploygen has no size for (the rules skip it, the planner says why)."""
    facts = model_facts(profile)
    fraction = number_flag(profile, "mem-fraction-static")
    dtype, _ = kv_cache_dtype(profile)
    if fraction is None or dtype not in KV_DTYPE_BYTES:
        return None
    tp, pp = parallel_sizes(profile)
    return MemoryInputs(
        gpu_memory_gb=gpu_facts()[profile.data["gpu"]["type"]]["memory_gb"],
        mem_fraction_static=fraction,
        checkpoint_gb=facts.checkpoint_gb,
        tp=tp,
        pp=pp,
        kv_bytes_per_token=facts.kv_bytes_per_token(dtype),
        kv_split_across_tp=facts.kv_split_across_tp,
        kv_heads=facts.kv_heads,
        linear_state_ratio=linear_state_ratio(profile, catalog)[0],
    )


# --- vLLM --------------------------------------------------------------------------------------------

VLLM_TP_FLAGS = ("tensor-parallel-size",)
VLLM_PP_FLAGS = ("pipeline-parallel-size",)


def vllm_flag(profile: ResolvedProfile, name: str, default: Any = None) -> Any:
    """A vLLM flag of the profile's `vllm:` section."""
    return (profile.data.get("vllm") or {}).get(name, default)


def vllm_number(profile: ResolvedProfile, name: str, default: Any = None) -> Any:
    value = vllm_flag(profile, name)
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


def vllm_parallel_sizes(profile: ResolvedProfile) -> tuple[int, int]:
    """(tp, pp) as vLLM will run them: tensor-parallel-size defaults to the container's GPUs over pp."""
    pp = vllm_number(profile, "pipeline-parallel-size", default=1)
    tp = vllm_number(profile, "tensor-parallel-size")
    if tp is None:
        tp = profile.data["gpu"]["count"] // pp if pp > 0 else profile.data["gpu"]["count"]
    return tp, pp


def human_tokens(value: Any) -> int | None:
    """vLLM's human_readable_int for a token count: 65536, "64k" (x1000), "64K" (x1024); None otherwise."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgG]?)", str(value).strip())
    if not match:
        return None
    number, suffix = match.groups()
    scale = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "K": 2**10, "M": 2**20, "G": 2**30}[suffix]
    return int(float(number) * scale)


def vllm_max_model_len(profile: ResolvedProfile) -> tuple[int, bool]:
    """The per-request ceiling (prompt + output) and whether the profile set it (False: the model's own)."""
    value = vllm_flag(profile, "max-model-len")
    tokens = None if value in (None, "auto", -1) else human_tokens(value)
    return (tokens, True) if tokens is not None else (model_facts(profile).max_context, False)


def vllm_speculative_config(profile: ResolvedProfile) -> dict[str, Any] | None:
    """--speculative-config as vLLM assembles it: the whole mapping (or JSON text), or its dotted keys."""
    flags = profile.data.get("vllm") or {}
    whole = flags.get("speculative-config")
    if isinstance(whole, str):
        try:
            whole = json.loads(whole)
        except ValueError:
            whole = None
    keys = {name.split(".", 1)[1]: v for name, v in flags.items() if name.startswith("speculative-config.")}
    if not isinstance(whole, dict) and not keys:
        return None
    return {**(whole if isinstance(whole, dict) else {}), **keys}


def vllm_kv_cache_dtype(profile: ResolvedProfile) -> str:
    """The KV dtype key of the model data: vLLM's `auto` is the model's activation dtype on every GPU (no
    per-architecture FP8 default as in SGLang); fp8 means fp8_e4m3 on NVIDIA."""
    value = str(vllm_flag(profile, "kv-cache-dtype", "auto"))
    return {"auto": "bfloat16", "fp8": "fp8_e4m3", "bf16": "bfloat16"}.get(value, value)


def vllm_memory_inputs(profile: ResolvedProfile, utilization: float) -> MemoryInputs | None:
    """The memory model's inputs for a vLLM profile: --gpu-memory-utilization is the share of each GPU's
    whole memory vLLM may use for weights, activations and the KV cache (SGLang's mem-fraction-static
    covers weights and KV only), so the model's KV pool is an upper bound for vLLM's."""
    facts = model_facts(profile)
    dtype = vllm_kv_cache_dtype(profile)
    if dtype not in KV_DTYPE_BYTES:
        return None
    tp, pp = vllm_parallel_sizes(profile)
    return MemoryInputs(
        gpu_memory_gb=gpu_facts()[profile.data["gpu"]["type"]]["memory_gb"],
        mem_fraction_static=utilization,
        checkpoint_gb=facts.checkpoint_gb,
        tp=tp,
        pp=pp,
        kv_bytes_per_token=facts.kv_bytes_per_token(dtype),
        kv_split_across_tp=facts.kv_split_across_tp,
        kv_heads=facts.kv_heads,
    )


def server_concurrency(profile: ResolvedProfile) -> tuple[float, int | None]:
    """@app.server (target_concurrency, max_concurrency), with the profile's fallbacks resolved.

    target: scaling.target_concurrency, else target_inputs, else max_inputs (the request count the
    cls form already scales on). max: scaling.max_concurrency, else SGLang's max-running-requests when
    it is known before start-up (a replica takes what its running slots hold; Modal answers 429 above
    it instead of queueing inside SGLang), else None (unlimited).
    """
    scaling = profile.data["scaling"]
    target = scaling.get("target_concurrency")
    if target is None:
        target = scaling["target_inputs"] if scaling.get("target_inputs") is not None else scaling["max_inputs"]
    limit = scaling.get("max_concurrency")
    if limit is None and profile.data.get("engine", "sglang") == "sglang":
        limit, _ = max_running_requests(profile)
    return target, limit


def cache_dir(profile: ResolvedProfile) -> str:
    """The folder the render points every JIT cache at: one per GPU architecture and image, on the compile-cache
    volume when there is one (deploygen/render/view.py writes it as CACHE_DIR)."""
    engine = profile.data["engine"]
    image = profile.data["image"][f"{engine}_image"]
    base = (
        profile.data["volumes"]["compile_cache"]["mount"]
        if "compile_cache" in profile.data["volumes"]
        else ("/root/.cache/jit")
    )
    return f"{base}/{gpu_arch(profile)}-{image_slug(image)}"


def image_slug(image: str) -> str:
    """The image as a folder name: only [A-Za-z0-9._-], at most 80 characters."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", image.split("/")[-1])[:80]
