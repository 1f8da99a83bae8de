"""Smoke test of a running deployment: the profile's warmup requests, once each, with the same checks.

    python generate.py smoke https://workspace--glm-5-1-serve.modal.run --profile b200-prod

With a profile, the requests are the ones its deploy.py warms up with (derived from the engine's flags
in deploygen/validate/warmup.py, checked by deploygen/runtime/request_paths.py): a chat, thinking on and
off with a reasoning parser, a long prompt, a forced tool call with a tool-call parser, or embeddings for
an embedding model. Without one, plain generation only. Exit status 0 only when every request passes.
HTTP errors and timeouts are failed requests with a reason, never a traceback.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import openai

from deploygen.errors import Problem, UserError
from deploygen.load.profiles import ResolvedProfile
from deploygen.operate import SMOKE_TIMEOUT_S
from deploygen.runtime.keepalive import PROXY_KEY_ENV, PROXY_SECRET_ENV
from deploygen.runtime.request_paths import check_answer, request_body
from deploygen.secrets import mask

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

PROXY_TOKEN_HINT = (
    "create a proxy auth token of the app's workspace (https://modal.com/docs/guide/webhook-proxy-auth) and "
    f"export {PROXY_KEY_ENV}=wk-... {PROXY_SECRET_ENV}=ws-..."
)
# What Modal's proxy answers (401, text/plain) when a request lacks the token's headers, or carries a token
# it does not accept (https://modal.com/docs/guide/webhook-proxy-auth).
PROXY_REFUSALS = {
    "modal-http: missing credentials for proxy authorization": (
        f"Modal's proxy auth: no Modal-Key/Modal-Secret headers were sent; {PROXY_TOKEN_HINT}"
    ),
    "modal-http: invalid credentials for proxy authorization": (
        f"Modal's proxy auth refused the token in {PROXY_KEY_ENV}/{PROXY_SECRET_ENV}: use a proxy auth token "
        "(wk-.../ws-...) of the app's workspace (allowed in its environment, if scoped), not a Modal API token "
        "(ak-.../as-...)"
    ),
}


def proxy_headers(profile: ResolvedProfile | None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The Modal-Key / Modal-Secret headers of the proxy auth token in MODAL_PROXY_KEY / MODAL_PROXY_SECRET.

    A profile behind proxy auth (server.unauthenticated false) needs both: without them every request would be
    a 401 from Modal's proxy, so that is one clear error before anything is sent. Without a profile they are
    sent when both are set. A Modal secret's values cannot be read outside a container, hence the environment."""
    environ = os.environ if environ is None else environ
    key, secret = environ.get(PROXY_KEY_ENV, ""), environ.get(PROXY_SECRET_ENV, "")
    if key and secret:
        if profile is not None and profile.data["server"]["unauthenticated"]:
            return {}  # the profile serves without proxy auth: the token goes nowhere it is not needed
        return {"Modal-Key": key, "Modal-Secret": secret}
    if profile is None or profile.data["server"]["unauthenticated"]:
        return {}
    missing = " and ".join(name for name, value in ((PROXY_KEY_ENV, key), (PROXY_SECRET_ENV, secret)) if not value)
    raise UserError(
        Problem(
            profile.origin(("server", "unauthenticated")),
            "server.unauthenticated",
            f"profile {profile.name} serves behind Modal's proxy auth (false), and {missing} "
            f"{'is' if ' and ' not in missing else 'are'} not set",
            PROXY_TOKEN_HINT,
        )
    )


def openai_client(url: str, api_key: str, timeout: float, headers: dict[str, str] | None = None) -> openai.OpenAI:
    # No retries: a smoke test or a load test that retries hides the failures it is there to show.
    # SGLang started without --api-key accepts any key, and the client refuses an empty one.
    # headers: Modal's proxy auth headers, sent with every request (default_headers).
    base = url.rstrip("/").removesuffix("/v1")
    return openai.OpenAI(
        api_key=api_key or "EMPTY", base_url=f"{base}/v1", timeout=timeout, max_retries=0, default_headers=headers
    )


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


def error_reason(exc: Exception, api_key: str, timeout: float, headers: dict[str, str] | None = None) -> str:
    """One line that says why a request failed, without the API key or the proxy auth token."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        if isinstance(body, dict):
            detail = body.get("message") or body.get("detail") or str(body)
        else:
            detail = body if isinstance(body, str) and body else exc.response.text
        detail = " ".join(str(detail).split())
        reason = f"HTTP {exc.status_code}: {detail[:200]}"
        if exc.status_code == 401 and detail in PROXY_REFUSALS:
            reason += f" ({PROXY_REFUSALS[detail]})"
        elif exc.status_code == 401 and not api_key:
            reason += " (no API key given: set API_KEY or pass --api-key)"
    elif isinstance(exc, openai.APITimeoutError):
        reason = f"timed out after {timeout:.3g}s"
    elif isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__
        reason = f"connection failed: {cause or exc}"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    for hidden in (api_key, *(headers or {}).values()):
        reason = reason.replace(hidden, "***") if hidden else reason
    return mask(reason)


def first_model(client: openai.OpenAI) -> str:
    """The first model /v1/models lists: SGLang serves one, under --served-model-name."""
    models = client.models.list().data
    if not models:
        raise ValueError("/v1/models lists no model")
    return models[0].id


# --- the smoke test ------------------------------------------------------------------------------------


def _run_request(
    client: openai.OpenAI, model: str, request: dict, api_key: str, timeout: float, headers: dict[str, str]
) -> PathResult:
    started = time.monotonic()
    name = request["name"]
    try:
        response = _create(client, request["route"], request_body(request, model))
        elapsed = time.monotonic() - started
        # As a dict, the engine's extra fields (reasoning_content) included, for the warmup's checks.
        problem = check_answer(request, response.model_dump())
    except (openai.OpenAIError, ValueError) as exc:
        return PathResult(name, False, time.monotonic() - started, error_reason(exc, api_key, timeout, headers))
    return PathResult(name, not problem, elapsed, problem)


def smoke(
    url: str,
    api_key: str,
    model: str | None = None,
    timeout: float = SMOKE_TIMEOUT_S,
    requests: tuple[dict, ...] = PLAIN_REQUESTS,
    expected_model: str | None = None,
    headers: dict[str, str] | None = None,
) -> list[PathResult]:
    """Send each request once, one after another (so each latency is its own), printing a line for each.

    expected_model: the profile's served model name; a deployment serving another model fails every
    request unsent (the profile's checks say nothing about another model). headers: Modal's proxy auth
    headers (proxy_headers), sent with every request."""
    headers = headers or {}
    client = openai_client(url, api_key, timeout, headers)
    if not model:
        try:
            model = first_model(client)
        except (openai.OpenAIError, ValueError) as exc:
            # No model name, no request: every path fails with the reason (a wrong key shows here first).
            reason = f"not sent: GET /v1/models: {error_reason(exc, api_key, timeout, headers)}"
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
        results.append(_run_request(client, model, request, api_key, timeout, headers))
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
