"""The warmup fits the model: derived from the engine's flags, checked at validate time, and passing
for real through `deploy.py --local` against the stand-in engine configured like the profile's model."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, STANDIN_DIR
from deploygen.load import deployable_profiles
from deploygen.pipeline import check
from deploygen.render import render_deployments
from deploygen.render.output import output_path

BASE = ROOT / "profiles" / "smoke.yaml"  # a small model whose profile sets both parsers


def profile(tmp_path: Path, name: str = "warm", drop=(), sglang=None, warmup=None) -> Path:
    """A stand-alone copy of the smoke profile with SGLang flags dropped or set, and warmup settings."""
    data = yaml.safe_load(BASE.read_text())
    data.pop("extends", None)
    for flag in drop:
        data["sglang"].pop(flag)
    data["sglang"].update(sglang or {})
    data["lifecycle"]["warmup"].update(warmup or {})
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def shape(requests) -> list[tuple]:
    return [(r["name"], r["route"], r["expect"], r["body"].get("chat_template_kwargs")) for r in requests]


def validate(cli, path: Path) -> subprocess.CompletedProcess:
    return cli("validate", str(path))


# --- derived from the engine's flags ----------------------------------------------------------------------


def test_without_parsers_the_warmup_asks_only_for_text(tmp_path):
    requests = check(str(profile(tmp_path, drop=["reasoning-parser", "tool-call-parser"]))).deployment.warmup
    assert shape(requests) == [
        ("chat", "/v1/chat/completions", {"text": True}, None),
        ("long-context", "/v1/chat/completions", {"text": True}, None),
    ]
    assert requests[1]["filler_words"] == 3000


def test_reasoning_is_expected_only_with_a_reasoning_parser_and_thinking_on(tmp_path):
    requests = check(str(profile(tmp_path, drop=["tool-call-parser"]))).deployment.warmup
    assert shape(requests) == [
        ("chat", "/v1/chat/completions", {"text": True, "reasoning": True}, None),
        ("no-thinking", "/v1/chat/completions", {"content": True, "reasoning": False}, {"enable_thinking": False}),
        ("long-context", "/v1/chat/completions", {"text": True}, None),
    ]


def test_a_model_that_thinks_only_when_asked_is_asked(tmp_path):
    path = profile(tmp_path, drop=["tool-call-parser"], warmup={"thinking": "off", "thinking_switch": "thinking"})
    assert shape(check(str(path)).deployment.warmup)[:2] == [
        ("chat", "/v1/chat/completions", {"content": True, "reasoning": False}, None),
        ("thinking", "/v1/chat/completions", {"text": True, "reasoning": True}, {"thinking": True}),
    ]


def test_tool_calls_are_expected_only_with_a_tool_call_parser(tmp_path):
    requests = check(str(profile(tmp_path, drop=["reasoning-parser"]))).deployment.warmup
    assert [r["name"] for r in requests] == ["chat", "long-context", "tool-call"]
    assert requests[2]["body"]["tool_choice"] == "required"
    assert requests[2]["expect"] == {"tool_calls": True}


def test_an_embedding_model_is_warmed_up_through_v1_embeddings_only(tmp_path):
    path = profile(tmp_path, drop=["reasoning-parser", "tool-call-parser"], sglang={"is-embedding": True})
    assert shape(check(str(path)).deployment.warmup) == [("embedding", "/v1/embeddings", {"embedding": True}, None)]


def test_validate_shows_what_the_warmup_sends_and_checks(cli, tmp_path):
    result = validate(cli, profile(tmp_path, warmup={"thinking": "off"}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "  warmup chat: POST /v1/chat/completions, expects content and no reasoning_content",
        "  warmup thinking: POST /v1/chat/completions (enable_thinking=true), expects some text and reasoning_content",
        "  warmup long-context: POST /v1/chat/completions (3000 words of filler), expects some text",
        "  warmup tool-call: POST /v1/chat/completions (tool_choice=required), expects tool_calls",
    ]


def test_validate_says_when_the_warmup_is_off(cli, tmp_path):
    result = validate(cli, profile(tmp_path, warmup={"enabled": False}))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["  warmup: off (lifecycle.warmup.enabled is false)"]


# --- a warmup that cannot pass is an error at validate time ------------------------------------------


def own(name: str, expect: dict, route: str | None = None, body: dict | None = None) -> dict:
    request = {"name": name, "body": body or {"messages": [{"role": "user", "content": "Hi"}]}, "expect": expect}
    return {**request, "route": route} if route else request


@pytest.mark.parametrize(
    ("drop", "sglang", "request_", "message", "hint"),
    [
        (
            ["reasoning-parser"],
            {},
            own("think", {"reasoning": True}),
            "warmup request 'think' expects reasoning_content, but sglang runs without a reasoning parser: "
            "thinking stays in the content",
            "add `reasoning-parser` to `sglang:`, or expect `text` instead",
        ),
        (
            ["tool-call-parser"],
            {},
            own("tools", {"tool_calls": True}),
            "warmup request 'tools' expects tool_calls, but sglang runs without `tool-call-parser`: tool calls "
            "stay in the content",
            "add `tool-call-parser` to `sglang:`, or drop the tool call from the warmup",
        ),
        (
            ["reasoning-parser", "tool-call-parser"],
            {"is-embedding": True},
            own("chat", {"text": True}),
            "warmup request 'chat' posts to /v1/chat/completions, but this is an embedding model: sglang serves "
            "only /v1/embeddings",
            "send it to /v1/embeddings with an `input`, or remove the embedding flag",
        ),
        (
            [],
            {},
            own("vec", {"embedding": True}, "/v1/embeddings", {"input": "hello"}),
            "warmup request 'vec' posts to /v1/embeddings, but sglang serves generation for this profile",
            "send it to /v1/chat/completions, or set `is-embedding: true` under `sglang:` for an embedding model",
        ),
        (
            [],
            {},
            own("stream", {"text": True}, body={"messages": [{"role": "user", "content": "Hi"}], "stream": True}),
            "warmup request 'stream' asks for a stream; the warmup reads one JSON answer",
            "remove `stream` from its body",
        ),
    ],
)
def test_an_own_warmup_request_the_engine_cannot_answer_is_refused(
    cli, tmp_path, drop, sglang, request_, message, hint
):
    path = profile(tmp_path, drop=drop, sglang=sglang, warmup={"requests": [request_]})
    result = validate(cli, path)
    assert result.returncode == 1
    assert f"error[warmup]: lifecycle.warmup.requests.0: {message}\n    hint: {hint}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_long_context_warmup_above_the_context_length_is_refused(cli, tmp_path):
    result = validate(cli, profile(tmp_path, sglang={"context-length": 2048}))
    assert result.returncode == 1
    assert (
        "error[warmup]: lifecycle.warmup.long_context_words: warmup request 'long-context' needs about 4,096 "
        "tokens (3,000 words of filler plus the answer), above the context length of 2,048 tokens: sglang refuses "
        "it with HTTP 400\n    hint: use at most 1,464 words"
    ) in result.stderr


def test_thinking_without_a_reasoning_parser_is_refused(cli, tmp_path):
    result = validate(cli, profile(tmp_path, drop=["reasoning-parser"], warmup={"thinking": "on"}))
    assert result.returncode == 1
    assert (
        "error[warmup]: lifecycle.warmup.thinking: lifecycle.warmup.thinking is 'on' but sglang runs without a "
        "reasoning parser, so no answer carries reasoning_content"
    ) in result.stderr


def test_an_own_request_with_an_unknown_expectation_is_a_schema_error(cli, tmp_path):
    result = validate(cli, profile(tmp_path, warmup={"requests": [own("x", {"reasoning_content": True})]}))
    assert result.returncode == 1
    assert "lifecycle.warmup.requests.0.expect" in result.stderr and "reasoning_content" in result.stderr


# --- for real: deploy.py --local against the stand-in configured like the model ----------------------------


def start_local(deploy: Path, tmp_path: Path, standin_env: dict[str, str]) -> tuple[int, str]:
    """Run `deploy.py --local` until it is ready or gives up; return (exit code, output). Ready -> SIGTERM."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    env.update(
        PYTHONPATH=str(STANDIN_DIR),
        # The stand-in vLLM runs as `vllm` from tests/standin/bin.
        PATH=f"{STANDIN_DIR / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONUNBUFFERED="1",
        API_KEY="sk-warmup-test-key-0123456789",
        STANDIN_LOAD_SECONDS="0.1",
        STANDIN_WARMUP_SECONDS="0.05",
        **standin_env,
    )
    argv = [sys.executable, str(deploy), "--local", "--port", str(port), "--cache-dir", str(tmp_path / "cache")]
    argv += ["--model-path", str(tmp_path / "no-weights"), "--health-timeout", "30", "--shutdown-grace", "2"]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines = []
    deadline = time.monotonic() + 60
    try:
        for line in process.stdout:
            lines.append(line)
            if "[local] ready on" in line:
                os.killpg(process.pid, signal.SIGTERM)
            if time.monotonic() > deadline:
                break
        return process.wait(timeout=30), "".join(lines)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_to(tmp_path: Path, path: Path) -> Path:
    [source] = render_deployments([check(str(path)).deployment])
    deploy = tmp_path / "deploy.py"
    deploy.write_text(source)
    return deploy


@pytest.mark.parametrize(
    ("drop", "sglang", "warmup", "standin", "passed"),
    [
        (["reasoning-parser", "tool-call-parser"], {}, {}, {"STANDIN_THINKING": "never"}, 2),
        (["reasoning-parser", "tool-call-parser"], {}, {}, {"STANDIN_THINKING": "on"}, 2),
        (["tool-call-parser"], {}, {"thinking": "off"}, {"STANDIN_THINKING": "off"}, 3),
        ([], {}, {}, {"STANDIN_THINKING": "on"}, 4),
        (["reasoning-parser", "tool-call-parser"], {"is-embedding": True}, {}, {}, 1),
    ],
    ids=["no-parsers", "no-parsers-thinking-model", "thinking-off", "both-parsers", "embedding"],
)
def test_the_derived_warmup_passes_against_an_engine_configured_like_the_model(
    tmp_path, drop, sglang, warmup, standin, passed
):
    deploy = render_to(tmp_path, profile(tmp_path, drop=drop, sglang=sglang, warmup=warmup))
    code, out = start_local(deploy, tmp_path, standin)
    assert f"[warmup] {passed} requests passed" in out, out
    assert code == 0, out


def test_a_warmup_that_expects_thinking_from_a_model_that_does_not_think_fails_the_start(tmp_path):
    deploy = render_to(tmp_path, profile(tmp_path, drop=["tool-call-parser"]))
    code, out = start_local(deploy, tmp_path, {"STANDIN_THINKING": "off"})
    assert code == 1
    assert "[warmup] FAILED: chat: no reasoning_content" in out


def test_an_own_warmup_request_is_sent_and_checked(tmp_path):
    request = own(
        "greeting", {"content": True}, body={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8}
    )
    deploy = render_to(tmp_path, profile(tmp_path, drop=["reasoning-parser"], warmup={"requests": [request]}))
    code, out = start_local(deploy, tmp_path, {"STANDIN_THINKING": "never"})
    assert "[warmup] greeting ok in" in out and "[warmup] 1 requests passed" in out, out
    assert code == 0


def _thinking(checked) -> str:
    warmup = checked.profile.data["lifecycle"]["warmup"]
    flags = checked.profile.data.get(checked.profile.data.get("engine", "sglang")) or {}
    return warmup.get("thinking") or ("on" if flags.get("reasoning-parser") else "never")


@pytest.mark.parametrize("name", [p.name for p in deployable_profiles()])
def test_every_profile_renders_a_warmup_that_passes_against_its_engine(tmp_path, name):
    checked = check(name)
    deploy = output_path(checked.profile)
    engine = {"STANDIN_THINKING": _thinking(checked)}
    if checked.profile.data.get("engine", "sglang") == "sglang":
        engine["STANDIN_SGLANG_VERSION"] = checked.profile.data["image"]["sglang_version"]
    code, out = start_local(deploy, tmp_path, engine)
    if checked.deployment.warmup:
        assert f"[warmup] {len(checked.deployment.warmup)} requests passed" in out, out
    assert "[local] ready on" in out, out
    assert code == 0, out
