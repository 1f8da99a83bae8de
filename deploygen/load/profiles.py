"""Profiles by name or path, with `extends` deep-merged and every value's origin kept.

Mappings merge key by key; lists and scalars replace. Parents apply in the order listed, then the
child. `abstract: true` marks a base that exists only to be extended.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploygen.errors import Origin, Problem, ProfileNotFound, UserError
from deploygen.load.yaml_source import Path_, display_path, read_yaml

ROOT = Path(__file__).resolve().parents[2]
PROFILES_DIR = ROOT / "profiles"
# Keys about the file itself: they never merge into a child.
FILE_KEYS = ("extends", "abstract")


@dataclass
class ResolvedProfile:
    """One profile after `extends`: the merged data, where each value came from, and the files used."""

    name: str
    path: Path
    data: dict[str, Any]
    origins: dict[Path_, Origin]
    sources: list[Path] = field(default_factory=list)
    abstract: bool = False

    def origin(self, path: Path_) -> Origin:
        """The origin of a path, or of its nearest parent that has one."""
        while path:
            if path in self.origins:
                return self.origins[path]
            path = path[:-1]
        return Origin(display_path(self.path), 1, 1)

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


def _not_found(name: str, origin: Origin | None = None, path: str = "") -> ProfileNotFound:
    names = available_profiles()
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    hint += "available profiles: " + ", ".join(names)
    return ProfileNotFound(Problem(origin or Origin(""), path, f"no profile named {name!r}", hint))


def profile_path(name_or_path: str, relative_to: Path | None = None, origin: Origin | None = None) -> Path:
    """A profile given by name (`b200-prod`) or by path (`profiles/x.yaml`, `../base.yaml`)."""
    looks_like_path = "/" in name_or_path or name_or_path.endswith((".yaml", ".yml"))
    if looks_like_path:
        base = relative_to.parent if relative_to else Path.cwd()
        path = (base / name_or_path).resolve()
        if not path.is_file():
            raise ProfileNotFound(
                Problem(
                    origin or Origin(name_or_path),
                    "extends" if origin else "",
                    f"no file {name_or_path!r}",
                    "available profiles: " + ", ".join(available_profiles()),
                )
            )
        return path
    path = PROFILES_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise _not_found(name_or_path, origin, "extends" if origin else "")
    return path


def load_profile(name_or_path: str) -> ResolvedProfile:
    path = profile_path(name_or_path)
    data, origins, sources, abstract = _resolve(path, [])
    return ResolvedProfile(path.stem, path, data, origins, sources, abstract)


def _resolve(path: Path, chain: list[Path]) -> tuple[dict, dict[Path_, Origin], list[Path], bool]:
    data, origins = read_yaml(path)
    shown = display_path(path)
    if not isinstance(data, dict):
        raise UserError(
            Problem(
                Origin(shown, 1, 1),
                "",
                f"a profile is a mapping, not a {'string' if isinstance(data, str) else type(data).__name__}",
                "start the file with `schema_version: 1`",
            )
        )
    parents = data.get("extends", [])
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise UserError(
            Problem(origins[("extends",)], "extends", "`extends` is a profile name, a relative path, or a list of them")
        )
    merged: dict[str, Any] = {}
    merged_origins: dict[Path_, Origin] = {}
    sources: list[Path] = []
    for index, parent in enumerate(parents):
        where = origins.get(("extends", index), origins[("extends",)])
        parent_path = profile_path(parent, relative_to=path, origin=where)
        seen = [*chain, path]
        if parent_path in seen:
            # Blame the `extends` entry that closes the cycle, with its line.
            cycle = " -> ".join(display_path(p) for p in [*seen[seen.index(parent_path) :], parent_path])
            raise UserError(
                Problem(
                    where, "extends", f"`extends` cycle: {cycle}", "remove one of the `extends` entries in the cycle"
                )
            )
        parent_data, parent_origins, parent_sources, _ = _resolve(parent_path, seen)
        _merge(merged, merged_origins, parent_data, parent_origins, ())
        sources += [s for s in parent_sources if s not in sources]
    own = {k: v for k, v in data.items() if k not in FILE_KEYS}
    _merge(merged, merged_origins, own, origins, ())
    sources.append(path)
    return merged, merged_origins, sources, data.get("abstract") is True


def _merge(target: dict, target_origins: dict, source: dict, source_origins: dict, path: Path_) -> None:
    for key, value in source.items():
        here = (*path, key)
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            target_origins[here] = source_origins[here]
            _merge(target[key], target_origins, value, source_origins, here)
            continue
        # A replaced value takes its origins (and those of its children) from the new source only.
        for stale in [p for p in target_origins if p[: len(here)] == here]:
            del target_origins[stale]
        target[key] = copy.deepcopy(value)
        for p, o in source_origins.items():
            if p[: len(here)] == here:
                target_origins[p] = o
