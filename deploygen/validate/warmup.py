"""The warmup a profile's deployment will send, derived from the profile, and why one cannot pass.

The warmup requests run inside `@modal.enter`: a failed one stops the container, so a request the
engine can never answer as expected renders a deploy.py that never takes traffic. The requests follow
the engine's flags:
- an embedding model (SGLang `--is-embedding`, vLLM `--runner pooling` / `--convert embed`) is warmed up
  through `/v1/embeddings` only;
- `reasoning_content` is expected only with a reasoning parser and the model thinking by default
  (`lifecycle.warmup.thinking`); a model that thinks only when asked gets a request that asks;
- `tool_calls` are expected only with a tool-call parser (and, on vLLM, `--enable-auto-tool-choice`);
- otherwise plain generation: some text back.
A profile may list its own requests instead (`lifecycle.warmup.requests`); the same checks apply to them.
Sources: SGLang separates `reasoning_content` only with `--reasoning-parser` and tool calls only with
`--tool-call-parser` (https://docs.sglang.ai/advanced_features/separate_reasoning.html,
https://docs.sglang.ai/advanced_features/tool_parser.html); vLLM needs `--enable-auto-tool-choice` with
`--tool-call-parser` (https://docs.vllm.ai/en/latest/features/tool_calling.html).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from deploygen.load import ResolvedProfile
from deploygen.validate import derived

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"
# English text runs about 4 tokens per 3 words; the chat template adds a few dozen tokens.
TOKENS_PER_WORD = 4 / 3
TEMPLATE_TOKENS = 64

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@dataclass(frozen=True)
class Serving:
    """What the engine's flags say it serves."""

    embedding: bool
    reasoning_parser: str | None
    tool_parser: str | None  # None also when vLLM lacks --enable-auto-tool-choice
    thinking: str  # on | off | never
    thinking_switch: str
    context_tokens: int | None


def _flags(profile: ResolvedProfile) -> dict[str, Any]:
    return dict(profile.data.get(profile.data.get("engine", "sglang")) or {})


def serving(profile: ResolvedProfile) -> Serving:
    data = profile.data
    flags = _flags(profile)
    warmup = data["lifecycle"]["warmup"]
    if data.get("engine") == "vllm":
        embedding = (
            flags.get("runner") == "pooling"
            or flags.get("convert") in ("embed", "embedding")
            or flags.get("task") in ("embed", "embedding")
        )
        tool_parser = flags.get("tool-call-parser") if flags.get("enable-auto-tool-choice") else None
        context, _ = derived.vllm_max_model_len(profile)
    else:
        embedding = bool(flags.get("is-embedding"))
        tool_parser = flags.get("tool-call-parser")
        context = derived.number_flag(profile, "context-length")
        if context is None:
            context = derived.model_facts(profile).max_context
    reasoning_parser = flags.get("reasoning-parser")
    thinking = warmup.get("thinking") or ("on" if reasoning_parser else "never")
    return Serving(
        embedding=embedding,
        reasoning_parser=reasoning_parser or None,
        tool_parser=tool_parser or None,
        thinking=thinking,
        thinking_switch=warmup["thinking_switch"],
        context_tokens=context if isinstance(context, int) else None,
    )


def derive_requests(profile: ResolvedProfile) -> tuple[dict, ...]:
    """The warmup requests of a profile: its own list, else the ones its engine flags call for."""
    warmup = profile.data["lifecycle"]["warmup"]
    if not warmup["enabled"]:
        return ()
    if warmup.get("requests"):
        return tuple(_own_request(item) for item in warmup["requests"])
    serve = serving(profile)
    if serve.embedding:
        return (
            {"name": "embedding", "route": EMBEDDINGS, "body": {"input": "Say hello."}, "expect": {"embedding": True}},
        )
    requests: list[dict] = []
    switch = serve.thinking_switch
    if serve.reasoning_parser and serve.thinking == "on":
        requests.append(_chat("chat", "Say hello.", 64, {"text": True, "reasoning": True}))
        requests.append(
            _chat(
                "no-thinking",
                "Explain quicksort in one sentence.",
                64,
                {"content": True, "reasoning": False},
                {switch: False},
            )
        )
    elif serve.reasoning_parser and serve.thinking == "off":
        requests.append(_chat("chat", "Say hello.", 64, {"content": True, "reasoning": False}))
        requests.append(
            _chat(
                "thinking", "Explain quicksort in one sentence.", 64, {"text": True, "reasoning": True}, {switch: True}
            )
        )
    else:
        requests.append(_chat("chat", "Say hello.", 64, {"text": True}))
    long_context = _chat("long-context", "Summarise the text.", 32, {"text": True})
    requests.append({**long_context, "filler_words": warmup["long_context_words"]})
    if serve.tool_parser:
        tool = _chat("tool-call", "What is the weather in Paris?", 128, {"tool_calls": True})
        tool["body"] = {**tool["body"], "tools": [WEATHER_TOOL], "tool_choice": "required"}
        requests.append(tool)
    return tuple(requests)


def _chat(name: str, prompt: str, max_tokens: int, expect: dict, template_kwargs: dict | None = None) -> dict:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "max_tokens": max_tokens}
    if template_kwargs:
        body["chat_template_kwargs"] = template_kwargs
    return {"name": name, "route": CHAT, "body": body, "expect": expect}


def _own_request(item: dict) -> dict:
    request = {"name": item["name"], "route": item.get("route", CHAT), "body": item["body"], "expect": item["expect"]}
    if item.get("filler_words"):
        request["filler_words"] = item["filler_words"]
    return request


def describe(request: dict) -> str:
    """One line: what a warmup request sends and what it checks."""
    expect = request["expect"]
    checks = []
    if expect.get("embedding"):
        checks.append("an embedding")
    if expect.get("text"):
        checks.append("some text")
    if expect.get("content"):
        checks.append("content")
    if expect.get("reasoning") is True:
        checks.append("reasoning_content")
    if expect.get("reasoning") is False:
        checks.append("no reasoning_content")
    if expect.get("tool_calls"):
        checks.append("tool_calls")
    if expect.get("contains"):
        checks.append(f"content containing {expect['contains']!r}")
    extras = []
    if request.get("filler_words"):
        extras.append(f"{request['filler_words']} words of filler")
    for key, value in (request["body"].get("chat_template_kwargs") or {}).items():
        extras.append(f"{key}={str(value).lower() if isinstance(value, bool) else value}")
    if "tool_choice" in request["body"]:
        extras.append(f"tool_choice={request['body']['tool_choice']}")
    sent = f" ({', '.join(extras)})" if extras else ""
    return f"{request['name']}: POST {request['route']}{sent}, expects {' and '.join(checks) or 'HTTP 200'}"


def warmup_lines(requests: tuple[dict, ...]) -> list[str]:
    """What `validate` prints about the warmup."""
    if not requests:
        return ["warmup: off (lifecycle.warmup.enabled is false)"]
    return [f"warmup {describe(request)}" for request in requests]


@dataclass(frozen=True)
class WarmupFinding:
    message: str
    blame: tuple[str | int, ...]
    hint: str


def findings(profile: ResolvedProfile) -> Iterator[WarmupFinding]:
    """Every warmup request that cannot pass against this profile's engine, and why."""
    warmup = profile.data["lifecycle"]["warmup"]
    if not warmup["enabled"]:
        return
    serve = serving(profile)
    engine = profile.data.get("engine", "sglang")
    own = bool(warmup.get("requests"))
    for index, request in enumerate(derive_requests(profile)):
        blame: tuple[str | int, ...] = ("lifecycle", "warmup", "requests", index) if own else ("lifecycle", "warmup")
        yield from _request_findings(request, serve, engine, blame)
    if serve.thinking != "never" and not serve.reasoning_parser and warmup.get("thinking"):
        yield WarmupFinding(
            f"lifecycle.warmup.thinking is {serve.thinking!r} but {engine} runs without a reasoning parser, so "
            "no answer carries reasoning_content",
            ("lifecycle", "warmup", "thinking"),
            f"add `reasoning-parser` to `{engine}:` or remove lifecycle.warmup.thinking",
        )


def _request_findings(request: dict, serve: Serving, engine: str, blame) -> Iterator[WarmupFinding]:
    name, route, expect, body = request["name"], request["route"], request["expect"], request["body"]
    where = f"warmup request {name!r}"
    if serve.embedding and route != EMBEDDINGS:
        yield WarmupFinding(
            f"{where} posts to {route}, but this is an embedding model: {engine} serves only /v1/embeddings",
            blame,
            f"send it to {EMBEDDINGS} with an `input`, or remove the embedding flag",
        )
    if not serve.embedding and route == EMBEDDINGS:
        flag = "runner: pooling" if engine == "vllm" else "is-embedding: true"
        yield WarmupFinding(
            f"{where} posts to {EMBEDDINGS}, but {engine} serves generation for this profile",
            blame,
            f"send it to {CHAT}, or set `{flag}` under `{engine}:` for an embedding model",
        )
    if expect.get("embedding") and route != EMBEDDINGS:
        yield WarmupFinding(f"{where} expects an embedding from {route}", blame, f"expect embeddings from {EMBEDDINGS}")
    if expect.get("reasoning") is True and not serve.reasoning_parser:
        yield WarmupFinding(
            f"{where} expects reasoning_content, but {engine} runs without a reasoning parser: thinking stays in "
            "the content",
            blame,
            f"add `reasoning-parser` to `{engine}:`, or expect `text` instead",
        )
    if expect.get("tool_calls") and not serve.tool_parser:
        needs = "`tool-call-parser` with `enable-auto-tool-choice`" if engine == "vllm" else "`tool-call-parser`"
        yield WarmupFinding(
            f"{where} expects tool_calls, but {engine} runs without {needs}: tool calls stay in the content",
            blame,
            f"add {needs} to `{engine}:`, or drop the tool call from the warmup",
        )
    if body.get("stream"):
        yield WarmupFinding(
            f"{where} asks for a stream; the warmup reads one JSON answer", blame, "remove `stream` from its body"
        )
    if "model" in body:
        yield WarmupFinding(
            f"{where} names a model; the warmup sends the served model name itself",
            blame,
            "remove `model` from its body",
        )
    words = request.get("filler_words", 0)
    if words and serve.context_tokens:
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens") or 0
        needed = round(words * TOKENS_PER_WORD) + TEMPLATE_TOKENS + (max_tokens if isinstance(max_tokens, int) else 0)
        if needed > serve.context_tokens:
            yield WarmupFinding(
                f"{where} needs about {needed:,} tokens ({words:,} words of filler plus the answer), above the "
                f"context length of {serve.context_tokens:,} tokens: {engine} refuses it with HTTP 400",
                ("lifecycle", "warmup", "long_context_words") if blame == ("lifecycle", "warmup") else blame,
                f"use at most {_max_words(serve.context_tokens, max_tokens):,} words",
            )


def _max_words(context: int, max_tokens: Any) -> int:
    answer = max_tokens if isinstance(max_tokens, int) else 0
    return max(int((context - TEMPLATE_TOKENS - answer) / TOKENS_PER_WORD), 1)
