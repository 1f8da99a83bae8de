"""Stand-in for `python3 -m sglang.launch_server`: parses, logs, loads, serves and fails like SGLang, without a GPU.

Lifecycle: parse the flags from the catalog (exit 2 on a bad one) -> log server_args=ServerArgs(...) -> spawn this
node's TP worker processes -> with --nnodes > 1, the rendezvous on --dist-init-addr (sglang/_rendezvous.py) -> "load"
for STANDIN_LOAD_SECONDS with tqdm's carriage-return progress -> listen on --host/--port (node 0: the API; other
nodes: SGLang's health-only server) -> /health 503 for STANDIN_WARMUP_SECONDS, then 200 -> on SIGTERM/SIGINT, as
uvicorn does, wait for the requests in flight, then exit 0 after STANDIN_SHUTDOWN_SECONDS.
The STANDIN_* variables are listed in sglang/__init__.py.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import resource
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
from sglang._rendezvous import Cluster

# Without --context-length SGLang takes the model config's limit; the stand-in has no model config.
DEFAULT_CONTEXT_LENGTH = 131072
CHARS_PER_TOKEN = 4
ANSWER = "The stand-in server answers with these words, repeated as often as the reply needs."
REASONING = "The user asked a question; a short fixed answer will do."
HISTOGRAM_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# A TP worker: SGLang's scheduler processes stay in the launcher's process group. A stubborn one ignores
# every polite signal (only SIGKILL ends it); a normal one dies on SIGTERM or when its parent is gone. Each
# reports ready on a pipe once its signals are set, as SGLang's schedulers do before the server goes on.
WORKER_CODE = """
import os, signal, sys, time
if sys.argv[2] == "1":
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
else:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
parent = os.getppid()
os.write(int(sys.argv[3]), b"r")
os.close(int(sys.argv[3]))
while sys.argv[2] == "1" or os.getppid() == parent:
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
    """What the request threads, the signal handler and main share: args, phase, requests in flight, metrics."""

    def __init__(self, args: dict):
        self.args = args
        self.model_name = args["served_model_name"]
        self.context_length = args.get("context_length") or DEFAULT_CONTEXT_LENGTH
        self.ready_at = float("inf")  # set when the port listens
        self.metrics = Metrics(self.model_name)
        self.token_delay = S.env_float("STANDIN_TOKEN_DELAY", 0.002)
        self.max_tokens = S.env_int("STANDIN_MAX_TOKENS", 16)
        self.thinking = S.thinking_mode()
        self.shutdown_seconds = S.per_phase("STANDIN_SHUTDOWN_SECONDS", 0.1)
        self.listening = False
        self.stop = threading.Event()  # a SIGTERM/SIGINT was honoured
        self.force = threading.Event()  # a second one: stop waiting for requests in flight (uvicorn's force quit)
        self.stopped_in: str | None = None  # the phase the honoured signal arrived in
        self.in_flight = 0
        self.idle = threading.Condition()

    def phase(self) -> str:
        if not self.listening:
            return "loading"
        return "serving" if time.monotonic() >= self.ready_at else "starting"

    def on_signal(self, *_) -> None:
        phase = self.phase()
        if math.isinf(self.shutdown_seconds[phase]):
            return  # this phase ignores SIGTERM/SIGINT: only SIGKILL ends the process
        if self.stop.is_set():
            self.force.set()
        else:
            self.stopped_in = phase
            self.stop.set()

    @contextlib.contextmanager
    def request(self):
        """Count a request in flight for the length of a with-block (uvicorn waits for them when it stops)."""
        with self.idle:
            self.in_flight += 1
        try:
            yield
        finally:
            with self.idle:
                self.in_flight -= 1
                self.idle.notify_all()

    def wait_for_requests(self) -> None:
        with self.idle:
            if self.in_flight:
                S.log("INFO:     Waiting for connections to close. (CTRL+C to force quit)")
            while self.in_flight and not self.force.is_set():
                self.idle.wait(0.05)

    def healthy(self) -> bool:
        return S.fault() != "never-healthy" and time.monotonic() >= self.ready_at

    def thinks(self, body: dict) -> bool:
        """Whether the chat template opens a thinking block: the model's default, or enable_thinking when given."""
        wanted = (body.get("chat_template_kwargs") or {}).get("enable_thinking")
        if self.thinking == "never":
            return False
        return wanted is not False if self.thinking == "on" else wanted is True

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
        if self.args.get("is_embedding"):
            message = "This model was launched with --is-embedding: it serves /v1/embeddings, not generation."
            raise RequestError(400, message, "Bad Request")
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
        thinking = self.thinks(body)
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

    def embed(self, body: object) -> dict:
        """An OpenAI embeddings response: one unit vector per input, derived from the input's text."""
        if not self.args.get("is_embedding"):
            raise RequestError(
                400,
                "This model does not appear to be an embedding model by default. "
                "Please add `--is-embedding` when launching the server or try another model.",
                "BadRequestError",
            )
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str) or (isinstance(inputs, list) and inputs and isinstance(inputs[0], int)):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            message = "input: Field required (a string, a list of strings or of token ids)"
            raise RequestError(400, message, "Bad Request")
        dimension = S.env_int("STANDIN_EMBEDDING_DIM", 16)
        data, prompt_tokens = [], 0
        for index, item in enumerate(inputs):
            text = json.dumps(item)
            prompt_tokens += max(1, len(text) // CHARS_PER_TOKEN)
            digest = hashlib.sha256(text.encode()).digest() * (dimension // 32 + 1)
            vector = [byte - 127.5 for byte in digest[:dimension]]
            norm = math.sqrt(sum(v * v for v in vector)) or 1.0
            data.append({"object": "embedding", "embedding": [v / norm for v in vector], "index": index})
        if prompt_tokens >= self.context_length:
            raise RequestError(
                400,
                f"The input ({prompt_tokens} tokens) is longer than the model's context length "
                f"({self.context_length} tokens).",
                "BadRequestError",
            )
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens, "completion_tokens": 0}
        return {"data": data, "model": body.get("model") or self.model_name, "object": "list", "usage": usage}


def model_work(engine: Engine, raw_body: bytes) -> None:
    """What every request that reaches the model goes through: the scheduler's log line, latency, the warmup crash."""
    S.log(
        f"Prefill batch. #new-seq: 1, #new-token: {max(1, len(raw_body) // CHARS_PER_TOKEN)}, #cached-token: 0, "
        f"token usage: 0.00, #running-req: {engine.in_flight - 1}, #queue-req: 0",
        " TP0",
    )
    if S.fault() == "crash-during-warmup":  # the first request the model sees kills it (a bad kernel, say)
        lines = batch_crash_lines("CUDA error: an illegal memory access was encountered")
        S.crash(lines, S.env_int("STANDIN_EXIT_CODE", 1))
    time.sleep(S.env_float("STANDIN_REQUEST_DELAY", 0.0))


def batch_crash_lines(error: str) -> list[str]:
    """The traceback of a scheduler that failed in a forward batch, ending with `RuntimeError: <error>`."""
    runner = f"{S.SGLANG_DIR}/srt/model_executor/model_runner.py"
    return [
        f'  File "{S.SCHEDULER_FILE}", line 2940, in run_scheduler_process',
        "    scheduler.event_loop_overlap()",
        f'  File "{S.SCHEDULER_FILE}", line 1012, in event_loop_overlap',
        "    batch_result = self.run_batch(batch)",
        f'  File "{S.SCHEDULER_FILE}", line 2115, in run_batch',
        "    batch_result = self.model_worker.forward_batch_generation(model_worker_batch)",
        f'  File "{S.SGLANG_DIR}/srt/managers/tp_worker.py", line 371, in forward_batch_generation',
        "    logits_output, can_run_cuda_graph = self.model_runner.forward(forward_batch)",
        f'  File "{runner}", line 2212, in forward',
        "    output = self._forward_raw(forward_batch, skip_attn_backend_init, pp_proxy_tensors)",
        f'  File "{runner}", line 2263, in _forward_raw',
        "    ret = self.cuda_graph_runner.replay(forward_batch, skip_attn_backend_init, pp_proxy_tensors)",
        f'  File "{S.SGLANG_DIR}/srt/model_executor/cuda_graph_runner.py", line 874, in replay',
        "    self.graphs[self.bs].replay()",
        f"RuntimeError: {error}",
    ]


# --- HTTP ------------------------------------------------------------------------------------------


def dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def modal_proxy_refusal(headers) -> str | None:
    """What Modal's proxy answers (401, text/plain) before a request reaches a container behind proxy auth,
    with STANDIN_MODAL_PROXY_AUTH=KEY:SECRET; None when the request passes. Its texts: "missing credentials"
    (https://modal.com/docs/guide/webhook-proxy-auth), "invalid credentials" for a token it does not know."""
    expected = os.environ.get("STANDIN_MODAL_PROXY_AUTH", "")
    if not expected:
        return None
    key, secret = headers.get("Modal-Key"), headers.get("Modal-Secret")
    if not key or not secret:
        return "modal-http: missing credentials for proxy authorization"
    if f"{key}:{secret}" != expected:
        return "modal-http: invalid credentials for proxy authorization"
    return None


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
        refused = modal_proxy_refusal(self.headers)
        if refused:
            return self.send_bytes(401, refused.encode(), "text/plain; charset=utf-8")
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
            "/v1/embeddings": ("POST", lambda: self.embeddings(raw_body)),
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

    def embeddings(self, raw_body: bytes) -> None:
        with self.engine.request():
            model_work(self.engine, raw_body)
            try:
                self.send_json(200, self.engine.embed(json.loads(raw_body or b"null")))
            except json.JSONDecodeError as e:
                self.send_json(400, RequestError(400, f"JSON decode error: {e}", "Bad Request").body)
            except RequestError as e:
                self.send_json(e.status, e.body)

    def chat(self, raw_body: bytes) -> None:
        with self.engine.request():
            model_work(self.engine, raw_body)
            self.answer_chat(raw_body)

    def answer_chat(self, raw_body: bytes) -> None:
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


def spawn_workers(ranks: range) -> list[subprocess.Popen]:
    """This node's TP workers, each started and ready (its signal handling set) when this returns."""
    stubborn = "1" if os.environ.get("STANDIN_STUBBORN_WORKERS") == "1" else "0"
    ready_read, ready_write = os.pipe()
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER_CODE, f"sglang::scheduler_TP{rank}", stubborn, str(ready_write)],
            stdin=subprocess.DEVNULL,
            pass_fds=(ready_write,),
        )
        for rank in ranks
    ]
    os.close(ready_write)
    with os.fdopen(ready_read, "rb") as ready:
        ready.read(len(workers))  # one byte each; short only if a worker died first
    return workers


def write_pid_file(workers: list[subprocess.Popen]) -> None:
    path = os.environ.get("STANDIN_PID_FILE")
    if path:
        tmp = f"{path}.tmp"  # renamed into place so a reader never sees half the list
        Path(tmp).write_text("".join(f"{pid}\n" for pid in [os.getpid(), *(w.pid for w in workers)]))
        os.replace(tmp, path)


def watch_control_dir(directory: str) -> None:
    """Crash with the code written in <dir>/crash as soon as that file appears (write it atomically)."""
    crash_file = Path(directory) / "crash"

    def watch() -> None:
        while not crash_file.exists():
            time.sleep(0.05)
        text = crash_file.read_text().strip()
        code = int(text) if text.lstrip("-").isdigit() else 1
        S.crash(batch_crash_lines("CUDA error: an illegal memory access was encountered"), code)

    threading.Thread(target=watch, name="standin-control", daemon=True).start()


def duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"


def show_progress(seconds: float, shards: int, stop: threading.Event) -> bool:
    """tqdm's progress bar as SGLang's loader shows it: one carriage-return update per shard, a newline at the end.

    A reader that splits on newlines alone sees nothing until the load is over. False when SIGTERM arrived.
    """
    started = time.monotonic()
    for done in range(shards + 1):
        if done and stop.wait(seconds / shards):
            return False
        elapsed = time.monotonic() - started
        rate = f"{done / elapsed:5.2f}it/s" if done else "?it/s"
        remaining = duration(elapsed / done * (shards - done)) if done else "?"
        sys.stderr.write(
            f"\rLoading safetensors checkpoint shards: {100 * done // shards:3d}% Completed | {done}/{shards} "
            f"[{duration(elapsed)}<{remaining}, {rate}]"
        )
        sys.stderr.flush()
    sys.stderr.write("\n")
    sys.stderr.flush()
    return True


def load_model(args: dict, ranks: range, stop: threading.Event) -> bool:
    """Log and wait like weight loading; False when SIGTERM arrived meanwhile."""
    for rank in ranks:
        S.log("Load weight begin. avail mem=78.50 GB", f" TP{rank}")
    if not show_progress(S.env_float("STANDIN_LOAD_SECONDS", 0.5), S.env_int("STANDIN_SHARDS", 4), stop):
        return False
    if S.fault() == "crash-during-load":
        S.crash(
            [
                *S.scheduler_frames(),
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity "
                "of 79.19 GiB of which 1.06 GiB is free.",
            ],
            S.env_int("STANDIN_EXIT_CODE", 1),
            f" TP{ranks[0]}",
        )
    for rank in ranks:
        S.log(
            "Load weight end. type=StandInForCausalLM, dtype=torch.bfloat16, avail mem=12.30 GB, mem usage=66.20 GB.",
            f" TP{rank}",
        )
    S.log(
        f"max_total_num_tokens={args.get('max_total_tokens') or 1048576}, "
        f"max_prefill_tokens={args.get('max_prefill_tokens')}, "
        f"max_running_requests={args.get('max_running_requests')}, "
        f"context_len={args.get('context_length') or DEFAULT_CONTEXT_LENGTH}",
        f" TP{ranks[0]}",
    )
    return True


class HealthOnlyHandler(Handler):
    """What SGLang's nodes of rank > 0 serve (launch_dummy_health_check_server): health, nothing else."""

    def route(self, method: str) -> None:
        if urlsplit(self.path).path in ("/health", "/health_generate", "/ping") and method == "GET":
            return self.send_bytes(200, b"", "text/plain")
        self.send_json(404, {"detail": "Not Found"})

    def log_request(self, code="-", size="-") -> None:
        pass  # SGLang starts it with log_level="warning": no access log


def listen(engine: Engine, handler: type[Handler]) -> ThreadingHTTPServer | None:
    """Bind --host/--port as uvicorn does; None (after uvicorn's error line) when the address is taken."""
    host, port = engine.args["host"], engine.args["port"]
    try:
        server = ThreadingHTTPServer((host, port), handler)
    except OSError as e:
        reason = e.strerror.lower()
        S.log(f"ERROR:    [Errno {e.errno}] error while attempting to bind on address ({host!r}, {port}): {reason}")
        return None
    server.daemon_threads = True
    server.engine = engine
    threading.Thread(target=server.serve_forever, name="standin-http", daemon=True).start()
    return server


def serve(engine: Engine) -> bool:
    server = listen(engine, Handler)
    if server is None:
        return False
    host, port = engine.args["host"], engine.args["port"]
    S.log(f"INFO:     Started server process [{os.getpid()}]")
    S.log("INFO:     Waiting for application startup.")
    S.log("INFO:     Application startup complete.")
    S.log(f"INFO:     Uvicorn running on http://{host}:{port} (Press CTRL+C to quit)")
    warmup = S.env_float("STANDIN_WARMUP_SECONDS", 0.2)
    engine.ready_at = time.monotonic() + warmup
    engine.listening = True
    if S.fault() != "never-healthy":
        announce = threading.Timer(warmup, S.log, ["The server is fired up and ready to roll!"])
        announce.daemon = True  # a SIGTERM during warmup must not wait for it
        announce.start()
    return True


def serve_health_only(engine: Engine) -> bool:
    if listen(engine, HealthOnlyHandler) is None:
        return False
    engine.ready_at = time.monotonic()
    engine.listening = True
    return True


def abort_on_peer_loss(engine: Engine, tp_rank: int):
    """NCCL's watchdog: a vanished peer aborts this process (SIGABRT) after STANDIN_PEER_LOSS_SECONDS (inf: never)."""

    def lost(peer: str) -> None:
        delay = S.env_float("STANDIN_PEER_LOSS_SECONDS", 0.0)
        if engine.stop.wait(delay) or math.isinf(delay):
            return  # stopping anyway, or a collective that hangs instead of failing
        stamp = f"[rank{tp_rank}]:[E{time.strftime('%m%d %H:%M:%S')}.000000000 ProcessGroupNCCL.cpp"
        S.log_raw(
            f"{stamp}:1895] [PG ID 0 PG GUID 0(default_pg) Rank {tp_rank}] Process group watchdog thread terminated "
            "with exception: NCCL error: remote process exited or there was a network error, NCCL version 2.27.3\n"
            "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.\n"
            f"Last error:\nsocketProgress: Connection closed by remote peer {peer}"
        )
        S.log_raw(f"{stamp}:695] [Rank {tp_rank}] To avoid data inconsistency, we are taking the entire process down.")
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # abort() without a core file in the test's directory
        os.abort()

    return lost


def main(argv: list[str] | None = None) -> int:
    catalog = S.load_catalog(S.requested_version())
    namespace = S.launch_server_parser(catalog).parse_args(argv)
    args = S.server_args(namespace, catalog)
    S.log(f"server_args={S.server_args_repr(args)}")

    engine = Engine(args)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, engine.on_signal)
    # Each node runs its share of the TP ranks: node R has ranks R*k .. R*k+k-1, k = tp_size / nnodes.
    per_node = max(args["tp_size"] // args["nnodes"], 1)
    ranks = range(args["node_rank"] * per_node, (args["node_rank"] + 1) * per_node)
    workers = spawn_workers(ranks[1:])
    write_pid_file(workers)
    if os.environ.get("STANDIN_CONTROL_DIR"):
        watch_control_dir(os.environ["STANDIN_CONTROL_DIR"])

    code = 0
    cluster = Cluster(args, ranks[0]) if args["nnodes"] > 1 else None
    if (cluster is None or cluster.join(engine.stop)) and load_model(args, ranks, engine.stop):
        if cluster:
            cluster.watch(abort_on_peer_loss(engine, ranks[0]))
        listening = serve(engine) if args["node_rank"] == 0 else serve_health_only(engine)
        if listening:
            engine.stop.wait()
            S.log("INFO:     Shutting down")
            engine.wait_for_requests()
            S.log("INFO:     Waiting for application shutdown.")
            S.log("INFO:     Application shutdown complete.")
        else:
            code = 1

    # Like SGLang's kill_process_tree, but polite: stubborn workers ignore it and outlive this process. Like it
    # too, nothing waits for them: the ones that exit stay zombies until this process is gone, then orphans.
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    time.sleep(engine.shutdown_seconds[engine.stopped_in or "loading"] if code == 0 else 0)
    S.log(f"INFO:     Finished server process [{os.getpid()}]")
    return code


if __name__ == "__main__":
    sys.exit(main())
