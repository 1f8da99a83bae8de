"""Capacity plan of a validated profile: memory per GPU, concurrency, cold start, and the cost section.

Every number is a quantity (deploygen.plan.quantities) whose source names the profile field, the data
file entry, or the formula that derives it. The table, the JSON and the chart (deploygen.plan.report)
all read the same plan.
"""

from __future__ import annotations

from typing import Any

from deploygen.errors import UserError
from deploygen.facts import VOLUME_READ_GB_PER_S, cluster_facts, gpu_facts
from deploygen.load import ResolvedProfile
from deploygen.load.yaml_source import display_path
from deploygen.memory import memory_per_gpu
from deploygen.models.facts import KV_DTYPE_BYTES
from deploygen.plan.cost import (
    DAYS_PER_MONTH,
    HOURS_PER_MONTH,
    NO_CAP,
    PRICES,
    cost_section,
    decimal,
    max_replicas,
    prices,
)
from deploygen.plan.quantities import flag_source, models_file, quantity, where
from deploygen.sglang.catalog import Catalog
from deploygen.validate import derived
from deploygen.vllm.catalog import VllmCatalog

# "This JIT phase took 12 to 15 minutes" on first boot without cached kernels: a third-party report,
# unverified (docs/sources.md#third-party-cluster-report).
JIT_COMPILE_S = 15 * 60
# An assumption: SGLang's own warmup plus the generated four warmup requests on a warm engine.
WARMUP_S = 30


def _kv_dtype_source(profile: ResolvedProfile, dtype: str, chosen: bool) -> str:
    if chosen:
        return flag_source(profile, "kv-cache-dtype")
    given = flag_source(profile, "kv-cache-dtype") if profile.flag("kv-cache-dtype") else "--kv-cache-dtype unset"
    if dtype != "bfloat16":
        return f"{given}: SGLang picks FP8 KV for DSA models on SM100 (docs/sources.md#kv-dtype-default)"
    return f"{given}: auto is the model's dtype (SGLang --kv-cache-dtype help), BF16"


def _memory(profile: ResolvedProfile, catalog: Catalog, running: int | None) -> dict[str, Any]:
    data = profile.data
    facts = derived.model_facts(profile)
    gpu_type = data["gpu"]["type"]
    models = models_file(profile)
    if derived.number_flag(profile, "mem-fraction-static") is None:
        raise UserError(
            f"{profile.name} leaves sglang.mem-fraction-static unset: SGLang sizes its memory pool at "
            "startup, so the planner cannot; set it to plan the KV cache"
        )
    dtype, chosen = derived.kv_cache_dtype(profile)
    if dtype not in KV_DTYPE_BYTES:
        raise UserError(
            f"{profile.name}: deploygen has no KV size for kv-cache-dtype {dtype} (it knows "
            f"{', '.join(KV_DTYPE_BYTES)}); plan with one of those"
        )
    ratio, ratio_set = derived.linear_state_ratio(profile, catalog)
    if facts.hybrid_linear_attention and ratio is None:
        raise UserError(
            f"{profile.name} leaves sglang.mamba-full-memory-ratio unset and SGLang {catalog.version} sizes it at "
            "startup, so the planner cannot; set it to plan the KV cache"
        )
    inputs = derived.memory_inputs(profile, catalog)
    assert inputs is not None  # both reasons for None are reported above
    memory = memory_per_gpu(inputs)
    tp, pp = inputs.tp, inputs.pp

    out: dict[str, Any] = {
        "gpu_memory_gb": quantity("GPU memory", inputs.gpu_memory_gb, "GB", f"data/gpus.yaml {gpu_type}.memory_gb"),
        "weights_per_gpu_gb": quantity(
            "weights per GPU",
            round(memory.weights_gb, 4),
            "GB",
            f"{models} checkpoint_bytes {facts.checkpoint_bytes:,} B / (tp {tp} x pp {pp})",
        ),
        "mem_fraction_static": quantity(
            "mem-fraction-static", inputs.mem_fraction_static, "", flag_source(profile, "mem-fraction-static")
        ),
        "static_pool_gb": quantity(
            "static pool (weights + KV)", round(memory.static_pool_gb, 4), "GB", "GPU memory x mem-fraction-static"
        ),
        "kv_pool_gb": quantity("KV pool", round(memory.kv_pool_gb, 4), "GB", "static pool - weights per GPU"),
        "headroom_gb": quantity(
            "headroom (activations, CUDA graphs, NCCL)",
            round(memory.headroom_gb, 4),
            "GB",
            "GPU memory - static pool",
        ),
    }

    if memory.linear_state_pool_gb is not None:
        if ratio_set:
            ratio_source = flag_source(profile, "mamba-full-memory-ratio")
        else:
            ratio_source = f"SGLang {data['image']['sglang_version']} default of --mamba-full-memory-ratio"
        out["mamba_full_memory_ratio"] = quantity("mamba-full-memory-ratio", ratio, "", ratio_source)
        out["linear_state_pool_gb"] = quantity(
            "linear-attention state pool",
            round(memory.linear_state_pool_gb, 4),
            "GB",
            f"KV pool x ratio / (1 + ratio): SGLang handle_max_mamba_cache ({models} linear_attention_layers)",
        )
        out["full_attention_kv_pool_gb"] = quantity(
            "KV pool of full-attention layers",
            round(memory.full_attention_kv_pool_gb, 4),
            "GB",
            "KV pool / (1 + ratio)",
        )

    bytes_total = inputs.kv_bytes_per_token
    # Pipeline stages split the layers, so each GPU keeps KV for 1/pp of them.
    if inputs.kv_split_across_tp:
        heads = inputs.kv_heads
        how = f"/ (min(tp {tp}, kv_heads {heads}) x pp {pp})" if heads else f"/ (tp {tp} x pp {pp})"
    else:
        how = f"/ pp {pp} ({facts.attention} attention: not split across TP)"
    out["kv_cache_dtype"] = quantity("KV cache dtype", dtype, "", _kv_dtype_source(profile, dtype, chosen))
    out["kv_bytes_per_token"] = quantity(
        "KV bytes per token per GPU",
        memory.kv_bytes_per_token,
        "B",
        f"{bytes_total:,} B per token in {dtype}, derived from the {facts.attention} geometry in {models} {how}",
    )
    tokens = memory.kv_pool_tokens
    out["kv_pool_tokens"] = quantity("KV tokens that fit", tokens, "tokens", "KV pool bytes / KV bytes per token")

    context = profile.flag("context-length")
    if context is None:
        context = facts.max_context
        context_source = f"--context-length unset: the model's max ({facts.source('max_context')})"
    else:
        context_source = flag_source(profile, "context-length")
    out["context_length"] = quantity("context-length (per-request ceiling)", context, "tokens", context_source)

    cap = profile.flag("max-total-tokens")
    usable = tokens
    if cap is not None:
        usable = min(tokens, cap)
        out["max_total_tokens"] = quantity(
            "max-total-tokens (caps the whole pool)", cap, "tokens", f"{flag_source(profile, 'max-total-tokens')}"
        )
        out["pool_tokens_capped"] = quantity(
            "KV pool after the cap",
            usable,
            "tokens",
            "min(KV tokens, max-total-tokens)",
        )
        if running:
            out["tokens_per_running_request"] = quantity(
                "tokens per running request",
                cap // running,
                "tokens",
                f"max-total-tokens / max-running-requests {running} (docs/sources.md#max-total-tokens)",
            )
    out["full_context_requests"] = quantity(
        "requests at full context that fit at once",
        usable // context,
        "requests",
        ("KV pool after the cap" if cap is not None else "KV tokens") + " // context-length",
    )
    return out


def _vllm_memory(profile: ResolvedProfile, catalog: VllmCatalog) -> dict[str, Any]:
    """vLLM's memory, per GPU: --gpu-memory-utilization is a share of the whole GPU for weights, activations
    and KV cache (docs/sources.md#vllm-memory), so the KV pool here is an upper bound for vLLM's."""
    data = profile.data
    facts = derived.model_facts(profile)
    gpu_type = data["gpu"]["type"]
    models = models_file(profile)
    set_by_profile = derived.vllm_number(profile, "gpu-memory-utilization") is not None
    default = catalog.by_option["--gpu-memory-utilization"].default
    utilization = derived.vllm_number(profile, "gpu-memory-utilization", default=default)
    dtype = derived.vllm_kv_cache_dtype(profile)
    inputs = derived.vllm_memory_inputs(profile, utilization)
    if inputs is None:
        raise UserError(f"{models} has no kv_bytes_per_token.{dtype}; add it to plan {profile.name}")
    memory = memory_per_gpu(inputs)
    tp, pp = inputs.tp, inputs.pp
    utilization_source = (
        where(profile, "vllm", "gpu-memory-utilization")
        if set_by_profile
        else f"--gpu-memory-utilization unset: vLLM {catalog.version} default"
    )
    dtype_source = (
        where(profile, "vllm", "kv-cache-dtype")
        if derived.vllm_flag(profile, "kv-cache-dtype") is not None
        else "--kv-cache-dtype unset: auto is the model's dtype on every GPU (docs/sources.md#vllm-memory), BF16"
    )
    how = f"/ pp {pp} (not split across TP: kv_split_across_tp false)"
    if inputs.kv_split_across_tp:
        how = f"/ (tp {tp} x pp {pp})"
    context, chosen = derived.vllm_max_model_len(profile)
    context_source = (
        where(profile, "vllm", "max-model-len")
        if chosen
        else f"--max-model-len unset: the model's max ({models} max_position_embeddings)"
    )
    return {
        "gpu_memory_gb": quantity("GPU memory", inputs.gpu_memory_gb, "GB", f"data/gpus.yaml {gpu_type}.memory_gb"),
        "weights_per_gpu_gb": quantity(
            "weights per GPU",
            round(memory.weights_gb, 4),
            "GB",
            f"{models} checkpoint_gb {facts.checkpoint_gb} / (tp {tp} x pp {pp})",
        ),
        "gpu_memory_utilization": quantity("gpu-memory-utilization", utilization, "", utilization_source),
        "static_pool_gb": quantity(
            "vLLM's share (weights + activations + KV)",
            round(memory.static_pool_gb, 4),
            "GB",
            "GPU memory x gpu-memory-utilization",
        ),
        "kv_pool_gb": quantity(
            "KV pool, at most", round(memory.kv_pool_gb, 4), "GB", "vLLM's share - weights per GPU (less activations)"
        ),
        "headroom_gb": quantity(
            "outside vLLM's share", round(memory.headroom_gb, 4), "GB", "GPU memory - vLLM's share"
        ),
        "kv_cache_dtype": quantity("KV cache dtype", dtype, "", dtype_source),
        "kv_bytes_per_token": quantity(
            "KV bytes per token per GPU",
            memory.kv_bytes_per_token,
            "B",
            f"{models} kv_bytes_per_token.{dtype} {inputs.kv_bytes_per_token:,} {how}",
        ),
        "kv_pool_tokens": quantity(
            "KV tokens that fit, at most", memory.kv_pool_tokens, "tokens", "KV pool bytes / KV bytes per token"
        ),
        "context_length": quantity("max-model-len (per-request ceiling)", context, "tokens", context_source),
        "full_context_requests": quantity(
            "requests at full context that fit at once",
            memory.kv_pool_tokens // context,
            "requests",
            "KV tokens // max-model-len",
        ),
    }


def _running_requests(profile: ResolvedProfile) -> tuple[int | None, str]:
    if profile.data["engine"] == "vllm":
        seqs = derived.vllm_number(profile, "max-num-seqs")
        if seqs is not None:
            return seqs, where(profile, "vllm", "max-num-seqs")
        return None, "--max-num-seqs unset: vLLM's default for this GPU"
    running, set_by_profile = derived.max_running_requests(profile)
    if set_by_profile:
        return running, flag_source(profile, "max-running-requests")
    if running is not None:
        return running, "--max-running-requests unset: SGLang's default with EAGLE (docs/sources.md#spec-v2)"
    return None, "--max-running-requests unset: SGLang default, sized from the KV pool at startup"


def _engine_slots(profile: ResolvedProfile) -> tuple[str, str]:
    """The engine's name and the flag that bounds the requests it runs at once."""
    return ("vLLM", "max-num-seqs") if profile.data["engine"] == "vllm" else ("SGLang", "max-running-requests")


def _admitted(
    profile: ResolvedProfile, name: str, limit: int, running: int | None, running_source: str, reason: str
) -> tuple[dict[str, Any], int]:
    """What a replica runs when Modal admits at most `limit` requests (max_inputs, max_concurrency) to an engine
    with `running` slots: the effective concurrency, the slots never filled, the requests queued inside."""
    engine, slots = _engine_slots(profile)
    if running is None:
        effective = quantity(
            "effective concurrency per replica", limit, "requests", f"{name}; {running_source} (not modelled)"
        )
        return {"effective_per_replica": effective}, limit
    effective = min(limit, running)
    out = {
        "max_running_requests": quantity(f"{engine} {slots}", running, "requests/replica", running_source),
        "effective_per_replica": quantity(
            "effective concurrency per replica", effective, "requests", f"min({name}, {slots}): {reason}"
        ),
        "idle_sglang_slots": quantity(
            f"{engine} slots Modal never fills", running - effective, "slots", f"{slots} - effective"
        ),
    }
    if limit > running:
        out["queued_in_sglang"] = quantity(
            f"requests that queue inside {engine}", limit - running, "requests", f"{name} - {slots}"
        )
    return out, effective


def _server_concurrency(profile: ResolvedProfile, running: int | None, running_source: str) -> dict[str, Any]:
    """@app.server: Modal adds a replica above target_concurrency and answers HTTP 429 above max_concurrency."""
    scaling = profile.data["scaling"]
    engine, slots = _engine_slots(profile)
    target, limit = derived.server_concurrency(profile)
    if scaling.get("target_concurrency") is not None:
        target_source = where(profile, "scaling", "target_concurrency")
    elif scaling.get("target_inputs") is not None:
        target_source = f"target_concurrency unset: {where(profile, 'scaling', 'target_inputs')}"
    else:
        target_source = f"target_concurrency unset: {where(profile, 'scaling', 'max_inputs')}"
    if scaling.get("max_concurrency") is not None:
        limit_source = where(profile, "scaling", "max_concurrency")
    elif limit is not None:
        limit_source = f"max_concurrency unset: {running_source}"
    else:
        limit_source = "max_concurrency unset: no limit, Modal never answers 429"
    out: dict[str, Any] = {
        "target_concurrency": quantity("@app.server target_concurrency", target, "requests/replica", target_source),
        "max_concurrency": quantity(
            "@app.server max_concurrency (HTTP 429 above)",
            limit,
            "requests/replica",
            limit_source,
            **(
                {}
                if limit is not None
                else {"why": "no max_concurrency and no known engine slots", "none": "unlimited"}
            ),
        ),
    }
    if limit is not None:
        admitted, effective = _admitted(
            profile,
            "max_concurrency",
            limit,
            running,
            running_source,
            "Modal answers 429 above max_concurrency (docs/sources.md#modal-inputs)",
        )
        out.update(admitted)
    else:
        effective = running
        if running is not None:
            out["max_running_requests"] = quantity(f"{engine} {slots}", running, "requests/replica", running_source)
        out["effective_per_replica"] = quantity(
            "effective concurrency per replica",
            running,
            "requests",
            f"no max_concurrency: {slots}, the rest queue inside {engine}" if running is not None else running_source,
            **(
                {} if running is not None else {"why": "neither limit is known before start-up", "none": "not modelled"}
            ),
        )
    out.update(_replicas(profile, effective))
    out["scale_out_at"] = quantity(
        "new replica (a cold start) once every warm one has",
        target,
        "requests",
        target_source,
    )
    return out


def _concurrency(profile: ResolvedProfile, running: int | None, running_source: str) -> dict[str, Any]:
    if derived.serves_with_app_server(profile):
        return _server_concurrency(profile, running, running_source)
    scaling = profile.data["scaling"]
    max_inputs = scaling["max_inputs"]
    out: dict[str, Any] = {
        "max_inputs": quantity(
            "@modal.concurrent max_inputs", max_inputs, "requests/replica", where(profile, "scaling", "max_inputs")
        ),
    }
    admitted, effective = _admitted(
        profile,
        "max_inputs",
        max_inputs,
        running,
        running_source,
        "one HTTP request is one Modal input (docs/sources.md#modal-inputs)",
    )
    out.update(admitted)
    out.update(_replicas(profile, effective))
    target = scaling.get("target_inputs")
    out["scale_out_at"] = quantity(
        "new replica (a cold start) once every warm one has",
        target if target is not None else max_inputs,
        "requests",
        where(profile, "scaling", "target_inputs") if target is not None else "target_inputs unset: max_inputs",
    )
    return out


def _replicas(profile: ResolvedProfile, effective: int | None) -> dict[str, Any]:
    """Replicas kept warm and at most, and the fleet's in-flight ceiling at `effective` per replica."""
    scaling = profile.data["scaling"]
    out: dict[str, Any] = {}
    # Modal counts containers; a replica of a multi-node profile is a cluster of `nodes` of them.
    nodes = profile.data["gpu"]["nodes"]
    per = f" / gpu.nodes {nodes}" if nodes > 1 else ""
    out["min_replicas"] = quantity(
        "replicas kept warm",
        scaling["min_containers"] // nodes,
        "replicas",
        where(profile, "scaling", "min_containers") + per,
    )
    replicas = max_replicas(profile)
    if replicas is None:
        out["max_replicas"] = quantity(
            "replicas at most", None, "replicas", "scaling.max_containers unset", why=NO_CAP, none="no cap"
        )
        out["fleet_ceiling"] = quantity(
            "fleet in-flight ceiling",
            None,
            "requests",
            "scaling.max_containers unset",
            why=NO_CAP,
            none="unbounded",
        )
    else:
        out["max_replicas"] = quantity(
            "replicas at most", replicas, "replicas", where(profile, "scaling", "max_containers") + per
        )
        out["fleet_ceiling"] = quantity(
            "fleet in-flight ceiling",
            None if effective is None else replicas * effective,
            "requests",
            "replicas at most x effective per replica",
            **(
                {}
                if effective is not None
                else {"why": "the concurrency per replica is not modelled", "none": "not modelled"}
            ),
        )
    return out


def _cold_start(profile: ResolvedProfile) -> dict[str, Any]:
    facts = derived.model_facts(profile)
    checkpoint = round(facts.checkpoint_gb, 1)
    nodes = profile.data["gpu"]["nodes"]
    # Every rank reads every shard and keeps its slice (SGLang's default loader, docs/sources.md#sglang-multi-node):
    # each node reads the whole checkpoint, all nodes at once, so a cluster loads no faster than one node.
    per_node = f", on each of the {nodes} nodes in parallel" if nodes > 1 else ""
    out: dict[str, Any] = {}
    for speed, rate in VOLUME_READ_GB_PER_S.items():
        out[f"weights_load_{speed}_s"] = quantity(
            f"weight load at {rate:g} GB/s",
            round(checkpoint / rate, 1),
            "s",
            f"{models_file(profile)} checkpoint_bytes, {checkpoint:g} GB / {rate:g} GB/s "
            "(docs/sources.md#modal-volumes)" + per_node,
        )
    # The DeepGEMM JIT compile is FP8 kernels, precompiled by the compile step: only an FP8 model with
    # that step on pays it; any other model has no DeepGEMM compile.
    compiles = derived.precompiles_deepgemm(profile) and facts.quantization == "fp8"
    compile_s = JIT_COMPILE_S if compiles else 0
    if compiles:
        out["jit_compile_cached_s"] = quantity(
            "JIT compile, cache present", 0, "s", "kernels loaded from the compile cache volume"
        )
        out["jit_compile_uncached_s"] = quantity(
            "JIT compile, no cache",
            JIT_COMPILE_S,
            "s",
            "12-15 min on first boot (docs/sources.md#third-party-cluster-report)",
        )
    else:
        if facts.quantization != "fp8":
            why = f"model quantization {facts.quantization}"
        elif profile.data["engine"] == "sglang":
            why = derived.no_precompile_reason(profile)
        else:
            why = "lifecycle.compile.enabled is false"
        out["jit_compile_uncached_s"] = quantity(
            "JIT compile", 0, "s", f"no DeepGEMM compile: its kernels are FP8 only ({why})"
        )
    out["warmup_s"] = quantity("warmup", WARMUP_S, "s", "assumption: SGLang warmup + generated warmup requests")
    for speed in VOLUME_READ_GB_PER_S:
        load = out[f"weights_load_{speed}_s"]["value"]
        for cache, jit in (("cached", 0), ("uncached", compile_s)):
            out[f"total_{speed}_{cache}_s"] = quantity(
                f"cold start, {speed} volume, {'cache present' if cache == 'cached' else 'no cache'}",
                round(load + jit + WARMUP_S, 1),
                "s",
                "weight load + JIT compile + warmup (container allocation not included)",
            )
    health = profile.data["lifecycle"]["health"]["timeout"]
    out["health_timeout_s"] = quantity(
        "health wait limit", health, "s", where(profile, "lifecycle", "health", "timeout")
    )
    return out


def cold_start_estimate_s(profile: ResolvedProfile) -> float:
    """The cold start the keep-alive plans with: slow volume, kernels cached, warmup."""
    return _cold_start(profile)["total_slow_cached_s"]["value"]


def _targets(profile: ResolvedProfile) -> dict[str, Any]:
    targets = profile.data.get("targets", {})
    out = {}
    if targets.get("ttft_ms") is not None:
        out["ttft_ms"] = quantity(
            "time to first token, p50", targets["ttft_ms"], "ms", where(profile, "targets", "ttft_ms")
        )
    if targets.get("tpot_ms") is not None:
        out["tpot_ms"] = quantity(
            "time per output token, p50", targets["tpot_ms"], "ms", where(profile, "targets", "tpot_ms")
        )
    return out


def _strategy(profile: ResolvedProfile) -> str:
    if profile.data["scaling"]["min_containers"] > 0:
        return "always_on"
    return "business_hours" if profile.data["keepalive"]["mode"] != "off" else "scale_to_zero"


def plan(profile: ResolvedProfile, catalog: Catalog | VllmCatalog, *, active_hours: float = 8) -> dict[str, Any]:
    """The capacity and cost plan of a validated profile (with defaults) and its engine's catalog."""
    if not 0 <= active_hours <= 24:
        raise UserError(f"active hours per day must be between 0 and 24, not {active_hours:g}")
    data = profile.data
    running, running_source = _running_requests(profile)
    vllm = isinstance(catalog, VllmCatalog)
    memory = _vllm_memory(profile, catalog) if vllm else _memory(profile, catalog, running)
    concurrency = _concurrency(profile, running, running_source)
    cold_start = _cold_start(profile)
    cost, notes_of_cost = cost_section(profile, active_hours, cold_start["total_slow_cached_s"]["value"])
    priced = "model" in cost
    rates = {
        "cpu": f"CPU (${decimal(prices()['cpu_usd_per_core_second'])}/core-s)",
        "memory": f"memory (${decimal(prices()['memory_usd_per_gib_second'])}/GiB-s)",
    }
    reserved = [name for name in rates if data["server"].get(name) is not None]
    if not reserved:
        container_note = f"Costs are GPU only: {rates['cpu']} and {rates['memory']} are billed on top ({PRICES})."
    else:
        others = [rate for name, rate in rates.items() if name not in reserved]
        container_note = (
            f"Costs are GPU plus the container's {' and '.join(f'server.{n}' for n in reserved)} at the request; "
            "Modal bills the greater of request and use (docs/sources.md#modal-resources)"
            + (f"; {others[0]} is billed on top ({PRICES})." if others else f" ({PRICES}).")
        )
    cost_notes = [
        container_note,
        f"A month is {DAYS_PER_MONTH} days ({HOURS_PER_MONTH} h). Scale-to-zero assumes one activation a day "
        "and one replica's worth of traffic.",
        "Business hours: traffic falls inside the cron-covered hours first; the rest is billed like "
        "scale-to-zero. The cron's first ping each day is itself a cold start."
        if data["keepalive"]["mode"] != "off"
        else "Business hours is a hypothetical comparison: this profile has no keep-alive (keepalive.mode off); "
        "it is priced with the keepalive.schedule cron.",
    ]
    notes = [
        *(cost_notes if priced else []),
        *notes_of_cost,
        f"Cold start: warmup {WARMUP_S} s is an assumption; container allocation and image pull are not included.",
    ]
    gpu = data["gpu"]
    if gpu["nodes"] > 1:
        net = cluster_facts()
        link = (
            f"RDMA, {net['rdma_gbps']:,} Gbps per node (modal.com/docs/guide/multi-node-clusters)"
            if gpu["rdma"]
            else f"the private IPv6 network only, about {net['i6pn_gbps']} Gbps "
            "(modal.com/docs/guide/private-networking)"
        )
        notes.append(
            f"A replica is a Modal cluster of {gpu['nodes']} nodes: tensor parallelism all-reduces every layer "
            f"across the inter-node link, {link}; inside a node the GPUs talk over NVLink. Only rank 0 "
            "receives HTTP. Each node reads the whole checkpoint, all nodes in parallel (docs/multinode.md)."
        )
    if profile.flag("speculative-algorithm") or (vllm and derived.vllm_speculative_config(profile)):
        notes.append("Speculative decoding: the draft model's (MTP layer's) weights and KV are not modelled in memory.")
    if data["scaling"].get("region"):
        multipliers = prices()["region_multiplier"]
        notes.append(
            f"scaling.region is set: the broad-region multiplier ({multipliers['broad']}x) is assumed; "
            f"a narrow region costs {multipliers['narrow']}x."
        )
    if derived.model_facts(profile).hybrid_linear_attention:
        notes.append(
            "Linear-attention state slots can cap running requests below max-running-requests "
            "(SGLang sizes them from the state pool); speculative decoding reserves more state, not modelled."
        )
    if max_replicas(profile) is None:
        notes.append(
            "scaling.max_containers is unset: Modal caps neither the replicas nor the spend under load. "
            "Set it to bound both."
        )
    worst = cold_start["total_slow_uncached_s"]["value"]
    health = cold_start["health_timeout_s"]["value"]
    if worst > health:
        notes.append(
            f"A cold start without the compile cache at 1 GB/s (~{worst:,.0f} s) outlasts "
            f"lifecycle.health.timeout {health:,} s: run `modal run deploy.py` to fill the cache first."
        )
    return {
        "profile": profile.name,
        "description": data.get("description", ""),
        "sources": [display_path(p) for p in profile.sources],
        "deployment": {
            "gpu": f"{data['gpu']['count']}x {data['gpu']['type']}"
            + (f" on each of {data['gpu']['nodes']} nodes" if data["gpu"]["nodes"] > 1 else ""),
            "arch": gpu_facts()[data["gpu"]["type"]]["arch"],
            "engine": "vLLM" if vllm else "SGLang",
            "engine_version": data["image"]["vllm_version" if vllm else "sglang_version"],
            "strategy": _strategy(profile),
            "keepalive": data["keepalive"]["mode"],
        },
        "memory": memory,
        "concurrency": concurrency,
        "cost": cost,
        "cold_start": cold_start,
        "targets": _targets(profile),
        "notes": notes,
    }
