"""Model facts from the Hub: `model add` through the real huggingface_hub against the stand-in Hub
(tests/standin/hub, real HTTP on 127.0.0.1), the facts files' schema, and the numbers derived from them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from conftest import HUB_FIXTURES, ROOT
from deploygen.errors import UserError
from deploygen.models import known_models, load_model_facts
from deploygen.models.add import add_model, parse_supplied

GRANTED = "hf_standin_granted_token"


def fixture_commit(repo: str) -> str:
    return yaml.safe_load((HUB_FIXTURES / repo / "hub.yaml").read_text())["commit"]


def message(excinfo: pytest.ExceptionInfo) -> str:
    return str(excinfo.value)


# The stand-in answers as the Hub does: huggingface_hub raises its own exceptions.


def test_the_standin_hub_makes_huggingface_hub_raise_its_real_exceptions(hub, tmp_path):
    api = HfApi(endpoint=hub.url, token=False)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("nobody/nothing")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("Qwen/Qwen3-8B", revision="no-such-branch")
    info = api.model_info("Qwen/Qwen3-8B", revision="main", files_metadata=True)
    assert info.sha == fixture_commit("Qwen/Qwen3-8B")
    assert {s.rfilename: s.size for s in info.siblings}["model-00005-of-00005.safetensors"] == 1_244_659_840
    with pytest.raises(GatedRepoError):
        hf_hub_download("acme/gated-model", "config.json", endpoint=hub.url, token=False, cache_dir=tmp_path)
    with pytest.raises(GatedRepoError):  # a token without access: 403
        hf_hub_download("acme/gated-model", "config.json", endpoint=hub.url, token="hf_other", cache_dir=tmp_path)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("Qwen/Qwen3-0.6B", "model.safetensors.index.json", endpoint=hub.url, cache_dir=tmp_path)
    granted = hf_hub_download("acme/gated-model", "config.json", endpoint=hub.url, token=GRANTED, cache_dir=tmp_path)
    assert granted.endswith("config.json")


# What `model add` derives, per config family.


def test_a_glm_style_dsa_config_gives_mla_geometry_and_the_indexer(hub_env, tmp_path):
    path, _ = add_model("zai-org/GLM-5.1-FP8", models_dir=tmp_path)
    facts = load_model_facts(path.stem, tmp_path)
    assert (facts.attention, facts.kv_lora_rank, facts.qk_rope_head_dim, facts.index_head_dim) == ("dsa", 512, 64, 128)
    assert (
        facts.sources["attention"]
        == "config.json kv_lora_rank present, config.json index_head_dim present (DSA indexer)"
    )
    assert (facts.layers, facts.experts, facts.experts_per_token, facts.mtp_layers) == (78, 256, 8, 1)
    assert facts.kv_heads is None  # GLM-5's num_key_value_heads (64) is not what MLA caches
    # The SGLang cookbook's figure for GLM-5: (512 + 64) x 78 x 2 + (128 + 4) x 78 bytes in BF16.
    assert facts.kv_bytes_per_token("bfloat16") == 100_152
    # FP8: the latent in FP8 with 4 FP32 scales, the rotary part in BF16: 656 bytes (FlashMLA), plus the indexer.
    assert facts.kv_bytes_per_token("fp8_e4m3") == (656 + 132) * 78
    assert facts.kv_bytes_per_token_per_gpu("bfloat16", tp=8) == 100_152  # MLA is not split across TP
    assert facts.checkpoint_gb == 712.0
    assert (
        facts.sources["checkpoint_bytes"] == "Hub file sizes of the 8 shards in model.safetensors.index.json weight_map"
    )


def test_a_gqa_config_splits_kv_heads_across_tp_ranks_but_never_below_one(hub_env, tmp_path):
    path, _ = add_model("Qwen/Qwen3-8B", models_dir=tmp_path)
    facts = load_model_facts(path.stem, tmp_path)
    assert (facts.attention, facts.kv_heads, facts.head_dim, facts.max_context) == ("gqa", 8, 128, 40960)
    whole = 36 * 2 * 8 * 128 * 2
    assert facts.kv_bytes_per_token("bfloat16") == whole
    assert facts.kv_bytes_per_token_per_gpu("bfloat16", tp=2) == whole // 2
    assert facts.kv_bytes_per_token_per_gpu("bfloat16", tp=16) == whole // 8  # 8 heads: replicated past TP 8
    assert facts.quantization == "none"
    assert facts.sources["quantization"] == "config.json has no quantization_config (config.json torch_dtype bfloat16)"


def test_a_hybrid_linear_attention_config_counts_kv_only_for_its_full_attention_layers(hub_env, tmp_path):
    path, _ = add_model("Qwen/Qwen3.5-397B-A17B-FP8", models_dir=tmp_path)
    facts = load_model_facts(path.stem, tmp_path)
    assert (facts.full_attention_layers, facts.linear_attention_layers, facts.layers) == (15, 45, 60)
    assert facts.sources["layers"] == "config.json text_config.num_hidden_layers"
    assert facts.kv_bytes_per_token("bfloat16") == 15 * 2 * 2 * 256 * 2 == 30_720
    # At TP 4 each GPU holds one of the two KV heads: the number the rules and the planner must share.
    assert facts.kv_bytes_per_token_per_gpu("bfloat16", tp=4) == 15_360
    ssm = 64 // 4 * 128 * 128 * 4
    conv = 3 * ((2 * 16 * 128 + 64 * 128) // 4) * 2
    assert facts.linear_state_bytes_per_request_per_gpu(tp=4) == 45 * (ssm + conv)
    assert facts.mtp_layers == 1 and facts.quantization == "fp8"


def test_an_mla_config_without_an_indexer_is_plain_mla(hub_env, tmp_path):
    path, _ = add_model("acme/mla-no-indexer", models_dir=tmp_path)
    facts = load_model_facts(path.stem, tmp_path)
    assert facts.attention == "mla" and facts.index_head_dim is None
    assert facts.kv_bytes_per_token("fp8_e4m3") == (512 + 64) * 27


def test_a_single_file_checkpoint_is_sized_from_model_safetensors(hub_env, tmp_path):
    path, facts = add_model("Qwen/Qwen3-0.6B", models_dir=tmp_path)
    assert facts["checkpoint_bytes"] == {
        "value": 1_503_300_328,
        "from": "Hub file size of model.safetensors (no model.safetensors.index.json)",
    }
    assert "GET /Qwen/Qwen3-0.6B/resolve/" in "\n".join(hub_env.requests())


def test_the_revision_is_resolved_to_a_commit_and_recorded(hub_env, tmp_path):
    commit = fixture_commit("Qwen/Qwen3-8B")
    by_branch, _ = add_model("Qwen/Qwen3-8B@main", models_dir=tmp_path / "a")
    by_commit, _ = add_model(f"Qwen/Qwen3-8B@{commit}", models_dir=tmp_path / "b")
    assert load_model_facts("qwen3-8b", tmp_path / "a").commit == commit
    assert by_branch.read_text().replace("@main", f"@{commit}") == by_commit.read_text()


def test_model_add_is_deterministic(hub_env, tmp_path):
    first, _ = add_model("Qwen/Qwen3.5-397B-A17B-FP8", name="one", models_dir=tmp_path)
    again, _ = add_model("Qwen/Qwen3.5-397B-A17B-FP8", name="one", models_dir=tmp_path)
    assert first == again
    copy = tmp_path / "copy.yaml"
    shutil.copy(first, copy)
    add_model("Qwen/Qwen3.5-397B-A17B-FP8", name="one", models_dir=tmp_path)
    assert first.read_bytes() == copy.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.yaml", "one.yaml"]  # no temp file left


# Shipped facts cannot drift from the derivation.


@pytest.mark.parametrize("name", known_models())
def test_a_shipped_model_file_is_what_model_add_derives_from_its_fixture(name, hub_env, tmp_path):
    facts = load_model_facts(name)  # every shipped file passes the schema
    if not (HUB_FIXTURES / facts.repo / "hub.yaml").is_file():
        return  # a model added from the real Hub; the schema check above is what applies
    path, _ = add_model(facts.repo, name=name, models_dir=tmp_path)
    shipped = (ROOT / "data" / "models" / f"{name}.yaml").read_text()
    assert path.read_text() == shipped, "re-derive: .venv/bin/python tests/standin/hub/rederive.py"


# Hub failures: one message, nothing written.


def add_fails(spec: str, models_dir, **kwargs) -> str:
    before = sorted(models_dir.iterdir()) if models_dir.exists() else []
    with pytest.raises(UserError) as excinfo:
        add_model(spec, models_dir=models_dir, **kwargs)
    assert (sorted(models_dir.iterdir()) if models_dir.exists() else []) == before
    return message(excinfo)


def test_a_gated_repository_without_access_says_how_to_get_it(hub_env, tmp_path):
    assert add_fails("acme/gated-model", tmp_path) == (
        "acme/gated-model@main: error: acme/gated-model is gated\n"
        f"    hint: accept its terms on {hub_env.url}/acme/gated-model with your account, then log in with "
        "`hf auth login` or set HF_TOKEN to a token that can read it"
    )


def test_a_token_from_hf_token_is_sent_and_never_written_or_shown(hub_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_wrong_token")
    assert "acme/gated-model is gated" in add_fails("acme/gated-model", tmp_path)
    monkeypatch.setenv("HF_TOKEN", GRANTED)
    path, _ = add_model("acme/gated-model", models_dir=tmp_path)
    assert GRANTED not in path.read_text()
    assert any(line.endswith("token=yes") for line in hub_env.requests())


def test_an_unknown_repository_is_named_with_the_fix(hub_env, tmp_path):
    assert add_fails("nobody/nothing", tmp_path) == (
        f"nobody/nothing@main: error: no model nobody/nothing on {hub_env.url}, or it is private\n"
        f"    hint: check the spelling (owner/name, as in {hub_env.url}/nobody/nothing); for a private model, "
        "log in with `hf auth login` or set HF_TOKEN to a token that can read it"
    )


def test_an_unknown_revision_is_named_with_where_to_find_one(hub_env, tmp_path):
    assert add_fails("Qwen/Qwen3-8B@v9", tmp_path) == (
        "Qwen/Qwen3-8B@v9: error: Qwen/Qwen3-8B has no revision 'v9'\n"
        f"    hint: use a branch, tag or commit listed on {hub_env.url}/Qwen/Qwen3-8B/commits/main"
    )


def test_shards_without_an_index_cannot_be_sized(hub_env, tmp_path):
    commit = fixture_commit("acme/shards-without-index")
    assert add_fails("acme/shards-without-index", tmp_path) == (
        f"config.json of acme/shards-without-index@{commit[:12]}: error: checkpoint_bytes: the commit has neither "
        "model.safetensors.index.json nor model.safetensors\n"
        "    hint: SGLang on Modal loads safetensors checkpoints; for another format supply --set checkpoint_bytes=N"
    )


def test_an_unreachable_hub_is_one_message(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    assert add_fails("Qwen/Qwen3-8B", tmp_path) == (
        "Qwen/Qwen3-8B@main: error: cannot reach the Hub at http://127.0.0.1:9: ConnectError\n"
        "    hint: check the network, HF_ENDPOINT and HF_HUB_OFFLINE"
    )


def test_a_config_without_a_needed_key_names_it_and_how_to_supply_it(hub_env, tmp_path):
    commit = fixture_commit("acme/no-layer-count")
    assert add_fails("acme/no-layer-count", tmp_path) == (
        f"config.json of acme/no-layer-count@{commit[:12]}: error: layers: no num_hidden_layers: deploygen cannot "
        "derive the layer count\n"
        f"    hint: supply it by hand: model add acme/no-layer-count@{commit} --set layers=VALUE (VALUE from the "
        "model card or the modeling code; schema/model.schema.json describes layers)"
    )
    path, facts = add_model("acme/no-layer-count", supplied=parse_supplied(["layers=28"]), models_dir=tmp_path)
    assert facts["layers"] == {"value": 28, "from": "given by hand (--set)"}
    assert load_model_facts(path.stem, tmp_path).kv_bytes_per_token("bfloat16") == 114_688


def test_a_state_space_hybrid_is_refused_until_its_attention_layers_are_given(hub_env, tmp_path):
    commit = fixture_commit("acme/mamba-hybrid")
    assert add_fails("acme/mamba-hybrid", tmp_path) == (
        f"config.json of acme/mamba-hybrid@{commit[:12]}: error: full_attention_layers: config.json "
        "hybrid_override_pattern: a state-space (mamba) hybrid, whose per-request state deploygen does not size\n"
        "    hint: supply the count of layers with attention by hand: --set full_attention_layers=N; the planner "
        "then counts per-token KV for those layers only"
    )
    path, _ = add_model("acme/mamba-hybrid", supplied={"full_attention_layers": 6}, models_dir=tmp_path)
    assert load_model_facts(path.stem, tmp_path).kv_bytes_per_token("bfloat16") == 6 * 2 * 8 * 128 * 2


def test_a_name_taken_by_another_repository_is_refused(hub_env, tmp_path):
    add_model("Qwen/Qwen3-0.6B", name="mine", models_dir=tmp_path)
    assert add_fails("Qwen/Qwen3-8B", tmp_path, name="mine") == (
        f"{tmp_path}/mine.yaml: error: repo: mine.yaml describes Qwen/Qwen3-0.6B, not Qwen/Qwen3-8B\n"
        "    hint: choose another name: --name qwen3-8b-2, or delete mine.yaml first"
    )


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        (["layers"], "model add: error: --set: 'layers' is not FACT=VALUE"),
        (["commit=abc"], "model add: error: --set: 'commit=abc' is not FACT=VALUE"),
        (["layers=many"], "model add: error: --set layers: 'many' is not a whole number\n    hint: e.g. 40960"),
    ],
)
def test_a_bad_set_is_refused(pairs, expected):
    with pytest.raises(UserError) as excinfo:
        parse_supplied(pairs)
    assert message(excinfo).startswith(expected)


# The facts files' schema: located errors, never a traceback.


def write_facts(tmp_path, text: str):
    path = tmp_path / "mine.yaml"
    path.write_text(textwrap.dedent(text).lstrip())
    return path


GOOD = """
repo: acme/mine
commit: "0123456789abcdef0123456789abcdef01234567"
architecture: {value: "Qwen3ForCausalLM", from: "config.json architectures[0]"}
layers: {value: 28, from: "config.json num_hidden_layers"}
hidden_size: {value: 1024, from: "config.json hidden_size"}
attention: {value: "gqa", from: "config.json num_key_value_heads"}
attention_heads: {value: 16, from: "config.json num_attention_heads"}
kv_heads: {value: 8, from: "config.json num_key_value_heads"}
head_dim: {value: 128, from: "config.json head_dim"}
max_context: {value: 40960, from: "config.json max_position_embeddings"}
quantization: {value: "none", from: "config.json"}
checkpoint_bytes: {value: 1503300328, from: "Hub"}
mtp_layers: {value: 0, from: "config.json"}
"""


def facts_error(tmp_path, text: str) -> str:
    write_facts(tmp_path, text)
    with pytest.raises(UserError) as excinfo:
        load_model_facts("mine", tmp_path)
    return message(excinfo).replace(str(tmp_path) + "/", "")


def test_a_hand_written_facts_file_that_follows_the_schema_loads(tmp_path):
    write_facts(tmp_path, GOOD)
    assert load_model_facts("mine", tmp_path).kv_bytes_per_token("fp8_e4m3") == 57_344


def test_a_facts_file_without_a_fact_kv_needs_names_it_and_the_fix(tmp_path):
    assert facts_error(
        tmp_path, GOOD.replace('kv_heads: {value: 8, from: "config.json num_key_value_heads"}\n', "")
    ) == (
        "mine.yaml:1:1: error: kv_heads: missing 'kv_heads' (needed for this attention kind)\n"
        '    hint: write `kv_heads: {value: ..., from: "where the value comes from"}`; KV heads of MHA/GQA layers '
        "(config.json num_key_value_heads; equal to attention_heads for MHA)."
    )


def test_a_facts_value_of_the_wrong_type_is_located(tmp_path):
    text = GOOD.replace("layers: {value: 28,", 'layers: {value: "28",')
    assert facts_error(tmp_path, text).startswith("mine.yaml:4:10: error: layers.value: '28' is not of type 'integer'")


def test_an_unknown_key_in_a_facts_file_gets_a_did_you_mean(tmp_path):
    assert facts_error(tmp_path, GOOD + 'kv_head: {value: 1, from: "typed"}\n') == (
        "mine.yaml:14:1: error: kv_head: unknown key 'kv_head'\n    hint: did you mean 'kv_heads'?"
    )


def test_a_facts_file_in_the_old_hand_written_format_says_what_replaced_each_key(tmp_path):
    assert facts_error(tmp_path, GOOD + "kv_bytes_per_token: {bfloat16: 114688}\n") == (
        "mine.yaml:14:1: error: kv_bytes_per_token: unknown key 'kv_bytes_per_token'\n"
        "    hint: deploygen derives KV bytes per token from the attention geometry; remove it (or regenerate the "
        "file: generate.py model add OWNER/REPO)"
    )


def test_a_missing_facts_file_lists_the_known_ones_and_the_command(tmp_path):
    write_facts(tmp_path, GOOD)
    with pytest.raises(UserError) as excinfo:
        load_model_facts("qwen3-8b", tmp_path)
    assert message(excinfo).replace(str(tmp_path) + "/", "") == (
        "qwen3-8b.yaml: error: no model data file for 'qwen3-8b' (known: mine)\n"
        "    hint: write it from the Hub: generate.py model add OWNER/REPO --name qwen3-8b"
    )


def test_a_facts_file_that_is_not_yaml_is_located(tmp_path):
    assert facts_error(tmp_path, "repo: [unclosed\n").startswith("mine.yaml:2:1: error:")


def test_model_add_on_the_command_line_fails_with_one_message_and_never_shows_the_token(hub, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path), HF_TOKEN="hf_secret_never_shown")
    result = subprocess.run(
        [sys.executable, str(ROOT / "generate.py"), "model", "add", "acme/gated-model"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        "acme/gated-model@main: error: acme/gated-model is gated\n"
        f"    hint: accept its terms on {hub.url}/acme/gated-model with your account, then log in with "
        "`hf auth login` or set HF_TOKEN to a token that can read it\n"
    )
    assert not (ROOT / "data" / "models" / "gated-model.yaml").exists()  # no such model ships


def test_a_project_of_its_own_keeps_its_model_facts_beside_its_profiles(hub, tmp_path):
    """deploygen installed in a team's repository: `model add` writes there, validation reads there."""
    project = tmp_path / "team"
    (project / "profiles").mkdir(parents=True)
    (project / "profiles" / "mine.yaml").write_text(
        f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\napp:\n  name: mine\n"
        "model:\n  repo: Qwen/Qwen3-8B\n  facts: qwen3-8b\ngpu:\n  type: L40S\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE", "DEPLOYGEN_"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf"), DEPLOYGEN_PROJECT=str(project))

    def run(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, str(ROOT / "generate.py"), *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    shipped = sorted((ROOT / "data" / "models").iterdir())
    added = run("model", "add", "Qwen/Qwen3-8B")
    assert added.returncode == 0, added.stderr
    assert (project / "data" / "models" / "qwen3-8b.yaml").is_file()
    assert sorted((ROOT / "data" / "models").iterdir()) == shipped
    validated = run("validate", str(project / "profiles" / "mine.yaml"))
    assert validated.returncode == 0, validated.stderr
