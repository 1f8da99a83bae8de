"""The new user's path, end to end in a scratch copy of the repository: facts of a model that is not
shipped from the (stand-in) Hub (`model add`), a profile for it (`new`, then an edit), validate, render,
plan, check, and the test suite's profile- and model-driven tests still passing with the extra files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap

import yaml

from conftest import HUB_FIXTURES, ROOT

# The user's edit of the profile `new` writes: the model, the GPU and the context length.
EDIT = textwrap.dedent(
    """
    model:
      repo: Qwen/Qwen3-8B
      name: qwen3-8b
      path: /smoke-weights/Qwen3-8B
      facts: qwen3-0.6b

    gpu:
      type: L40S

    sglang:
      context-length: 131072
    """
)


def line_of(text: str, start: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if line.startswith(start))


def scratch_copy(tmp_path):
    """The working tree as a user's clone holds it: tracked files and new files git does not ignore."""
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    repo = tmp_path / "repo"
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            (repo / os.fsdecode(name)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, repo / os.fsdecode(name))
    return repo


def test_a_new_user_adds_a_model_writes_a_profile_and_renders_it(hub, tmp_path):
    repo = scratch_copy(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING_FACE"))}
    env.update(HF_ENDPOINT=hub.url, HF_HOME=str(tmp_path / "hf-home"))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "generate.py", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=300
        )

    commit = yaml.safe_load((HUB_FIXTURES / "Qwen" / "Qwen3-8B" / "hub.yaml").read_text())["commit"]
    added = run("model", "add", "Qwen/Qwen3-8B")
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout == (
        f"data/models/qwen3-8b.yaml: written from Qwen/Qwen3-8B at commit {commit}\n"
        "  Qwen3ForCausalLM: 36 layers, gqa attention (8 KV heads x 128), max context 40,960, "
        "checkpoint 16.4 GB (none)\n"
        "  KV cache per token, whole model: 147,456 B in bfloat16, 73,728 B in fp8_e4m3\n"
        "  a profile uses it with model.repo: Qwen/Qwen3-8B and model.facts: qwen3-8b\n"
    )

    new = run("new", "qwen3-8b-l40s", "--extends", "smoke")
    assert (new.returncode, new.stderr) == (0, "")
    assert new.stdout.startswith("profiles/qwen3-8b-l40s.yaml: written\n")
    profile = repo / "profiles" / "qwen3-8b-l40s.yaml"
    assert run("validate", "qwen3-8b-l40s").returncode == 0  # valid as written: smoke under another app name

    # First edit: the smoke model's facts left in place, and a context length the model does not have.
    draft = profile.read_text() + EDIT
    profile.write_text(draft)
    first = run("validate", "qwen3-8b-l40s")
    assert (first.returncode, first.stdout) == (1, "")
    assert first.stderr == (
        f"profiles/qwen3-8b-l40s.yaml:{line_of(draft, '  facts:')}:3: error[model-facts]: model.facts: "
        "data/models/qwen3-0.6b.yaml describes Qwen/Qwen3-0.6B, not model.repo Qwen/Qwen3-8B\n"
        "    hint: write the facts of Qwen/Qwen3-8B with `generate.py model add Qwen/Qwen3-8B` and set "
        "model.facts: qwen3-8b\n"
    )
    profile.write_text(draft.replace("facts: qwen3-0.6b", "facts: qwen3-8b"))
    second = run("validate", "qwen3-8b-l40s")
    assert second.returncode == 1
    assert second.stderr.startswith(
        f"profiles/qwen3-8b-l40s.yaml:{line_of(draft, '  context-length:')}:3: error[context-length-above-model]: "
        "sglang.context-length: context-length 131,072 is above the model's maximum 40,960"
    )
    profile.write_text(draft.replace("facts: qwen3-0.6b", "facts: qwen3-8b").replace("131072", "40960"))

    # A facts file edited by hand into an incomplete one: a located message, not a traceback.
    facts = repo / "data" / "models" / "qwen3-8b.yaml"
    written = facts.read_text()
    facts.write_text("".join(line for line in written.splitlines(keepends=True) if not line.startswith("head_dim:")))
    broken = run("validate", "qwen3-8b-l40s")
    assert (broken.returncode, broken.stdout) == (1, "")
    assert broken.stderr.startswith(
        "data/models/qwen3-8b.yaml:1:1: error[model-facts]: head_dim: missing 'head_dim' (needed for this attention "
        'kind)\n    hint: write `head_dim: {value: ..., from: "where the value comes from"}`; '
    )
    facts.write_text(written)

    valid = run("validate", "qwen3-8b-l40s", "--strict")
    assert (valid.returncode, valid.stdout.splitlines()[0]) == (0, "profiles/qwen3-8b-l40s.yaml: valid (2 notes)")

    rendered = run("render", "qwen3-8b-l40s")
    assert (rendered.returncode, rendered.stdout) == (0, "generated/qwen3-8b-l40s/deploy.py: written\n")
    deploy = (repo / "generated" / "qwen3-8b-l40s" / "deploy.py").read_text()
    compile(deploy, "deploy.py", "exec")
    assert "Qwen/Qwen3-8B" in deploy and '"L40S"' in deploy

    plan = run("plan", "qwen3-8b-l40s")
    assert plan.returncode == 0, plan.stderr
    lines = {line.split("  ")[1].strip(): line for line in plan.stdout.splitlines() if line.startswith("  ")}
    assert " ".join(lines["weights per GPU"].split()) == (
        "weights per GPU 16.38 GB data/models/qwen3-8b.yaml checkpoint_bytes 16,381,516,776 B / (tp 1 x pp 1)"
    )
    assert "147,456 B" in lines["KV bytes per token per GPU"]

    checked = run("check")
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.endswith("generated files are fresh\n")

    # The suite collects with the new profile and model present, and the tests driven by the shipped
    # profiles and models pass for the new ones too.
    pytest = [sys.executable, "-m", "pytest", "-o", "addopts=", "-q", "-p", "no:cacheprovider"]
    collected = subprocess.run([*pytest, "--collect-only"], cwd=repo, env=env, capture_output=True, text=True)
    assert collected.returncode == 0, collected.stdout[-2000:]
    selected = subprocess.run(
        [*pytest, "-k", "qwen3-8b", "tests/test_render.py", "tests/test_plan.py", "tests/test_models.py"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert selected.returncode == 0, selected.stdout[-3000:]
    summary = selected.stdout.splitlines()[-1]
    assert re.fullmatch(r"\d+ passed, \d+ deselected in [\d.]+s", summary), selected.stdout[-3000:]
