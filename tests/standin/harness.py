"""Running the stand-in SGLang (and what drives it) as real processes: start, watch the output as it arrives, signal.

Imported by tests as `standin.harness`; standard library only.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

STANDIN = Path(__file__).resolve().parent
# Fast defaults, so that a test waits only for what it is about.
FAST = {"STANDIN_LOAD_SECONDS": "0.05", "STANDIN_WARMUP_SECONDS": "0.05", "STANDIN_SHUTDOWN_SECONDS": "0.01"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def process_state(pid: int) -> str | None:
    """The state letter of /proc/<pid>/stat (R, S, Z...), None when no such process is left."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def parent_of(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None


def is_standin(pid: int) -> bool:
    """A live stand-in process (server or TP worker): a PID reused since a PID file was written is spared."""
    try:
        return b"sglang" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def kill_standin(pids: list[int]) -> None:
    """SIGKILL what is left of a stand-in from its PID file, only the PIDs that are still stand-in processes."""
    for pid in pids:
        if is_standin(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def alive(pid: int) -> bool:
    """Running: a zombie (dead, not reaped yet) is not."""
    return process_state(pid) not in (None, "Z")


def wait_until(predicate, timeout: float = 5.0, every: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


def standin_env(env: dict | None = None) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
    # tests/standin/bin first on PATH: the stand-in's `sglang` (`sglang serve`) and `vllm` scripts.
    path = f"{STANDIN / 'bin'}{os.pathsep}{base.get('PATH', '')}"
    return {**base, "PYTHONPATH": str(STANDIN), "PATH": path, "PYTHONUNBUFFERED": "1", **FAST, **(env or {})}


class Process:
    """A command in a session of its own, stdout and stderr merged and recorded chunk by chunk as they arrive."""

    def __init__(self, argv: list[str], env: dict):
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.pid = self.proc.pid
        self.chunks: list[tuple[float, bytes]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        # os.read returns what the pipe holds now: a "\r" progress update is seen when written, not at the newline.
        fd = self.proc.stdout.fileno()
        while chunk := os.read(fd, 65536):
            self.chunks.append((time.monotonic(), chunk))

    @property
    def output(self) -> str:
        return b"".join(chunk for _, chunk in list(self.chunks)).decode(errors="replace")

    def seen_at(self, text: str, timeout: float = 10.0) -> float:
        """When `text` had arrived in full (monotonic clock)."""
        wanted = text.encode()
        deadline = time.monotonic() + timeout
        while True:
            received = b""
            for when, chunk in list(self.chunks):
                received += chunk
                if wanted in received:
                    return when
            if time.monotonic() > deadline or (self.proc.poll() is not None and not self.reader.is_alive()):
                raise AssertionError(f"{text!r} not seen; output:\n{self.output}")
            time.sleep(0.01)

    def wait(self, timeout: float = 10.0) -> int:
        code = self.proc.wait(timeout)
        self.reader.join(5)
        return code

    def running(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: int = signal.SIGTERM) -> float:
        sent = time.monotonic()
        self.proc.send_signal(sig)
        return sent

    def kill_group(self) -> None:
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.reader.join(2)


def launch_server(*flags: str, env: dict | None = None, port: int | None = None) -> tuple[Process, int]:
    """`python -m sglang.launch_server` (the stand-in) on 127.0.0.1:<port>; returns the process and the port."""
    port = port or free_port()
    argv = [sys.executable, "-m", "sglang.launch_server", "--model-path", "/models/glm", "--host", "127.0.0.1"]
    return Process([*argv, "--port", str(port), *flags], standin_env(env)), port
