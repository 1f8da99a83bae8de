"""The cluster watch over real sockets: joining, ends relayed to every rank, lost peers, timeouts."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from deploygen.runtime.cluster_link import ClusterError, ClusterLink, RankEnd, host_port


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Rank:
    """One rank's link with the ends it heard of and when."""

    def __init__(self, rank: int, size: int, port: int, **kwargs):
        self.ends: list[tuple[RankEnd, float]] = []
        self.heard = threading.Event()
        self.link = ClusterLink(rank, size, "127.0.0.1", port, self._on_end, bind_host="127.0.0.1", **kwargs)

    def _on_end(self, end: RankEnd) -> None:
        self.ends.append((end, time.monotonic()))
        self.heard.set()


def start_cluster(size: int, **kwargs) -> list[Rank]:
    port = free_port()
    ranks = [Rank(r, size, port, **kwargs) for r in range(size)]
    errors: list[BaseException] = []

    def join(rank: Rank) -> None:
        try:
            rank.link.join(10)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=join, args=(rank,)) for rank in reversed(ranks)]  # rank 0 last
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(15)
    assert not errors
    return ranks


def stop_cluster(ranks: list[Rank]) -> None:
    for rank in ranks:
        rank.link.leave("stopping")


def test_formats_ipv6_hosts_in_brackets_as_sglang_requires():
    assert host_port("fdaa:5137:3ebf:a70::1", 20000) == "[fdaa:5137:3ebf:a70::1]:20000"
    assert host_port("10.0.0.2", 20000) == "10.0.0.2:20000"


def test_every_rank_joins_before_join_returns_even_when_rank_0_starts_last():
    ranks = start_cluster(3)
    try:
        assert all(rank.link.joined.is_set() for rank in ranks)
        assert not any(rank.heard.is_set() for rank in ranks)
    finally:
        stop_cluster(ranks)


def test_a_death_on_rank_2_reaches_rank_0_and_rank_1_with_its_exit_code_and_log_tail():
    ranks = start_cluster(3)
    try:
        left = time.monotonic()
        ranks[2].link.leave("died", code=137, detail="SGLang exited", tail=["Killed", "scheduler_TP3 gone"])
        for rank in ranks[:2]:
            assert rank.heard.wait(2)
            end, when = rank.ends[0]
            assert when - left < 0.5
            assert end == RankEnd(2, "died", 137, "SGLang exited", ("Killed", "scheduler_TP3 gone"))
            assert not end.graceful
        assert ranks[1].ends[0][0].describe() == (
            "rank 2 died (exit code 137): SGLang exited\nlast log lines of rank 2:\n    Killed\n    scheduler_TP3 gone"
        )
        assert not ranks[2].ends
    finally:
        stop_cluster(ranks)


def test_rank_0_stopping_tells_every_other_rank_it_was_graceful():
    ranks = start_cluster(3)
    try:
        ranks[0].link.leave("stopping", detail="SIGTERM")
        for rank in ranks[1:]:
            assert rank.heard.wait(2)
            assert rank.ends[0][0].graceful
            assert rank.ends[0][0].rank == 0
    finally:
        stop_cluster(ranks)


def test_a_rank_whose_connection_drops_without_a_word_is_lost():
    ranks = start_cluster(2)
    try:
        dropped = time.monotonic()
        ranks[1].link._close_all()  # what the kernel does when the process is killed
        assert ranks[0].heard.wait(2)
        end, when = ranks[0].ends[0]
        assert (end.rank, end.why, end.detail) == (1, "lost", "connection closed")
        assert when - dropped < 0.5
    finally:
        stop_cluster(ranks)


def test_a_rank_that_falls_silent_is_lost_after_the_heartbeat_timeout():
    port = free_port()
    rank0 = Rank(0, 2, port, beat_interval=0.1, beat_timeout=0.5)
    joining = threading.Thread(target=rank0.link.join, args=(5,))
    joining.start()
    for _ in range(100):  # rank 0 may not listen yet
        try:
            silent = socket.create_connection(("127.0.0.1", port), timeout=5)
            break
        except OSError:
            time.sleep(0.05)
    silent.sendall(json.dumps({"event": "hello", "rank": 1}).encode() + b"\n")
    joining.join(5)
    try:
        assert rank0.heard.wait(3)
        assert rank0.ends[0][0] == RankEnd(1, "lost", detail="no heartbeat for 0.5s")
    finally:
        silent.close()
        rank0.link.leave("stopping")


def test_ready_from_rank_0_reaches_the_other_ranks():
    ranks = start_cluster(2)
    try:
        ranks[0].link.announce_ready()
        assert ranks[1].link.ready.wait(2)
    finally:
        stop_cluster(ranks)


def test_rank_0_names_the_ranks_that_never_joined():
    port = free_port()
    rank0 = Rank(0, 3, port)
    rank1 = Rank(1, 3, port)
    rank1_error: list[ClusterError] = []

    def join_rank1() -> None:
        try:
            rank1.link.join(5)
        except ClusterError as exc:
            rank1_error.append(exc)

    joining = threading.Thread(target=join_rank1)
    joining.start()
    with pytest.raises(ClusterError, match=rf"^ranks \[2\] did not join the cluster watch on port {port} in time$"):
        rank0.link.join(0.8)
    joining.join(5)
    assert str(rank1_error[0]) == "cluster ended while joining: rank 0 is gone: connection closed"


def test_a_rank_names_the_address_of_a_rank_0_that_never_answers():
    port = free_port()
    with pytest.raises(ClusterError, match=rf"^rank 0 did not answer on 127\.0\.0\.1:{port} \(Connection refused\)$"):
        Rank(1, 2, port).link.join(0.5)


def test_join_gives_up_at_once_when_cancelled():
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(ClusterError, match="^cluster join cancelled$"):
        Rank(0, 2, free_port()).link.join(30, cancel)


def run_parts(commands: list[list[str]], **kwargs) -> list[tuple[object, float]]:
    """run_on_cluster on every rank at once (threads, real subprocesses): each rank's result or error, and when."""
    from deploygen.runtime.cluster import run_on_cluster

    port = free_port()
    addresses = ["127.0.0.1"] * len(commands)
    results: list[tuple[object, float]] = [(None, 0.0)] * len(commands)

    def part(rank: int) -> None:
        try:
            outcome: object = run_on_cluster(commands[rank], {}, rank, addresses, port, 10, bind_host="127.0.0.1")
        except RuntimeError as exc:
            outcome = exc
        results[rank] = (outcome, time.monotonic())

    threads = [threading.Thread(target=part, args=(rank,)) for rank in range(len(commands))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


PY = [__import__("sys").executable, "-c"]


def test_a_failed_part_ends_the_other_ranks_part_at_once():
    started = time.monotonic()
    results = run_parts([[*PY, "import time; time.sleep(30)"], [*PY, "print('no kernels'); raise SystemExit(3)"]])
    (rank0, rank0_done), (rank1, _) = results
    assert rank1 == 3
    assert str(rank0) == (
        f"[cluster] rank 1 died (exit code 3): {PY[0]} -c print('no kernels'); raise SystemExit(3) failed\n"
        "last log lines of rank 1:\n    no kernels"
    )
    assert rank0_done - started < 5  # not the 30 s the part would have slept


def test_rank_0_done_ends_the_other_parts_well():
    started = time.monotonic()
    results = run_parts([[*PY, "print('compiled')"], [*PY, "import time; time.sleep(30)"]])
    assert [outcome for outcome, _ in results] == [0, 0]
    assert max(done for _, done in results) - started < 5


def test_only_rank_0_decides_success():
    results = run_parts([[*PY, "import time; time.sleep(1); raise SystemExit(4)"], [*PY, "print('done')"]])
    assert [outcome for outcome, _ in results] == [4, 0]
