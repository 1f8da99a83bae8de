"""Smoke test of a running deployment: one request per path, with the same checks as the warmup.

    python generate.py smoke https://workspace--glm-5-1-serve.modal.run    # API key from API_KEY

The four paths are the ones the generated deploy.py warms up (deploygen/runtime/request_paths.py): a chat
with thinking, a chat with thinking disabled, a long prompt and a forced tool call. A path passes when
its answer has what that path promises (reasoning_content, content, tool_calls). Exit status 0 only when
every path passes. HTTP errors and timeouts are failed paths with a reason, never a traceback.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import openai

from deploygen.operate import SMOKE_TIMEOUT_S
from deploygen.runtime.request_paths import request_paths

# The schema's default for lifecycle.warmup.long_context_words: the same prompt size as the warmup.
LONG_CONTEXT_WORDS = 3000
# A cold start of a scaled-to-zero app counts against the first request, so the default is generous.
# SGLang reads these from the request body; the OpenAI client sends them through extra_body.
SGLANG_BODY_KEYS = ("chat_template_kwargs",)


@dataclass(frozen=True)
class PathResult:
    name: str
    passed: bool
    latency_s: float | None  # None: the request was never sent
    reason: str = ""


def smoke_paths(long_context_words: int = LONG_CONTEXT_WORDS) -> dict[str, tuple[dict, Callable[[dict], str]]]:
    """Each path's request body (without the model) and its check: the warmup's own, from request_paths."""
    return request_paths(long_context_words)


# --- the client, shared with the load test ---------------------------------------------------------------


def openai_client(url: str, api_key: str, timeout: float) -> openai.OpenAI:
    # No retries: a smoke test or a load test that retries hides the failures it is there to show.
    # SGLang started without --api-key accepts any key, and the client refuses an empty one.
    base = url.rstrip("/").removesuffix("/v1")
    return openai.OpenAI(api_key=api_key or "EMPTY", base_url=f"{base}/v1", timeout=timeout, max_retries=0)


def request_kwargs(body: dict) -> dict:
    """A request body as keyword arguments of chat.completions.create: SGLang's own keys go in extra_body."""
    kwargs = {k: v for k, v in body.items() if k not in SGLANG_BODY_KEYS}
    extra = {k: v for k, v in body.items() if k in SGLANG_BODY_KEYS}
    return {**kwargs, "extra_body": extra} if extra else kwargs


def error_reason(exc: Exception, api_key: str, timeout: float) -> str:
    """One line that says why a request failed, without the API key."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        if isinstance(body, dict):
            detail = body.get("message") or body.get("detail") or str(body)
        else:
            detail = body if isinstance(body, str) and body else exc.response.text
        reason = f"HTTP {exc.status_code}: {' '.join(str(detail).split())[:200]}"
        if exc.status_code == 401 and not api_key:
            reason += " (no API key given: set API_KEY or pass --api-key)"
    elif isinstance(exc, openai.APITimeoutError):
        reason = f"timed out after {timeout:.3g}s"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        reason = f"connection failed: {cause or exc}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    return reason.replace(api_key, "***") if api_key else reason


def first_model(client: openai.OpenAI) -> str:
    """The first model /v1/models lists: SGLang serves one, under --served-model-name."""
    models = client.models.list().data
    if not models:
        raise ValueError("/v1/models lists no model")
    return models[0].id


# --- the smoke test ------------------------------------------------------------------------------------


def _run_path(client: openai.OpenAI, model: str, name: str, body: dict, check, api_key: str, timeout: float):
    started = time.monotonic()
    try:
        response = client.chat.completions.create(model=model, **request_kwargs(body))
        elapsed = time.monotonic() - started
        if not response.choices:
            return PathResult(name, False, elapsed, "response has no choices")
        # As a dict, SGLang's extra fields (reasoning_content) included, for the warmup's checks.
        problem = check(response.choices[0].message.model_dump())
    except (openai.OpenAIError, ValueError) as exc:
        return PathResult(name, False, time.monotonic() - started, error_reason(exc, api_key, timeout))
    return PathResult(name, not problem, elapsed, problem)


def smoke(url: str, api_key: str, model: str | None = None, timeout: float = SMOKE_TIMEOUT_S) -> list[PathResult]:
    """Send each path once, one after another (so each latency is its own), printing a line per path."""
    client = openai_client(url, api_key, timeout)
    paths = smoke_paths()
    if not model:
        try:
            model = first_model(client)
        except (openai.OpenAIError, ValueError) as exc:
            # No model name, no request: every path fails with the reason (a wrong key shows here first).
            reason = f"not sent: GET /v1/models: {error_reason(exc, api_key, timeout)}"
            results = [PathResult(name, False, None, reason) for name in paths]
            _print_results(results)
            return results
        print(f"model {model} (first of /v1/models)", flush=True)
    results = []
    for name, (body, check) in paths.items():
        results.append(_run_path(client, model, name, body, check, api_key, timeout))
        _print_results(results[-1:])
    return results


def _print_results(results: list[PathResult]) -> None:
    for result in results:
        latency = "       -" if result.latency_s is None else f"{result.latency_s:7.2f}s"
        line = f"{'PASS' if result.passed else 'FAIL'}  {result.name:<13} {latency}"
        print(f"{line}  {result.reason}" if result.reason else line, flush=True)


def summary_line(results: list[PathResult]) -> str:
    failed = [r.name for r in results if not r.passed]
    if not failed:
        return f"all {len(results)} paths passed"
    return f"{len(failed)} of {len(results)} paths failed: {', '.join(failed)}"
