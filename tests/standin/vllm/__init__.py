"""A stdlib-only stand-in for vLLM, for tests: put tests/standin on PYTHONPATH (and tests/standin/bin on PATH
for the `vllm` command) and run `vllm serve MODEL ...` or `python3 -m vllm.entrypoints.cli.main serve MODEL ...`.

Flags are parsed from schema/vllm/<version>.json, the catalog captured from `vllm serve`'s own parser, so the
stand-in accepts and rejects (exit 2) what that vLLM does, then runs vLLM's start-up checks (exit 1).
Environment knobs:

    STANDIN_VLLM_VERSION      vLLM version to act as (its catalog)                                   0.33.0
    STANDIN_LOAD_SECONDS      "weight loading, compile, CUDA graphs" time before the port listens    0.5
    STANDIN_WARMUP_SECONDS    /health answers 503 this long after listening, then 200                0
    STANDIN_TOKEN_DELAY       seconds per generated token (streamed or not)                          0.002
    STANDIN_MAX_TOKENS        tokens of a reply when the request's max_tokens is not smaller         16
    STANDIN_REQUEST_DELAY     extra latency before each chat completion is handled                   0
    STANDIN_FAULT             crash-during-load | never-healthy | fail-requests | hang | bad-warmup  none
    STANDIN_EXIT_CODE         exit code of crash-during-load                                         1
    STANDIN_CONTROL_DIR       while running, a file `crash` appearing here ends the process at once
                              with the integer it holds (default 1); write it atomically             unset
    STANDIN_PID_FILE          gets the PIDs of the main process and its engine/TP workers            unset
    STANDIN_STUBBORN_WORKERS  1: workers ignore SIGTERM/SIGINT/SIGHUP, only SIGKILL ends them        0
    STANDIN_SHUTDOWN_SECONDS  time from SIGTERM/SIGINT to exit 0                                     0.1
    VLLM_CACHE_ROOT           (vLLM's own) the stand-in writes torch_compile_cache/standin there     ~/.cache/vllm

Importing fails when no catalog describes the requested version.
"""

from vllm._standin import catalog_path, requested_version

catalog_path(requested_version())
__version__ = requested_version()
