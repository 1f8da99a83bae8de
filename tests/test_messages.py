"""Messages a user can act on: each friction point of a first hour with deploygen, and its exact message."""

from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, child, run_cli

pytestmark = pytest.mark.usefixtures("in_repository")


def validate_errors(path) -> str:
    result = run_cli("validate", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "gpu:\n  type: b200\n",
            "4:3: error: gpu.type: 'b200' is not one of 'T4', 'L4', 'A10', 'L40S', 'A100', 'A100-40GB', 'A100-80GB', "
            "'RTX-PRO-6000', 'H100', 'H100!', 'H200', 'B200', 'B200+', 'B300'\n"
            "    hint: did you mean 'B200'? (case matters)",
        ),
        (
            "gpu:\n  type: B300+\n",
            "4:3: error: gpu.type: 'B300+' is not one of 'T4', 'L4', 'A10', 'L40S', 'A100', 'A100-40GB', 'A100-80GB', "
            "'RTX-PRO-6000', 'H100', 'H100!', 'H200', 'B200', 'B200+', 'B300'\n"
            "    hint: did you mean 'B300'?",
        ),
        (
            "server:\n  cpu: 0.1\n",
            "4:3: error: server.cpu: 0.1 is not a valid value\n    hint: CPU cores reserved for the serving container "
            "(@app.server / @app.cls `cpu=`): a number, at least 0.125 (https://modal.com/docs/guide/resources), or "
            "[request, limit] to also cap it (modal/app.py, App.server). Unset: Modal's default. `plan` prices the "
            "request.",
        ),
        (
            'server:\n  memory: "96GiB"\n',
            "4:3: error: server.memory: '96GiB' is not a valid value\n    hint: Memory in MiB reserved for the serving "
            "container (`memory=`): an integer, or [request, limit] to also cap it. Unset: Modal's default. `plan` "
            "prices the request.",
        ),
        (
            'gpu: "B200:8"\n',
            "3:1: error: gpu: 'B200:8' is a string, expected a mapping\n"
            "    hint: write a mapping: `gpu: {type: B200, count: 8}`",
        ),
        (
            "sglang:\n  --context-length: 32768\n",
            "4:3: error: sglang.--context-length: invalid key '--context-length'\n"
            "    hint: write the option name without leading dashes, with - between words: context-length",
        ),
        (
            "sglang:\n  context_length: 32768\n",
            "4:3: error: sglang.context_length: invalid key 'context_length'\n"
            "    hint: write the option name without leading dashes, with - between words: context-length",
        ),
        (
            "sglang:\n  kv-cache-dtype: fp8\n",
            "4:3: error[sglang-flag-value]: sglang.kv-cache-dtype: --kv-cache-dtype 'fp8' is not one of auto, "
            "fp8_e5m2, fp8_e4m3, bf16, bfloat16, fp4_e2m1 (did you mean 'fp8_e5m2' or 'fp8_e4m3'?)",
        ),
        (
            "max_containers: 2\n",
            "3:1: error: max_containers: unknown key 'max_containers'\n"
            "    hint: did you mean scaling.max_containers? (a key of that section, not of this level)",
        ),
    ],
    ids=[
        "gpu-type-case",
        "gpu-type-typo",
        "cpu-too-small",
        "memory-with-unit",
        "gpu-as-string",
        "flag-with-dashes",
        "flag-with-underscores",
        "choice",
        "misplaced-key",
    ],
)
def test_a_common_mistake_gets_the_hint_that_fixes_it(tmp_path, body, expected):
    profile = child(tmp_path, body)
    assert validate_errors(profile) == f"{profile}:{expected}\n"


def test_a_profile_missing_most_sections_is_asked_whether_it_forgot_extends(tmp_path):
    from deploygen.load import available_profiles

    profile = tmp_path / "mine.yaml"
    profile.write_text("schema_version: 1\ndescription: my model\nsglang:\n  context-length: 32768\n")
    names = available_profiles()
    assert validate_errors(profile) == (
        f"{profile}:1:1: error: missing required sections: app, model, gpu, image, volumes\n"
        f"    hint: did you forget `extends:`? e.g. `extends: {names[0]}`; profiles to build on: {', '.join(names)}\n"
    )


def test_check_names_the_command_that_removes_an_orphan_render():
    orphan = ROOT / "generated" / "deleted-profile"
    orphan.mkdir()
    try:
        (orphan / "deploy.py").write_text("# old\n")
        result = run_cli("check")
        assert result.returncode == 1
        assert (
            result.stderr
            == "generated/deleted-profile/deploy.py: no profile renders it\nfix: rm -r generated/deleted-profile\n"
        )
        subprocess.run(["sh", "-c", "rm -r generated/deleted-profile"], cwd=ROOT, check=True)
        assert run_cli("check").returncode == 0
    finally:
        shutil.rmtree(orphan, ignore_errors=True)


def make(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "-s", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_make_help_shows_the_real_default_profile():
    result = make("help")
    assert result.stdout.splitlines()[0] == "make TARGET [PROFILE=name]   (PROFILE is b200-prod unless given)"
    assert "  render           validate and render generated/b200-prod/deploy.py" in result.stdout
    assert "$(PROFILE)" not in result.stdout
    assert "  render           validate and render generated/h200/deploy.py" in make("help", "PROFILE=h200").stdout


def test_make_diff_without_two_profiles_says_how_to_call_it():
    result = make("diff", "A=b200-prod")
    assert result.returncode != 0
    assert result.stderr.startswith("usage: make diff A=x B=y (two profile names, e.g. A=b200-prod B=h200)\n")


def test_triage_on_a_terminal_says_it_reads_standard_input():
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "generate.py", "triage"],
            cwd=ROOT,
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.write(controller, b"\x04")  # Ctrl-D: the end of what the user typed
        out, err = process.communicate(timeout=60)
    finally:
        os.close(controller)
        os.close(terminal)
    assert err.startswith(
        "triage: reading log lines from standard input; pipe a log in (make triage < deploy.log, or "
        "make triage FILE=deploy.log), or paste lines and end with Ctrl-D\n"
    )
    assert process.returncode == 0
    assert "no line matched" in out or "matched" in out


def test_triage_from_a_pipe_prints_no_such_notice():
    result = run_cli("triage", input="")
    assert "reading log lines" not in result.stderr


# --- render outside profiles/ ----------------------------------------------------------------------


def test_a_profile_outside_profiles_needs_out_and_never_lands_in_generated(tmp_path):
    profile = child(tmp_path, "app:\n  name: mine\n", name="mine")
    result = run_cli("render", str(profile))
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {profile} is not in profiles/, so its render has no place in generated/: write "
        f"`render {profile} --out DIR` (DIR/deploy.py) or `--out -` (standard output)\n"
    )
    assert not (ROOT / "generated" / "mine").exists()


def test_render_out_writes_the_folder_given_and_dash_writes_standard_output(tmp_path):
    profile = child(tmp_path, "app:\n  name: mine\n", name="mine")
    out = tmp_path / "build"
    result = run_cli("render", str(profile), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{out / 'deploy.py'}: written\n"
    stdout = run_cli("render", str(profile), "--out", "-")
    assert stdout.returncode == 0 and stdout.stdout == (out / "deploy.py").read_text()
    assert 'APP_NAME = "mine"' in stdout.stdout
    assert not (ROOT / "generated" / "mine").exists()


# --- new ------------------------------------------------------------------------------------------


def test_new_writes_a_commented_child_that_validates_and_renders_as_written():
    path = ROOT / "profiles" / "zz-new-child.yaml"
    try:
        result = run_cli("new", "zz-new-child", "--extends", "h200")
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            "profiles/zz-new-child.yaml: written\n"
            "next: edit it, then `make validate PROFILE=zz-new-child` and `make render PROFILE=zz-new-child`\n"
        )
        text = path.read_text()
        assert text.startswith("# yaml-language-server: $schema=../schema/profile.schema.json\n")
        assert (
            "\nextends: h200\n" in text and "\n  name: zz-new-child\n" in text and "\n# gpu:\n#   type: H200\n" in text
        )
        assert run_cli("validate", "zz-new-child", "--strict").returncode == 0
        again = run_cli("new", "zz-new-child", "--extends", "h200")
        assert again.returncode == 1
        assert again.stderr == (
            "profiles/zz-new-child.yaml: error: this profile exists already\n    hint: pick another NAME, or edit it\n"
        )
    finally:
        path.unlink(missing_ok=True)


def test_new_with_an_unknown_parent_writes_nothing():
    result = run_cli("new", "zz-orphan", "--extends", "b200-prd")
    assert result.returncode == 1
    assert result.stderr.startswith("error: no profile named 'b200-prd'\n    hint: did you mean 'b200-prod'?")
    assert not (ROOT / "profiles" / "zz-orphan.yaml").exists()


# --- deploy gates on its own profile ----------------------------------------------------------------


def test_deploy_gates_on_its_profile_alone_and_check_on_every_profile():
    unrelated = ROOT / "profiles" / "zz-unrelated-warning.yaml"
    unrelated.write_text(
        "schema_version: 1\nextends: b200-prod\napp:\n  name: zz-unrelated\nscaling:\n  max_concurrency: 64\n"
    )
    try:
        gate = make("gate", "PROFILE=h200")
        assert gate.returncode == 0, gate.stderr
        valid, fresh = [line for line in gate.stdout.splitlines() if not line.startswith("  warmup")]
        assert valid.startswith("profiles/h200.yaml: valid") and fresh == "1 generated file is fresh"
        everything = make("check")
        assert everything.returncode != 0
        assert "warning[queued-in-sglang]" in everything.stderr
    finally:
        unrelated.unlink()


def test_deploy_refuses_its_own_stale_render():
    path = ROOT / "generated" / "h200" / "deploy.py"
    original = path.read_text()
    try:
        path.write_text(original.replace("import modal\n", "import modal  # edited\n"))
        gate = make("gate", "PROFILE=h200")
        assert gate.returncode != 0
        assert "generated/h200/deploy.py: stale or edited by hand\nfix: make render PROFILE=h200\n" in gate.stderr
    finally:
        path.write_text(original)
