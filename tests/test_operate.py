"""The smoke test and the load test, against the stand-in SGLang as a real process on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json

import pytest

from conftest import ROOT
from deploygen.cli import main
from deploygen.errors import UserError
from deploygen.operate import loadtest, smoke
from deploygen.pipeline import check

KEY = "sk-standin-secret-4242"
# A proxy auth token (Modal-Key, Modal-Secret): b200-prod serves behind Modal's proxy auth, so the stand-in
# that plays its deployment answers 401 as Modal's proxy does without this pair.
PROXY = ("wk-standinProxyKey4242", "ws-standinProxySecret4242")
ALL_PATHS = "chat, no-thinking, long-context, tool-call"
CUDA_500 = "HTTP 500: Internal server error: CUDA error: an illegal memory access was encountered"


@pytest.fixture(autouse=True)
def proxy_token(monkeypatch):
    """The proxy auth token in the environment, where smoke and bench read it."""
    monkeypatch.setenv("MODAL_PROXY_KEY", PROXY[0])
    monkeypatch.setenv("MODAL_PROXY_SECRET", PROXY[1])


def run(argv: list[str], capsys) -> tuple[int, str]:
    """Run a command as the CLI does; return its exit code and stdout, checking that no key or token leaked."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert not any(secret in out or secret in err for secret in (KEY, *PROXY))
    return code, out


def path_lines(out: str) -> list[str]:
    return [" ".join(line.split()) for line in out.splitlines() if line.startswith(("PASS", "FAIL"))]


# --- smoke ---------------------------------------------------------------------------------------------


PROFILE = "b200-prod"  # serves glm-5.1 with a reasoning and a tool-call parser, like the stand-in


def profile_requests(name: str = PROFILE) -> tuple[dict, ...]:
    return check(name).deployment.warmup


def test_smoke_passes_every_path_and_takes_the_model_from_v1_models(standin, capsys):
    server = standin(api_key=KEY, proxy_auth=PROXY)
    code, out = run(["smoke", server.url, "--api-key", KEY, "--profile", PROFILE], capsys)
    assert code == 0
    assert out.splitlines()[0] == "model glm-5.1 (first of /v1/models)"
    assert [line.split()[:2] for line in path_lines(out)] == [
        ["PASS", "chat"],
        ["PASS", "no-thinking"],
        ["PASS", "long-context"],
        ["PASS", "tool-call"],
    ]
    assert all(line.split()[2].endswith("s") for line in path_lines(out))  # the latency
    assert out.splitlines()[-1] == "all 4 paths passed"


def test_smoke_reads_the_api_key_from_the_environment(standin, capsys, monkeypatch):
    server = standin(api_key=KEY)
    monkeypatch.setenv("API_KEY", KEY)
    code, out = run(["smoke", f"{server.url}/v1/", "--model", "glm-5.1"], capsys)
    assert code == 0, out


def test_smoke_fails_every_path_with_the_http_500_reason(standin, capsys):
    server = standin(env={"STANDIN_FAULT": "fail-requests"}, api_key=KEY, proxy_auth=PROXY)
    code, out = run(["smoke", server.url, "--api-key", KEY, "--profile", PROFILE], capsys)
    assert code == 1
    assert [line.split(maxsplit=3)[:2] + [line.split(maxsplit=3)[3]] for line in path_lines(out)] == [
        ["FAIL", name, CUDA_500] for name in ("chat", "no-thinking", "long-context", "tool-call")
    ]
    assert out.splitlines()[-1] == f"4 of 4 paths failed: {ALL_PATHS}"


def test_smoke_names_what_each_path_is_missing_when_the_engine_answers_200_with_nothing(standin):
    server = standin(env={"STANDIN_FAULT": "bad-warmup"}, api_key=KEY)
    results = smoke.smoke(server.url, KEY, requests=profile_requests())
    assert [(r.name, r.passed, r.reason) for r in results] == [
        ("chat", False, "empty assistant message"),
        ("no-thinking", False, "no content in the assistant message"),
        ("long-context", False, "empty assistant message"),
        ("tool-call", False, "no tool_calls"),
    ]
    assert smoke.summary_line(results) == f"4 of 4 paths failed: {ALL_PATHS}"


def test_smoke_with_a_wrong_api_key_fails_with_401_and_never_prints_either_key(standin, capsys):
    server = standin(api_key=KEY)
    wrong = "sk-wrong-key-1234"
    code, out = run(["smoke", server.url, "--api-key", wrong, "--model", "glm-5.1"], capsys)
    assert code == 1 and wrong not in out
    assert {line.split(maxsplit=3)[3] for line in path_lines(out)} == {"HTTP 401: Unauthorized"}

    code, out = run(["smoke", server.url, "--api-key", wrong], capsys)
    assert code == 1
    assert path_lines(out)[0] == "FAIL chat - not sent: GET /v1/models: HTTP 401: Unauthorized"


def test_smoke_without_a_profile_checks_plain_generation_and_says_so(standin, capsys):
    server = standin(api_key=KEY)
    code, out = run(["smoke", server.url, "--api-key", KEY], capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        "no --profile: plain generation only (pass --profile to send the profile's warmup requests)"
    )
    assert [line.split()[:2] for line in path_lines(out)] == [["PASS", "chat"]]


def test_smoke_refuses_to_judge_a_deployment_that_serves_another_model(standin, capsys):
    server = standin(api_key=KEY, model="qwen3-8b", proxy_auth=PROXY)
    code, out = run(["smoke", server.url, "--api-key", KEY, "--profile", PROFILE], capsys)
    assert code == 1
    assert path_lines(out)[0] == (
        "FAIL chat - not sent: the deployment serves 'qwen3-8b', the profile serves 'glm-5.1'"
    )


def test_smoke_without_an_api_key_says_where_to_put_one(standin, capsys, monkeypatch):
    server = standin(api_key=KEY)
    monkeypatch.delenv("API_KEY", raising=False)
    code, out = run(["smoke", server.url, "--model", "glm-5.1"], capsys)
    assert code == 1
    assert path_lines(out)[0].endswith("HTTP 401: Unauthorized (no API key given: set API_KEY or pass --api-key)")


def test_smoke_reports_a_server_that_is_not_there_as_failed_paths(capsys):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    code, out = run(["smoke", url, "--api-key", KEY, "--timeout", "2"], capsys)
    assert code == 1
    assert "not sent: GET /v1/models: connection failed:" in path_lines(out)[0]


def test_smoke_sends_the_requests_the_rendered_deploy_py_warms_up_with():
    spec = importlib.util.spec_from_file_location("deploy_b200_prod_operate", ROOT / "generated/b200-prod/deploy.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    assert tuple(deploy.WARMUP_REQUESTS) == profile_requests()
    # And the deploy.py checks answers with the very functions smoke uses.
    answers = [
        {"choices": [{"message": {"content": "hi", "reasoning_content": "hmm"}}]},
        {"choices": [{"message": {"content": "hi", "reasoning_content": None}}]},
        {"choices": [{"message": {"content": "", "reasoning_content": "hmm"}}]},
        {"choices": [{"message": {"content": " ", "tool_calls": [{"id": "call_1"}]}}]},
        {"data": [{"embedding": [0.1, 0.2]}]},
    ]
    for request in profile_requests():
        assert [deploy.check_answer(request, a) for a in answers] == [smoke.check_answer(request, a) for a in answers]


# --- bench ---------------------------------------------------------------------------------------------


def test_bench_reports_consistent_percentiles_and_throughput(standin):
    server = standin(api_key=KEY)
    result = loadtest.bench(server.url, KEY, concurrency=4, requests=12, max_tokens=8)
    assert not result.errors and result.unfinished == 0
    assert len(result.samples) == 12
    for metric in ("ttft", "tpot", "itl", "e2e"):
        p = result.percentiles(metric)
        assert 0 < p["p50"] <= p["p90"] <= p["p99"], metric
    assert all(0 < s.ttft < s.e2e for s in result.samples)
    # The stand-in streams max_tokens content tokens after its reasoning; usage counts both.
    assert all(s.output_tokens > 8 for s in result.samples)
    assert result.output_tokens_per_s > 0


def test_bench_prints_json_and_passes_the_targets_of_a_profile(standin, capsys):
    server = standin(api_key=KEY, proxy_auth=PROXY)
    argv = ["bench", server.url, "--api-key", KEY, "--concurrency", "4", "--requests", "12", "--profile", "b200-prod"]
    code, out = run([*argv, "--json"], capsys)
    report = json.loads(out)
    assert code == 0
    assert (report["model"], report["completed"], report["errors"], report["error_kinds"]) == ("glm-5.1", 12, 0, {})
    assert set(report["ttft_ms"]) == {"p50", "p90", "p99"}
    assert [(t["name"], t["target_ms"], t["passed"]) for t in report["targets"]] == [
        ("ttft_ms", 300.0, True),
        ("tpot_ms", 8.0, True),
    ]

    code, out = run(argv, capsys)
    assert code == 0
    assert "completed 12 of 12 requests" in out and ", 0 errors" in out
    assert [line.strip().split(":")[0] for line in out.splitlines() if "target" in line] == [
        "targets of b200-prod",
        "PASS  ttft_ms",
        "PASS  tpot_ms",
    ]


def test_bench_fails_when_the_server_misses_a_profile_target(standin, capsys, tmp_path):
    server = standin(api_key=KEY, env={"STANDIN_REQUEST_DELAY": "0.05"}, proxy_auth=PROXY)
    strict = tmp_path / "strict.yaml"
    strict.write_text("schema_version: 1\nextends: b200-prod\ntargets:\n  ttft_ms: 20\n")
    code, out = run(["bench", server.url, "--api-key", KEY, "--requests", "4", "--profile", str(strict)], capsys)
    assert code == 1
    (ttft,) = [line.strip() for line in out.splitlines() if "ttft_ms" in line]
    assert ttft.startswith("FAIL  ttft_ms: p50 ") and ttft.endswith(" ms > target 20 ms")


def test_bench_counts_the_errors_of_a_failing_server_by_kind(standin, capsys):
    server = standin(env={"STANDIN_FAULT": "fail-requests"}, api_key=KEY)
    code, out = run(["bench", server.url, "--api-key", KEY, "--concurrency", "4", "--requests", "12"], capsys)
    assert code == 1
    assert "completed 0 of 12 requests" in out and ", 12 errors" in out
    assert f"  12 x {CUDA_500}" in out.splitlines()
    assert "TTFT" in out and "output tokens/s: 0.0" in out


def test_bench_stops_at_the_time_limit(standin):
    server = standin(api_key=KEY, env={"STANDIN_REQUEST_DELAY": "2"})
    result = loadtest.bench(server.url, KEY, "glm-5.1", concurrency=2, requests=6, time_limit=0.3)
    # Each request takes 2 s, six of them 6 s at concurrency 2: ending under 2 s means the limit stopped it.
    assert result.duration_s < 2.0
    assert result.errors == {"timeout": 2}  # the two in flight when the time ran out
    assert result.unfinished == 4 and not result.samples


def test_bench_with_a_wrong_key_and_no_model_is_one_clear_error(standin):
    server = standin(api_key=KEY)
    with pytest.raises(UserError) as error:
        loadtest.bench(server.url, "sk-wrong", requests=1)
    assert str(error.value) == f"error: {server.url}: GET /v1/models: HTTP 401: Unauthorized"


def test_bench_rejects_an_unknown_profile_before_sending_anything(capsys):
    assert main(["bench", "http://127.0.0.1:9", "--api-key", KEY, "--profile", "b200-prd"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "error: no profile named 'b200-prd'\n    hint: did you mean 'b200-prod'?" in err


def test_bench_refuses_the_targets_of_a_profile_that_serves_another_model(standin, capsys):
    server = standin(api_key=KEY, model="qwen3-8b", proxy_auth=PROXY)
    assert main(["bench", server.url, "--api-key", KEY, "--requests", "2", "--profile", PROFILE]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert (
        f"error: {server.url} serves 'qwen3-8b', but profile {PROFILE} serves 'glm-5.1': its targets do not apply "
        "(pass the profile of this deployment, or no --profile)"
    ) in err


# --- targets -------------------------------------------------------------------------------------------


def test_targets_pass_at_or_below_the_target_and_fail_above_or_without_a_measurement():
    targets = {"ttft_ms": 300, "tpot_ms": 8}
    checks = loadtest.check_targets({"ttft_ms": 300.0, "tpot_ms": 8.5}, targets)
    assert [(c.name, c.passed) for c in checks] == [("ttft_ms", True), ("tpot_ms", False)]
    assert [str(c) for c in checks] == [
        "PASS  ttft_ms: p50 300.0 ms <= target 300 ms",
        "FAIL  tpot_ms: p50 8.5 ms > target 8 ms",
    ]
    (missing,) = loadtest.check_targets({"ttft_ms": None, "tpot_ms": None}, {"ttft_ms": 300, "tpot_ms": None})
    assert not missing.passed
    assert str(missing) == "FAIL  ttft_ms: no measurement (target 300 ms)"
    assert loadtest.check_targets({"ttft_ms": 1.0}, {}) == []


def test_percentiles_interpolate_between_ranks_and_tpot_excludes_the_first_token():
    values = [float(v) for v in range(1, 101)]
    assert [loadtest.percentile(values, q) for q in (50, 90, 99)] == pytest.approx([50.5, 90.1, 99.01])
    assert loadtest.percentile([], 50) is None
    assert loadtest.Sample(ttft=0.1, e2e=0.5, output_tokens=5, itls=()).tpot == pytest.approx(0.1)
    assert loadtest.Sample(ttft=0.1, e2e=0.1, output_tokens=1, itls=()).tpot is None


# --- Modal's proxy auth ----------------------------------------------------------------------------------


def test_the_stand_in_answers_as_modal_s_proxy_without_the_token(standin):
    import httpx

    server = standin(api_key=KEY, proxy_auth=PROXY)
    for headers, text in (
        ({}, "missing credentials"),
        ({"Modal-Key": PROXY[0], "Modal-Secret": "ws-other"}, "invalid credentials"),
    ):
        answer = httpx.get(f"{server.url}/health", headers=headers)
        assert (answer.status_code, answer.headers["content-type"]) == (401, "text/plain; charset=utf-8")
        assert answer.text == f"modal-http: {text} for proxy authorization"
    token = {"Modal-Key": PROXY[0], "Modal-Secret": PROXY[1]}
    assert httpx.get(f"{server.url}/health", headers=token).status_code == 200


def test_smoke_and_bench_send_the_proxy_token_of_the_environment_with_every_request(standin, capsys):
    server = standin(api_key=KEY, proxy_auth=PROXY)
    code, out = run(["smoke", server.url, "--api-key", KEY, "--profile", PROFILE], capsys)
    assert (code, out.splitlines()[-1]) == (0, "all 4 paths passed")
    code, out = run(["bench", server.url, "--api-key", KEY, "--requests", "4", "--profile", PROFILE], capsys)
    assert code == 0 and "completed 4 of 4 requests" in out


@pytest.mark.parametrize("command", ["smoke", "bench"])
@pytest.mark.parametrize("unset", [("MODAL_PROXY_KEY",), ("MODAL_PROXY_KEY", "MODAL_PROXY_SECRET")])
def test_a_profile_behind_proxy_auth_without_the_token_is_one_clear_error(command, unset, capsys, monkeypatch):
    for name in unset:
        monkeypatch.delenv(name)
    missing = " and ".join(unset)
    where = check(PROFILE).profile.origin(("server", "unauthenticated"))
    # Nothing listens at this URL: the error comes before any request.
    assert main([command, "http://127.0.0.1:9", "--api-key", KEY, "--profile", PROFILE]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (
        f"{where}: error: server.unauthenticated: profile b200-prod serves behind Modal's "
        f"proxy auth (false), and {missing} {'is' if len(unset) == 1 else 'are'} not set\n"
        "    hint: create a proxy auth token of the app's workspace (https://modal.com/docs/guide/webhook-proxy-auth) "
        "and export MODAL_PROXY_KEY=wk-... MODAL_PROXY_SECRET=ws-...\n"
    )
    assert PROXY[1] not in err


def test_a_wrong_proxy_token_is_the_401_of_modal_s_proxy_explained_and_never_printed(standin, capsys, monkeypatch):
    server = standin(api_key=KEY, proxy_auth=PROXY)
    wrong = ("ak-accountTokenId12345678", "as-accountTokenSecret12345678")
    monkeypatch.setenv("MODAL_PROXY_KEY", wrong[0])
    monkeypatch.setenv("MODAL_PROXY_SECRET", wrong[1])
    explained = (
        "HTTP 401: modal-http: invalid credentials for proxy authorization (Modal's proxy auth refused the token in "
        "MODAL_PROXY_KEY/MODAL_PROXY_SECRET: use a proxy auth token (wk-.../ws-...) of the app's workspace (allowed "
        "in its environment, if scoped), not a Modal API token (ak-.../as-...))"
    )
    code, out = run(["smoke", server.url, "--api-key", KEY, "--profile", PROFILE], capsys)
    assert code == 1 and not any(value in out for value in wrong)
    assert path_lines(out)[0] == f"FAIL chat - not sent: GET /v1/models: {explained}"

    assert main(["bench", server.url, "--api-key", KEY, "--requests", "2", "--profile", PROFILE]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"error: {server.url}: GET /v1/models: {explained}\n"
    assert not any(value in err for value in wrong)


def test_smoke_without_a_profile_or_a_token_explains_the_401_of_modal_s_proxy(standin, capsys, monkeypatch):
    server = standin(api_key=KEY, proxy_auth=PROXY)
    monkeypatch.delenv("MODAL_PROXY_KEY")
    code, out = run(["smoke", server.url, "--api-key", KEY, "--model", "glm-5.1"], capsys)
    assert code == 1
    assert [line.split(maxsplit=3)[3] for line in path_lines(out)] == [
        "HTTP 401: modal-http: missing credentials for proxy authorization (Modal's proxy auth: no "
        "Modal-Key/Modal-Secret headers were sent; create a proxy auth token of the app's workspace "
        "(https://modal.com/docs/guide/webhook-proxy-auth) and export MODAL_PROXY_KEY=wk-... MODAL_PROXY_SECRET=ws-...)"
    ]
