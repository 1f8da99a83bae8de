"""Stand-in for `vllm serve` (vllm/entrypoints/cli/main.py): parses, logs, loads, serves and fails like vLLM,
without a GPU.

Lifecycle: parse the flags from the catalog (exit 2 on a bad one) -> vLLM's start-up checks (exit 1 with a
traceback) -> log the version and the non-default args -> spawn the engine core and TP-1 workers -> "load,
compile, capture" for STANDIN_LOAD_SECONDS -> listen on --host/--port (vLLM's HTTP server starts only once
the engine is up) -> /health 200 -> on SIGTERM/SIGINT exit 0 after STANDIN_SHUTDOWN_SECONDS.
The STANDIN_* variables are listed in vllm/__init__.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from vllm import _standin as S

# Without --max-model-len vLLM takes the model config's limit; the stand-in has no model config.
DEFAULT_MAX_MODEL_LEN = 202752
CHARS_PER_TOKEN = 4
ANSWER = "The stand-in server answers with these words, repeated as often as the reply needs."
REASONING = "The user asked a question; a short fixed answer will do."
HISTOGRAM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
CORE_FILE = "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py"  # where the image has it
# vLLM's AuthenticationMiddleware guards paths under /v1 only (/health, /metrics, /ping stay open).
GUARDED_PREFIX = "/v1"

# Engine core and TP workers: vLLM's multiproc executor keeps them in the server's process group. A stubborn one
# ignores every polite signal (only SIGKILL ends it); a normal one dies on SIGTERM or when its parent is gone.
WORKER_CODE = """
import os, signal, sys, time
if sys.argv[2] == "1":
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    print("ready", flush=True)
    while True:
        time.sleep(1)
signal.signal(signal.SIGINT, signal.SIG_DFL)
print("ready", flush=True)
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.1)
"""


class RequestError(Exception):
    """An error answered as vLLM's OpenAI-style ErrorResponse."""

    def __init__(self, status: int, message: str, err_type: str):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"message": message, "type": err_type, "param": None, "code": status}}


# --- start-up checks: what vLLM raises after parsing, before the engine starts ------------------------


def startup_problem(args: dict, catalog: dict) -> tuple[str, str, str] | None:
    """(file, exception line, where) of the first start-up check that fails, as vLLM words it."""
    cli_args = "vllm/entrypoints/common/cli_args.py"
    if args.get("enable_auto_tool_choice") and not args.get("tool_call_parser"):
        return cli_args, "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser", "validate"
    tool_parsers = catalog.get("registered_tool_call_parsers", [])
    if args.get("enable_auto_tool_choice") and args["tool_call_parser"] not in tool_parsers:
        listed = ",".join(tool_parsers)
        return (
            cli_args,
            f"KeyError: 'invalid tool call parser: {args['tool_call_parser']} (chose from {{ {listed} }})'",
            "api",
        )
    reasoning_parsers = catalog.get("registered_reasoning_parsers", [])
    if args.get("reasoning_parser") and args["reasoning_parser"] not in reasoning_parsers:
        listed = ",".join(reasoning_parsers)
        return (
            cli_args,
            f"KeyError: 'invalid reasoning parser: {args['reasoning_parser']} (chose from {{ {listed} }})'",
            "api",
        )
    speculative = args.get("speculative_config")
    fields = catalog.get("json_arguments", {}).get("--speculative-config", {}).get("fields")
    if speculative is not None and fields:
        problems = S.json_field_problems(speculative, fields)
        if problems:
            return (
                "vllm/engine/arg_utils.py",
                f"pydantic_core._pydantic_core.ValidationError: {len(problems)} validation error"
                f"{'s' if len(problems) > 1 else ''} for SpeculativeConfig\n" + "\n".join(problems),
                "engine",
            )
    return None


def fail_startup(path: str, exception: str) -> None:
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f'  File "/usr/local/lib/python3.12/dist-packages/{path}", line 1, in <module>', file=sys.stderr)
    print(exception, file=sys.stderr, flush=True)
    sys.exit(1)


# --- metrics ---------------------------------------------------------------------------------------


class Histogram:
    def __init__(self):
        self.counts = [0] * len(HISTOGRAM_BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(HISTOGRAM_BUCKETS):
            if value <= bound:
                self.counts[i] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str, labels: str) -> list[str]:
        out = [
            f'{name}_bucket{{{labels},le="{bound}"}} {float(n)}'
            for bound, n in zip(HISTOGRAM_BUCKETS, self.counts, strict=True)
        ]
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {float(self.count)}')
        out.append(f"{name}_count{{{labels}}} {float(self.count)}")
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        return out


class Metrics:
    """The subset of vLLM's Prometheus metrics (always on, /metrics) that dashboards and tests read."""

    def __init__(self, model_name: str):
        escaped = model_name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        self.labels = f'engine="0",model_name="{escaped}"'
        self.lock = threading.Lock()
        self.running = 0
        self.requests = 0
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.ttft = Histogram()
        self.e2e = Histogram()

    def started(self) -> None:
        with self.lock:
            self.running += 1

    def finished(self, prompt_tokens: int, generation_tokens: int, ttft: float | None, e2e: float) -> None:
        with self.lock:
            self.running -= 1
            self.requests += 1
            self.prompt_tokens += prompt_tokens
            self.generation_tokens += generation_tokens
            if ttft is not None:
                self.ttft.observe(ttft)
            self.e2e.observe(e2e)

    def render(self) -> str:
        with self.lock:
            series = [
                ("vllm:num_requests_running", "gauge", "Number of requests in model execution batches.", self.running),
                ("vllm:num_requests_waiting", "gauge", "Number of requests waiting to be processed.", 0),
                ("vllm:kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.", 0.0),
                ("vllm:prompt_tokens_total", "counter", "Number of prefill tokens processed.", self.prompt_tokens),
                (
                    "vllm:generation_tokens_total",
                    "counter",
                    "Number of generation tokens processed.",
                    self.generation_tokens,
                ),  # fmt: skip
                ("vllm:request_success_total", "counter", "Count of successfully processed requests.", self.requests),
            ]
            lines = []
            for name, kind, help_text, value in series:
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                lines.append(f"{name}{{{self.labels}}} {float(value)}")
            for name, help_text, histogram in (
                ("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", self.ttft),
                ("vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.", self.e2e),
            ):
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram", *histogram.lines(name, self.labels)]
        return "\n".join(lines) + "\n"


# --- the fake model --------------------------------------------------------------------------------


def tokens_of(text: str) -> list[str]:
    """Word pieces that concatenate back to `text`, one per streamed chunk."""
    words = text.split(" ")
    return [words[0]] + [" " + word for word in words[1:]]


def example_arguments(tool: dict) -> dict:
    """Plausible arguments for a tool: one value of the right JSON type per required (or every) property."""
    parameters = tool.get("function", {}).get("parameters") or {}
    properties = parameters.get("properties") or {}
    samples = {"string": "stand-in", "integer": 1, "number": 1.5, "boolean": True, "array": [], "object": {}}
    arguments = {}
    for name in parameters.get("required") or list(properties):
        schema = properties.get(name, {})
        arguments[name] = schema["enum"][0] if schema.get("enum") else samples.get(schema.get("type"), "stand-in")
    return arguments


class Engine:
    """What the request threads share: the parsed args, readiness and metrics."""

    def __init__(self, args: dict):
        self.args = args
        names = args.get("served_model_name") or [args["model_tag"]]
        self.model_name = names[0]
        self.served_names = names
        self.max_model_len = args.get("max_model_len") or DEFAULT_MAX_MODEL_LEN
        self.ready_at = float("inf")  # set when the port listens
        self.metrics = Metrics(self.model_name)
        self.token_delay = S.env_float("STANDIN_TOKEN_DELAY", 0.002)
        self.max_tokens = S.env_int("STANDIN_MAX_TOKENS", 16)

    def healthy(self) -> bool:
        return S.fault() != "never-healthy" and time.monotonic() >= self.ready_at

    def plan_reply(self, body: object) -> dict:
        """Decide a chat completion's reasoning, content tokens and tool calls the way vLLM's parsers split them."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise RequestError(400, "messages: Field required (a non-empty list)", "BadRequestError")
        if body.get("model") not in (None, *self.served_names):
            raise RequestError(404, f"The model `{body['model']}` does not exist.", "NotFoundError")
        tools = body.get("tools") or []
        tool_choice = body.get("tool_choice", "auto" if tools else "none")
        # Without --enable-auto-tool-choice vLLM selects no tool parser (vllm/renderers/online_renderer.py).
        parser_on = self.args.get("enable_auto_tool_choice") and self.args.get("tool_call_parser")
        if tools and tool_choice not in (None, "none") and not parser_on:
            if tool_choice == "auto":
                message = '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
            else:
                named = isinstance(tool_choice, dict)
                wanted = f'function "{tool_choice.get("function", {}).get("name")}"' if named else f'"{tool_choice}"'
                message = f"tool_choice={wanted} requires --tool-call-parser to be set"
            raise RequestError(400, message, "BadRequestError")
        prompt_tokens = max(1, len(json.dumps(body["messages"]) + json.dumps(tools)) // CHARS_PER_TOKEN)
        if prompt_tokens >= self.max_model_len:
            raise RequestError(
                400,
                f"This model's maximum context length is {self.max_model_len} tokens. However, your request has "
                f"{prompt_tokens} input tokens. Please reduce the length of the input messages.",
                "BadRequestError",
            )
        if S.fault() == "fail-requests":
            raise RequestError(500, "EngineCore encountered an issue. See stack trace for the root cause.",
                               "InternalServerError")  # fmt: skip
        plan = {"prompt_tokens": prompt_tokens, "reasoning": None, "tool_calls": None, "finish_reason": "stop"}
        if S.fault() == "bad-warmup":  # a broken engine: 200 with nothing in it
            plan["tokens"] = []
            return plan

        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        # Left alone the fake model says STANDIN_MAX_TOKENS tokens; a smaller max_tokens cuts it ("length").
        length = min(limit, self.max_tokens) if limit else self.max_tokens
        words = ANSWER.split(" ")
        tokens = [("" if i == 0 else " ") + words[i % len(words)] for i in range(self.max_tokens)]
        named = tool_choice.get("function", {}).get("name") if isinstance(tool_choice, dict) else None
        if tools and tool_choice not in (None, "none"):
            tool = next((t for t in tools if t.get("function", {}).get("name") == named), tools[0])
            name = tool["function"]["name"]
            tokens = [] if named else tokens_of(f"I will call {name}.")
            plan["finish_reason"] = "tool_calls"
            plan["tool_calls"] = [
                {
                    "id": f"chatcmpl-tool-{uuid.uuid4().hex[:32]}",
                    "index": 0,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(example_arguments(tool))},
                }
            ]
        thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking", True) is not False
        if thinking and self.args.get("reasoning_parser"):
            plan["reasoning"] = REASONING
        elif thinking:
            tokens = [f"<think>{REASONING}</think>", *tokens]

        if len(tokens) > length:
            tokens = tokens[:length]
            if plan["finish_reason"] == "stop":
                plan["finish_reason"] = "length"
        plan["tokens"] = tokens
        return plan


# --- HTTP ------------------------------------------------------------------------------------------


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    sys_version = ""

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def route(self, method: str) -> None:
        if S.fault() == "hang":  # the connection is accepted and never answered
            threading.Event().wait()
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        path = urlsplit(self.path).path
        keys = self.engine.args.get("api_key") or []
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if keys and path.startswith(GUARDED_PREFIX) and not (scheme.lower() == "bearer" and token in keys):
            return self.send_json(401, {"error": "Unauthorized"})
        routes = {
            "/health": ("GET", self.health),
            "/ping": ("GET", self.health),
            "/v1/models": ("GET", self.models),
            "/metrics": ("GET", self.metrics),
            "/v1/chat/completions": ("POST", lambda: self.chat(raw_body)),
        }
        if path not in routes:
            return self.send_json(404, {"detail": "Not Found"})
        allowed, handler = routes[path]
        if method != allowed:
            return self.send_json(405, {"detail": "Method Not Allowed"})
        handler()

    def health(self) -> None:
        self.send_bytes(200 if self.engine.healthy() else 503, b"", "application/json")

    def models(self) -> None:
        created = int(time.time())
        self.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": created,
                        "owned_by": "vllm",
                        "root": self.engine.args["model_tag"],
                        "parent": None,
                        "max_model_len": self.engine.max_model_len,
                    }
                    for name in self.engine.served_names
                ],
            },
        )

    def metrics(self) -> None:
        self.send_bytes(200, self.engine.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def chat(self, raw_body: bytes) -> None:
        time.sleep(S.env_float("STANDIN_REQUEST_DELAY", 0.0))
        try:
            body = json.loads(raw_body or b"null")
            plan = self.engine.plan_reply(body)
        except json.JSONDecodeError as e:
            return self.send_json(400, RequestError(400, f"JSON decode error: {e}", "BadRequestError").body)
        except RequestError as e:
            return self.send_json(e.status, e.body)
        metrics = self.engine.metrics
        metrics.started()
        started = time.monotonic()
        timing = {"ttft": None}
        try:
            if body.get("stream"):
                self.stream(body, plan, started, timing)
            else:
                self.complete(body, plan, started, timing)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away mid-stream, as clients do
        finally:
            metrics.finished(plan["prompt_tokens"], len(plan["tokens"]), timing["ttft"], time.monotonic() - started)

    def usage(self, plan: dict) -> dict:
        completion = len(plan["tokens"]) + (len(tokens_of(plan["reasoning"])) if plan["reasoning"] else 0)
        return {
            "prompt_tokens": plan["prompt_tokens"],
            "total_tokens": plan["prompt_tokens"] + completion,
            "completion_tokens": completion,
            "prompt_tokens_details": None,
        }

    def complete(self, body: dict, plan: dict, started: float, timing: dict) -> None:
        time.sleep(self.engine.token_delay)
        timing["ttft"] = time.monotonic() - started
        time.sleep(self.engine.token_delay * max(0, len(plan["tokens"]) - 1))
        tool_calls = [{k: v for k, v in call.items() if k != "index"} for call in plan["tool_calls"] or []]
        message = {
            "role": "assistant",
            "content": "".join(plan["tokens"]) or None,
            "refusal": None,
            "annotations": None,
            "audio": None,
            "function_call": None,
            "tool_calls": tool_calls,
            "reasoning": plan["reasoning"],
        }
        self.send_json(
            200,
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.engine.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": plan["finish_reason"],
                        "stop_reason": None,
                    }
                ],
                "service_tier": None,
                "system_fingerprint": None,
                "usage": self.usage(plan),
                "prompt_logprobs": None,
                "kv_transfer_params": None,
            },
        )

    def stream(self, body: dict, plan: dict, started: float, timing: dict) -> None:
        chunk_id, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        model = body.get("model") or self.engine.model_name

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.send_event(chunk({"role": "assistant", "content": ""}))
        deltas = [{"reasoning": piece} for piece in tokens_of(plan["reasoning"])] if plan["reasoning"] else []
        deltas += [{"content": token} for token in plan["tokens"]]
        for delta in deltas:
            time.sleep(self.engine.token_delay)
            if timing["ttft"] is None:
                timing["ttft"] = time.monotonic() - started
            self.send_event(chunk(delta))
        if plan["tool_calls"]:
            self.send_event(chunk({"tool_calls": plan["tool_calls"]}))
        self.send_event(chunk({"content": ""}, plan["finish_reason"]))
        if (body.get("stream_options") or {}).get("include_usage"):
            self.send_event({**chunk({}), "choices": [], "usage": self.usage(plan)})
        self.send_event("[DONE]")
        self.wfile.write(b"0\r\n\r\n")

    def send_event(self, payload: dict | str) -> None:
        data = f"data: {payload if isinstance(payload, str) else dumps(payload)}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def send_json(self, status: int, obj: object) -> None:
        self.send_bytes(status, dumps(obj).encode(), "application/json")

    def send_bytes(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_request(self, code="-", size="-") -> None:
        phrase = HTTPStatus(code).phrase if isinstance(code, int) else ""
        S.access_log(f"{self.client_address[0]}:{self.client_address[1]}", self.requestline, f"{code} {phrase}")

    def log_message(self, format, *args) -> None:
        S.log(format % args)


# --- process lifecycle -----------------------------------------------------------------------------


def spawn_workers(tp_size: int) -> list[subprocess.Popen]:
    """The engine core and TP workers 1..N-1 (worker 0 lives in the engine core), each up (its signal
    handling in place) before this returns, as vLLM's workers are before its server listens."""
    stubborn = "1" if os.environ.get("STANDIN_STUBBORN_WORKERS") == "1" else "0"
    names = ["VLLM::EngineCore", *(f"VLLM::Worker_TP{rank}" for rank in range(1, tp_size))]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, name, stubborn], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        for name in names
    ]
    for worker in workers:
        worker.stdout.readline()
    return workers


def write_pid_file(workers: list[subprocess.Popen]) -> None:
    path = os.environ.get("STANDIN_PID_FILE")
    if path:
        tmp = f"{path}.tmp"  # renamed into place so a reader never sees half the list
        Path(tmp).write_text("".join(f"{pid}\n" for pid in [os.getpid(), *(w.pid for w in workers)]))
        os.replace(tmp, path)


def crash(message_lines: list[str], code: int, during_start: bool = False) -> None:
    """Die like an engine core that raised: its traceback, then the API server's EngineDeadError, then the code."""
    S.log("EngineCore encountered a fatal error.", process="EngineCore_DP0", level="ERROR", where="core.py:1586")
    print("Traceback (most recent call last):", file=sys.stderr)
    for line in message_lines:
        print(line, file=sys.stderr, flush=True)
    if during_start:
        print("RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}",
              file=sys.stderr, flush=True)  # fmt: skip
    else:
        S.log("AsyncLLM output_handler failed.", level="ERROR", where="async_llm.py:760")
        print("vllm.v1.engine.exceptions.EngineDeadError: EngineCore encountered an issue. See stack trace (above) "
              "for the root cause.", file=sys.stderr, flush=True)  # fmt: skip
    os._exit(code)


def watch_control_dir(directory: str) -> None:
    """Crash with the code written in <dir>/crash as soon as that file appears (write it atomically)."""
    crash_file = Path(directory) / "crash"

    def watch() -> None:
        while not crash_file.exists():
            time.sleep(0.05)
        text = crash_file.read_text().strip()
        crash(
            [
                f'  File "{CORE_FILE}", line 412, in step',
                "    model_output = self.execute_model_with_error_logging(",
                "RuntimeError: CUDA error: an illegal memory access was encountered",
            ],
            int(text) if text.lstrip("-").isdigit() else 1,
        )

    threading.Thread(target=watch, name="standin-control", daemon=True).start()


def compile_cache(args: dict) -> Path:
    root = Path(os.environ.get("VLLM_CACHE_ROOT") or Path.home() / ".cache" / "vllm")
    return root / "torch_compile_cache" / "standin" / "rank_0_0" / "backbone"


def load_model(args: dict, stop: threading.Event) -> bool:
    """Log and wait like weight loading, torch.compile and CUDA graph capture; False when SIGTERM arrived."""
    tp_size = args["tensor_parallel_size"]
    S.log(f"Initializing a V1 LLM engine (v{S.requested_version()}) with config: model='{args['model_tag']}', "
          f"tensor_parallel_size={tp_size}, max_seq_len={args.get('max_model_len') or DEFAULT_MAX_MODEL_LEN}",
          process="EngineCore_DP0", where="core.py:100")  # fmt: skip
    if stop.wait(S.env_float("STANDIN_LOAD_SECONDS", 0.5)):
        return False
    if S.fault() == "crash-during-load":
        crash(
            [
                f'  File "{CORE_FILE}", line 1012, in run_engine_core',
                "    engine_core = EngineCoreProc(*args, **kwargs)",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 139.81 GiB of which 1.06 GiB is free.",
            ],
            S.env_int("STANDIN_EXIT_CODE", 1),
            during_start=True,
        )
    for rank in range(tp_size):
        S.log("Model loading took 88.70 GiB memory and 61.500000 seconds", process=f"Worker_TP{rank}",
              where="gpu_model_runner.py:5089")  # fmt: skip
    cache = compile_cache(args)
    if args.get("enforce_eager"):
        S.log("Compilation and CUDA graphs are disabled (enforce_eager)", process="Worker_TP0", where="backends.py:4")
    elif (cache / "standin-graph.bin").exists():
        S.log(f"Using cache directory: {cache} for vLLM's torch.compile", process="Worker_TP0", where="backends.py:1")
        S.log("Directly load the compiled graph(s) for dynamic shape from the cache, took 3.100 s",
              process="Worker_TP0", where="backends.py:2")  # fmt: skip
    else:
        S.log(f"Using cache directory: {cache} for vLLM's torch.compile", process="Worker_TP0", where="backends.py:1")
        cache.mkdir(parents=True, exist_ok=True)
        (cache / "standin-graph.bin").write_text(f"tensor_parallel_size {tp_size}\n")
        S.log("Compiling a graph for dynamic shape takes 45.20 s", process="Worker_TP0", where="backends.py:3")
    max_len = args.get("max_model_len") or DEFAULT_MAX_MODEL_LEN
    S.log("GPU KV cache size: 1,048,576 tokens", process="EngineCore_DP0", where="kv_cache_utils.py:1140")
    S.log(f"Maximum concurrency for {max_len:,} tokens per request: {1048576 / max_len:.2f}x",
          process="EngineCore_DP0", where="kv_cache_utils.py:1149")  # fmt: skip
    S.log("init engine (profile, create kv cache, warmup model) took 120.50 s", process="EngineCore_DP0",
          where="core.py:413")  # fmt: skip
    return True


def serve(engine: Engine) -> None:
    host, port = engine.args.get("host") or "0.0.0.0", engine.args["port"]
    server = ThreadingHTTPServer((host, port), Handler)
    server.engine = engine
    S.log(f"Starting vLLM server on http://{host}:{port}", where="entry.py:139")
    S.log("Available routes are:", where="launcher.py:188")
    for route, method in (
        ("/health", "GET"),
        ("/metrics", "GET"),
        ("/v1/models", "GET"),
        ("/v1/chat/completions", "POST"),
    ):
        S.log(f"Route: {route}, Methods: {method}", where="launcher.py:196")
    S.uvicorn_log(f"Started server process [{os.getpid()}]")
    S.uvicorn_log("Waiting for application startup.")
    S.uvicorn_log("Application startup complete.")
    engine.ready_at = time.monotonic() + S.env_float("STANDIN_WARMUP_SECONDS", 0.0)
    threading.Thread(target=server.serve_forever, name="standin-http", daemon=True).start()


def non_default_args(namespace, catalog: dict) -> dict:
    """What vLLM logs as `non-default args` (the API key redacted, as vLLM's redact_sensitive_args does)."""
    changed = {}
    for flag in catalog["flags"]:
        dest = flag["dest"]
        if dest != "help" and hasattr(namespace, dest) and getattr(namespace, dest) != flag["default"]:
            changed[dest] = getattr(namespace, dest)
    return {k: ("***" if k == "api_key" else v) for k, v in changed.items()}


def serve_command(argv: list[str]) -> int:
    catalog = S.load_catalog(S.requested_version())
    namespace = S.build_parser(catalog).parse_args(argv)
    args = vars(namespace)
    problem = startup_problem(args, catalog)
    if problem and problem[2] == "validate":  # ServeSubcommand.validate, before anything is logged
        fail_startup(problem[0], problem[1])
    S.log(f"vLLM API server version {S.requested_version()}", where="api_server.py:1")
    S.log(f"non-default args: {non_default_args(namespace, catalog)}", where="startup.py:96")
    if problem:
        fail_startup(problem[0], problem[1])

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workers = spawn_workers(args["tensor_parallel_size"])
    write_pid_file(workers)
    if os.environ.get("STANDIN_CONTROL_DIR"):
        watch_control_dir(os.environ["STANDIN_CONTROL_DIR"])

    if load_model(args, stop):
        serve(Engine(args))
        stop.wait()
        S.uvicorn_log("Shutting down")

    for worker in workers:  # polite: stubborn workers ignore it and outlive this process
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    time.sleep(S.env_float("STANDIN_SHUTDOWN_SECONDS", 0.1))
    S.uvicorn_log(f"Finished server process [{os.getpid()}]")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] != ["serve"]:
        print("usage: vllm [-h] [-v] {serve} ...\nvllm: error: the stand-in only knows `vllm serve`", file=sys.stderr)
        return 2
    return serve_command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
