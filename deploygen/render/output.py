"""Where a rendered deploy.py goes in the repository: generated/<name>/, and nowhere else."""

from __future__ import annotations

import os
from pathlib import Path

from deploygen.errors import Origin, Problem, UserError
from deploygen.load import ResolvedProfile
from deploygen.load.yaml_source import display_path
from deploygen.paths import GENERATED_DIR, PROJECT_DIR


def output_path(profile: ResolvedProfile) -> Path:
    return GENERATED_DIR / profile.name / "deploy.py"


def writable_output_path(profile: ResolvedProfile) -> Path:
    """output_path, after checking that writing it stays in this repository's generated/<name>/: a folder
    on the way that is a symlink elsewhere (or a name that is not one folder) is refused."""
    path = output_path(profile)
    generated = Path(os.path.realpath(GENERATED_DIR))
    for folder, expected in ((GENERATED_DIR, PROJECT_DIR / "generated"), (path.parent, generated / profile.name)):
        real = Path(os.path.realpath(folder))
        if real != expected and folder.exists():
            raise UserError(
                Problem(
                    Origin(display_path(folder)),
                    "",
                    f"cannot write the render: this folder leads to {str(real)!r}; renders are written only "
                    "in the repository's own generated/<name>/",
                    "replace the symlink with a real folder",
                )
            )
        if real != expected:
            raise UserError(
                Problem(Origin(display_path(folder)), "", "cannot write the render: broken symlink", "remove it")
            )
    return path
