"""The command line as a user runs it: render, check, explain, diff, list, deploy."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from conftest import ROOT, run_cli

GENERATED = ROOT / "generated"


def test_render_of_a_bad_profile_writes_nothing_and_shows_no_traceback(tmp_path):
    bad = tmp_path / "broken-profile.yaml"
    bad.write_text(f"extends: {ROOT}/profiles/b200-prod.yaml\nscaling:\n  max_containers: 0\n")
    result = run_cli("render", str(bad))
    assert result.returncode == 1
    assert f"{bad}:3:3: error: scaling.max_containers: 0 is less than the minimum of 1" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (GENERATED / "broken-profile").exists()


def test_check_fails_on_a_hand_edit_and_names_the_fix():
    path = GENERATED / "h200" / "deploy.py"
    original = path.read_text()
    try:
        edited = re.sub(r"^SHUTDOWN_GRACE = .*$", "SHUTDOWN_GRACE = 5", original, count=1, flags=re.M)
        assert edited != original
        path.write_text(edited)
        result = run_cli("check")
        assert result.returncode == 1
        assert "generated/h200/deploy.py: stale or edited by hand" in result.stderr
        assert "fix: make render-all" in result.stderr
    finally:
        path.write_text(original)
    assert run_cli("check").returncode == 0


def test_check_flags_a_render_whose_profile_is_gone():
    orphan = GENERATED / "deleted-profile"
    orphan.mkdir()
    try:
        (orphan / "deploy.py").write_text("# old\n")
        result = run_cli("check")
        assert result.returncode == 1
        assert "generated/deleted-profile/deploy.py: no profile renders it\n" in result.stderr
    finally:
        shutil.rmtree(orphan)


def test_render_leaves_an_unchanged_file_untouched():
    path = GENERATED / "b200-prod" / "deploy.py"
    before = path.stat().st_mtime_ns
    result = run_cli("render", "b200-prod")
    assert result.returncode == 0
    assert "generated/b200-prod/deploy.py: unchanged" in result.stdout
    assert path.stat().st_mtime_ns == before


def test_explain_prints_each_value_with_its_origin():
    result = run_cli("explain", "b200-always-on")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert (
        lines[0]
        == "# b200-always-on: profiles/glm-5.1-base.yaml -> profiles/b200-prod.yaml -> profiles/b200-always-on.yaml"
    )
    by_key = {line.split(":")[0]: line for line in lines[1:]}
    assert by_key["scaling.min_containers"].endswith("# profiles/b200-always-on.yaml:16:3")
    assert by_key["scaling.max_containers"].endswith("# profiles/glm-5.1-base.yaml:50:3")
    assert by_key["sglang.mem-fraction-static"].endswith("# profiles/b200-prod.yaml:30:3")
    assert by_key["lifecycle.warmup.enabled"].endswith("# schema/profile.schema.json (default)")


def test_diff_shows_the_rendered_diff_and_the_values_that_differ():
    result = run_cli("diff", "b200-prod", "b200-always-on")
    assert result.returncode == 0
    assert "--- generated/b200-prod/deploy.py" in result.stdout
    assert "-    min_containers=0,\n+    min_containers=1," in result.stdout
    assert (
        "  scaling.min_containers: 0 -> 1  (profiles/glm-5.1-base.yaml:49:3 -> profiles/b200-always-on.yaml:16:3)"
        in result.stdout
    )


def test_list_shows_profiles_and_bases():
    result = run_cli("list")
    assert "glm-5.1-base                 base" in result.stdout
    assert "b200-prod                    8x B200" in result.stdout


def test_an_abstract_base_cannot_be_rendered():
    result = run_cli("render", "glm-5.1-base")
    assert result.returncode == 1
    assert "is an abstract base; render one of: b200-always-on, b200-business-hours, b200-prod" in result.stderr


def test_deploy_without_modal_credentials_fails_with_modals_message():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODAL_")}
    env["HOME"] = str(ROOT / ".pytest_cache" / "no-modal-home")
    result = subprocess.run(
        ["make", "-s", "deploy", "PROFILE=b200-prod"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "profiles/b200-prod.yaml: valid" in output
    assert "Error: Token missing. Could not authenticate client." in output
    assert "Traceback" not in output


def test_explain_lists_keys_in_schema_order_in_yaml_spelling_with_derived_values():
    import json

    lines = run_cli("explain", "b200-prod").stdout.splitlines()
    resolved = lines[1 : lines.index("# derived by deploygen")]
    schema = json.loads((ROOT / "schema" / "profile.schema.json").read_text())
    sections = list(dict.fromkeys(line.split(":")[0].split(".")[0] for line in resolved))
    assert sections == [key for key in schema["properties"] if key in sections]
    rows = {line.split("  #")[0].rstrip(): line.split("  # ")[-1] for line in lines if not line.startswith("# ")}
    assert rows["scaling.target_inputs: null"] == "schema/profile.schema.json (default)"
    assert rows["keepalive.mode: 'off'"] == "schema/profile.schema.json (default)"
    assert "sglang.enable-metrics: true" in rows
    assert rows["sglang.tp-size: 8"] == "derived from gpu.count (profiles/b200-prod.yaml:9:3)"
    assert rows["sglang.port: 8000"].startswith("derived from server.port (profiles/glm-5.1-base.yaml:")
    assert rows["sglang.api-key: $API_KEY of Modal secret glm51-api-key"].startswith("derived from secrets.api_key")
