"""Data files with hardware and model facts, each entry carrying its source."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from deploygen.models import load_model_facts

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
# Modal volume reads run at about 1-3 GB/s (FACTS.md, Modal section, from modal-examples).
VOLUME_READ_GB_PER_S = {"slow": 1.0, "fast": 3.0}


@functools.cache
def gpu_facts() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((DATA_DIR / "gpus.yaml").read_text())["gpus"]


def model_facts(name: str) -> dict[str, Any]:
    """The model's facts as the rules and planner read them; new code reads `load_model_facts(name)`."""
    return load_model_facts(name).legacy()
