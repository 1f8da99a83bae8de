"""One rank of a multi-node SGLang server: its engine and its end of the cluster watch (docs/multinode.md).

Every node runs the same SGLang command plus its rank and rank 0's rendezvous address. Rank 0 waits
for /health, warms up and serves (Modal routes HTTP to rank 0 only); the other ranks start and wait for
rank 0's word that the cluster serves. A rank that ends for any reason (its engine died, its start
failed, SIGTERM) tells the others through the watch, and they end too: no half-alive cluster serves
errors. `--local --nodes N` runs the same code as N processes on this machine.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from deploygen.runtime.cluster_link import ClusterError, ClusterLink, RankEnd, host_port
from deploygen.runtime.engine import (
    Engine,
    EngineError,
    Readiness,
    Shutdown,
    exit_now,
    log,
    set_log_prefix,
    signal_group,
)
from deploygen.runtime.weights import check_weights

# Lines of a dead engine's log that travel to the other ranks' logs.
TAIL_LINES = 20
# After its engine was aborted (SIGABRT, as NCCL's watchdog does when a peer dies), how long a rank
# waits for the dead peer's word, which names the cause, before it speaks itself.
PEER_WORD_WAIT = 0.3
# --local: how long the other ranks may outlive the first one that ended before they are killed.
LOCAL_END_MARGIN = 5.0


def cluster_args(rank: int, addresses: list[str], rendezvous_port: int) -> list[str]:
    """What one rank adds to the SGLang command: the cluster size, its rank and rank 0's rendezvous address."""
    return [
        "--nnodes", str(len(addresses)),
        "--node-rank", str(rank),
        "--dist-init-addr", host_port(addresses[0], rendezvous_port),
    ]  # fmt: skip


class ClusterNode:
    """One rank: `cmd` is the full SGLang command of this rank (cluster_args included)."""

    def __init__(
        self,
        rank: int,
        addresses: list[str],
        cmd: list[str],
        env: dict[str, str],
        port: int,
        model: str,
        api_key: str,
        readiness: Readiness,
        watch_port: int,
        join_timeout: float,
        bind_host: str = "::",
    ):
        self.rank = rank
        self.size = len(addresses)
        self.cmd = cmd
        self.env = env
        self.port = port
        self.model = model
        self.api_key = api_key
        self.readiness = readiness
        self.join_timeout = join_timeout
        self.engine: Engine | None = None
        self.serving = False
        self.stopping = False
        # Set when a start must give up: another rank ended, or this one was asked to stop. The engine
        # takes it as its shutdown request: its waits end at once, and its exit is then no crash.
        self.abort = Shutdown()
        self.link = ClusterLink(rank, self.size, addresses[0], watch_port, self._peer_ended, bind_host)

    def start(self, preflight: Callable[[], None] | None = None) -> None:
        """Join the cluster, start SGLang and return once the cluster serves; raise EngineError otherwise.

        `preflight()` runs once every rank is here, so its failure reaches the others at once.
        """
        log(f"[cluster] rank {self.rank} of {self.size}: waiting for every rank on the cluster watch")
        try:
            self.link.join(self.join_timeout, self.abort)
        except ClusterError as exc:
            raise EngineError(f"[cluster] {exc}") from None
        log(f"[cluster] all {self.size} ranks joined")
        try:
            if preflight is not None:
                preflight()
            if self.abort.is_set():
                raise EngineError("[engine] start cancelled")
            self.engine = Engine(self.cmd, self.env, self.port, self.model, self.api_key, shutdown=self.abort)
            self.engine.start()
            if self.rank == 0:
                ready = self.readiness
                self.engine.wait_until_healthy(ready.health_timeout, ready.poll_interval, ready.max_poll_interval)
                if ready.warmup_timeout is not None:
                    self.engine.warmup(ready.warmup_timeout, ready.warmup_requests)
                self.link.announce_ready()
            else:
                self._wait_for_rank0()
        except BaseException as exc:
            self._start_failed(exc)
            if self.link.end is not None:
                raise EngineError(f"[cluster] {self.link.end.describe()}") from None
            raise
        self.serving = True
        self.engine.watch(self._engine_died)
        log(f"[cluster] rank {self.rank}: the cluster serves" + (f" on port {self.port}" if self.rank == 0 else ""))

    def _wait_for_rank0(self) -> None:
        deadline = time.monotonic() + self.readiness.health_timeout
        while not self.link.ready.wait(0.05):
            if self.abort.is_set():
                raise EngineError("[engine] start cancelled")
            if self.engine.exited.is_set():
                raise EngineError(
                    f"SGLang exited with code {self.engine.process.returncode} before the cluster was ready. "
                    f"Last log lines:\n{self.engine._tail()}"
                )
            if time.monotonic() > deadline:
                raise EngineError(
                    f"[cluster] rank 0 did not report the cluster ready within {self.readiness.health_timeout}s"
                )

    def _start_failed(self, exc: BaseException) -> None:
        if self.stopping:
            self.link.leave("stopping", detail="SIGTERM")
        else:
            tail = list(self.engine.log_tail)[-TAIL_LINES:] if self.engine is not None else []
            self.link.leave("failed", detail=str(exc).splitlines()[0] if str(exc) else type(exc).__name__, tail=tail)
        if self.engine is not None:
            self.engine.stop(self.readiness.shutdown_grace)

    def _engine_died(self, code: int) -> None:
        log(f"[cluster] FATAL: SGLang on rank {self.rank} died (code {code}); ending the cluster")
        # Aborted (NCCL's watchdog after a peer died): wait a moment for the peer's word, then
        # _peer_ended ends this rank with the cause. Otherwise let the log thread catch the engine's
        # last lines and tell the others at once.
        if self.link.ended.wait(PEER_WORD_WAIT if code == -signal.SIGABRT else 0.1):
            return
        self.link.leave("died", code=code, detail="SGLang exited", tail=list(self.engine.log_tail)[-TAIL_LINES:])
        exit_now(1)

    def _peer_ended(self, end: RankEnd) -> None:
        if end.graceful:
            log(f"[cluster] {end.describe()}: stopping rank {self.rank} too")
        else:
            log(f"[cluster] FATAL: {end.describe()}\n[cluster] ending rank {self.rank}")
        self.abort.set()
        if self.engine is not None:
            # This engine cannot serve without its peers: their NCCL collectives would only hang.
            self.engine.stop(self.readiness.shutdown_grace if end.graceful else 0)
        if self.serving and not self.stopping:
            exit_now(0 if end.graceful else 1)

    def cancel(self) -> None:
        """Give up a start in progress (SIGTERM while starting)."""
        self.stopping = True
        self.abort.set()

    def stop(self, grace: float) -> None:
        """Tell the other ranks first, so every rank stops its engine at once, within the grace period."""
        self.stopping = True
        self.link.leave("stopping", detail="SIGTERM")
        if self.engine is not None:
            self.engine.stop(grace)


def run_on_cluster(
    cmd: list[str],
    env: dict[str, str],
    rank: int,
    addresses: list[str],
    watch_port: int,
    join_timeout: float,
    bind_host: str = "::",
) -> int:
    """This rank's part of a command every rank runs at once (compile_deep_gemm); its exit code.

    A part that fails ends the other ranks' parts at once, through the cluster watch, instead of
    leaving them to wait on a dead peer until their timeout. Rank 0's part decides: once it ended well,
    the other ranks' parts are done too (compile_deep_gemm's ranks > 0 only wait for rank 0), 0.
    """
    process: subprocess.Popen | None = None
    peer_ended = threading.Event()

    def on_end(end: RankEnd) -> None:
        if end.graceful and rank == 0:
            return  # only rank 0's own part says whether the command succeeded
        peer_ended.set()
        if not end.graceful:
            log(f"[cluster] FATAL: {end.describe()}\n[cluster] stopping rank {rank}")
        if process is not None:
            signal_group(process.pid, signal.SIGKILL)

    link = ClusterLink(rank, len(addresses), addresses[0], watch_port, on_end, bind_host)
    log(f"[cluster] rank {rank} of {len(addresses)}: waiting for every rank on the cluster watch")
    try:
        link.join(join_timeout)
    except ClusterError as exc:
        raise RuntimeError(f"[cluster] {exc}") from None
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    if peer_ended.is_set():  # a peer failed before the process existed
        signal_group(process.pid, signal.SIGKILL)
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    for raw in iter(process.stdout.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\n")
        tail.append(line)
        log(line)
    code = process.wait()
    if peer_ended.is_set():
        if not link.end.graceful:
            raise RuntimeError(f"[cluster] {link.end.describe()}")
        link.leave("stopping", detail="done")
        return 0
    if code == 0:
        link.leave("stopping", detail="done")
    else:
        link.leave("died", code=code, detail=f"{' '.join(cmd[:3])} failed", tail=tail)
    return code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_local_rank(rank: int, make_node: Callable[[int], ClusterNode], model_path: str, port: int, grace: float) -> int:
    """One rank of `--local --nodes N`: the code of one cluster container, on loopback addresses.

    make_node(port) builds this rank's node; rank 0 serves on `port`, the others take a free port
    each (SGLang's ranks > 0 answer /health on theirs, and they share this machine).
    """
    set_log_prefix(f"[rank {rank}] ")
    if Path(model_path).is_dir():
        missing = check_weights(model_path)
        if missing:
            log(f"[setup] weights not ready: {missing}")
            return 1
    node = make_node(port if rank == 0 else free_port())
    stop = threading.Event()

    def on_signal(*_) -> None:
        stop.set()
        node.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        node.start()
    except EngineError as exc:
        log(str(exc))
        return 0 if stop.is_set() else 1
    if rank == 0:
        log(f"[local] ready on http://127.0.0.1:{port}")
    stop.wait()
    log("[local] stopping")
    node.stop(grace)
    return 0


def run_local_cluster(nodes: int, rank_argv: list[str], grace: float) -> int:
    """`--local --nodes N`: one process per rank (this file again, with --node-rank), until the cluster ends.

    This process only starts and waits: the ranks end each other through the cluster watch. Should one
    outlive the first that ended by more than the grace period, it is killed, and that is a failure.
    """
    main = sys.modules["__main__"].__file__
    ranks = [subprocess.Popen([sys.executable, main, *rank_argv, "--node-rank", str(rank)]) for rank in range(nodes)]
    log(f"[local] started {nodes} ranks (pids {', '.join(str(process.pid) for process in ranks)})")

    def forward(*_) -> None:
        for process in ranks:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    codes: dict[int, int] = {}
    first_end = None
    while len(codes) < nodes:
        for rank, process in enumerate(ranks):
            if rank not in codes and process.poll() is not None:
                codes[rank] = process.returncode
                log(f"[local] rank {rank} exited with code {process.returncode}")
                first_end = first_end or time.monotonic()
        limit = grace + LOCAL_END_MARGIN
        if first_end is not None and time.monotonic() - first_end > limit:
            for rank, process in enumerate(ranks):
                if process.poll() is None:
                    log(f"[local] rank {rank} still runs {limit:g}s after another rank ended: killed")
                    process.kill()
                    process.wait()
            return 1
        time.sleep(0.02)
    return 0 if all(code == 0 for code in codes.values()) else 1
