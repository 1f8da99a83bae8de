"""The comment block written directly above each key of a profile, so a value's "why" travels with it.

PyYAML drops comments. The loader keeps the file and line of every key; this module reads the source
lines above that line: the comment lines directly above it (no blank line between), outside any
multi-line scalar (a `#` line inside a block scalar is text, not a comment).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from deploygen.errors import Origin
from deploygen.load.yaml_source import Path_

MODELINE = "yaml-language-server:"
_Loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


@dataclass(frozen=True)
class Comment:
    """A comment block: its lines without the leading `# `, and where its first line is."""

    lines: tuple[str, ...]
    origin: Origin


def profile_comments(origins: dict[Path_, Origin]) -> dict[Path_, Comment]:
    """The comment above each key or list item that starts its line (origins name files as the loader
    showed them: relative to the working directory, which has not changed since)."""
    comments = {}
    for path, origin in origins.items():
        if not origin.line:
            continue
        file = Path(origin.file)
        found = _blocks(file, origin.file, *_version(file)).get(origin.line)
        if found and found[0] == origin.column:
            comments[path] = Comment(found[2], found[1])
    return comments


def _version(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (0, 0)
    return (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _blocks(path: Path, shown: str, *_version: int) -> dict[int, tuple[int, Origin, tuple[str, ...]]]:
    """For each line (1-based) that starts with a key or item: (its column, the block's origin, the lines)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}
    inside_scalars = _scalar_lines(text)
    blocks: dict[int, tuple[int, Origin, tuple[str, ...]]] = {}
    run: list[str] = []
    start = Origin(shown)
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if number in inside_scalars:
            run = []
        elif stripped.startswith("#"):
            body = stripped[1:]
            body = body[1:] if body.startswith(" ") else body
            if not run:
                start = Origin(shown, number, len(line) - len(line.lstrip()) + 1)
            run = [] if body.startswith(MODELINE) else [*run, body.rstrip()]
        elif stripped:
            if run:
                # The column where the key or item starts: after indentation and any `- ` markers.
                prefix = len(line) - len(line.lstrip(" -"))
                blocks[number] = (prefix + 1, start, tuple(run))
            run = []
        else:
            run = []
    return blocks


def _scalar_lines(text: str) -> set[int]:
    """Lines (1-based) that continue a multi-line scalar: text there is content, never a comment."""
    lines: set[int] = set()
    try:
        for token in yaml.scan(text, Loader=_Loader):
            if isinstance(token, yaml.ScalarToken) and token.end_mark.line > token.start_mark.line:
                # A block scalar ends at column 0 of the line after its text: that line is not inside it.
                last = token.end_mark.line + (1 if token.end_mark.column else 0)
                lines.update(range(token.start_mark.line + 2, last + 1))
    except yaml.YAMLError:
        pass  # the loader has already accepted this file; a scan error only costs the scalar check
    return lines
