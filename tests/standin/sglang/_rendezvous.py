"""Multi-node rendezvous, the way SGLang's torch.distributed start-up behaves over --dist-init-addr, without torch.

SGLang runs the same command on every node plus --nnodes N --node-rank R --dist-init-addr HOST:PORT. Each scheduler
calls torch.distributed.init_process_group(init_method="tcp://HOST:PORT") before it loads weights: node 0 hosts the
TCPStore on that address and waits until every rank joined; the others connect to it, retrying until the timeout.
Once joined, the ranks stay connected (NCCL communicators), and a rank that disappears ends the others through NCCL's
watchdog, which aborts the process. The messages are torch's and NCCL's own, as users report them:
  client timeout:  https://github.com/vllm-project/vllm/issues/19670
  client retries:  https://github.com/sgl-project/sglang/issues/2561
  master timeout:  https://github.com/verl-project/verl/issues/4373
  watchdog abort:  https://github.com/pytorch/pytorch/issues/150916
  peer not noticed (STANDIN_PEER_LOSS_SECONDS=inf): https://github.com/sgl-project/sglang/issues/3099
"""

from __future__ import annotations

import errno
import socket
import threading
import time

from sglang import _standin as S

# torch.distributed's default process-group timeout when SGLang gets no --dist-timeout (default_pg_nccl_timeout).
TORCH_DEFAULT_TIMEOUT = 600
PARALLEL_STATE = f"{S.SGLANG_DIR}/srt/distributed/parallel_state.py"
MODEL_RUNNER = f"{S.SGLANG_DIR}/srt/model_executor/model_runner.py"
DISTRIBUTED_C10D = "/usr/local/lib/python3.12/dist-packages/torch/distributed/distributed_c10d.py"
RENDEZVOUS = "/usr/local/lib/python3.12/dist-packages/torch/distributed/rendezvous.py"


def parse_addr(addr: str) -> tuple[str, int]:
    """'host:port' or '[ipv6]:port', as SGLang's --dist-init-addr takes them."""
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
    else:
        host, _, port = addr.rpartition(":")
    return host, int(port)


def init_frames() -> list[str]:
    """The stack of a scheduler that fails in torch.distributed.init_process_group."""
    return [
        *S.scheduler_frames(),
        f'  File "{S.SGLANG_DIR}/srt/managers/tp_worker.py", line 247, in __init__',
        "    self.model_runner = ModelRunner(",
        f'  File "{MODEL_RUNNER}", line 387, in __init__',
        "    pre_model_load_memory = self.init_torch_distributed()",
        f'  File "{MODEL_RUNNER}", line 804, in init_torch_distributed',
        "    init_distributed_environment(",
        f'  File "{PARALLEL_STATE}", line 1613, in init_distributed_environment',
        "    torch.distributed.init_process_group(",
        f'  File "{DISTRIBUTED_C10D}", line 1710, in init_process_group',
        "    store, rank, world_size = next(rendezvous_iterator)",
        f'  File "{RENDEZVOUS}", line 278, in _tcp_rendezvous_handler',
        "    store = _create_c10d_store(",
        f'  File "{RENDEZVOUS}", line 198, in _create_c10d_store',
        "    return TCPStore(",
    ]


class Cluster:
    """This node's place in a multi-node SGLang: rank 0 hosts the rendezvous, the others join it."""

    def __init__(self, args: dict, tp_rank: int):
        self.nnodes = args["nnodes"]
        self.rank = args["node_rank"]
        self.tp_rank = tp_rank  # this node's first global rank, as NCCL names it
        self.host, self.port = parse_addr(args["dist_init_addr"])
        self.timeout = args.get("dist_timeout") or S.env_float("STANDIN_DIST_TIMEOUT", TORCH_DEFAULT_TIMEOUT)
        self.world_size = args["tp_size"] * args.get("pp_size", 1)
        self.peers: list[socket.socket] = []
        self.server: socket.socket | None = None

    def join(self, stop: threading.Event) -> bool:
        """Wait until every node joined; False when SIGTERM arrived meanwhile. A failed rendezvous ends the process."""
        S.log("Init torch distributed begin.", f" TP{self.tp_rank}")
        joined = self._host(stop) if self.rank == 0 else self._connect(stop)
        if joined:
            S.log("Init torch distributed ends. mem usage=1.02 GB", f" TP{self.tp_rank}")
        return joined

    def _fail(self, error: str) -> None:
        S.crash([*init_frames(), error], S.env_int("STANDIN_EXIT_CODE", 1), f" TP{self.tp_rank}")

    def _host(self, stop: threading.Event) -> bool:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            self.server = socket.create_server((self.host, self.port), family=family)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            self._fail(
                "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network "
                f"address. port: {self.port}, useIpv6: {str(family == socket.AF_INET6).lower()}, code: -98, "
                "name: EADDRINUSE, message: address already in use"
            )
        self.server.settimeout(0.05)
        deadline = time.monotonic() + self.timeout
        while len(self.peers) < self.nnodes - 1:
            if stop.is_set():
                return False
            if time.monotonic() >= deadline:
                joined = (len(self.peers) + 1) * self.world_size // self.nnodes
                self._fail(
                    f"torch.distributed.DistStoreError: Timed out after {int(self.timeout) + 1} seconds waiting "
                    f"for clients. {joined}/{self.world_size} clients joined."
                )
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            conn.settimeout(max(deadline - time.monotonic(), 0.1))
            try:
                hello = conn.makefile("r").readline()
            except OSError:
                hello = ""
            if hello.startswith("rank "):  # anything else (a port probe) is not a rank
                self.peers.append(conn)
            else:
                conn.close()
        for conn in self.peers:
            conn.settimeout(None)
            conn.sendall(b"ready\n")
        return True

    def _connect(self, stop: threading.Event) -> bool:
        deadline = time.monotonic() + self.timeout
        timeout_ms = int(self.timeout * 1000)
        where = f"({self.host}, {self.port})"
        timed_out = f"The client socket has timed out after {timeout_ms}ms while trying to connect to {where}."
        warned = False
        while True:
            if stop.is_set():
                return False
            try:
                conn = socket.create_connection((self.host, self.port), timeout=1)
                break
            except OSError:
                if not warned:
                    stamp = time.strftime("%m%d %H:%M:%S")
                    S.log_raw(
                        f"[rank{self.tp_rank}]:[W{stamp}.000000000 TCPStore.cpp:358] [c10d] TCP client failed to "
                        f"connect/validate to host {self.host}:{self.port} - retrying (try=0, timeout={timeout_ms}ms, "
                        f"delay=1000ms): {timed_out}"
                    )
                    warned = True
                if time.monotonic() >= deadline:
                    self._fail(f"torch.distributed.DistNetworkError: {timed_out}")
                stop.wait(0.1)
        conn.sendall(f"rank {self.rank}\n".encode())
        conn.settimeout(0.1)
        answer = b""
        while not answer.endswith(b"\n"):
            if stop.is_set():
                return False
            if time.monotonic() >= deadline:
                self._fail("torch.distributed.DistStoreError: Socket Timeout")
            try:
                chunk = conn.recv(64)
            except TimeoutError:
                continue
            if not chunk:  # rank 0 went away before everyone joined
                self._fail("torch.distributed.DistNetworkError: failed to recv, got 0 bytes")
            answer += chunk
        conn.settimeout(None)
        self.peers.append(conn)
        return True

    def watch(self, on_loss) -> None:
        """Call on_loss(peer) once, when any connected rank disappears (its socket closes)."""
        lost = threading.Event()

        def read(conn: socket.socket) -> None:
            peer = conn.getpeername()
            try:
                while conn.recv(64):
                    pass
            except OSError:
                pass
            if not lost.is_set():
                lost.set()
                on_loss(f"{peer[0]}<{peer[1]}>")

        for conn in self.peers:
            threading.Thread(target=read, args=(conn,), name="standin-nccl", daemon=True).start()
