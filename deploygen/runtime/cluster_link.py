"""The cluster watch of a multi-node server: every rank learns of any other rank's end within a second.

Modal leaves a server container running until SIGTERM whatever its engine does, and documents ending
a cluster only on preemption; NCCL notices a dead rank only when a collective fails or times out
(docs/multinode.md). So the ranks watch each other: rank 0 listens, every other rank keeps one TCP
connection to it, and both ends send a heartbeat every BEAT_INTERVAL seconds. Messages are JSON lines:

    {"event": "hello", "rank": r}    rank r joined             {"event": "joined"}  every rank is here
    {"event": "beat"}                I am alive                 {"event": "ready"}   rank 0 serves
    {"event": "ended", "rank": r, "why": ..., "code": ..., "detail": ..., "tail": [...]}

A rank that ends says so first (`leave`); rank 0 relays what it hears to every other rank. A closed
connection (the process died) or BEAT_TIMEOUT seconds of silence (the container vanished) counts as
that rank's end too. Standard library only: this code runs in the container and in `--local`.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import NamedTuple

BEAT_INTERVAL = 1.0
BEAT_TIMEOUT = 10.0
CONNECT_RETRY = 0.25


class ClusterError(RuntimeError):
    """The cluster did not come together, or came apart while starting."""


class RankEnd(NamedTuple):
    """Why a rank left the cluster: `stopping` (SIGTERM), `died` (its engine), `failed` (its start), `lost`."""

    rank: int
    why: str
    code: int | None = None
    detail: str = ""
    tail: tuple[str, ...] = ()

    @property
    def graceful(self) -> bool:
        return self.why == "stopping"

    def describe(self) -> str:
        """What the logs of the other ranks say about it."""
        if self.why == "stopping":
            text = f"rank {self.rank} is stopping" + (f" ({self.detail})" if self.detail else "")
        elif self.why == "died":
            text = f"rank {self.rank} died (exit code {self.code})" + (f": {self.detail}" if self.detail else "")
        elif self.why == "failed":
            text = f"rank {self.rank} failed to start: {self.detail}"
        else:
            text = f"rank {self.rank} is gone: {self.detail}"
        if self.tail:
            text += f"\nlast log lines of rank {self.rank}:\n" + "\n".join(f"    {line}" for line in self.tail)
        return text

    def message(self) -> dict:
        return {
            "event": "ended",
            "rank": self.rank,
            "why": self.why,
            "code": self.code,
            "detail": self.detail,
            "tail": list(self.tail),
        }

    @classmethod
    def from_message(cls, message: dict) -> RankEnd:
        return cls(
            int(message["rank"]),
            str(message["why"]),
            message.get("code"),
            str(message.get("detail", "")),
            tuple(str(line) for line in message.get("tail", ())),
        )


def host_port(host: str, port: int) -> str:
    """`host:port`, with an IPv6 host in brackets as SGLang's --dist-init-addr requires."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class ClusterLink:
    """This rank's end of the watch. `on_end(RankEnd)` runs once, on the first end of another rank."""

    def __init__(
        self,
        rank: int,
        size: int,
        rank0_host: str,
        port: int,
        on_end: Callable[[RankEnd], None],
        bind_host: str = "::",
        beat_interval: float = BEAT_INTERVAL,
        beat_timeout: float = BEAT_TIMEOUT,
    ):
        self.rank = rank
        self.size = size
        self.rank0_host = rank0_host
        self.port = port
        self.bind_host = bind_host
        self.on_end = on_end
        self.beat_interval = beat_interval
        self.beat_timeout = beat_timeout
        self.joined = threading.Event()
        self.ready = threading.Event()
        self.ended = threading.Event()
        self.end: RankEnd | None = None
        self._peers: dict[int, socket.socket] = {}
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # beats and events from several threads: whole lines only
        self._leaving = False

    # --- joining -------------------------------------------------------------------------------

    def join(self, timeout: float, cancel: threading.Event | None = None) -> None:
        """Return once every rank is connected; raise ClusterError after `timeout` seconds or on cancel."""
        deadline = time.monotonic() + timeout
        if self.size == 1:
            self.joined.set()
        elif self.rank == 0:
            self._accept_all(deadline, cancel)
        else:
            self._connect(deadline, cancel)
        threading.Thread(target=self._beat, name="cluster-beat", daemon=True).start()

    def _accept_all(self, deadline: float, cancel: threading.Event | None) -> None:
        family = socket.AF_INET6 if ":" in self.bind_host else socket.AF_INET
        server = socket.socket(family, socket.SOCK_STREAM)
        try:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                server.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)  # IPv4 peers too
            server.bind((self.bind_host, self.port))
            server.listen(self.size)
            server.settimeout(0.1)
            pending: list[socket.socket] = []
            while len(self._peers) < self.size - 1:
                if cancel is not None and cancel.is_set():
                    raise ClusterError("cluster join cancelled")
                if time.monotonic() > deadline:
                    missing = sorted(set(range(1, self.size)) - set(self._peers))
                    raise ClusterError(f"ranks {missing} did not join the cluster watch on port {self.port} in time")
                try:
                    conn, _ = server.accept()
                except TimeoutError:
                    continue
                conn.settimeout(max(deadline - time.monotonic(), 0.1))
                pending.append(conn)
                hello = _read_message(conn)
                if hello and hello.get("event") == "hello" and 0 < int(hello.get("rank", -1)) < self.size:
                    with self._lock:
                        self._peers[int(hello["rank"])] = conn
                else:
                    conn.close()
        except OSError as exc:
            self._close_all()
            raise ClusterError(f"cluster watch on port {self.port}: {exc}") from exc
        except ClusterError:
            self._close_all()
            raise
        finally:
            server.close()
        self._broadcast({"event": "joined"})
        self.joined.set()
        for rank, conn in self._peers.items():
            threading.Thread(target=self._read, args=(rank, conn), name=f"cluster-rank{rank}", daemon=True).start()

    def _connect(self, deadline: float, cancel: threading.Event | None) -> None:
        address = host_port(self.rank0_host, self.port)
        last_error = "no answer"
        while True:
            if cancel is not None and cancel.is_set():
                raise ClusterError("cluster join cancelled")
            if time.monotonic() > deadline:
                raise ClusterError(f"rank 0 did not answer on {address} ({last_error})")
            try:
                conn = socket.create_connection((self.rank0_host, self.port), timeout=1.0)
                break
            except OSError as exc:
                last_error = exc.strerror or type(exc).__name__
                time.sleep(CONNECT_RETRY)
        with self._lock:
            self._peers[0] = conn
        _send(conn, {"event": "hello", "rank": self.rank})
        threading.Thread(target=self._read, args=(0, conn, deadline), name="cluster-rank0", daemon=True).start()
        while not self.joined.wait(0.05):
            if self.ended.is_set():
                raise ClusterError(f"cluster ended while joining: {self.end.describe()}")
            if cancel is not None and cancel.is_set():
                raise ClusterError("cluster join cancelled")
            if time.monotonic() > deadline:
                raise ClusterError(f"rank 0 at {address} did not see every rank join in time")

    # --- while the cluster runs --------------------------------------------------------------

    def announce_ready(self) -> None:
        """Rank 0: tell every rank that the cluster serves."""
        self.ready.set()
        self._broadcast({"event": "ready"})

    def leave(self, why: str, code: int | None = None, detail: str = "", tail: Iterable[str] = ()) -> None:
        """Tell every other rank that this one ends and why, then close the watch."""
        with self._lock:
            if self._leaving:
                return
            self._leaving = True
        self._broadcast(RankEnd(self.rank, why, code, detail, tuple(tail)).message())
        self._close_all()

    def _read(self, rank: int, conn: socket.socket, join_deadline: float | None = None) -> None:
        buffer = b""
        while True:
            # While joining, rank 0 may be busy accepting the others: wait up to the join deadline.
            waiting_for_join = join_deadline is not None and not self.joined.is_set()
            try:
                conn.settimeout(max(join_deadline - time.monotonic(), 0.1) if waiting_for_join else self.beat_timeout)
                chunk = conn.recv(65536)
            except TimeoutError:
                self._peer_ended(RankEnd(rank, "lost", detail=f"no heartbeat for {self.beat_timeout:g}s"))
                return
            except OSError as exc:
                chunk, error = b"", exc.strerror or type(exc).__name__
            else:
                error = "connection closed"
            if not chunk:
                self._peer_ended(RankEnd(rank, "lost", detail=error))
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                event = message.get("event")
                if event == "joined":
                    self.joined.set()
                elif event == "ready":
                    self.ready.set()
                elif event == "ended":
                    self._peer_ended(RankEnd.from_message(message))
                    return

    def _peer_ended(self, end: RankEnd) -> None:
        with self._lock:
            if self._leaving or self.ended.is_set():
                return
            self.end = end
            self.ended.set()
        if self.rank == 0:
            self._broadcast(end.message(), skip=end.rank)  # the star's centre tells everyone
        self.on_end(end)

    def _beat(self) -> None:
        while not self._leaving:
            self._broadcast({"event": "beat"})
            time.sleep(self.beat_interval)

    def _broadcast(self, message: dict, skip: int | None = None) -> None:
        with self._lock:
            peers = [conn for rank, conn in self._peers.items() if rank != skip]
        with self._send_lock:
            for conn in peers:
                _send(conn, message)

    def _close_all(self) -> None:
        with self._lock:
            peers, self._peers = list(self._peers.values()), {}
        for conn in peers:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def _send(conn: socket.socket, message: dict) -> None:
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass  # the reader of that connection reports the peer's end


def _read_message(conn: socket.socket) -> dict | None:
    """One JSON line, read before the connection has a reader thread (the hello)."""
    buffer = b""
    try:
        while b"\n" not in buffer:
            chunk = conn.recv(4096)
            if not chunk:
                return None
            buffer += chunk
        return json.loads(buffer.split(b"\n", 1)[0])
    except (OSError, ValueError):
        return None
