"""Shared test helpers: the repository root, the real command line, and the stand-in SGLang server."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path = ROOT, input: str | None = None) -> subprocess.CompletedProcess:
    """`python generate.py ARGS` as a user runs it."""
    return subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture
def in_repository(monkeypatch):
    """Messages show shipped profiles relative to the working directory, as for a user in the checkout."""
    monkeypatch.chdir(ROOT)


def child(tmp_path: Path, body: str, parent: str = "b200-prod", name: str = "child") -> Path:
    """A profile that extends a shipped one; `body` starts on line 3."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(f"schema_version: 1\nextends: {ROOT / 'profiles' / parent}.yaml\n{body}")
    return path


STANDIN_DIR = ROOT / "tests" / "standin"


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """Start the stand-in SGLang as a real process on a free port of 127.0.0.1 and wait until it is healthy.

    standin(env={"STANDIN_FAULT": "fail-requests"}, api_key="KEY") -> server with .url, .api_key, .model, .log()
    standin(proxy_auth=("wk-...", "ws-...")): behind Modal's proxy auth with that token (STANDIN_MODAL_PROXY_AUTH).
    One server per configuration and test module (tests only read from it); all stopped after the module.
    """
    logs = tmp_path_factory.mktemp("standin")
    servers: dict[tuple, SimpleNamespace] = {}

    def start(
        env: dict | None = None,
        api_key: str = "standin-test-key",
        model: str = "glm-5.1",
        proxy_auth: tuple[str, str] | None = None,
    ):
        env = {**(env or {}), **({"STANDIN_MODAL_PROXY_AUTH": ":".join(proxy_auth)} if proxy_auth else {})}
        proxy_headers = {"Modal-Key": proxy_auth[0], "Modal-Secret": proxy_auth[1]} if proxy_auth else {}
        key = (tuple(sorted(env.items())), api_key, model)
        if key in servers:
            return servers[key]
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN_")}
        fast = {"STANDIN_LOAD_SECONDS": "0.05", "STANDIN_WARMUP_SECONDS": "0.05", "STANDIN_SHUTDOWN_SECONDS": "0.01"}
        log_path = logs / f"standin-{port}.log"
        with open(log_path, "w") as log:
            # A session of its own, so teardown reaches the whole process group.
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sglang.launch_server",
                    "--model-path",
                    "/models/glm",
                    "--served-model-name",
                    model,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--reasoning-parser",
                    "glm45",
                    "--tool-call-parser",
                    "glm47",
                    "--enable-metrics",
                    *(["--api-key", api_key] if api_key else []),
                ],
                env={**base_env, "PYTHONPATH": str(STANDIN_DIR), **fast, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = SimpleNamespace(
            url=f"http://127.0.0.1:{port}", port=port, api_key=api_key, model=model, proc=proc, log=log_path.read_text
        )
        servers[key] = server
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{server.url}/health", headers=proxy_headers, timeout=1).status_code == 200:
                    return server
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"stand-in SGLang did not become healthy:\n{log_path.read_text()}")
            time.sleep(0.02)

    yield start
    for server in servers.values():
        try:
            os.killpg(server.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        server.proc.wait(timeout=5)


HUB_FIXTURES = ROOT / "tests" / "fixtures" / "hub"


@pytest.fixture(scope="session")
def hub(tmp_path_factory):
    """The stand-in Hugging Face Hub (tests/standin/hub) as a real process serving tests/fixtures/hub.

    hub.url is the HF_ENDPOINT to use; hub.requests() lists `METHOD PATH token=yes|no` lines it served.
    """
    from tests.standin.hub.server import running

    log = tmp_path_factory.mktemp("hub") / "requests.log"
    log.touch()
    with running(HUB_FIXTURES, log) as url:
        yield SimpleNamespace(url=url, requests=lambda: log.read_text().splitlines())


@pytest.fixture
def hub_env(hub, monkeypatch, tmp_path):
    """This process talks to the stand-in Hub, anonymously: no token from the environment or a login."""
    from huggingface_hub import constants

    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login" / "token"))
    return hub
