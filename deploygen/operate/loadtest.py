"""Load test of a running deployment: streamed chat completions at a fixed concurrency.

    python generate.py bench https://workspace--glm-5-1-serve.modal.run --concurrency 16 --profile b200-prod

Reports time to first token (TTFT), time per output token (TPOT = (e2e - TTFT) / (output tokens - 1)),
inter-token latency (ITL: the gaps between text chunks), end-to-end latency, each as p50/p90/p99, and
output tokens per second over the whole run. Text is content or reasoning_content: for a thinking model
the first reasoning token is the first token. Output tokens come from the final usage chunk.

With --profile, the p50 TTFT and TPOT are compared with the profile's `targets`. Exit status 0 only when
no request failed and every target passed. The run is bounded by --requests and --time-limit.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import openai
from tqdm import tqdm

from deploygen.errors import UserError
from deploygen.operate import BENCH_TIME_LIMIT_S
from deploygen.operate.smoke import error_reason, first_model, openai_client

DEFAULT_PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
PERCENTILES = (50, 90, 99)
# The profile's targets are p50 values (schema/profile.schema.json, $defs.targets).
TARGET_METRICS = {"ttft_ms": "ttft", "tpot_ms": "tpot"}


@dataclass(frozen=True)
class Sample:
    """One completed request, in seconds."""

    ttft: float
    e2e: float
    output_tokens: int
    itls: tuple[float, ...]

    @property
    def tpot(self) -> float | None:
        return (self.e2e - self.ttft) / (self.output_tokens - 1) if self.output_tokens > 1 else None


@dataclass
class BenchResult:
    url: str
    model: str
    concurrency: int
    requests: int
    max_tokens: int
    duration_s: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    # One reason per error kind, to show what the kind means.
    error_examples: dict[str, str] = field(default_factory=dict)
    # Requests never sent, or cut off mid-stream, because the time limit was reached.
    unfinished: int = 0

    def record_error(self, kind: str, reason: str) -> None:
        self.errors[kind] += 1
        self.error_examples.setdefault(kind, reason)

    def values(self, metric: str) -> list[float]:
        """A metric's values in milliseconds: ttft, tpot, itl or e2e."""
        if metric == "itl":
            return [gap * 1000 for s in self.samples for gap in s.itls]
        values = [getattr(s, metric) for s in self.samples]
        return [v * 1000 for v in values if v is not None]

    def percentiles(self, metric: str) -> dict[str, float | None]:
        values = sorted(self.values(metric))
        return {f"p{q}": percentile(values, q) for q in PERCENTILES}

    @property
    def output_tokens_per_s(self) -> float:
        tokens = sum(s.output_tokens for s in self.samples)
        return tokens / self.duration_s if self.duration_s > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "url": self.url,
            "model": self.model,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "max_tokens": self.max_tokens,
            "completed": len(self.samples),
            "unfinished": self.unfinished,
            "duration_s": round(self.duration_s, 3),
            "output_tokens": sum(s.output_tokens for s in self.samples),
            "output_tokens_per_s": round(self.output_tokens_per_s, 1),
            **{f"{m}_ms": _rounded(self.percentiles(m)) for m in ("ttft", "tpot", "itl", "e2e")},
            "errors": sum(self.errors.values()),
            "error_kinds": {
                kind: {"count": n, "example": self.error_examples[kind]} for kind, n in self.errors.items()
            },
        }


def _rounded(values: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(v, 2) for k, v in values.items()}


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default); None without values."""
    if not sorted_values:
        return None
    rank = (len(sorted_values) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (rank - low)


# --- targets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCheck:
    name: str
    target_ms: float
    measured_ms: float | None  # None: no request completed, nothing to compare

    @property
    def passed(self) -> bool:
        return self.measured_ms is not None and self.measured_ms <= self.target_ms

    def __str__(self) -> str:
        if self.measured_ms is None:
            return f"FAIL  {self.name}: no measurement (target {self.target_ms:g} ms)"
        sign = "<=" if self.passed else ">"
        verdict = "PASS" if self.passed else "FAIL"
        return f"{verdict}  {self.name}: p50 {self.measured_ms:.1f} ms {sign} target {self.target_ms:g} ms"


def check_targets(measured_p50_ms: dict[str, float | None], targets: dict) -> list[TargetCheck]:
    """Compare p50 measurements ({"ttft_ms": 212.0, ...}) with a profile's targets; unset targets are skipped."""
    return [
        TargetCheck(name, float(targets[name]), measured_p50_ms.get(name))
        for name in TARGET_METRICS
        if targets.get(name) is not None
    ]


def result_targets(result: BenchResult, targets: dict) -> list[TargetCheck]:
    measured = {name: result.percentiles(metric)["p50"] for name, metric in TARGET_METRICS.items()}
    return check_targets(measured, targets)


# --- the load ------------------------------------------------------------------------------------------


def _one_request(
    client, model: str, body: dict, deadline: float, result: BenchResult, lock, api_key: str, headers: dict[str, str]
) -> None:
    started = time.monotonic()
    remaining = deadline - started
    if remaining <= 0:
        with lock:
            result.unfinished += 1
        return
    text_times: list[float] = []
    usage_tokens = None
    try:
        # The time left is the read timeout: a hung server fails the request when the run ends.
        with client.chat.completions.create(model=model, **body, timeout=remaining) as stream:
            for chunk in stream:
                now = time.monotonic()
                if chunk.usage is not None:
                    usage_tokens = chunk.usage.completion_tokens
                delta = chunk.choices[0].delta.model_dump() if chunk.choices else {}
                if delta.get("content") or delta.get("reasoning_content"):
                    text_times.append(now)
                if now > deadline:
                    with lock:
                        result.unfinished += 1
                    return
    except (openai.OpenAIError, ValueError) as exc:
        kind = f"HTTP {exc.status_code}" if isinstance(exc, openai.APIStatusError) else _error_kind(exc)
        with lock:
            result.record_error(kind, error_reason(exc, api_key, remaining, headers))
        return
    ended = time.monotonic()
    with lock:
        if not text_times:
            result.record_error("empty response", "the stream carried no content or reasoning_content")
            return
        tokens = usage_tokens if usage_tokens is not None else len(text_times)
        gaps = tuple(b - a for a, b in zip(text_times, text_times[1:], strict=False))
        result.samples.append(Sample(text_times[0] - started, ended - started, tokens, gaps))


def _error_kind(exc: Exception) -> str:
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection error"
    if isinstance(exc, openai.APIError):
        return "stream error"
    return "bad response"


def bench(
    url: str,
    api_key: str,
    model: str | None = None,
    concurrency: int = 8,
    requests: int = 32,
    max_tokens: int = 64,
    prompt: str = DEFAULT_PROMPT,
    time_limit: float = BENCH_TIME_LIMIT_S,
    profile: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> BenchResult:
    """Send `requests` streamed chat completions, `concurrency` at a time, for at most `time_limit` seconds.

    profile: (name, served model name) of the profile whose targets the result is held to; a deployment
    serving another model is refused before any load is sent. headers: Modal's proxy auth headers
    (smoke.proxy_headers), sent with every request."""
    headers = headers or {}
    client = openai_client(url, api_key, time_limit, headers)
    if not model:
        try:
            model = first_model(client)
        except (openai.OpenAIError, ValueError) as exc:
            raise UserError(f"{url}: GET /v1/models: {error_reason(exc, api_key, time_limit, headers)}") from None
    if profile is not None and model != profile[1]:
        raise UserError(
            f"{url} serves {model!r}, but profile {profile[0]} serves {profile[1]!r}: its targets do not apply "
            "(pass the profile of this deployment, or no --profile)"
        )
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    result = BenchResult(url, model, concurrency, requests, max_tokens)
    lock = threading.Lock()
    started = time.monotonic()
    deadline = started + time_limit
    # disable=None: a bar on a terminal, nothing in a log file or CI.
    with (
        tqdm(total=requests, desc="bench", unit="req", file=sys.stderr, disable=None) as progress,
        ThreadPoolExecutor(max_workers=concurrency) as pool,
    ):

        def run_one(_: int) -> None:
            _one_request(client, model, body, deadline, result, lock, api_key, headers)
            progress.update(1)
            if result.errors:
                progress.set_postfix(errors=sum(result.errors.values()), refresh=False)

        list(pool.map(run_one, range(requests)))
    result.duration_s = time.monotonic() - started
    return result


# --- the report ----------------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def format_report(result: BenchResult, checks: list[TargetCheck], profile: str | None) -> str:
    lines = [
        f"bench {result.url}: model {result.model}, concurrency {result.concurrency}, max_tokens {result.max_tokens}",
        f"completed {len(result.samples)} of {result.requests} requests in {result.duration_s:.2f}s, "
        f"{sum(result.errors.values())} errors",
    ]
    if result.unfinished:
        lines.append(f"time limit reached: {result.unfinished} requests unfinished")
    for kind, count in result.errors.most_common():
        example = result.error_examples[kind]
        lines.append(f"  {count} x {example if example.startswith(kind) else f'{kind}: {example}'}")
    lines.append(f"{'':<6}{'p50':>12}{'p90':>12}{'p99':>12}")
    for metric in ("ttft", "tpot", "itl", "e2e"):
        values = result.percentiles(metric)
        lines.append(f"{metric.upper():<6}" + "".join(f"{_ms(values[f'p{q}']):>12}" for q in PERCENTILES))
    lines.append(f"output tokens/s: {result.output_tokens_per_s:.1f}")
    if profile is not None:
        lines.append(f"targets of {profile}:" if checks else f"targets of {profile}: none set")
        lines.extend(f"  {check}" for check in checks)
    return "\n".join(lines)
