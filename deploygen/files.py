"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import functools
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, content: str | bytes) -> bool:
    """Write through a temp file in the same folder and rename it into place. True if the file changed.

    An unchanged file is left alone (its mtime too); the new file gets the usual 0o644 (less the umask).
    """
    data = content.encode() if isinstance(content, str) else content
    try:
        if path.is_file() and path.read_bytes() == data:
            return False
    except OSError:
        pass  # unreadable: replace it
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _about(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)
        os.replace(temp, path)
    except BaseException as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise _about(exc, path) from exc
        raise
    return True


def _about(exc: OSError, path: Path) -> OSError:
    """The same error, about the file being written rather than its temp file or folder."""
    return type(exc)(exc.errno, exc.strerror, str(path))


def read_bytes(path: Path) -> bytes:
    """A file's bytes, read once per process for each version of it (many renders hash the same inputs)."""
    stat = path.stat()
    return _read_version(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _read_version(path: Path, mtime_ns: int, size: int) -> bytes:
    return path.read_bytes()


def cache_dir(name: str) -> Path | None:
    """A folder of the user's cache for deploygen (`$XDG_CACHE_HOME/deploygen/NAME`), or None when it
    cannot be created: a read-only home only costs the time the cache would have saved."""
    folder = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deploygen" / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return folder
