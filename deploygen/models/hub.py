"""Read one checkpoint's config.json, safetensors index and file sizes from the Hugging Face Hub.

Everything goes through huggingface_hub: the endpoint comes from HF_ENDPOINT and the token from HF_TOKEN
or the user's `hf auth login`, as huggingface_hub reads them; deploygen never stores or prints the token.
huggingface_hub speaks HTTP through httpx2, whose transport errors mean the Hub cannot be reached.
Files are downloaded into a temporary folder that is removed afterwards, so the user's Hub cache is
untouched. Hub failures become UserErrors that say what to do.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import httpx2
from huggingface_hub import HfApi, get_token, hf_hub_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import disable_progress_bars

from deploygen.errors import Origin, Problem, UserError
from deploygen.models.derive import INDEX_FILE, Checkpoint

LOGIN_HINT = "log in with `hf auth login` or set HF_TOKEN to a token that can read it"


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def read_checkpoint(repo: str, revision: str) -> Checkpoint:
    """Resolve `revision` to a commit and read what derive_facts needs at that commit."""
    disable_progress_bars()
    endpoint = hub_endpoint()
    shown = f"{repo}@{revision}"
    try:
        info = HfApi(endpoint=endpoint).model_info(repo, revision=revision, files_metadata=True)
        commit = info.sha
        sizes = {sibling.rfilename: sibling.size for sibling in info.siblings or [] if sibling.size is not None}
        with tempfile.TemporaryDirectory(prefix="deploygen-hub-") as cache:
            config = _read_json(repo, commit, "config.json", endpoint, cache)
            try:
                index = _read_json(repo, commit, INDEX_FILE, endpoint, cache)
            except RemoteEntryNotFoundError:
                index = None  # a single-file checkpoint: model.safetensors
    except (HfHubHTTPError, httpx2.HTTPError, OfflineModeIsEnabled, LocalEntryNotFoundError, OSError) as exc:
        raise _user_error(exc, repo, revision, endpoint) from None
    if not isinstance(config, dict):
        raise UserError(Problem(Origin(f"config.json of {shown}"), "", "config.json is not a JSON object"))
    if index is not None and not isinstance(index, dict):
        raise UserError(Problem(Origin(f"{INDEX_FILE} of {shown}"), "", f"{INDEX_FILE} is not a JSON object"))
    return Checkpoint(repo, commit, config, index, sizes)


def _read_json(repo: str, commit: str, filename: str, endpoint: str, cache: str) -> Any:
    path = hf_hub_download(repo, filename, revision=commit, endpoint=endpoint, cache_dir=cache)
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(
            Problem(Origin(f"{filename} of {repo}@{commit[:12]}"), "", f"{filename} is not valid JSON: {exc}")
        ) from None


def _user_error(exc: Exception, repo: str, revision: str, endpoint: str) -> UserError:
    page = f"{endpoint}/{repo}"
    where = Origin(f"{repo}@{revision}")
    if isinstance(exc, GatedRepoError):
        return UserError(
            Problem(where, "", f"{repo} is gated", f"accept its terms on {page} with your account, then {LOGIN_HINT}")
        )
    if isinstance(exc, RepositoryNotFoundError):
        return UserError(
            Problem(
                where,
                "",
                f"no model {repo} on {endpoint}, or it is private",
                f"check the spelling (owner/name, as in {page}); for a private model, {LOGIN_HINT}",
            )
        )
    if isinstance(exc, RevisionNotFoundError):
        return UserError(
            Problem(
                where,
                "",
                f"{repo} has no revision {revision!r}",
                f"use a branch, tag or commit listed on {page}/commits/main",
            )
        )
    if isinstance(exc, RemoteEntryNotFoundError):
        return UserError(
            Problem(where, "", f"{repo} has no config.json", "deploygen reads transformers-style checkpoints")
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "no"
        return UserError(
            Problem(
                where,
                "",
                f"the Hub at {endpoint} answered HTTP {status}",
                "try again; if it persists, see https://status.huggingface.co",
            )
        )
    return UserError(
        Problem(
            where,
            "",
            f"cannot reach the Hub at {endpoint}: {_scrubbed(type(exc).__name__)}",
            "check the network, HF_ENDPOINT and HF_HUB_OFFLINE",
        )
    )


def _scrubbed(text: str) -> str:
    token = get_token()
    return text.replace(token, "***") if token else text
