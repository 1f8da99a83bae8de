"""Profiles that compose: `null` removes an inherited key, warnings acknowledged with a reason."""

from __future__ import annotations

import pytest

from conftest import child, run_cli
from deploygen.load import load_profile
from deploygen.pipeline import check

pytestmark = pytest.mark.usefixtures("in_repository")


def test_null_removes_an_inherited_flag_and_explain_says_where(tmp_path):
    profile = child(tmp_path, "sglang:\n  enable-metrics: null\n  mem-fraction-static: 0.85\n")
    loaded = load_profile(str(profile))
    assert "enable-metrics" not in loaded.data["sglang"]
    assert ("sglang", "enable-metrics") not in loaded.origins
    assert loaded.data["sglang"]["mem-fraction-static"] == 0.85
    assert "--enable-metrics" not in check(str(profile)).deployment.argv
    explained = run_cli("explain", str(profile)).stdout.splitlines()
    [line] = [line for line in explained if line.startswith("sglang.enable-metrics:")]
    assert line.split() == ["sglang.enable-metrics:", "null", "#", "removed", "by", f"{profile}:4:3"]


def test_null_removes_a_whole_inherited_section_and_the_schema_default_applies(tmp_path):
    profile = child(tmp_path, "image:\n  env: null\n")
    assert check(str(profile)).profile.data["image"]["env"] == {}
    assert load_profile(str(profile)).removed == {
        ("image", "env"): load_profile(str(profile)).removed[("image", "env")]
    }
    assert str(load_profile(str(profile)).removed[("image", "env")]) == f"{profile}:4:3"


def test_a_null_with_nothing_to_remove_changes_nothing(tmp_path):
    profile = child(tmp_path, "sglang:\n  no-such-flag-anywhere: null\napp:\n  name: glm-null\n")
    loaded = load_profile(str(profile))
    assert "no-such-flag-anywhere" not in loaded.data["sglang"] and loaded.removed == {}
    assert check(str(profile)).profile.data["app"]["name"] == "glm-null"


def test_a_grandchild_can_set_again_what_its_parent_removed(tmp_path):
    parent = child(tmp_path, "sglang:\n  enable-metrics: null\n", name="parent")
    grandchild = tmp_path / "grandchild.yaml"
    grandchild.write_text(f"extends: {parent}\nsglang:\n  enable-metrics: true\n")
    loaded = load_profile(str(grandchild))
    assert loaded.data["sglang"]["enable-metrics"] is True and loaded.removed == {}
    assert str(loaded.origin(("sglang", "enable-metrics"))) == f"{grandchild}:3:3"


def test_the_sglang_upgrade_of_b200_prod_is_a_short_child_of_it():
    upgrade = check("b200-prod-sglang-0.5.23")
    assert [p.name for p in upgrade.profile.sources][-2:] == ["b200-prod.yaml", "b200-prod-sglang-0.5.23.yaml"]
    assert not [
        t for t in upgrade.deployment.argv if t.startswith("--nsa-") or t == "--enable-flashinfer-allreduce-fusion"
    ]
    assert "SGLANG_ENABLE_SPEC_V2" not in upgrade.profile.data["image"]["env"]
    assert run_cli("validate", "b200-prod-sglang-0.5.23", "--strict").returncode == 0


FP8_KV = "sglang:\n  kv-cache-dtype: fp8_e4m3\n"


def test_an_acknowledged_warning_passes_strict_and_shows_the_reason(tmp_path):
    profile = child(tmp_path, FP8_KV + 'acknowledge:\n  fp8-kv-eagle: "measured on our traffic, see PR 42"\n')
    result = run_cli("validate", str(profile), "--strict")
    assert result.returncode == 0, result.stderr
    assert (
        f"{profile}:4:3: acknowledged[fp8-kv-eagle]: sglang.kv-cache-dtype: FP8 KV with EAGLE on Blackwell loses "
        "accuracy on GLM-5.1-FP8 and models of its class GlmMoeDsaForCausalLM (SGLang #22671, #27661)\n"
        f"    reason: measured on our traffic, see PR 42 (acknowledged at {profile}:6:3)\n"
    ) in result.stderr
    assert result.stdout.splitlines()[0] == f"{profile}: valid (2 notes)"


def test_without_the_acknowledgement_the_same_warning_fails_strict(tmp_path):
    result = run_cli("validate", str(child(tmp_path, FP8_KV)), "--strict")
    assert result.returncode == 1 and "warning[fp8-kv-eagle]" in result.stderr


@pytest.mark.parametrize(
    ("acknowledge", "expected"),
    [
        (
            "fp8-kv-egle: typo",
            "7:3: warning[acknowledge]: acknowledge.fp8-kv-egle: no check reports a warning 'fp8-kv-egle'\n"
            "    hint: did you mean 'fp8-kv-eagle'?",
        ),
        (
            "queued-in-sglang: was true once",
            "7:3: warning[acknowledge]: acknowledge.queued-in-sglang: 'queued-in-sglang' no longer fires for this "
            "profile\n    hint: remove the acknowledgement",
        ),
        (
            "memory-fit: please",
            "7:3: warning[acknowledge]: acknowledge.memory-fit: 'memory-fit' reports errors, not warnings\n"
            "    hint: fix what it reports; only warnings can be acknowledged",
        ),
    ],
    ids=["unknown-code", "no-longer-fires", "an-error"],
)
def test_an_acknowledgement_that_acknowledges_nothing_is_itself_a_warning(tmp_path, acknowledge, expected):
    profile = child(tmp_path, FP8_KV + f"acknowledge:\n  fp8-kv-eagle: measured\n  {acknowledge}\n")
    result = run_cli("validate", str(profile), "--strict")
    assert result.returncode == 1
    assert result.stderr == f"{profile}:{expected}\n"
