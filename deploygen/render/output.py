"""Where a rendered deploy.py goes in the repository."""

from __future__ import annotations

from pathlib import Path

from deploygen.load import ResolvedProfile
from deploygen.paths import GENERATED_DIR


def output_path(profile: ResolvedProfile) -> Path:
    return GENERATED_DIR / profile.name / "deploy.py"
