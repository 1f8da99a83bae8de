"""Installable: a `deploygen` console script with generate.py's commands, pre-commit hooks, and profiles kept
in a team's own repository."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib

import yaml

from conftest import ROOT, run_cli


def test_the_console_script_runs_the_same_commands_as_generate_py():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    module, function = scripts["deploygen"].split(":")
    console = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys; from {module} import {function}; sys.argv[0] = 'deploygen'; {function}()",
            "list",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert console.returncode == 0
    assert console.stdout == run_cli("list").stdout
    usage = subprocess.run(
        [sys.executable, "-c", f"from {module} import {function}; {function}()", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert usage.stdout.startswith("usage: deploygen ")


def test_the_pre_commit_hooks_run_deploygen_check_and_validate_strict_on_the_changed_profiles():
    hooks = {hook["id"]: hook for hook in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert hooks["deploygen-validate"]["entry"] == "deploygen validate --strict"
    assert hooks["deploygen-check"]["entry"] == "deploygen check"
    assert hooks["deploygen-check"]["pass_filenames"] is False
    changed = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "profiles").glob("*.yaml"))[:3]
    for hook in hooks.values():
        argv = hook["entry"].split()[1:] + ([] if hook.get("pass_filenames") is False else changed)
        result = run_cli(*argv)
        assert result.returncode == 0, result.stderr


def test_profiles_in_a_teams_own_repository_render_there(tmp_path):
    team = tmp_path / "team"
    (team / "profiles").mkdir(parents=True)
    for name in ("glm-5.1-base", "b200-prod"):
        shutil.copy(ROOT / "profiles" / f"{name}.yaml", team / "profiles")
    (team / "profiles" / "ours.yaml").write_text("schema_version: 1\nextends: b200-prod\napp:\n  name: ours\n")
    listed = run_cli("list", cwd=team)
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["b200-prod", "glm-5.1-base", "ours"]
    rendered = run_cli("render", "ours", cwd=team)
    assert rendered.returncode == 0, rendered.stderr
    assert rendered.stdout == "generated/ours/deploy.py: written\n"
    assert 'APP_NAME = "ours"' in (team / "generated" / "ours" / "deploy.py").read_text()
    assert not (ROOT / "generated" / "ours").exists()
    assert run_cli("check", cwd=team).stderr.splitlines() == [
        "generated/b200-prod/deploy.py: stale or edited by hand",
        "fix: make render-all",
    ]
