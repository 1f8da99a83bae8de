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
