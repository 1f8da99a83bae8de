"""GPU facts and shared constants from the data files, each entry carrying its source (model facts:
deploygen.models)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import yaml

from deploygen.paths import DATA_DIR

# Modal volume reads run at about 1-3 GB/s (docs/sources.md#modal-volumes).
VOLUME_READ_GB_PER_S = {"slow": 1.0, "fast": 3.0}


def read_data(path: Path) -> Any:
    """A data file of the repository (our own, trusted YAML), parsed by libyaml when it is there."""
    return yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@functools.cache
def gpu_facts() -> dict[str, dict[str, Any]]:
    return read_data(DATA_DIR / "gpus.yaml")["gpus"]


@functools.cache
def cluster_facts() -> dict[str, Any]:
    """Modal's cluster network: RDMA and i6pn bandwidth per node."""
    return read_data(DATA_DIR / "gpus.yaml")["clusters"]
