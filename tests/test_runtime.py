"""The runtime package (deploygen/runtime), imported and run directly: real processes, real files.

The same code is included verbatim in every deploy.py (test_render checks that); here each piece is
exercised on its own, against the stand-in SGLang where it needs an engine.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import huggingface_hub
import pytest

from conftest import ROOT, STANDIN_DIR
from deploygen.pipeline import check
from deploygen.runtime.caches import jit_cache_env
from deploygen.runtime.engine import Engine, EngineError, Readiness, Shutdown, engine_env, redactor, start_engine
from deploygen.runtime.local import local_arguments, run_local
from deploygen.runtime.weights import (
    DOWNLOAD_MARKER,
    check_weights,
    compile_ready,
    download_weights,
    mark_compiled,
    run_streaming,
    weights_ready,
)

API_KEY = "sk-runtime-test-key-0123456789"
FAST = Readiness(health_timeout=20, poll_interval=0.05, max_poll_interval=0.25, shutdown_grace=3)
# The warmup b200-prod derives (the stand-in runs its parsers), with a short long-context prompt.
WARM = FAST._replace(
    warmup_timeout=20,
    warmup_requests=tuple(
        {**r, "filler_words": 50} if "filler_words" in r else r for r in check("b200-prod").deployment.warmup
    ),
)


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


def gone(pids: list[int], within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(p) for p in pids)


class Standin:
    """The stand-in SGLang's command line and environment, for an Engine to start."""

    def __init__(self, tmp_path: Path, tp: int = 2, api_key: str = API_KEY, **knobs: str):
        self.port = free_port()
        self.control = tmp_path / "control"
        self.control.mkdir(exist_ok=True)
        self.pid_file = tmp_path / "pids"
        self.cmd = [
            sys.executable,
            "-m",
            "sglang.launch_server",
            "--model-path",
            "/models/glm",
            "--served-model-name",
            "glm-5.1",
            "--tp-size",
            str(tp),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--reasoning-parser",
            "glm45",
            "--tool-call-parser",
            "glm47",
            *(["--api-key", api_key] if api_key else []),
        ]
        base = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
        self.env = {
            **base,
            "PYTHONPATH": str(STANDIN_DIR),
            "STANDIN_LOAD_SECONDS": "0.1",
            "STANDIN_WARMUP_SECONDS": "0.1",
            "STANDIN_SHUTDOWN_SECONDS": "0.01",
            "STANDIN_CONTROL_DIR": str(self.control),
            "STANDIN_PID_FILE": str(self.pid_file),
            **knobs,
        }
        self.api_key = api_key

    def start(self, readiness: Readiness = FAST, **kwargs) -> Engine:
        return start_engine(self.cmd, self.env, self.port, "glm-5.1", self.api_key, readiness, **kwargs)

    def pids(self) -> list[int]:
        return [int(p) for p in self.pid_file.read_text().split()] if self.pid_file.exists() else []


@pytest.fixture
def engines():
    """Engines a test started; each is stopped (its whole process group) after the test."""
    started: list[Engine] = []
    yield started
    for engine in started:
        engine.stop(0.5)


def test_start_engine_returns_once_healthy_and_warmed_up(tmp_path, engines, capfd):
    standin = Standin(tmp_path)
    engine = standin.start(WARM)
    engines.append(engine)
    out = capfd.readouterr().out
    assert "[health] passed on attempt" in out
    for path in ("chat", "no-thinking", "long-context", "tool-call"):
        assert f"[warmup] {path} ok in" in out
    assert "[warmup] 4 requests passed in" in out
    assert not engine.exited.is_set()


def test_without_a_warmup_timeout_no_warmup_request_is_sent(tmp_path, engines, capfd):
    engines.append(Standin(tmp_path).start(FAST))
    out = capfd.readouterr().out
    assert "[health] passed on attempt" in out
    assert "[warmup]" not in out


def test_a_death_after_ready_reaches_on_death_with_the_code_and_kills_the_workers(tmp_path, engines):
    standin = Standin(tmp_path, STANDIN_STUBBORN_WORKERS="1")
    codes: list[int] = []
    died = threading.Event()
    engine = standin.start(on_death=lambda code: (codes.append(code), died.set()))
    engines.append(engine)
    pids = standin.pids()
    assert len(pids) == 2
    crashed = time.monotonic()
    (standin.control / "crash").write_text("7")
    assert died.wait(5)
    assert time.monotonic() - crashed < 1.0
    assert codes == [7]
    assert gone(pids)


def test_death_during_load_is_an_engine_error_with_the_code_and_the_log_tail(tmp_path, engines):
    standin = Standin(tmp_path, STANDIN_FAULT="crash-during-load", STANDIN_EXIT_CODE="3")
    with pytest.raises(EngineError) as error:
        standin.start()
    message = str(error.value)
    assert message.startswith("SGLang exited with code 3 before it was healthy. Last log lines:\n")
    assert "server_args=ServerArgs(" in message


def test_an_engine_command_missing_from_path_is_an_engine_error_naming_it(tmp_path):
    standin = Standin(tmp_path)
    standin.cmd[:3] = ["sglang", "serve"]  # SGLang's console script, on no PATH here
    standin.env["PATH"] = str(tmp_path)
    with pytest.raises(EngineError) as error:
        standin.start()
    assert str(error.value) == "[engine] cannot start SGLang: no 'sglang' command on PATH (is SGLang installed here?)"


def test_a_health_check_that_never_passes_times_out_and_stops_the_engine(tmp_path, engines):
    standin = Standin(tmp_path, STANDIN_FAULT="never-healthy")
    with pytest.raises(EngineError, match=r"^\[health\] timed out after 1.5s \(\d+ attempts\)\. Last log lines:"):
        standin.start(FAST._replace(health_timeout=1.5))
    assert gone(standin.pids())


def test_a_cancelled_start_stops_at_once(tmp_path, engines):
    standin = Standin(tmp_path, STANDIN_LOAD_SECONDS="30")
    shutdown = Shutdown()
    threading.Timer(0.3, shutdown.set).start()
    started = time.monotonic()
    with pytest.raises(EngineError, match=r"^\[engine\] start cancelled before it was healthy$"):
        standin.start(FAST._replace(health_timeout=60), shutdown=shutdown)
    assert time.monotonic() - started < 5
    assert gone(standin.pids())


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("bad-warmup", "tool-call: no tool_calls"), ("fail-requests", "chat: HTTP 500")],
)
def test_a_failing_warmup_request_fails_the_start(tmp_path, engines, fault, reason):
    standin = Standin(tmp_path, STANDIN_FAULT=fault)
    with pytest.raises(EngineError) as error:
        standin.start(WARM)
    assert str(error.value).startswith("[warmup] FAILED: ")
    assert reason in str(error.value)
    assert gone(standin.pids())


def test_warmup_without_the_api_key_is_refused_by_the_engine(tmp_path, engines):
    standin = Standin(tmp_path)
    engine = Engine(standin.cmd, standin.env, standin.port, "glm-5.1", api_key="")
    engines.append(engine)
    engine.start()
    engine.wait_until_healthy(20, 0.05, 0.25)
    with pytest.raises(EngineError, match="HTTP 401"):
        engine.warmup(10, WARM.warmup_requests)


def test_stop_sigkills_workers_that_ignore_sigterm_after_the_grace(tmp_path, engines, capfd):
    standin = Standin(tmp_path, tp=3, STANDIN_STUBBORN_WORKERS="1")
    engine = standin.start()
    pids = standin.pids()
    assert len(pids) == 3
    engine.stop(0.5)
    assert "[engine] still running after 0.5s: SIGKILL" in capfd.readouterr().out
    assert gone(pids)
    engine.stop(0.5)  # a second stop finds nothing left and returns


def test_a_polite_engine_stops_within_the_grace(tmp_path, capfd):
    engine = Standin(tmp_path).start()
    engine.stop(5)
    assert "[engine] stopped (code 0)" in capfd.readouterr().out


def test_the_api_key_never_reaches_the_log(tmp_path, engines, capfd):
    engines.append(Standin(tmp_path).start(WARM))
    out = capfd.readouterr().out
    assert "api_key='***'" in out
    assert API_KEY not in out


def test_the_redactor_hides_the_secret_and_any_printed_api_key():
    redact = redactor("s3cret")
    assert redact("key s3cret and api_key='other' api_key=\"x\"") == "key *** and api_key='***' api_key=\"***\""
    assert redactor("")("api_key='k' stays s3cret") == "api_key='***' stays s3cret"


def test_the_engine_environment_points_every_jit_cache_at_the_volume_and_goes_offline(monkeypatch):
    monkeypatch.setenv("KEPT_FROM_THE_CONTAINER", "yes")
    env = engine_env({"SGLANG_ENABLE_SPEC_V2": "1"}, "/cache/sm100-image")
    assert env["KEPT_FROM_THE_CONTAINER"] == "yes"
    assert env["SGLANG_ENABLE_SPEC_V2"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1"
    caches = jit_cache_env("/cache/sm100-image")
    assert len(caches) == 6 and len(set(caches.values())) == 6
    for name, folder in caches.items():
        assert env[name] == folder and folder.startswith("/cache/sm100-image/"), name


def test_exit_container_logs_and_exits_1_at_once(capfd):
    # In a child process: os._exit ends the process without cleanup, which is the point.
    code = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); "
        "from deploygen.runtime.engine import exit_container; exit_container(9)"
    )
    assert run_streaming([sys.executable, "-c", code], dict(os.environ)) == 1
    assert capfd.readouterr().out == "[monitor] FATAL: SGLang died (code 9)\n"


# --- weights and kernels -------------------------------------------------------------------------


def make_checkpoint(root: Path, shards: dict[str, int]) -> None:
    weight_map = {f"layer.{i}": name for i, name in enumerate(shards)}
    (root / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    for name, size in shards.items():
        (root / name).write_bytes(b"\0" * size)


def test_check_weights_catches_a_missing_or_truncated_shard(tmp_path):
    sizes = {"model-00001-of-00002.safetensors": 100, "model-00002-of-00002.safetensors": 50}
    assert check_weights(str(tmp_path), sizes) == [f"{tmp_path}/model.safetensors.index.json is missing"]
    make_checkpoint(tmp_path, sizes)
    assert check_weights(str(tmp_path), sizes) == []
    (tmp_path / "model-00002-of-00002.safetensors").write_bytes(b"\0" * 20)
    assert check_weights(str(tmp_path), sizes) == ["shard model-00002-of-00002.safetensors has 20 bytes, expected 50"]
    (tmp_path / "model-00001-of-00002.safetensors").unlink()
    assert "shard model-00001-of-00002.safetensors is missing" in check_weights(str(tmp_path), sizes)
    (tmp_path / "model.safetensors.index.json").write_text("[]")
    assert check_weights(str(tmp_path)) == [f"{tmp_path}/model.safetensors.index.json has no weight_map"]


def test_serving_refuses_weights_never_marked_complete(tmp_path):
    make_checkpoint(tmp_path, {"model.safetensors": 10})
    assert weights_ready(str(tmp_path), "main") == [
        f"{tmp_path}/{DOWNLOAD_MARKER} is missing: run `modal run deploy.py::download_model`"
    ]
    (tmp_path / DOWNLOAD_MARKER).write_text(json.dumps({"sizes": {"model.safetensors": 10}}))
    assert weights_ready(str(tmp_path), "main") == []
    (tmp_path / "model.safetensors").write_bytes(b"\0" * 3)
    assert weights_ready(str(tmp_path), "main") == ["shard model.safetensors has 3 bytes, expected 10"]


def test_serving_refuses_weights_of_another_commit_when_the_revision_is_pinned(tmp_path):
    make_checkpoint(tmp_path, {"model.safetensors": 10})
    marker = {"commit": "a" * 40, "sizes": {"model.safetensors": 10}}
    (tmp_path / DOWNLOAD_MARKER).write_text(json.dumps(marker))
    assert weights_ready(str(tmp_path), "b" * 40) == [
        f"weights are commit {'a' * 40}, the profile pins {'b' * 40}: run download_model"
    ]
    assert weights_ready(str(tmp_path), "a" * 40) == []
    assert weights_ready(str(tmp_path), "main") == []  # a branch is whatever commit was downloaded


def test_compiled_kernels_are_keyed_by_gpu_version_and_image(tmp_path):
    key = {"gpu_type": "B200", "gpu_arch": "sm100", "sglang_version": "0.5.10.post1", "image": "img"}
    marker = tmp_path / "cache" / "sm100-img" / ".compiled-glm.json"
    assert compile_ready(str(marker), key) == [f"{marker} is missing: run `modal run deploy.py::compile_deepgemm`"]
    mark_compiled(str(marker), key)
    assert compile_ready(str(marker), key) == []
    other = {**key, "gpu_type": "H200", "gpu_arch": "sm90"}
    assert compile_ready(str(marker), other) == [f"{marker} was written for another gpu_type, gpu_arch: recompile"]


def test_run_streaming_prints_each_line_redacted_and_returns_the_exit_code(capfd):
    code = "import sys; print('one'); print('key=s3cret', flush=True); sys.exit(4)"
    assert run_streaming([sys.executable, "-c", code], dict(os.environ), redactor("s3cret")) == 4
    assert capfd.readouterr().out.splitlines() == ["one", "key=***"]


class FakeHub:
    """The Hugging Face Hub as download_weights sees it: model_info with sizes, snapshot_download
    writing files; `truncate` makes the download leave one shard short, as a broken transfer does."""

    def __init__(self, shards: dict[str, int], sha: str = "c" * 40, truncate: str = ""):
        self.shards, self.sha, self.truncate = shards, sha, truncate
        self.downloads = 0

    def model_info(self, repo, revision=None, files_metadata=False):
        files = {"model.safetensors.index.json": None, **self.shards}
        siblings = [huggingface_hub.hf_api.RepoSibling(rfilename=n, size=s) for n, s in files.items()]
        return huggingface_hub.hf_api.ModelInfo(id=repo, sha=self.sha, siblings=[s.__dict__ for s in siblings])

    def snapshot_download(self, repo, revision=None, local_dir=None, max_workers=8):
        assert revision == self.sha  # the resolved commit, never the branch
        self.downloads += 1
        make_checkpoint(Path(local_dir), self.shards)
        if self.truncate:
            (Path(local_dir) / self.truncate).write_bytes(b"\0")
        return local_dir


@pytest.fixture
def hub(monkeypatch):
    def install(**kwargs) -> FakeHub:
        fake = FakeHub(**kwargs)
        monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, *a, **k: fake.model_info(*a, **k))
        monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
        return fake

    return install


def test_download_marks_the_checkpoint_complete_with_the_resolved_commit_and_sizes(tmp_path, hub, capfd):
    fake = hub(shards={"a.safetensors": 30, "b.safetensors": 20})
    assert download_weights(str(tmp_path), "org/model", "main", max_workers=2) == "c" * 40
    marker = json.loads((tmp_path / DOWNLOAD_MARKER).read_text())
    assert marker == {"repo": "org/model", "commit": "c" * 40, "sizes": {"a.safetensors": 30, "b.safetensors": 20}}
    assert weights_ready(str(tmp_path), "c" * 40) == []
    assert download_weights(str(tmp_path), "org/model", "main", max_workers=2) == "c" * 40
    assert fake.downloads == 1
    assert "already complete" in capfd.readouterr().out


def test_a_truncated_download_is_never_marked_complete(tmp_path, hub):
    hub(shards={"a.safetensors": 30}, truncate="a.safetensors")
    with pytest.raises(RuntimeError, match=r"^\[download\] incomplete after download: \['shard a.safetensors has 1"):
        download_weights(str(tmp_path), "org/model", "main", max_workers=2)
    assert not (tmp_path / DOWNLOAD_MARKER).exists()


def test_a_marked_checkpoint_with_a_damaged_shard_is_downloaded_again(tmp_path, hub, capfd):
    fake = hub(shards={"a.safetensors": 30})
    download_weights(str(tmp_path), "org/model", "main", max_workers=2)
    (tmp_path / "a.safetensors").write_bytes(b"\0" * 5)
    download_weights(str(tmp_path), "org/model", "main", max_workers=2)
    assert fake.downloads == 2
    assert "marked complete but 1 problems" in capfd.readouterr().out


# --- --local -------------------------------------------------------------------------------------


def test_local_arguments_take_the_deployment_defaults(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["deploy.py", "--local", "--port", "9001"])
    args = local_arguments("doc", 8000, "/model", "/cache", 1500, 30)
    assert (args.port, args.model_path, args.cache_dir, args.health_timeout, args.shutdown_grace) == (
        9001,
        "/model",
        "/cache",
        1500,
        30,
    )


def test_local_arguments_without_local_point_to_modal(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["deploy.py"])
    with pytest.raises(SystemExit) as exit_:
        local_arguments("doc", 8000, "/model", "/cache", 1500, 30)
    assert exit_.value.code == 2
    assert "use `modal run`/`modal deploy` for Modal, or --local to run here" in capsys.readouterr().err


@pytest.fixture
def restore_signals():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_run_local_serves_until_sigterm_then_stops_the_engine(tmp_path, restore_signals, capfd):
    standin = Standin(tmp_path)

    def start(shutdown: threading.Event) -> Engine:
        engine = standin.start(shutdown=shutdown)
        # SIGTERM once ready, as `modal` or a user's Ctrl-C would send it.
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
        return engine

    code = run_local(start, "/not/a/folder", standin.port, 2)
    assert code == 0
    out = capfd.readouterr().out
    assert f"[local] ready on http://127.0.0.1:{standin.port}" in out
    assert "[local] stopping" in out and "[engine] stopped (code 0)" in out
    assert gone(standin.pids())


def test_run_local_refuses_an_incomplete_weights_folder(tmp_path, restore_signals, capfd):
    make_checkpoint(tmp_path, {"model.safetensors": 10})
    (tmp_path / "model.safetensors").unlink()
    assert run_local(lambda shutdown: pytest.fail("must not start"), str(tmp_path), 1, 1) == 1
    assert "[setup] weights not ready: ['shard model.safetensors is missing']" in capfd.readouterr().out


def test_run_local_reports_a_failed_start_and_exits_1(tmp_path, restore_signals, capfd):
    def start(shutdown):
        raise EngineError("[health] timed out after 1s")

    assert run_local(start, str(tmp_path / "none"), 1, 1) == 1
    assert "[health] timed out after 1s" in capfd.readouterr().out


# --- keep-alive ----------------------------------------------------------------------------------

WINDOW = {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "08:00", "end": "20:00", "timezone": "Europe/Berlin"}


def at(text: str):
    from datetime import datetime

    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("now", "desired"),
    [
        ("2026-11-30T06:41:00+00:00", 0),  # Monday 07:41 Berlin (CET): before the 18-minute lead
        ("2026-11-30T06:42:00+00:00", 1),  # 07:42: the lead has begun
        ("2026-11-30T18:59:00+00:00", 1),  # 19:59
        ("2026-11-30T19:00:00+00:00", 0),  # 20:00: the window has closed
        ("2026-12-05T10:00:00+00:00", 0),  # Saturday
        ("2026-07-06T05:42:00+00:00", 1),  # a Monday in summer (CEST): 07:42 Berlin is 05:42 UTC
        ("2026-07-06T05:41:00+00:00", 0),
    ],
)
def test_the_autoscaler_window_follows_its_time_zone_and_lead(now, desired):
    from deploygen.runtime.keepalive import desired_min_containers

    args = (WINDOW["days"], WINDOW["start"], WINDOW["end"], WINDOW["timezone"], 18 * 60)
    assert desired_min_containers(*args, inside=1, outside=0, now=at(now)) == desired
    # Idempotent: the same moment always asks for the same value, whatever ran before.
    assert desired_min_containers(*args, inside=1, outside=0, now=at(now)) == desired


def test_proxy_auth_headers_come_from_the_environment_or_say_what_is_missing():
    from deploygen.runtime.keepalive import ProxyAuthMissing, proxy_auth_headers

    env = {"MODAL_PROXY_KEY": "wk-1", "MODAL_PROXY_SECRET": "ws-2"}
    assert proxy_auth_headers(env) == {"Modal-Key": "wk-1", "Modal-Secret": "ws-2"}
    with pytest.raises(ProxyAuthMissing) as missing:
        proxy_auth_headers({"MODAL_PROXY_KEY": "wk-1"})
    assert str(missing.value) == (
        "the deployment requires Modal proxy auth (server.unauthenticated is false) but MODAL_PROXY_SECRET is not "
        "set: create a proxy auth token (https://modal.com/docs/guide/webhook-proxy-auth) and export "
        "MODAL_PROXY_KEY=wk-... MODAL_PROXY_SECRET=ws-..."
    )


@pytest.fixture
def http_server():
    """A real HTTP server on 127.0.0.1 answering each GET with the next (status, delay) of a script."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    script: list[tuple[int, float]] = []
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            seen.append(dict(self.headers))
            status, delay = script.pop(0) if script else (200, 0)
            time.sleep(delay)
            try:
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"body")
            except BrokenPipeError:
                pass  # the client gave up waiting: what the timeout case is about

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", script, seen
    server.shutdown()


def test_the_ping_logs_a_starting_replica_as_expected_and_sends_the_proxy_headers(http_server, capfd):
    from deploygen.runtime.keepalive import ping

    url, script, seen = http_server
    script += [(503, 0), (200, 0), (500, 0), (200, 2)]
    headers = {"Modal-Key": "wk-1", "Modal-Secret": "ws-2"}
    assert ping(f"{url}/health", 5, headers) == 503
    assert ping(f"{url}/health", 5, headers) == 200
    assert ping(f"{url}/health", 5, headers) == 500
    assert ping(f"{url}/health", 0.5, headers) is None
    assert ping("http://127.0.0.1:1/health", 1, {}) is None
    out = capfd.readouterr().out.splitlines()
    assert out == [
        f"[keepalive] {url}/health -> HTTP 503; expected while a replica starts",
        f"[keepalive] {url}/health -> HTTP 200",
        f"[keepalive] {url}/health -> HTTP 500: body",
        f"[keepalive] {url}/health: no answer within 0.5s; expected while a replica starts",
        "[keepalive] http://127.0.0.1:1/health: request failed (ConnectionError)",
    ]
    assert all(h["Modal-Key"] == "wk-1" and h["Modal-Secret"] == "ws-2" for h in seen)
