"""`new NAME --extends PARENT`: a child profile, commented and valid as written, ready to edit."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from deploygen.errors import Origin, Problem, UserError
from deploygen.load.profiles import PROFILE_NAME, load_profile
from deploygen.load.yaml_source import display_path
from deploygen.paths import PROFILES_DIR, SCHEMA_PATH

# Fields a child most often changes, shown commented out with the parent's value.
USUAL_CHANGES = (
    ("gpu", ("type", "count")),
    ("sglang", ("context-length", "mem-fraction-static", "max-running-requests")),
    ("scaling", ("min_containers", "max_containers", "scaledown_window")),
)


def _yaml(value: object) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10**9).removesuffix("\n").removesuffix("\n...")


def new_profile(name: str, parent_ref: str, folder: Path = PROFILES_DIR) -> tuple[Path, str]:
    """The path and text of profiles/NAME.yaml extending PARENT; UserError when NAME is taken or bad."""
    if not PROFILE_NAME.fullmatch(name):
        raise UserError(
            Problem(
                Origin("new"),
                "NAME",
                f"{name!r} is not a profile name",
                "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit (it names "
                "generated/<name>/ and the Modal app)",
            )
        )
    path = folder / f"{name}.yaml"
    if path.exists():
        raise UserError(
            Problem(Origin(display_path(path)), "", "this profile exists already", "pick another NAME, or edit it")
        )
    parent = load_profile(parent_ref)
    same_folder = parent.path.parent == folder.resolve()
    extends = parent.name if same_folder else os.path.relpath(parent.path, folder.resolve())
    schema = os.path.relpath(SCHEMA_PATH, folder.resolve())
    lines = [
        f"# yaml-language-server: $schema={schema}",
        f"# {name}: {parent.name} with the changes below. Every value not written here comes from {parent.name};",
        f"# `make explain PROFILE={name}` shows each resolved value and the file and line that set it.",
        "# Mappings merge key by key, lists and scalars replace, and `null` removes a value the parent sets.",
        "schema_version: 1",
        f"description: {_yaml(f'Like {parent.name}, changed: say what and why.')}",
        f"extends: {_yaml(extends)}",
        "",
        "app:",
        f"  # The Modal app: {parent.name} deploys as {_yaml(parent.get('app', 'name'))}; a name of its own keeps",
        "  # the two deployments apart.",
        f"  name: {_yaml(name)}",
        "",
        f"# Uncomment and edit what differs from {parent.name} (its values are shown):",
    ]
    for section, keys in USUAL_CHANGES:
        values = [(key, parent.get(section, key)) for key in keys if parent.get(section, key) is not None]
        if values:
            lines.append(f"# {section}:")
            lines += [f"#   {key}: {_yaml(value)}" for key, value in values]
    return path, "\n".join(lines) + "\n"
