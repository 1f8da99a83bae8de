"""Rules held to what their sources say, beyond the model they were first written for: an image pinned by its
digest, a compile-cache volume shared across architectures, FP8 KV on the model class whose accuracy reports
the rules cite (not on DeepSeek-V3.2, which uses it by design)."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from test_rules import findings

from conftest import ROOT, child
from deploygen.pipeline import check
from deploygen.render import render_deployment

pytestmark = pytest.mark.usefixtures("in_repository")

COVERED: list[str] = []  # the rule codes the tests below trigger
DIGEST = "sha256:" + "c" * 64


@pytest.mark.parametrize("image", [f"lmsysorg/sglang:latest@{DIGEST}", f"lmsysorg/sglang@{DIGEST}"])
def test_an_sglang_image_pinned_by_digest_is_pinned_and_names_its_release_through_flag_check(tmp_path, image):
    refused = child(tmp_path, f"image:\n  sglang_image: {image}\n", parent="b200-prod-sglang-0.5.23")
    # Not "latest moves": the digest pins it. What is missing is the release its parser has.
    assert findings(refused, "image-pinned") == [
        f"{refused}:4:3: error[image-pinned]: image.sglang_image: image {image!r} names no SGLang release, so no "
        "catalog is known to match its parser\n"
        "    hint: set image.flag_check: parser-matches and sglang_version to the release whose parser the image "
        "has (the flags are checked against its catalog), or image.flag_check: off"
    ]
    stated = child(
        tmp_path,
        f"image:\n  sglang_image: {image}\n  flag_check: parser-matches\n",
        parent="b200-prod-sglang-0.5.23",
        name="stated",
    )
    assert findings(stated, "image-pinned") == []


COVERED.append("vllm-version-stated")


def test_a_vllm_image_pinned_by_digest_takes_its_version_from_vllm_version(tmp_path):
    def pinned(image: str, name: str) -> list[str]:
        return findings(child(tmp_path, f"image:\n  vllm_image: {image}\n", parent="glm-5.1-h200-vllm", name=name),
                        "image-pinned")  # fmt: skip

    assert pinned(f"vllm/vllm-openai:latest@{DIGEST}", "latest") == []
    assert pinned(f"vllm/vllm-openai@{DIGEST}", "bare") == []
    # Not a silent pass: the version the catalog comes from is said.
    latest = child(tmp_path, f"image:\n  vllm_image: vllm/vllm-openai:latest@{DIGEST}\n", parent="glm-5.1-h200-vllm")
    assert findings(latest, "vllm-version-stated") == [
        f"profiles/glm-5.1-h200-vllm.yaml:19:3: info[vllm-version-stated]: image.vllm_version: image "
        f"'vllm/vllm-openai:latest@{DIGEST}' names no vLLM release: its flags are checked against vLLM 0.33.0's "
        "catalog, the version the profile says the digest holds\n"
        "    hint: check it when the digest changes: `vllm --version` in the image"
    ]
    release = child(tmp_path, f"image:\n  vllm_image: vllm/vllm-openai:v0.33.0@{DIGEST}\n", parent="glm-5.1-h200-vllm")
    assert findings(release, "vllm-version-stated") == []
    # A tag that names another release still says the digest is not the one meant.
    [other] = pinned(f"vllm/vllm-openai:v0.19.0@{DIGEST}", "other")
    assert other.endswith(
        "error[image-pinned]: image.vllm_version: image tag 'v0.19.0' does not match vllm_version 0.33.0\n"
        "    hint: use the v0.33.0 image or set vllm_version to the image's version"
    )
    assert pinned("vllm/vllm-openai:latest", "floating")[0].endswith(
        "error[image-pinned]: image.vllm_image: image 'vllm/vllm-openai:latest' is not pinned: latest moves\n"
        "    hint: pin a release tag such as vllm/vllm-openai:v0.33.0, or keep this image and add its digest, "
        "vllm/vllm-openai:latest@sha256:<64 hex> (`docker buildx imagetools inspect vllm/vllm-openai:latest` prints it)"
    )


def _deploy_module(tmp_path: Path, profile: Path):
    """The rendered deploy.py of a profile, imported as Modal would (offline, lazy objects)."""
    path = tmp_path / f"{profile.stem}_deploy.py"
    path.write_text(render_deployment(check(str(profile)).deployment))
    spec = importlib.util.spec_from_file_location(f"deploy_{profile.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_profiles_on_two_architectures_may_share_one_compile_cache_volume(tmp_path, cli):
    b200 = check("b200-prod").deployment.profile
    shared = b200.data["volumes"]["compile_cache"]["name"]
    hopper = child(tmp_path, f"volumes:\n  compile_cache:\n    name: {shared}\n", parent="h200", name="hopper")
    result = cli("validate", str(hopper), "--strict")
    assert result.returncode == 0, result.stderr
    assert "compile_cache" not in result.stdout + result.stderr
    # Safe because each render keeps its kernels in a folder of its own architecture on the volume.
    blackwell = child(tmp_path, "description: the B200 profile as shipped\n", name="blackwell")
    hopper_module, blackwell_module = _deploy_module(tmp_path, hopper), _deploy_module(tmp_path, blackwell)
    assert hopper_module.CACHE_VOLUME == blackwell_module.CACHE_VOLUME == shared
    assert hopper_module.CACHE_DIR.startswith(f"{hopper_module.CACHE_MOUNT}/sm90-")
    assert blackwell_module.CACHE_DIR.startswith(f"{blackwell_module.CACHE_MOUNT}/sm100-")
    assert hopper_module.jit_cache_env(hopper_module.CACHE_DIR)["SGLANG_DG_CACHE_DIR"].startswith(
        hopper_module.CACHE_DIR + "/"
    )


# DeepSeek-V3.2's facts as `model add deepseek-ai/DeepSeek-V3.2` writes them, from its public config.json
# (https://huggingface.co/deepseek-ai/DeepSeek-V3.2/blob/main/config.json): the same DSA attention as GLM-5.1,
# another model class.
DEEPSEEK_V32_FACTS = """\
repo: deepseek-ai/DeepSeek-V3.2
commit: "0000000000000000000000000000000000000032"
architecture: {value: "DeepseekV32ForCausalLM", from: "config.json architectures[0]"}
layers: {value: 61, from: "config.json num_hidden_layers"}
hidden_size: {value: 7168, from: "config.json hidden_size"}
attention: {value: "dsa", from: "config.json kv_lora_rank present, config.json index_head_dim present (DSA indexer)"}
attention_heads: {value: 128, from: "config.json num_attention_heads"}
kv_lora_rank: {value: 512, from: "config.json kv_lora_rank"}
qk_rope_head_dim: {value: 64, from: "config.json qk_rope_head_dim"}
index_head_dim: {value: 128, from: "config.json index_head_dim"}
index_heads: {value: 64, from: "config.json index_n_heads"}
index_topk: {value: 2048, from: "config.json index_topk"}
experts: {value: 256, from: "config.json n_routed_experts"}
experts_per_token: {value: 8, from: "config.json num_experts_per_tok"}
max_context: {value: 163840, from: "config.json max_position_embeddings"}
quantization: {value: "fp8", from: "config.json quantization_config.quant_method"}
checkpoint_bytes: {value: 689000000000, from: "Hub file sizes of the shards"}
mtp_layers: {value: 1, from: "config.json num_nextn_predict_layers"}
"""
DEEPSEEK_MODEL = (
    "model:\n  repo: deepseek-ai/DeepSeek-V3.2\n  name: deepseek-v3.2\n  path: /model-cache/DeepSeek-V3.2\n"
    "  facts: deepseek-v3.2\n"
)


def validate_in_project(tmp_path: Path, parent: str, body: str) -> str:
    """`generate.py validate` of a profile in a team's own project, whose data/models holds DeepSeek-V3.2's facts;
    what the user sees on both streams."""
    project = tmp_path / "team"
    (project / "data" / "models").mkdir(parents=True)
    (project / "data" / "models" / "deepseek-v3.2.yaml").write_text(DEEPSEEK_V32_FACTS)
    shutil.copytree(ROOT / "profiles", project / "profiles")  # the shipped profiles, as a team starts from them
    profile = project / "profiles" / "mine.yaml"
    profile.write_text(f"schema_version: 1\nextends: {parent}\n{body}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEPLOYGEN_")}
    env["DEPLOYGEN_PROJECT"] = str(project)
    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "validate", str(profile)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "Traceback" not in result.stderr
    return result.stdout + result.stderr


FP8_KV = "sglang:\n  kv-cache-dtype: fp8_e4m3\n"
AUTO_KV = "sglang:\n  kv-cache-dtype: auto\n"


@pytest.mark.parametrize(
    ("parent", "body"),
    [("b200-prod", FP8_KV), ("b200-prod", AUTO_KV), ("glm-5.1-h200-vllm", "vllm:\n  kv-cache-dtype: fp8\n")],
    ids=["fp8_e4m3", "auto", "vllm"],
)
def test_deepseek_v32_uses_fp8_kv_by_design_and_no_fp8_kv_rule_fires(tmp_path, parent, body):
    said = validate_in_project(tmp_path, parent, DEEPSEEK_MODEL + body)
    assert "team/profiles/mine.yaml: valid (" in said
    assert "[fp8-kv-eagle]" not in said and "[dsa-kv-dtype]" not in said and "[vllm-fp8-kv]" not in said


@pytest.mark.parametrize(
    ("parent", "body", "code"),
    [
        ("b200-prod", FP8_KV, "warning[fp8-kv-eagle]"),
        ("b200-prod", AUTO_KV, "error[dsa-kv-dtype]"),
        ("glm-5.1-h200-vllm", "vllm:\n  kv-cache-dtype: fp8\n", "warning[vllm-fp8-kv]"),
    ],
    ids=["fp8_e4m3", "auto", "vllm"],
)
def test_glm51_in_the_same_project_still_gets_them(tmp_path, parent, body, code):
    assert f"team/profiles/mine.yaml:4:3: {code}" in validate_in_project(tmp_path, parent, body)


COVERED.append("watchdog-first-batch")
NO_COMPILE = "lifecycle:\n  compile:\n    enabled: false\n"


def test_the_watchdog_is_not_held_to_the_weight_load(tmp_path):
    """SGLang starts its watchdog after the weights are loaded: a 300 s watchdog and a 712 GB load are fine when the
    kernels were compiled before serving."""
    profile = child(tmp_path, "sglang:\n  watchdog-timeout: 300\n")
    assert findings(profile, "watchdog-first-batch") == []
    assert findings(profile, "timeouts-cover-load") == []


def test_without_the_compile_step_the_first_batch_compiles_and_the_watchdog_must_wait_for_it(tmp_path):
    profile = child(tmp_path, NO_COMPILE + "sglang:\n  watchdog-timeout: 300\n")
    assert findings(profile, "watchdog-first-batch") == [
        f"{profile}:7:3: warning[watchdog-first-batch]: sglang.watchdog-timeout: watchdog-timeout 300s: with "
        "lifecycle.compile.enabled false the first batches JIT-compile DeepGEMM's FP8 kernels into an empty cache, "
        "typically 10-20 min by SGLang's own estimate, and the watchdog kills a batch that runs longer\n"
        "    hint: enable lifecycle.compile (kernels compiled before serving), or set watchdog-timeout to at least 1200"
    ]
    # The shipped 1200 s covers it; a model with no FP8 kernels, or a GPU DeepGEMM has none for, compiles nothing.
    assert findings(child(tmp_path, NO_COMPILE, name="shipped"), "watchdog-first-batch") == []
    smoke = child(tmp_path, NO_COMPILE + "sglang:\n  watchdog-timeout: 300\n", parent="smoke", name="smoke")
    assert findings(smoke, "watchdog-first-batch") == []


def test_without_the_compile_step_the_health_wait_covers_the_load_and_the_compile(tmp_path):
    profile = child(tmp_path, "lifecycle:\n  compile:\n    enabled: false\n  health:\n    timeout: 1440\n")
    assert findings(profile, "timeouts-cover-load") == [
        f"{profile}:7:5: error[timeouts-cover-load]: lifecycle.health.timeout: health timeout 1440s is shorter than "
        "the ~712s weight load and up to 1200s of DeepGEMM JIT compile with no compile step\n"
        "    hint: raise it to at least 2868"
    ]


COVERED.append("env-overridden")


def test_a_profile_env_var_the_generator_overrides_is_an_error_naming_both_values(tmp_path):
    profile = child(tmp_path, "image:\n  env:\n    TRITON_CACHE_DIR: /tmp/triton\n    HF_HUB_OFFLINE: '0'\n")
    module_dir = "/dg-cache/sm100-sglang-v0.5.10.post1-cu130"
    assert findings(profile, "env-overridden") == [
        f"{profile}:5:5: error[env-overridden]: image.env.TRITON_CACHE_DIR: the generator sets "
        f"TRITON_CACHE_DIR='{module_dir}/triton' (the JIT cache folder of this GPU architecture and image), which "
        "replaces this '/tmp/triton'\n"
        "    hint: remove image.env.TRITON_CACHE_DIR; the compile-cache volume (volumes.compile_cache) keeps the "
        "caches",
        f"{profile}:6:5: error[env-overridden]: image.env.HF_HUB_OFFLINE: the generator sets HF_HUB_OFFLINE='1' "
        "(serving reads the weights from the volume only, never the Hub), which replaces this '0'\n"
        "    hint: remove image.env.HF_HUB_OFFLINE",
    ]
    # The value the render really writes, read from the rendered deploy.py.
    module = _deploy_module(tmp_path, child(tmp_path, "description: as shipped\n", name="shipped"))
    assert module.jit_cache_env(module.CACHE_DIR)["TRITON_CACHE_DIR"] == f"{module_dir}/triton"
    same = child(tmp_path, "image:\n  env:\n    HF_HUB_OFFLINE: '1'\n", name="same")
    assert findings(same, "env-overridden") == []


COVERED.append("env-as-generated")


def test_a_profile_env_var_set_to_what_the_generator_writes_is_a_note(tmp_path):
    module_dir = "/dg-cache/sm100-sglang-v0.5.10.post1-cu130"
    body = f"image:\n  env:\n    HF_HUB_OFFLINE: '1'\n    TRITON_CACHE_DIR: {module_dir}/triton\n"
    profile = child(tmp_path, body)
    assert findings(profile, "env-as-generated") == [
        f"{profile}:5:5: info[env-as-generated]: image.env.HF_HUB_OFFLINE: HF_HUB_OFFLINE='1' is what the generator "
        "sets (serving reads the weights from the volume only, never the Hub); this line changes nothing\n"
        "    hint: remove image.env.HF_HUB_OFFLINE, or keep it as documentation",
        f"{profile}:6:5: info[env-as-generated]: image.env.TRITON_CACHE_DIR: TRITON_CACHE_DIR='{module_dir}/triton' "
        "is what the generator sets (the JIT cache folder of this GPU architecture and image); this line changes "
        "nothing\n"
        "    hint: remove image.env.TRITON_CACHE_DIR, or keep it as documentation",
    ]
    assert findings(profile, "env-overridden") == []
    # With weights in the Hugging Face cache layout, the cache variable naming the weights volume is the same note.
    hf = child(
        tmp_path,
        "model:\n  weights_layout: hf-cache\n  revision: " + "ab" * 20 + "\n  path: null\n"
        "image:\n  env:\n    HF_HUB_CACHE: /model-cache\n",
        name="hf",
    )
    assert [line.split(": ", 2)[1:] for line in findings(hf, "env-as-generated")] == [
        [
            "info[env-as-generated]",
            "image.env.HF_HUB_CACHE: HF_HUB_CACHE='/model-cache' is what the generator sets (the weights volume is "
            "the cache); this line changes nothing\n    hint: remove image.env.HF_HUB_CACHE, or keep it as "
            "documentation",
        ]
    ]
    assert findings(hf, "env-overridden") == [] and findings(hf, "weights-layout") == []
