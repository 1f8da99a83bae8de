"""Semantic rules: hardware facts, Modal limits and known upstream bugs, in one table.

Each rule has a stable code, a severity, the fields it blames, a message that says what to do, and
its source. A rule's check returns findings; the table turns them into located problems.
"""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from deploygen.errors import Problem, Severity
from deploygen.facts import VOLUME_READ_GB_PER_S, cluster_facts, gpu_facts
from deploygen.load import ResolvedProfile
from deploygen.memory import memory_per_gpu
from deploygen.runtime.caches import jit_cache_env as sglang_cache_env
from deploygen.runtime.vllm_caches import jit_cache_env as vllm_cache_env
from deploygen.secrets import looks_secret, secret_name
from deploygen.suggest import did_you_mean
from deploygen.validate import derived, image_steps, warmup
from deploygen.validate.flags import profile_catalog
from deploygen.validate.vllm_flags import profile_vllm_catalog


@dataclass(frozen=True)
class Finding:
    message: str
    blame: tuple[str | int, ...]
    hint: str = ""


Check = Callable[[ResolvedProfile], Iterator[Finding]]
ENGINES = ("sglang", "vllm")
SGLANG = ("sglang",)
VLLM = ("vllm",)


@dataclass(frozen=True)
class Rule:
    code: str
    severity: Severity
    source: str
    check: Check
    # The engines whose profiles the rule reads: an SGLang flag rule says nothing about a vLLM profile.
    engines: tuple[str, ...] = ENGINES


# Every rule, in the order they run (and report): filled by @rule as the module is read.
RULES: list[Rule] = []


def rule(code: str, severity: Severity, source: str, engines: tuple[str, ...] = ENGINES) -> Callable[[Check], Check]:
    """Register a check under a stable code, with its severity, the source of the fact it checks, and the
    engines it applies to."""

    def register(check: Check) -> Check:
        RULES.append(Rule(code, severity, source, check, engines))
        return check

    return register


_number = derived.number_flag
_arch = derived.gpu_arch
_family = derived.gpu_family


def _flag_path(profile: ResolvedProfile, *names: str) -> tuple[str, ...]:
    flags = profile.data.get("sglang", {})
    return ("sglang", next((n for n in names if n in flags), names[0]))


def _version(profile: ResolvedProfile) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", profile.data["image"]["sglang_version"])[:3])


@rule("gpu-count", Severity.ERROR, "docs/sources.md#modal-gpus: up to 8 GPUs per container (A10 up to 4)")
def gpu_count(profile: ResolvedProfile) -> Iterator[Finding]:
    gpu = profile.data["gpu"]
    limit = gpu_facts()[gpu["type"]]["max_count"]
    if gpu["count"] > limit:
        yield Finding(f"Modal allows at most {limit} {gpu['type']} GPUs per container", ("gpu", "count"))


@rule(
    "parallel-size",
    Severity.ERROR,
    "docs/sources.md#parallel-sizes and #sglang-multi-node: tp x pp GPUs per replica, multi-node DP only with DP "
    "attention",
    SGLANG,
)
def parallel_sizes(profile: ResolvedProfile) -> Iterator[Finding]:
    tp, pp = derived.parallel_sizes(profile)
    dp = _number(profile, "dp-size", "data-parallel-size", default=1)
    nodes = profile.data["gpu"]["nodes"]
    # With DP attention the DP groups share the TP GPUs; without it each DP replica has tp x pp GPUs of its own.
    replicas = 1 if profile.flag("enable-dp-attention") else dp
    gpus = derived.total_gpus(profile)
    where = f"the container has {gpus} GPUs" if nodes == 1 else f"the cluster has {gpus} GPUs ({nodes} nodes)"
    if tp * pp * replicas != gpus:
        names = "tp-size x pp-size" + (" x dp-size" if replicas > 1 else "")
        product = f"tp-size {tp} x pp-size {pp}" + (f" x dp-size {dp}" if replicas > 1 else "")
        total = "gpu.count" if nodes == 1 else "gpu.count x gpu.nodes"
        yield Finding(
            f"{product} = {tp * pp * replicas}, but {where}",
            _flag_path(profile, "tp-size", "tensor-parallel-size", "pp-size"),
            f"leave tp-size unset (it is derived from {total}) or make {names} equal {total}",
        )
    if nodes > 1 and replicas > 1:
        yield Finding(
            f"dp-size {dp} across {nodes} nodes: SGLang supports multi-node data parallelism only with DP attention",
            _flag_path(profile, "dp-size", "data-parallel-size"),
            "set enable-dp-attention, or give each replica one node and let Modal run more replicas",
        )


@rule(
    "cluster-engine",
    Severity.ERROR,
    "docs/sources.md#sglang-multi-node: multi-node serving is generated for SGLang only",
    VLLM,
)
def cluster_engine(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["gpu"]["nodes"] > 1:
        yield Finding(
            f"deploygen generates multi-node serving for SGLang only, not for {profile.data['engine']}",
            ("gpu", "nodes"),
            "use one node (gpu.nodes: 1) with vLLM, or engine: sglang",
        )


@rule(
    "cluster-full-nodes",
    Severity.ERROR,
    "docs/sources.md#modal-clusters: each container requests all GPUs on its host",
    SGLANG,
)
def cluster_full_nodes(profile: ResolvedProfile) -> Iterator[Finding]:
    gpu = profile.data["gpu"]
    per_host = gpu_facts()[gpu["type"]]["max_count"]
    if gpu["nodes"] > 1 and gpu["count"] != per_host:
        yield Finding(
            f"a Modal cluster takes whole hosts, {per_host} {gpu['type']} GPUs each, but gpu.count is {gpu['count']}",
            ("gpu", "count"),
            f"set gpu.count to {per_host}",
        )


@rule(
    "cluster-scaling",
    Severity.ERROR,
    "docs/sources.md#modal-clusters: container counts are multiples of the cluster size",
    SGLANG,
)
def cluster_scaling(profile: ResolvedProfile) -> Iterator[Finding]:
    nodes = profile.data["gpu"]["nodes"]
    if nodes == 1:
        return
    scaling = profile.data["scaling"]
    for field in ("min_containers", "max_containers", "buffer_containers"):
        value = scaling.get(field)
        if value and value % nodes:
            yield Finding(
                f"{field} {value} is not a multiple of the cluster size {nodes}: Modal counts containers, "
                f"and a replica is {nodes} of them",
                ("scaling", field),
                f"use a multiple of {nodes}, e.g. {max(nodes, value // nodes * nodes)}",
            )


@rule(
    "cluster-ports",
    Severity.ERROR,
    "docs/sources.md#sglang-multi-node: DP attention takes the rendezvous port + 1..5",
    SGLANG,
)
def cluster_ports(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["gpu"]["nodes"] == 1:
        return
    server = profile.data["server"]
    http, rendezvous, watch = server["port"], server["rendezvous_port"], server["cluster_watch_port"]
    # SGLang's DP attention takes the ports after the rendezvous port (port_base = rendezvous + 1, and four more).
    span = 6 if profile.flag("enable-dp-attention") else 1
    taken = range(rendezvous, rendezvous + span)
    shown = f"{taken.start}" if span == 1 else f"{taken.start}-{taken.stop - 1}"
    if http in taken:
        yield Finding(
            f"server.port {http} is taken by SGLang's rendezvous ({shown})",
            ("server", "rendezvous_port"),
            "give the rendezvous its own port, e.g. 20000",
        )
    if watch in taken or watch == http:
        yield Finding(
            f"server.cluster_watch_port {watch} is taken by "
            + (f"SGLang's rendezvous ({shown})" if watch in taken else "the HTTP server"),
            ("server", "cluster_watch_port"),
            "give the cluster watch its own port, e.g. 20100",
        )


@rule(
    "cluster-rdma",
    Severity.WARNING,
    "docs/sources.md#modal-clusters: RDMA 3,200 Gbps per node, i6pn about 50 Gbps",
    SGLANG,
)
def cluster_rdma(profile: ResolvedProfile) -> Iterator[Finding]:
    gpu = profile.data["gpu"]
    tp, _ = derived.parallel_sizes(profile)
    if gpu["nodes"] > 1 and not gpu["rdma"] and tp > gpu["count"]:
        net = cluster_facts()
        yield Finding(
            f"tp-size {tp} spans {gpu['nodes']} nodes without RDMA: every layer's all-reduce crosses the private "
            f"IPv6 network (about {net['i6pn_gbps']} Gbps) instead of RDMA ({net['rdma_gbps']:,} Gbps per node)",
            ("gpu", "rdma"),
            "set gpu.rdma: true",
        )


@rule("cluster-flags", Severity.ERROR, "docs/sources.md#flag-renames: the pinned SGLang's own catalog", SGLANG)
def cluster_flags(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["gpu"]["nodes"] == 1:
        return
    catalog, _ = profile_catalog(profile)  # a missing catalog is reported by the flag checks
    if catalog is None:
        return
    missing = [f for f in ("--nnodes", "--node-rank", "--dist-init-addr") if f not in catalog.by_option]
    if missing:
        yield Finding(
            f"SGLang {catalog.version} has no {', '.join(missing)}: it cannot run on several nodes",
            ("image", "sglang_version"),
            "pin an SGLang version with multi-node flags, or use one node",
        )


TRTLLM_SPARSE = ("nsa-decode-backend", "nsa-prefill-backend", "dsa-decode-backend", "dsa-prefill-backend")


@rule("trtllm-needs-blackwell", Severity.ERROR, "docs/sources.md#glm-recipes: Blackwell-only kernels", SGLANG)
def trtllm_needs_blackwell(profile: ResolvedProfile) -> Iterator[Finding]:
    if _family(profile) == "sm100":
        return
    for name in TRTLLM_SPARSE:
        if profile.flag(name) == "trtllm":
            yield Finding(
                f"--{name} trtllm runs only on Blackwell (SM100); {profile.data['gpu']['type']} is {_arch(profile)}",
                ("sglang", name),
                "on Hopper remove it (SGLang then picks flashmla_sparse prefill and fa3 decode) or set "
                "flashmla_sparse / fa3 explicitly"
                if _family(profile) == "sm90"
                else "remove it and let SGLang pick a backend for this GPU",
            )


# FP8-KV accuracy loss reported upstream, by model class (config.json architectures[0], the `architecture` of
# data/models/*): the checkpoint the reports measured. GLM-5.1-FP8 lost accuracy with an FP8 KV cache in SGLang
# (#22671 on B300, #27661 on B200); DeepSeek-V3.2 (DeepseekV32ForCausalLM), with the same DSA attention, uses
# FP8 KV by design (docs/sources.md#upstream-issues).
FP8_KV_ACCURACY_REPORTS = {"GlmMoeDsaForCausalLM": "GLM-5.1-FP8"}


def _fp8_kv_reported(profile: ResolvedProfile) -> str | None:
    """The checkpoint whose FP8-KV accuracy loss was reported, when the profile's model is of its class."""
    return FP8_KV_ACCURACY_REPORTS.get(derived.model_facts(profile).architecture)


@rule("dsa-kv-dtype", Severity.ERROR, "docs/sources.md#kv-dtype-default: FP8 KV on SM100 for DSA", SGLANG)
def dsa_kv_dtype_explicit(profile: ResolvedProfile) -> Iterator[Finding]:
    if (
        _fp8_kv_reported(profile)
        and derived.model_facts(profile).attention == "dsa"
        and _family(profile) == "sm100"
        and profile.flag("kv-cache-dtype") in (None, "auto")
    ):
        yield Finding(
            "without an explicit --kv-cache-dtype SGLang picks FP8 KV for this DSA model on SM100",
            _flag_path(profile, "kv-cache-dtype"),
            "set `kv-cache-dtype: bfloat16` (or fp8_e4m3 if you accept its accuracy loss)",
        )


@rule("fp8-kv-eagle", Severity.WARNING, "SGLang #22671, #27661 (docs/sources.md#upstream-issues)", SGLANG)
def fp8_kv_with_eagle(profile: ResolvedProfile) -> Iterator[Finding]:
    reported = _fp8_kv_reported(profile)
    if (
        reported
        and _family(profile) == "sm100"
        and str(profile.flag("kv-cache-dtype", default="")).startswith("fp8")
        and profile.flag("speculative-algorithm") in derived.EAGLE_ALGORITHMS
    ):
        yield Finding(
            f"FP8 KV with EAGLE on Blackwell loses accuracy on {reported} and models of its class "
            f"{derived.model_facts(profile).architecture} (SGLang #22671, #27661)",
            ("sglang", "kv-cache-dtype"),
            "use `kv-cache-dtype: bfloat16`",
        )


@rule("fp8-kv-accuracy", Severity.WARNING, "SGLang #22671 (docs/sources.md#upstream-issues)", SGLANG)
def fp8_kv_without_eagle(profile: ResolvedProfile) -> Iterator[Finding]:
    """#22671 measured the loss with no speculative decoding at all: FP8 KV alone, on a B300."""
    reported = _fp8_kv_reported(profile)
    if (
        reported
        and _family(profile) == "sm100"
        and str(profile.flag("kv-cache-dtype", default="")).startswith("fp8")
        and profile.flag("speculative-algorithm") not in derived.EAGLE_ALGORITHMS
    ):
        yield Finding(
            f"FP8 KV on Blackwell loses accuracy on {reported} and models of its class "
            f"{derived.model_facts(profile).architecture} without speculative decoding too (SGLang #22671: "
            "AIME26 76.7 against 95.3 with BF16 KV)",
            ("sglang", "kv-cache-dtype"),
            "use `kv-cache-dtype: bfloat16`, or acknowledge it with your own accuracy measurement",
        )


# The algorithms that read --speculative-eagle-topk (NEXTN is SGLang's alias of EAGLE); DFLASH, NGRAM and
# STANDALONE drafts have no topk.
EAGLE_ALGORITHMS = ("EAGLE", "EAGLE3", "NEXTN")


@rule("spec-v2", Severity.ERROR, "docs/sources.md#spec-v2: SGLANG_ENABLE_SPEC_V2; spec v2 needs topk 1", SGLANG)
def spec_v2(profile: ResolvedProfile) -> Iterator[Finding]:
    env = profile.data["image"].get("env", {})
    if "SGLANG_ENABLE_SPEC_V2" not in env:
        return
    if _version(profile) >= (0, 5, 14):
        yield Finding(
            f"SGLang {profile.data['image']['sglang_version']} no longer reads SGLANG_ENABLE_SPEC_V2",
            ("image", "env", "SGLANG_ENABLE_SPEC_V2"),
            "remove it; spec v2 is the default there",
        )
    elif (
        env["SGLANG_ENABLE_SPEC_V2"] not in ("0", "false", "False")
        and str(profile.flag("speculative-algorithm", default="")).upper() in EAGLE_ALGORITHMS
        and profile.flag("speculative-eagle-topk") != 1
    ):
        yield Finding(
            "EAGLE spec v2 needs `speculative-eagle-topk: 1`",
            _flag_path(profile, "speculative-eagle-topk"),
            "set speculative-eagle-topk to 1",
        )


@rule(
    "mamba-spec-radix",
    Severity.ERROR,
    "docs/sources.md#mamba-cache: SGLang raises for spec decoding + radix cache on hybrid models",
    SGLANG,
)
def mamba_spec_radix(profile: ResolvedProfile) -> Iterator[Finding]:
    if not derived.model_facts(profile).hybrid_linear_attention or not profile.flag("speculative-algorithm"):
        return
    if profile.flag("disable-radix-cache") is True or profile.flag("mamba-scheduler-strategy") == "extra_buffer":
        return
    spec_v2 = (
        _version(profile) < (0, 5, 14) and profile.data["image"].get("env", {}).get("SGLANG_ENABLE_SPEC_V2") != "1"
    )
    yield Finding(
        f"{profile.data['model']['repo']} has linear-attention layers: with speculative decoding and the radix cache "
        "SGLang refuses to start unless --mamba-scheduler-strategy is extra_buffer",
        _flag_path(profile, "mamba-scheduler-strategy", "speculative-algorithm"),
        "set `mamba-scheduler-strategy: extra_buffer`"
        + (" and image.env.SGLANG_ENABLE_SPEC_V2: '1'" if spec_v2 else "")
        + " (or `disable-radix-cache: true`)",
    )


@rule("memory-fit", Severity.ERROR, "data/gpus.yaml; data/models/* geometry (docs/sources.md#kv-layouts)", SGLANG)
def memory_fit(profile: ResolvedProfile) -> Iterator[Finding]:
    tp, pp = derived.parallel_sizes(profile)
    fraction = _number(profile, "mem-fraction-static")
    if fraction is None or tp * pp <= 0:  # parallel-size reports a bad tp-size x pp-size
        return
    path = _flag_path(profile, "mem-fraction-static")
    if not 0 < fraction < 1:
        yield Finding(
            f"mem-fraction-static {fraction} is not a fraction of GPU memory",
            path,
            "use a value between 0 and 1, e.g. 0.85",
        )
        return
    inputs = derived.memory_inputs(profile, profile_catalog(profile)[0])
    if inputs is None:  # no KV size for this dtype in the model's data: `plan` says so
        return
    memory = memory_per_gpu(inputs)
    if not memory.weights_fit:
        yield Finding(
            f"weights need {memory.weights_gb:.0f} GB per GPU but mem-fraction-static {fraction} of "
            f"{inputs.gpu_memory_gb} GB reserves {memory.static_pool_gb:.0f} GB",
            path,
            "use more GPUs or GPUs with more memory, or raise mem-fraction-static",
        )
        return
    context = _number(profile, "context-length", default=derived.model_facts(profile).max_context)
    if memory.kv_pool_tokens < context:
        yield Finding(
            f"the KV pool holds about {memory.kv_pool_tokens:,} tokens per GPU, less than one request of "
            f"context-length {context:,}",
            path,
            "lower context-length or raise mem-fraction-static",
        )


# SGLang reads it as a boolean (get_bool_env_var): "1" or "true" in any case.
OVERWRITE_CONTEXT_ENV = "SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN"


def _allows_longer_context(profile: ResolvedProfile) -> bool:
    return str(profile.data["image"].get("env", {}).get(OVERWRITE_CONTEXT_ENV, "")).lower() in ("1", "true")


def _context_above_model(profile: ResolvedProfile) -> tuple[int, int] | None:
    context = _number(profile, "context-length")
    facts = derived.model_facts(profile)
    if context is None or context <= facts.max_context:
        return None
    return context, facts.max_context


@rule("context-length-above-model", Severity.ERROR, "docs/sources.md#context-length: refused at start", SGLANG)
def context_length_above_model(profile: ResolvedProfile) -> Iterator[Finding]:
    above = _context_above_model(profile)
    if above is not None and not _allows_longer_context(profile):
        context, limit = above
        facts = derived.model_facts(profile)
        yield Finding(
            f"context-length {context:,} is above the model's maximum {limit:,} ({facts.source('max_context')}); "
            "SGLang refuses to start",
            ("sglang", "context-length"),
            f"lower it to at most {limit:,}; for a model whose rope scaling supports more, also set "
            f'image.env.{OVERWRITE_CONTEXT_ENV}: "1"',
        )


@rule("context-length-overridden", Severity.WARNING, "docs/sources.md#context-length: past the trained length", SGLANG)
def context_length_overridden(profile: ResolvedProfile) -> Iterator[Finding]:
    above = _context_above_model(profile)
    if above is not None and _allows_longer_context(profile):
        context, limit = above
        yield Finding(
            f"context-length {context:,} is above the model's maximum {limit:,}: {OVERWRITE_CONTEXT_ENV} lets "
            f"SGLang start, but past {limit:,} tokens outputs may be wrong or CUDA kernels fail unless rope "
            "scaling extends the model",
            ("image", "env", OVERWRITE_CONTEXT_ENV),
            "give the model's rope scaling (e.g. YaRN) with --json-model-override-args as its card documents, "
            "or lower context-length",
        )


@rule("max-total-tokens-below-context", Severity.ERROR, "docs/sources.md#max-total-tokens: caps the pool", SGLANG)
def max_total_tokens(profile: ResolvedProfile) -> Iterator[Finding]:
    cap = _number(profile, "max-total-tokens")
    context = _number(profile, "context-length")
    if cap is not None and context is not None and cap < context:
        yield Finding(
            f"max-total-tokens {cap:,} caps the whole KV pool below one request of context-length {context:,}",
            ("sglang", "max-total-tokens"),
            "remove max-total-tokens; the per-request ceiling is context-length",
        )


@rule("max-total-tokens-pool-cap", Severity.WARNING, "docs/sources.md#max-total-tokens: caps the pool", SGLANG)
def max_total_tokens_per_request(profile: ResolvedProfile) -> Iterator[Finding]:
    cap = _number(profile, "max-total-tokens")
    context = _number(profile, "context-length", default=derived.model_facts(profile).max_context)
    running, _ = derived.max_running_requests(profile)
    if cap is not None and running and running > 0 and context <= cap < running * context:
        yield Finding(
            f"max-total-tokens {cap:,} caps the whole KV pool (not one request): {running} running "
            f"requests share it, about {cap // running:,} tokens each",
            ("sglang", "max-total-tokens"),
            "remove it to let the pool use mem-fraction-static; the per-request ceiling is context-length",
        )


# SGLang's own warning when DeepGEMM compiles its FP8 kernels without a cache: "It may take a long time (typically
# 10-20 mins) if you have not run `sglang.compile_deep_gemm`" (docs/sources.md#startup-order): plan for the long end.
DEEPGEMM_UNCACHED_S = 20 * 60
DEEPGEMM_FAMILIES = derived.DEEPGEMM_FAMILIES


def _compiles_uncached(profile: ResolvedProfile) -> bool:
    """Whether SGLang JIT-compiles DeepGEMM's FP8 kernels into an empty cache at a start: an FP8 model on a GPU
    DeepGEMM supports, with no compile step to fill the cache before serving."""
    return (
        profile.data["engine"] == "sglang"
        and not derived.precompiles_deepgemm(profile)
        and derived.model_facts(profile).quantization == "fp8"
        and _family(profile) in DEEPGEMM_FAMILIES
    )


@rule("timeouts-cover-load", Severity.ERROR, "docs/sources.md#startup-order, #modal-volumes (1-3 GB/s)")
def health_covers_load(profile: ResolvedProfile) -> Iterator[Finding]:
    """The port opens only once the weights are loaded and the kernels compiled: the health wait covers both."""
    checkpoint_gb = round(derived.model_facts(profile).checkpoint_gb, 1)
    # Plan for the slow end of Modal's volume read speed.
    load_seconds = checkpoint_gb / VOLUME_READ_GB_PER_S["slow"]
    compile_seconds = DEEPGEMM_UNCACHED_S if _compiles_uncached(profile) else 0
    needed = load_seconds + compile_seconds
    health = profile.data["lifecycle"]["health"]["timeout"]
    if health < needed:
        compiling = (
            f" and up to {compile_seconds}s of DeepGEMM JIT compile with no compile step" if compile_seconds else ""
        )
        yield Finding(
            f"health timeout {health}s is shorter than the ~{load_seconds:.0f}s weight load{compiling}",
            ("lifecycle", "health", "timeout"),
            f"raise it to at least {int(needed * 1.5)}",
        )


@rule(
    "watchdog-first-batch",
    Severity.WARNING,
    "docs/sources.md#startup-order: the watchdog starts after the weight load and times one forward batch",
    SGLANG,
)
def watchdog_first_batch(profile: ResolvedProfile) -> Iterator[Finding]:
    """SGLang's watchdog times forward batches, not the weight load: a first batch that JIT-compiles kernels into
    an empty cache is what can outlast it."""
    watchdog = _number(profile, "watchdog-timeout", default=derived.catalog_default(profile, "watchdog-timeout"))
    if _compiles_uncached(profile) and watchdog is not None and watchdog < DEEPGEMM_UNCACHED_S:
        yield Finding(
            f"watchdog-timeout {watchdog}s: with lifecycle.compile.enabled false the first batches JIT-compile "
            "DeepGEMM's FP8 kernels into an empty cache, typically 10-20 min by SGLang's own estimate, and the "
            "watchdog kills a batch that runs longer",
            _flag_path(profile, "watchdog-timeout"),
            "enable lifecycle.compile (kernels compiled before serving), or set watchdog-timeout to at least "
            f"{DEEPGEMM_UNCACHED_S}",
        )


# @modal.enter reloads both volumes and checks the weights before SGLang starts: room for that, and
# for the process start, beyond the health wait and the warmup.
STARTUP_MARGIN = 60
# Modal gives @modal.exit "a grace period of 30 seconds to finish" before it kills an @app.cls container
# (https://modal.com/docs/guide/lifecycle-functions); the volumes are committed after the exit handlers.
# An @app.server container gets its exit_grace_period instead (docs/sources.md#modal-server).
CLS_EXIT_BUDGET = 30
STOP_OVERHEAD = derived.STOP_OVERHEAD
VOLUME_COMMIT_MARGIN = derived.VOLUME_COMMIT_MARGIN


@rule("startup-budget", Severity.ERROR, "https://modal.com/docs/reference/modal.App#cls: startup_timeout")
def startup_budget(profile: ResolvedProfile) -> Iterator[Finding]:
    lifecycle = profile.data["lifecycle"]
    startup = profile.data["scaling"]["startup_timeout"]
    health = lifecycle["health"]["timeout"]
    # The warmup requests run at once, so the warmup takes at most one request's timeout.
    warmup = lifecycle["warmup"]["timeout"] if lifecycle["warmup"]["enabled"] else 0
    needed = health + warmup + STARTUP_MARGIN
    if startup < needed:
        parts = f"the {health}s health wait" + (f", the {warmup}s warmup" if warmup else "")
        yield Finding(
            f"startup_timeout {startup}s can end @modal.enter before {parts} and {STARTUP_MARGIN}s for the "
            f"volume reloads and the weights check ({needed}s)",
            ("scaling", "startup_timeout"),
            f"raise scaling.startup_timeout to at least {needed}, or lower lifecycle.health.timeout to at most "
            f"{startup - warmup - STARTUP_MARGIN}",
        )


@rule(
    "shutdown-budget",
    Severity.ERROR,
    "https://modal.com/docs/guide/lifecycle-functions: @modal.exit gets 30 s under @app.cls; "
    "docs/sources.md#modal-server: exit_grace_period under @app.server",
)
def shutdown_budget(profile: ResolvedProfile) -> Iterator[Finding]:
    grace = profile.data["lifecycle"]["shutdown"]["grace_period"]
    explicit = profile.data["server"].get("exit_grace_period")
    if derived.serves_with_app_server(profile):
        needed = derived.shutdown_seconds(profile)
        if explicit is not None and explicit < needed:
            yield Finding(
                f"exit_grace_period {explicit}s is shorter than the shutdown ({needed:g}s): SGLang's stop takes up "
                f"to the grace_period {grace:g}s plus {STOP_OVERHEAD:g}s, and the volume commit follows it",
                ("server", "exit_grace_period"),
                f"raise server.exit_grace_period to at least {math.ceil(needed)} (or remove it: it is then derived), "
                f"or lower lifecycle.shutdown.grace_period to at most {explicit - needed + grace:g}",
            )
        return
    if explicit is not None:
        yield Finding(
            f"exit_grace_period is @app.server's; under interface cls Modal gives @modal.exit {CLS_EXIT_BUDGET}s",
            ("server", "exit_grace_period"),
            "remove server.exit_grace_period, or set server.interface: server",
        )
    room = CLS_EXIT_BUDGET - STOP_OVERHEAD - VOLUME_COMMIT_MARGIN
    if grace > room:
        yield Finding(
            f"shutdown grace_period {grace:g}s does not fit Modal's {CLS_EXIT_BUDGET}s for @modal.exit: SGLang's "
            f"stop takes up to the grace plus {STOP_OVERHEAD:g}s, and the volume commit follows it",
            ("lifecycle", "shutdown", "grace_period"),
            f"set lifecycle.shutdown.grace_period to at most {room:g}",
        )


@rule("cluster-interface", Severity.ERROR, "docs/multinode.md: clustered web functions are not supported")
def cluster_interface(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["gpu"]["nodes"] > 1 and profile.data["server"]["interface"] == "cls":
        yield Finding(
            f"a replica of {profile.data['gpu']['nodes']} nodes is a Modal cluster, which serves HTTP through "
            '@app.server only (modal.clustered: "clustered Web Functions are not supported"), so interface cls '
            "cannot apply",
            ("server", "interface"),
            "remove server.interface: cls (the render uses @app.server, modal >= 1.5.1), or set gpu.nodes: 1",
        )


@rule("modal-scaling", Severity.ERROR, "docs/sources.md#modal-checks: checked by Modal only at deploy time")
def modal_scaling(profile: ResolvedProfile) -> Iterator[Finding]:
    scaling = profile.data["scaling"]
    if scaling.get("max_containers") is not None and scaling["min_containers"] > scaling["max_containers"]:
        yield Finding(
            f"min_containers {scaling['min_containers']} > max_containers {scaling['max_containers']}",
            ("scaling", "min_containers"),
            "Modal rejects this at deploy time",
        )
    if profile.data["server"]["interface"] == "server":
        target, limit = derived.server_concurrency(profile)
        if limit and target > limit:
            blame = "target_concurrency" if scaling.get("target_concurrency") is not None else "max_concurrency"
            yield Finding(
                f"target_concurrency {target:g} > max_concurrency {limit}",
                ("scaling", blame),
                "Modal rejects a target above max_concurrency (modal/app.py, App.server): lower the target or "
                "raise max_concurrency",
            )
        return
    target = scaling.get("target_inputs")
    if target is not None and target > scaling["max_inputs"]:
        yield Finding(
            f"target_inputs {target} > max_inputs {scaling['max_inputs']}",
            ("scaling", "target_inputs"),
            "target_inputs must be at most max_inputs",
        )


@rule(
    "server-resources",
    Severity.ERROR,
    "https://github.com/modal-labs/modal-client/blob/main/modal/_resources.py: no limit below the request",
)
def server_resources(profile: ResolvedProfile) -> Iterator[Finding]:
    server = profile.data["server"]
    for name, unit in (("cpu", "cores"), ("memory", "MiB")):
        value = server.get(name)
        if isinstance(value, list) and value[1] < value[0]:
            yield Finding(
                f"limit {value[1]:g} {unit} is below the request {value[0]:g} {unit}: Modal refuses it",
                ("server", name),
                f"give [request, limit] with the limit at least the request, e.g. [{value[0]:g}, {value[0]:g}]",
            )


def _replica_limit(profile: ResolvedProfile) -> tuple[str, int | None, tuple[str, ...]]:
    """What caps the requests one replica takes: (its name, its value, the field to blame)."""
    scaling = profile.data["scaling"]
    if profile.data["server"]["interface"] == "server":
        return "max_concurrency", scaling.get("max_concurrency"), ("scaling", "max_concurrency")
    return "max_inputs", scaling["max_inputs"], ("scaling", "max_inputs")


@rule("idle-sglang-slots", Severity.INFO, "docs/sources.md#modal-inputs: one HTTP request is one input", SGLANG)
def idle_sglang_slots(profile: ResolvedProfile) -> Iterator[Finding]:
    running = _number(profile, "max-running-requests")
    name, limit, blame = _replica_limit(profile)
    if running is not None and limit is not None and limit < running:
        if name == "max_concurrency":
            yield Finding(
                f"max_concurrency {limit} answers HTTP 429 while {running - limit} of max-running-requests "
                f"{running} stay idle",
                blame,
                f"raise max_concurrency to {running} (target_concurrency decides when a replica is added) "
                "or lower max-running-requests",
            )
            return
        yield Finding(
            f"max_inputs {limit} lets at most {limit} requests reach SGLang, so "
            f"{running - limit} of max-running-requests {running} stay idle",
            blame,
            f"raise max_inputs to {running} (with target_inputs {limit} to scale out early) "
            "or lower max-running-requests",
        )


@rule("queued-in-sglang", Severity.WARNING, "docs/sources.md#modal-inputs: one HTTP request is one input", SGLANG)
def queued_in_sglang(profile: ResolvedProfile) -> Iterator[Finding]:
    running = _number(profile, "max-running-requests")
    name, limit, blame = _replica_limit(profile)
    if running is not None and limit is not None and limit > running:
        yield Finding(
            f"{name} {limit} admits more requests than max-running-requests {running}; the rest "
            "queue inside SGLang instead of starting a replica",
            blame,
            f"set {name} to {running}",
        )


# --- vLLM: the same facts, read from vLLM's flags and its semantics ----------------------------------


def _vllm_path(profile: ResolvedProfile, name: str) -> tuple[str, ...]:
    flags = profile.data.get("vllm") or {}
    dotted = next((n for n in flags if n.startswith(f"{name}.")), None)
    return ("vllm", name if name in flags or dotted is None else dotted)


@rule("vllm-parallel-size", Severity.ERROR, "docs/sources.md#vllm-catalogs: tensor x pipeline parallel GPUs", VLLM)
def vllm_parallel_size(profile: ResolvedProfile) -> Iterator[Finding]:
    tp, pp = derived.vllm_parallel_sizes(profile)
    count = profile.data["gpu"]["count"]
    if tp * pp != count:
        yield Finding(
            f"tensor-parallel-size {tp} x pipeline-parallel-size {pp} = {tp * pp}, but the container has {count} GPUs",
            _vllm_path(profile, "tensor-parallel-size"),
            "leave tensor-parallel-size unset (it is derived from gpu.count) or make tp x pp equal gpu.count",
        )


@rule("vllm-memory", Severity.ERROR, "docs/sources.md#vllm-memory: a share of each GPU's whole memory",
      VLLM)  # fmt: skip
def vllm_memory(profile: ResolvedProfile) -> Iterator[Finding]:
    catalog, _ = profile_vllm_catalog(profile)
    default = catalog.by_option["--gpu-memory-utilization"].default if catalog else 0.9
    utilization = derived.vllm_number(profile, "gpu-memory-utilization", default=default)
    path = _vllm_path(profile, "gpu-memory-utilization")
    if not 0 < utilization <= 1:
        yield Finding(
            f"gpu-memory-utilization {utilization} is not a share of GPU memory",
            path,
            "use a value above 0 and at most 1, e.g. 0.9 (vLLM counts every process's use of the GPU against it)",
        )
        return
    inputs = derived.vllm_memory_inputs(profile, utilization)
    if inputs is None or inputs.tp * inputs.pp <= 0:
        return
    memory = memory_per_gpu(inputs)
    if not memory.weights_fit:
        yield Finding(
            f"weights need {memory.weights_gb:.0f} GB per GPU but gpu-memory-utilization {utilization} of "
            f"{inputs.gpu_memory_gb} GB lets vLLM use {memory.static_pool_gb:.0f} GB",
            path,
            "use more GPUs or GPUs with more memory, or raise gpu-memory-utilization",
        )
        return
    context, _ = derived.vllm_max_model_len(profile)
    if memory.kv_pool_tokens < context:
        yield Finding(
            f"even before activations and CUDA graphs, the KV cache holds about {memory.kv_pool_tokens:,} tokens "
            f"per GPU, less than one request of max-model-len {context:,}; vLLM refuses to start",
            path,
            "set a smaller max-model-len or raise gpu-memory-utilization",
        )


@rule("vllm-max-model-len", Severity.ERROR, "docs/sources.md#vllm-memory: max-model-len above the model's limit",
      VLLM)  # fmt: skip
def vllm_max_model_len(profile: ResolvedProfile) -> Iterator[Finding]:
    length, chosen = derived.vllm_max_model_len(profile)
    limit = derived.model_facts(profile).max_context
    allowed = profile.data["image"].get("env", {}).get("VLLM_ALLOW_LONG_MAX_MODEL_LEN") == "1"
    if chosen and length > limit and not allowed:
        yield Finding(
            f"max-model-len {length:,} is above the model's max_position_embeddings {limit:,}; vLLM refuses it",
            _vllm_path(profile, "max-model-len"),
            f"use at most {limit:,} (or set image.env.VLLM_ALLOW_LONG_MAX_MODEL_LEN: '1' with rope scaling)",
        )


@rule("vllm-speculative", Severity.ERROR, "docs/sources.md#vllm-glm-recipe (MTP) and #vllm-startup-checks", VLLM)
def vllm_speculative(profile: ResolvedProfile) -> Iterator[Finding]:
    config = derived.vllm_speculative_config(profile)
    if config is None:
        return
    path = _vllm_path(profile, "speculative-config")
    facts = derived.model_facts(profile)
    if config.get("method") == "mtp" and facts.mtp_layers == 0:
        yield Finding(f"{facts.repo} has no MTP layers for method mtp", path, "remove speculative-config")
    tokens = config.get("num_speculative_tokens")
    if config.get("method") is not None and not (
        isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0
    ):
        yield Finding(
            "speculative decoding needs num_speculative_tokens, a positive integer",
            path,
            "add `num_speculative_tokens: 3` (vLLM's GLM-5 recipe) to speculative-config",
        )


@rule("vllm-parsers", Severity.ERROR, "docs/sources.md#vllm-startup-checks", VLLM)
def vllm_parsers(profile: ResolvedProfile) -> Iterator[Finding]:
    catalog, _ = profile_vllm_catalog(profile)
    auto = derived.vllm_flag(profile, "enable-auto-tool-choice") is True
    tool_parser = derived.vllm_flag(profile, "tool-call-parser")
    if auto and not tool_parser:
        yield Finding(
            "--enable-auto-tool-choice without --tool-call-parser: vLLM exits at start",
            ("vllm", "enable-auto-tool-choice"),
            "add the model's tool-call-parser (glm47 for GLM-5.1)",
        )
    if catalog is None:
        return
    if tool_parser and tool_parser not in catalog.tool_call_parsers:
        hint = did_you_mean(tool_parser, catalog.tool_call_parsers)
        yield Finding(
            f"vLLM {catalog.version} has no tool-call parser {tool_parser!r}",
            ("vllm", "tool-call-parser"),
            hint or f"one of {', '.join(catalog.tool_call_parsers)}",
        )
    reasoning = derived.vllm_flag(profile, "reasoning-parser")
    if reasoning and str(reasoning).lower() != "none" and reasoning not in catalog.reasoning_parsers:
        hint = did_you_mean(reasoning, catalog.reasoning_parsers)
        yield Finding(
            f"vLLM {catalog.version} has no reasoning parser {reasoning!r}",
            ("vllm", "reasoning-parser"),
            hint or f"one of {', '.join(catalog.reasoning_parsers)}",
        )


@rule("vllm-tool-choice", Severity.WARNING, "docs/sources.md#vllm-startup-checks: auto tool choice",
      VLLM)  # fmt: skip
def vllm_tool_choice(profile: ResolvedProfile) -> Iterator[Finding]:
    if (
        derived.vllm_flag(profile, "tool-call-parser")
        and derived.vllm_flag(profile, "enable-auto-tool-choice") is not True
    ):
        yield Finding(
            "a tool-call parser without --enable-auto-tool-choice: requests with tools and tool_choice auto get 400 "
            "(the warmup's tool call too)",
            ("vllm", "tool-call-parser"),
            "add `enable-auto-tool-choice: true`",
        )


@rule("vllm-fp8-kv", Severity.WARNING, "docs/sources.md#upstream-issues: SGLang #22671, #27661",
      VLLM)  # fmt: skip
def vllm_fp8_kv(profile: ResolvedProfile) -> Iterator[Finding]:
    reported = _fp8_kv_reported(profile)
    if reported and derived.vllm_kv_cache_dtype(profile).startswith("fp8"):
        yield Finding(
            f"FP8 KV on {reported} and models of its class {derived.model_facts(profile).architecture} lost accuracy "
            "in SGLang (#22671, #27661); not measured for vLLM",
            ("vllm", "kv-cache-dtype"),
            "leave kv-cache-dtype at auto (the model's BF16; vLLM has no per-GPU FP8 default) unless you evaluated it",
        )


@rule("vllm-concurrency", Severity.INFO, "docs/sources.md#modal-inputs: one HTTP request is one input", VLLM)
def vllm_concurrency(profile: ResolvedProfile) -> Iterator[Finding]:
    seqs = derived.vllm_number(profile, "max-num-seqs")
    max_inputs = profile.data["scaling"]["max_inputs"]
    if seqs is None:
        yield Finding(
            f"max-num-seqs is unset: vLLM batches up to its own default, but Modal sends at most max_inputs "
            f"{max_inputs} requests to a replica",
            ("scaling", "max_inputs"),
            f"set `max-num-seqs: {max_inputs}` so vLLM sizes CUDA graphs and the scheduler for what it gets",
        )
    elif seqs != max_inputs:
        more = "stay idle" if seqs > max_inputs else "queue inside vLLM instead of starting a replica"
        yield Finding(
            f"max-num-seqs {seqs} and max_inputs {max_inputs} differ: {abs(seqs - max_inputs)} "
            f"{'slots' if seqs > max_inputs else 'requests'} {more}",
            ("scaling", "max_inputs"),
            "make them equal (target_inputs below max_inputs scales out early)",
        )


def _cron_times(schedule: str, count: int) -> list[float]:
    """The first fire times of a cron from the epoch; empty when it is invalid or never fires."""
    from croniter import CroniterError, croniter  # imported on use: most profiles have no cron

    if not croniter.is_valid(schedule):
        return []
    runs = croniter(schedule, 0)
    try:
        return [runs.get_next(float) for _ in range(count)]
    except CroniterError:  # a valid expression for a date that never comes, e.g. 30 February
        return []


@rule("keepalive-cron", Severity.ERROR, "docs/sources.md#modal-cron: five-field cron and IANA time zone")
def keepalive_cron(profile: ResolvedProfile) -> Iterator[Finding]:
    keepalive = profile.data["keepalive"]
    if keepalive["mode"] == "off":
        return
    if keepalive["mode"] == "ping":
        from croniter import croniter

        if len(keepalive["schedule"].split()) != 5 or not croniter.is_valid(keepalive["schedule"]):
            yield Finding(
                f"{keepalive['schedule']!r} is not a five-field cron expression",
                ("keepalive", "schedule"),
                "for example '*/14 6-22 * * MON-FRI'",
            )
        elif not _cron_times(keepalive["schedule"], 1):
            yield Finding(
                f"{keepalive['schedule']!r} never fires",
                ("keepalive", "schedule"),
                "check the day-of-month and month fields",
            )
    try:
        zoneinfo.ZoneInfo(keepalive["timezone"])
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        yield Finding(
            f"{keepalive['timezone']!r} is not an IANA time zone",
            ("keepalive", "timezone"),
            "for example 'UTC' or 'Europe/Berlin'",
        )


@rule("keepalive-window", Severity.ERROR, "the autoscaler keep-alive keeps replicas warm from start to end")
def keepalive_window(profile: ResolvedProfile) -> Iterator[Finding]:
    keepalive = profile.data["keepalive"]
    if keepalive["mode"] != "autoscaler":
        return
    window = keepalive["window"]
    if window["end"] <= window["start"]:
        yield Finding(
            f"the window ends at {window['end']}, not after it starts at {window['start']}",
            ("keepalive", "window", "end"),
            "a window lies within one day: end after start (24:00 for midnight)",
        )
    base = profile.data["scaling"]["min_containers"]
    if window["min_containers"] <= base:
        yield Finding(
            f"min_containers {base} keeps as many replicas warm at all hours as the keep-alive window's "
            f"{window['min_containers']}",
            ("scaling", "min_containers"),
            "raise window.min_containers above scaling.min_containers, or set keepalive.mode: off",
        )


@rule("keepalive-proxy-auth", Severity.ERROR, "Modal proxy auth: https://modal.com/docs/guide/webhook-proxy-auth")
def keepalive_proxy_auth(profile: ResolvedProfile) -> Iterator[Finding]:
    data = profile.data
    if (
        data["keepalive"]["mode"] == "ping"
        and not data["server"]["unauthenticated"]
        and not data["secrets"].get("proxy_auth")
    ):
        yield Finding(
            "the keep-alive ping cannot pass Modal's proxy auth: secrets.proxy_auth is not set",
            ("keepalive", "mode"),
            "create a Modal secret with MODAL_PROXY_KEY and MODAL_PROXY_SECRET (`modal secret create NAME "
            "MODAL_PROXY_KEY=wk-... MODAL_PROXY_SECRET=ws-...`) and name it in secrets.proxy_auth, or use "
            "keepalive.mode: autoscaler",
        )


@rule("keepalive-interval", Severity.WARNING, "docs/sources.md#modal-cron: scaledown_window vs the cron's interval")
def keepalive_interval(profile: ResolvedProfile) -> Iterator[Finding]:
    keepalive = profile.data["keepalive"]
    times = _cron_times(keepalive["schedule"], 200) if keepalive["mode"] == "ping" else []
    if not times:
        return
    window = profile.data["scaling"]["scaledown_window"]
    # Gaps over an hour are the cron's off hours (nights, weekends); scaledown_window is at most an hour,
    # so a cron with no shorter gap never keeps a replica warm.
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    gaps = [gap for gap in gaps if gap <= 3600] or gaps
    if max(gaps) >= window:
        yield Finding(
            f"the cron pings every {max(gaps) / 60:.0f} min, but a replica scales down after "
            f"{window / 60:.0f} idle min",
            ("keepalive", "schedule"),
            "ping more often than scaling.scaledown_window",
        )


@rule("volumes", Severity.ERROR, "docs/sources.md#modal-volumes: distinct names and mount paths")
def volumes_distinct(profile: ResolvedProfile) -> Iterator[Finding]:
    volumes = profile.data["volumes"]
    a = volumes["weights"]["mount"]
    if "compile_cache" in volumes:
        if volumes["weights"]["name"] == volumes["compile_cache"]["name"]:
            yield Finding(
                "weights and compile cache share one volume",
                ("volumes", "compile_cache", "name"),
                "give the compile cache its own volume",
            )
        b = volumes["compile_cache"]["mount"]
        if a == b or a.startswith(b + "/") or b.startswith(a + "/"):
            yield Finding(
                f"mount paths {a} and {b} overlap",
                ("volumes", "compile_cache", "mount"),
                "mount each volume on its own path",
            )
    if profile.data["model"]["weights_layout"] == "path" and not profile.data["model"]["path"].startswith(a + "/"):
        yield Finding(
            f"model.path {profile.data['model']['path']} is not inside the weights mount {a}",
            ("model", "path"),
            f"use a folder under {a}",
        )


@rule(
    "weights-layout",
    Severity.ERROR,
    "https://huggingface.co/docs/huggingface_hub/guides/manage-cache: snapshots/COMMIT of a Hugging Face cache",
)
def weights_layout(profile: ResolvedProfile) -> Iterator[Finding]:
    model = profile.data["model"]
    if model["weights_layout"] != "hf-cache":
        return
    snapshot = derived.model_dir(profile)
    if "path" in model:
        yield Finding(
            f"not used with weights_layout hf-cache: the engine loads the snapshot folder {snapshot}",
            ("model", "path"),
            "remove model.path (`path: null` in a profile that extends one with a path)",
        )
    if not re.fullmatch(r"[0-9a-f]{40}", model["revision"]):
        yield Finding(
            f"weights_layout hf-cache needs a commit: revision {model['revision']!r} is a branch, and the cache's "
            "snapshot folder is named by the commit",
            ("model", "revision"),
            "set model.revision to the 40-hex commit (the Hub's 'Files and versions' page, or the commit "
            "`generate.py model add` printed)",
        )
    # image.env.HF_HUB_CACHE: the generator sets it to the weights volume (env-overridden, env-as-generated).


def _generated_env(profile: ResolvedProfile) -> dict[str, tuple[str, str]]:
    """The serving container's variables the generator sets over the profile's image.env: name to (value, why)."""
    caches = vllm_cache_env if profile.data["engine"] == "vllm" else sglang_cache_env
    why = "the JIT cache folder of this GPU architecture and image"
    env = {name: (value, why) for name, value in caches(derived.cache_dir(profile)).items()}
    env["HF_HUB_OFFLINE"] = ("1", "serving reads the weights from the volume only, never the Hub")
    if profile.data["model"].get("weights_layout") == "hf-cache":
        env["HF_HUB_CACHE"] = (profile.data["volumes"]["weights"]["mount"], "the weights volume is the cache")
    return env


@rule("env-as-generated", Severity.INFO, "deploygen/runtime/engine.py engine_env: the generator's variables win")
def env_as_generated(profile: ResolvedProfile) -> Iterator[Finding]:
    """A profile variable set to exactly what the generator writes changes nothing: said, not refused."""
    generated = _generated_env(profile)
    for name, value in profile.data["image"].get("env", {}).items():
        if name in generated and generated[name][0] == value:
            yield Finding(
                f"{name}={value!r} is what the generator sets ({generated[name][1]}); this line changes nothing",
                ("image", "env", name),
                f"remove image.env.{name}, or keep it as documentation",
            )


ENV_OVERRIDDEN_HINTS = {
    "cache": "; the compile-cache volume (volumes.compile_cache) keeps the caches",
    "HF_HUB_OFFLINE": "",
    "HF_HUB_CACHE": "; mount the weights volume where the cache should be (volumes.weights.mount)",
}


@rule("env-overridden", Severity.ERROR, "deploygen/runtime/engine.py engine_env: the generator's variables win")
def env_overridden(profile: ResolvedProfile) -> Iterator[Finding]:
    generated = _generated_env(profile)
    for name, value in profile.data["image"].get("env", {}).items():
        if name in generated and generated[name][0] != value:
            ours, why = generated[name]
            yield Finding(
                f"the generator sets {name}={ours!r} ({why}), which replaces this {value!r}",
                ("image", "env", name),
                f"remove image.env.{name}" + ENV_OVERRIDDEN_HINTS.get(name, ENV_OVERRIDDEN_HINTS["cache"]),
            )


@rule("compile-cache-missing", Severity.ERROR, "docs/sources.md#jit-caches: compiled kernels live on a volume")
def compile_cache_missing(profile: ResolvedProfile) -> Iterator[Finding]:
    step = derived.compile_step(profile)
    if step and "compile_cache" not in profile.data["volumes"]:
        off = (
            "set `vllm: {enforce-eager: true}`"
            if profile.data["engine"] == "vllm"
            else "set lifecycle.compile.enabled: false (a model with no FP8 kernels has nothing to precompile)"
        )
        volume = f"{profile.data['app']['name']}-kernels-{_arch(profile)}"
        yield Finding(
            f"{step} writes its kernels to the compile-cache volume, and volumes.compile_cache is not set",
            ("volumes",),
            f"add volumes.compile_cache: {{name: {volume}, mount: /cache}}, or {off}",
        )


@rule("compile-cache-unused", Severity.INFO, "docs/sources.md#jit-caches: what the compile-cache volume holds")
def compile_cache_unused(profile: ResolvedProfile) -> Iterator[Finding]:
    if "compile_cache" in profile.data["volumes"] and not derived.compile_step(profile):
        yield Finding(
            "this profile has no compile step: the compile-cache volume keeps only the JIT caches (Triton, "
            "FlashInfer) across cold starts",
            ("volumes", "compile_cache"),
            "keep it to start faster, or remove volumes.compile_cache and let each cold start rebuild them",
        )


FLOATING_TAGS = {"", "latest", "dev", "nightly", "main"}
# registry[:port]/name[:tag][@digest], as `docker pull` reads it; the digest is checked on its own below.
IMAGE_REFERENCE = re.compile(
    r"(?:[A-Za-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@[A-Za-z0-9:]+)?"
)

# A release named in a tag: v0.5.10.post1-cu130, v0.33.0.
RELEASE_IN_TAG = re.compile(r"v(\d+\.\d+\.\d+(?:\.post\d+)?)(?:-|$)")


IMAGES = {
    # engine: (image field, version field, example of a pinned image)
    "sglang": ("sglang_image", "sglang_version", "lmsysorg/sglang:v0.5.10.post1-cu130"),
    "vllm": ("vllm_image", "vllm_version", "vllm/vllm-openai:v0.33.0"),
}


def _tag_and_digest(image: str) -> tuple[str, str]:
    """An image reference's tag and digest ('' where absent); a registry port's ':' is not a tag."""
    name, _, digest = image.partition("@")
    return (name.rpartition(":")[2] if ":" in name.split("/")[-1] else ""), digest


@rule("image-pinned", Severity.ERROR, "docs/sources.md#image-tags: pin a release tag or digest")
def image_pinned(profile: ResolvedProfile) -> Iterator[Finding]:
    engine = profile.data["engine"]
    image_field, version_field, example = IMAGES[engine]
    image = profile.data["image"][image_field]
    if not IMAGE_REFERENCE.fullmatch(image):
        yield Finding(
            f"{image!r} is not an image reference Modal can pull",
            ("image", image_field),
            f"write REPOSITORY:TAG, e.g. {example}",
        )
        return
    tag, digest = _tag_and_digest(image)
    if digest:
        if not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
            yield Finding(
                f"{digest!r} is not a sha256 digest",
                ("image", image_field),
                "copy the digest from the registry, e.g. `docker buildx imagetools inspect IMAGE`",
            )
            return
    elif tag in FLOATING_TAGS or "nightly" in tag or tag.startswith("dev"):
        yield Finding(
            f"image {image!r} is not pinned: {tag or 'no tag'} moves",
            ("image", image_field),
            _pin_hint(image, example),
        )
        return
    elif not RELEASE_IN_TAG.match(tag):
        # A model or hardware tag (`glm5-blackwell`, `glm5-hopper`) names no release and is rebuilt in place as
        # the model's support lands: only a digest pins what it points to.
        yield Finding(
            f"image {image!r} is not pinned: tag {tag!r} names no release and can be rebuilt under the same name",
            ("image", image_field),
            _pin_hint(image, example),
        )
        return
    version = profile.data["image"][version_field]
    if engine == "sglang":
        yield from _sglang_release(profile, image, tag)
        return
    # A digest pins the image whatever its tag says: then only a tag that names another release says the digest
    # is not the one meant, and a tag that names none (`latest@sha256:...`) leaves the version to vllm_version.
    if tag and not re.match(rf"v{re.escape(version)}(-|$)", tag) and (not digest or RELEASE_IN_TAG.match(tag)):
        yield Finding(
            f"image tag {tag!r} does not match {version_field} {version}",
            ("image", version_field),
            f"use the v{version} image or set {version_field} to the image's version",
        )


def _pin_hint(image: str, example: str) -> str:
    return (
        f"pin a release tag such as {example}, or keep this image and add its digest, {image}@sha256:<64 hex> "
        f"(`docker buildx imagetools inspect {image}` prints it)"
    )


def _sglang_release(profile: ResolvedProfile, image: str, tag: str) -> Iterator[Finding]:
    """The release the image's tag names against sglang_version, as image.flag_check says to check it."""
    version = profile.data["image"]["sglang_version"]
    check = profile.data["image"]["flag_check"]
    named = RELEASE_IN_TAG.match(tag)
    if check == "parser-matches" and named:
        yield Finding(
            f"image {image!r} names SGLang {named.group(1)}; parser-matches is for an image that names no release",
            ("image", "flag_check"),
            "remove image.flag_check: the flags are checked against the release the tag names",
        )
    elif check == "release" and not named:
        yield Finding(
            f"image {image!r} names no SGLang release, so no catalog is known to match its parser",
            ("image", "sglang_image"),
            "set image.flag_check: parser-matches and sglang_version to the release whose parser the image has "
            "(the flags are checked against its catalog), or image.flag_check: off",
        )
    # With a digest too: a tag that names another version says the digest is not the one meant.
    elif named and named.group(1) != version:
        yield Finding(
            f"image tag {tag!r} does not match sglang_version {version}",
            ("image", "sglang_version"),
            f"use the v{version} image or set sglang_version to the image's version",
        )


@rule("flag-check-parser-matches", Severity.INFO, "image.flag_check: parser-matches (the profile's statement)",
      SGLANG)  # fmt: skip
def flag_check_parser_matches(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["image"]["flag_check"] == "parser-matches":
        yield Finding(
            f"image {profile.data['image']['sglang_image']!r} names no SGLang release: its flags are checked against "
            f"SGLang {profile.data['image']['sglang_version']}'s catalog, whose parser the profile says it has",
            ("image", "flag_check"),
            "check it when the image changes: `python -m sglang.launch_server --help` in the image against "
            "schema/sglang/ (or `python generate.py catalog add` for a release)",
        )


@rule("vllm-version-stated", Severity.INFO, "image.vllm_version: the profile's statement for a digest", VLLM)
def vllm_version_stated(profile: ResolvedProfile) -> Iterator[Finding]:
    """A digest-pinned vLLM image whose tag names no release: the catalog comes from vllm_version alone, said."""
    image = profile.data["image"]["vllm_image"]
    tag, digest = _tag_and_digest(image)
    if digest and not RELEASE_IN_TAG.match(tag):
        yield Finding(
            f"image {image!r} names no vLLM release: its flags are checked against vLLM "
            f"{profile.data['image']['vllm_version']}'s catalog, the version the profile says the digest holds",
            ("image", "vllm_version"),
            "check it when the digest changes: `vllm --version` in the image",
        )


@rule("flag-check-off", Severity.WARNING, "image.flag_check: off (the profile's choice)", SGLANG)
def flag_check_off(profile: ResolvedProfile) -> Iterator[Finding]:
    if profile.data["image"]["flag_check"] == "off":
        yield Finding(
            "the SGLang flags are not checked (image.flag_check: off): a wrong or renamed flag fails only when the "
            "container starts",
            ("image", "flag_check"),
            "set image.flag_check: parser-matches with the release whose parser the image has",
        )


@rule("image-step", Severity.ERROR, "https://modal.com/docs/reference/modal.Image: one Image method per step")
def image_step_shape(profile: ResolvedProfile) -> Iterator[Finding]:
    for found in (*image_steps.shape_findings(profile), *image_steps.order_findings(profile)):
        yield Finding(found.message, found.blame, found.hint)


@rule("package-pin", Severity.ERROR, "README.md#image-build-steps: a rebuild installs what was reviewed")
def packages_pinned(profile: ResolvedProfile) -> Iterator[Finding]:
    for found in image_steps.package_findings(profile):
        yield Finding(found.message, found.blame, found.hint)


@rule("local-file", Severity.ERROR, "README.md#image-build-steps: the project's own files, found at validate time")
def local_files(profile: ResolvedProfile) -> Iterator[Finding]:
    for found in image_steps.local_findings(profile):
        yield Finding(found.message, found.blame, found.hint)


# DeepGEMM's kernels are for the sm90 and sm100 families (data/gpus.yaml `family`: a B300 is sm100).
@rule("deepgemm-arch", Severity.WARNING, "docs/sources.md#jit-caches: DeepGEMM FP8 kernels for SM90 and SM100", SGLANG)
def deepgemm_arch(profile: ResolvedProfile) -> Iterator[Finding]:
    # Only an explicit `true`: unset compiles exactly where DeepGEMM has FP8 kernels to build.
    if profile.data["lifecycle"]["compile"]["enabled"] is not True:
        return
    if _family(profile) not in DEEPGEMM_FAMILIES:
        yield Finding(
            f"DeepGEMM has no kernels for {profile.data['gpu']['type']} ({_arch(profile)}); "
            "compile_deepgemm would spend GPU time for nothing",
            ("lifecycle", "compile", "enabled"),
            "remove lifecycle.compile.enabled (unset compiles only where there is something to compile) or set it "
            "to false",
        )
    elif (quantization := derived.model_facts(profile).quantization) != "fp8":
        yield Finding(
            f"the model's weights are not FP8 (quantization {quantization}), and DeepGEMM's kernels are FP8 only; "
            "compile_deepgemm would spend GPU time for nothing",
            ("lifecycle", "compile", "enabled"),
            "remove lifecycle.compile.enabled (unset compiles only where there is something to compile) or set it "
            "to false",
        )


ENGINE_SECTIONS = ("sglang", "vllm")


@rule("inline-secret", Severity.ERROR, "docs/sources.md#modal-secrets: secrets live in Modal secrets")
def no_inline_secrets(profile: ResolvedProfile) -> Iterator[Finding]:
    """Secrets by meaning (a name that says key, token, secret, password, auth) and by shape (known token
    formats, key-like random text): a profile names Modal secrets, it never holds one."""
    for name in profile.data["image"].get("env", {}):
        if secret_name(name):
            yield Finding(
                f"image.env.{name} looks like a secret; its value would be baked into the image",
                ("image", "env", name),
                "store it with `modal secret create NAME KEY=...` and name that secret under `secrets`",
            )
    for section in ENGINE_SECTIONS:
        for name, value in (profile.data.get(section) or {}).items():
            # --api-key is set from secrets.api_key (the flag checks say so); a bare flag holds no secret.
            if name != "api-key" and secret_name(name) and not isinstance(value, bool) and value is not None:
                yield Finding(
                    f"--{name} takes a secret, and a literal here would be written into deploy.py",
                    (section, name),
                    "remove it: secrets reach the container only from Modal secrets (`secrets.api_key` sets --api-key)",
                )

    def walk(node: Any, path: tuple) -> Iterator[Finding]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, (*path, key))
        elif isinstance(node, list):
            for index, value in enumerate(node):
                yield from walk(value, (*path, index))
        elif isinstance(node, str) and looks_secret(node):
            yield Finding(
                "this value looks like an API key or token; secrets never go in a profile",
                path,
                "store it with `modal secret create` and name the Modal secret under `secrets`",
            )

    yield from walk(profile.data, ())


@rule("model-revision", Severity.INFO, "SGLang #22922 needs a revision after the template update (docs/sources.md)")
def model_revision_pinned(profile: ResolvedProfile) -> Iterator[Finding]:
    revision = profile.data["model"]["revision"]
    if not re.fullmatch(r"[0-9a-f]{40}", revision):
        yield Finding(
            f"revision {revision!r} is a branch: download_model records the commit it resolves to, "
            "but the next download may fetch newer weights",
            ("model", "revision"),
            "pin the 40-hex commit from the Hub's 'Files and versions' page once validated",
        )


@rule(
    "draft-model-offline",
    Severity.ERROR,
    "deploygen/runtime/engine.py starts SGLang with HF_HUB_OFFLINE=1 "
    "(https://huggingface.co/docs/huggingface_hub/package_reference/environment_variables#hfhuboffline)",
    SGLANG,
)
def draft_model_in_the_container(profile: ResolvedProfile) -> Iterator[Finding]:
    """A draft model named by its Hub repository id is downloaded by SGLang when it starts; the container runs it
    offline and download_model fetches model.repo only, so such a deployment can never start."""
    names = ("speculative-draft-model-path", "speculative-draft-model")
    draft = profile.flag(*names)
    if not isinstance(draft, str) or draft.startswith("/"):
        return
    name = next(n for n in names if n in profile.data["sglang"])
    yield Finding(
        f"--{name} {draft!r} is not a path in the container: deploy.py starts SGLang with HF_HUB_OFFLINE=1 and "
        "download_model fetches model.repo only, so SGLang cannot download the draft model when it starts",
        ("sglang", name),
        f"download {draft} into the weights volume and give its path there "
        f"(e.g. {profile.data['volumes']['weights']['mount']}/{draft.rsplit('/', 1)[-1]})",
    )


@rule(
    "warmup",
    Severity.ERROR,
    "https://docs.sglang.ai/advanced_features/separate_reasoning.html, "
    "https://docs.vllm.ai/en/latest/features/tool_calling.html: parsers decide what an answer holds",
)
def warmup_can_pass(profile: ResolvedProfile) -> Iterator[Finding]:
    """A warmup request the engine cannot answer as expected stops every container at start."""
    for finding in warmup.findings(profile):
        yield Finding(finding.message, finding.blame, finding.hint)


def rule_problems(profile: ResolvedProfile) -> list[Problem]:
    problems = []
    engine = profile.data["engine"]
    for rule_ in RULES:
        if engine not in rule_.engines:
            continue
        for finding in rule_.check(profile):
            path = ".".join(str(p) for p in finding.blame)
            problems.append(
                Problem(profile.origin(finding.blame), path, finding.message, finding.hint, rule_.severity, rule_.code)
            )
    return problems
