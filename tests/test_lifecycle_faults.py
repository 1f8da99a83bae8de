"""Every lifecycle fault ends within its bound, with the evidence kept: the real `deploy.py --local` against the
stand-in SGLang's fault modes, and the runtime's own pieces where a fault cannot be staged with processes.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from standin.harness import Process, alive, free_port, kill_standin, standin_env, wait_until

from conftest import ROOT
from deploygen.runtime import engine as runtime_engine
from deploygen.runtime.engine import DRAIN_SECONDS, KILL_WAIT_SECONDS, PROGRESS_EVERY, OutputLines

DEPLOY = ROOT / "generated" / "b200-prod" / "deploy.py"
API_KEY = "sk-test-lifecycle-faults-0123456789"
GRACE = 1.0
CRASH_LINE = "RuntimeError: CUDA error: an illegal memory access was encountered"
SIGQUIT_LINE = "Received sigquit from a child process. It usually means the child failed."


class Local(Process):
    """`python deploy.py --local` (b200-prod: --tp-size 8) against the stand-in, in a session of its own."""

    def __init__(self, tmp_path: Path, grace: float = GRACE, health_timeout: float = 30, **knobs: str):
        self.control = tmp_path / "control"
        self.control.mkdir(exist_ok=True)
        self.pid_file = tmp_path / "pids"
        self.port = free_port()
        env = standin_env(
            {
                "API_KEY": API_KEY,
                "STANDIN_LOAD_SECONDS": "0.2",
                "STANDIN_WARMUP_SECONDS": "0.1",
                "STANDIN_CONTROL_DIR": str(self.control),
                "STANDIN_PID_FILE": str(self.pid_file),
                **knobs,
            }
        )
        argv = [sys.executable, str(DEPLOY), "--local", "--port", str(self.port)]
        argv += ["--cache-dir", str(tmp_path / "cache"), "--model-path", str(tmp_path / "no-weights-here")]
        argv += ["--health-timeout", str(health_timeout), "--shutdown-grace", str(grace)]
        super().__init__(argv, env)

    def engine_pids(self) -> list[int]:
        return [int(p) for p in self.pid_file.read_text().split()] if self.pid_file.exists() else []

    def crash_engine(self, code: int) -> float:
        (self.control / "crash.tmp").write_text(str(code))
        (self.control / "crash.tmp").rename(self.control / "crash")
        return time.monotonic()

    def kill_all(self) -> None:
        self.kill_group()  # deploy.py's own session
        kill_standin(self.engine_pids())


@pytest.fixture
def local(tmp_path):
    started: list[Local] = []

    def start(**kwargs) -> Local:
        directory = tmp_path / f"run{len(started)}"
        directory.mkdir()
        started.append(Local(directory, **kwargs))
        return started[-1]

    yield start
    for run in started:
        run.kill_all()


def nothing_left(run: Local) -> bool:
    pids = run.engine_pids()
    assert pids, "the stand-in never wrote its PIDs"
    return wait_until(lambda: not any(alive(pid) for pid in pids), timeout=2)


# --- 1. SIGTERM is honoured in every phase ----------------------------------------------------------

# Each phase held long enough for the signal to land in it, with an engine that ignores SIGTERM there
# (the worst case: only the SIGKILL after the grace ends it), and the line that says we are in it.
PHASES = {
    "loading": ({"STANDIN_LOAD_SECONDS": "60", "STANDIN_SHUTDOWN_SECONDS": "0.01,loading:inf"}, "Load weight begin"),
    "health wait": (
        {"STANDIN_WARMUP_SECONDS": "60", "STANDIN_SHUTDOWN_SECONDS": "0.01,starting:inf"},
        "Uvicorn running on",
    ),
    # uvicorn waits for the warmup requests in flight: SGLang does not exit while they run.
    "warmup": ({"STANDIN_REQUEST_DELAY": "60"}, "Prefill batch."),
    "serving": ({"STANDIN_SHUTDOWN_SECONDS": "0.01,serving:inf"}, "[local] ready on"),
}


@pytest.mark.parametrize("phase", PHASES)
def test_sigterm_in_each_phase_exits_within_the_grace_plus_a_second(local, phase):
    knobs, reached = PHASES[phase]
    run = local(**knobs)
    run.seen_at(reached, timeout=30)
    sent = run.signal()
    assert run.wait(GRACE + 5) == 0
    assert time.monotonic() - sent <= GRACE + 1
    assert nothing_left(run)
    assert "[local] ready on" not in run.output or phase == "serving"
    assert f"[engine] still running after {GRACE}s: SIGKILL" in run.output


def test_a_second_sigterm_during_the_stop_kills_at_once(local):
    run = local(grace=30, STANDIN_SHUTDOWN_SECONDS="0.01,serving:inf")
    run.seen_at("[local] ready on", timeout=30)
    run.signal()
    run.seen_at("[local] stopping")
    time.sleep(0.3)
    assert run.running()
    again = run.signal()
    assert run.wait(5) == 0
    assert time.monotonic() - again <= 1
    assert "[engine] on a second signal: SIGKILL" in run.output
    assert nothing_left(run)


def test_a_polite_engine_stops_without_waiting_for_the_grace(local):
    run = local(grace=20)
    run.seen_at("[local] ready on", timeout=30)
    sent = run.signal()
    assert run.wait(10) == 0
    assert time.monotonic() - sent < 1.5
    assert "[engine] stopped (code 0)" in run.output
    assert "SIGKILL" not in run.output


# --- 2. The crash evidence survives -----------------------------------------------------------------


@pytest.mark.parametrize("attempt", range(4))
def test_a_crash_while_serving_logs_the_whole_traceback_before_the_fatal_line(local, attempt):
    run = local(STANDIN_STUBBORN_WORKERS="1")
    run.seen_at("[local] ready on", timeout=30)
    crashed = run.crash_engine(7)
    assert run.wait(10) == 1
    assert time.monotonic() - crashed < 1 + DRAIN_SECONDS
    lines = run.output.splitlines()
    fatal = lines.index("[monitor] FATAL: SGLang died (code 7)")
    assert lines[fatal - 1].endswith(SIGQUIT_LINE)
    assert lines[fatal - 2] == CRASH_LINE
    assert nothing_left(run)


def test_a_death_during_the_warmup_reports_the_exit_code_and_the_log_tail(local):
    run = local(STANDIN_FAULT="crash-during-warmup", STANDIN_EXIT_CODE="5")
    assert run.wait(30) == 1
    report = run.output.split("SGLang exited with code 5 during the warmup. Last log lines:\n", 1)[1]
    assert CRASH_LINE in report.splitlines()
    assert "request failed" not in run.output and "ConnectionError" not in run.output
    assert "[warmup] FAILED" not in run.output
    assert nothing_left(run)


def test_a_death_by_signal_names_the_signal(local):
    run = local()
    run.seen_at("[local] ready on", timeout=30)
    os.kill(run.engine_pids()[0], signal.SIGKILL)
    assert run.wait(10) == 1
    assert "[monitor] FATAL: SGLang died (code -9 (SIGKILL))" in run.output


# --- 3. Correct liveness ------------------------------------------------------------------------------


def test_dead_unreaped_workers_do_not_hold_the_stop_for_the_grace(local):
    # The stand-in, like SGLang, never reaps the workers it stops; with no reaping init they stay zombies.
    run = local(grace=20)
    run.seen_at("[local] ready on", timeout=30)
    sent = run.signal()
    assert run.wait(10) == 0
    assert time.monotonic() - sent < 1.5
    assert "SIGKILL" not in run.output


@pytest.mark.parametrize("attempt", range(3))
def test_sigterm_to_the_container_and_the_engine_together_is_a_shutdown_not_a_crash(local, attempt):
    run = local()
    run.seen_at("[local] ready on", timeout=30)
    engine = run.engine_pids()[0]
    # Delivered a moment apart, as a container-wide SIGTERM is: SGLang may be gone before the stop begins.
    os.killpg(engine, signal.SIGTERM)
    time.sleep(0.1)
    run.signal()
    assert run.wait(10) == 0, run.output
    assert "FATAL" not in run.output
    assert nothing_left(run)


def test_stop_reaps_the_workers_it_adopted(tmp_path, capfd):
    # In this process: Engine.start makes it the reaper of SGLang's orphans, so they end fully gone.
    pid_file = tmp_path / "pids"
    env = standin_env({"STANDIN_PID_FILE": str(pid_file), "STANDIN_LOAD_SECONDS": "0.05"})
    port = free_port()
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", "/m", "--tp-size", "3"]
    engine = runtime_engine.Engine([*cmd, "--host", "127.0.0.1", "--port", str(port)], env, port, "m")
    engine.start()
    engine.wait_until_healthy(20, 0.05, 0.25)
    workers = [int(pid) for pid in pid_file.read_text().split()][1:]
    engine.stop(5)
    assert "[engine] stopped (code 0)" in capfd.readouterr().out
    wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=2)


# --- 4. Bounded everything ----------------------------------------------------------------------------


def test_stop_gives_up_on_processes_that_survive_sigkill(tmp_path, monkeypatch, capfd):
    # A process in uninterruptible sleep (a GPU driver call) survives SIGKILL: stop() must still return.
    env = standin_env({"STANDIN_SHUTDOWN_SECONDS": "0.01,serving:inf"})
    port = free_port()
    cmd = [sys.executable, "-m", "sglang.launch_server", "--model-path", "/m", "--host", "127.0.0.1"]
    engine = runtime_engine.Engine([*cmd, "--port", str(port)], env, port, "m")
    engine.start()
    engine.wait_until_healthy(20, 0.05, 0.25)
    monkeypatch.setattr(runtime_engine, "group_alive", lambda group: True)
    started = time.monotonic()
    engine.stop(0.5)
    assert time.monotonic() - started <= 0.5 + KILL_WAIT_SECONDS + DRAIN_SECONDS + 0.3
    assert "[engine] SIGKILL sent, but SGLang's processes are still there after 0.5s" in capfd.readouterr().out


def test_the_exit_handler_is_safe_when_enter_failed_before_the_engine_existed():
    spec = importlib.util.spec_from_file_location("deploy_lifecycle_faults", DEPLOY)
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    server_cls = deploy.Server._get_user_cls()
    server = server_cls.__new__(server_cls)
    assert server.engine is None
    assert server_cls.__dict__["stop"]._get_raw_f()(server) is None


# --- 6. Progress stays visible ------------------------------------------------------------------------


def test_weight_loading_progress_reaches_the_log_as_it_happens_rate_limited(local):
    run = local(STANDIN_LOAD_SECONDS="1.5", STANDIN_SHARDS="6")
    first = run.seen_at("Loading safetensors checkpoint shards:   0% Completed | 0/6 [00:00<?, ?it/s]\n")
    loaded = run.seen_at("Load weight end.")
    assert loaded - first >= 1.0  # logged when drawn, not when the bar ended
    lines = [line for line in run.output.splitlines() if "Loading safetensors checkpoint shards" in line]
    assert [line.split("|")[1].split("[")[0].strip() for line in lines] == ["0/6", "6/6"]  # one per PROGRESS_EVERY
    assert "\r" not in run.output


def test_output_lines_split_carriage_returns_and_rate_limit_progress():
    lines = OutputLines(every=5)
    assert lines.feed("server_args=...\nLoading", 0.0) == ["server_args=..."]
    assert lines.feed(" weights\n\r 0% | 0/3", 0.1) == ["Loading weights", " 0% | 0/3"]  # drawn: logged at once
    assert lines.feed("\r33% | 1/3", 1.0) == []  # within 5 s of the last progress line
    assert lines.idle(5.2) == ["33% | 1/3"]  # still on screen 5 s later: logged without waiting for more
    assert lines.feed("\r67% | 2/3\r100% | 3/3", 6.0) == []
    assert lines.feed("\nnext line\r\nlast", 6.1) == ["100% | 3/3", "next line"]  # the bar's final state
    assert lines.close() == ["last"]
    assert PROGRESS_EVERY >= 1
