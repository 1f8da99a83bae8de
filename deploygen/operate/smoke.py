"""Smoke test of a running deployment: the profile's warmup requests, once each, with the same checks.

    python generate.py smoke https://workspace--glm-5-1-serve.modal.run --profile b200-prod

With a profile, the requests are the ones its deploy.py warms up with (derived from the engine's flags
in deploygen/validate/warmup.py, checked by deploygen/runtime/request_paths.py): a chat, thinking on and
off with a reasoning parser, a long prompt, a forced tool call with a tool-call parser, or embeddings for
an embedding model. Without one, plain generation only. Exit status 0 only when every request passes.
HTTP errors and timeouts are failed requests with a reason, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import openai

from deploygen.operate import SMOKE_TIMEOUT_S
from deploygen.runtime.request_paths import check_answer, request_body

# Without a profile: what any generation model answers (no parser assumed).
PLAIN_REQUESTS = (
    {
        "name": "chat",
        "route": "/v1/chat/completions",
        "body": {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 64},
        "expect": {"text": True},
    },
)
# Keys the OpenAI client does not know for a route: it sends them through extra_body.
CLIENT_KEYS = {
    "/v1/chat/completions": {
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "n",
    },
    "/v1/completions": {"prompt", "max_tokens", "temperature", "top_p", "stop", "seed", "n"},
    "/v1/embeddings": {"input", "dimensions", "encoding_format"},
}


@dataclass(frozen=True)
class PathResult:
    name: str
    passed: bool
    latency_s: float | None  # None: the request was never sent
    reason: str = ""


# --- the client, shared with the load test ---------------------------------------------------------------


def openai_client(url: str, api_key: str, timeout: float) -> openai.OpenAI:
    # No retries: a smoke test or a load test that retries hides the failures it is there to show.
    # SGLang started without --api-key accepts any key, and the client refuses an empty one.
    base = url.rstrip("/").removesuffix("/v1")
    return openai.OpenAI(api_key=api_key or "EMPTY", base_url=f"{base}/v1", timeout=timeout, max_retries=0)


def request_kwargs(route: str, body: dict) -> dict:
    """A request body as keyword arguments of the client's create(): keys it does not know go in extra_body."""
    known = CLIENT_KEYS[route] | {"model"}
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    return {**kwargs, "extra_body": extra} if extra else kwargs


def _create(client: openai.OpenAI, route: str, body: dict):
    kwargs = request_kwargs(route, body)
    if route == "/v1/embeddings":
        return client.embeddings.create(**kwargs)
    if route == "/v1/completions":
        return client.completions.create(**kwargs)
    return client.chat.completions.create(**kwargs)


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


def _run_request(client: openai.OpenAI, model: str, request: dict, api_key: str, timeout: float) -> PathResult:
    started = time.monotonic()
    name = request["name"]
    try:
        response = _create(client, request["route"], request_body(request, model))
        elapsed = time.monotonic() - started
        # As a dict, the engine's extra fields (reasoning_content) included, for the warmup's checks.
        problem = check_answer(request, response.model_dump())
    except (openai.OpenAIError, ValueError) as exc:
        return PathResult(name, False, time.monotonic() - started, error_reason(exc, api_key, timeout))
    return PathResult(name, not problem, elapsed, problem)


def smoke(
    url: str,
    api_key: str,
    model: str | None = None,
    timeout: float = SMOKE_TIMEOUT_S,
    requests: tuple[dict, ...] = PLAIN_REQUESTS,
    expected_model: str | None = None,
) -> list[PathResult]:
    """Send each request once, one after another (so each latency is its own), printing a line for each.

    expected_model: the profile's served model name; a deployment serving another model fails every
    request unsent (the profile's checks say nothing about another model)."""
    client = openai_client(url, api_key, timeout)
    if not model:
        try:
            model = first_model(client)
        except (openai.OpenAIError, ValueError) as exc:
            # No model name, no request: every path fails with the reason (a wrong key shows here first).
            reason = f"not sent: GET /v1/models: {error_reason(exc, api_key, timeout)}"
            results = [PathResult(r["name"], False, None, reason) for r in requests]
            _print_results(results)
            return results
        print(f"model {model} (first of /v1/models)", flush=True)
    if expected_model and model != expected_model:
        reason = f"not sent: the deployment serves {model!r}, the profile serves {expected_model!r}"
        results = [PathResult(r["name"], False, None, reason) for r in requests]
        _print_results(results)
        return results
    results = []
    for request in requests:
        results.append(_run_request(client, model, request, api_key, timeout))
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
