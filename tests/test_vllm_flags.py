"""vLLM flags: every option, value and JSON key is checked against the catalog of the pinned vLLM version."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploygen.load import load_profile
from deploygen.validate.vllm_flags import profile_vllm_catalog, vllm_argv_problems, vllm_flag_problems
from deploygen.vllm.catalog import load_catalog


def problems_of(tmp_path: Path, flags: str, version: str = "0.33.0") -> list[str]:
    """The problems of a profile whose `vllm:` lines start at line 4 of profile.yaml."""
    path = tmp_path / "profile.yaml"
    path.write_text(f"image:\n  vllm_version: {version}\nvllm:\n{flags}")
    profile = load_profile(str(path))
    catalog, problems = profile_vllm_catalog(profile)
    assert problems == []
    return [str(p).replace(str(tmp_path) + "/", "") for p in vllm_flag_problems(profile, catalog)]


def test_the_recipes_flags_pass(tmp_path):
    flags = """\
  tensor-parallel-size: 8
  speculative-config: {method: mtp, num_speculative_tokens: 3}
  tool-call-parser: glm47
  reasoning-parser: glm45
  enable-auto-tool-choice: true
  chat-template-content-format: string
  max-model-len: 64k
  kv-cache-dtype: fp8_e4m3
  enable-prefix-caching: false
"""
    assert problems_of(tmp_path, flags) == []
    assert problems_of(tmp_path, flags, version="0.19.0") == []


def test_rejects_an_unknown_option_with_a_did_you_mean(tmp_path):
    assert problems_of(tmp_path, "  max-num-sqes: 32\n") == [
        "profile.yaml:4:3: error[vllm-unknown-flag]: vllm.max-num-sqes: vLLM 0.33.0 has no option --max-num-sqes\n"
        "    hint: did you mean `max-num-seqs`?"
    ]


def test_rejects_an_abbreviation_that_vllms_parser_would_accept(tmp_path):
    assert problems_of(tmp_path, "  gpu-memory: 0.9\n") == [
        "profile.yaml:4:3: error[vllm-unknown-flag]: vllm.gpu-memory: vLLM 0.33.0 has no option --gpu-memory\n"
        "    hint: `gpu-memory` is only an abbreviation; write the full option `gpu-memory-utilization`"
    ]


def test_short_aliases_and_underscores_get_the_full_option(tmp_path):
    assert problems_of(tmp_path, "  tp: 8\n  max_num_seqs: 32\n") == [
        "profile.yaml:4:3: error[vllm-unknown-flag]: vllm.tp: vLLM 0.33.0 has no option --tp\n"
        "    hint: `-tp` is a short alias; write the full option `tensor-parallel-size`",
        "profile.yaml:5:3: error[vllm-unknown-flag]: vllm.max_num_seqs: vLLM 0.33.0 has no option --max_num_seqs\n"
        "    hint: write `max-num-seqs` (vLLM turns underscores into dashes; the catalog spells it so)",
    ]


def test_rejects_values_of_the_wrong_type_or_outside_the_choices(tmp_path):
    flags = "  max-num-seqs: many\n  max-model-len: 64 thousand\n"
    flags += "  kv-cache-dtype: bf16\n  chat-template-content-format: str\n"
    assert problems_of(tmp_path, flags) == [
        "profile.yaml:4:3: error[vllm-flag-value]: vllm.max-num-seqs: --max-num-seqs takes an integer, not 'many'",
        "profile.yaml:5:3: error[vllm-flag-value]: vllm.max-model-len: --max-model-len takes an integer "
        "(or 64k style, or auto), not '64 thousand'",
        "profile.yaml:6:3: error[vllm-flag-value]: vllm.kv-cache-dtype: --kv-cache-dtype 'bf16' is not one of "
        + ", ".join(load_catalog("0.33.0").by_option["--kv-cache-dtype"].metavar)
        + " (did you mean 'bfloat16'?)",
        "profile.yaml:7:3: error[vllm-flag-value]: vllm.chat-template-content-format: --chat-template-content-format "
        "'str' is not one of auto, openai, string (did you mean 'string'?)",
    ]


def test_bare_and_boolean_optional_flags_take_true_or_false(tmp_path):
    assert problems_of(tmp_path, "  enable-prefix-caching: 'yes'\n  headless: 1\n  disable-prefix-caching: true\n") == [
        "profile.yaml:4:3: error[vllm-flag-value]: vllm.enable-prefix-caching: --enable-prefix-caching takes true or "
        "false (false writes --disable-prefix-caching), not 'yes'",
        "profile.yaml:5:3: error[vllm-flag-value]: vllm.headless: --headless is a bare flag: write `true` (or `false` "
        "to leave it out), not 1",
        "profile.yaml:6:3: error[vllm-alias]: vllm.disable-prefix-caching: --disable-prefix-caching is the negative "
        "spelling of --enable-prefix-caching\n    hint: write `enable-prefix-caching: false`",
    ]


def test_a_value_flag_given_true_is_refused(tmp_path):
    assert problems_of(tmp_path, "  max-model-len: true\n") == [
        "profile.yaml:4:3: error[vllm-flag-value]: vllm.max-model-len: --max-model-len takes a value; "
        "`true`/`false` only fit bare flags"
    ]


def test_warns_about_a_flag_the_pinned_version_deprecates(tmp_path):
    assert problems_of(tmp_path, "  log-config-file: /etc/vllm/logging.json\n") == [
        "profile.yaml:4:3: warning[vllm-deprecated-flag]: vllm.log-config-file: --log-config-file is deprecated in "
        "vLLM 0.33.0\n    hint: use `logging-config.pylogging_config_file`"
    ]


def test_names_the_catalogued_version_that_still_has_a_removed_flag(tmp_path):
    assert problems_of(tmp_path, "  calculate-kv-scales: true\n") == [
        "profile.yaml:4:3: error[vllm-unknown-flag]: vllm.calculate-kv-scales: vLLM 0.33.0 has no option "
        "--calculate-kv-scales\n    hint: removed: vLLM 0.19.0 has --calculate-kv-scales, vLLM 0.33.0 does not"
    ]


def test_points_an_older_pin_to_its_own_spelling(tmp_path):
    flags = "  device-memory-utilization: 0.9\n  disable-prefix-caching: true\n  cohere-format: true\n"
    assert problems_of(tmp_path, flags, version="0.19.0") == [
        "profile.yaml:4:3: error[vllm-unknown-flag]: vllm.device-memory-utilization: vLLM 0.19.0 has no option "
        "--device-memory-utilization\n    hint: called differently in vLLM 0.19.0 (vLLM 0.33.0 calls it "
        "--device-memory-utilization): use `gpu-memory-utilization`",
        "profile.yaml:5:3: error[vllm-unknown-flag]: vllm.disable-prefix-caching: vLLM 0.19.0 has no option "
        "--disable-prefix-caching\n    hint: vLLM 0.19.0 spells it `enable-prefix-caching: false` "
        "(vLLM 0.33.0: --disable-prefix-caching)",
        "profile.yaml:6:3: error[vllm-unknown-flag]: vllm.cohere-format: vLLM 0.19.0 has no option --cohere-format\n"
        "    hint: added later: vLLM 0.33.0 has --cohere-format, vLLM 0.19.0 does not",
    ]


def test_dotted_json_keys_are_checked_against_the_config_dataclass(tmp_path):
    flags = "  speculative-config.method: mtpp\n  speculative-config.num_speculative_tokens: three\n"
    flags += "  speculative-config.draft_tokens: 3\n  max-num-seqs.value: 3\n"
    method_choices = load_catalog("0.33.0").json_arguments["--speculative-config"]["method"].choices
    assert problems_of(tmp_path, flags) == [
        "profile.yaml:4:3: error[vllm-flag-value]: vllm.speculative-config.method: --speculative-config.method "
        f"'mtpp' is not one of {', '.join(method_choices)} (did you mean 'mtp'?)",
        "profile.yaml:5:3: error[vllm-flag-value]: vllm.speculative-config.num_speculative_tokens: "
        "--speculative-config.num_speculative_tokens takes an integer, not 'three'",
        "profile.yaml:6:3: error[vllm-flag-value]: vllm.speculative-config.draft_tokens: --speculative-config has no "
        "key 'draft_tokens' in vLLM 0.33.0",
        "profile.yaml:7:3: error[vllm-flag-value]: vllm.max-num-seqs.value: --max-num-seqs takes no JSON, so "
        "`max-num-seqs.value` means nothing\n    hint: write `max-num-seqs: <value>`",
    ]


def test_json_given_whole_must_be_an_object_with_known_keys(tmp_path):
    flags = "  speculative-config: '{method: mtp}'\n  compilation-config: {cudagraph_modee: FULL}\n"
    assert problems_of(tmp_path, flags) == [
        "profile.yaml:4:3: error[vllm-flag-value]: vllm.speculative-config: --speculative-config takes JSON (or a "
        "mapping), and '{method: mtp}' is not JSON (Expecting property name enclosed in double quotes at character 1)",
        "profile.yaml:5:3: error[vllm-flag-value]: vllm.compilation-config: --compilation-config has no key "
        "'cudagraph_modee' in vLLM 0.33.0; did you mean `cudagraph_mode`?",
    ]


def test_a_json_argument_set_whole_and_by_keys_is_refused(tmp_path):
    flags = "  speculative-config: {method: mtp}\n  speculative-config.num_speculative_tokens: 3\n"
    assert problems_of(tmp_path, flags) == [
        "profile.yaml:5:3: error[vllm-duplicate-flag]: vllm.speculative-config.num_speculative_tokens: "
        "--speculative-config is set whole and by keys; vLLM would keep only the keys\n"
        "    hint: move `speculative-config.num_speculative_tokens` into `speculative-config`"
    ]


def test_flags_the_generator_writes_and_duplicates_are_refused(tmp_path):
    assert problems_of(tmp_path, "  port: 9000\n  tensor-parallel-size: 8\n  device-memory-utilization: 0.9\n") == [
        "profile.yaml:4:3: error[vllm-derived-flag]: vllm.port: --port is set by the generator\n"
        "    hint: set server.port instead",
        "profile.yaml:6:3: error[vllm-alias]: vllm.device-memory-utilization: --device-memory-utilization is an "
        "alias\n    hint: write the canonical `gpu-memory-utilization`",
    ]


def test_a_version_without_a_catalog_names_the_supported_ones(tmp_path):
    path = tmp_path / "profile.yaml"
    path.write_text("image:\n  vllm_version: 0.20.0\n")
    catalog, problems = profile_vllm_catalog(load_profile(str(path)))
    assert catalog is None
    assert [str(p).replace(str(tmp_path) + "/", "") for p in problems] == [
        "profile.yaml:2:3: error[vllm-catalog]: image.vllm_version: no flag catalog for vLLM 0.20.0\n"
        "    hint: supported versions: 0.19.0, 0.33.0; add one with `python -m deploygen.vllm.extract --wheel "
        "<the vllm wheel>`"
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--gpu-memory", "0.9"], "vllm serve of vLLM 0.33.0 has no option '--gpu-memory' (abbreviations are never "
         "accepted)"),
        (["--max_num_seqs", "3"], "vllm serve of vLLM 0.33.0 has no option '--max_num_seqs' (abbreviations are never "
         "accepted)"),
        (["--max-model-len"], "--max-model-len needs a value"),
        (["--max-num-seqs", "x"], "--max-num-seqs: takes an integer, not 'x'"),
        (["--speculative-config", "{bad"], "--speculative-config: takes JSON (or a mapping), and '{bad' is not JSON "
         "(Expecting property name enclosed in double quotes at character 1)"),
        (["--speculative-config.methd", "mtp"], "--speculative-config.methd: --speculative-config has no key 'methd' "
         "in vLLM 0.33.0; did you mean `method`?"),
        (["--enforce-eager=yes"], "--enforce-eager takes no value, not 'yes'"),
    ],
)  # fmt: skip
def test_a_rendered_command_line_is_checked_token_by_token(argv, message):
    assert [p.message for p in vllm_argv_problems(argv, load_catalog("0.33.0"))] == [message]


def test_the_recipes_command_line_passes_the_argv_check():
    argv = ["--tensor-parallel-size", "8", "--speculative-config.method", "mtp"]
    argv += ["--speculative-config.num_speculative_tokens", "3", "--enable-auto-tool-choice"]
    argv += ["--tool-call-parser", "glm47", "--chat-template-content-format=string", "--no-enable-prefix-caching"]
    for version in ("0.19.0", "0.33.0"):
        assert vllm_argv_problems(argv, load_catalog(version)) == []
