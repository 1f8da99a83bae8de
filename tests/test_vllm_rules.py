"""engine: vllm — the schema, the engine's own flag section and image, and the rules that differ by engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploygen.errors import UserError
from deploygen.load import load_profile
from deploygen.validate import validate

# A complete vLLM profile: GLM-5.1-FP8 on 8x H200 with the recipe's flags.
VLLM_PROFILE = """\
schema_version: 1
description: GLM-5.1-FP8 on 8x H200 served by vLLM.
engine: vllm
app: {name: glm-vllm}
model: {repo: zai-org/GLM-5.1-FP8, revision: 82e56a32169dc4a870f00acfac5a71e595375734, name: glm-5.1,
        path: /model-cache/GLM-5.1-FP8, facts: glm-5.1-fp8}
gpu: {type: H200, count: 8}
image: {vllm_image: "vllm/vllm-openai:v0.33.0", vllm_version: 0.33.0}
volumes:
  weights: {name: glm51-model-weights, mount: /model-cache}
  compile_cache: {name: glm51-vllm-cache-h200, mount: /vllm-cache}
scaling: {max_inputs: 20}
vllm:
  speculative-config: {method: mtp, num_speculative_tokens: 3}
  tool-call-parser: glm47
  reasoning-parser: glm45
  enable-auto-tool-choice: true
  max-model-len: 65536
  gpu-memory-utilization: 0.9
  max-num-seqs: 20
"""


# The rule codes these tests trigger (test_rules checks that every rule has a test).
COVERED: list[str] = []


def covers(*codes: str):
    def mark(test):
        COVERED.extend(codes)
        return test

    return mark


def profile_with(tmp_path: Path, body: str) -> str:
    """VLLM_PROFILE extended by `body` (its first line is line 2 of child.yaml)."""
    (tmp_path / "base.yaml").write_text(VLLM_PROFILE)
    child = tmp_path / "child.yaml"
    child.write_text(f"extends: base.yaml\n{body}")
    return str(child)


def problems(path: str, strict: bool = True) -> list[str]:
    try:
        validated = validate(load_profile(path), strict=strict)
    except UserError as error:
        return [str(p).replace(str(Path(path).parent) + "/", "") for p in error.problems]
    return [str(p).replace(str(Path(path).parent) + "/", "") for p in validated.findings]


def test_the_recipe_profile_is_valid_and_gets_no_sglang_findings(tmp_path):
    assert problems(profile_with(tmp_path, "")) == []


def test_the_other_engines_section_is_refused(tmp_path):
    assert problems(profile_with(tmp_path, "sglang:\n  mem-fraction-static: 0.85\n")) == [
        "child.yaml:2:1: error[engine-section]: sglang: `sglang:` flags do not apply: this profile's engine is vllm\n"
        "    hint: move what you need to `vllm:` (names differ between the engines), or set `engine: sglang`"
    ]


def test_the_chosen_engines_image_is_required(tmp_path):
    path = tmp_path / "bare.yaml"
    vllm_image = 'image: {vllm_image: "vllm/vllm-openai:v0.33.0", vllm_version: 0.33.0}'
    sglang_image = 'image: {sglang_image: "lmsysorg/sglang:v0.5.10", sglang_version: 0.5.10}'
    path.write_text(VLLM_PROFILE.replace(vllm_image, sglang_image))
    found = problems(str(path))
    assert len(found) == 2
    assert all("image" in p and ("vllm_image" in p or "vllm_version" in p) for p in found), found


@covers("image-pinned")
@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("vllm/vllm-openai:latest", "error[image-pinned]: image.vllm_image: image 'vllm/vllm-openai:latest' is not "
         "pinned: latest moves\n    hint: pin a release tag such as vllm/vllm-openai:v0.33.0, or keep this image "
         "and add its digest, vllm/vllm-openai:latest@sha256:<64 hex> (`docker buildx imagetools inspect "
         "vllm/vllm-openai:latest` prints it)"),
        ("vllm/vllm-openai:v0.19.0", "error[image-pinned]: image.vllm_version: image tag 'v0.19.0' does not match "
         "vllm_version 0.33.0\n    hint: use the v0.33.0 image or set vllm_version to the image's version"),
    ],
)  # fmt: skip
def test_the_image_is_pinned_and_matches_the_vllm_version(tmp_path, image, message):
    found = problems(profile_with(tmp_path, f"image: {{vllm_image: '{image}'}}\n"))
    assert [p.split(": ", 1)[1] for p in found] == [message]


@covers("vllm-parallel-size")
def test_tensor_parallel_comes_from_the_gpu_count(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  tensor-parallel-size: 16\n")) == [
        "child.yaml:3:3: error[vllm-parallel-size]: vllm.tensor-parallel-size: tensor-parallel-size 16 x "
        "pipeline-parallel-size 1 = 16, but the container has 8 GPUs\n    hint: leave tensor-parallel-size unset "
        "(it is derived from gpu.count) or make tp x pp equal gpu.count"
    ]


@covers("vllm-memory")
def test_gpu_memory_utilization_is_a_share_of_the_whole_gpu(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  gpu-memory-utilization: 85\n")) == [
        "child.yaml:3:3: error[vllm-memory]: vllm.gpu-memory-utilization: gpu-memory-utilization 85 is not a share "
        "of GPU memory\n    hint: use a value above 0 and at most 1, e.g. 0.9 (vLLM counts every process's use of "
        "the GPU against it)"
    ]
    assert problems(profile_with(tmp_path, "gpu: {count: 4}\n")) == [
        "base.yaml:19:3: error[vllm-memory]: vllm.gpu-memory-utilization: weights need 178 GB per GPU but "
        "gpu-memory-utilization 0.9 of 141 GB lets vLLM use 127 GB\n    hint: use more GPUs or GPUs with more "
        "memory, or raise gpu-memory-utilization"
    ]


@covers("vllm-max-model-len")
def test_max_model_len_above_the_models_limit_is_refused(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  max-model-len: 256k\n")) == [
        "child.yaml:3:3: error[vllm-max-model-len]: vllm.max-model-len: max-model-len 256,000 is above the model's "
        "max_position_embeddings 202,752; vLLM refuses it\n    hint: use at most 202,752 (or set "
        "image.env.VLLM_ALLOW_LONG_MAX_MODEL_LEN: '1' with rope scaling)"
    ]


@covers("vllm-speculative")
def test_mtp_needs_a_number_of_speculative_tokens(tmp_path):
    body = "vllm:\n  speculative-config: {method: mtp, num_speculative_tokens: 0}\n"
    assert problems(profile_with(tmp_path, body)) == [
        "child.yaml:3:3: error[vllm-speculative]: vllm.speculative-config: speculative decoding needs "
        "num_speculative_tokens, a positive integer\n    hint: add `num_speculative_tokens: 3` (vLLM's GLM-5 "
        "recipe) to speculative-config"
    ]


@covers("vllm-parsers")
def test_auto_tool_choice_needs_a_registered_tool_call_parser(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  tool-call-parser: glm46\n  reasoning-parser: glm4\n")) == [
        "child.yaml:3:3: error[vllm-parsers]: vllm.tool-call-parser: vLLM 0.33.0 has no tool-call parser 'glm46'\n"
        "    hint: did you mean 'glm47'?",
        "child.yaml:4:3: error[vllm-parsers]: vllm.reasoning-parser: vLLM 0.33.0 has no reasoning parser 'glm4'\n"
        "    hint: did you mean 'glm45' or 'glm47'?",
    ]


@covers("vllm-tool-choice")
def test_a_tool_parser_without_auto_tool_choice_warns(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  enable-auto-tool-choice: false\n")) == [
        "base.yaml:15:3: warning[vllm-tool-choice]: vllm.tool-call-parser: a tool-call parser without "
        "--enable-auto-tool-choice: requests with tools and tool_choice auto get 400 (the warmup's tool call too)\n"
        "    hint: add `enable-auto-tool-choice: true`"
    ]


@covers("vllm-fp8-kv")
def test_fp8_kv_on_glm_warns(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  kv-cache-dtype: fp8\n")) == [
        "child.yaml:3:3: warning[vllm-fp8-kv]: vllm.kv-cache-dtype: FP8 KV on GLM-5.1-FP8 and models of its class "
        "GlmMoeDsaForCausalLM lost accuracy in SGLang (#22671, #27661); not measured for vLLM\n"
        "    hint: leave kv-cache-dtype at auto (the model's BF16; vLLM has no per-GPU FP8 default) unless you "
        "evaluated it"
    ]


@covers("vllm-concurrency")
def test_max_num_seqs_is_tied_to_modals_concurrency(tmp_path):
    assert problems(profile_with(tmp_path, "vllm:\n  max-num-seqs: 48\n"), strict=False) == [
        "base.yaml:12:11: info[vllm-concurrency]: scaling.max_inputs: max-num-seqs 48 and max_inputs 20 differ: "
        "28 slots stay idle\n    hint: make them equal (target_inputs below max_inputs scales out early)"
    ]


def test_sglang_profiles_keep_their_engine_by_default(tmp_path):
    # A profile without `engine` is SGLang's: its `vllm:` section is refused.
    path = tmp_path / "sglang.yaml"
    parent = Path(__file__).resolve().parents[1] / "profiles" / "h200.yaml"
    path.write_text(f"extends: {parent}\nvllm:\n  max-num-seqs: 20\n")
    assert problems(str(path)) == [
        "sglang.yaml:2:1: error[engine-section]: vllm: `vllm:` flags do not apply: this profile's engine is sglang\n"
        "    hint: move what you need to `sglang:` (names differ between the engines), or set `engine: vllm`"
    ]


@covers("cluster-engine")
def test_multi_node_is_generated_for_sglang_only(tmp_path):
    path = profile_with(tmp_path, "gpu: {type: H200, count: 8, nodes: 2}\n")
    assert problems(path) == [
        "child.yaml:2:29: error[cluster-engine]: gpu.nodes: deploygen generates multi-node serving for SGLang "
        "only, not for vllm\n    hint: use one node (gpu.nodes: 1) with vLLM, or engine: sglang"
    ]
