"""The serving image's build steps (`image.steps`): pinned packages, and local files inside the project.

A step is one of Modal's Image methods (https://modal.com/docs/reference/modal.Image). Packages are
pinned, so that a rebuild installs what was reviewed: pip requirements as `name==version` (read by
`packaging`, pip's own requirement parser), apt packages as `name=version`. A local file or folder is
named relative to the profile file that names it, must exist, and must stay inside the project: the
folder that holds profiles/ (or, for a profile outside it, the profile's own folder).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from deploygen.load import ResolvedProfile
from deploygen.load.yaml_source import Path_, display_path
from deploygen.paths import PROJECT_DIR

STEP_KINDS = ("uv_pip_install", "pip_install", "apt_install", "run_commands", "add_local_file", "add_local_dir")
PIP_KINDS = ("uv_pip_install", "pip_install")
LOCAL_KINDS = ("add_local_file", "add_local_dir")
# Options of a pip step, passed to Modal's method as keyword arguments.
PIP_OPTIONS = ("index_url", "extra_index_url")
# name[:arch][=version], as apt-get reads a package argument; a version is Debian's (epoch:upstream-revision).
APT_PACKAGE = re.compile(r"(?P<name>[a-z0-9][a-z0-9+.-]+)(?::[a-z0-9-]+)?(?:=(?P<version>[A-Za-z0-9.+~:-]+))?")
# A VCS requirement pinned to a commit: `name @ git+https://...@<40 hex>`.
PINNED_VCS = re.compile(r"git\+https://[^@\s]+@[0-9a-f]{40}(#.*)?")


@dataclass(frozen=True)
class StepFinding:
    message: str
    blame: Path_
    hint: str = ""


def steps(profile: ResolvedProfile) -> list[tuple[int, str, Any]]:
    """(index, kind, value) of each step that names exactly one kind (the others are reported)."""
    out = []
    for index, step in enumerate(profile.data["image"].get("steps", [])):
        kinds = [key for key in step if key in STEP_KINDS]
        if len(kinds) == 1:
            out.append((index, kinds[0], step[kinds[0]]))
    return out


def pip_options(step: dict[str, Any]) -> dict[str, str]:
    """A pip step's index options, in Modal's keyword order."""
    return {option: step[option] for option in PIP_OPTIONS if option in step}


def shape_findings(profile: ResolvedProfile) -> Iterator[StepFinding]:
    for index, step in enumerate(profile.data["image"].get("steps", [])):
        kinds = [key for key in step if key in STEP_KINDS]
        if len(kinds) != 1:
            named = f"{len(kinds)} kinds ({', '.join(kinds)})" if kinds else "no kind"
            yield StepFinding(
                f"a build step names {named}; each step is one of Modal's Image methods",
                ("image", "steps", index),
                f"write one step per list item, each with one of: {', '.join(STEP_KINDS)}",
            )
        elif kinds[0] not in PIP_KINDS:
            for option in pip_options(step):
                yield StepFinding(
                    f"{option} applies to uv_pip_install and pip_install, not to {kinds[0]}",
                    ("image", "steps", index, option),
                    f"move {option} to the pip step that needs it",
                )


def order_findings(profile: ResolvedProfile) -> Iterator[StepFinding]:
    """A command that uses a file the image gets only from a later step fails the build."""
    found = steps(profile)
    for index, kind, commands in found:
        if kind != "run_commands":
            continue
        for later, later_kind, value in found:
            if later <= index or later_kind not in LOCAL_KINDS:
                continue
            remote = value["remote"]
            using = [k for k, command in enumerate(commands) if re.search(rf"{re.escape(remote)}(?![\w.+-])", command)]
            if using:
                yield StepFinding(
                    f"this command uses {remote}, which step {later} ({later_kind}) adds only after it",
                    ("image", "steps", index, "run_commands", using[0]),
                    f"move the {later_kind} of {value['local']} above this step: steps run in the order written",
                )


def pip_problem(text: str) -> tuple[str, str] | None:
    """(message, hint) when a pip requirement does not pin exactly one version; None when it does."""
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        return f"{text!r} is not a pip requirement", "write NAME==VERSION, e.g. transformers==4.57.1"
    name = requirement.name
    if requirement.url:
        if PINNED_VCS.fullmatch(requirement.url):
            return None
        return (
            f"package {name!r} comes from {requirement.url!r}, which can change under the same address",
            f"pin a released version ({name}==VERSION) or a git commit ({name} @ git+https://...@<40-hex commit>)",
        )
    specifiers = list(requirement.specifier)
    pinned = (
        len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and not specifiers[0].version.endswith(".*")
    )
    if pinned:
        return None
    said = f"to one version ({requirement.specifier})" if specifiers else "(no version)"
    return (
        f"package {name!r} is not pinned {said}: a rebuild would install whatever is newest that day",
        f"pin one version: {name}==VERSION (`pip index versions {name}` lists them)",
    )


def apt_problem(text: str) -> tuple[str, str] | None:
    """(message, hint) when an apt package is not `name=version`; None when it is."""
    match = APT_PACKAGE.fullmatch(text)
    if match is None:
        return f"{text!r} is not an apt package", "write NAME=VERSION, e.g. git=1:2.43.0-1ubuntu7.3"
    if match["version"] is None:
        name = match["name"]
        return (
            f"apt package {name!r} is not pinned: a rebuild would install whatever version the mirror has that day",
            f"pin it as {name}=VERSION (`apt-cache policy {name}` in the image shows the candidate version)",
        )
    return None


def package_findings(profile: ResolvedProfile) -> Iterator[StepFinding]:
    for index, kind, values in steps(profile):
        check = pip_problem if kind in PIP_KINDS else apt_problem if kind == "apt_install" else None
        if check is None:
            continue
        for position, text in enumerate(values):
            problem = check(text)
            if problem:
                yield StepFinding(problem[0], ("image", "steps", index, kind, position), problem[1])


@dataclass(frozen=True)
class LocalSource:
    """A local file or folder of a build step, found."""

    path: Path  # absolute, without `..`; inside `root`
    root: Path  # the project folder it stays in
    is_dir: bool


def _source_file(profile: ResolvedProfile, blame: Path_) -> Path:
    """The profile file that set the value at `blame`: relative paths are read from its folder."""
    shown = profile.origin(blame).file
    return next((source for source in profile.sources if display_path(source) == shown), profile.path)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _project_root(profile_file: Path) -> Path:
    """The folder local files must stay in: the project's, or a profile outside it, its own folder."""
    project = Path(os.path.realpath(PROJECT_DIR))
    folder = Path(os.path.realpath(profile_file.parent))
    return project if _inside(folder, project) else folder


def local_source(profile: ResolvedProfile, index: int, kind: str, local: str) -> LocalSource | StepFinding:
    """The file or folder a step names, or why it cannot be used."""
    blame = ("image", "steps", index, kind, "local")
    profile_file = _source_file(profile, blame)
    shown_profile = display_path(profile_file)
    if os.path.isabs(local):
        return StepFinding(
            f"{local!r} is an absolute path; a local path is relative to the profile file ({shown_profile})",
            blame,
            "write the path from the profile's folder, e.g. ../patches/fix.patch",
        )
    root = _project_root(profile_file)
    lexical = Path(os.path.normpath(Path(os.path.realpath(profile_file.parent)) / local))
    if not _inside(lexical, root):
        return StepFinding(
            f"{local!r} leads out of the project ({display_path(root)}): only its own files go into the image",
            blame,
            "copy the file into the project (e.g. patches/) and name it from there",
        )
    if not os.path.lexists(lexical):
        return StepFinding(
            f"{local!r} does not exist (looked for {display_path(lexical)}, relative to {shown_profile})",
            blame,
            "create it, or fix the path: it is relative to the folder of the profile file that names it",
        )
    real = Path(os.path.realpath(lexical))
    if not _inside(real, root):
        return StepFinding(
            f"{local!r} is a symlink to {str(real)!r}, outside the project ({display_path(root)})",
            blame,
            "copy the file into the project instead of linking to it",
        )
    want_dir = kind == "add_local_dir"
    if real.is_dir() != want_dir or not (real.is_dir() or real.is_file()):
        what = "a folder" if want_dir else "a file"
        other = "add_local_file" if want_dir else "add_local_dir"
        return StepFinding(f"{local!r} is not {what}", blame, f"give {what}, or use {other}")
    if want_dir:
        for inner in sorted(real.rglob("*")):
            target = Path(os.path.realpath(inner))
            if not _inside(target, root):
                return StepFinding(
                    f"{display_path(inner)} in {local!r} is a symlink to {str(target)!r}, outside the project",
                    blame,
                    "copy the file into the project instead of linking to it",
                )
    return LocalSource(lexical, root, want_dir)


def local_findings(profile: ResolvedProfile) -> Iterator[StepFinding]:
    for index, kind, value in steps(profile):
        if kind in LOCAL_KINDS:
            found = local_source(profile, index, kind, value["local"])
            if isinstance(found, StepFinding):
                yield found
            else:
                try:
                    content_digest(found)
                except OSError as exc:
                    yield StepFinding(
                        f"{value['local']!r} cannot be read: {exc.strerror or exc}",
                        ("image", "steps", index, kind, "local"),
                        "give yourself read access to it",
                    )


def content_digest(source: LocalSource) -> str:
    """sha256 of a file's bytes; of a folder, over each file's path (relative, sorted) and bytes."""
    digest = hashlib.sha256()
    if not source.is_dir:
        digest.update(Path(source.path).read_bytes())
        return digest.hexdigest()
    for inner in sorted(source.path.rglob("*")):
        if inner.is_file():
            digest.update(inner.relative_to(source.path).as_posix().encode() + b"\0")
            digest.update(hashlib.sha256(inner.read_bytes()).digest())
    return digest.hexdigest()
