"""Capacity and cost plan of a validated profile: memory per GPU, concurrency, monthly cost, cold start.

Every number is a quantity, `{"label", "value", "unit", "source"}`, whose source names the profile
field (with file and line), the data file entry or the FACTS.md entry it comes from, or the formula
that derives it from the quantities above it. The table, the JSON and the chart all read the same plan.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import sys
import tempfile
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from croniter import croniter

from deploygen.errors import UserError
from deploygen.facts import DATA_DIR, VOLUME_READ_GB_PER_S, gpu_facts, model_facts
from deploygen.load import ResolvedProfile, load_profile
from deploygen.load.yaml_source import display_path
from deploygen.plan.deployment import derived_tp_size
from deploygen.validate import check_profile
from deploygen.validate.flags import profile_catalog

GB = 1e9
DAYS_PER_MONTH = 30
HOURS_PER_MONTH = DAYS_PER_MONTH * 24
# Seed 004: "This JIT phase took 12 to 15 minutes" on first boot without cached kernels (unverified).
JIT_COMPILE_S = 15 * 60
# An assumption: SGLang's own warmup plus the generated four warmup requests on a warm engine.
WARMUP_S = 30
# Seed 000's keep-alive cron, also the schema default of keepalive.schedule.
DEFAULT_KEEPALIVE = "*/14 6-22 * * MON-FRI"
# June 2026: 30 days (720 h) with no daylight-saving change in US, EU or Australian time zones, so a
# cron in any of them covers the same wall-clock hours on every day of the month.
REFERENCE_MONTH = (datetime(2026, 6, 1), datetime(2026, 7, 1))
EAGLE_ALGORITHMS = ("EAGLE", "EAGLE3", "NEXTN")
# SGLang 0.5.10's default of --mamba-full-memory-ratio, for catalogs that do not record one.
MAMBA_RATIO_FALLBACK = 0.9
PRICES_PATH = DATA_DIR / "prices.yaml"
PRICES = "data/prices.yaml"


def quantity(label: str, value: Any, unit: str, source: str, **extra: Any) -> dict[str, Any]:
    """One number with its unit and where it comes from."""
    return {"label": label, "value": value, "unit": unit, "source": source, **extra}


@functools.cache
def prices() -> dict[str, Any]:
    return yaml.safe_load(PRICES_PATH.read_text())


def _where(profile: ResolvedProfile, *path: str) -> str:
    """`dotted.field (file:line)`, or `(schema default)` when no file set it."""
    origin = profile.origin(path)
    place = f"{origin.file}:{origin.line}" if origin.line else "schema default"
    return f"{'.'.join(path)} ({place})"


def _flag_source(profile: ResolvedProfile, *names: str) -> str:
    flags = profile.data.get("sglang", {})
    return _where(profile, "sglang", next(n for n in names if n in flags))


def _models_file(profile: ResolvedProfile) -> str:
    return f"data/models/{profile.data['model']['facts']}.yaml"


@dataclass(frozen=True)
class CostModel:
    """Monthly GPU cost of one deployment under the three strategies, as a function of traffic."""

    replica_usd_per_hour: float
    # Billed per scale-to-zero activation (one a day): the scaledown_window tail and the cold start.
    activation_overhead_h: float
    # Hours a month the keep-alive cron keeps one replica up.
    covered_hours: float
    always_on_replicas: int

    def scale_to_zero(self, active_h: float) -> float:
        return DAYS_PER_MONTH * (active_h + self.activation_overhead_h) * self.replica_usd_per_hour

    def business_hours(self, active_h: float) -> float:
        # Traffic falls inside the covered hours first; what does not fit is billed like scale-to-zero.
        overflow = max(0.0, DAYS_PER_MONTH * active_h - self.covered_hours)
        return (self.covered_hours + overflow) * self.replica_usd_per_hour

    def always_on(self, active_h: float) -> float:
        return self.always_on_replicas * HOURS_PER_MONTH * self.replica_usd_per_hour

    def break_even_business_hours(self) -> float | None:
        """Active hours a day where scale-to-zero costs what the keep-alive does; None if never in 0-24."""
        hours = self.covered_hours / DAYS_PER_MONTH - self.activation_overhead_h
        return hours if 0 <= hours <= 24 else None

    def break_even_always_on(self) -> float | None:
        hours = self.always_on_replicas * 24 - self.activation_overhead_h
        return hours if 0 <= hours <= 24 else None

    @classmethod
    def from_plan(cls, report: dict[str, Any]) -> CostModel:
        model = report["cost"]["model"]
        return cls(
            model["replica_usd_per_hour"]["value"],
            model["activation_overhead_h"]["value"],
            model["keepalive_covered_hours"]["value"],
            model["always_on_replicas"]["value"],
        )


@dataclass(frozen=True)
class Coverage:
    hours: float
    # Separate stretches of uptime: each one begins with a cold start.
    stretches: int
    # Days of the month on which the cron pings at all.
    ping_days: int


def keepalive_coverage(schedule: str, timezone: str, window_s: int, cold_start_s: float = 0) -> Coverage:
    """How long a cron keeps one replica up over the reference month.

    A ping that finds no replica starts one: it stays up through the cold start and `window_s` after
    the ping is answered. A ping that finds one warm keeps it up until `window_s` after that ping.
    Pings closer together than that join into one stretch of uptime.
    """
    tz = zoneinfo.ZoneInfo(timezone)
    start, end = (day.replace(tzinfo=tz).timestamp() for day in REFERENCE_MONTH)
    runs = croniter(schedule, datetime.fromtimestamp(start, tz) - timedelta(seconds=cold_start_s + window_s + 1))
    stretches: list[list[float]] = []
    days: set[str] = set()
    while (ping := runs.get_next(float)) < end:
        if ping >= start:
            days.add(datetime.fromtimestamp(ping, tz).date().isoformat())
        if stretches and ping <= stretches[-1][1]:
            stretches[-1][1] = max(stretches[-1][1], min(ping + window_s, end))
        else:
            stretches.append([ping, min(ping + cold_start_s + window_s, end)])
    inside = [(max(low, start), high) for low, high in stretches if high > start]
    return Coverage(sum(high - low for low, high in inside) / 3600, len(inside), len(days))


def _kv_dtype(profile: ResolvedProfile, facts: dict[str, Any], arch: str) -> tuple[str, str]:
    flag = profile.flag("kv-cache-dtype")
    if flag in (None, "auto"):
        given = _flag_source(profile, "kv-cache-dtype") if flag else "--kv-cache-dtype unset"
        if facts.get("attention") == "dsa" and arch == "sm100":
            return "fp8_e4m3", f"{given}: SGLang picks FP8 KV for DSA models on SM100 (FACTS.md 1)"
        return "bfloat16", f"{given}: auto is the model's dtype (SGLang --kv-cache-dtype help), BF16"
    dtype = "bfloat16" if flag == "bf16" else str(flag)
    return dtype, _flag_source(profile, "kv-cache-dtype")


def _memory(profile: ResolvedProfile, running: int | None) -> dict[str, Any]:
    data = profile.data
    facts = model_facts(data["model"]["facts"])
    gpu_type = data["gpu"]["type"]
    gpu = gpu_facts()[gpu_type]
    models = _models_file(profile)
    tp = profile.flag("tp-size", "tensor-parallel-size", default=derived_tp_size(profile))
    pp = profile.flag("pp-size", "pipeline-parallel-size", default=1)
    fraction = profile.flag("mem-fraction-static")
    if fraction is None:
        raise UserError(
            f"{profile.name} leaves sglang.mem-fraction-static unset: SGLang sizes its memory pool at "
            "startup, so the planner cannot; set it to plan the KV cache"
        )

    memory_gb = gpu["memory_gb"]
    weights_gb = facts["checkpoint_gb"] / (tp * pp)
    static_gb = memory_gb * fraction
    pool_gb = static_gb - weights_gb
    out: dict[str, Any] = {
        "gpu_memory_gb": quantity("GPU memory", memory_gb, "GB", f"data/gpus.yaml {gpu_type}.memory_gb"),
        "weights_per_gpu_gb": quantity(
            "weights per GPU",
            round(weights_gb, 4),
            "GB",
            f"{models} checkpoint_gb {facts['checkpoint_gb']} / (tp {tp} x pp {pp})",
        ),
        "mem_fraction_static": quantity(
            "mem-fraction-static", fraction, "", _flag_source(profile, "mem-fraction-static")
        ),
        "static_pool_gb": quantity(
            "static pool (weights + KV)", round(static_gb, 4), "GB", "GPU memory x mem-fraction-static"
        ),
        "kv_pool_gb": quantity("KV pool", round(pool_gb, 4), "GB", "static pool - weights per GPU"),
        "headroom_gb": quantity(
            "headroom (activations, CUDA graphs, NCCL)",
            round(memory_gb - static_gb, 4),
            "GB",
            "GPU memory - static pool",
        ),
    }

    if facts.get("hybrid_linear_attention"):
        ratio = profile.flag("mamba-full-memory-ratio")
        if ratio is not None:
            ratio_source = _flag_source(profile, "mamba-full-memory-ratio")
        else:
            catalog, _ = profile_catalog(profile)
            flag = catalog.by_option.get("--mamba-full-memory-ratio") if catalog else None
            ratio = flag.default if flag is not None and flag.default is not None else MAMBA_RATIO_FALLBACK
            ratio_source = f"SGLang {data['image']['sglang_version']} default of --mamba-full-memory-ratio"
        out["mamba_full_memory_ratio"] = quantity("mamba-full-memory-ratio", ratio, "", ratio_source)
        out["linear_state_pool_gb"] = quantity(
            "linear-attention state pool",
            round(pool_gb * ratio / (1 + ratio), 4),
            "GB",
            f"KV pool x ratio / (1 + ratio): SGLang handle_max_mamba_cache ({models} hybrid_linear_attention)",
        )
        pool_gb = pool_gb / (1 + ratio)
        out["full_attention_kv_pool_gb"] = quantity(
            "KV pool of full-attention layers", round(pool_gb, 4), "GB", "KV pool / (1 + ratio)"
        )

    dtype, dtype_source = _kv_dtype(profile, facts, gpu["arch"])
    table = facts["kv_bytes_per_token"]
    if dtype not in table:
        raise UserError(f"{models} has no kv_bytes_per_token.{dtype}; add it to plan {profile.name}")
    bytes_total = table[dtype]
    # Pipeline stages split the layers, so each GPU keeps KV for 1/pp of them.
    if facts.get("kv_split_across_tp"):
        heads = facts.get("num_key_value_heads")
        divisor = (min(tp, heads) if heads else tp) * pp
        how = f"/ (min(tp {tp}, num_key_value_heads {heads}) x pp {pp})" if heads else f"/ (tp {tp} x pp {pp})"
    else:
        divisor, how = pp, f"/ pp {pp} (not split across TP: kv_split_across_tp false)"
    per_token = bytes_total / divisor
    per_token = int(per_token) if per_token.is_integer() else per_token
    out["kv_cache_dtype"] = quantity("KV cache dtype", dtype, "", dtype_source)
    out["kv_bytes_per_token"] = quantity(
        "KV bytes per token per GPU", per_token, "B", f"{models} kv_bytes_per_token.{dtype} {bytes_total:,} {how}"
    )
    tokens = int(pool_gb * GB // per_token)
    out["kv_pool_tokens"] = quantity("KV tokens that fit", tokens, "tokens", "KV pool bytes / KV bytes per token")

    context = profile.flag("context-length")
    if context is None:
        context = facts["max_position_embeddings"]
        context_source = f"--context-length unset: the model's max ({models} max_position_embeddings)"
    else:
        context_source = _flag_source(profile, "context-length")
    out["context_length"] = quantity("context-length (per-request ceiling)", context, "tokens", context_source)

    cap = profile.flag("max-total-tokens")
    usable = tokens
    if cap is not None:
        usable = min(tokens, cap)
        out["max_total_tokens"] = quantity(
            "max-total-tokens (caps the whole pool)", cap, "tokens", f"{_flag_source(profile, 'max-total-tokens')}"
        )
        out["pool_tokens_capped"] = quantity(
            "KV pool after the cap", usable, "tokens", "min(KV tokens, max-total-tokens) (FACTS.md 13)"
        )
        if running:
            out["tokens_per_running_request"] = quantity(
                "tokens per running request",
                cap // running,
                "tokens",
                f"max-total-tokens / max-running-requests {running} (FACTS.md 13)",
            )
    out["full_context_requests"] = quantity(
        "requests at full context that fit at once",
        usable // context,
        "requests",
        ("KV pool after the cap" if cap is not None else "KV tokens") + " // context-length",
    )
    return out


def _running_requests(profile: ResolvedProfile) -> tuple[int | None, str]:
    running = profile.flag("max-running-requests")
    if running is not None:
        return running, _flag_source(profile, "max-running-requests")
    if profile.flag("speculative-algorithm") in EAGLE_ALGORITHMS:
        return 48, "--max-running-requests unset: SGLang's default with EAGLE (FACTS.md 12)"
    return None, "--max-running-requests unset: SGLang default, sized from the KV pool at startup"


def _concurrency(profile: ResolvedProfile, running: int | None, running_source: str) -> dict[str, Any]:
    scaling = profile.data["scaling"]
    max_inputs = scaling["max_inputs"]
    out: dict[str, Any] = {
        "max_inputs": quantity(
            "@modal.concurrent max_inputs", max_inputs, "requests/replica", _where(profile, "scaling", "max_inputs")
        ),
    }
    if running is not None:
        out["max_running_requests"] = quantity(
            "SGLang max-running-requests", running, "requests/replica", running_source
        )
        effective = min(max_inputs, running)
        out["effective_per_replica"] = quantity(
            "effective concurrency per replica",
            effective,
            "requests",
            "min(max_inputs, max-running-requests): one HTTP request is one Modal input (FACTS.md Modal)",
        )
        out["idle_sglang_slots"] = quantity(
            "SGLang slots Modal never fills", running - effective, "slots", "max-running-requests - effective"
        )
        if max_inputs > running:
            out["queued_in_sglang"] = quantity(
                "requests that queue inside SGLang", max_inputs - running, "requests", "max_inputs - max-running"
            )
    else:
        effective = max_inputs
        out["effective_per_replica"] = quantity(
            "effective concurrency per replica",
            effective,
            "requests",
            f"max_inputs; {running_source} (not modelled)",
        )
    replicas = scaling["max_containers"]
    out["min_replicas"] = quantity(
        "replicas kept warm", scaling["min_containers"], "replicas", _where(profile, "scaling", "min_containers")
    )
    out["max_replicas"] = quantity(
        "replicas at most", replicas, "replicas", _where(profile, "scaling", "max_containers")
    )
    out["fleet_ceiling"] = quantity(
        "fleet in-flight ceiling", replicas * effective, "requests", "max_containers x effective per replica"
    )
    target = scaling.get("target_inputs")
    out["scale_out_at"] = quantity(
        "new replica (a cold start) once every warm one has",
        target if target is not None else max_inputs,
        "requests",
        _where(profile, "scaling", "target_inputs") if target is not None else "target_inputs unset: max_inputs",
    )
    return out


def _cold_start(profile: ResolvedProfile) -> dict[str, Any]:
    checkpoint = model_facts(profile.data["model"]["facts"])["checkpoint_gb"]
    models = _models_file(profile)
    out: dict[str, Any] = {}
    for speed, rate in VOLUME_READ_GB_PER_S.items():
        out[f"weights_load_{speed}_s"] = quantity(
            f"weight load at {rate:g} GB/s",
            round(checkpoint / rate, 1),
            "s",
            f"{models} checkpoint_gb {checkpoint} / {rate:g} GB/s (FACTS.md Modal: volume reads 1-3 GB/s)",
        )
    out["jit_compile_cached_s"] = quantity(
        "JIT compile, cache present", 0, "s", "kernels loaded from the compile cache volume"
    )
    out["jit_compile_uncached_s"] = quantity(
        "JIT compile, no cache", JIT_COMPILE_S, "s", "seed 004: 12-15 min of JIT on first boot (unverified)"
    )
    out["warmup_s"] = quantity("warmup", WARMUP_S, "s", "assumption: SGLang warmup + generated warmup requests")
    for speed in VOLUME_READ_GB_PER_S:
        load = out[f"weights_load_{speed}_s"]["value"]
        for cache, jit in (("cached", 0), ("uncached", JIT_COMPILE_S)):
            out[f"total_{speed}_{cache}_s"] = quantity(
                f"cold start, {speed} volume, {'cache present' if cache == 'cached' else 'no cache'}",
                round(load + jit + WARMUP_S, 1),
                "s",
                "weight load + JIT compile + warmup (container allocation not included)",
            )
    health = profile.data["lifecycle"]["health"]["timeout"]
    out["health_timeout_s"] = quantity(
        "health wait limit", health, "s", _where(profile, "lifecycle", "health", "timeout")
    )
    return out


def _cost(profile: ResolvedProfile, active_hours: float, cold_start_s: float) -> tuple[dict[str, Any], list[str]]:
    data = profile.data
    gpu_type, count = data["gpu"]["type"], data["gpu"]["count"]
    table = prices()
    if gpu_type not in table["gpu_usd_per_hour"]:
        known = ", ".join(table["gpu_usd_per_hour"])
        raise UserError(f"{PRICES} has no price for {gpu_type} (priced: {known}); add it to plan {profile.name}")
    gpu_price = table["gpu_usd_per_hour"][gpu_type]
    region = data["scaling"].get("region")
    if region:
        multiplier = table["region_multiplier"]["broad"]
        region_source = (
            f"{PRICES} region_multiplier.broad for {_where(profile, 'scaling', 'region')}; "
            f"a narrow region costs {table['region_multiplier']['narrow']}x"
        )
    else:
        multiplier, region_source = 1.0, "scaling.region unset: Modal picks the region, no surcharge"
    rate = gpu_price * count * multiplier
    window = data["scaling"]["scaledown_window"]

    keepalive = data["keepalive"]
    schedule, timezone = keepalive["schedule"], keepalive["timezone"]
    if keepalive["enabled"]:
        cron_source = f"{_where(profile, 'keepalive', 'schedule')} in {timezone}"
    else:
        if keepalive["schedule"] == DEFAULT_KEEPALIVE:
            schedule_from = f"default {DEFAULT_KEEPALIVE!r}"
        else:
            schedule_from = _where(profile, "keepalive", "schedule")
        cron_source = f"keepalive off: {schedule_from} in {timezone}"
    coverage = keepalive_coverage(schedule, timezone, window, cold_start_s)
    covered = coverage.hours

    overhead_h = (window + cold_start_s) / 3600
    model = CostModel(rate, overhead_h, covered, max(data["scaling"]["min_containers"], 1))
    gpu_source = f"{PRICES} gpu_usd_per_hour.{gpu_type} ({table['as_of']})"
    out: dict[str, Any] = {
        "gpu_usd_per_hour": quantity(f"{gpu_type} price per GPU", gpu_price, "USD/h", gpu_source),
        "gpu_count": quantity("GPUs per replica", count, "GPUs", _where(profile, "gpu", "count")),
        "region_multiplier": quantity("region multiplier", multiplier, "x", region_source),
        "active_hours_per_day": quantity("active hours per day", active_hours, "h/day", "--active-hours"),
    }
    out["model"] = {
        "replica_usd_per_hour": quantity(
            "replica price", round(rate, 4), "USD/h", "GPU price x GPUs per replica x region multiplier"
        ),
        "scaledown_window_s": quantity(
            "idle tail per activation", window, "s", _where(profile, "scaling", "scaledown_window")
        ),
        "cold_start_s": quantity(
            "cold start billed per activation", cold_start_s, "s", "cold start, slow volume, cache present"
        ),
        "activation_overhead_h": quantity(
            "billed per activation", round(overhead_h, 6), "h", "(idle tail + cold start) / 3600; one activation a day"
        ),
        "keepalive_covered_hours": quantity(
            "hours the keep-alive cron keeps a replica up",
            round(covered, 4),
            "h/month",
            f"{cron_source}, June 2026; a ping holds a replica for scaledown_window, a cold one for its start too",
        ),
        "keepalive_cold_starts": quantity(
            "keep-alive cold starts",
            coverage.stretches,
            "per month",
            "one per stretch of pings closer together than scaledown_window",
        ),
        "always_on_replicas": quantity(
            "always-on replicas",
            model.always_on_replicas,
            "replicas",
            f"max(1, {_where(profile, 'scaling', 'min_containers')})",
        ),
    }
    active = DAYS_PER_MONTH * active_hours * rate
    tail = DAYS_PER_MONTH * window / 3600 * rate
    start = DAYS_PER_MONTH * cold_start_s / 3600 * rate
    out["scale_to_zero"] = {
        "active_usd": quantity(
            "traffic", round(active, 2), "USD/month", f"{active_hours:g} h/day x {DAYS_PER_MONTH} days x replica price"
        ),
        "idle_tail_usd": quantity(
            "idle tail", round(tail, 2), "USD/month", f"{DAYS_PER_MONTH} activations x scaledown_window x replica price"
        ),
        "cold_start_usd": quantity(
            "cold starts", round(start, 2), "USD/month", f"{DAYS_PER_MONTH} activations x cold start x replica price"
        ),
        "total_usd": quantity(
            "scale-to-zero",
            round(model.scale_to_zero(active_hours), 2),
            "USD/month",
            "traffic + idle tail + cold starts",
        ),
    }
    overflow = max(0.0, DAYS_PER_MONTH * active_hours - covered)
    out["business_hours"] = {
        "covered_usd": quantity(
            "cron-covered hours", round(covered * rate, 2), "USD/month", "covered hours x replica price"
        ),
        "overflow_usd": quantity(
            "traffic outside them",
            round(overflow * rate, 2),
            "USD/month",
            "(active hours x 30 - covered hours, if positive) x replica price",
        ),
        "total_usd": quantity(
            "business-hours keep-alive",
            round(model.business_hours(active_hours), 2),
            "USD/month",
            "cron-covered hours + traffic outside them",
        ),
    }
    out["always_on"] = {
        "total_usd": quantity(
            "always-on",
            round(model.always_on(active_hours), 2),
            "USD/month",
            f"always-on replicas x {HOURS_PER_MONTH} h x replica price",
        ),
    }
    even_bh, even_ao = model.break_even_business_hours(), model.break_even_always_on()
    out["break_even"] = {
        "vs_business_hours_h": quantity(
            "scale-to-zero = business hours at",
            None if even_bh is None else round(even_bh, 3),
            "h/day",
            "covered hours / 30 - billed per activation",
            **({} if even_bh is not None else {"why": "no crossing within 0-24 h/day"}),
        ),
        "vs_always_on_h": quantity(
            "scale-to-zero = always-on at",
            None if even_ao is None else round(even_ao, 3),
            "h/day",
            "always-on replicas x 24 - billed per activation",
            **({} if even_ao is not None else {"why": "no crossing within 0-24 h/day"}),
        ),
    }
    notes = []
    if coverage.stretches > coverage.ping_days:
        notes.append(
            f"The keep-alive cron pings less often than scaledown_window ({window} s): the replica scales down "
            f"between pings, so {coverage.stretches:,} pings a month are each a cold start. Ping more often "
            "than scaledown_window (or raise it) for the business-hours strategy to keep anything warm."
        )
    return out, notes


def _targets(profile: ResolvedProfile) -> dict[str, Any]:
    targets = profile.data.get("targets", {})
    out = {}
    if targets.get("ttft_ms") is not None:
        out["ttft_ms"] = quantity(
            "time to first token, p50", targets["ttft_ms"], "ms", _where(profile, "targets", "ttft_ms")
        )
    if targets.get("tpot_ms") is not None:
        out["tpot_ms"] = quantity(
            "time per output token, p50", targets["tpot_ms"], "ms", _where(profile, "targets", "tpot_ms")
        )
    return out


def _strategy(profile: ResolvedProfile) -> str:
    if profile.data["scaling"]["min_containers"] > 0:
        return "always_on"
    return "business_hours" if profile.data["keepalive"]["enabled"] else "scale_to_zero"


def plan(profile: ResolvedProfile, *, active_hours: float = 8) -> dict[str, Any]:
    """The capacity and cost plan of a profile that check_profile has validated (defaults applied)."""
    if not 0 <= active_hours <= 24:
        raise UserError(f"active hours per day must be between 0 and 24, not {active_hours:g}")
    data = profile.data
    running, running_source = _running_requests(profile)
    memory = _memory(profile, running)
    concurrency = _concurrency(profile, running, running_source)
    cold_start = _cold_start(profile)
    cost, cost_notes = _cost(profile, active_hours, cold_start["total_slow_cached_s"]["value"])
    notes = [
        f"Costs are GPU only: CPU (${_decimal(prices()['cpu_usd_per_core_second'])}/core-s) and memory "
        f"(${_decimal(prices()['memory_usd_per_gib_second'])}/GiB-s) are billed on top ({PRICES}).",
        f"A month is {DAYS_PER_MONTH} days ({HOURS_PER_MONTH} h). Scale-to-zero assumes one activation a day "
        "and one replica's worth of traffic.",
        "Business hours: traffic falls inside the cron-covered hours first; the rest is billed like "
        "scale-to-zero. The cron's first ping each day is itself a cold start.",
        *cost_notes,
        f"Cold start: warmup {WARMUP_S} s is an assumption; container allocation and image pull are not included.",
    ]
    if profile.flag("speculative-algorithm"):
        notes.append("Speculative decoding: the draft model's (MTP layer's) weights and KV are not modelled in memory.")
    if data["scaling"].get("region"):
        multipliers = prices()["region_multiplier"]
        notes.append(
            f"scaling.region is set: the broad-region multiplier ({multipliers['broad']}x) is assumed; "
            f"a narrow region costs {multipliers['narrow']}x."
        )
    if model_facts(data["model"]["facts"]).get("hybrid_linear_attention"):
        notes.append(
            "Linear-attention state slots can cap running requests below max-running-requests "
            "(SGLang sizes them from the state pool); speculative decoding reserves more state, not modelled."
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
            "gpu": f"{data['gpu']['count']}x {data['gpu']['type']}",
            "arch": gpu_facts()[data["gpu"]["type"]]["arch"],
            "sglang_version": data["image"]["sglang_version"],
            "strategy": _strategy(profile),
        },
        "memory": memory,
        "concurrency": concurrency,
        "cost": cost,
        "cold_start": cold_start,
        "targets": _targets(profile),
        "notes": notes,
    }


def _decimal(value: float) -> str:
    """A small price as a plain decimal (0.0000131), never in exponent notation."""
    return f"{value:.12f}".rstrip("0")


# --- terminal table -----------------------------------------------------------------------------


SINGULAR = {"GPUs": "GPU", "replicas": "replica", "requests": "request", "slots": "slot"}


def _format(item: dict[str, Any]) -> str:
    value, unit = item["value"], item["unit"]
    if value is None:
        return f"never ({item.get('why', 'n/a')})"
    if isinstance(value, str):
        return value
    if unit == "x":
        return f"{value:g}x"
    if unit.startswith("USD"):
        digits = 0 if abs(value) >= 100 else 2
        per = unit.removeprefix("USD")
        return f"${value:,.{digits}f}{per if per != '/month' else ''}"
    if isinstance(value, float) and not value.is_integer():
        text = f"{value:,.2f}" if abs(value) >= 1 else f"{value:.3g}"
    else:
        text = f"{int(value):,}"
    if value == 1:
        unit = SINGULAR.get(unit, unit)
    return f"{text} {unit}".rstrip()


def _rows(section: dict[str, Any], indent: str = "  ") -> list[tuple[str, str, str]]:
    rows = []
    for value in section.values():
        if "value" in value:
            rows.append((indent + value["label"], _format(value), value["source"]))
        else:
            rows += _rows(value, indent)
    return rows


def render_table(report: dict[str, Any]) -> str:
    deployment = report["deployment"]
    cost = report["cost"]
    sections = [
        ("Memory per GPU", _rows(report["memory"])),
        ("Concurrency", _rows(report["concurrency"])),
        (
            "Monthly GPU cost",
            _rows({k: v for k, v in cost.items() if "value" in v})
            + _rows(cost["model"])
            + [("  Scale-to-zero", "", "")]
            + _rows(cost["scale_to_zero"], "    ")
            + [("  Business-hours keep-alive", "", "")]
            + _rows(cost["business_hours"], "    ")
            + [("  Always-on", "", "")]
            + _rows(cost["always_on"], "    ")
            + [("  Break-even active hours", "", "")]
            + _rows(cost["break_even"], "    "),
        ),
        ("Cold start", _rows(report["cold_start"])),
    ]
    if report["targets"]:
        sections.append(("Latency targets", _rows(report["targets"])))
    all_rows = [row for _, rows in sections for row in rows]
    label_width = max(len(r[0]) for r in all_rows)
    value_width = max(len(r[1]) for r in all_rows)
    lines = [
        f"{report['profile']}: {report['description']}",
        f"  {deployment['gpu']} ({deployment['arch']}), SGLang {deployment['sglang_version']}, "
        f"strategy: {deployment['strategy'].replace('_', '-')}; {' -> '.join(report['sources'])}",
    ]
    for title, rows in sections:
        lines += ["", f"{title:<{label_width}}  {'value':>{value_width}}  source"]
        for label, value, source in rows:
            lines.append(f"{label:<{label_width}}  {value:>{value_width}}  {source}".rstrip())
    lines += ["", "Notes"] + [f"  {i}. {note}" for i, note in enumerate(report["notes"], 1)]
    return "\n".join(lines)


# --- chart --------------------------------------------------------------------------------------

CHART_FORMATS = (".svg", ".png")


def _check_chart_path(path: Path) -> None:
    if path.suffix.lower() not in CHART_FORMATS:
        raise UserError(f"--chart {path}: write a .svg or .png file")


def chart_bytes(report: dict[str, Any], fmt: str) -> bytes:
    """Monthly cost against active hours a day for the three strategies, break-even points marked."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from matplotlib.ticker import StrMethodFormatter

    model = CostModel.from_plan(report)
    hours = [h / 10 for h in range(241)]
    curves = {
        "scale-to-zero": [model.scale_to_zero(h) for h in hours],
        "business-hours keep-alive": [model.business_hours(h) for h in hours],
        "always-on": [model.always_on(h) for h in hours],
    }
    with matplotlib.rc_context({"svg.hashsalt": "deploygen", "svg.fonttype": "path"}):
        figure = Figure(figsize=(9, 5.5), dpi=100)
        axes = figure.subplots()
        for name, costs in curves.items():
            axes.plot(hours, costs, label=name, linewidth=2)
        # Label the keep-alive crossing above its point and the always-on one below its flat line.
        for label, even, offset in (
            ("= business hours", model.break_even_business_hours(), (-10, 14)),
            ("= always-on", model.break_even_always_on(), (-10, -34)),
        ):
            if even is None:
                continue
            cost = model.scale_to_zero(even)
            axes.plot([even], [cost], marker="o", color="black", zorder=5)
            # Near the left edge the label goes right of its point so it stays inside the axes.
            left = even < 6
            axes.annotate(
                f"scale-to-zero {label}\n{even:.1f} h/day, ${cost:,.0f}",
                (even, cost),
                textcoords="offset points",
                xytext=(-offset[0], offset[1]) if left else offset,
                ha="left" if left else "right",
                fontsize=8,
            )
        active = report["cost"]["active_hours_per_day"]["value"]
        axes.axvline(active, color="grey", linestyle=":", linewidth=1)
        axes.annotate(f"plan: {active:g} h/day", (active, 0), xytext=(3, 3), textcoords="offset points", fontsize=8)
        rate = report["cost"]["model"]["replica_usd_per_hour"]["value"]
        axes.set_title(
            f"{report['profile']}: monthly GPU cost, {report['deployment']['gpu']} at ${rate:,.2f}/h per replica",
            fontsize=10,
        )
        axes.set_xlabel("active hours per day")
        axes.set_ylabel("USD per month (30 days, GPU only)")
        axes.set_xlim(0, 24)
        axes.set_ylim(0, max(max(c) for c in curves.values()) * 1.1)
        axes.set_xticks(range(0, 25, 2))
        axes.yaxis.set_major_formatter(StrMethodFormatter("${x:,.0f}"))
        axes.grid(True, alpha=0.3)
        axes.legend(loc="upper left")
        figure.tight_layout()
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else {"Software": None}
        figure.savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def write_chart(report: dict[str, Any], path: Path) -> None:
    """Write the chart atomically; the format follows the file's suffix (.svg or .png)."""
    _check_chart_path(path)
    content = chart_bytes(report, path.suffix.lower().removeprefix("."))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


# --- command line -------------------------------------------------------------------------------


def add_plan_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add `plan PROFILE [--active-hours H] [--json] [--chart FILE]` to a CLI's subcommands."""
    parser = sub.add_parser("plan", help="memory, concurrency, monthly cost and cold start of a profile")
    parser.add_argument("profile", help="profile name or path")
    parser.add_argument(
        "--active-hours",
        type=float,
        default=8.0,
        metavar="H",
        help="hours of traffic a day, for the scale-to-zero cost (0-24, default 8)",
    )
    parser.add_argument("--json", action="store_true", help="print the plan as JSON: every number with unit and source")
    parser.add_argument(
        "--chart", type=Path, metavar="FILE", help="also write cost vs active hours to FILE.svg or .png"
    )
    parser.set_defaults(func=cmd_plan)
    return parser


def cmd_plan(args: argparse.Namespace) -> int:
    if args.chart is not None:
        _check_chart_path(args.chart)
    profile = load_profile(args.profile)
    if profile.abstract:
        raise UserError(f"{display_path(profile.path)} is an abstract base; plan one of the profiles that extend it")
    check_profile(profile)
    report = plan(profile, active_hours=args.active_hours)
    print(json.dumps(report, indent=2) if args.json else render_table(report))
    if args.chart is not None:
        write_chart(report, args.chart)
        print(f"{display_path(args.chart.resolve())}: written", file=sys.stderr)
    return 0
