"""`python deploy.py --local`: the container's lifecycle on this machine, without Modal."""

from __future__ import annotations

import argparse
import signal
from collections.abc import Callable
from pathlib import Path

from deploygen.runtime.engine import Engine, EngineError, Shutdown, log
from deploygen.runtime.weights import check_weights


def local_arguments(
    description: str,
    port: int,
    model_path: str,
    cache_dir: str,
    health_timeout: float,
    shutdown_grace: float,
    cluster: tuple[int, int, int] | None = None,
) -> argparse.Namespace:
    """The command line of `deploy.py --local`, with this deployment's values as defaults.

    cluster: (nodes, rendezvous port, watch port) of a multi-node deployment, which runs one process per rank.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--local", action="store_true", help="run SGLang here with the deployed lifecycle")
    parser.add_argument("--port", type=int, default=port)
    parser.add_argument("--model-path", default=model_path, help="weights folder or Hugging Face id")
    parser.add_argument("--cache-dir", default=cache_dir)
    parser.add_argument("--health-timeout", type=float, default=health_timeout)
    parser.add_argument("--shutdown-grace", type=float, default=shutdown_grace)
    if cluster is not None:
        nodes, rendezvous_port, watch_port = cluster
        parser.add_argument("--nodes", type=int, default=nodes, help="ranks to run here, one process each")
        parser.add_argument("--rendezvous-port", type=int, default=rendezvous_port)
        parser.add_argument("--watch-port", type=int, default=watch_port)
        parser.add_argument("--node-rank", type=int, help=argparse.SUPPRESS)  # each rank's process gets its own
    args = parser.parse_args()
    if not args.local:
        parser.error("use `modal run`/`modal deploy` for Modal, or --local to run here")
    if cluster is not None and args.nodes < 1:
        parser.error("--nodes must be at least 1")
    return args


def run_local(start: Callable[[Shutdown], Engine], model_path: str, port: int, grace: float) -> int:
    """The Modal lifecycle on this machine: start, wait, warm up, watch, stop on SIGTERM/SIGINT.

    start(shutdown) starts the engine and returns once it is ready; the first SIGTERM/SIGINT cancels the
    start or stops the engine within the grace period, another one SIGKILLs it at once.
    """
    if Path(model_path).is_dir():
        missing = check_weights(model_path)
        if missing:
            log(f"[setup] weights not ready: {missing}")
            return 1
    shutdown = Shutdown()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, shutdown.on_signal)
    try:
        engine = start(shutdown)
    except EngineError as exc:
        log(str(exc))
        return 0 if shutdown.is_set() else 1
    log(f"[local] ready on http://127.0.0.1:{port}")
    shutdown.wait()
    log("[local] stopping")
    engine.stop(grace)
    return 0
