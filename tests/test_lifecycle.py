"""The rendered lifecycle, run for real through `deploy.py --local` against the stand-in SGLang and the
stand-in vLLM: every scenario for both engines' renders."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from standin.harness import kill_standin

from conftest import ROOT

DEPLOY = ROOT / "generated" / "b200-prod" / "deploy.py"
API_KEY = "sk-test-lifecycle-key-0123456789"
# What each engine's render and stand-in show of the same lifecycle.
ENGINES = {
    "sglang": SimpleNamespace(
        deploy=DEPLOY, name="SGLang", args_line="server_args=ServerArgs(", redacted="api_key='***'", processes=8
    ),
    # The stand-in vLLM runs as `vllm` from tests/standin/bin; vLLM itself redacts the key in its args line.
    "vllm": SimpleNamespace(
        deploy=ROOT / "generated" / "glm-5.1-h200-vllm" / "deploy.py",
        name="vLLM",
        args_line="non-default args:",
        redacted="'api_key': '***'",
        processes=9,  # the API server, the engine core and 7 TP workers
    ),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Local:
    """`python deploy.py --local` in its own process group, its output collected line by line."""

    def __init__(self, tmp_path: Path, deploy: Path, health_timeout: float = 20, grace: float = 5, **standin: str):
        self.control = tmp_path / "control"
        self.control.mkdir()
        self.pid_file = tmp_path / "pids"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT / "tests" / "standin"),
            "PATH": f"{ROOT / 'tests' / 'standin' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "API_KEY": API_KEY,
            "STANDIN_LOAD_SECONDS": "0.3",
            "STANDIN_WARMUP_SECONDS": "0.2",
            "STANDIN_CONTROL_DIR": str(self.control),
            "STANDIN_PID_FILE": str(self.pid_file),
            **standin,
        }
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(deploy),
                "--local",
                "--port",
                str(self.port),
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
        self.lines: list[str] = []
        self.seen: dict[str, float] = {}
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            self.seen.setdefault(line.strip(), time.monotonic())

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float = 30) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line, when in list(self.seen.items()):
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

    def engine_pids(self) -> list[int]:
        return [int(p) for p in self.pid_file.read_text().split()] if self.pid_file.exists() else []

    def kill(self) -> None:
        # deploy.py's own session, then what is left of the stand-in: only PIDs that are still stand-in
        # processes, since a PID from the file may belong to anyone by now.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        kill_standin(self.engine_pids())


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "\nState:\tZ" not in status.read_text()


@pytest.fixture(scope="module")
def cls_deploy(tmp_path_factory) -> Path:
    """b200-prod rendered with `server.interface: cls`: the same lifecycle under @app.cls."""
    from conftest import child
    from deploygen.pipeline import check
    from deploygen.render import render_deployment

    folder = tmp_path_factory.mktemp("cls")
    path = folder / "deploy.py"
    path.write_text(render_deployment(check(str(child(folder, "server:\n  interface: cls\n"))).deployment))
    return path


@pytest.fixture(params=[*sorted(ENGINES), "sglang-cls"])
def engine(request) -> SimpleNamespace:
    """Each engine's render (@app.server), and SGLang's under the cls interface."""
    if request.param == "sglang-cls":
        return SimpleNamespace(**{**vars(ENGINES["sglang"]), "deploy": request.getfixturevalue("cls_deploy")})
    return ENGINES[request.param]


@pytest.fixture
def local(tmp_path, engine):
    started: list[Local] = []

    def start(**kwargs) -> Local:
        run = Local(tmp_path, engine.deploy, **kwargs)
        started.append(run)
        return run

    yield start
    for run in started:
        run.kill()


def test_happy_path_becomes_ready_after_health_and_four_warmups(local):
    run = local()
    run.wait_for("[local] ready")
    assert "[health] passed on attempt" in run.output
    for path in ("chat", "no-thinking", "long-context", "tool-call"):
        assert f"[warmup] {path} ok in" in run.output
    assert "[warmup] 4 requests passed" in run.output
    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == 0


def test_crash_while_serving_exits_1_within_a_second(local, engine):
    run = local()
    run.wait_for("[local] ready")
    crashed = time.monotonic()
    (run.control / "crash").write_text("7")
    assert run.wait(timeout=10) == 1
    fatal = run.wait_for(f"[monitor] FATAL: {engine.name} died (code 7)")
    assert fatal - crashed < 1.0
    assert time.monotonic() - crashed < 2.0


def test_a_crash_takes_the_tp_workers_down_with_it(local):
    run = local(STANDIN_STUBBORN_WORKERS="1")
    run.wait_for("[local] ready")
    pids = run.engine_pids()
    (run.control / "crash").write_text("9")
    assert run.wait(timeout=10) == 1
    deadline = time.monotonic() + 2
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def test_sigterm_during_startup_stops_at_once(local, engine):
    run = local(health_timeout=120, STANDIN_LOAD_SECONDS="30")
    run.wait_for(f"[engine] started {engine.name}")
    time.sleep(0.5)
    stopped = time.monotonic()
    run.process.send_signal(signal.SIGTERM)
    assert run.wait(timeout=15) == 0
    assert time.monotonic() - stopped < 5
    assert "[engine] start cancelled" in run.output
    assert "[local] ready" not in run.output


def test_death_during_load_fails_fast_with_the_exit_code(local, engine):
    started = time.monotonic()
    run = local(health_timeout=120, STANDIN_FAULT="crash-during-load", STANDIN_EXIT_CODE="3")
    assert run.wait() == 1
    assert time.monotonic() - started < 10
    assert f"{engine.name} exited with code 3 before it was healthy. Last log lines:" in run.output


def test_health_that_never_turns_green_times_out_with_the_log_tail(local, engine):
    run = local(health_timeout=2, STANDIN_FAULT="never-healthy")
    assert run.wait() == 1
    assert "[health] timed out after 2.0s" in run.output
    tail = run.output.split("Last log lines:")[1]
    assert engine.args_line in tail


@pytest.mark.parametrize("fault", ["bad-warmup", "fail-requests"])
def test_a_failing_warmup_fails_the_start(local, fault):
    run = local(STANDIN_FAULT=fault)
    assert run.wait() == 1
    assert "[warmup] FAILED: " in run.output
    assert "[local] ready" not in run.output


def test_sigterm_stops_gracefully_and_leaves_no_process(local, engine):
    run = local(STANDIN_STUBBORN_WORKERS="1", grace=1)
    run.wait_for("[local] ready")
    pids = run.engine_pids()
    assert len(pids) == engine.processes  # SGLang: the server and 7 TP workers (--tp-size 8)
    run.process.send_signal(signal.SIGTERM)
    assert run.wait() == 0
    assert "[engine] still running after 1.0s: SIGKILL" in run.output
    deadline = time.monotonic() + 3
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [p for p in pids if alive(p)] == []


def test_the_api_key_never_reaches_the_logs(local, engine):
    run = local()
    run.wait_for("[local] ready")
    run.process.send_signal(signal.SIGTERM)
    run.wait()
    assert engine.redacted in run.output
    assert API_KEY not in run.output


def load_deploy():
    spec = importlib.util.spec_from_file_location("deploy_b200_prod_lifecycle", DEPLOY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_render_keys_kernels_and_caches_by_gpu_version_and_image():
    deploy = load_deploy()
    assert deploy.COMPILE_KEY == {
        "gpu_type": "B200",
        "gpu_arch": "sm100",
        "sglang_version": "0.5.10.post1",
        "image": "lmsysorg/sglang:v0.5.10.post1-cu130",
    }
    assert deploy.CACHE_DIR == "/dg-cache/sm100-sglang-v0.5.10.post1-cu130"
    assert deploy.COMPILE_MARKER == "/dg-cache/sm100-sglang-v0.5.10.post1-cu130/.compiled-glm-5.1.json"
    env = deploy.engine_env(deploy.ENGINE_ENV, deploy.CACHE_DIR)
    for name in deploy.jit_cache_env("x"):
        assert env[name].startswith(deploy.CACHE_DIR + "/"), name
    assert env["SGLANG_ENABLE_SPEC_V2"] == "1" and env["HF_HUB_OFFLINE"] == "1"


def test_a_profile_without_deepgemm_never_asks_for_compiled_kernels():
    spec = importlib.util.spec_from_file_location("deploy_smoke_lifecycle", ROOT / "generated" / "smoke" / "deploy.py")
    smoke = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(smoke)
    assert not hasattr(smoke, "compile_deepgemm") and not hasattr(smoke, "COMPILE_MARKER")
    source = (ROOT / "generated" / "smoke" / "deploy.py").read_text()
    server_start = source.split("class Server:")[1].split("@modal.exit")[0]
    assert "compile_ready" not in server_start
    assert "compile_deepgemm.remote()" not in source


def test_the_vllm_render_keeps_its_compile_caches_on_the_cache_volume_and_has_no_precompile():
    path = ENGINES["vllm"].deploy
    spec = importlib.util.spec_from_file_location("deploy_vllm_lifecycle", path)
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    env = deploy.engine_env(deploy.ENGINE_ENV, deploy.CACHE_DIR)
    for name in ("VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "FLASHINFER_WORKSPACE_BASE", "TORCHINDUCTOR_CACHE_DIR"):
        assert env[name].startswith(f"{deploy.CACHE_MOUNT}/{deploy.GPU_ARCH}-"), name
    assert env["HF_HUB_OFFLINE"] == "1"
    assert not hasattr(deploy, "compile_deepgemm") and not hasattr(deploy, "COMPILE_MARKER")
    assert "compile_deepgemm.remote()" not in path.read_text()
