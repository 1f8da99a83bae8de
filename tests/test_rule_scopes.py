"""Rules scoped to what their sources say: spec v2's topk belongs to EAGLE; a derived flag set to exactly the
generated value is a note."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_rules import findings

from conftest import child

pytestmark = pytest.mark.usefixtures("in_repository")


@pytest.mark.parametrize("algorithm", ["EAGLE", "EAGLE3", "NEXTN"])
def test_spec_v2_needs_topk_1_for_eagle_drafts(tmp_path: Path, algorithm: str) -> None:
    body = f"sglang:\n  speculative-algorithm: {algorithm}\n  speculative-eagle-topk: 2\n"
    profile = child(tmp_path, body, parent="h200")
    assert findings(profile, "spec-v2") == [
        f"{profile}:5:3: error[spec-v2]: sglang.speculative-eagle-topk: EAGLE spec v2 needs "
        "`speculative-eagle-topk: 1`\n    hint: set speculative-eagle-topk to 1"
    ]


@pytest.mark.parametrize("algorithm", ["NGRAM", "STANDALONE", "DFLASH"])
def test_spec_v2_asks_no_topk_of_other_drafts(tmp_path: Path, algorithm: str) -> None:
    body = f"sglang:\n  speculative-algorithm: {algorithm}\n  speculative-eagle-topk: 2\n"
    assert findings(child(tmp_path, body, parent="h200"), "spec-v2") == []


def test_host_set_to_the_generated_value_is_a_note(tmp_path: Path, cli) -> None:
    profile = child(tmp_path, "sglang:\n  host: 0.0.0.0\n")
    result = cli("validate", str(profile))
    assert result.returncode == 0, result.stderr
    assert (
        f"{profile}:4:3: info[sglang-derived-flag]: sglang.host: --host 0.0.0.0 is what the generator writes "
        "anyway\n    hint: remove it\n"
    ) in result.stdout + result.stderr


def test_host_set_to_another_value_is_an_error(tmp_path: Path, cli) -> None:
    profile = child(tmp_path, "sglang:\n  host: 127.0.0.1\n")
    result = cli("validate", str(profile))
    assert result.returncode == 1
    assert f"{profile}:4:3: error[sglang-derived-flag]: sglang.host: --host is set by the generator\n" in (
        result.stderr
    )


COVERED = ["mamba-spec-radix"]  # the rule the tests below trigger
QWEN = "qwen3.5-397b-b200x4"


def test_hybrid_model_with_spec_decoding_and_radix_cache_needs_extra_buffer(tmp_path: Path) -> None:
    body = "image:\n  env:\n    SGLANG_ENABLE_SPEC_V2: '0'\nsglang:\n  mamba-scheduler-strategy: no_buffer\n"
    profile = child(tmp_path, body, parent=QWEN)
    assert findings(profile, "mamba-spec-radix") == [
        f"{profile}:7:3: error[mamba-spec-radix]: sglang.mamba-scheduler-strategy: Qwen/Qwen3.5-397B-A17B-FP8 has "
        "linear-attention layers: with speculative decoding and the radix cache SGLang refuses to start unless "
        "--mamba-scheduler-strategy is extra_buffer\n"
        "    hint: set `mamba-scheduler-strategy: extra_buffer` and image.env.SGLANG_ENABLE_SPEC_V2: '1' "
        "(or `disable-radix-cache: true`)"
    ]


@pytest.mark.parametrize(
    ("parent", "body"),
    [
        (QWEN, ""),  # the shipped profile sets extra_buffer
        (QWEN, "sglang:\n  mamba-scheduler-strategy: no_buffer\n  disable-radix-cache: true\n"),
        ("b200-prod", "sglang:\n  mamba-scheduler-strategy: no_buffer\n"),  # GLM-5.1 has no linear attention
    ],
    ids=["shipped", "no-radix-cache", "not-hybrid"],
)
def test_extra_buffer_is_not_asked_where_sglang_does_not_need_it(tmp_path: Path, parent: str, body: str) -> None:
    assert findings(child(tmp_path, body or "description: as shipped\n", parent=parent), "mamba-spec-radix") == []
