"""Where the repository's inputs and outputs live: the one place that knows the repository root."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILES_DIR = ROOT / "profiles"
SCHEMA_PATH = ROOT / "schema" / "profile.schema.json"
CATALOG_DIR = ROOT / "schema" / "sglang"
DATA_DIR = ROOT / "data"
TEMPLATES_DIR = ROOT / "templates"
GENERATED_DIR = ROOT / "generated"
PACKAGE_DIR = ROOT / "deploygen"
