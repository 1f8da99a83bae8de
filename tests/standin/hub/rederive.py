"""Re-derive the shipped data/models/*.yaml from their fixture repositories, through the stand-in Hub.

    .venv/bin/python tests/standin/hub/rederive.py

Runs the code path of `generate.py model add` against tests/fixtures/hub, so a change to the derivation
shows up as a diff of the shipped facts (tests/test_models.py fails until they are re-derived).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures" / "hub"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from server import running  # noqa: E402

from deploygen.models.add import add_model  # noqa: E402
from deploygen.models.facts import SHIPPED_MODELS_DIR, known_models, load_model_facts  # noqa: E402


def shipped_with_fixtures() -> dict[str, str]:
    """Shipped model name -> repository, for every shipped model that has a fixture repository."""
    repos = {name: load_model_facts(name, SHIPPED_MODELS_DIR).repo for name in known_models(SHIPPED_MODELS_DIR)}
    return {name: repo for name, repo in repos.items() if (FIXTURES / repo / "hub.yaml").is_file()}


def main() -> None:
    with running(FIXTURES) as endpoint:
        os.environ["HF_ENDPOINT"] = endpoint
        for name, repo in shipped_with_fixtures().items():
            path, _ = add_model(repo, name=name, models_dir=SHIPPED_MODELS_DIR)
            print(f"re-derived {path.relative_to(ROOT)} from tests/fixtures/hub/{repo}")


if __name__ == "__main__":
    main()
