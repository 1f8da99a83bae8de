"""Stand-in for `python3 -m sglang.launch_server`: parses, logs, loads, serves and fails like SGLang, without a GPU.

Lifecycle: parse the flags from the catalog (exit 2 on a bad one) -> log server_args=ServerArgs(...) -> spawn
tp_size-1 worker processes -> "load" for STANDIN_LOAD_SECONDS -> listen on --host/--port -> /health 503 for
STANDIN_WARMUP_SECONDS, then 200 -> on SIGTERM/SIGINT exit 0 after STANDIN_SHUTDOWN_SECONDS.
The STANDIN_* variables are listed in sglang/__init__.py.
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

from sglang import _standin as S

# Without --context-length SGLang takes the model config's limit; the stand-in has no model config.
DEFAULT_CONTEXT_LENGTH = 131072
CHARS_PER_TOKEN = 4
ANSWER = "The stand-in server answers with these words, repeated as often as the reply needs."
REASONING = "The user asked a question; a short fixed answer will do."
HISTOGRAM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
SCHEDULER_FILE = "/sgl-workspace/sglang/python/sglang/srt/managers/scheduler.py"  # where the image has it

# A TP worker: SGLang's scheduler processes stay in the launcher's process group. A stubborn one ignores
# every polite signal (only SIGKILL ends it); a normal one dies on SIGTERM or when its parent is gone.
WORKER_CODE = """
import os, signal, sys, time
if sys.argv[2] == "1":
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    while True:
        time.sleep(1)
signal.signal(signal.SIGINT, signal.SIG_DFL)
parent = os.getppid()
while os.getppid() == parent:
    time.sleep(0.1)
"""


class RequestError(Exception):
    """An error answered as SGLang's OpenAI-style ErrorResponse."""

    def __init__(self, status: int, message: str, err_type: str):
        super().__init__(message)
        self.status = status
        self.body = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}


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
            f'{name}_bucket{{le="{bound}",{labels}}} {float(n)}'
            for bound, n in zip(HISTOGRAM_BUCKETS, self.counts, strict=True)
        ]
        out.append(f'{name}_bucket{{le="+Inf",{labels}}} {float(self.count)}')
        out.append(f"{name}_count{{{labels}}} {float(self.count)}")
        out.append(f"{name}_sum{{{labels}}} {self.total}")
        return out


class Metrics:
    """The subset of SGLang's Prometheus metrics (--enable-metrics) that dashboards and tests read."""

    def __init__(self, model_name: str):
        escaped = model_name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        self.labels = f'model_name="{escaped}"'
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
                ("sglang:num_running_reqs", "gauge", "The number of running requests.", self.running),
                ("sglang:num_queue_reqs", "gauge", "The number of requests in the waiting queue.", 0),
                ("sglang:token_usage", "gauge", "The token usage.", 0.0),
                ("sglang:prompt_tokens_total", "counter", "Number of prefill tokens processed.", self.prompt_tokens),
                (
                    "sglang:generation_tokens_total",
                    "counter",
                    "Number of generation tokens processed.",
                    self.generation_tokens,
                ),
                ("sglang:num_requests_total", "counter", "Number of requests processed.", self.requests),
            ]
            lines = []
            for name, kind, help_text, value in series:
                lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
                lines.append(f"{name}{{{self.labels}}} {float(value)}")
            for name, help_text, histogram in (
                ("sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", self.ttft),
                ("sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds", self.e2e),
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
        self.model_name = args["served_model_name"]
        self.context_length = args.get("context_length") or DEFAULT_CONTEXT_LENGTH
        self.ready_at = float("inf")  # set when the port listens
        self.metrics = Metrics(self.model_name)
        self.token_delay = S.env_float("STANDIN_TOKEN_DELAY", 0.002)
        self.max_tokens = S.env_int("STANDIN_MAX_TOKENS", 16)

    def healthy(self) -> bool:
        return S.fault() != "never-healthy" and time.monotonic() >= self.ready_at

    def plan_reply(self, body: object) -> dict:
        """Decide a chat completion's reasoning, content tokens and tool calls the way SGLang's parsers split them."""
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
            raise RequestError(400, "messages: Field required (a non-empty list)", "Bad Request")
        tools = body.get("tools") or []
        prompt_tokens = max(1, len(json.dumps(body["messages"]) + json.dumps(tools)) // CHARS_PER_TOKEN)
        if prompt_tokens >= self.context_length:
            raise RequestError(
                400,
                f"The input ({prompt_tokens} tokens) is longer than the model's context length "
                f"({self.context_length} tokens).",
                "BadRequestError",
            )
        if S.fault() == "fail-requests":
            raise RequestError(
                500,
                "Internal server error: CUDA error: an illegal memory access was encountered",
                "InternalServerError",
            )
        plan = {"prompt_tokens": prompt_tokens, "reasoning": None, "tool_calls": None, "finish_reason": "stop"}
        if S.fault() == "bad-warmup":  # a broken engine: 200 with nothing in it
            plan["tokens"] = []
            return plan

        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        # Left alone the fake model says STANDIN_MAX_TOKENS tokens; a smaller max_tokens cuts it ("length").
        length = min(limit, self.max_tokens) if limit else self.max_tokens
        words = ANSWER.split(" ")
        tokens = [("" if i == 0 else " ") + words[i % len(words)] for i in range(self.max_tokens)]
        tool_choice = body.get("tool_choice", "auto")
        # Tool calls and reasoning are only split out when SGLang was started with the matching parser.
        if tools and tool_choice != "none" and self.args.get("tool_call_parser"):
            wanted = tool_choice["function"]["name"] if isinstance(tool_choice, dict) else None
            tool = next((t for t in tools if t.get("function", {}).get("name") == wanted), tools[0])
            name = tool["function"]["name"]
            tokens = tokens_of(f"I will call {name}.")
            plan["finish_reason"] = "tool_calls"
            plan["tool_calls"] = [
                {
                    "id": f"call_{uuid.uuid4().hex[:24]}",
                    "index": 0,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(example_arguments(tool))},
                }
            ]
        thinking = (body.get("chat_template_kwargs") or {}).get("enable_thinking", True) is not False
        if thinking and self.args.get("reasoning_parser") and body.get("separate_reasoning", True):
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
        api_key = self.engine.args.get("api_key")
        # SGLang's auth middleware: everything but /health* and /metrics* needs the key.
        if (
            api_key
            and not path.startswith(("/health", "/metrics"))
            and self.headers.get("Authorization") != f"Bearer {api_key}"
        ):
            return self.send_json(401, {"error": "Unauthorized"})
        routes = {
            "/health": ("GET", self.health),
            "/health_generate": ("GET", self.health),
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
        self.send_bytes(200 if self.engine.healthy() else 503, b"", "text/plain")

    def models(self) -> None:
        name = self.engine.model_name
        self.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "sglang",
                        "root": name,
                        "max_model_len": self.engine.context_length,
                    }
                ],
            },
        )

    def metrics(self) -> None:
        if not self.engine.args.get("enable_metrics"):
            return self.send_json(404, {"detail": "Not Found"})
        self.send_bytes(200, self.engine.metrics.render().encode(), "text/plain; version=0.0.4; charset=utf-8")

    def chat(self, raw_body: bytes) -> None:
        time.sleep(S.env_float("STANDIN_REQUEST_DELAY", 0.0))
        try:
            body = json.loads(raw_body or b"null")
            plan = self.engine.plan_reply(body)
        except json.JSONDecodeError as e:
            return self.send_json(400, RequestError(400, f"JSON decode error: {e}", "Bad Request").body)
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
            "completion_tokens": completion,
            "total_tokens": plan["prompt_tokens"] + completion,
            "prompt_tokens_details": None,
        }

    def complete(self, body: dict, plan: dict, started: float, timing: dict) -> None:
        time.sleep(self.engine.token_delay)
        timing["ttft"] = time.monotonic() - started
        time.sleep(self.engine.token_delay * max(0, len(plan["tokens"]) - 1))
        tool_calls = [{k: v for k, v in call.items() if k != "index"} for call in plan["tool_calls"] or []]
        message = {
            "role": "assistant",
            "content": "".join(plan["tokens"]),
            "reasoning_content": plan["reasoning"],
            "tool_calls": tool_calls or None,
        }
        self.send_json(
            200,
            {
                "id": uuid.uuid4().hex,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model") or self.engine.model_name,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": plan["finish_reason"],
                        "matched_stop": None,
                    }
                ],
                "usage": self.usage(plan),
            },
        )

    def stream(self, body: dict, plan: dict, started: float, timing: dict) -> None:
        chunk_id, created = uuid.uuid4().hex, int(time.time())
        model = body.get("model") or self.engine.model_name

        def chunk(delta: dict, finish_reason: str | None = None) -> dict:
            return {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason, "matched_stop": None}
                ],
                "usage": None,
            }

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.send_event(chunk({"role": "assistant", "content": ""}))
        deltas = [{"reasoning_content": plan["reasoning"]}] if plan["reasoning"] else []
        deltas += [{"content": token} for token in plan["tokens"]]
        for delta in deltas:
            time.sleep(self.engine.token_delay)
            if timing["ttft"] is None:
                timing["ttft"] = time.monotonic() - started
            self.send_event(chunk(delta))
        if plan["tool_calls"]:
            self.send_event(chunk({"tool_calls": plan["tool_calls"]}))
        self.send_event(chunk({}, plan["finish_reason"]))
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
    stubborn = "1" if os.environ.get("STANDIN_STUBBORN_WORKERS") == "1" else "0"
    return [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, f"sglang::scheduler_TP{rank}", stubborn], stdin=subprocess.DEVNULL
        )
        for rank in range(1, tp_size)
    ]


def write_pid_file(workers: list[subprocess.Popen]) -> None:
    path = os.environ.get("STANDIN_PID_FILE")
    if path:
        tmp = f"{path}.tmp"  # renamed into place so a reader never sees half the list
        Path(tmp).write_text("".join(f"{pid}\n" for pid in [os.getpid(), *(w.pid for w in workers)]))
        os.replace(tmp, path)


def crash(message_lines: list[str], code: int) -> None:
    """Die like a scheduler that raised: a traceback, SGLang's sigquit line, then the exit code."""
    S.log("Scheduler hit an exception: Traceback (most recent call last):", " TP0")
    for line in message_lines:
        print(line, file=sys.stderr, flush=True)
    S.log("Received sigquit from a child process. It usually means the child failed.")
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
                f'  File "{SCHEDULER_FILE}", line 2715, in event_loop_overlap',
                "    batch_result = self.run_batch(batch)",
                "RuntimeError: CUDA error: an illegal memory access was encountered",
            ],
            int(text) if text.lstrip("-").isdigit() else 1,
        )

    threading.Thread(target=watch, name="standin-control", daemon=True).start()


def load_model(args: dict, stop: threading.Event) -> bool:
    """Log and wait like weight loading; False when SIGTERM arrived meanwhile."""
    tp_size = args["tp_size"]
    for rank in range(tp_size):
        S.log("Load weight begin. avail mem=78.50 GB", f" TP{rank}")
    if stop.wait(S.env_float("STANDIN_LOAD_SECONDS", 0.5)):
        return False
    if S.fault() == "crash-during-load":
        crash(
            [
                f'  File "{SCHEDULER_FILE}", line 2938, in run_scheduler_process',
                "    scheduler = Scheduler(server_args, port_args, gpu_id, tp_rank, moe_ep_rank, pp_rank, dp_rank)",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 79.19 GiB of which 1.06 GiB is free.",
            ],
            S.env_int("STANDIN_EXIT_CODE", 1),
        )
    for rank in range(tp_size):
        S.log(
            "Load weight end. type=StandInForCausalLM, dtype=torch.bfloat16, avail mem=12.30 GB, mem usage=66.20 GB.",
            f" TP{rank}",
        )
    S.log(
        f"max_total_num_tokens={args.get('max_total_tokens') or 1048576}, "
        f"max_prefill_tokens={args.get('max_prefill_tokens')}, "
        f"max_running_requests={args.get('max_running_requests')}, "
        f"context_len={args.get('context_length') or DEFAULT_CONTEXT_LENGTH}",
        " TP0",
    )
    return True


def serve(engine: Engine) -> None:
    host, port = engine.args["host"], engine.args["port"]
    server = ThreadingHTTPServer((host, port), Handler)
    server.engine = engine
    S.log(f"INFO:     Started server process [{os.getpid()}]")
    S.log("INFO:     Waiting for application startup.")
    S.log("INFO:     Application startup complete.")
    S.log(f"INFO:     Uvicorn running on http://{host}:{port} (Press CTRL+C to quit)")
    warmup = S.env_float("STANDIN_WARMUP_SECONDS", 0.2)
    engine.ready_at = time.monotonic() + warmup
    threading.Thread(target=server.serve_forever, name="standin-http", daemon=True).start()
    if S.fault() != "never-healthy":
        announce = threading.Timer(warmup, S.log, ["The server is fired up and ready to roll!"])
        announce.daemon = True  # a SIGTERM during warmup must not wait for it
        announce.start()


def main(argv: list[str] | None = None) -> int:
    catalog = S.load_catalog(S.requested_version())
    namespace = S.launch_server_parser(catalog).parse_args(argv)
    args = S.server_args(namespace, catalog)
    S.log(f"server_args={S.server_args_repr(args)}")

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    workers = spawn_workers(args["tp_size"])
    write_pid_file(workers)
    if os.environ.get("STANDIN_CONTROL_DIR"):
        watch_control_dir(os.environ["STANDIN_CONTROL_DIR"])

    if load_model(args, stop):
        serve(Engine(args))
        stop.wait()
        S.log("INFO:     Shutting down")

    # Like SGLang's kill_process_tree, but polite: stubborn workers ignore it and outlive this process.
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    time.sleep(S.env_float("STANDIN_SHUTDOWN_SECONDS", 0.1))
    S.log(f"INFO:     Finished server process [{os.getpid()}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
