"""Semantic rules: each code fires on a minimal change to a shipped profile, blaming the field and line."""

from __future__ import annotations

import pytest

from conftest import child, run_cli
from deploygen.errors import UserError
from deploygen.facts import gpu_facts
from deploygen.load import deployable_profiles, load_profile
from deploygen.pipeline import check
from deploygen.validate import derived
from deploygen.validate.rules import RULES, rule_problems
from deploygen.validate.schema import apply_defaults, schema_problems

# Messages show shipped profiles relative to the working directory, as for a user in the checkout.
pytestmark = pytest.mark.usefixtures("in_repository")

# Codes with a test below that triggers them; filled as the tests are defined, not as they run.
COVERED: list[str] = []


def covers(*codes: str):
    def mark(test):
        COVERED.extend(codes)
        return test

    return mark


def findings(path, code: str) -> list[str]:
    """What a user sees for one rule: its problems (errors, warnings and notes) as printed."""
    profile = load_profile(str(path))
    assert schema_problems(profile) == []
    profile = apply_defaults(profile)
    return [str(p) for p in rule_problems(profile) if p.code == code]


@covers("gpu-count")
def test_more_gpus_than_modal_allows_for_the_type(tmp_path):
    profile = child(tmp_path, "gpu:\n  type: A10\n  count: 5\n")
    assert findings(profile, "gpu-count") == [
        f"{profile}:5:3: error[gpu-count]: gpu.count: Modal allows at most 4 A10 GPUs per container"
    ]


@covers("parallel-size")
def test_tp_times_pp_must_use_every_gpu(tmp_path):
    profile = child(tmp_path, "sglang:\n  tp-size: 4\n")
    assert findings(profile, "parallel-size") == [
        f"{profile}:4:3: error[parallel-size]: sglang.tp-size: tp-size 4 x pp-size 1 = 4, but the container has 8 GPUs"
        "\n    hint: leave tp-size unset (it is derived from gpu.count) or make tp-size x pp-size equal gpu.count"
    ]


def test_a_zero_pipeline_size_is_a_located_error_not_a_division_by_zero(tmp_path):
    profile = child(tmp_path, "sglang:\n  pp-size: 0\n")
    assert findings(profile, "parallel-size")[0].startswith(
        f"{profile}:4:3: error[parallel-size]: sglang.pp-size: tp-size 8 x pp-size 0 = 0"
    )
    assert findings(profile, "memory-fit") == []


@covers("trtllm-needs-blackwell")
def test_h200_with_the_trtllm_decode_backend_names_the_hopper_alternatives(tmp_path):
    profile = child(tmp_path, "sglang:\n  nsa-decode-backend: trtllm\n", parent="h200")
    assert findings(profile, "trtllm-needs-blackwell") == [
        f"{profile}:4:3: error[trtllm-needs-blackwell]: sglang.nsa-decode-backend: --nsa-decode-backend trtllm "
        "runs only on Blackwell (SM100); H200 is sm90\n"
        "    hint: on Hopper remove it (SGLang then picks flashmla_sparse prefill and fa3 decode) or set "
        "flashmla_sparse / fa3 explicitly"
    ]
    with pytest.raises(UserError, match=r"error\[trtllm-needs-blackwell\]"):
        check(str(profile))


@covers("dsa-kv-dtype")
def test_auto_kv_dtype_for_a_dsa_model_on_b200(tmp_path):
    profile = child(tmp_path, "sglang:\n  kv-cache-dtype: auto\n")
    assert findings(profile, "dsa-kv-dtype") == [
        f"{profile}:4:3: error[dsa-kv-dtype]: sglang.kv-cache-dtype: without an explicit --kv-cache-dtype SGLang "
        "picks FP8 KV for this DSA model on SM100\n"
        "    hint: set `kv-cache-dtype: bfloat16` (or fp8_e4m3 if you accept its accuracy loss)"
    ]


@covers("context-length-above-model")
def test_a_context_length_above_the_models_maximum_is_an_error_with_both_ways_out(tmp_path):
    profile = child(tmp_path, "sglang:\n  context-length: 131072\n", parent="smoke")
    assert findings(profile, "context-length-above-model") == [
        f"{profile}:4:3: error[context-length-above-model]: sglang.context-length: context-length 131,072 is above "
        "the model's maximum 40,960 (data/models/qwen3-0.6b.yaml max_context, from config.json "
        "max_position_embeddings); SGLang refuses to start\n"
        "    hint: lower it to at most 40,960; for a model whose rope scaling supports more, also set "
        'image.env.SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN: "1"'
    ]
    assert (
        findings(child(tmp_path, "sglang:\n  context-length: 40960\n", parent="smoke"), "context-length-above-model")
        == []
    )


@covers("context-length-overridden")
def test_a_context_length_above_the_maximum_with_the_override_warns_of_the_risk(tmp_path):
    body = 'image:\n  env:\n    SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN: "1"\nsglang:\n  context-length: 131072\n'
    profile = child(tmp_path, body, parent="smoke")
    assert findings(profile, "context-length-above-model") == []
    assert findings(profile, "context-length-overridden") == [
        f"{profile}:5:5: warning[context-length-overridden]: image.env.SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN: "
        "context-length 131,072 is above the model's maximum 40,960: SGLANG_ALLOW_OVERWRITE_LONGER_CONTEXT_LEN lets "
        "SGLang start, but past 40,960 tokens outputs may be wrong or CUDA kernels fail unless rope scaling extends "
        "the model\n"
        "    hint: give the model's rope scaling (e.g. YaRN) with --json-model-override-args as its card documents, "
        "or lower context-length"
    ]
    off = body.replace('"1"', '"0"')
    assert findings(child(tmp_path, off, parent="smoke"), "context-length-overridden") == []


@covers("fp8-kv-eagle")
def test_fp8_kv_with_eagle_on_blackwell_warns(tmp_path):
    profile = child(tmp_path, "sglang:\n  kv-cache-dtype: fp8_e4m3\n")
    assert findings(profile, "fp8-kv-eagle") == [
        f"{profile}:4:3: warning[fp8-kv-eagle]: sglang.kv-cache-dtype: FP8 KV with EAGLE on Blackwell loses "
        "accuracy on GLM-5.1-FP8 and models of its class GlmMoeDsaForCausalLM (SGLang #22671, #27661)\n"
        "    hint: use `kv-cache-dtype: bfloat16`"
    ]


@covers("fp8-kv-accuracy")
def test_fp8_kv_without_speculative_decoding_on_blackwell_warns_too(tmp_path):
    profile = child(tmp_path, "sglang:\n  kv-cache-dtype: fp8_e4m3\n  speculative-algorithm: null\n")
    assert findings(profile, "fp8-kv-accuracy") == [
        f"{profile}:4:3: warning[fp8-kv-accuracy]: sglang.kv-cache-dtype: FP8 KV on Blackwell loses accuracy on "
        "GLM-5.1-FP8 and models of its class GlmMoeDsaForCausalLM without speculative decoding too (SGLang #22671: "
        "AIME26 76.7 against 95.3 with BF16 KV)\n"
        "    hint: use `kv-cache-dtype: bfloat16`, or acknowledge it with your own accuracy measurement"
    ]
    assert findings(profile, "fp8-kv-eagle") == []
    # With EAGLE the EAGLE rule says it, once.
    with_eagle = child(tmp_path, "sglang:\n  kv-cache-dtype: fp8_e4m3\n", name="eagle")
    assert findings(with_eagle, "fp8-kv-accuracy") == []
    assert len(findings(with_eagle, "fp8-kv-eagle")) == 1
    # On Hopper the reports say nothing.
    hopper = child(
        tmp_path, "sglang:\n  kv-cache-dtype: fp8_e4m3\n  speculative-algorithm: null\n", parent="h200", name="h"
    )
    assert findings(hopper, "fp8-kv-accuracy") == []


@covers("deepgemm-arch")
def test_deepgemm_precompile_on_a_gpu_without_deepgemm_kernels_warns(tmp_path):
    profile = child(tmp_path, "lifecycle:\n  compile:\n    enabled: true\n", parent="smoke")
    assert findings(profile, "deepgemm-arch") == [
        f"{profile}:5:5: warning[deepgemm-arch]: lifecycle.compile.enabled: DeepGEMM has no kernels for L4 (sm89); "
        "compile_deepgemm would spend GPU time for nothing\n"
        "    hint: remove lifecycle.compile.enabled (unset compiles only where there is something to compile) or "
        "set it to false"
    ]
    assert findings(child(tmp_path, "", parent="smoke", name="as-shipped"), "deepgemm-arch") == []


@covers("deepgemm-arch")
def test_deepgemm_precompile_of_a_model_without_fp8_weights_warns(tmp_path):
    body = "gpu:\n  type: H100\n  count: 1\nlifecycle:\n  compile:\n    enabled: true\n"
    profile = child(tmp_path, body, parent="smoke")
    assert findings(profile, "deepgemm-arch") == [
        f"{profile}:8:5: warning[deepgemm-arch]: lifecycle.compile.enabled: the model's weights are not FP8 "
        "(quantization none), and DeepGEMM's kernels are FP8 only; compile_deepgemm would spend GPU time for nothing\n"
        "    hint: remove lifecycle.compile.enabled (unset compiles only where there is something to compile) or "
        "set it to false"
    ]


@pytest.mark.parametrize(
    ("parent", "body", "compiles", "reason"),
    [
        ("b200-prod", "", True, None),
        ("smoke", "", False, "the model's weights are not FP8 (quantization none), so there is nothing to precompile"),
        ("smoke", "gpu:\n  type: H100\n  count: 1\n", False, "the model's weights are not FP8 (quantization none)"),
        ("b200-prod", "gpu:\n  type: L40S\n  count: 8\n", False, "DeepGEMM has no kernels for L40S (sm89)"),
        ("b200-prod", "lifecycle:\n  compile:\n    enabled: false\n", False, "lifecycle.compile.enabled is false"),
    ],
    ids=["fp8-on-blackwell", "bf16-on-l4", "bf16-on-hopper", "fp8-on-l40s", "turned-off"],
)
def test_an_unset_compile_step_runs_exactly_where_deepgemm_has_fp8_kernels_to_build(
    tmp_path, parent, body, compiles, reason
):
    profile = apply_defaults(load_profile(str(child(tmp_path, body, parent=parent))))
    assert derived.precompiles_deepgemm(profile) is compiles
    if reason:
        assert derived.no_precompile_reason(profile).startswith(reason)
        assert derived.compile_step(profile) is None


@covers("spec-v2")
def test_spec_v2_needs_topk_1(tmp_path):
    profile = child(tmp_path, "sglang:\n  speculative-eagle-topk: 2\n")
    assert findings(profile, "spec-v2") == [
        f"{profile}:4:3: error[spec-v2]: sglang.speculative-eagle-topk: EAGLE spec v2 needs "
        "`speculative-eagle-topk: 1`\n"
        "    hint: set speculative-eagle-topk to 1"
    ]


def test_spec_v2_variable_is_gone_after_0_5_14(tmp_path):
    profile = child(
        tmp_path,
        "image:\n  sglang_image: lmsysorg/sglang:v0.5.23\n  sglang_version: 0.5.23\n"
        '  env:\n    SGLANG_ENABLE_SPEC_V2: "1"\n',
        parent="h200",
    )
    assert findings(profile, "spec-v2") == [
        f"{profile}:7:5: error[spec-v2]: image.env.SGLANG_ENABLE_SPEC_V2: SGLang 0.5.23 no longer reads "
        "SGLANG_ENABLE_SPEC_V2\n"
        "    hint: remove it; spec v2 is the default there"
    ]


@covers("memory-fit")
@pytest.mark.parametrize(
    ("sglang", "message", "hint"),
    [
        (
            "mem-fraction-static: 0.4",
            "weights need 89 GB per GPU but mem-fraction-static 0.4 of 192 GB reserves 77 GB",
            "use more GPUs or GPUs with more memory, or raise mem-fraction-static",
        ),
        (
            "mem-fraction-static: 0.5\n  context-length: 202752",
            "the KV pool holds about 69,893 tokens per GPU, less than one request of context-length 202,752",
            "lower context-length or raise mem-fraction-static",
        ),
        (
            "mem-fraction-static: 1.2",
            "mem-fraction-static 1.2 is not a fraction of GPU memory",
            "use a value between 0 and 1, e.g. 0.85",
        ),
    ],
    ids=["weights", "one-request", "not-a-fraction"],
)
def test_weights_and_one_request_must_fit_the_static_memory(tmp_path, sglang, message, hint):
    profile = child(tmp_path, f"sglang:\n  {sglang}\n")
    assert findings(profile, "memory-fit") == [
        f"{profile}:4:3: error[memory-fit]: sglang.mem-fraction-static: {message}\n    hint: {hint}"
    ]


@covers("max-total-tokens-below-context")
def test_a_pool_cap_below_one_request(tmp_path):
    profile = child(tmp_path, "sglang:\n  max-total-tokens: 32768\n")
    assert findings(profile, "max-total-tokens-below-context") == [
        f"{profile}:4:3: error[max-total-tokens-below-context]: sglang.max-total-tokens: max-total-tokens 32,768 "
        "caps the whole KV pool below one request of context-length 65,536\n"
        "    hint: remove max-total-tokens; the per-request ceiling is context-length"
    ]


@covers("max-total-tokens-pool-cap")
def test_the_guides_max_total_tokens_leaves_about_1365_tokens_per_running_request(tmp_path):
    profile = child(
        tmp_path, "sglang:\n  max-total-tokens: 65536\n  context-length: 65536\n  max-running-requests: 48\n"
    )
    assert findings(profile, "max-total-tokens-pool-cap") == [
        f"{profile}:4:3: warning[max-total-tokens-pool-cap]: sglang.max-total-tokens: max-total-tokens 65,536 caps "
        "the whole KV pool (not one request): 48 running requests share it, about 1,365 tokens each\n"
        "    hint: remove it to let the pool use mem-fraction-static; the per-request ceiling is context-length"
    ]


@covers("timeouts-cover-load")
def test_the_health_wait_must_outlast_the_weight_load(tmp_path):
    profile = child(tmp_path, "lifecycle:\n  health:\n    timeout: 600\n")
    assert findings(profile, "timeouts-cover-load") == [
        f"{profile}:5:5: error[timeouts-cover-load]: lifecycle.health.timeout: health timeout 600s is shorter than the "
        "~712s weight load\n    hint: raise it to at least 1068"
    ]


@covers("startup-budget")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            # The old default: 1500 + 300 = 1800 exactly, no room for the volume reloads.
            "scaling:\n  startup_timeout: 1800\nlifecycle:\n  health:\n    timeout: 1500\n",
            "startup_timeout 1800s can end @modal.enter before the 1500s health wait, the 300s warmup and 60s for "
            "the volume reloads and the weights check (1860s)\n"
            "    hint: raise scaling.startup_timeout to at least 1860, or lower lifecycle.health.timeout to at most "
            "1440",
        ),
        (
            "scaling:\n  startup_timeout: 1000\nlifecycle:\n  warmup:\n    enabled: false\n",
            "startup_timeout 1000s can end @modal.enter before the 1440s health wait and 60s for the volume reloads "
            "and the weights check (1500s)\n"
            "    hint: raise scaling.startup_timeout to at least 1500, or lower lifecycle.health.timeout to at most "
            "940",
        ),
    ],
    ids=["health-plus-warmup", "no-warmup"],
)
def test_the_startup_timeout_covers_health_warmup_and_volume_reloads(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert findings(profile, "startup-budget") == [
        f"{profile}:4:3: error[startup-budget]: scaling.startup_timeout: {expected}"
    ]


CLS = "server:\n  interface: cls\n"


@covers("shutdown-budget")
def test_the_shutdown_grace_leaves_room_in_modals_exit_budget_of_the_cls_form(tmp_path):
    profile = child(tmp_path, f"{CLS}lifecycle:\n  shutdown:\n    grace_period: 30\n")
    assert findings(profile, "shutdown-budget") == [
        f"{profile}:7:5: error[shutdown-budget]: lifecycle.shutdown.grace_period: shutdown grace_period 30s does "
        "not fit Modal's 30s for @modal.exit: SGLang's stop takes up to the grace plus 1s, and the volume commit "
        "follows it\n    hint: set lifecycle.shutdown.grace_period to at most 24"
    ]
    fits = child(tmp_path, f"{CLS}lifecycle:\n  shutdown:\n    grace_period: 24\n", name="fits")
    assert findings(fits, "shutdown-budget") == []


def test_under_app_server_the_shutdown_grace_is_bounded_by_the_exit_grace_period(tmp_path):
    # Derived, exit_grace_period always fits the grace: 30 s is fine where @app.cls would allow 24.
    derived = child(tmp_path, "server:\n  interface: server\nlifecycle:\n  shutdown:\n    grace_period: 30\n")
    assert findings(derived, "shutdown-budget") == []
    assert check(str(derived)).deployment.exit_grace_period == 36
    explicit = child(
        tmp_path,
        "server:\n  interface: server\n  exit_grace_period: 25\nlifecycle:\n  shutdown:\n    grace_period: 20\n",
        name="explicit",
    )
    assert findings(explicit, "shutdown-budget") == [
        f"{explicit}:5:3: error[shutdown-budget]: server.exit_grace_period: exit_grace_period 25s is shorter than "
        "the shutdown (26s): SGLang's stop takes up to the grace_period 20s plus 1s, and the volume commit follows "
        "it\n    hint: raise server.exit_grace_period to at least 26 (or remove it: it is then derived), or lower "
        "lifecycle.shutdown.grace_period to at most 19"
    ]


def test_exit_grace_period_is_refused_under_the_cls_form(tmp_path):
    profile = child(tmp_path, f"{CLS}  exit_grace_period: 60\n")
    assert findings(profile, "shutdown-budget") == [
        f"{profile}:5:3: error[shutdown-budget]: server.exit_grace_period: exit_grace_period is @app.server's; "
        "under interface cls Modal gives @modal.exit 30s\n"
        "    hint: remove server.exit_grace_period, or set server.interface: server"
    ]


@covers("cluster-interface")
def test_a_multi_node_profile_cannot_ask_for_the_cls_form(tmp_path):
    cluster = next(p for p in deployable_profiles() if p.get("gpu", "nodes", default=1) > 1)
    profile = child(tmp_path, CLS, parent=cluster.name)
    nodes = cluster.data["gpu"]["nodes"]
    assert findings(profile, "cluster-interface") == [
        f"{profile}:4:3: error[cluster-interface]: server.interface: a replica of {nodes} nodes is a Modal cluster, "
        'which serves HTTP through @app.server only (modal.clustered: "clustered Web Functions are not supported"), '
        "so interface cls cannot apply\n"
        "    hint: remove server.interface: cls (the render uses @app.server, modal >= 1.5.1), or set gpu.nodes: 1"
    ]
    assert (
        findings(
            child(tmp_path, "server:\n  interface: server\n", parent=cluster.name, name="server"), "cluster-interface"
        )
        == []
    )


@covers("modal-scaling")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "scaling:\n  min_containers: 4\n",
            "4:3: error[modal-scaling]: scaling.min_containers: min_containers 4 > max_containers 3\n"
            "    hint: Modal rejects this at deploy time",
        ),
        (
            "server:\n  interface: cls\nscaling:\n  target_inputs: 30\n",
            "6:3: error[modal-scaling]: scaling.target_inputs: target_inputs 30 > max_inputs 20\n"
            "    hint: target_inputs must be at most max_inputs",
        ),
        (
            "scaling:\n  target_concurrency: 60\n",
            "4:3: error[modal-scaling]: scaling.target_concurrency: target_concurrency 60 > max_concurrency 48\n"
            "    hint: Modal rejects a target above max_concurrency (modal/app.py, App.server): lower the target or "
            "raise max_concurrency",
        ),
    ],
    ids=["min-over-max", "cls-target-over-max", "server-target-over-max"],
)
def test_modal_scaling_limits_checked_before_deploy(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert findings(profile, "modal-scaling") == [f"{profile}:{expected}"]


@covers("server-resources")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "server:\n  cpu: [16, 8]\n",
            "4:3: error[server-resources]: server.cpu: limit 8 cores is below the request 16 cores: Modal refuses it\n"
            "    hint: give [request, limit] with the limit at least the request, e.g. [16, 16]",
        ),
        (
            "server:\n  memory: [65536, 1024]\n",
            "4:3: error[server-resources]: server.memory: limit 1024 MiB is below the request 65536 MiB: Modal "
            "refuses it\n    hint: give [request, limit] with the limit at least the request, e.g. [65536, 65536]",
        ),
    ],
    ids=["cpu", "memory"],
)
def test_a_container_limit_below_its_request_is_refused_before_deploy(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert findings(profile, "server-resources") == [f"{profile}:{expected}"]
    result = run_cli("render", str(profile), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and f"{profile}:{expected}\n" in result.stderr
    assert not (tmp_path / "out").exists()


@covers("idle-sglang-slots")
def test_fewer_modal_inputs_than_sglang_slots_is_a_note(tmp_path):
    profile = child(tmp_path, "server:\n  interface: cls\nscaling:\n  max_inputs: 16\n")
    assert findings(profile, "idle-sglang-slots") == [
        f"{profile}:6:3: info[idle-sglang-slots]: scaling.max_inputs: max_inputs 16 lets at most 16 requests reach "
        "SGLang, so 32 of max-running-requests 48 stay idle\n"
        "    hint: raise max_inputs to 48 (with target_inputs 16 to scale out early) or lower max-running-requests"
    ]


@covers("queued-in-sglang")
def test_more_modal_inputs_than_sglang_slots_warns(tmp_path):
    profile = child(tmp_path, "server:\n  interface: cls\nscaling:\n  max_inputs: 64\n")
    assert findings(profile, "queued-in-sglang") == [
        f"{profile}:6:3: warning[queued-in-sglang]: scaling.max_inputs: max_inputs 64 admits more requests than "
        "max-running-requests 48; the rest queue inside SGLang instead of starting a replica\n"
        "    hint: set max_inputs to 48"
    ]


@covers("idle-sglang-slots")
def test_a_server_that_answers_429_while_sglang_slots_idle_is_a_note(tmp_path):
    profile = child(tmp_path, "scaling:\n  max_concurrency: 16\n  target_concurrency: 8\n")
    assert findings(profile, "idle-sglang-slots") == [
        f"{profile}:4:3: info[idle-sglang-slots]: scaling.max_concurrency: max_concurrency 16 answers HTTP 429 "
        "while 32 of max-running-requests 48 stay idle\n"
        "    hint: raise max_concurrency to 48 (target_concurrency decides when a replica is added) or lower "
        "max-running-requests"
    ]


@covers("queued-in-sglang")
def test_a_server_that_admits_more_than_sglang_runs_warns(tmp_path):
    profile = child(tmp_path, "scaling:\n  max_concurrency: 64\n")
    assert findings(profile, "queued-in-sglang") == [
        f"{profile}:4:3: warning[queued-in-sglang]: scaling.max_concurrency: max_concurrency 64 admits more "
        "requests than max-running-requests 48; the rest queue inside SGLang instead of starting a replica\n"
        "    hint: set max_concurrency to 48"
    ]


@covers("keepalive-cron")
@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (
            "schedule",
            "every 14 minutes",
            "keepalive.schedule: 'every 14 minutes' is not a five-field cron expression\n"
            "    hint: for example '*/14 6-22 * * MON-FRI'",
        ),
        (
            "schedule",
            "0 */14 6-22 * * MON-FRI",
            "keepalive.schedule: '0 */14 6-22 * * MON-FRI' is not a five-field cron expression\n"
            "    hint: for example '*/14 6-22 * * MON-FRI'",
        ),
        (
            "schedule",
            "0 0 30 2 *",
            "keepalive.schedule: '0 0 30 2 *' never fires\n    hint: check the day-of-month and month fields",
        ),
        (
            "timezone",
            "Mars/Olympus_Mons",
            "keepalive.timezone: 'Mars/Olympus_Mons' is not an IANA time zone\n"
            "    hint: for example 'UTC' or 'Europe/Berlin'",
        ),
        (
            "timezone",
            "../../etc/passwd",
            "keepalive.timezone: '../../etc/passwd' is not an IANA time zone\n"
            "    hint: for example 'UTC' or 'Europe/Berlin'",
        ),
    ],
    ids=["words", "six-fields", "30-february", "unknown-zone", "path-as-zone"],
)
def test_a_bad_cron_or_time_zone_is_an_error(tmp_path, field, value, expected):
    profile = child(tmp_path, f"keepalive:\n  mode: ping\n  {field}: '{value}'\n", parent="b200-business-hours")
    assert findings(profile, "keepalive-cron") == [f"{profile}:5:3: error[keepalive-cron]: {expected}"]


@covers("keepalive-interval")
@pytest.mark.parametrize(("schedule", "minutes"), [("*/30 6-22 * * MON-FRI", 30), ("0 * * * *", 60)])
def test_pings_further_apart_than_the_scaledown_window_warn(tmp_path, schedule, minutes):
    profile = child(tmp_path, f"keepalive:\n  mode: ping\n  schedule: '{schedule}'\n", parent="b200-business-hours")
    assert findings(profile, "keepalive-interval") == [
        f"{profile}:5:3: warning[keepalive-interval]: keepalive.schedule: the cron pings every {minutes} min, but a "
        "replica scales down after 15 idle min\n"
        "    hint: ping more often than scaling.scaledown_window"
    ]


@covers("keepalive-window")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "keepalive:\n  window:\n    start: '20:00'\n    end: '08:00'\n",
            "6:5: error[keepalive-window]: keepalive.window.end: the window ends at 08:00, not after it starts at "
            "20:00\n    hint: a window lies within one day: end after start (24:00 for midnight)",
        ),
        (
            "scaling:\n  min_containers: 1\n",
            "4:3: error[keepalive-window]: scaling.min_containers: min_containers 1 keeps as many replicas warm at "
            "all hours as the keep-alive window's 1\n"
            "    hint: raise window.min_containers above scaling.min_containers, or set keepalive.mode: off",
        ),
    ],
    ids=["end-before-start", "always-warm-anyway"],
)
def test_an_autoscaler_window_must_open_and_add_a_replica(tmp_path, body, expected):
    profile = child(tmp_path, body, parent="b200-business-hours")
    assert findings(profile, "keepalive-window") == [f"{profile}:{expected}"]


@covers("keepalive-proxy-auth")
def test_a_ping_behind_proxy_auth_needs_the_token_secret(tmp_path):
    profile = child(tmp_path, "keepalive:\n  mode: ping\n", parent="b200-business-hours")
    assert findings(profile, "keepalive-proxy-auth") == [
        f"{profile}:4:3: error[keepalive-proxy-auth]: keepalive.mode: the keep-alive ping cannot pass Modal's proxy "
        "auth: secrets.proxy_auth is not set\n"
        "    hint: create a Modal secret with MODAL_PROXY_KEY and MODAL_PROXY_SECRET (`modal secret create NAME "
        "MODAL_PROXY_KEY=wk-... MODAL_PROXY_SECRET=ws-...`) and name it in secrets.proxy_auth, or use "
        "keepalive.mode: autoscaler"
    ]
    unauthenticated = child(
        tmp_path,
        "keepalive:\n  mode: ping\nserver:\n  unauthenticated: true\n",
        parent="b200-business-hours",
        name="open",
    )
    assert findings(unauthenticated, "keepalive-proxy-auth") == []


@covers("volumes")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "volumes:\n  compile_cache:\n    name: glm51-model-weights\n",
            "5:5: error[volumes]: volumes.compile_cache.name: weights and compile cache share one volume\n"
            "    hint: give the compile cache its own volume",
        ),
        (
            "volumes:\n  compile_cache:\n    mount: /model-cache/dg\n",
            "5:5: error[volumes]: volumes.compile_cache.mount: mount paths /model-cache and /model-cache/dg overlap\n"
            "    hint: mount each volume on its own path",
        ),
        (
            "model:\n  path: /weights/GLM-5.1-FP8\n",
            "4:3: error[volumes]: model.path: model.path /weights/GLM-5.1-FP8 is not inside the weights mount "
            "/model-cache\n    hint: use a folder under /model-cache",
        ),
    ],
    ids=["same-name", "nested-mounts", "model-outside-mount"],
)
def test_volumes_need_their_own_names_and_paths(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert findings(profile, "volumes") == [f"{profile}:{expected}"]


@covers("image-pinned")
@pytest.mark.parametrize(
    ("image", "moves"),
    [
        ("lmsysorg/sglang:latest", "latest"),
        ("lmsysorg/sglang:dev", "dev"),
        ("lmsysorg/sglang", "no tag"),
        ("lmsysorg/sglang:nightly-20261101", "nightly-20261101"),
    ],
)
def test_a_floating_image_tag_is_an_error(tmp_path, image, moves):
    profile = child(tmp_path, f"image:\n  sglang_image: {image}\n")
    assert findings(profile, "image-pinned") == [
        f"{profile}:4:3: error[image-pinned]: image.sglang_image: image {image!r} is not pinned: {moves} moves\n"
        "    hint: pin a release tag such as lmsysorg/sglang:v0.5.10.post1-cu130, or keep this image and add its "
        f"digest, {image}@sha256:<64 hex> (`docker buildx imagetools inspect {image}` prints it)"
    ]


@covers("image-pinned")
@pytest.mark.parametrize("tag", ["glm5-blackwell", "glm5-hopper", "cu130-runtime"])
def test_a_tag_that_names_no_release_is_not_pinned_without_a_digest(tmp_path, tag):
    image = f"lmsysorg/sglang:{tag}"
    body = f"image:\n  sglang_image: {image}\n  flag_check: parser-matches\n"
    profile = child(tmp_path, body)
    assert findings(profile, "image-pinned") == [
        f"{profile}:4:3: error[image-pinned]: image.sglang_image: image {image!r} is not pinned: tag {tag!r} names "
        "no release and can be rebuilt under the same name\n"
        "    hint: pin a release tag such as lmsysorg/sglang:v0.5.10.post1-cu130, or keep this image and add its "
        f"digest, {image}@sha256:<64 hex> (`docker buildx imagetools inspect {image}` prints it)"
    ]
    digest = f"{image}@sha256:" + "b" * 64
    pinned = child(tmp_path, body.replace(image, digest), name="pinned")
    assert findings(pinned, "image-pinned") == []


@pytest.mark.parametrize(
    "image",
    [
        "lmsysorg/sglang:v0.5.23-cu130",
        "lmsysorg/sglang:v0.5.23-cu130@sha256:" + "0" * 64,
    ],
    ids=["tag", "tag-and-digest"],
)
def test_an_image_tag_of_another_version_than_sglang_version_is_an_error(tmp_path, image):
    profile = child(tmp_path, f"image:\n  sglang_image: {image}\n  sglang_version: 0.5.10.post1\n")
    assert findings(profile, "image-pinned") == [
        f"{profile}:5:3: error[image-pinned]: image.sglang_version: image tag 'v0.5.23-cu130' does not match "
        "sglang_version 0.5.10.post1\n"
        "    hint: use the v0.5.10.post1 image or set sglang_version to the image's version"
    ]


def test_a_malformed_digest_or_image_reference_is_an_error(tmp_path):
    digest = child(tmp_path, "image:\n  sglang_image: lmsysorg/sglang@sha256:abc\n", name="digest")
    assert findings(digest, "image-pinned") == [
        f"{digest}:4:3: error[image-pinned]: image.sglang_image: 'sha256:abc' is not a sha256 digest\n"
        "    hint: copy the digest from the registry, e.g. `docker buildx imagetools inspect IMAGE`"
    ]
    spaced = child(tmp_path, "image:\n  sglang_image: 'lmsysorg/sglang:v0.5.10.post1-cu130 '\n", name="spaced")
    assert findings(spaced, "image-pinned") == [
        f"{spaced}:4:3: error[image-pinned]: image.sglang_image: 'lmsysorg/sglang:v0.5.10.post1-cu130 ' is not an "
        "image reference Modal can pull\n"
        "    hint: write REPOSITORY:TAG, e.g. lmsysorg/sglang:v0.5.10.post1-cu130"
    ]


def test_a_digest_pinned_image_of_the_right_version_passes(tmp_path):
    image = "lmsysorg/sglang:v0.5.10.post1-cu130@sha256:" + "a" * 64
    assert findings(child(tmp_path, f"image:\n  sglang_image: {image}\n"), "image-pinned") == []


@covers("inline-secret")
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "description: GLM with token hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123 inside\n",
            "3:1: error[inline-secret]: description: this value looks like an API key or token; secrets never go in a "
            "profile\n    hint: store it with `modal secret create` and name the Modal secret under `secrets`",
        ),
        (
            "keepalive:\n  url: https://glm.example.com/?key=sk-0123456789abcdefghijklmnop\n",
            "4:3: error[inline-secret]: keepalive.url: this value looks like an API key or token; secrets never go in "
            "a profile\n    hint: store it with `modal secret create` and name the Modal secret under `secrets`",
        ),
        (
            'image:\n  env:\n    HF_TOKEN: "placeholder"\n',
            "5:5: error[inline-secret]: image.env.HF_TOKEN: image.env.HF_TOKEN looks like a secret; its value would be "
            "baked into the image\n"
            "    hint: store it with `modal secret create NAME KEY=...` and name that secret under `secrets`",
        ),
    ],
    ids=["hf-token-in-description", "key-in-url", "env-HF_TOKEN"],
)
def test_secrets_never_go_in_a_profile(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert findings(profile, "inline-secret") == [f"{profile}:{expected}"]


@covers("model-revision")
def test_a_branch_revision_is_a_note_and_a_commit_is_not(tmp_path):
    branch = child(tmp_path, "model:\n  revision: release\n", name="branch")
    assert findings(branch, "model-revision") == [
        f"{branch}:4:3: info[model-revision]: model.revision: revision 'release' is a branch: download_model records "
        "the commit it resolves to, but the next download may fetch newer weights\n"
        "    hint: pin the 40-hex commit from the Hub's 'Files and versions' page once validated"
    ]
    commit = child(tmp_path, f"model:\n  revision: {'0123456789abcdef' * 2}01234567\n", name="commit")
    assert findings(commit, "model-revision") == []


CLUSTER = "glm-5.1-fp8-h100x16"


@covers("parallel-size")
def test_tp_times_pp_must_use_every_gpu_of_the_cluster(tmp_path):
    profile = child(tmp_path, "sglang:\n  tp-size: 8\n", parent=CLUSTER)
    assert findings(profile, "parallel-size") == [
        f"{profile}:4:3: error[parallel-size]: sglang.tp-size: tp-size 8 x pp-size 1 = 8, but the cluster has 16 GPUs "
        "(2 nodes)\n    hint: leave tp-size unset (it is derived from gpu.count x gpu.nodes) or make tp-size x pp-size "
        "equal gpu.count x gpu.nodes"
    ]


def test_data_parallel_across_nodes_needs_dp_attention(tmp_path):
    profile = child(tmp_path, "sglang:\n  tp-size: 8\n  dp-size: 2\n", parent=CLUSTER)
    assert findings(profile, "parallel-size") == [
        f"{profile}:5:3: error[parallel-size]: sglang.dp-size: dp-size 2 across 2 nodes: SGLang supports multi-node "
        "data parallelism only with DP attention\n"
        "    hint: set enable-dp-attention, or give each replica one node and let Modal run more replicas"
    ]
    attention = child(
        tmp_path, "sglang:\n  dp-size: 2\n  enable-dp-attention: true\n", parent=CLUSTER, name="attention"
    )
    assert findings(attention, "parallel-size") == []


@covers("cluster-full-nodes")
def test_a_cluster_takes_whole_hosts(tmp_path):
    profile = child(tmp_path, "gpu:\n  type: H100\n  count: 4\n  nodes: 4\n", parent=CLUSTER)
    assert findings(profile, "cluster-full-nodes") == [
        f"{profile}:5:3: error[cluster-full-nodes]: gpu.count: a Modal cluster takes whole hosts, 8 H100 GPUs each, "
        "but gpu.count is 4\n    hint: set gpu.count to 8"
    ]


def test_one_node_may_use_part_of_a_host(tmp_path):
    profile = child(tmp_path, "gpu:\n  type: H100\n  count: 4\n  nodes: 1\n", parent=CLUSTER)
    assert findings(profile, "cluster-full-nodes") == []


def test_the_cluster_size_is_within_modals_limit(tmp_path):
    profile = load_profile(str(child(tmp_path, "gpu:\n  type: H100\n  count: 8\n  nodes: 33\n", parent=CLUSTER)))
    assert [str(p) for p in schema_problems(profile)] == [
        f"{profile.path}:6:3: error: gpu.nodes: 33 is greater than the maximum of 32\n    hint: Containers (nodes) "
        "per replica. Above 1 a replica is a Modal cluster (@modal.clustered): SGLang runs on every node with "
        "--nnodes/--node-rank and only rank 0 serves HTTP. Modal allows up to 32 nodes and 256 GPUs "
        "(docs/multinode.md)."
    ]


@covers("cluster-scaling")
def test_container_counts_are_whole_clusters(tmp_path):
    profile = child(tmp_path, "scaling:\n  min_containers: 1\n  max_containers: 3\n", parent=CLUSTER)
    assert findings(profile, "cluster-scaling") == [
        f"{profile}:4:3: error[cluster-scaling]: scaling.min_containers: min_containers 1 is not a multiple of the "
        "cluster size 2: Modal counts containers, and a replica is 2 of them\n    hint: use a multiple of 2, e.g. 2",
        f"{profile}:5:3: error[cluster-scaling]: scaling.max_containers: max_containers 3 is not a multiple of the "
        "cluster size 2: Modal counts containers, and a replica is 2 of them\n    hint: use a multiple of 2, e.g. 2",
    ]


@covers("cluster-ports")
def test_the_rendezvous_and_watch_ports_are_not_the_http_port(tmp_path):
    profile = child(tmp_path, "server:\n  rendezvous_port: 8000\n  cluster_watch_port: 8000\n", parent=CLUSTER)
    assert findings(profile, "cluster-ports") == [
        f"{profile}:4:3: error[cluster-ports]: server.rendezvous_port: server.port 8000 is taken by SGLang's "
        "rendezvous (8000)\n    hint: give the rendezvous its own port, e.g. 20000",
        f"{profile}:5:3: error[cluster-ports]: server.cluster_watch_port: server.cluster_watch_port 8000 is taken by "
        "SGLang's rendezvous (8000)\n    hint: give the cluster watch its own port, e.g. 20100",
    ]


def test_dp_attention_takes_the_five_ports_after_the_rendezvous(tmp_path):
    body = "server:\n  rendezvous_port: 7996\nsglang:\n  dp-size: 2\n  enable-dp-attention: true\n"
    profile = child(tmp_path, body, parent=CLUSTER)
    assert findings(profile, "cluster-ports") == [
        f"{profile}:4:3: error[cluster-ports]: server.rendezvous_port: server.port 8000 is taken by SGLang's "
        "rendezvous (7996-8001)\n    hint: give the rendezvous its own port, e.g. 20000"
    ]
    assert (
        findings(child(tmp_path, "server:\n  rendezvous_port: 7996\n", parent=CLUSTER, name="tp"), "cluster-ports")
        == []
    )


@covers("cluster-rdma")
def test_tensor_parallel_across_nodes_without_rdma_is_a_warning_with_the_bandwidths(tmp_path):
    profile = child(tmp_path, "gpu:\n  type: H100\n  count: 8\n  nodes: 2\n  rdma: false\n", parent=CLUSTER)
    assert findings(profile, "cluster-rdma") == [
        f"{profile}:7:3: warning[cluster-rdma]: gpu.rdma: tp-size 16 spans 2 nodes without RDMA: every layer's "
        "all-reduce crosses the private IPv6 network (about 50 Gbps) instead of RDMA (3,200 Gbps per node)\n"
        "    hint: set gpu.rdma: true"
    ]


@covers("cluster-flags")
def test_a_version_without_multi_node_flags_cannot_run_a_cluster(tmp_path, monkeypatch):
    import json

    from deploygen.sglang import catalog as catalogs

    real = json.loads((catalogs.CATALOG_DIR / "0.5.10.json").read_text())
    real["flags"] = [f for f in real["flags"] if f["dest"] not in ("nnodes", "node_rank")]
    (tmp_path / "0.5.9.json").write_text(json.dumps(real))
    monkeypatch.setattr(catalogs, "CATALOG_DIR", tmp_path)
    catalogs.load_catalog.cache_clear()
    try:
        body = "image:\n  sglang_image: lmsysorg/sglang:v0.5.9-cu130\n  sglang_version: 0.5.9\n"
        profile = child(tmp_path, body, parent=CLUSTER)
        assert findings(profile, "cluster-flags") == [
            f"{profile}:5:3: error[cluster-flags]: image.sglang_version: SGLang 0.5.9 has no --nnodes, --node-rank: "
            "it cannot run on several nodes\n    hint: pin an SGLang version with multi-node flags, or use one node"
        ]
    finally:
        catalogs.load_catalog.cache_clear()


def test_every_rule_has_a_test_that_triggers_it():
    from test_flag_check import COVERED as FLAG_CHECK_COVERED  # image.flag_check's rules are tested there
    from test_image_steps import COVERED as IMAGE_STEPS_COVERED  # image.steps' rules are tested there
    from test_rule_scopes import COVERED as SCOPES_COVERED
    from test_rule_truths import COVERED as TRUTHS_COVERED
    from test_vllm_rules import COVERED as VLLM_COVERED  # the vLLM rules are tested there
    from test_weights_layout import COVERED as LAYOUT_COVERED  # model.weights_layout's rule is tested there

    WARMUP_COVERED = ["warmup"]  # tests/test_warmup.py triggers each of its findings
    covered = set(COVERED) | set(VLLM_COVERED) | set(WARMUP_COVERED) | set(FLAG_CHECK_COVERED) | set(SCOPES_COVERED)
    covered |= set(TRUTHS_COVERED)
    covered |= set(IMAGE_STEPS_COVERED) | set(LAYOUT_COVERED)
    assert sorted(covered) == sorted(rule.code for rule in RULES)


def test_strict_fails_on_a_warning_and_names_it(tmp_path):
    profile = child(tmp_path, "scaling:\n  max_concurrency: 64\n")
    relaxed = run_cli("validate", str(profile))
    assert relaxed.returncode == 0
    assert f"{profile}: valid (2 notes)" in relaxed.stdout
    strict = run_cli("validate", str(profile), "--strict")
    assert strict.returncode == 1
    assert strict.stderr == (
        f"{profile}:4:3: warning[queued-in-sglang]: scaling.max_concurrency: max_concurrency 64 admits more "
        "requests than max-running-requests 48; the rest queue inside SGLang instead of starting a replica\n"
        "    hint: set max_concurrency to 48\n"
    )
    assert "valid" not in strict.stdout


def test_strict_never_fails_on_info_notes():
    result = run_cli("validate", "b200-prod", "--strict")
    assert result.returncode == 0
    assert "info[model-revision]" in result.stderr and "warning" not in result.stderr
    assert result.stdout.splitlines()[0] == "profiles/b200-prod.yaml: valid (1 notes)"


@pytest.mark.parametrize("name", ["qwen3.5-397b-b200x4", "b200-prod"])
def test_the_memory_rule_and_the_planner_share_one_kv_pool(tmp_path, name):
    """A GQA model's KV splits across TP (Qwen3.5: 30,720 B/token over 2 KV heads at TP 4), MLA's does not:
    the rule refuses one token more than the planner's pool and accepts exactly the pool."""
    from deploygen.plan.capacity import plan

    checked = check(name)
    tokens = plan(checked.profile, checked.catalog)["memory"]["kv_pool_tokens"]["value"]
    over = child(tmp_path, f"sglang:\n  context-length: {tokens + 1}\n", parent=name, name="over")
    fraction_set_at = load_profile(str(over)).origin(("sglang", "mem-fraction-static"))
    assert findings(over, "memory-fit") == [
        f"{fraction_set_at}: error[memory-fit]: sglang.mem-fraction-static: the KV pool holds about {tokens:,} "
        "tokens per GPU, "
        f"less than one request of context-length {tokens + 1:,}\n"
        "    hint: lower context-length or raise mem-fraction-static"
    ]
    exact = child(tmp_path, f"sglang:\n  context-length: {tokens}\n", parent=name, name="exact")
    assert findings(exact, "memory-fit") == []


@covers("compile-cache-missing")
@pytest.mark.parametrize(
    ("parent", "hint"),
    [
        (
            "b200-prod",
            "add volumes.compile_cache: {name: APP-kernels-sm100, mount: /cache}, or set "
            "lifecycle.compile.enabled: false (a model with no FP8 kernels has nothing to precompile)",
        ),
        (
            "glm-5.1-h200-vllm",
            "add volumes.compile_cache: {name: APP-kernels-sm90, mount: /cache}, or set `vllm: {enforce-eager: true}`",
        ),
    ],
    ids=["sglang-precompile", "vllm-torch-compile"],
)
def test_a_compile_step_without_a_compile_cache_volume_is_refused(tmp_path, parent, hint):
    profile = child(tmp_path, "volumes:\n  compile_cache: null\n", parent=parent)
    step = "the DeepGEMM precompile" if parent == "b200-prod" else "vLLM's torch.compile at first start"
    hint = hint.replace("APP", load_profile(parent).get("app", "name"))
    assert findings(profile, "compile-cache-missing") == [
        f"{profile}:3:1: error[compile-cache-missing]: volumes: {step} writes its kernels to the compile-cache "
        f"volume, and volumes.compile_cache is not set\n    hint: {hint}"
    ]
    result = run_cli("render", str(profile), "--out", str(tmp_path / "out"))
    assert result.returncode == 1 and "error[compile-cache-missing]" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@covers("compile-cache-unused")
def test_a_compile_cache_volume_with_no_compile_step_is_a_note(tmp_path):
    profile = child(tmp_path, "volumes:\n  compile_cache: {name: probe-jit-sm89, mount: /jit}\n", parent="smoke")
    assert findings(profile, "compile-cache-unused") == [
        f"{profile}:4:3: info[compile-cache-unused]: volumes.compile_cache: this profile has no compile step: the "
        "compile-cache volume keeps only the JIT caches (Triton, FlashInfer) across cold starts\n"
        "    hint: keep it to start faster, or remove volumes.compile_cache and let each cold start rebuild them"
    ]
    without = child(tmp_path, "volumes:\n  compile_cache: null\n", parent="smoke", name="without")
    assert findings(without, "compile-cache-unused") == []
    assert findings(without, "compile-cache-missing") == []


@pytest.mark.parametrize("gpu_type", sorted(name for name, gpu in gpu_facts().items() if gpu["family"] == "sm100"))
def test_every_gpu_of_the_sm100_family_takes_the_blackwell_paths(tmp_path, gpu_type):
    """B300 is sm103 but SGLang picks its kernels by compute capability major 10 (data/gpus.yaml family)."""
    blackwell = child(tmp_path, f"gpu:\n  type: {gpu_type}\n")
    hopper = child(tmp_path, "gpu:\n  type: H200\n", name="hopper")
    assert findings(blackwell, "trtllm-needs-blackwell") == [] and findings(blackwell, "deepgemm-arch") == []
    assert findings(hopper, "trtllm-needs-blackwell") != []
    unset = child(tmp_path, f"gpu:\n  type: {gpu_type}\nsglang:\n  kv-cache-dtype: null\n", name="unset")
    assert [line.split(": ", 2)[1] for line in findings(unset, "dsa-kv-dtype")] == ["error[dsa-kv-dtype]"]
    assert check(str(blackwell)).deployment.gpu_arch == gpu_facts()[gpu_type]["arch"]


@covers("draft-model-offline")
def test_a_draft_model_named_by_its_hub_id_cannot_be_downloaded_by_the_offline_engine(tmp_path):
    profile = child(tmp_path, "sglang:\n  speculative-draft-model-path: z-lab/Qwen3.6-35B-A3B-DFlash\n")
    assert findings(profile, "draft-model-offline") == [
        f"{profile}:4:3: error[draft-model-offline]: sglang.speculative-draft-model-path: "
        "--speculative-draft-model-path 'z-lab/Qwen3.6-35B-A3B-DFlash' is not a path in the container: deploy.py "
        "starts SGLang with HF_HUB_OFFLINE=1 and download_model fetches model.repo only, so SGLang cannot download "
        "the draft model when it starts\n"
        "    hint: download z-lab/Qwen3.6-35B-A3B-DFlash into the weights volume and give its path there "
        "(e.g. /model-cache/Qwen3.6-35B-A3B-DFlash)"
    ]
    in_volume = child(tmp_path, "sglang:\n  speculative-draft-model-path: /model-cache/Qwen3.6-35B-A3B-DFlash\n")
    assert findings(in_volume, "draft-model-offline") == []
