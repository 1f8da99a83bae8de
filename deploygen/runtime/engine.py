"""One engine process (SGLang or vLLM): start, health wait, warmup, crash watch and shutdown, without Modal."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from deploygen.runtime.caches import jit_cache_env
from deploygen.runtime.request_paths import check_answer, request_body


class EngineError(RuntimeError):
    """SGLang did not become ready: it died, never turned healthy, or failed its warmup."""


_LOG_LOCK = threading.Lock()
_LOG_PREFIX = ""


def set_log_prefix(prefix: str) -> None:
    """Start every line with it: a cluster's ranks mark their lines, which `modal app logs` interleaves."""
    global _LOG_PREFIX
    _LOG_PREFIX = prefix


def log(line: str) -> None:
    """One write per line under a lock: engine output, health and warmup threads never interleave."""
    with _LOG_LOCK:
        sys.stdout.write("".join(f"{_LOG_PREFIX}{part}\n" for part in line.split("\n")))
        sys.stdout.flush()


def redactor(secret: str) -> Callable[[str], str]:
    """Hide the API key in log lines: SGLang prints its server args, api_key included, at start."""
    pattern = re.compile(r"(api_key=)(['\"])(?:(?!\2).)*\2")

    def redact(line: str) -> str:
        if secret:
            line = line.replace(secret, "***")
        return pattern.sub(r"\1\2***\2", line)

    return redact


class Readiness(NamedTuple):
    """How long SGLang may take to turn healthy, how /health is polled, the warmup, the stop grace."""

    health_timeout: float
    poll_interval: float
    max_poll_interval: float
    shutdown_grace: float
    warmup_timeout: float | None = None  # None: no warmup
    warmup_requests: tuple[dict, ...] = ()


class Engine:
    """One engine process: start, health wait, warmup, crash watch and shutdown, without Modal."""

    def __init__(
        self, cmd: list[str], env: dict[str, str], port: int, model: str, api_key: str = "", name: str = "SGLang"
    ):
        self.name = name  # as the logs call it: "SGLang" or "vLLM"
        self.cmd = cmd
        self.env = env
        self.port = port
        self.model = model
        self.api_key = api_key
        self.redact = redactor(api_key)
        self.log_tail: deque[str] = deque(maxlen=50)
        self.exited = threading.Event()
        self.stopping = False
        self.process: subprocess.Popen | None = None
        self._on_death: Callable[[int], None] | None = None

    def start(self) -> None:
        # A process group of its own, so shutdown reaches every TP worker SGLang forks.
        self.process = subprocess.Popen(
            self.cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log(f"[engine] started {self.name} (pid {self.process.pid})")
        threading.Thread(target=self._stream_logs, daemon=True).start()
        threading.Thread(target=self._wait_for_exit, daemon=True).start()

    def _stream_logs(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            line = self.redact(raw.decode("utf-8", errors="replace").rstrip("\n"))
            self.log_tail.append(line)
            log(line)

    def _wait_for_exit(self) -> None:
        # Blocks on the process itself: a death is seen at once, not at the next poll.
        self.process.wait()
        self.exited.set()
        if self._on_death and not self.stopping:
            self._died()

    def _died(self) -> None:
        # No TP worker may outlive the server: it would hold GPU memory after the container moves on.
        signal_group(self.process.pid, signal.SIGKILL)
        self._on_death(self.process.returncode)

    def _tail(self) -> str:
        time.sleep(0.1)  # let the log thread catch the last lines the process wrote
        return "\n".join(self.log_tail)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_until_healthy(
        self, timeout: float, poll: float, max_poll: float, cancel: threading.Event | None = None
    ) -> float:
        """Poll /health (not /v1/models, which answers before the engine is ready) until it answers 200."""
        import requests

        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            if cancel is not None and cancel.is_set():
                raise EngineError("[engine] start cancelled")
            if self.exited.is_set():
                code = self.process.returncode
                tail = self._tail()
                raise EngineError(f"{self.name} exited with code {code} before it was healthy. Last log lines:\n{tail}")
            try:
                wait = min(5.0, max(timeout - (time.monotonic() - started), 0.1))
                if requests.get(self.url("/health"), timeout=wait).status_code == 200:
                    elapsed = time.monotonic() - started
                    log(f"[health] passed on attempt {attempt} after {elapsed:.1f}s")
                    return elapsed
            except requests.RequestException:
                pass
            remaining = timeout - (time.monotonic() - started)
            if remaining <= 0:
                raise EngineError(
                    f"[health] timed out after {timeout}s ({attempt} attempts). Last log lines:\n{self._tail()}"
                )
            self.exited.wait(min(poll, remaining))
            poll = min(poll * 2, max_poll)

    def warmup(self, timeout: float, requests: tuple[dict, ...]) -> float:
        """Send every warmup request at once; one that fails fails the start."""
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(requests), 1)) as pool:
            futures = {request["name"]: pool.submit(self._warmup_one, request, timeout) for request in requests}
            failures = [f"{name}: {future.result()}" for name, future in futures.items() if future.result()]
        elapsed = time.monotonic() - started
        if failures:
            raise EngineError("[warmup] FAILED: " + "; ".join(failures))
        log(f"[warmup] {len(futures)} requests passed in {elapsed:.2f}s")
        return elapsed

    def _warmup_one(self, request: dict, timeout: float) -> str:
        import requests

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        started = time.monotonic()
        try:
            body = request_body(request, self.model)
            response = requests.post(self.url(request["route"]), json=body, headers=headers, timeout=timeout)
        except requests.RequestException as exc:
            return f"request failed: {type(exc).__name__}"
        if response.status_code != 200:
            return f"HTTP {response.status_code}: {self.redact(response.text[:200])}"
        try:
            answer = response.json()
        except ValueError:
            return "response is not JSON"
        problem = check_answer(request, answer)
        if not problem:
            log(f"[warmup] {request['name']} ok in {time.monotonic() - started:.2f}s")
        return problem

    def watch(self, on_death: Callable[[int], None]) -> None:
        """Call on_death(exit_code) the moment the engine dies, unless we are stopping it."""
        self._on_death = on_death
        if self.exited.is_set() and not self.stopping:
            self._died()

    def stop(self, grace: float) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after the grace period."""
        if self.process is None:
            return
        self.stopping = True
        group = self.process.pid
        if not signal_group(group, signal.SIGTERM):
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            self.exited.wait(0.05)
            if self.exited.is_set() and not signal_group(group, 0):
                log(f"[engine] stopped (code {self.process.returncode})")
                return
        log(f"[engine] still running after {grace}s: SIGKILL")
        signal_group(group, signal.SIGKILL)
        self.process.wait()


def signal_group(group: int, sig: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False


def exit_container(code: int, name: str = "SGLang") -> None:
    log(f"[monitor] FATAL: {name} died (code {code})")
    # os._exit, not sys.exit: no cleanup handler may hang on a GPU in an error state.
    os._exit(1)


def engine_env(profile_env: dict[str, str], cache_dir: str) -> dict[str, str]:
    """The environment SGLang runs in: the profile's variables, the JIT caches, no Hub access."""
    # Serving reads weights only from the volume: no hub fetch at runtime.
    return {**os.environ, **profile_env, **jit_cache_env(cache_dir), "HF_HUB_OFFLINE": "1"}


def start_engine(
    cmd: list[str],
    env: dict[str, str],
    port: int,
    model: str,
    api_key: str,
    readiness: Readiness,
    cancel: threading.Event | None = None,
    on_death: Callable[[int], None] | None = None,
    name: str = "SGLang",
) -> Engine:
    """Start the engine and return only once it is healthy and warmed up; raise EngineError otherwise.

    From then on a death of the engine calls on_death (by default: the container exits at once).
    """
    engine = Engine(cmd, env, port, model, api_key, name)
    engine.start()
    try:
        engine.wait_until_healthy(
            readiness.health_timeout, readiness.poll_interval, readiness.max_poll_interval, cancel
        )
        if readiness.warmup_timeout is not None:
            engine.warmup(readiness.warmup_timeout, readiness.warmup_requests)
    except BaseException:
        engine.stop(readiness.shutdown_grace)
        raise
    engine.watch(on_death or (lambda code: exit_container(code, name)))
    return engine
