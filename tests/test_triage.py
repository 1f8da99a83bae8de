"""Log triage: the known lines of the guide, a third-party report and SGLang, the summary, and the exit status."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from deploygen.errors import UserError
from deploygen.operate.triage import classify, load_patterns, read_lines, run, triage

ROOT = Path(__file__).resolve().parents[1]
PATTERNS = load_patterns()

# The "Message" column of the guide's "Compilation & runtime warnings" table, verbatim
# (https://www.quantml.org/guides/glm-5-1-fp8/operations).
SEED_WARNINGS = [
    ("FastAPI ORJSONResponse deprecation (SGLang internal)", "fastapi-orjson-deprecation", "ignore"),
    ("Generation flags like top_p reported invalid during compile warmup", "generation-flags-invalid", "ignore"),
    ("Unexpected error during package walk: cutlass.cute.experimental", "cutlass-package-walk", "ignore"),
    ("torch.Tensor return type deprecated (flashinfer.jit)", "flashinfer-tensor-return-deprecated", "monitor"),
    ("Leaked semaphore / shared_memory on multi-process shutdown", "leaked-semaphore", "ignore"),
    ("Gloo Rank 0 connected to 0 peer ranks", "gloo-peer-ranks", "ignore"),
    ("DeepGEMM enabled but scale_fmt of checkpoint is not ue8m0", "deepgemm-scale-fmt-not-ue8m0", "monitor"),
    ("KV cache dtype set to fp8_e4m3 during compile_deep_gemm on SM10", "kv-cache-dtype-fp8", "warning"),
    ("FP8 KV cache with no scaling factors - defaulting to 1.0", "fp8-kv-no-scaling-factors", "warning"),
    ("Force NSA prefill to sparse MLA (MHA_ONE_SHOT disabled) on Blackwell", "nsa-prefill-sparse-mla", "info"),
]

# The "Pattern" column of the guide's "Log triage" table, verbatim (same page).
SEED_LOG_TRIAGE = [
    ("[health] passed on attempt 1", "health-passed", "info"),
    ("[health] passed on attempt 15+", "health-passed-slow", "warning"),
    ("[monitor] FATAL: SGLang died (code -9)", "engine-died-sigkill", "fatal"),
    ("[monitor] FATAL: SGLang died (code 137)", "engine-died-sigkill", "fatal"),
    ("DeepGEMM / compile success", "deepgemm-compile-success", "info"),
]

# The first column of a third-party report's "Cluster Error Log Catalog", verbatim
# (docs/sources.md#third-party-cluster-report).
SEED_004_CATALOG = [
    ("cudaErrorIllegalAddress", "cuda-illegal-address", "fatal"),
    ("NCCL connection timeout", "nccl-timeout", "fatal"),
    ("Triton JIT compilation failure", "triton-jit-failure", "fatal"),
    ("watchdog process terminated", "watchdog-terminated", "fatal"),
]

# Lines as SGLang 0.5.10, PyTorch, Python and the deploy.py wrapper really print them.
REAL_LINES = [
    (
        "[2026-11-23 10:00:01] WARNING model_config.py:1040: DeepGemm is enabled but the scale_fmt of checkpoint "
        "is not ue8m0. This might cause accuracy degradation on Blackwell.",
        "deepgemm-scale-fmt-not-ue8m0",
        "monitor",
    ),
    ("Setting KV cache dtype to fp8_e4m3 for DeepSeek DSA on SM10 device.", "kv-cache-dtype-fp8", "warning"),
    (
        "Using FP8 KV cache but no scaling factors provided. Defaulting to scaling factors of 1.0. "
        "This may lead to less accurate results!",
        "fp8-kv-no-scaling-factors",
        "warning",
    ),
    (
        "Force NSA prefill to use sparse MLA (i.e. disable MHA_ONE_SHOT) for GlmMoeDsaForCausalLM on Blackwell.",
        "nsa-prefill-sparse-mla",
        "info",
    ),
    ("DeepGEMM Kernels compilation finished successfully.", "deepgemm-compile-success", "info"),
    (
        "/usr/lib/python3.12/multiprocessing/resource_tracker.py:279: UserWarning: resource_tracker: "
        "There appear to be 1 leaked semaphore objects to clean up at shutdown",
        "leaked-semaphore",
        "ignore",
    ),
    (
        "[Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0",
        "gloo-peer-ranks",
        "ignore",
    ),
    (
        "The following generation flags are not valid and may be ignored: ['top_p']. "
        "Set `TRANSFORMERS_VERBOSITY=info` for more details.",
        "generation-flags-invalid",
        "ignore",
    ),
    (
        "[rank3]:[E1123 10:00:00.000000 ProcessGroupNCCL.cpp:632] [Rank 3] Watchdog caught collective operation "
        "timeout: WorkNCCL(SeqNum=1, OpType=ALLREDUCE, Timeout(ms)=600000) ran for 600012 milliseconds",
        "nccl-timeout",
        "fatal",
    ),
    ("[Rank 3] Timeout at NCCL work: 12, last enqueued NCCL work: 12", "nccl-timeout", "fatal"),
    ("RuntimeError: CUDA error: an illegal memory access was encountered", "cuda-illegal-address", "fatal"),
    ("Scheduler watchdog timeout (self.watchdog_timeout=300, self.soft=False)", "watchdog-terminated", "fatal"),
    (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "178.35 GiB of which 1.02 GiB is free.",
        "cuda-out-of-memory",
        "fatal",
    ),
    (
        "sglang serve: error: unrecognized arguments: --nsa-decode-backend trtllm --nsa-prefill-backend trtllm",
        "unrecognized-arguments",
        "fatal",
    ),
    ("[health] timed out after 900 s", "health-timed-out", "fatal"),
    ("TimeoutError: SGLang startup timeout", "health-timed-out", "fatal"),
    ("[warmup] FAILED: chat completion returned HTTP 500", "warmup-failed", "fatal"),
    ("[monitor] FATAL: SGLang died (code 1)", "sglang-died", "fatal"),
    ("[monitor] FATAL: SGLang died (code -6)", "sglang-died", "fatal"),
    # Modal puts a timestamp before the message.
    ("2026-11-23T10:00:00.123Z [monitor] FATAL: SGLang died (code -9)", "engine-died-sigkill", "fatal"),
]

UNMATCHED_LINES = [
    "Load weight end. type=GlmMoeDsaForCausalLM, dtype=torch.bfloat16",
    "INFO:     Uvicorn running on http://0.0.0.0:8000 (Press CTRL+C to quit)",
    # The soft watchdog only dumps debug information; the server keeps running.
    "Scheduler watchdog timeout (self.watchdog_timeout=300, self.soft=True)",
]


@pytest.mark.parametrize(
    ("line", "expected_id", "expected_severity"), SEED_WARNINGS + SEED_LOG_TRIAGE + SEED_004_CATALOG + REAL_LINES
)
def test_classifies_known_line(line: str, expected_id: str, expected_severity: str) -> None:
    pattern = classify(line, PATTERNS)
    assert pattern is not None, f"no pattern matches {line!r}"
    assert (pattern.id, pattern.severity) == (expected_id, expected_severity)


@pytest.mark.parametrize("line", UNMATCHED_LINES)
def test_leaves_unknown_line_unclassified(line: str) -> None:
    assert classify(line, PATTERNS) is None


@pytest.mark.parametrize("version", ["0.5.10", "0.5.23"])
def test_the_server_args_line_printed_at_startup_matches_no_pattern(version: str) -> None:
    # SGLang logs every argument on one line at startup; names like dist_timeout must not look like failures.
    catalog = json.loads((ROOT / "schema" / "sglang" / f"{version}.json").read_text())
    fields = ", ".join(f"{flag['dest']}={flag['default']!r}" for flag in catalog["flags"] if flag["dest"] != "help")
    assert classify(f"[2026-11-23 10:00:00] server_args=ServerArgs({fields})", PATTERNS) is None


@pytest.mark.parametrize("attempt", [*range(1, 15)])
def test_health_within_fourteen_attempts_is_the_fast_path(attempt: int) -> None:
    pattern = classify(f"[health] passed on attempt {attempt}", PATTERNS)
    assert (pattern.id, pattern.severity) == ("health-passed", "info")


@pytest.mark.parametrize("attempt", [15, 16, 19, 20, 99, 100, 150, 1000])
def test_health_after_fifteen_attempts_or_more_is_slow(attempt: int) -> None:
    pattern = classify(f"[health] passed on attempt {attempt}", PATTERNS)
    assert (pattern.id, pattern.severity) == ("health-passed-slow", "warning")


def test_the_first_pattern_in_file_order_wins(tmp_path: Path) -> None:
    data = tmp_path / "triage.yaml"
    data.write_text(
        "patterns:\n"
        "  - {id: first, pattern: 'died', severity: info, meaning: m, action: a, source: s}\n"
        "  - {id: second, pattern: 'SGLang died', severity: fatal, meaning: m, action: a, source: s}\n"
    )
    assert classify("SGLang died", load_patterns(data)).id == "first"


SIGKILL_ACTION = (
    "If a CUDA out-of-memory error or a memory-hungry step precedes it, lower --mem-fraction-static (e.g. 0.88 -> "
    "0.85) or give the container more memory; otherwise check the Modal timeout, manual stops and scaledown_window."
)
SIGKILL_MEANING = (
    "The engine was killed with SIGKILL (-9 and 137 are the same signal). Two causes: the host's OOM killer (host "
    "RAM, not GPU memory), or the platform stopping the container (Modal's timeout, a scale-down, a manual stop)."
)


def log_file(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "container.log"
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_prints_matched_lines_with_their_action_and_the_counts(tmp_path: Path) -> None:
    path = log_file(
        tmp_path,
        [
            "Load weight begin.",
            "[Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0",
            "[Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0",
            "[health] passed on attempt 17",
            "[monitor] FATAL: SGLang died (code -9)",
        ],
    )
    out = io.StringIO()
    assert run(str(path), out=out) == 1
    assert out.getvalue() == (
        "[IGNORE]  [Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0\n"
        "          -> gloo-peer-ranks: Nothing to do.\n"
        "[IGNORE]  [Gloo] Rank 0 is connected to 0 peer ranks. Expected number of connected peer ranks is : 0\n"
        "          -> gloo-peer-ranks: (as above)\n"
        "[WARNING] [health] passed on attempt 17\n"
        "          -> health-passed-slow: If near the 900 s startup timeout, check volume I/O; "
        "consider a longer startup_timeout.\n"
        "[FATAL]   [monitor] FATAL: SGLang died (code -9)\n"
        "          -> engine-died-sigkill: " + SIGKILL_ACTION + "\n"
        "summary: 5 lines read, 4 matched\n"
        "  fatal: 1\n"
        "  warning: 1\n"
        "  monitor: 0\n"
        "  info: 0\n"
        "  ignore: 2\n"
        "by pattern:\n"
        "  gloo-peer-ranks (ignore): 2\n"
        "  health-passed-slow (warning): 1\n"
        "  engine-died-sigkill (fatal): 1\n"
        "root cause: engine-died-sigkill (first fatal line, line 5): " + SIGKILL_MEANING + "\n"
        "  fix: " + SIGKILL_ACTION + "\n"
    )


def test_one_diagnosis_per_kill_and_the_first_fatal_line_as_root_cause(tmp_path: Path) -> None:
    path = log_file(
        tmp_path,
        [
            "[warmup] FAILED: HTTP 500",
            "[monitor] FATAL: vLLM died (code -9)",
            "[monitor] FATAL: SGLang died (code 137)",
        ],
    )
    out = io.StringIO()
    assert run(str(path), out=out) == 1
    lines = out.getvalue().splitlines()
    assert lines[2:6] == [
        "[FATAL]   [monitor] FATAL: vLLM died (code -9)",
        "          -> engine-died-sigkill: " + SIGKILL_ACTION,
        "[FATAL]   [monitor] FATAL: SGLang died (code 137)",
        "          -> engine-died-sigkill: (as above)",
    ]
    assert "None" not in out.getvalue()
    assert lines[-3:] == [
        "root cause: warmup-failed (first fatal line, line 1): The server answered /health but a warmup request "
        "failed, so the container will not serve.",
        "  fix: Read the error on the line and the SGLang traceback above it.",
        "  then: engine-died-sigkill (line 2), likely a consequence",
    ]


def test_no_action_says_none(tmp_path: Path) -> None:
    assert not [p.id for p in PATTERNS if p.action.strip().lower().startswith("none")]


def test_passes_unmatched_lines_through_untouched_with_all(tmp_path: Path) -> None:
    path = log_file(tmp_path, ["Load weight begin.", "[health] passed on attempt 1", "  indented line"])
    out = io.StringIO()
    assert run(str(path), out=out, show_all=True) == 0
    assert out.getvalue().splitlines()[:4] == [
        "Load weight begin.",
        "[INFO]    [health] passed on attempt 1",
        "          -> health-passed: Nothing to do.",
        "  indented line",
    ]


def test_colors_the_severity_tag_on_request() -> None:
    out = io.StringIO()
    triage(["[warmup] FAILED: HTTP 500"], PATTERNS, out=out, color=True)
    assert out.getvalue().startswith("\033[1;31m[FATAL]  \033[0m [warmup] FAILED: HTTP 500\n")


def test_exits_zero_without_a_fatal_line(tmp_path: Path) -> None:
    path = log_file(tmp_path, [line for line, _, severity in SEED_WARNINGS + SEED_LOG_TRIAGE if severity != "fatal"])
    assert run(str(path), out=io.StringIO()) == 0


def test_exits_one_on_a_fatal_line(tmp_path: Path) -> None:
    path = log_file(tmp_path, ["[health] passed on attempt 1", "[warmup] FAILED: HTTP 500"])
    assert run(str(path), out=io.StringIO()) == 1


def test_decodes_bytes_that_are_not_utf8_as_replacement_characters() -> None:
    stream = io.BytesIO(b"ok \xe2\x9c\x93\r\n[health] timed out \xff\xfe\nlast line without newline")
    assert list(read_lines(stream)) == ["ok \u2713", "[health] timed out \ufffd\ufffd", "last line without newline"]


def test_reads_standard_input_in_a_real_process() -> None:
    log = b"2026-11-23T10:00:00Z Load weight begin \xff\n2026-11-23T10:05:00Z [monitor] FATAL: SGLang died (code 137)\n"
    result = subprocess.run(
        [sys.executable, "generate.py", "triage", "--all", "-"],
        input=log,
        cwd=ROOT,
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    assert result.returncode == 1, result.stderr.decode()
    lines = result.stdout.decode("utf-8").splitlines()
    assert lines[:3] == [
        "2026-11-23T10:00:00Z Load weight begin \ufffd",
        "[FATAL]   2026-11-23T10:05:00Z [monitor] FATAL: SGLang died (code 137)",
        "          -> engine-died-sigkill: " + SIGKILL_ACTION,
    ]
    assert "  fatal: 1" in lines


def test_reports_a_missing_log_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.log"
    result = run_cli("triage", str(missing))
    assert result.returncode == 1
    assert result.stderr == f"{missing}: error: cannot read the log: No such file or directory\n"


def test_rejects_a_malformed_pattern_file_with_every_problem_and_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "triage.yaml"
    data.write_text(
        "patterns:\n"
        "  - id: sglang-died\n"
        "    pattern: '(unclosed'\n"
        "    severity: fatl\n"
        "    meaning: m\n"
        "    sorce: s\n"
        "  - id: sglang-died\n"
        "    pattern: ok\n"
        "    severity: info\n"
        "    meaning: m\n"
        "    action: ''\n"
        "    source: s\n"
    )
    with pytest.raises(UserError) as error:
        load_patterns(data)
    assert str(error.value) == (
        f"{data}:6:5: error: patterns[0].sorce: unknown key 'sorce'\n"
        "    hint: did you mean 'source'?\n"
        f"{data}:3:5: error: patterns[0].pattern: invalid regex: missing ), unterminated subpattern at position 0\n"
        f"{data}:4:5: error: patterns[0].severity: unknown severity 'fatl'\n"
        "    hint: did you mean 'fatal'?\n"
        f"{data}:2:5: error: patterns[0]: missing key 'action'\n"
        f"{data}:2:5: error: patterns[0]: missing key 'source'\n"
        f"{data}:7:5: error: patterns[1].id: duplicate id 'sglang-died'\n"
        "    hint: ids must be unique\n"
        f"{data}:11:5: error: patterns[1].action: must be a non-empty string"
    )
    result = run_cli("triage", "--data", str(data), "-", input="")
    assert result.returncode == 1
    assert result.stderr == f"{error.value}\n"


def test_rejects_a_pattern_file_without_patterns(tmp_path: Path) -> None:
    data = tmp_path / "triage.yaml"
    data.write_text("patterns: []\n")
    with pytest.raises(UserError, match=r"error: the file must be a mapping with a non-empty list `patterns`$"):
        load_patterns(data)
