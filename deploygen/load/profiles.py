"""Profiles by name or path, with `extends` deep-merged and every value's origin kept.

Mappings merge key by key; lists and scalars replace; `null` removes an inherited key (as in Helm).
Parents apply in the order listed, then the child. `abstract: true` marks a base that exists only to be
extended.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploygen.errors import Origin, Problem, ProfileNotFound, UserError
from deploygen.load.comments import Comment, profile_comments
from deploygen.load.yaml_source import Path_, display_path, read_yaml
from deploygen.paths import PROFILES_DIR
from deploygen.suggest import did_you_mean

# Keys about the file itself: they never merge into a child.
FILE_KEYS = ("extends", "abstract")
# A profile name is also its folder generated/<name>/: no separator, no `.` or `..`, nothing hidden.
PROFILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Bounds on one profile's `extends` graph. Shipped profiles use a depth of 3 and 3 files.
MAX_DEPTH = 16
MAX_FILES = 32
MAX_MERGED_VALUES = 100_000


@dataclass(frozen=True)
class ResolvedProfile:
    """One profile after `extends`: the merged data, where each value came from, and the files used."""

    name: str
    path: Path
    data: dict[str, Any]
    origins: dict[Path_, Origin]
    sources: list[Path] = field(default_factory=list)
    abstract: bool = False
    # The comment block written above a key, from the file and line that set its value.
    comments: dict[Path_, Comment] = field(default_factory=dict)
    # Inherited keys that a `null` removed, with the file and line of that `null`.
    removed: dict[Path_, Origin] = field(default_factory=dict)

    def origin(self, path: Path_) -> Origin:
        """The origin of a path, or of its nearest parent that has one."""
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return Origin(display_path(self.path), 1, 1)

    def comment(self, *path: str | int) -> tuple[str, ...]:
        """The lines of the comment above the key that set this value; () when there is none."""
        found = self.comments.get(path)
        return found.lines if found else ()

    def flag(self, *names: str, default: Any = None) -> Any:
        """The value of an SGLang flag under the first of its names (aliases) that the profile sets."""
        flags = self.data.get("sglang", {})
        return next((flags[n] for n in names if n in flags), default)

    def get(self, *path: str | int, default: Any = None) -> Any:
        node: Any = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def deployable_profiles() -> list[ResolvedProfile]:
    """Every profile in profiles/ that renders a deployment (not an abstract base)."""
    profiles = [load_profile(name) for name in available_profiles()]
    return [p for p in profiles if not p.abstract]


def _not_found(name: str, origin: Origin | None = None, path: str = "") -> ProfileNotFound:
    return ProfileNotFound(
        Problem(origin or Origin(""), path, f"no profile named {name!r}", _not_found_hint(name, *available_profiles()))
    )


@functools.lru_cache(maxsize=1024)
def _not_found_hint(name: str, *names: str) -> str:
    """Cached: a folder of many broken siblings asks for the same hint many times."""
    close = did_you_mean(name, list(names))
    return (f"{close} " if close else "") + "available profiles: " + ", ".join(names)


def _exists(path: Path) -> bool:
    """True when there is something at `path`, even a broken symlink or an unreadable file: reading it
    then says what is wrong with it."""
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def profile_path(name_or_path: str, relative_to: Path | None = None, origin: Origin | None = None) -> Path:
    """A profile given by name (`b200-prod`) or by path (`profiles/x.yaml`, `../base.yaml`).

    The path is absolute but not resolved: a symlink stays itself, so an error can name it.
    """
    looks_like_path = "/" in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if looks_like_path:
        base = relative_to.parent if relative_to else Path.cwd()
        path = Path(os.path.abspath(base / name_or_path))
        if not _exists(path):
            raise ProfileNotFound(
                Problem(
                    origin or Origin(name_or_path),
                    "extends" if origin else "",
                    f"no file {name_or_path!r}",
                    "available profiles: " + ", ".join(available_profiles()),
                )
            )
        return path
    if not PROFILE_NAME.fullmatch(name_or_path):
        raise _not_found(name_or_path, origin, "extends" if origin else "")
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not _exists(path):
        raise _not_found(name_or_path, origin, "extends" if origin else "")
    return path


def load_profile(name_or_path: str) -> ResolvedProfile:
    path = profile_path(name_or_path)
    name = path.stem
    if not PROFILE_NAME.fullmatch(name):
        raise UserError(
            Problem(
                Origin(display_path(path)),
                "",
                f"{name!r} is not a profile name: the render goes to generated/<name>/, so a name is "
                "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit",
                "rename the file, e.g. my-profile.yaml",
            )
        )
    # Every command loads each profile more than once (listing, validating, the compile-cache rule): the
    # result is kept while its files hold the same bytes and the working directory (which origins show
    # paths relative to) is the same; each caller gets its own copy.
    key = (Path(os.path.realpath(path)), name, os.getcwd())
    cached = _LOADED.get(key)
    if cached is not None and cached[0] == _versions(cached[1].sources):
        return _copy(cached[1])
    resolved = _Resolution().resolve(path, ())
    comments = profile_comments(resolved.origins)
    profile = ResolvedProfile(
        name,
        resolved.real,
        resolved.data,
        resolved.origins,
        resolved.sources,
        resolved.abstract,
        comments,
        resolved.removed,
    )
    _LOADED[key] = (_versions(resolved.sources), profile)
    return _copy(profile)


def _copy(profile: ResolvedProfile) -> ResolvedProfile:
    """A copy the caller may change without changing the kept one."""
    return dataclasses.replace(
        profile,
        data=copy.deepcopy(profile.data),
        origins=dict(profile.origins),
        comments=dict(profile.comments),
        removed=dict(profile.removed),
    )


_LOADED: dict[tuple[Path, str, str], tuple[tuple, ResolvedProfile]] = {}


def _versions(paths: list[Path]) -> tuple:
    """The content of each file (profiles are small): a loaded profile is reused only for the same bytes."""
    try:
        return tuple(path.read_bytes() for path in paths)
    except OSError:
        return ()


@dataclass(frozen=True)
class _Resolved:
    real: Path
    data: dict[str, Any]
    origins: dict[Path_, Origin]
    sources: list[Path]
    abstract: bool
    removed: dict[Path_, Origin]


class _Resolution:
    """One profile's `extends` graph, walked depth first: each file read and merged once, whatever the
    number of paths that reach it, within limits on depth, files and merged values."""

    def __init__(self) -> None:
        self.done: dict[Path, _Resolved] = {}
        self.files_read = 0
        self.values_merged = 0

    def resolve(self, path: Path, chain: tuple[tuple[Path, Origin], ...], real: Path | None = None) -> _Resolved:
        real = real or Path(os.path.realpath(path))
        if real in self.done:
            return self.done[real]
        self.files_read += 1
        if self.files_read > MAX_FILES:
            raise UserError(
                Problem(
                    chain[-1][1],
                    "extends",
                    f"the profile's `extends` graph has more than {MAX_FILES} files",
                    "merge some base profiles into one",
                )
            )
        data, origins = read_yaml(path)
        if not isinstance(data, dict):
            raise UserError(
                Problem(
                    Origin(display_path(path), 1, 1),
                    "",
                    f"a profile is a mapping, not {_a(_type_name(data))}",
                    "start the file with `schema_version: 1`",
                )
            )
        abstract = data.get("abstract", False)
        if not isinstance(abstract, bool):
            raise UserError(
                Problem(
                    origins[("abstract",)],
                    "abstract",
                    f"{_shown_value(abstract)} is {_a(_type_name(abstract))}, expected true or false",
                    "write `abstract: true` for a base that is never rendered",
                )
            )
        parents = self.parents(data, origins)
        merged: dict[str, Any] = {}
        merged_origins: dict[Path_, Origin] = {}
        removed: dict[Path_, Origin] = {}
        sources: list[Path] = []
        here = (*chain, (real, Origin("")))
        for parent, where in parents:
            parent_path = profile_path(parent, relative_to=real, origin=where)
            parent_real = Path(os.path.realpath(parent_path))
            seen = [p for p, _ in here]
            if parent_real in seen:
                # Blame the `extends` entry that closes the cycle, with its line.
                cycle = " -> ".join(display_path(p) for p in [*seen[seen.index(parent_real) :], parent_real])
                raise UserError(
                    Problem(
                        where,
                        "extends",
                        f"`extends` cycle: {cycle}",
                        "remove one of the `extends` entries in the cycle",
                    )
                )
            if len(here) >= MAX_DEPTH:
                raise UserError(
                    Problem(
                        where,
                        "extends",
                        f"`extends` chain is deeper than {MAX_DEPTH} files: "
                        + " -> ".join(display_path(p) for p, _ in here[:3])
                        + f" -> ... -> {display_path(parent_path)}",
                        "flatten the chain: a profile needs a base or two, not a tower",
                    )
                )
            parent_resolved = self.resolve(parent_path, (*chain, (real, where)), parent_real)
            self.merge(merged, merged_origins, parent_resolved.data, parent_resolved.origins, where, removed)
            removed.update(parent_resolved.removed)
            sources += [s for s in parent_resolved.sources if s not in sources]
        own = {k: v for k, v in data.items() if k not in FILE_KEYS}
        self.merge(merged, merged_origins, own, origins, path, removed)
        sources.append(real)
        resolved = _Resolved(real, merged, merged_origins, sources, abstract, removed)
        self.done[real] = resolved
        return resolved

    @staticmethod
    def parents(data: dict[str, Any], origins: dict[Path_, Origin]) -> list[tuple[str, Origin]]:
        """The `extends` entries with the origin of each, type-checked as the schema describes them."""
        if "extends" not in data:
            return []
        parents = data["extends"]
        where = origins[("extends",)]
        if isinstance(parents, str):
            parents, locations = [parents], [where]
        elif isinstance(parents, list):
            locations = [origins.get(("extends", index), where) for index in range(len(parents))]
        else:
            parents, locations = [parents], [where]
        if not parents:
            raise UserError(
                Problem(where, "extends", "`extends` is an empty list", "name a profile, or remove the key")
            )
        for parent, location in zip(parents, locations, strict=True):
            if not isinstance(parent, str) or not parent:
                raise UserError(
                    Problem(
                        location,
                        "extends",
                        f"{_shown_value(parent)} is not a profile: `extends` takes a profile name, a relative "
                        "path, or a list of them",
                        "write e.g. `extends: glm-5.1-base`",
                    )
                )
        return list(zip(parents, locations, strict=True))

    def merge(
        self,
        target: dict,
        target_origins: dict,
        source: dict,
        source_origins: dict,
        where: Origin | Path,
        removed: dict[Path_, Origin],
    ) -> None:
        """Merge `source` into `target`; `where` (an `extends` entry, or the file itself) is blamed for too much."""
        self.values_merged += len(source_origins)
        if self.values_merged > MAX_MERGED_VALUES:
            raise UserError(
                Problem(
                    where if isinstance(where, Origin) else Origin(display_path(where), 1, 1),
                    "extends",
                    f"the `extends` graph merges more than {MAX_MERGED_VALUES:,} values",
                    "merge some base profiles into one, and extend each base once",
                )
            )
        _merge(target, target_origins, source, source_origins, (), removed)


def _type_name(value: Any) -> str:
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}.get(
        type(value), "null" if value is None else type(value).__name__
    )


def _shown_value(value: Any) -> str:
    return repr(value) if isinstance(value, (str, int, float, bool)) or value is None else _a(_type_name(value))


def _a(noun: str) -> str:
    return f"{'an' if noun[0] in 'aeiou' else 'a'} {noun}"


def _merge(
    target: dict, target_origins: dict, source: dict, source_origins: dict, path: Path_, removed: dict[Path_, Origin]
) -> None:
    """Merge `source` into `target` (Helm's rules): mappings merge key by key, lists and scalars replace,
    and `null` removes the key (recorded in `removed` with the origin of the `null`)."""
    for key, value in source.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target_origins[here] = source_origins[here]
            removed.pop(here, None)
            _merge(target[key], target_origins, value, source_origins, here, removed)
            continue
        # A replaced value takes its origins (and those of its children) from the new source only: the
        # paths are found by walking the two values, so a merge costs the size of what it touches.
        if key in target:
            for stale in _paths(target.pop(key), here):
                target_origins.pop(stale, None)
            if value is None:
                removed[here] = source_origins.get(here, Origin(""))
        if value is None:
            continue
        target[key] = _without_nulls(value)
        for fresh in _paths(target[key], here):
            removed.pop(fresh, None)
            if fresh in source_origins:
                target_origins[fresh] = source_origins[fresh]


def _without_nulls(value: Any) -> Any:
    """A copy of a value in which no mapping holds a `null` (there is nothing below it to remove)."""
    if isinstance(value, dict):
        return {key: _without_nulls(child) for key, child in value.items() if child is not None}
    return copy.deepcopy(value)


def _paths(value: Any, path: Path_) -> Iterator[Path_]:
    """`path` and the path of every value inside `value`."""
    yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))
