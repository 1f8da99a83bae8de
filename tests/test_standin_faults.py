"""The stand-in SGLang's fault modes, model configurations and multi-node rendezvous, as real processes.

These are the behaviours the lifecycle tests lean on; each is checked here against the stand-in alone.
"""

from __future__ import annotations

import math
import signal
import socket
import threading
import time

import httpx
import pytest
from standin.harness import alive, free_port, launch_server, parent_of, process_state, wait_until

HELLO = [{"role": "user", "content": "Hello?"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}
SIGQUIT_LINE = "Received sigquit from a child process. It usually means the child failed."


@pytest.fixture
def launch():
    started = []

    def start(*flags: str, **env: str):
        process, port = launch_server(*flags, env=env)
        process.url = f"http://127.0.0.1:{port}"
        process.port = port
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill_group()


def health(process) -> int | None:
    try:
        return httpx.get(f"{process.url}/health", timeout=2).status_code
    except httpx.TransportError:
        return None


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def chat(process, **body) -> httpx.Response:
    return httpx.post(f"{process.url}/v1/chat/completions", json={"messages": HELLO, **body}, timeout=5)


# --- SIGTERM, phase by phase -----------------------------------------------------------------------

# How to hold the stand-in in each phase, and the line that says it got there.
PHASES = {
    "loading": ({"STANDIN_LOAD_SECONDS": "30"}, "Load weight begin"),
    "starting": ({"STANDIN_WARMUP_SECONDS": "30"}, "Uvicorn running"),
    "serving": ({}, "The server is fired up and ready to roll!"),
}


@pytest.mark.parametrize("phase", PHASES)
def test_sigterm_is_ignored_in_a_phase_set_to_inf_and_honoured_in_the_others(launch, phase):
    hold, reached = PHASES[phase]
    process = launch(**hold, STANDIN_SHUTDOWN_SECONDS=f"0.01,{phase}:inf")
    process.seen_at(reached)
    process.signal(signal.SIGTERM)
    process.signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.running()
    assert "Shutting down" not in process.output

    other = next(p for p in PHASES if p != phase)
    process = launch(**PHASES[other][0], STANDIN_SHUTDOWN_SECONDS=f"0.01,{phase}:inf")
    process.seen_at(PHASES[other][1])
    process.signal()
    assert process.wait(5) == 0


@pytest.mark.parametrize("phase", PHASES)
def test_sigterm_takes_the_shutdown_time_of_the_phase_it_arrives_in(launch, phase):
    hold, reached = PHASES[phase]
    process = launch(**hold, STANDIN_SHUTDOWN_SECONDS=f"0.01,{phase}:0.8")
    process.seen_at(reached)
    sent = process.signal()
    assert process.wait(5) == 0
    assert 0.8 <= time.monotonic() - sent < 2.0
    assert process.output.rstrip().endswith(f"INFO:     Finished server process [{process.pid}]")


def test_sigterm_waits_for_the_requests_in_flight_like_uvicorn(launch):
    process = launch(STANDIN_REQUEST_DELAY="0.8")
    process.seen_at("fired up")
    answers = []
    request = threading.Thread(target=lambda: answers.append(chat(process).status_code))
    request.start()
    process.seen_at("Prefill batch. #new-seq: 1")
    sent = process.signal()
    assert process.wait(5) == 0
    request.join(5)
    assert answers == [200]
    assert time.monotonic() - sent >= 0.5
    assert "INFO:     Waiting for connections to close. (CTRL+C to force quit)" in process.output


def test_a_second_signal_stops_the_wait_for_requests_in_flight(launch):
    process = launch(STANDIN_REQUEST_DELAY="30")
    process.seen_at("fired up")
    answers = []
    threading.Thread(target=lambda: answers.append(status_or_error(process)), daemon=True).start()
    process.seen_at("Prefill batch. #new-seq: 1")
    process.signal()
    process.seen_at("Waiting for connections to close")
    time.sleep(0.3)
    assert process.running()
    forced = process.signal(signal.SIGINT)
    assert process.wait(5) == 0
    assert time.monotonic() - forced < 1.0
    wait_until(lambda: answers == ["RemoteProtocolError"])  # dropped unanswered, as uvicorn's force quit does


def status_or_error(process) -> int | str:
    try:
        return chat(process).status_code
    except httpx.TransportError as e:
        return type(e).__name__


# --- crashes and their evidence --------------------------------------------------------------------


def traceback_of(output: str) -> list[str]:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if "Scheduler hit an exception: Traceback" in line)
    return lines[start:]


def test_a_death_during_warmup_drops_the_first_request_and_exits_with_the_traceback(launch):
    process = launch(STANDIN_FAULT="crash-during-warmup", STANDIN_EXIT_CODE="5")
    process.seen_at("fired up")
    assert health(process) == 200  # healthy: the model dies only when it first runs
    assert status_or_error(process) == "RemoteProtocolError"
    assert process.wait() == 5
    tail = traceback_of(process.output)
    assert len(tail) > 15
    assert tail[-2:] == [
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        tail[-1],
    ]
    assert tail[-1].endswith(SIGQUIT_LINE)


def test_the_crash_file_kills_with_a_full_traceback_written_just_before_the_exit(launch, tmp_path):
    process = launch(STANDIN_CONTROL_DIR=str(tmp_path))
    process.seen_at("fired up")
    (tmp_path / "crash.tmp").write_text("9")
    (tmp_path / "crash.tmp").rename(tmp_path / "crash")
    assert process.wait() == 9
    tail = traceback_of(process.output)
    assert [line for line in tail if line.startswith('  File "')][-1].endswith("in replay")
    assert tail[-2] == "RuntimeError: CUDA error: an illegal memory access was encountered"
    assert tail[-1].endswith(SIGQUIT_LINE)


# --- progress and processes ------------------------------------------------------------------------


def test_weight_loading_progress_arrives_as_carriage_return_updates_while_it_loads(launch):
    process = launch(STANDIN_LOAD_SECONDS="1.0", STANDIN_SHARDS="4")
    first = process.seen_at("\rLoading safetensors checkpoint shards:   0% Completed | 0/4 [00:00<?, ?it/s]")
    last = process.seen_at("\rLoading safetensors checkpoint shards: 100% Completed | 4/4 [00:01<00:00")
    assert last - first >= 0.6  # each update arrived when written, not at the newline
    output = process.output
    bar = output[output.index("\rLoading safetensors") : output.index("4/4 [")]
    assert "\n" not in bar
    assert [f"{n}/4 [" in bar for n in range(4)] == [True] * 4
    process.seen_at("Load weight end.")
    assert output[output.index("4/4 [") :].split("\n", 1)[0].endswith("it/s]")


def test_stopped_workers_stay_unreaped_zombies_until_the_server_exits(launch, tmp_path):
    pid_file = tmp_path / "pids"
    process = launch("--tp-size", "3", STANDIN_PID_FILE=str(pid_file), STANDIN_SHUTDOWN_SECONDS="2")
    process.seen_at("fired up")
    main, *workers = [int(pid) for pid in pid_file.read_text().split()]
    process.signal()
    wait_until(lambda: all(process_state(pid) == "Z" for pid in workers))
    assert [parent_of(pid) for pid in workers] == [main, main]
    assert alive(main)
    assert process.wait(5) == 0


# --- configured like the model ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "thinking, enable_thinking, reasons",
    [
        ("on", None, True),
        ("on", False, False),
        ("off", None, False),
        ("off", True, True),
        ("never", True, False),
    ],
)
def test_reasoning_content_needs_the_parser_and_thinking_on(launch, thinking, enable_thinking, reasons):
    kwargs = {} if enable_thinking is None else {"chat_template_kwargs": {"enable_thinking": enable_thinking}}
    with_parser = launch("--reasoning-parser", "qwen3", STANDIN_THINKING=thinking)
    without = launch(STANDIN_THINKING=thinking)
    for process in (with_parser, without):
        process.seen_at("fired up")
    message = chat(with_parser, **kwargs).json()["choices"][0]["message"]
    assert bool(message["reasoning_content"]) is reasons
    assert not message["content"].startswith("<think>")
    message = chat(without, **kwargs).json()["choices"][0]["message"]
    assert message["reasoning_content"] is None
    assert message["content"].startswith("<think>") is reasons  # the template's thinking, left in the text


def test_tool_calls_need_the_tool_call_parser(launch):
    with_parser, without = launch("--tool-call-parser", "qwen25"), launch()
    for process in (with_parser, without):
        process.seen_at("fired up")
    request = {"tools": [WEATHER_TOOL], "tool_choice": "required"}
    assert chat(with_parser, **request).json()["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == (
        "get_weather"
    )
    choice = chat(without, **request).json()["choices"][0]
    assert choice["message"]["tool_calls"] is None and choice["message"]["content"]


def test_an_embedding_model_serves_embeddings_and_no_chat(launch):
    process = launch("--is-embedding", STANDIN_EMBEDDING_DIM="8")
    process.seen_at("fired up")
    body = {"model": "e5", "input": ["first text", "second text"]}
    response = httpx.post(f"{process.url}/v1/embeddings", json=body, timeout=5).json()
    assert response["object"] == "list" and response["model"] == "e5"
    assert [item["index"] for item in response["data"]] == [0, 1]
    vectors = [item["embedding"] for item in response["data"]]
    assert [len(vector) for vector in vectors] == [8, 8]
    assert all(math.isclose(sum(v * v for v in vector), 1.0) for vector in vectors)
    assert vectors[0] != vectors[1]
    again = httpx.post(f"{process.url}/v1/embeddings", json={"input": "first text"}, timeout=5).json()
    assert again["data"][0]["embedding"] == vectors[0]
    assert response["usage"]["prompt_tokens"] > 0
    assert chat(process).status_code == 400


def test_a_generation_model_refuses_embeddings_with_sglangs_message(launch):
    process = launch()
    process.seen_at("fired up")
    response = httpx.post(f"{process.url}/v1/embeddings", json={"input": "text"}, timeout=5)
    assert response.status_code == 400
    assert response.json()["message"] == (
        "This model does not appear to be an embedding model by default. "
        "Please add `--is-embedding` when launching the server or try another model."
    )


# --- multi-node rendezvous -------------------------------------------------------------------------


@pytest.fixture
def cluster(launch):
    """cluster(nnodes, ranks=..., **env) -> the processes of the ranks asked for, all on one rendezvous address."""
    dist_port = free_port()

    def start(nnodes: int = 2, ranks=None, flags: tuple = (), **env: str):
        address = ["--nnodes", str(nnodes), "--dist-init-addr", f"127.0.0.1:{dist_port}", "--tp-size", str(4 * nnodes)]
        return [launch(*address, "--node-rank", str(rank), *flags, **env) for rank in ranks or range(nnodes)]

    start.dist_port = dist_port
    return start


def test_rank_0_listens_only_once_every_rank_joined(cluster):
    (rank0,) = cluster(ranks=[0])
    rank0.seen_at("Init torch distributed begin.")
    time.sleep(0.5)
    assert not listening(rank0.port) and rank0.running()
    (rank1,) = cluster(ranks=[1])
    rank0.seen_at("fired up")
    assert health(rank0) == 200
    wait_until(lambda: health(rank1) == 200)
    assert chat(rank0).status_code == 200
    assert chat(rank1).status_code == 404  # nodes of rank > 0 serve health only
    assert " TP4] Load weight begin" in rank1.output  # node 1 holds ranks 4..7 of --tp-size 8
    assert " TP0]" not in rank1.output


@pytest.mark.parametrize("dies", [0, 1])
def test_any_rank_death_aborts_the_others_through_the_nccl_watchdog(cluster, dies):
    ranks = cluster(nnodes=3)
    for process in ranks:
        wait_until(lambda p=process: health(p) == 200)
    ranks[dies].kill_group()
    killed = time.monotonic()
    survivors = [p for i, p in enumerate(ranks) if i != dies]
    assert [p.wait(5) for p in survivors] == [-signal.SIGABRT] * 2
    assert time.monotonic() - killed < 1.0
    for process in survivors:
        assert "Process group watchdog thread terminated with exception: NCCL error: remote process exited or " in (
            process.output
        )
        assert "To avoid data inconsistency, we are taking the entire process down." in process.output


def test_a_graceful_stop_of_rank_0_still_aborts_rank_1(cluster):
    rank0, rank1 = cluster()
    wait_until(lambda: health(rank1) == 200)
    rank0.seen_at("fired up")
    rank0.signal()
    assert rank0.wait() == 0
    assert rank1.wait() == -signal.SIGABRT


def test_a_peer_loss_can_hang_instead_like_a_stuck_collective(cluster):
    rank0, rank1 = cluster(STANDIN_PEER_LOSS_SECONDS="inf")
    wait_until(lambda: health(rank1) == 200)
    rank0.seen_at("fired up")
    rank1.kill_group()
    time.sleep(0.5)
    assert rank0.running() and health(rank0) == 200


def test_rank_1_without_rank_0_times_out_with_torchs_error(cluster):
    (rank1,) = cluster(ranks=[1], flags=("--dist-timeout", "1"), STANDIN_EXIT_CODE="1")
    started = time.monotonic()
    assert rank1.wait() == 1
    assert 1.0 <= time.monotonic() - started < 4.0
    where = f"(127.0.0.1, {cluster.dist_port})"
    assert (
        f"[c10d] TCP client failed to connect/validate to host 127.0.0.1:{cluster.dist_port} - retrying (try=0, "
        "timeout=1000ms, delay=1000ms): The client socket has timed out after 1000ms while trying to connect to "
        f"{where}."
    ) in rank1.output
    tail = traceback_of(rank1.output)
    assert tail[-2] == (
        f"torch.distributed.DistNetworkError: The client socket has timed out after 1000ms while trying to connect "
        f"to {where}."
    )
    assert "in init_process_group" in "\n".join(tail)


def test_rank_0_alone_times_out_waiting_for_the_other_ranks(cluster):
    (rank0,) = cluster(ranks=[0], flags=("--dist-timeout", "1"))
    assert rank0.wait() == 1
    assert traceback_of(rank0.output)[-2] == (
        "torch.distributed.DistStoreError: Timed out after 2 seconds waiting for clients. 4/8 clients joined."
    )
    assert "Uvicorn running" not in rank0.output


def test_a_taken_rendezvous_port_fails_rank_0_like_torch(cluster):
    with socket.create_server(("127.0.0.1", cluster.dist_port)):
        (rank0,) = cluster(ranks=[0])
        assert rank0.wait() == 1
    assert traceback_of(rank0.output)[-2] == (
        "torch.distributed.DistNetworkError: The server socket has failed to listen on any local network address. "
        f"port: {cluster.dist_port}, useIpv6: false, code: -98, name: EADDRINUSE, message: address already in use"
    )


def test_sigterm_during_the_rendezvous_stops_at_once(cluster):
    (rank0,) = cluster(ranks=[0])
    rank0.seen_at("Init torch distributed begin.")
    sent = rank0.signal()
    assert rank0.wait() == 0
    assert time.monotonic() - sent < 1.0
