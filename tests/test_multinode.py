"""A multi-node render, run for real: `deploy.py --local --nodes 2` against the stand-in SGLang.

Each rank is its own process running the code of one cluster container; the ranks find each other on
loopback addresses. A rank that dies must take the other down within a second, with its exit code
and log tail in the survivor's log; SIGTERM must stop both within the grace period.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from conftest import ROOT
from deploygen.pipeline import check
from deploygen.validate.flags import argv_problems

CLUSTER = "glm-5.1-fp8-h100x16"
DEPLOY = ROOT / "generated" / CLUSTER / "deploy.py"
API_KEY = "sk-test-multinode-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


class LocalCluster:
    """`python deploy.py --local --nodes N` in its own process group, its output timed line by line."""

    def __init__(self, tmp_path: Path, nodes: int = 2, grace: float = 3, health_timeout: float = 60, **standin: str):
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "tests" / "standin"),
            # The stand-in's `sglang` script (`sglang serve`) comes first.
            "PATH": f"{ROOT / 'tests' / 'standin' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "API_KEY": API_KEY,
            "STANDIN_LOAD_SECONDS": "0.3",
            "STANDIN_WARMUP_SECONDS": "0.2",
            **standin,
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(DEPLOY),
                "--local",
                "--nodes",
                str(nodes),
                "--port",
                str(self.port),
                "--rendezvous-port",
                str(free_port()),
                "--watch-port",
                str(free_port()),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--model-path",
                str(tmp_path / "no-weights-here"),
                "--health-timeout",
                str(health_timeout),
                "--shutdown-grace",
                str(grace),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            text=True,
            start_new_session=True,
        )
        self.lines: list[tuple[float, str]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def wait_for(self, text: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, line in list(self.lines):
                if text in line:
                    return when
            if self.process.poll() is not None and not self.reader.is_alive():
                break
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not seen; output:\n{self.output}")

    def wait(self, timeout: float = 30) -> int:
        code = self.process.wait(timeout)
        self.reader.join(5)
        return code

    def pids(self, pattern: str) -> list[int]:
        return [int(m) for m in re.findall(pattern, self.output)]

    def engine_pid(self, rank: int) -> int:
        self.wait_for(f"[rank {rank}] [engine] started SGLang (pid ")
        return self.pids(rf"\[rank {rank}\] \[engine\] started SGLang \(pid (\d+)\)")[0]

    def rank_pids(self) -> list[int]:
        return [int(p) for p in re.findall(r"\d+", re.search(r"started \d+ ranks \(pids ([\d, ]+)\)", self.output)[1])]

    def kill(self) -> None:
        pids = [self.process.pid]
        if "started" in self.output:
            pids += self.rank_pids() + self.pids(r"started SGLang \(pid (\d+)\)")
        for pid in pids:
            for kill in (os.killpg, os.kill):
                try:
                    kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


@pytest.fixture
def cluster(tmp_path):
    started: list[LocalCluster] = []

    def start(**kwargs) -> LocalCluster:
        run = LocalCluster(tmp_path, **kwargs)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


def test_two_ranks_become_ready_and_rank_0_serves(cluster):
    run = cluster()
    run.wait_for("[rank 0] [local] ready on")
    run.wait_for("[rank 1] [cluster] rank 1: the cluster serves")
    response = httpx.post(
        f"http://127.0.0.1:{run.port}/v1/chat/completions",
        headers={"Authorization": f"Bearer {API_KEY}"},
        json={"model": "glm-5.1", "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 8},
        timeout=10,
    )
    assert response.status_code == 200
    assert "[rank 0] [warmup] 4 requests passed" in run.output
    assert "[rank 1] [warmup]" not in run.output  # only rank 0 serves, so only rank 0 warms up
    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == 0


# inf: NCCL never notices the dead peer (an idle cluster: no collective runs), so only the watch ends the
# survivor; 0: NCCL aborts the survivor's engine at once, and its log must still name the dead rank.
@pytest.mark.parametrize("peer_loss", ["inf", "0"], ids=["nccl-silent", "nccl-aborts"])
@pytest.mark.parametrize(("dead", "survivor"), [(1, 0), (0, 1)], ids=["rank1-dies", "rank0-dies"])
def test_a_dead_rank_ends_the_other_within_a_second_with_its_exit_code_and_log_tail(cluster, dead, survivor, peer_loss):
    run = cluster(STANDIN_PEER_LOSS_SECONDS=peer_loss)
    run.wait_for("[rank 0] [local] ready on")
    run.wait_for("[rank 1] [cluster] rank 1: the cluster serves")
    engine = run.engine_pid(dead)
    pids = run.rank_pids() + [run.engine_pid(0), run.engine_pid(1)]
    killed = time.monotonic()
    os.kill(engine, signal.SIGKILL)  # SGLang dies as on a GPU fault: no goodbye
    assert run.wait(timeout=15) == 1
    ended = run.wait_for(f"[local] rank {survivor} exited with code 1")
    assert ended - killed < 1.0
    assert f"[rank {dead}] [cluster] FATAL: SGLang on rank {dead} died (code -9); ending the cluster" in run.output
    assert f"[rank {survivor}] [cluster] FATAL: rank {dead} died (exit code -9): SGLang exited" in run.output
    tail = run.output.split(f"last log lines of rank {dead}:")[1]
    assert f"[rank {survivor}]     " in tail.splitlines()[1]  # the dead rank's lines, in the survivor's log
    deadline = time.monotonic() + 3
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def test_sigterm_stops_every_rank_within_the_grace_and_leaves_nothing_running(cluster):
    run = cluster(grace=2)
    run.wait_for("[rank 0] [local] ready on")
    run.wait_for("[rank 1] [cluster] rank 1: the cluster serves")
    pids = run.rank_pids() + [run.engine_pid(0), run.engine_pid(1)]
    stopped = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0
    assert time.monotonic() - stopped < 2 + 1
    assert "[local] rank 0 exited with code 0" in run.output
    assert "[local] rank 1 exited with code 0" in run.output
    deadline = time.monotonic() + 3
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def load_deploy():
    spec = importlib.util.spec_from_file_location("deploy_multinode", DEPLOY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_modal_objects_carry_the_cluster_and_server_parameters():
    profile = check(CLUSTER).deployment.profile.data
    deploy = load_deploy()
    server = deploy.Server._get_service_function().info()
    gpu = profile["gpu"]
    assert server.cluster_info.size == gpu["nodes"] == deploy.CLUSTER_SIZE
    assert server.cluster_info.rdma is gpu["rdma"]
    assert server.gpus == [(gpu["type"], gpu["count"])]
    assert server._inner_server_info.port == profile["server"]["port"]
    assert server._inner_server_info.startup_timeout == profile["scaling"]["startup_timeout"]
    assert server._inner_server_info.exit_grace_period == check(CLUSTER).deployment.exit_grace_period
    assert server._inner_server_info.exit_grace_period > profile["lifecycle"]["shutdown"]["grace_period"]
    compile_info = deploy.compile_deepgemm.info()
    assert (compile_info.cluster_info.size, compile_info.cluster_info.rdma) == (gpu["nodes"], gpu["rdma"])
    assert compile_info.gpus == [(gpu["type"], gpu["count"])]


@pytest.mark.parametrize("address", ["10.100.0.7", "fdaa:5137:3ebf:a70:1b9d:3a11:71f2:5f0f"])
def test_every_rank_argv_is_accepted_by_the_pinned_catalog(address):
    deployment = check(CLUSTER).deployment
    deploy = load_deploy()
    addresses = [address] + ["10.100.0.8"] * (deploy.CLUSTER_SIZE - 1)
    for rank in range(deploy.CLUSTER_SIZE):
        argv = deploy.cluster_node("sk-key", rank, addresses).cmd  # the command the rank's container runs
        assert argv[: len(deploy.SERVE_COMMAND)] == deploy.SERVE_COMMAND
        assert argv_problems(argv[len(deploy.SERVE_COMMAND) :], deployment.catalog) == []
        args = deploy.cluster_args(rank, addresses, deploy.RENDEZVOUS_PORT)
        assert argv[-len(args) :] == args
        assert args[:4] == ["--nnodes", str(deploy.CLUSTER_SIZE), "--node-rank", str(rank)]
        compile_argv = deploy._build_sglang_cmd(command=["python3", "-m", "sglang.compile_deep_gemm"]) + args
        assert argv_problems(compile_argv[3:], deployment.catalog, compile_step=True) == []
        rendezvous = args[args.index("--dist-init-addr") + 1]
        port = deploy.RENDEZVOUS_PORT
        assert rendezvous == (f"[{address}]:{port}" if ":" in address else f"{address}:{port}")
        assert argv[argv.index("--tp-size") + 1] == "16"


def test_explain_shows_what_every_rank_adds_and_where_it_comes_from(in_repository):
    from conftest import run_cli

    out = run_cli("explain", CLUSTER).stdout
    rows = {line.split(":")[0]: " ".join(line.split()) for line in out.splitlines() if line.startswith("sglang.")}
    assert rows["sglang.tp-size"].startswith("sglang.tp-size: 16 # derived from gpu.count (")
    assert " x gpu.nodes (profiles/glm-5.1-fp8-h100x16.yaml:" in rows["sglang.tp-size"]
    assert rows["sglang.nnodes"].startswith("sglang.nnodes: 2 # derived from gpu.nodes (profiles/glm-5.1-fp8-h100x16")
    assert rows["sglang.node-rank"] == "sglang.node-rank: each container's rank # modal.Cluster.from_context() at start"
