"""Tests of the vLLM stand-in (tests/standin/vllm) itself: its parser against vLLM's recorded parses, and real
processes serving real HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

STANDIN = Path(__file__).parent / "standin"
ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ("0.19.0", "0.33.0")
KEY = "THEKEY"
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "Hello?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}


def load_cli():
    # Loaded by path under a private name: importing it as `vllm` would shadow a real vLLM in this process.
    spec = importlib.util.spec_from_file_location("standin_vllm_cli", STANDIN / "vllm" / "_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLI = load_cli()


def catalog(version: str) -> dict:
    return json.loads((ROOT / "schema" / "vllm" / f"{version}.json").read_text())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standin_env(env: dict | None) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    fast = {"STANDIN_LOAD_SECONDS": "0.05", "STANDIN_SHUTDOWN_SECONDS": "0.01"}
    path = f"{STANDIN / 'bin'}{os.pathsep}{base.get('PATH', '')}"
    return {**base, "PYTHONPATH": str(STANDIN), "PATH": path, **fast, **(env or {})}


def vllm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`vllm ...` (the stand-in's console script), for commands that exit by themselves."""
    return subprocess.run(["vllm", *args], env=standin_env(env), capture_output=True, text=True, timeout=20)


# --- the parser: what vLLM's own parser did with the recorded command lines ----------------------------


def recorded_parses(version: str) -> list[dict]:
    data = catalog(version)
    return [{**data["test_parse"], "label": "recipe"}, *data["extra_test_parses"]]


@pytest.mark.parametrize(
    ("version", "parse"),
    [(v, p) for v in VERSIONS for p in recorded_parses(v)],
    ids=[f"{v}-{p['label']}" for v in VERSIONS for p in recorded_parses(v)],
)
def test_the_rebuilt_parser_agrees_with_vllms_recorded_parses(version, parse, capsys):
    parser = CLI.build_parser(catalog(version))
    try:
        namespace = parser.parse_args(parse["argv"])
    except SystemExit as exc:
        assert (parse["ok"], exc.code) == (False, parse["exit_code"])
        # The error line is argparse's own (the usage line above it differs: vLLM's help formatter sorts).
        assert capsys.readouterr().err.splitlines()[-1] == parse["stderr"].splitlines()[-1]
        return
    assert parse["ok"] is True
    for dest, value in parse["parsed_values_of_given_flags"].items():
        assert getattr(namespace, dest) == value, dest


def test_rejects_an_unknown_flag_with_exit_2_like_argparse():
    result = vllm("serve", "/models/glm", "--no-such-flag", "1")
    assert (result.returncode, result.stderr) == (
        2,
        "usage: vllm serve [model_tag] [options]\nvllm serve: error: unrecognized arguments: --no-such-flag 1\n",
    )


def test_a_json_argument_validated_while_parsing_names_the_bad_key():
    result = vllm("serve", "/models/glm", "--compilation-config", '{"cudagraph_modee": "FULL"}')
    assert result.returncode == 2
    assert result.stderr.splitlines()[1:] == [
        "vllm serve: error: argument --compilation-config/-cc: 1 validation error for CompilationConfig",
        "cudagraph_modee",
        "  Unexpected keyword argument [type=unexpected_keyword_argument, input_value='FULL']",
    ]


@pytest.mark.parametrize(
    ("flags", "last_line"),
    [
        (["--enable-auto-tool-choice"], "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser"),
        (["--speculative-config.method", "mtpp"], "  Input should be "),
        (["--reasoning-parser", "glm99"], "KeyError: 'invalid reasoning parser: glm99 (chose from { "),
    ],
)
def test_start_up_checks_fail_with_exit_1_and_vllms_message(flags, last_line):
    result = vllm("serve", "/models/glm", *flags)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(last_line)
    assert "Traceback (most recent call last):" in result.stderr


# --- a running server ------------------------------------------------------------------------------


class Server:
    def __init__(self, directory: Path, flags: tuple[str, ...], env: dict | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"{self.port}.log"
        self.pid_file = directory / f"{self.port}.pids"
        argv = ["vllm", "serve", "/models/glm", "--host", "127.0.0.1", "--port", str(self.port), *flags]
        with open(self.log_path, "w") as log:
            # A session of its own, so the test can end the whole group: server, engine core and workers.
            self.proc = subprocess.Popen(
                argv,
                env=standin_env({"STANDIN_PID_FILE": str(self.pid_file), **(env or {})}),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text()

    def health(self) -> int | None:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code
        except httpx.TransportError:
            return None

    def wait_healthy(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.health() != 200:
            assert self.proc.poll() is None, self.log()
            assert time.monotonic() < deadline, self.log()
            time.sleep(0.02)

    def chat(self, **body) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/chat/completions", json={"messages": HELLO, **body}, headers=AUTH, timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
def server(tmp_path):
    started: list[Server] = []

    def start(*flags: str, env: dict | None = None, healthy: bool = True) -> Server:
        srv = Server(tmp_path, flags, env)
        started.append(srv)
        if healthy:
            srv.wait_healthy()
        return srv

    yield start
    for srv in started:
        srv.stop()


RECIPE = (
    "--served-model-name", "glm-5.1", "--tensor-parallel-size", "2", "--api-key", KEY,
    "--tool-call-parser", "glm47", "--reasoning-parser", "glm45", "--enable-auto-tool-choice",
)  # fmt: skip


@pytest.mark.parametrize("version", VERSIONS)
def test_serves_health_models_and_metrics_with_the_key_guarding_v1_only(server, version):
    srv = server(*RECIPE, env={"STANDIN_VLLM_VERSION": version})
    assert srv.health() == 200
    assert httpx.get(f"{srv.url}/v1/models").status_code == 401
    models = httpx.get(f"{srv.url}/v1/models", headers=AUTH).json()
    assert [(m["id"], m["root"], m["owned_by"]) for m in models["data"]] == [("glm-5.1", "/models/glm", "vllm")]
    assert srv.chat().status_code == 200
    metrics = httpx.get(f"{srv.url}/metrics").text
    assert 'vllm:request_success_total{engine="0",model_name="glm-5.1"} 1.0' in metrics
    assert f"vLLM API server version {version}" in srv.log()
    assert KEY not in srv.log()  # vLLM redacts the key in its non-default args


def test_splits_reasoning_and_tool_calls_when_the_parsers_are_given(server):
    srv = server(*RECIPE)
    message = srv.chat(tools=[WEATHER_TOOL]).json()["choices"][0]
    assert message["finish_reason"] == "tool_calls"
    assert message["message"]["reasoning"] == "The user asked a question; a short fixed answer will do."
    call = message["message"]["tool_calls"][0]["function"]
    assert (call["name"], json.loads(call["arguments"])) == ("get_weather", {"city": "stand-in", "days": 1})


def test_auto_tool_choice_without_the_parser_is_a_400_like_vllms(server):
    srv = server("--api-key", KEY)
    response = srv.chat(tools=[WEATHER_TOOL])
    assert (response.status_code, response.json()["error"]["message"]) == (
        400,
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set',
    )
    named = srv.chat(tools=[WEATHER_TOOL], tool_choice={"type": "function", "function": {"name": "get_weather"}})
    assert (named.status_code, named.json()["error"]["message"]) == (
        400,
        'tool_choice=function "get_weather" requires --tool-call-parser to be set',
    )
    plain = srv.chat().json()["choices"][0]["message"]
    assert plain["reasoning"] is None and plain["content"].startswith("<think>")


def test_streams_reasoning_then_content_then_done(server):
    srv = server(*RECIPE)
    with httpx.stream(
        "POST",
        f"{srv.url}/v1/chat/completions",
        json={"messages": HELLO, "stream": True, "max_tokens": 3, "stream_options": {"include_usage": True}},
        headers=AUTH,
        timeout=10,
    ) as response:
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    reasoning = "".join(d.get("reasoning", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert (reasoning, content) == ("The user asked a question; a short fixed answer will do.", "The stand-in server")
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["usage"]["completion_tokens"] == 3 + len(reasoning.split(" "))


def test_a_prompt_beyond_max_model_len_is_refused(server):
    srv = server("--api-key", KEY, "--max-model-len", "64")
    response = srv.chat(messages=[{"role": "user", "content": "word " * 200}])
    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("This model's maximum context length is 64 tokens.")


def test_compiles_into_vllm_cache_root_once_then_loads_from_it(server, tmp_path):
    env = {"VLLM_CACHE_ROOT": str(tmp_path / "cache")}
    first = server("--api-key", KEY, env=env)
    assert "Compiling a graph for dynamic shape takes" in first.log()
    first.stop()
    assert (tmp_path / "cache" / "torch_compile_cache" / "standin" / "rank_0_0" / "backbone").is_dir()
    second = server("--api-key", KEY, env=env)
    assert "Directly load the compiled graph(s) for dynamic shape from the cache" in second.log()


def test_death_during_load_exits_with_the_code_and_the_root_cause(server):
    srv = server(env={"STANDIN_FAULT": "crash-during-load", "STANDIN_EXIT_CODE": "3"}, healthy=False)
    assert srv.proc.wait(timeout=10) == 3
    log = srv.log()
    assert "torch.OutOfMemoryError: CUDA out of memory." in log
    assert log.rstrip().endswith("RuntimeError: Engine core initialization failed. See root cause above. "
                                 "Failed core proc(s): {}")  # fmt: skip


def test_a_crash_while_serving_ends_the_server_with_the_engine_dead_error(server, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    srv = server(env={"STANDIN_CONTROL_DIR": str(control)})
    (control / "crash.tmp").write_text("7")
    (control / "crash.tmp").rename(control / "crash")
    assert srv.proc.wait(timeout=10) == 7
    assert "vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue." in srv.log()


def test_spawns_the_engine_core_and_tp_workers_and_stops_on_sigterm(server):
    srv = server("--tensor-parallel-size", "4")
    pids = [int(line) for line in srv.pid_file.read_text().split()]
    assert len(pids) == 5  # the API server, the engine core, TP workers 1-3
    srv.proc.send_signal(signal.SIGTERM)
    assert srv.proc.wait(timeout=10) == 0
    assert srv.log().rstrip().endswith(f"Finished server process [{srv.proc.pid}]")


@pytest.mark.parametrize("fault", ["fail-requests", "bad-warmup"])
def test_request_faults(server, fault):
    srv = server("--api-key", KEY, env={"STANDIN_FAULT": fault})
    response = srv.chat()
    if fault == "fail-requests":
        assert response.status_code == 500
    else:
        assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"] is None


def test_never_healthy_keeps_health_at_503(server):
    srv = server(env={"STANDIN_FAULT": "never-healthy"}, healthy=False)
    deadline = time.monotonic() + 10
    while "Application startup complete." not in srv.log():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert srv.health() == 503


def test_a_rebuilt_parser_without_abbreviations_refuses_what_vllms_accepts():
    argv = ["/models/glm", "--gpu-memory", "0.9"]
    assert CLI.build_parser(catalog("0.33.0")).parse_args(argv).gpu_memory_utilization == 0.9
    with pytest.raises(SystemExit):
        CLI.build_parser(catalog("0.33.0"), allow_abbrev=False).parse_args(argv)
