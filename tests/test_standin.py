"""Tests of the SGLang stand-in (tests/standin/sglang) itself: real processes, real HTTP on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

STANDIN = Path(__file__).parent / "standin"
VERSIONS = ("0.5.10", "0.5.23")
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
    # Loaded by path under a private name: importing it as `sglang` would shadow a real SGLang in this process.
    spec = importlib.util.spec_from_file_location("standin_sglang_cli", STANDIN / "sglang" / "_standin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CLI = load_cli()


# --- helpers ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def standin_env(env: dict | None) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    fast = {"STANDIN_LOAD_SECONDS": "0.05", "STANDIN_WARMUP_SECONDS": "0.05", "STANDIN_SHUTDOWN_SECONDS": "0.01"}
    return {**base, "PYTHONPATH": str(STANDIN), **fast, **(env or {})}


def run_module(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a stand-in module that exits by itself."""
    return subprocess.run(
        [sys.executable, "-m", f"sglang.{module}", *args],
        env=standin_env(env),
        capture_output=True,
        text=True,
        timeout=20,
    )


def alive(pid: int) -> bool:
    # An orphan can stay a zombie when PID 1 does not reap; a zombie counts as dead.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def wait_until(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


class Server:
    def __init__(self, directory: Path, flags: tuple[str, ...], env: dict | None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.stdout_path, self.stderr_path = directory / f"{self.port}.out", directory / f"{self.port}.err"
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            # Its own session, so the test can kill the whole group: main process and TP workers.
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sglang.launch_server",
                    "--model-path",
                    "/models/glm",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    *flags,
                ],
                env=standin_env(env),
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def health(self) -> int | None:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code
        except httpx.TransportError:
            return None

    def listening(self) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def wait_healthy(self) -> Server:
        wait_until(lambda: self.health() == 200)
        return self

    def wait_exit(self, timeout: float = 5.0) -> int:
        return self.proc.wait(timeout=timeout)

    def chat(self, **body) -> httpx.Response:
        return httpx.post(f"{self.url}/v1/chat/completions", json={"messages": HELLO, **body}, headers=AUTH, timeout=5)

    def kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()


@pytest.fixture
def launch(tmp_path):
    servers = []

    def start(*flags: str, env: dict | None = None) -> Server:
        servers.append(Server(tmp_path, flags, env))
        return servers[-1]

    yield start
    for server in servers:
        server.kill_group()


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """One healthy server shared by the API-shape tests."""
    server = Server(
        tmp_path_factory.mktemp("api"),
        (
            "--api-key",
            KEY,
            "--enable-metrics",
            "--reasoning-parser",
            "glm45",
            "--tool-call-parser",
            "glm47",
            "--context-length",
            "1000",
            "--tp",
            "2",
        ),
        None,
    )
    yield server.wait_healthy()
    server.kill_group()


def sorted_choice_sets(text: str) -> str:
    # Some SGLang choices are sets, so their order in the usage text is hash order; compare them sorted.
    return re.sub(r"\{([^{}]*)\}", lambda m: "{" + ",".join(sorted(m.group(1).split(","))) + "}", text)


def recorded_parses():
    for version in VERSIONS:
        catalog = CLI.load_catalog(version)
        for case in [catalog["test_parse"], *catalog["extra_test_parses"]]:
            yield pytest.param(version, case, id=f"{version}-{case.get('label', 'test_parse')}")


# --- argument parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize("version, case", recorded_parses())
def test_parser_agrees_with_every_parse_recorded_from_real_sglang(version, case, monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")  # argparse wraps its usage text to the terminal; the recording had 80
    parser = CLI.launch_server_parser(CLI.load_catalog(version))
    if case["ok"]:
        namespace = parser.parse_args(case["argv"])
        expected = case["parsed_values_of_given_flags"]
        assert {dest: getattr(namespace, dest) for dest in expected} == expected
    else:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(case["argv"])
        assert exit_info.value.code == case["exit_code"]
        assert sorted_choice_sets(capsys.readouterr().err) == sorted_choice_sets(case["stderr"])


@pytest.mark.parametrize("version", VERSIONS)
def test_compile_deep_gemm_parser_is_the_launch_server_flags_plus_timeout(version):
    catalog = CLI.load_catalog(version)
    parser = CLI.compile_deep_gemm_parser(catalog)
    assert [action.option_strings for action in parser._actions] == catalog["compile_deep_gemm"]["option_strings"]
    assert parser.parse_args(["--model-path", "/m"]).timeout == 3600


@pytest.mark.parametrize(
    "version, flags, message",
    [
        ("0.5.10", ["--no-such-flag"], "sglang serve: error: unrecognized arguments: --no-such-flag\n"),
        (
            "0.5.23",
            ["--nsa-decode-backend", "trtllm"],
            "sglang serve: error: unrecognized arguments: --nsa-decode-backend trtllm\n",
        ),
        (
            "0.5.10",
            ["--kv-cache-dtype", "fp9"],
            "sglang serve: error: argument --kv-cache-dtype: invalid choice: 'fp9'",
        ),
    ],
)
def test_launch_server_process_exits_2_with_argparse_error_like_real_sglang(version, flags, message):
    result = run_module("launch_server", "--model-path", "/m", *flags, env={"STANDIN_SGLANG_VERSION": version})
    assert result.returncode == 2
    assert message in result.stderr
    assert "server_args=" not in result.stderr


def test_version_env_picks_the_catalog_and_sets_dunder_version():
    def version_of(requested: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-c", "import sglang; print(sglang.__version__)"],
            env=standin_env({"STANDIN_SGLANG_VERSION": requested}),
            capture_output=True,
            text=True,
        )

    assert version_of("0.5.23").stdout.strip() == "0.5.23"
    assert version_of("0.5.10.post1").stdout.strip() == "0.5.10.post1"
    unknown = version_of("0.4.0")
    assert unknown.returncode != 0 and "no catalog for version '0.4.0'" in unknown.stderr


# --- startup, health, auth -------------------------------------------------------------------------


def test_logs_server_args_with_every_dest_and_the_api_key_in_clear(api):
    line = next(line for line in api.stderr().splitlines() if "server_args=ServerArgs(" in line)
    assert "model_path='/models/glm'" in line
    assert f"api_key='{KEY}'" in line
    assert "tp_size=2" in line  # 0.5.10's CLI dest tensor_parallel_size, shown under its ServerArgs field name
    assert "served_model_name='/models/glm'" in line


def test_health_is_503_while_warming_up_then_200_and_models_answers_as_soon_as_it_listens(launch):
    server = launch(env={"STANDIN_LOAD_SECONDS": "0.1", "STANDIN_WARMUP_SECONDS": "0.5"})
    wait_until(server.listening)
    assert server.health() == 503
    assert httpx.get(f"{server.url}/v1/models", timeout=2).json()["data"][0]["id"] == "/models/glm"
    server.wait_healthy()
    assert "The server is fired up and ready to roll!" in server.stderr()


def test_api_key_guards_every_route_but_health_and_metrics(api):
    assert httpx.get(f"{api.url}/v1/models", timeout=2).status_code == 401
    wrong = httpx.post(
        f"{api.url}/v1/chat/completions", json={"messages": HELLO}, headers={"Authorization": "Bearer nope"}, timeout=2
    )
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Unauthorized"})
    assert httpx.get(f"{api.url}/v1/models", headers=AUTH, timeout=2).status_code == 200
    assert httpx.get(f"{api.url}/health", timeout=2).status_code == 200
    assert httpx.get(f"{api.url}/metrics", timeout=2).status_code == 200


# --- chat completions ------------------------------------------------------------------------------


def test_chat_with_thinking_returns_content_reasoning_and_usage(api):
    body = api.chat().json()
    message = body["choices"][0]["message"]
    assert message["content"] and message["reasoning_content"]
    assert message["tool_calls"] is None
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["prompt_tokens"] > 0 and body["usage"]["completion_tokens"] > 0


def test_chat_with_thinking_disabled_has_no_reasoning(api):
    message = api.chat(chat_template_kwargs={"enable_thinking": False}).json()["choices"][0]["message"]
    assert message["content"]
    assert message.get("reasoning_content") is None


def test_chat_without_a_reasoning_parser_leaves_the_thinking_in_content(launch):
    server = launch().wait_healthy()
    message = server.chat().json()["choices"][0]["message"]
    assert message["reasoning_content"] is None
    assert message["content"].startswith("<think>")


def test_chat_with_tools_returns_an_openai_tool_call(api):
    choice = api.chat(tools=[WEATHER_TOOL]).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"]
    assert call["function"]["name"] == "get_weather"
    assert set(json.loads(call["function"]["arguments"])) == {"city", "days"}


def test_chat_with_tool_choice_none_answers_in_text(api):
    choice = api.chat(tools=[WEATHER_TOOL], tool_choice="none").json()["choices"][0]
    assert choice["message"]["tool_calls"] is None and choice["finish_reason"] == "stop"


def test_streaming_sends_role_reasoning_max_tokens_content_chunks_usage_and_done(api):
    body = {"messages": HELLO, "stream": True, "max_tokens": 5, "stream_options": {"include_usage": True}}
    with httpx.stream("POST", f"{api.url}/v1/chat/completions", json=body, headers=AUTH, timeout=5) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line.removeprefix("data: ") for line in response.iter_lines() if line]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert deltas[1]["reasoning_content"]
    assert len([delta for delta in deltas if delta.get("content")]) == 5
    assert chunks[-2]["choices"][0]["finish_reason"] == "length"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] >= 5


def test_prompt_longer_than_the_context_length_gets_400(api):
    response = api.chat(messages=[{"role": "user", "content": "x" * 5000}])  # ~1250 tokens > 1000
    assert response.status_code == 400
    assert "longer than the model's context length (1000 tokens)" in response.json()["message"]


def test_metrics_are_prometheus_text_with_the_model_name_label(api):
    api.chat()
    text = httpx.get(f"{api.url}/metrics", timeout=2).text
    assert 'sglang:num_running_reqs{model_name="/models/glm"} 0.0' in text
    assert 'sglang:time_to_first_token_seconds_bucket{le="+Inf",model_name="/models/glm"}' in text
    requests_done = re.search(r'sglang:num_requests_total\{model_name="/models/glm"\} (\S+)', text)
    assert float(requests_done.group(1)) >= 1


def test_metrics_are_404_without_enable_metrics(launch):
    server = launch().wait_healthy()
    assert httpx.get(f"{server.url}/metrics", timeout=2).status_code == 404


# --- faults ----------------------------------------------------------------------------------------


def test_crash_during_load_exits_with_the_configured_code_before_listening(launch):
    server = launch(env={"STANDIN_FAULT": "crash-during-load", "STANDIN_EXIT_CODE": "3"})
    assert server.wait_exit() == 3
    assert "OutOfMemoryError" in server.stderr()
    assert "Uvicorn running" not in server.stderr()


def test_never_healthy_keeps_health_at_503(launch):
    server = launch(env={"STANDIN_FAULT": "never-healthy"})
    wait_until(server.listening)
    time.sleep(0.2)
    assert server.health() == 503


def test_fail_requests_answers_chat_with_500(launch):
    response = launch(env={"STANDIN_FAULT": "fail-requests"}).wait_healthy().chat()
    assert response.status_code == 500 and response.json()["object"] == "error"


def test_hang_accepts_connections_but_never_answers(launch):
    server = launch(env={"STANDIN_FAULT": "hang"})
    wait_until(server.listening)
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{server.url}/health", timeout=0.5)


def test_bad_warmup_answers_200_with_empty_content_and_no_reasoning(launch):
    response = launch("--reasoning-parser", "glm45", env={"STANDIN_FAULT": "bad-warmup"}).wait_healthy().chat()
    message = response.json()["choices"][0]["message"]
    assert response.status_code == 200
    assert message["content"] == "" and message["reasoning_content"] is None


def test_crash_file_in_the_control_dir_ends_the_server_with_its_exit_code(launch, tmp_path):
    control = tmp_path / "control"
    control.mkdir()
    server = launch(env={"STANDIN_CONTROL_DIR": str(control)}).wait_healthy()
    (control / "crash.tmp").write_text("7")
    (control / "crash.tmp").rename(control / "crash")
    assert server.wait_exit(timeout=2) == 7
    assert "illegal memory access" in server.stderr()


# --- TP workers and shutdown -----------------------------------------------------------------------


def read_pids(path: Path) -> list[int]:
    # Written (atomically) before loading starts, so it is complete once the server is healthy.
    return [int(line) for line in path.read_text().split()]


def test_sigterm_exits_0_and_takes_the_polite_workers_along(launch, tmp_path):
    pid_file = tmp_path / "pids"
    server = launch("--tp", "3", env={"STANDIN_PID_FILE": str(pid_file)}).wait_healthy()
    main, *workers = read_pids(pid_file)
    assert main == server.proc.pid and len(workers) == 2
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    wait_until(lambda: not any(alive(pid) for pid in workers))


def test_stubborn_workers_share_the_process_group_and_outlive_sigterm_until_sigkill(launch, tmp_path):
    pid_file = tmp_path / "pids"
    server = launch("--tp-size", "3", env={"STANDIN_PID_FILE": str(pid_file), "STANDIN_STUBBORN_WORKERS": "1"})
    server.wait_healthy()
    main, *workers = read_pids(pid_file)
    assert [os.getpgid(pid) for pid in workers] == [main, main]
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    for pid in workers:
        os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)
    assert all(alive(pid) for pid in workers)
    os.killpg(main, signal.SIGKILL)
    wait_until(lambda: not any(alive(pid) for pid in workers))


# --- compile_deep_gemm -----------------------------------------------------------------------------


def test_compile_deep_gemm_writes_kernels_into_the_dg_cache_dir(tmp_path):
    cache = tmp_path / "cache" / "deep_gemm"
    result = run_module(
        "compile_deep_gemm",
        "--model",
        "/models/glm",
        "--tp",
        "8",
        "--timeout",
        "60",
        env={"SGLANG_DG_CACHE_DIR": str(cache), "STANDIN_COMPILE_SECONDS": "0.05"},
    )
    assert result.returncode == 0, result.stderr
    assert "tp_size 8" in (cache / "standin-kernels.bin").read_text()


def test_compile_deep_gemm_fails_like_sglang(tmp_path):
    env = {"SGLANG_DG_CACHE_DIR": str(tmp_path), "STANDIN_COMPILE_SECONDS": "0.05"}
    bad_flag = run_module("compile_deep_gemm", "--model", "/m", "--no-such-flag", env=env)
    assert bad_flag.returncode == 2 and "error: unrecognized arguments: --no-such-flag" in bad_flag.stderr
    failed = run_module("compile_deep_gemm", "--model", "/m", env={**env, "STANDIN_FAULT": "compile-fails"})
    assert failed.returncode == 1 and "RuntimeError" in failed.stderr
    assert not (tmp_path / "standin-kernels.bin").exists()


# --- entry points ----------------------------------------------------------------------------------------


def run_sglang_script(*args: str, version: str) -> subprocess.CompletedProcess:
    """The stand-in's `sglang` console script, as the image's PATH finds it."""
    env = standin_env({"STANDIN_SGLANG_VERSION": version})
    env["PATH"] = f"{STANDIN / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(["sglang", *args], env=env, capture_output=True, text=True, timeout=20)


def test_sglang_serve_parses_the_same_flags_as_launch_server():
    for version in ("0.5.10", "0.5.23"):
        served = run_sglang_script(
            "serve", "--model-path", "/m", "--tp", "8", "--kv-cache-dtype", "fp9", version=version
        )
        launched = run_module(
            "launch_server", "--model-path", "/m", "--kv-cache-dtype", "fp9", env={"STANDIN_SGLANG_VERSION": version}
        )
        assert served.returncode == launched.returncode == 2
        assert served.stderr.splitlines()[-1] == launched.stderr.splitlines()[-1]
        assert "argument --kv-cache-dtype: invalid choice: 'fp9'" in served.stderr


def test_sglang_serve_runs_the_server():
    port = str(free_port())
    env = standin_env({"STANDIN_SGLANG_VERSION": "0.5.10"})
    env["PATH"] = f"{STANDIN / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.Popen(
        ["sglang", "serve", "--model-path", "/m", "--host", "127.0.0.1", "--port", port],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=2).json()["data"][0]["id"] == "/m"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def test_a_release_without_the_sglang_script_has_no_sglang_command():
    result = run_sglang_script("serve", "--model-path", "/m", version="0.5.4")
    assert (result.returncode, result.stderr) == (
        127,
        "sglang: command not found (SGLang 0.5.4 ships no `sglang` script)\n",
    )
