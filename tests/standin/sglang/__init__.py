"""A stdlib-only stand-in for SGLang, for tests: put tests/standin on PYTHONPATH and run
`python3 -m sglang.launch_server ...`, `sglang serve ...` (with tests/standin/bin on PATH: the `sglang` script,
which a release before 0.5.5 does not have: "command not found", exit 127) or `python3 -m sglang.compile_deep_gemm ...`.

Flags are parsed from schema/sglang/<version>.json, the catalog captured from SGLang's own parser, so the
stand-in accepts and rejects (exit 2) exactly what that SGLang does. Environment knobs:

    STANDIN_SGLANG_VERSION    SGLang version to act as; its catalog (a .postN uses its release's)  0.5.10
    STANDIN_LOAD_SECONDS      "weight loading" time before the port listens                          0.5
    STANDIN_SHARDS            checkpoint shards: while loading, tqdm's progress bar, one carriage-
                              return update per shard and a newline after the last                   4
    STANDIN_WARMUP_SECONDS    /health answers 503 this long after listening, then 200                0.2
    STANDIN_TOKEN_DELAY       seconds per generated token (streamed or not)                          0.002
    STANDIN_MAX_TOKENS        tokens of a reply when the request's max_tokens is not smaller         16
    STANDIN_REQUEST_DELAY     extra latency before each chat completion or embedding is handled      0
    STANDIN_THINKING          the model's thinking mode: on (unless enable_thinking is false), off
                              (only when it is true), never; reasoning_content needs
                              --reasoning-parser, tool_calls need --tool-call-parser                 on
    STANDIN_EMBEDDING_DIM     length of the vectors /v1/embeddings returns (with --is-embedding)     16
    STANDIN_FAULT             crash-during-load | crash-during-warmup (the first chat completion or
                              embedding kills it) | never-healthy | fail-requests | hang
                              | bad-warmup | compile-fails (compile_deep_gemm)                         none
    STANDIN_EXIT_CODE         exit code of crash-during-load, crash-during-warmup and of a failed
                              multi-node rendezvous                                                  1
    STANDIN_CONTROL_DIR       while running, a file `crash` appearing here ends the process at once
                              with the integer it holds (default 1); write it atomically             unset
    STANDIN_PID_FILE          gets the PIDs of the main process and its TP workers, one per line     unset
    STANDIN_STUBBORN_WORKERS  1: TP workers ignore SIGTERM/SIGINT/SIGHUP, only SIGKILL ends them      0
    STANDIN_SHUTDOWN_SECONDS  time from SIGTERM/SIGINT to exit 0 (after the requests in flight, as
                              uvicorn waits for them; a second signal stops that wait), per phase:
                              "0.1" or "0.1,loading:inf,serving:3" with the phases loading (before
                              the port listens), starting (/health 503), serving; inf: the signal
                              is ignored in that phase                                               0.1
    STANDIN_DIST_TIMEOUT      multi-node rendezvous timeout when --dist-timeout is not given         600
    STANDIN_PEER_LOSS_SECONDS multi-node: from a peer rank's death to this rank's NCCL abort; inf:
                              never (the collective hangs)                                           0
    STANDIN_COMPILE_SECONDS   compile_deep_gemm's "compilation" time                                 0.2
    STANDIN_MODAL_PROXY_AUTH  KEY:SECRET: Modal's proxy auth in front of every route of rank 0's
                              server (as smoke and bench see it through Modal): 401 text/plain
                              without the Modal-Key and Modal-Secret headers, or with others         unset
    SGLANG_DG_CACHE_DIR       (SGLang's own) where compile_deep_gemm writes standin-kernels.bin      ~/.cache/deep_gemm

Like SGLang, the main process never reaps the TP workers it stops: they stay zombies until it exits, then orphans.
Multi-node (--nnodes N --node-rank R --dist-init-addr HOST:PORT): see sglang/_rendezvous.py.

Importing fails when no catalog describes the requested version.
"""

from sglang._standin import catalog_path, requested_version

catalog_path(requested_version())
__version__ = requested_version()
