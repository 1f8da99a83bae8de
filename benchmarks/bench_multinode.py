"""Fault timings of a multi-node render (`deploy.py --local --nodes 2`) against the stand-in SGLang.

Measured over several runs, every timestamp time.monotonic() in this process (an output line is stamped
when this process reads it):
  - start -> "ready" on rank 0 (both ranks joined, rendezvous, health, warmup);
  - SIGKILL of one rank's engine -> the other rank's process exit, with NCCL silent (the stand-in's
    STANDIN_PEER_LOSS_SECONDS=inf: only the cluster watch can end the survivor) and the reverse;
  - SIGTERM to the cluster -> every rank exited, and processes left alive afterwards.
The target (a dead rank ends the others within 1 s) is printed as PASS/FAIL; the exit code is 0 unless a run breaks.
"""

from __future__ import annotations

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
DEPLOY = ROOT / "generated" / "glm-5.1-fp8-h100x16" / "deploy.py"
RUNS = 3
GRACE = 2.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


class Cluster:
    def __init__(self, folder: str):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "tests" / "standin"),
            # The stand-in's `sglang` script (`sglang serve`) comes first.
            "PATH": f"{ROOT / 'tests' / 'standin' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "STANDIN_LOAD_SECONDS": "0.3",
            "STANDIN_WARMUP_SECONDS": "0.2",
            "STANDIN_PEER_LOSS_SECONDS": "inf",
        }
        ports = [str(free_port()) for _ in range(3)]
        argv = ["--local", "--nodes", "2", "--port", ports[0], "--rendezvous-port", ports[1], "--watch-port", ports[2]]
        argv += ["--cache-dir", f"{folder}/cache", "--model-path", f"{folder}/none", "--shutdown-grace", str(GRACE)]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [sys.executable, str(DEPLOY), *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
        )
        self.lines: list[tuple[float, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def when(self, text: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for stamp, line in list(self.lines):
                if text in line:
                    return stamp
            time.sleep(0.01)
        raise RuntimeError(f"{text!r} not seen:\n" + "\n".join(line for _, line in self.lines))

    def pids(self) -> list[int]:
        text = "\n".join(line for _, line in self.lines)
        found = re.findall(r"started SGLang \(pid (\d+)\)", text)
        found += re.findall(r"\d+", re.search(r"started \d+ ranks \(pids ([\d, ]+)\)", text)[1])
        return [int(p) for p in found]

    def ready(self) -> float:
        self.when("[rank 1] [cluster] rank 1: the cluster serves")
        return self.when("[rank 0] [local] ready on") - self.started


def engine_pid(cluster: Cluster, rank: int) -> int:
    text = "\n".join(line for _, line in cluster.lines)
    return int(re.search(rf"\[rank {rank}\] \[engine\] started SGLang \(pid (\d+)\)", text)[1])


def main() -> int:
    results: dict[str, list[float]] = {"ready": [], "rank 1 dies": [], "rank 0 dies": [], "sigterm": []}
    left: list[int] = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(RUNS):
            for dead, survivor in ((1, 0), (0, 1)):
                cluster = Cluster(folder)
                results["ready"].append(cluster.ready())
                killed = time.monotonic()
                os.kill(engine_pid(cluster, dead), signal.SIGKILL)
                results[f"rank {dead} dies"].append(cluster.when(f"[local] rank {survivor} exited") - killed)
                cluster.process.wait(10)
            cluster = Cluster(folder)
            cluster.ready()
            pids = cluster.pids()
            stopped = time.monotonic()
            cluster.process.send_signal(signal.SIGTERM)
            cluster.process.wait(GRACE + 10)
            results["sigterm"].append(time.monotonic() - stopped)
            time.sleep(1)
            left += [p for p in pids if alive(p)]
    for name, values in results.items():
        print(f"{name:<14} median {statistics.median(values):6.3f} s   max {max(values):6.3f} s   ({len(values)} runs)")
    worst = max(results["rank 1 dies"] + results["rank 0 dies"])
    print(f"a dead rank ends the other within 1 s: {'PASS' if worst < 1 else 'FAIL'} (worst {worst:.3f} s)")
    within = "PASS" if max(results["sigterm"]) < GRACE else "FAIL"
    print(f"SIGTERM stops every rank within the {GRACE:g} s grace: {within}")
    print(f"processes left alive after SIGTERM: {len(left)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
