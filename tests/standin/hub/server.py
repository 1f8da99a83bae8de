"""A stand-in Hugging Face Hub on 127.0.0.1, serving fixture repositories to the real huggingface_hub.

    python tests/standin/hub/server.py FIXTURES_DIR [--log FILE]

prints `http://127.0.0.1:PORT` once it listens; point HF_ENDPOINT at it. A fixture repository is
FIXTURES_DIR/OWNER/NAME/ with `hub.yaml` (commit, branches, gated, the sizes of large files the fixture
does not store) and `files/` (the small files, served as they are).

It answers the two routes huggingface_hub uses to read a model, with the Hub's status codes and headers,
so the client raises its real exceptions (huggingface_hub/utils/_http.py `hf_raise_for_status`):
- GET /api/models/OWNER/NAME[/revision/REV][?blobs=true]: the model info (`sha`, `siblings` with sizes).
- GET /api/models/OWNER/NAME/tree/REV: the files at a revision, one page (snapshot_download lists them).
- HEAD and GET /OWNER/NAME/resolve/REV/PATH: the file with X-Repo-Commit and ETag (git blob id) and
  Content-Length; a large (LFS) file answers HEAD with 302, X-Linked-Size and X-Linked-Etag.
Failures, as the Hub sends them: an unknown repository is 401 RepoNotFound without a token and 404
with one; a gated repository's files are 401 GatedRepo without a token and 403 GatedRepo for a token
not in `granted_tokens`; an unknown revision is 404 RevisionNotFound; an absent file 404 EntryNotFound.
Each request is logged as `METHOD PATH token=yes|no` (never the token itself).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml


class Repo:
    def __init__(self, repo_id: str, folder: Path):
        meta = yaml.safe_load((folder / "hub.yaml").read_text())
        self.id = repo_id
        self.commit = meta["commit"]
        self.branches = set(meta.get("branches", ["main"]))
        self.gated = meta.get("gated", False)
        self.granted = set(meta.get("granted_tokens", []))
        self.small = {
            str(path.relative_to(folder / "files")): path.read_bytes()
            for path in sorted((folder / "files").rglob("*"))
            if path.is_file()
        }
        self.large = {str(name): int(size) for name, size in (meta.get("large_files") or {}).items()}

    def resolve(self, revision: str) -> str | None:
        return self.commit if revision in self.branches or revision == self.commit else None

    def siblings(self) -> list[dict]:
        files = [
            {"rfilename": name, "size": len(data), "blobId": _git_blob_id(data)} for name, data in self.small.items()
        ]
        for name, size in self.large.items():
            digest = hashlib.sha256(f"{self.id}/{name}".encode()).hexdigest()
            files.append(
                {
                    "rfilename": name,
                    "size": size,
                    "blobId": hashlib.sha1(digest.encode()).hexdigest(),
                    "lfs": {"sha256": digest, "size": size, "pointerSize": 135},
                }
            )
        return sorted(files, key=lambda f: f["rfilename"])


def _git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def load_repos(root: Path) -> dict[str, Repo]:
    return {
        f"{hub.parent.parent.name}/{hub.parent.name}": Repo(f"{hub.parent.parent.name}/{hub.parent.name}", hub.parent)
        for hub in sorted(root.glob("*/*/hub.yaml"))
    }


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-hub"
    repos: dict[str, Repo] = {}
    log_lock = threading.Lock()
    log_file: Path | None = None

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - BaseHTTPRequestHandler's signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.route(body=True)

    def do_HEAD(self) -> None:  # noqa: N802
        self.route(body=False)

    def token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    def route(self, body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if self.log_file is not None:
            with self.log_lock, self.log_file.open("a") as log:
                log.write(f"{self.command} {path} token={'yes' if self.token() else 'no'}\n")
        parts = path.strip("/").split("/")
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            return self.tree(f"{parts[2]}/{parts[3]}", parts[5], body)
        if parts[:2] == ["api", "models"] and len(parts) >= 4:
            revision = parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main"
            return self.model_info(f"{parts[2]}/{parts[3]}", revision, body)
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), body)
        return self.error(404, "", "Not Found", body)

    def model_info(self, repo_id: str, revision: str, body: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self.repo_not_found(body)
        commit = repo.resolve(revision)
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
        info = {
            "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
            "id": repo_id,
            "modelId": repo_id,
            "author": repo_id.split("/")[0],
            "sha": commit,
            "private": False,
            "gated": repo.gated,
            "disabled": False,
            "tags": [],
            "siblings": repo.siblings(),
        }
        self.send(200, json.dumps(info).encode(), {"Content-Type": "application/json; charset=utf-8"}, body)

    def tree(self, repo_id: str, revision: str, body: bool) -> None:
        """The repository's files at a revision, one page (what snapshot_download lists before fetching)."""
        repo = self.repos.get(repo_id)
        if repo is None:
            return self.repo_not_found(body)
        if repo.resolve(revision) is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
        entries = [
            {"type": "file", "oid": f["blobId"], "size": f["size"], "path": f["rfilename"]}
            | ({"lfs": {"oid": f["lfs"]["sha256"], "size": f["size"], "pointerSize": 135}} if "lfs" in f else {})
            for f in repo.siblings()
        ]
        self.send(200, json.dumps(entries).encode(), {"Content-Type": "application/json; charset=utf-8"}, body)

    def resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
        repo = self.repos.get(repo_id)
        if repo is None:
            return self.repo_not_found(body)
        if repo.gated and self.token() not in repo.granted:
            status = 403 if self.token() else 401
            message = f"Access to model {repo_id} is restricted. You must have access to it and be authenticated."
            return self.error(status, "GatedRepo", message, body)
        commit = repo.resolve(revision)
        if commit is None:
            return self.error(404, "RevisionNotFound", f"Invalid rev id: {revision}", body)
        headers = {"X-Repo-Commit": commit}
        if filename in repo.small:
            data = repo.small[filename]
            headers.update({"ETag": f'"{_git_blob_id(data)}"', "Content-Type": "text/plain; charset=utf-8"})
            return self.send(200, data, headers, body)
        if filename in repo.large:
            digest = hashlib.sha256(f"{repo_id}/{filename}".encode()).hexdigest()
            headers.update(
                {
                    "X-Linked-Size": str(repo.large[filename]),
                    "X-Linked-Etag": f'"{digest}"',
                    "ETag": f'"{_git_blob_id(digest.encode())}"',
                    "Location": f"/cdn/{digest}",
                }
            )
            return self.send(302, b"", headers, body)
        return self.error(404, "EntryNotFound", "Entry not found", body, headers)

    def repo_not_found(self, body: bool) -> None:
        # The Hub does not tell a missing repository from a private one: 401 to anonymous callers.
        status = 404 if self.token() else 401
        self.error(status, "RepoNotFound", "Repository not found", body)

    def error(self, status: int, code: str, message: str, body: bool, extra: dict | None = None) -> None:
        headers = dict(extra or {})
        if code:
            headers["X-Error-Code"] = code
        headers["X-Error-Message"] = message
        headers["Content-Type"] = "application/json; charset=utf-8"
        self.send(status, json.dumps({"error": message}).encode(), headers, body)

    def send(self, status: int, data: bytes, headers: dict[str, str], body: bool) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)


@contextlib.contextmanager
def running(fixtures: Path, log: Path | None = None) -> Iterator[str]:
    """Run the stand-in as a real process for the duration of the block; yields its HF_ENDPOINT."""
    command = [sys.executable, __file__, str(fixtures), *(["--log", str(log)] if log else [])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        yield proc.stdout.readline().strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("fixtures", type=Path)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    Handler.repos = load_repos(args.fixtures)
    Handler.log_file = args.log
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
