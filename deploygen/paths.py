"""Where the repository's inputs and outputs live: the one place that knows the repository root."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _root() -> Path:
    """The schema, data and templates: beside the package in a checkout, under <prefix>/share/deploygen
    when installed with pip (pyproject.toml's data-files)."""
    checkout = PACKAGE_DIR.parent
    return checkout if (checkout / "schema").is_dir() else Path(sys.prefix) / "share" / "deploygen"


ROOT = _root()


def _project_dir() -> Path:
    """Where profiles/ and generated/ live: $DEPLOYGEN_PROJECT, else the working directory when it holds
    a profiles/ folder (a team's own repository, with deploygen installed), else this checkout."""
    if os.environ.get("DEPLOYGEN_PROJECT"):
        return Path(os.environ["DEPLOYGEN_PROJECT"]).resolve()
    here = Path.cwd()
    return here.resolve() if (here / "profiles").is_dir() else ROOT


PROJECT_DIR = _project_dir()
PROFILES_DIR = PROJECT_DIR / "profiles"
SCHEMA_PATH = ROOT / "schema" / "profile.schema.json"
CATALOG_DIR = ROOT / "schema" / "sglang"
DATA_DIR = ROOT / "data"
TEMPLATES_DIR = ROOT / "templates"
GENERATED_DIR = PROJECT_DIR / "generated"
