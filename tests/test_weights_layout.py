"""model.weights_layout: hf-cache keeps the weights in a Hugging Face cache on the weights volume, as Modal's
examples do; the same shard checks and commit pin as a folder at model.path. The runtime runs for real,
in its own process, with the real huggingface_hub against the stand-in Hub (tests/standin/hub)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import yaml
from test_image_steps import build_steps, import_render

from conftest import HUB_FIXTURES, ROOT, run_cli

COVERED = ["weights-layout"]
REPO = "acme/tiny-sharded"
COMMIT = yaml.safe_load((HUB_FIXTURES / REPO / "hub.yaml").read_text())["commit"]
SMOKE_COMMIT = "c1899de289a04d12100db370d81485cdf75e47ca"
MOUNT = "/root/.cache/huggingface"
SNAPSHOT = f"{MOUNT}/models--Qwen--Qwen3-0.6B/snapshots/{SMOKE_COMMIT}"


def profile(tmp_path, model: str, rest: str = "") -> str:
    path = tmp_path / "hf.yaml"
    path.write_text(
        f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\nmodel:\n  weights_layout: hf-cache\n"
        f"{model}{rest}"
    )
    return str(path)


HF_CACHE = (
    f"  revision: {SMOKE_COMMIT}\n  path: null\nvolumes:\n  weights:\n    name: huggingface-cache\n    mount: {MOUNT}\n"
)


def test_the_render_loads_the_snapshot_folder_of_the_pinned_commit_from_the_cache(tmp_path):
    path = profile(tmp_path, HF_CACHE)
    out = tmp_path / "out"
    result = run_cli("render", path, "--out", str(out))
    assert result.returncode == 0, result.stderr
    source = (out / "deploy.py").read_text()
    assert "    commit = download_to_hf_cache(WEIGHTS_MOUNT, MODEL_REPO, MODEL_REVISION, max_workers=4)\n" in source
    deploy = import_render(out / "deploy.py")
    assert deploy.MODEL_PATH == SNAPSHOT
    cmd = deploy._build_sglang_cmd()
    assert cmd[cmd.index("--model-path") + 1] == SNAPSHOT
    assert deploy.ENGINE_ENV == {"HF_HUB_CACHE": MOUNT}
    assert f"ENV HF_HUB_CACHE={MOUNT}" in build_steps(deploy.sglang_image)[-1]
    assert deploy.engine_env(deploy.ENGINE_ENV, deploy.CACHE_DIR)["HF_HUB_OFFLINE"] == "1"
    explained = run_cli("explain", path).stdout
    assert "model.weights_layout: hf-cache" in explained
    assert "# derived from volumes.weights.mount, model.repo, model.revision: the snapshot folder" in explained


def test_vllm_serves_the_snapshot_folder_too(tmp_path):
    path = tmp_path / "v.yaml"
    path.write_text(
        f"schema_version: 1\nextends: {ROOT / 'profiles' / 'glm-5.1-h200-vllm.yaml'}\nmodel:\n"
        "  weights_layout: hf-cache\n  revision: 0123456789abcdef0123456789abcdef01234567\n  path: null\n"
    )
    out = tmp_path / "out"
    result = run_cli("render", str(path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    deploy = import_render(out / "deploy.py")
    mount = deploy.WEIGHTS_MOUNT
    assert (
        deploy.MODEL_PATH == f"{mount}/models--zai-org--GLM-5.1-FP8/snapshots/0123456789abcdef0123456789abcdef01234567"
    )
    assert '"vllm", "serve", MODEL_PATH,' in (out / "deploy.py").read_text()


def test_a_path_a_branch_or_a_cache_variable_with_hf_cache_is_refused(tmp_path):
    path = profile(tmp_path, "", "image:\n  env:\n    HF_HUB_CACHE: /cache\n")
    result = run_cli("validate", path)
    rendered = run_cli("render", path, "--out", str(tmp_path / "out"))
    assert (result.returncode, rendered.returncode, result.stdout) == (1, 1, "")
    assert not (tmp_path / "out").exists()
    assert result.stderr == (
        "profiles/smoke.yaml:14:3: error[weights-layout]: model.path: not used with weights_layout hf-cache: the "
        "engine loads the snapshot folder /smoke-weights/models--Qwen--Qwen3-0.6B/snapshots/main\n"
        "    hint: remove model.path (`path: null` in a profile that extends one with a path)\n"
        "profiles/smoke.yaml:12:3: error[weights-layout]: model.revision: weights_layout hf-cache needs a commit: "
        "revision 'main' is a branch, and the cache's snapshot folder is named by the commit\n"
        "    hint: set model.revision to the 40-hex commit (the Hub's 'Files and versions' page, or the commit "
        "`generate.py model add` printed)\n"
        f"{path}:7:5: error[env-overridden]: image.env.HF_HUB_CACHE: the generator sets "
        "HF_HUB_CACHE='/smoke-weights' (the weights volume is the cache), which replaces this '/cache'\n"
        "    hint: remove image.env.HF_HUB_CACHE; mount the weights volume where the cache should be "
        "(volumes.weights.mount)\n"
    )


def test_the_path_layout_still_requires_a_path(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(f"schema_version: 1\nextends: {ROOT / 'profiles' / 'smoke.yaml'}\nmodel:\n  path: null\n")
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert result.stderr.startswith(f"{path}:3:1: error: model: missing required field 'path'\n")


RUNTIME = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from deploygen.runtime.weights import download_to_hf_cache, hf_snapshot_dir, weights_ready
    cache, repo, revision = sys.argv[2:5]
    commit = download_to_hf_cache(cache, repo, revision, max_workers=2)
    snapshot = hf_snapshot_dir(cache, repo, commit)
    print(json.dumps({"commit": commit, "snapshot": snapshot, "ready": weights_ready(snapshot, revision)}))
    """
)


def download(hub, cache, revision: str = COMMIT) -> tuple[dict, str]:
    """download_model's runtime in its own process, as in the download container: (its result, its log)."""
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HOME": str(cache.parent / "hf-home"), "HF_HUB_DISABLE_XET": "1"}
    env.pop("HF_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-c", RUNTIME, str(ROOT), str(cache), REPO, revision],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.splitlines()[-1]), result.stdout


def test_the_download_fills_the_cache_verifies_every_shard_and_marks_the_commit(hub, tmp_path):
    cache = tmp_path / "volume"
    result, log = download(hub, cache)
    snapshot = cache / f"models--acme--tiny-sharded/snapshots/{COMMIT}"
    assert result == {"commit": COMMIT, "snapshot": str(snapshot), "ready": []}
    assert f"[download] complete: {REPO}@{COMMIT}" in log
    shard = snapshot / "model-00001-of-00002.safetensors"
    assert shard.is_symlink() and shard.resolve().parent == cache / "models--acme--tiny-sharded" / "blobs"
    marker = json.loads((snapshot / ".download-complete.json").read_text())
    assert (marker["commit"], marker["sizes"]["model-00001-of-00002.safetensors"]) == (COMMIT, 64)
    before = len(hub.requests())
    again, log = download(hub, cache)
    assert again["ready"] == [] and f"[download] {REPO}@{COMMIT} already complete" in log
    assert not [line for line in hub.requests()[before:] if "/resolve/" in line]


def test_a_truncated_shard_in_the_cache_stops_serving_and_the_next_download_repairs_it(hub, tmp_path):
    from deploygen.runtime.weights import weights_ready

    cache = tmp_path / "volume"
    result, _ = download(hub, cache)
    snapshot = result["snapshot"]
    blob = (cache / f"models--acme--tiny-sharded/snapshots/{COMMIT}/model-00002-of-00002.safetensors").resolve()
    blob.write_bytes(b"cut")
    assert weights_ready(snapshot, COMMIT) == ["shard model-00002-of-00002.safetensors has 3 bytes, expected 32"]
    repaired, log = download(hub, cache)
    assert "marked complete but 1 problems" in log
    assert "model-00002-of-00002.safetensors: 3 bytes, expected 32; fetching it again" in log
    assert repaired["ready"] == []
    assert weights_ready(snapshot, COMMIT) == []


def test_serving_refuses_a_snapshot_of_another_commit_or_one_never_marked(hub, tmp_path):
    from deploygen.runtime.weights import weights_ready

    cache = tmp_path / "volume"
    result, _ = download(hub, cache, revision="main")  # a branch resolves to the commit the Hub names
    assert result["commit"] == COMMIT and result["ready"] == []
    other = "f" * 40
    assert weights_ready(result["snapshot"], other) == [
        f"weights are commit {COMMIT}, the profile pins {other}: run download_model"
    ]
    (cache / f"models--acme--tiny-sharded/snapshots/{COMMIT}/.download-complete.json").unlink()
    assert weights_ready(result["snapshot"], COMMIT)[0].endswith(
        ".download-complete.json is missing: run `modal run deploy.py::download_model`"
    )


def test_offline_the_engine_finds_the_snapshot_without_asking_the_hub(hub, tmp_path):
    """What the engine sees with HF_HUB_OFFLINE=1: the repo at the commit resolves to the snapshot folder."""
    cache = tmp_path / "volume"
    result, _ = download(hub, cache)
    before = len(hub.requests())
    code = (
        "import sys; from huggingface_hub import snapshot_download; "
        "print(snapshot_download(sys.argv[1], revision=sys.argv[2], cache_dir=sys.argv[3]))"
    )
    env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    found = subprocess.run(
        [sys.executable, "-c", code, REPO, COMMIT, str(cache)], env=env, capture_output=True, text=True, timeout=60
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == result["snapshot"]
    assert hub.requests()[before:] == []
