"""This lifecycle (generated/b200-prod/deploy.py --local) next to the guide's, both against the stand-in SGLang.

The guide's Server lifecycle (serve, _wait_for_health, _warmup, _monitor_process, shutdown) is re-implemented
below as GUIDE_SCRIPT and run as its own process, with the same stand-in command line and the same four warmup
payloads as the rendered file. Every timestamp is time.monotonic() (system-wide on Linux), taken in this process:
an output line is stamped when this process reads it, /health turning 200 by a 10 ms poller of its own.

Measured, median of several runs: /health 200 -> health noticed, warmup wall time against its slowest request,
engine death -> process exit, SIGTERM -> process exit and engine processes left alive afterwards. Targets for
this lifecycle are printed as PASS/FAIL; they report, they do not gate: the exit code is 0 unless a run breaks.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "generated" / "b200-prod" / "deploy.py"
STANDIN = ROOT / "tests" / "standin"
API_KEY = "sk-bench-lifecycle-0123456789"

RUNS = 3  # per measurement and per side; startup numbers come from every run of a side (2 * RUNS)
GUIDE_HEALTH_INTERVAL = 5.0  # the guide does not show _wait_for_health's interval
OURS_GRACE = 1.0  # --shutdown-grace of the shutdown runs
POLL_EVERY = 0.01  # this benchmark's own /health poller
SETTLE = 1.0  # how long engine processes get to disappear after the lifecycle exits
STANDIN_KNOBS = {
    "STANDIN_LOAD_SECONDS": "0.3",
    "STANDIN_WARMUP_SECONDS": "0.2",
    "STANDIN_REQUEST_DELAY": "0.3",
    "STANDIN_SHUTDOWN_SECONDS": "0.1",
}
# SIGTERM in each phase, with the engine ignoring SIGTERM there (only the SIGKILL after the grace ends it):
# the stand-in's knobs that hold it in the phase and make it deaf, and the line that says it got there.
PHASES = {
    "loading": ({"STANDIN_LOAD_SECONDS": "60", "STANDIN_SHUTDOWN_SECONDS": "0.1,loading:inf"}, "Load weight begin"),
    "health wait": (
        {"STANDIN_WARMUP_SECONDS": "60", "STANDIN_SHUTDOWN_SECONDS": "0.1,starting:inf"},
        "Uvicorn running on",
    ),
    # uvicorn waits for the warmup requests in flight, so SGLang does not exit while they run.
    "warmup": ({"STANDIN_REQUEST_DELAY": "60"}, "Prefill batch."),
    "serving": ({"STANDIN_SHUTDOWN_SECONDS": "0.1,serving:inf"}, "[local] ready on"),
    # A second SIGTERM while the first one's stop waits out a long grace.
    "stop": ({"STANDIN_SHUTDOWN_SECONDS": "0.1,serving:inf"}, "[local] ready on"),
}
STOP_PHASE_GRACE = 30.0  # --shutdown-grace of the "stop" runs: the second SIGTERM must not wait for it
TARGET_HEALTH = 0.3
TARGET_CRASH = 0.5
TARGET_WARMUP_RATIO = 1.2

WARMUP_ONE = re.compile(r"\[warmup\] (\S+) ok in ([0-9.]+)s")
WARMUP_ALL = re.compile(r"\[warmup\] (\d+) requests passed in ([0-9.]+)s")

GUIDE_SCRIPT = r'''
"""The guide's Server lifecycle without Modal: its code, with only the lines marked `# bench` added.

argv[1]: a JSON file with the SGLang command line, the port, the four warmup payloads and the /health interval.
SIGTERM plays Modal's container shutdown: it runs shutdown() (the @modal.exit hook), then the process ends.
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import requests

CONFIG = json.loads(open(sys.argv[1]).read())
PORT = CONFIG["port"]


def _build_sglang_cmd(api_key=""):
    return CONFIG["cmd"]  # the rendered file's command line, --api-key included


def _stream_subprocess_logs(stream):
    for line in iter(stream.readline, ""):
        sys.stdout.write(line)
        sys.stdout.flush()


def _wait_for_health(port, timeout):
    # Not shown in the guide: a plain poll of /health at a fixed interval.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200:
                return True
        except requests.RequestException:
            pass
        time.sleep(CONFIG["health_interval"])
    return False


def _warmup(port, api_key=""):
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    url = f"http://127.0.0.1:{port}/v1/chat/completions"

    payloads = CONFIG["payloads"]  # name -> payload, "model" included
    started = time.monotonic()  # bench
    for i, (name, payload) in enumerate(payloads.items()):
        sent = time.monotonic()  # bench
        r = requests.post(url, headers=headers, json=payload, timeout=300)
        # validates 200 + non-empty assistant message / tool_calls / reasoning_content
        message = r.json()["choices"][0]["message"] if r.status_code == 200 else {}
        if not (message.get("content") or message.get("reasoning_content") or message.get("tool_calls")):
            raise RuntimeError(f"warmup {name} failed: HTTP {r.status_code}")
        print(f"[warmup] {name} ok in {time.monotonic() - sent:.2f}s", flush=True)  # bench
    print(f"[warmup] {len(payloads)} requests passed in {time.monotonic() - started:.2f}s", flush=True)  # bench


class Server:
    process = None
    _startup_complete = False

    def serve(self):
        api_key = os.environ.get("API_KEY", "")
        self.process = subprocess.Popen(
            _build_sglang_cmd(api_key),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        threading.Thread(target=_stream_subprocess_logs, args=(self.process.stdout,), daemon=True).start()
        if not _wait_for_health(PORT, timeout=900):
            raise TimeoutError("SGLang startup timeout")
        print("[health] passed", flush=True)  # bench
        _warmup(PORT, api_key)
        self._startup_complete = True
        threading.Thread(target=self._monitor_process, daemon=True).start()

    def shutdown(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def _monitor_process(self):
        while True:
            time.sleep(10)
            if not self._startup_complete:
                continue
            if self.process is not None and self.process.poll() is not None:
                print(f"[monitor] FATAL: SGLang died (code {self.process.returncode})")
                time.sleep(1)
                os._exit(1)  # force Modal to recycle the container


stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
server = Server()
server.serve()
print("[guide] ready", flush=True)  # bench
stop.wait()
server.shutdown()  # @modal.exit
print("[guide] stopped", flush=True)  # bench
'''


class BenchError(RuntimeError):
    """A run itself broke: a line never came, an exit code was wrong, a process would not die."""


def load_deploy():
    spec = importlib.util.spec_from_file_location("deploy_b200_prod_bench", DEPLOY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def is_engine(pid: int) -> bool:
    """A live stand-in process (server or TP worker), so a PID reused since the PID file was written is spared."""
    try:
        return b"sglang" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def background(target) -> None:
    """A daemon thread that never receives SIGINT/SIGTERM.

    Linux hands a process signal to any thread; one caught by a helper thread leaves the main thread asleep in
    its wait (CPython only runs handlers there), so Ctrl-C or SIGTERM could be acted on late or never. With the
    signals blocked here they reach the main thread, interrupt its wait and unwind through the cleanup.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        threading.Thread(target=target, daemon=True).start()  # a new thread starts with this thread's mask
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class HealthPoller:
    """GET /health every 10 ms until it first answers 200; `at` is when that answer was read."""

    def __init__(self, port: int):
        self.port = port
        self.at: float | None = None
        self.stop = threading.Event()
        self.found = threading.Event()
        background(self._poll)

    def _poll(self) -> None:
        next_at = time.monotonic()
        while not self.stop.is_set():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
            try:
                conn.request("GET", "/health")
                status = conn.getresponse().status
                now = time.monotonic()
                if status == 200:
                    self.at = now
                    self.found.set()
                    return
            except (OSError, http.client.HTTPException):
                pass
            finally:
                conn.close()
            next_at += POLL_EVERY
            self.stop.wait(max(0.0, next_at - time.monotonic()))


class Run:
    """One lifecycle process (ours or the guide's) in a process group of its own, its output stamped line by line."""

    def __init__(
        self,
        side: str,
        label: str,
        workdir: Path,
        deploy,
        runs: list[Run],
        stubborn: bool = False,
        knobs: dict[str, str] | None = None,
        grace: float | None = None,
    ):
        self.side = side
        self.label = label
        self.dir = Path(tempfile.mkdtemp(prefix=f"{side}-", dir=workdir))
        self.control = self.dir / "control"
        self.control.mkdir()
        self.pid_file = self.dir / "pids"
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
        env.update(
            PYTHONPATH=str(STANDIN),
            # The stand-in's `sglang` script (`sglang serve`) comes first.
            PATH=f"{STANDIN / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            PYTHONUNBUFFERED="1",
            API_KEY=API_KEY,
            STANDIN_CONTROL_DIR=str(self.control),
            STANDIN_PID_FILE=str(self.pid_file),
            STANDIN_STUBBORN_WORKERS="1" if stubborn else "0",
        )
        env.update({**STANDIN_KNOBS, **(knobs or {})})
        model_path = str(self.dir / "no-weights-here")
        if side == "ours":
            grace = grace or (OURS_GRACE if stubborn else 5.0)
            cmd = [sys.executable, str(DEPLOY), "--local", "--port", str(self.port),
                   "--cache-dir", str(self.dir / "cache"), "--model-path", model_path,
                   "--health-timeout", "30", "--shutdown-grace", str(grace)]  # fmt: skip
        else:
            sglang_cmd = deploy._build_sglang_cmd(API_KEY, port=self.port)
            sglang_cmd[sglang_cmd.index("--model-path") + 1] = model_path  # as run_local does
            config = self.dir / "guide.json"
            payloads = {
                request["name"]: deploy.request_body(request, deploy.MODEL_NAME) for request in deploy.WARMUP_REQUESTS
            }
            config.write_text(
                json.dumps(
                    {
                        "cmd": sglang_cmd,
                        "port": self.port,
                        "payloads": payloads,
                        "health_interval": GUIDE_HEALTH_INTERVAL,
                    }
                )
            )
            cmd = [sys.executable, str(workdir / "guide.py"), str(config)]
        self.lines: list[tuple[float, str]] = []
        self.cond = threading.Condition()
        self.eof = False
        self.exit_code: int | None = None
        self.exited_at: float | None = None
        self.exited = threading.Event()
        self.process: subprocess.Popen | None = None
        runs.append(self)  # before the process exists, so that an interruption from here on still cleans it up
        self.poller = HealthPoller(self.port)
        self.process = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        background(self._read)
        background(self._wait)

    def _read(self) -> None:
        for raw in iter(self.process.stdout.readline, b""):
            stamp = time.monotonic()
            with self.cond:
                self.lines.append((stamp, raw.decode("utf-8", errors="replace").rstrip("\n")))
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def _wait(self) -> None:
        code = self.process.wait()
        self.exited_at = time.monotonic()
        self.exit_code = code
        self.exited.set()
        self.poller.stop.set()
        with self.cond:
            self.cond.notify_all()

    def fail(self, message: str) -> BenchError:
        with self.cond:
            tail = "\n".join(f"    {line}" for _, line in self.lines[-25:])
        return BenchError(f"{self.label}: {message}\n  last output lines:\n{tail}")

    def wait_for(self, text: str, timeout: float) -> tuple[float, str]:
        """(stamp, line) of the first output line containing text."""
        deadline = time.monotonic() + timeout
        index = 0
        with self.cond:
            while True:
                for stamp, line in self.lines[index:]:
                    if text in line:
                        return stamp, line
                index = len(self.lines)
                if self.eof:
                    raise self.fail(f"exited (code {self.exit_code}) before printing {text!r}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise self.fail(f"{text!r} not printed within {timeout:.0f}s")
                self.cond.wait(remaining)

    def wait_exit(self, timeout: float, expected: int) -> float:
        if not self.exited.wait(timeout):
            raise self.fail(f"still running {timeout:.0f}s later")
        if self.exit_code != expected:
            raise self.fail(f"exited with code {self.exit_code}, expected {expected}")
        return self.exited_at

    def engine_pids(self) -> list[int]:
        try:
            return [int(p) for p in self.pid_file.read_text().split()]
        except FileNotFoundError:
            return []

    def crash_engine(self) -> float:
        """Write the stand-in's control file `crash` atomically; the moment just before it appears."""
        tmp = self.dir / "crash.tmp"
        tmp.write_text("7")
        written = time.monotonic()
        os.replace(tmp, self.control / "crash")
        return written

    def kill(self) -> None:
        """SIGKILL the lifecycle's group, the engine's own group (ours starts one) and every engine PID left."""
        self.poller.stop.set()
        if self.process is None:
            return
        killpg(self.process.pid)  # the lifecycle and, once it is gone, what is left of its group (guide's orphans)
        pids = self.engine_pids()
        if pids and is_engine(pids[0]):
            killpg(pids[0])
        for pid in pids:
            if is_engine(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            pass


class Bench:
    def __init__(self, deploy, workdir: Path):
        self.deploy = deploy
        self.workdir = workdir
        self.runs: list[Run] = []
        self.samples: dict[tuple[str, str], list[float]] = {}

    def add(self, side: str, metric: str, value: float) -> None:
        self.samples.setdefault((side, metric), []).append(value)

    def start(self, side: str, label: str, stubborn: bool = False, **kwargs) -> Run:
        return Run(side, label, self.workdir, self.deploy, self.runs, stubborn, **kwargs)

    def sigterm_in(self, phase: str, run: Run) -> None:
        """SIGTERM once `run` is in `phase` (the second one for "stop"); its time to exit and what it left."""
        reached, twice = PHASES[phase][1], phase == "stop"
        run.wait_for(reached, 30)
        pids = run.engine_pids()
        if twice:
            run.process.send_signal(signal.SIGTERM)
            run.wait_for("[local] stopping", 5)
            time.sleep(0.3)
        signalled = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        exited = run.wait_exit(40, expected=0)
        deadline = time.monotonic() + SETTLE
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.add("ours", f"sigterm {phase}", exited - signalled)
        self.add("ours", f"left {phase}", float(sum(alive(p) for p in pids)))
        run.kill()

    def startup(self, run: Run) -> None:
        """Health noticed, ready and the warmup, from one start."""
        health_text = "[health] passed on attempt" if run.side == "ours" else "[health] passed"
        ready_text = "[local] ready on" if run.side == "ours" else "[guide] ready"
        noticed, _ = run.wait_for(health_text, 30)
        ready, _ = run.wait_for(ready_text, 30)
        if not run.poller.found.wait(1):
            raise run.fail("this benchmark's poller never saw /health answer 200")
        self.add(run.side, "health", noticed - run.poller.at)
        self.add(run.side, "ready", ready - run.poller.at)
        with run.cond:
            # finditer over the whole text: a line printed from another thread can end up glued to an engine line.
            text = "\n".join(line for stamp, line in run.lines if stamp <= ready)
        each = [float(m.group(2)) for m in WARMUP_ONE.finditer(text)]
        total = [(int(m.group(1)), float(m.group(2))) for m in WARMUP_ALL.finditer(text)]
        if len(each) != 4 or len(total) != 1 or total[0][0] != 4:
            raise run.fail(f"expected 4 '[warmup] NAME ok in' lines and one total, got {len(each)} and {total}")
        self.add(run.side, "warmup_wall", total[0][1])
        self.add(run.side, "warmup_slowest", max(each))
        self.add(run.side, "warmup_ratio", total[0][1] / max(each))

    def shutdown(self, run: Run) -> None:
        pids = run.engine_pids()
        if len(pids) != 8:
            raise run.fail(f"expected 8 engine PIDs (server + 7 TP workers), found {len(pids)}")
        signalled = time.monotonic()
        run.process.send_signal(signal.SIGTERM)
        exited = run.wait_exit(40, expected=0)
        deadline = time.monotonic() + SETTLE
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.add(run.side, "shutdown", exited - signalled)
        self.add(run.side, "left", float(sum(alive(p) for p in pids)))
        run.kill()
        deadline = time.monotonic() + 3
        while any(alive(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        if any(alive(p) for p in pids):
            raise run.fail(f"engine processes survive SIGKILL: {[p for p in pids if alive(p)]}")

    def cleanup(self) -> list[int]:
        """Kill everything every run started; the engine PIDs still alive afterwards."""
        for run in self.runs:
            run.kill()
        pids = [pid for run in self.runs if run.process for pid in run.engine_pids()]
        deadline = time.monotonic() + 3
        while any(alive(p) and is_engine(p) for p in pids) and time.monotonic() < deadline:
            time.sleep(0.02)
        return [p for p in pids if alive(p) and is_engine(p)]


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(bench: Bench) -> None:
    # Ours, one run at a time with nothing else alive: crash runs, then shutdown runs with stubborn workers.
    for i in range(RUNS):
        progress(f"this lifecycle: crash run {i + 1}/{RUNS}")
        run = bench.start("ours", f"this lifecycle, crash run {i + 1}")
        bench.startup(run)
        crashed = run.crash_engine()
        bench.add("ours", "crash", run.wait_exit(10, expected=1) - crashed)
        run.wait_for("[monitor] FATAL: SGLang died (code 7)", 2)
        run.kill()
    for i in range(RUNS):
        progress(f"this lifecycle: shutdown run {i + 1}/{RUNS}")
        run = bench.start("ours", f"this lifecycle, shutdown run {i + 1}", stubborn=True)
        bench.startup(run)
        bench.shutdown(run)
    for phase in PHASES:
        for i in range(RUNS):
            progress(f"this lifecycle: SIGTERM in {phase}, run {i + 1}/{RUNS}")
            grace = STOP_PHASE_GRACE if phase == "stop" else OURS_GRACE
            label = f"this lifecycle, SIGTERM in {phase} {i + 1}"
            run = bench.start("ours", label, knobs=PHASES[phase][0], grace=grace)
            bench.sigterm_in(phase, run)
    # The guide: shutdown runs one at a time, then crash runs overlapped: while one sits out the up to 11 s
    # its monitor takes (a sleeping process), the next one starts.
    for i in range(RUNS):
        progress(f"guide: shutdown run {i + 1}/{RUNS}")
        run = bench.start("guide", f"guide, shutdown run {i + 1}", stubborn=True)
        bench.startup(run)
        bench.shutdown(run)
    crashed_runs = []
    for i in range(RUNS):
        progress(f"guide: crash run {i + 1}/{RUNS}")
        run = bench.start("guide", f"guide, crash run {i + 1}")
        bench.startup(run)
        crashed_runs.append((run, run.crash_engine()))
    for run, crashed in crashed_runs:
        bench.add("guide", "crash", run.wait_exit(20, expected=1) - crashed)
        run.wait_for("[monitor] FATAL: SGLang died (code 7)", 2)
        run.kill()


def report(bench: Bench, deploy, started: float) -> None:
    def med(side: str, metric: str) -> float:
        return statistics.median(bench.samples[(side, metric)])

    def n(side: str, metric: str) -> int:
        return len(bench.samples[(side, metric)])

    def verdict(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    secs = "{:.3f} s".format
    rows = [
        # label, metric, format, target text, verdict
        ("/health 200 -> health noticed", "health", secs, f"<= {TARGET_HEALTH} s",
         verdict(med("ours", "health") <= TARGET_HEALTH)),
        ("/health 200 -> ready line (after warmup)", "ready", secs, "", ""),
        ("warmup wall time", "warmup_wall", "{:.2f} s".format, "", ""),
        ("slowest warmup request", "warmup_slowest", "{:.2f} s".format, "", ""),
        ("warmup wall / slowest request", "warmup_ratio", "{:.2f}x".format, f"<= {TARGET_WARMUP_RATIO}x",
         verdict(med("ours", "warmup_ratio") <= TARGET_WARMUP_RATIO)),
        ("engine death -> process exit", "crash", secs, f"<= {TARGET_CRASH} s",
         verdict(med("ours", "crash") <= TARGET_CRASH)),
        ("SIGTERM -> process exit (stubborn workers)", "shutdown", secs, "", ""),
        ("engine processes alive after shutdown", "left", "{:.0f} of 8".format, "", ""),
    ]  # fmt: skip
    print()
    print(f"Lifecycle benchmark: {DEPLOY.relative_to(ROOT)} --local vs the guide's Server, stand-in SGLang")
    print(
        f"stand-in: load {STANDIN_KNOBS['STANDIN_LOAD_SECONDS']} s, /health 503 for "
        f"{STANDIN_KNOBS['STANDIN_WARMUP_SECONDS']} s after listening, "
        f"{STANDIN_KNOBS['STANDIN_REQUEST_DELAY']} s per chat completion (STANDIN_REQUEST_DELAY), "
        "--tp-size 8 (server + 7 TP workers)"
    )
    print(
        f"this lifecycle: HEALTH_POLL_INTERVAL = {deploy.HEALTH_POLL_INTERVAL} s, "
        f"HEALTH_MAX_POLL_INTERVAL = {deploy.HEALTH_MAX_POLL_INTERVAL} s (read from the rendered file)"
    )
    print(f"guide: /health polled every {GUIDE_HEALTH_INTERVAL:g} s (its interval is not shown in the guide; assumed)")
    print()
    header = f"{'measurement (median)':<44}{'this lifecycle':>18}{'guide':>18}   {'target (ours)':<14}{'':<4}"
    print(header.rstrip())
    print("-" * len(header))
    for label, metric, fmt, target, ok in rows:
        ours = f"{fmt(med('ours', metric))} (n={n('ours', metric)})"
        guide = f"{fmt(med('guide', metric))} (n={n('guide', metric)})"
        print(f"{label:<44}{ours:>18}{guide:>18}   {target:<14}{ok:<6}".rstrip())
    print()
    bound = OURS_GRACE + 1
    print(
        f"SIGTERM -> process exit by phase, this lifecycle (--shutdown-grace {OURS_GRACE:g}; the engine ignores SIGTERM"
        " in that phase):"
    )
    header2 = f"{'phase':<44}{'median':>10}{'max':>10}   {'engine procs left':<18}{'target':<14}"
    print(header2.rstrip())
    print("-" * len(header2))
    for phase in PHASES:
        values = bench.samples[("ours", f"sigterm {phase}")]
        left = max(bench.samples[("ours", f"left {phase}")])
        label = "stop (second SIGTERM)" if phase == "stop" else phase
        ok = verdict(max(values) <= bound and left == 0)
        print(f"{label:<44}{secs(statistics.median(values)):>10}{secs(max(values)):>10}   {left:<18.0f}"
              f"{f'<= {bound:g} s':<14}{ok}")  # fmt: skip
    print()
    print("samples, run by run:")
    for label, metric, fmt, _, _ in rows:
        for side in ("ours", "guide"):
            values = "  ".join(fmt(v).removesuffix(" s").removesuffix(" of 8") for v in bench.samples[(side, metric)])
            print(f"  {label:<44}{side:<7}{values}")
    print()
    print("notes:")
    print(
        "  - health noticed: the `[health] passed` line (ours: `[health] passed on attempt N`; the guide prints\n"
        "    nothing there, so its script prints one line when _wait_for_health returns). /health 200 is when this\n"
        "    benchmark's 10 ms poller first read a 200, so a value can be a few ms below zero. The guide's figure\n"
        f"    depends on where /health turns 200 in its {GUIDE_HEALTH_INTERVAL:g} s cycle: 0 to "
        f"{GUIDE_HEALTH_INTERVAL:g} s, {GUIDE_HEALTH_INTERVAL / 2:g} s on average;\n"
        "    the stand-in turns healthy within a second of its start, so here the guide's second poll sees it.\n"
        f"    Ours doubles its interval from {deploy.HEALTH_POLL_INTERVAL:g} s up to the "
        f"{deploy.HEALTH_MAX_POLL_INTERVAL:g} s cap: worst case about the cap plus one request."
    )
    print("  - ready line: `[local] ready on` (ours) / the guide script's `[guide] ready`, printed after the warmup.")
    print(
        "  - warmup: per request and total from ours' `[warmup] NAME ok in` / `[warmup] 4 requests passed in` lines;\n"
        "    the guide script times its sequential requests.post calls the same way. Same four payloads."
    )
    print(
        "  - engine death: the stand-in's control file `crash` written right after the ready line; the stand-in\n"
        "    checks for it every 50 ms. The guide's monitor polls every 10 s and then sleeps 1 s, so its figure\n"
        "    lies between 1 s and 11 s depending on the phase; crashing right after the ready line is near its\n"
        f"    worst case. Its {RUNS} crash runs overlap: each next run starts while the previous one waits."
    )
    print(
        f"  - shutdown: STANDIN_STUBBORN_WORKERS=1 (TP workers ignore SIGTERM); ours with --shutdown-grace "
        f"{OURS_GRACE:g},\n"
        "    the guide with terminate(), wait(30), kill() on its child only. Ours is the slower one because it\n"
        "    waits out the grace for the workers, then SIGKILLs the group; the guide returns as soon as its direct\n"
        "    child exits and leaves the workers running. Processes counted from\n"
        f"    STANDIN_PID_FILE {SETTLE:g} s after the lifecycle exits; this benchmark then SIGKILLs what is left."
    )
    print(
        "  - SIGTERM by phase: loading (STANDIN_LOAD_SECONDS=60), health wait (/health 503 for 60 s), warmup\n"
        "    (each warmup request takes 60 s, and like uvicorn the stand-in waits for them before it exits),\n"
        "    serving; STANDIN_SHUTDOWN_SECONDS=...:inf makes it ignore SIGTERM in that phase, so only the SIGKILL\n"
        f"    after the grace ends it: the worst case, bounded by the grace + 1 s. stop: a second SIGTERM while the\n"
        f"    first one's stop waits (--shutdown-grace {STOP_PHASE_GRACE:g}), timed from the second SIGTERM."
    )
    print(
        f"  - startup numbers come from every run of a side ({2 * RUNS}), crash and shutdown from {RUNS} each."
        f" Total benchmark time: {time.monotonic() - started:.0f} s."
    )


def main() -> int:
    started = time.monotonic()
    # A SIGTERM to the benchmark unwinds through the cleanup below like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    deploy = load_deploy()
    with tempfile.TemporaryDirectory(prefix="bench-lifecycle-") as tmp:
        workdir = Path(tmp)
        (workdir / "guide.py").write_text(GUIDE_SCRIPT)
        bench = Bench(deploy, workdir)
        try:
            measure(bench)
        except BenchError as exc:
            print(f"bench-lifecycle: a run broke: {exc}", file=sys.stderr)
            return 1
        finally:
            for sig in STOP_SIGNALS:  # a second Ctrl-C must not cut the cleanup short
                signal.signal(sig, signal.SIG_IGN)
            survivors = bench.cleanup()
            if survivors:
                print(f"bench-lifecycle: engine processes survive SIGKILL: {survivors}", file=sys.stderr)
        if survivors:
            return 1
        report(bench, deploy, started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
