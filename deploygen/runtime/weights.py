"""The checkpoint on the weights volume and the compiled kernels on the cache volume: download, check."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

from deploygen.runtime.engine import log

DOWNLOAD_MARKER = ".download-complete.json"


def check_weights(model_dir: str, expected_sizes: dict[str, int] | None = None) -> list[str]:
    """What is missing from a checkpoint: every shard of the index's weight_map, at its full size.

    Sizes come from the Hub at download time and from the download marker afterwards, so a
    truncated shard is caught even when the file exists.
    """
    root = Path(model_dir)
    index_path = root / "model.safetensors.index.json"
    if not index_path.is_file():
        return [f"{index_path} is missing"]
    try:
        shards = sorted(set(json.loads(index_path.read_text())["weight_map"].values()))
    except (ValueError, KeyError, AttributeError, TypeError):
        return [f"{index_path} has no weight_map"]
    if expected_sizes is None:
        marker = root / DOWNLOAD_MARKER
        expected_sizes = json.loads(marker.read_text())["sizes"] if marker.is_file() else {}
    problems = []
    for shard in shards:
        path = root / shard
        if not path.is_file():
            problems.append(f"shard {shard} is missing")
        elif shard in expected_sizes and path.stat().st_size != expected_sizes[shard]:
            problems.append(f"shard {shard} has {path.stat().st_size} bytes, expected {expected_sizes[shard]}")
    return problems


def weights_ready(model_dir: str, revision: str) -> list[str]:
    """Problems that stop serving: an incomplete checkpoint, one never marked complete, or another commit."""
    marker = Path(model_dir) / DOWNLOAD_MARKER
    if not marker.is_file():
        return [f"{marker} is missing: run `modal run deploy.py::download_model`"]
    commit = json.loads(marker.read_text()).get("commit")
    if re.fullmatch(r"[0-9a-f]{40}", revision) and commit != revision:
        return [f"weights are commit {commit}, the profile pins {revision}: run download_model"]
    return check_weights(model_dir)


def hf_snapshot_dir(cache_dir: str, repo: str, commit: str) -> str:
    """The snapshot folder of a commit in a Hugging Face cache, as huggingface_hub lays it out
    (https://huggingface.co/docs/huggingface_hub/guides/manage-cache): models--ORG--NAME/snapshots/COMMIT."""
    return f"{cache_dir}/models--{repo.replace('/', '--')}/snapshots/{commit}"


def _hub_sizes(repo: str, revision: str) -> tuple[str, dict[str, int]]:
    """The commit a revision resolves to and the size of each of its files, from the Hub."""
    from huggingface_hub import HfApi

    info = HfApi().model_info(repo, revision=revision, files_metadata=True)
    return info.sha, {f.rfilename: f.size for f in info.siblings if f.size is not None}


def _complete(model_dir: str, repo: str, commit: str, sizes: dict[str, int], fetch: Callable[[], None]) -> str:
    """Fetch the checkpoint unless it is marked complete and checks out; mark it complete only once every
    shard has its full size."""
    marker = Path(model_dir) / DOWNLOAD_MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("commit") == commit:
        problems = check_weights(model_dir, sizes)
        if not problems:
            log(f"[download] {repo}@{commit} already complete")
            return commit
        log(f"[download] marked complete but {len(problems)} problems: {problems[:3]}; resuming")
    marker.unlink(missing_ok=True)
    log(f"[download] {repo}@{commit}: {len(sizes)} files, {sum(sizes.values()) / 1e9:.1f} GB")
    fetch()
    problems = check_weights(model_dir, sizes)
    if problems:
        raise RuntimeError(f"[download] incomplete after download: {problems[:5]}")
    marker.write_text(json.dumps({"repo": repo, "commit": commit, "sizes": sizes}, indent=1, sort_keys=True))
    log(f"[download] complete: {repo}@{commit}")
    return commit


def download_weights(model_dir: str, repo: str, revision: str, max_workers: int) -> str:
    """Download (or resume) the checkpoint into a folder and mark it complete once every shard checks out."""
    from huggingface_hub import snapshot_download

    commit, sizes = _hub_sizes(repo, revision)

    def fetch() -> None:
        # Resumes partial files; tqdm progress bars go to the logs.
        snapshot_download(repo, revision=commit, local_dir=model_dir, max_workers=max_workers)

    return _complete(model_dir, repo, commit, sizes, fetch)


def download_to_hf_cache(cache_dir: str, repo: str, revision: str, max_workers: int) -> str:
    """Download the checkpoint into a Hugging Face cache (no local_dir, as Modal's examples do) and mark its
    snapshot folder complete once every shard checks out. A file of the wrong size is removed first: the
    cache would otherwise keep it, since huggingface_hub reuses any file already in the snapshot."""
    from huggingface_hub import snapshot_download

    commit, sizes = _hub_sizes(repo, revision)
    snapshot = Path(hf_snapshot_dir(cache_dir, repo, commit))

    def fetch() -> None:
        for name, size in sizes.items():
            entry = snapshot / name
            if entry.exists() and entry.stat().st_size != size:
                log(f"[download] {name}: {entry.stat().st_size} bytes, expected {size}; fetching it again")
                entry.resolve().unlink()
                entry.unlink()
        snapshot_download(repo, revision=commit, cache_dir=cache_dir, max_workers=max_workers)

    return _complete(str(snapshot), repo, commit, sizes, fetch)


def compile_ready(marker_path: str, key: dict[str, str]) -> list[str]:
    """Problems with the compiled kernels: never compiled, or compiled for another key (GPU, image...)."""
    marker = Path(marker_path)
    if not marker.is_file():
        return [f"{marker} is missing: run `modal run deploy.py::compile_deepgemm`"]
    recorded = json.loads(marker.read_text())
    stale = {k: v for k, v in key.items() if recorded.get(k) != v}
    return [f"{marker} was written for another {', '.join(stale)}: recompile"] if stale else []


def mark_compiled(marker_path: str, key: dict[str, str]) -> None:
    marker = Path(marker_path)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(key, indent=1, sort_keys=True))


def run_streaming(cmd: list[str], env: dict[str, str], redact: Callable[[str], str] = lambda line: line) -> int:
    """Run a command, printing each line of its output as it is written; return its exit code."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    for raw in iter(process.stdout.readline, b""):
        log(redact(raw.decode("utf-8", errors="replace").rstrip("\n")))
    return process.wait()
