"""One engine process (SGLang or vLLM): start, health wait, warmup, crash watch and shutdown, without Modal.

Every wait here is bounded and ends early on a shutdown request or on the engine's death, so a SIGTERM in
any phase (loading, health wait, warmup, serving, the stop itself) ends the container within the grace
period plus about a second, and a death is reported with its exit code and the last lines the engine wrote.
"""

from __future__ import annotations

import ctypes
import os
import re
import select
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

# After the engine exits, how long its last output may take to reach the log (the traceback that explains it).
DRAIN_SECONDS = 0.5
# After SIGKILL, how long stop() waits for the processes to go (one in uninterruptible sleep never does).
KILL_WAIT_SECONDS = 0.5
# Carriage-return progress (tqdm: weight loading, CUDA graph capture): at most one line per this many seconds.
PROGRESS_EVERY = 5.0
# SIGTERM to the container and to the engine's group this close together is one shutdown: it may stop
# first, before our own stop has begun (a container-wide signal, a supervisor stopping both).
TOGETHER_SECONDS = 1.0
# How an engine ends when asked to stop (exit 0 after SIGTERM/SIGINT, or killed by one of them).
STOPPED_EXITS = (0, -signal.SIGTERM, -signal.SIGINT)
# A warmup request that failed may have failed because the engine is dying: how long to wait for its exit.
DEATH_NOTICE_SECONDS = 1.0
# How often waits look at the shutdown request and at the engine's death.
TICK = 0.05
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h


class EngineError(RuntimeError):
    """The engine did not become ready: it died, never turned healthy, failed its warmup, or the start was cancelled."""


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


class Shutdown(threading.Event):
    """The container's stop request: set by the first SIGTERM/SIGINT; `now` is set by the next one.

    The first asks for a graceful stop (SIGTERM, then SIGKILL after the grace); another one during
    that stop asks for SIGKILL at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.now = threading.Event()

    def on_signal(self, *_: object) -> None:
        if self.is_set():
            self.now.set()
        self.set()


class Readiness(NamedTuple):
    """How long the engine may take to turn healthy, how /health is polled, the warmup, the stop grace."""

    health_timeout: float
    poll_interval: float
    max_poll_interval: float
    shutdown_grace: float
    warmup_timeout: float | None = None  # None: no warmup
    warmup_requests: tuple[dict, ...] = ()


class OutputLines:
    """The engine's output as log lines: newline-ended lines as they are, carriage-return progress rate-limited.

    tqdm redraws its bar with "\\r" and ends it with "\\n": split on newlines alone, a weight load shows
    nothing until it is over. Here each redraw is a candidate line, logged as soon as it is drawn when the
    last progress line is `every` seconds old; the bar's final state (before its newline) is always logged.
    """

    def __init__(self, every: float = PROGRESS_EVERY):
        self.every = every
        self.pending = ""  # text after the last line end, not ended yet
        self.after_return = False  # whether `pending` follows a "\r", i.e. is a progress redraw
        self.last_progress = float("-inf")
        self.shown = ""  # the progress text logged last, so that it is not logged twice

    def feed(self, text: str, now: float) -> list[str]:
        """The lines to log now for `text`, the next piece of output."""
        out: list[str] = []
        for part in re.split(r"(\r\n|\n|\r)", self.pending + text):
            if part in ("\r\n", "\n"):
                if not (self.after_return and self.pending == self.shown):
                    out.append(self.pending)
                self.pending, self.after_return, self.shown = "", False, ""
            elif part == "\r":
                out += self._progress(self.pending, now) if self.pending else []
                self.pending, self.after_return = "", True
            else:
                self.pending = part
        return out + self.idle(now)

    def idle(self, now: float) -> list[str]:
        """A progress redraw that is still being shown (nothing followed it yet): log it if its time has come."""
        return self._progress(self.pending, now) if self.after_return and self.pending else []

    def close(self) -> list[str]:
        """What is left when the output ends."""
        left = [] if not self.pending or (self.after_return and self.pending == self.shown) else [self.pending]
        self.pending = ""
        return left

    def _progress(self, text: str, now: float) -> list[str]:
        if text == self.shown or now - self.last_progress < self.every:
            return []
        self.last_progress, self.shown = now, text
        return [text]


def adopt_orphans() -> None:
    """Become the reaper of this process's orphaned descendants (Linux), so that SGLang's workers, which
    it never reaps, can be reaped here instead of staying zombies under a PID 1 that does not reap."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: orphans go to PID 1, and liveness below still ignores zombies


def _group_processes(group: int) -> list[tuple[int, str, int]] | None:
    """(pid, state, parent) of each process in the group, from /proc; None where /proc is not there."""
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    found = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state, parent, pgrp = stat.read().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # gone meanwhile
        if int(pgrp) == group:
            found.append((pid, state, int(parent)))
    return found


def group_alive(group: int) -> bool:
    """Whether a process of the group still runs: a zombie (dead, not yet reaped) does not."""
    processes = _group_processes(group)
    if processes is None:
        return signal_group(group, 0)
    return any(state != "Z" for _, state, _ in processes)


def reap_group(group: int, leader: int) -> None:
    """Reap the group's zombies that were handed to this process (see adopt_orphans); the leader is
    SGLang itself, which subprocess reaps."""
    for pid, state, parent in _group_processes(group) or []:
        if state == "Z" and parent == os.getpid() and pid != leader:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def signal_group(group: int, sig: int) -> bool:
    """Signal a process group; False when no process of it is left."""
    try:
        os.killpg(group, sig)
        return True
    except ProcessLookupError:
        return False


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} ({signal.Signals(-code).name})"
        except ValueError:
            pass
    return f"code {code}"


class Engine:
    """One engine process: start, health wait, warmup, crash watch and shutdown, without Modal."""

    def __init__(
        self,
        cmd: list[str],
        env: dict[str, str],
        port: int,
        model: str,
        api_key: str = "",
        name: str = "SGLang",
        shutdown: Shutdown | None = None,
        progress_every: float = PROGRESS_EVERY,
    ):
        self.name = name  # as the logs call it: "SGLang" or "vLLM"
        self.cmd = cmd
        self.env = env
        self.port = port
        self.model = model
        self.api_key = api_key
        self.shutdown = shutdown or Shutdown()
        self.progress_every = progress_every
        self.redact = redactor(api_key)
        self.log_tail: deque[str] = deque(maxlen=50)
        self.exited = threading.Event()
        self.stopping = False
        self.process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._on_death: Callable[[int], None] | None = None
        self._stop_lock = threading.Lock()
        self._death_lock = threading.Lock()
        self._death_handled = False
        self._exited_at = 0.0

    def start(self) -> None:
        adopt_orphans()
        # A process group of its own, so shutdown reaches every TP worker SGLang forks.
        try:
            self.process = subprocess.Popen(
                self.cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        except FileNotFoundError:
            raise EngineError(
                f"[engine] cannot start {self.name}: no {self.cmd[0]!r} command on PATH "
                f"(is {self.name} installed here?)"
            ) from None
        log(f"[engine] started {self.name} (pid {self.process.pid})")
        self._reader = threading.Thread(target=self._stream_logs, name="sglang-output", daemon=True)
        self._reader.start()
        threading.Thread(target=self._wait_for_exit, name="sglang-exit", daemon=True).start()

    def _stream_logs(self) -> None:
        # os.read returns what the pipe holds now, so a progress redraw is seen when SGLang draws it.
        fd = self.process.stdout.fileno()
        lines = OutputLines(self.progress_every)
        while True:
            readable, _, _ = select.select([fd], [], [], 1.0)
            if not readable:
                self._emit(lines.idle(time.monotonic()))
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self._emit(lines.feed(chunk.decode("utf-8", errors="replace"), time.monotonic()))
        self._emit(lines.close())

    def _emit(self, lines: list[str]) -> None:
        for line in lines:
            line = self.redact(line)
            self.log_tail.append(line)
            log(line)

    def _wait_for_exit(self) -> None:
        # Blocks on the process itself: a death is seen at once, not at the next poll.
        self.process.wait()
        self._exited_at = time.monotonic()
        self.exited.set()
        if self._on_death and not self.stopping:
            self._died()

    def _drain(self) -> None:
        """After the engine's exit: end what is left of its group (workers hold the pipe open), then give its
        output up to DRAIN_SECONDS to reach the log."""
        signal_group(self.process.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(DRAIN_SECONDS)

    def _died(self) -> None:
        with self._death_lock:  # the exit thread and watch() may both get here
            if self._death_handled:
                return
            self._death_handled = True
        # No TP worker may outlive the server: it would hold GPU memory after the container moves on.
        self._drain()
        if not self._asked_to_stop():
            self._on_death(self.process.returncode)

    def _asked_to_stop(self) -> bool:
        """Whether the engine's exit is part of a shutdown: ours began, or the engine stopped as if asked to and our
        own shutdown request follows within TOGETHER_SECONDS."""
        if self.process.returncode in STOPPED_EXITS:
            self.shutdown.wait(max(TOGETHER_SECONDS - (time.monotonic() - self._exited_at), 0))
        return self.stopping or self.shutdown.is_set()

    def death_report(self, when: str) -> str:
        """The exit code and the last lines the engine wrote, once they reached the log."""
        self._drain()
        tail = "\n".join(self.log_tail)
        return f"{self.name} exited with {describe_exit(self.process.returncode)} {when}. Last log lines:\n{tail}"

    def _tail(self) -> str:
        return "\n".join(self.log_tail)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _until_done(self, thread: threading.Thread, when: str) -> None:
        """Wait for `thread`, but raise at once on a shutdown request or the engine's death."""
        while thread.is_alive():
            thread.join(TICK)
            self._check(when)

    def _check(self, when: str) -> None:
        if self.exited.is_set() and not self._asked_to_stop():
            raise EngineError(self.death_report(when))
        if self.shutdown.is_set():
            raise EngineError(f"[engine] start cancelled {when}")

    def _interruptible(self, call: Callable[[], object], when: str) -> object:
        """call() in a daemon thread, raising at once on a shutdown request or the engine's death."""
        result: list[object] = []
        thread = threading.Thread(target=lambda: result.append(call()), name="sglang-request", daemon=True)
        thread.start()
        self._until_done(thread, when)
        return result[0] if result else None

    def _health_status(self, wait: float) -> int | None:
        import requests

        try:
            return requests.get(self.url("/health"), timeout=wait).status_code
        except requests.RequestException:
            return None

    def wait_until_healthy(self, timeout: float, poll: float, max_poll: float) -> float:
        """Poll /health (not /v1/models, which answers before the engine is ready) until it answers 200."""
        started = time.monotonic()
        deadline = started + timeout
        attempt = 0
        while True:
            attempt += 1
            self._check("before it was healthy")
            wait = min(5.0, max(deadline - time.monotonic(), 0.1))
            if self._interruptible(lambda wait=wait: self._health_status(wait), "before it was healthy") == 200:
                elapsed = time.monotonic() - started
                log(f"[health] passed on attempt {attempt} after {elapsed:.1f}s")
                return elapsed
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EngineError(
                    f"[health] timed out after {timeout}s ({attempt} attempts). Last log lines:\n{self._tail()}"
                )
            pause_until = time.monotonic() + min(poll, remaining)
            while time.monotonic() < pause_until:
                self.exited.wait(min(TICK, max(pause_until - time.monotonic(), 0)))
                self._check("before it was healthy")
            poll = min(poll * 2, max_poll)

    def warmup(self, timeout: float, requests: tuple[dict, ...]) -> float:
        """Send every warmup request at once; one that fails fails the start.

        The requests run in daemon threads: a shutdown request or the engine's death ends the warmup at
        once instead of waiting up to `timeout` for each request.
        """
        started = time.monotonic()
        results: dict[str, str] = {}

        def one(request: dict) -> None:
            results[request["name"]] = self._warmup_one(request, timeout)

        threads = [
            threading.Thread(target=one, args=(request,), name=f"warmup-{request['name']}", daemon=True)
            for request in requests
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            self._until_done(thread, "during the warmup")
        failures = [
            f"{request['name']}: {results[request['name']]}" for request in requests if results[request["name"]]
        ]
        elapsed = time.monotonic() - started
        if failures and self.exited.wait(DEATH_NOTICE_SECONDS):
            self._check("during the warmup")  # the requests failed because SGLang died: report the death
        if failures:
            raise EngineError("[warmup] FAILED: " + "; ".join(failures))
        log(f"[warmup] {len(requests)} requests passed in {elapsed:.2f}s")
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
        """Call on_death(exit_code) once the engine died and its last output reached the log, unless we are
        stopping it."""
        self._on_death = on_death
        if self.exited.is_set() and not self.stopping:
            self._died()

    def stop(self, grace: float) -> None:
        """SIGTERM the whole process group, SIGKILL whatever is left after the grace period (at once when
        the shutdown request is repeated). Returns within grace + KILL_WAIT_SECONDS + DRAIN_SECONDS."""
        if self.process is None:
            return
        self.stopping = True
        with self._stop_lock:  # a second stop (another signal) waits for this one, within the same bound
            group = self.process.pid
            if self.exited.is_set() and not group_alive(group):
                return
            signal_group(group, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and not self.shutdown.now.is_set():
                if self.exited.is_set() and not group_alive(group):
                    break
                self.shutdown.now.wait(TICK)
            else:
                reason = "on a second signal" if self.shutdown.now.is_set() else f"still running after {grace}s"
                log(f"[engine] {reason}: SIGKILL")
                signal_group(group, signal.SIGKILL)
                gone_by = time.monotonic() + KILL_WAIT_SECONDS
                while (not self.exited.is_set() or group_alive(group)) and time.monotonic() < gone_by:
                    self.exited.wait(TICK)
            reap_group(group, group)
            if self._reader is not None:
                self._reader.join(DRAIN_SECONDS)
            if self.exited.is_set() and not group_alive(group):
                log(f"[engine] stopped ({describe_exit(self.process.returncode)})")
            else:
                log(f"[engine] SIGKILL sent, but {self.name}'s processes are still there after {KILL_WAIT_SECONDS}s")


def exit_now(code: int) -> None:
    """End this process at once, its output flushed: a cluster rank must not wait for a SIGTERM that Modal
    sends only at scale-in, and `--local` skips the interpreter's teardown, which after importing modal
    would take about half a second of the stop's budget."""
    sys.stdout.flush()
    os._exit(code)


def exit_container(code: int, name: str = "SGLang") -> None:
    log(f"[monitor] FATAL: {name} died ({describe_exit(code)})")
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
    shutdown: Shutdown | None = None,
    on_death: Callable[[int], None] | None = None,
    name: str = "SGLang",
) -> Engine:
    """Start the engine and return only once it is healthy and warmed up; raise EngineError otherwise.

    A set `shutdown` cancels the start (the engine is stopped within its grace). From then on a death
    of the engine calls on_death (by default: the container exits at once) once its last output is logged.
    """
    engine = Engine(cmd, env, port, model, api_key, name, shutdown)
    engine.start()
    try:
        engine.wait_until_healthy(readiness.health_timeout, readiness.poll_interval, readiness.max_poll_interval)
        if readiness.warmup_timeout is not None:
            engine.warmup(readiness.warmup_timeout, readiness.warmup_requests)
    except BaseException:
        engine.stop(readiness.shutdown_grace)
        raise
    engine.watch(on_death or (lambda code: exit_container(code, name)))
    return engine
